// Failed-authentication throttling per account and per remote address: a token bucket for each
// (a failure spends a token; refused while a bucket is below one) plus an exponential delay before
// answering each consecutive failure. Pure and clock-injected; the session applies the decisions.
import { prepareLocalpart } from '../xmpp/jid.ts';

export interface BucketConfig {
  /** Failures allowed in a burst. */
  capacity: number;
  /** Tokens regained per minute. */
  refillPerMinute: number;
}

export interface BackoffConfig {
  baseMs: number;
  maxMs: number;
}

export interface ThrottleOptions {
  /** false disables that bucket. */
  account?: BucketConfig | false;
  address?: BucketConfig | false;
  backoff?: BackoffConfig | false;
  /** Bound on remembered accounts and addresses, each. */
  maxEntries?: number;
  now?: () => number;
  /** Maps spellings of one account to one key; default the JID localpart preparation. */
  normalizeAccount?: (name: string) => string;
}

export interface ThrottleDecision {
  allowed: boolean;
  /** 0 when allowed. */
  retryAfterMs: number;
}

export const DEFAULT_THROTTLE = {
  account: { capacity: 5, refillPerMinute: 2 },
  address: { capacity: 30, refillPerMinute: 10 },
  backoff: { baseMs: 250, maxMs: 8000 },
  maxEntries: 100_000,
} as const;

/** `cleared`: in an account's entry, the sources (address keys) a login succeeded from since their
 *  last failure: the account's bucket no longer holds them back, and only them. */
interface Entry { tokens: number; at: number; streak: number; cleared?: string[] }

/** Sources remembered per account as cleared by a success. */
const MAX_CLEARED = 8;

class Buckets {
  readonly map = new Map<string, Entry>();
  constructor(readonly cfg: BucketConfig, readonly max: number) {}

  #refill(e: Entry, now: number): void {
    e.tokens = Math.min(this.cfg.capacity, e.tokens + ((now - e.at) * this.cfg.refillPerMinute) / 60_000);
    e.at = now;
    if (e.tokens >= this.cfg.capacity) e.streak = 0; // fully recovered: forget the run of failures
  }

  entry(key: string): Entry | undefined { return this.map.get(key); }

  retryAfter(key: string, now: number): number {
    const e = this.map.get(key);
    if (!e) return 0;
    this.#refill(e, now);
    return e.tokens >= 1 ? 0 : Math.ceil(((1 - e.tokens) * 60_000) / this.cfg.refillPerMinute);
  }

  spend(key: string, now: number): number {
    let e = this.map.get(key);
    if (e) this.#refill(e, now);
    else {
      if (this.map.size >= this.max) this.#evict(now, this.max - 1); // before inserting, or the new entry is pruned
      e = { tokens: this.cfg.capacity, at: now, streak: 0 };
      this.map.set(key, e);
    }
    e.tokens = Math.max(0, e.tokens - 1);
    return ++e.streak;
  }

  prune(now: number): void {
    for (const [k, e] of this.map) {
      this.#refill(e, now);
      if (e.tokens >= this.cfg.capacity) this.map.delete(k);
    }
  }

  // Drop recovered entries first, then the oldest ones.
  #evict(now: number, target: number): void {
    this.prune(now);
    for (const k of this.map.keys()) {
      if (this.map.size <= target) break;
      this.map.delete(k);
    }
  }
}

/** What the SASL mechanisms consult: an AuthThrottle answers at once; the node's answers from the
 *  thread that keeps each key's bucket (src/xmpp-service.ts). */
export interface LoginThrottle {
  check(account: string | undefined, address: string | undefined): ThrottleDecision | Promise<ThrottleDecision>;
  /** Resolves to how long to wait before sending the failure. */
  recordFailure(account: string | undefined, address: string | undefined): number | Promise<number>;
  recordSuccess(account: string | undefined, address?: string): void | Promise<void>;
}

export class AuthThrottle implements LoginThrottle {
  #accounts: Buckets | undefined;
  #addresses: Buckets | undefined;
  #backoff: BackoffConfig | undefined;
  #now: () => number;
  #normalize: (name: string) => string;

  constructor(options: ThrottleOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_THROTTLE.maxEntries;
    const account = options.account ?? DEFAULT_THROTTLE.account;
    const address = options.address ?? DEFAULT_THROTTLE.address;
    const backoff = options.backoff ?? DEFAULT_THROTTLE.backoff;
    for (const b of [account, address]) {
      if (b && !(b.capacity >= 1 && b.refillPerMinute > 0)) throw new RangeError('bucket needs capacity >= 1 and refillPerMinute > 0');
    }
    this.#accounts = account ? new Buckets(account, max) : undefined;
    this.#addresses = address ? new Buckets(address, max) : undefined;
    this.#backoff = backoff || undefined;
    this.#now = options.now ?? Date.now;
    this.#normalize = options.normalizeAccount ?? defaultNormalize;
  }

  /**
   * May an attempt for this account from this address go ahead? Either may be unknown. The address's
   * own bucket always counts; the account's only for a source that has failed lately (or an unknown
   * one): guesses from elsewhere must not lock the real user out at home (#8).
   */
  check(account: string | undefined, address: string | undefined): ThrottleDecision {
    const source = address === undefined ? { retryAfterMs: 0, failed: true } : this.sourceState(address);
    const wait = Math.max(source.retryAfterMs, source.failed ? this.accountWait(account, address) : 0);
    return { allowed: wait === 0, retryAfterMs: wait };
  }

  /** The address's wait, and whether it has failures on record (not yet refilled). */
  sourceState(address: string): { retryAfterMs: number; failed: boolean } {
    if (!this.#addresses) return { retryAfterMs: 0, failed: true };
    const key = addressKey(address);
    return { retryAfterMs: this.#addresses.retryAfter(key, this.#now()), failed: this.#addresses.map.has(key) };
  }

  /** How long this account's bucket makes a failed source wait (none for a source a login of the
   *  account succeeded from since it last failed). */
  accountWait(account: string | undefined, address?: string): number {
    if (account === undefined || !this.#accounts) return 0;
    const key = this.#normalize(account);
    if (address !== undefined && this.#accounts.entry(key)?.cleared?.includes(addressKey(address))) return 0;
    return this.#accounts.retryAfter(key, this.#now());
  }

  /** Records a failed attempt; returns how long to wait before sending the failure. */
  recordFailure(account: string | undefined, address: string | undefined): number {
    return this.delayFor(Math.max(this.accountFailure(account, address), this.addressFailure(address)));
  }

  /** The account's side of a failure (its bucket; the source is no longer cleared): the streak. */
  accountFailure(account: string | undefined, address: string | undefined): number {
    if (account === undefined || !this.#accounts) return 0;
    const key = this.#normalize(account);
    const streak = this.#accounts.spend(key, this.#now());
    const e = this.#accounts.entry(key)!;
    if (address !== undefined && e.cleared) e.cleared = e.cleared.filter((k) => k !== addressKey(address));
    return streak;
  }

  /** The address's side of a failure: the streak. */
  addressFailure(address: string | undefined): number {
    return address !== undefined && this.#addresses ? this.#addresses.spend(addressKey(address), this.#now()) : 0;
  }

  /** How long to wait before answering the `streak`th failure in a row. */
  delayFor(streak: number): number {
    const b = this.#backoff;
    return b && streak > 0 ? Math.min(b.maxMs, b.baseMs * 2 ** (streak - 1)) : 0;
  }

  /**
   * A success clears the account's throttle for the source it came from, and only for it: a guesser
   * elsewhere stays held back by the account's bucket. The address keeps its own record (one good
   * account must not launder it).
   */
  recordSuccess(account: string | undefined, address?: string): void {
    if (account === undefined || !this.#accounts) return;
    const e = this.#accounts.entry(this.#normalize(account));
    if (!e) return;
    e.streak = 0;
    if (address !== undefined) e.cleared = [...(e.cleared ?? []).filter((k) => k !== addressKey(address)), addressKey(address)].slice(-MAX_CLEARED);
  }

  /** Forgets fully recovered entries (call from a timer if desired; insertion also bounds memory). */
  prune(): void {
    const now = this.#now();
    this.#accounts?.prune(now);
    this.#addresses?.prune(now);
  }

  get size(): { accounts: number; addresses: number } {
    return { accounts: this.#accounts?.map.size ?? 0, addresses: this.#addresses?.map.size ?? 0 };
  }
}

/** One key per account however it is spelled (the JID localpart preparation). */
export function defaultNormalize(name: string): string {
  try { return prepareLocalpart(name); } catch { return name; }
}

/** IPv6 peers are keyed by their /64 (one host usually owns the whole prefix); IPv4-mapped become IPv4. */
export function addressKey(address: string): string {
  let a = address.toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (!a.includes(':')) return a;
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  const [head = '', tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const last = (t.length ? t : h).at(-1) ?? '';
  const missing = 8 - h.length - t.length - (last.includes('.') ? 1 : 0);
  const groups = [...h, ...Array<string>(Math.max(0, missing)).fill('0'), ...t];
  return groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':') + '::/64';
}
