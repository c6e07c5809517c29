// FAST tokens (XEP-0484): `fast!<bare>!<installation>` → two slots, as the XEP's implementation
// notes have them. A new token goes into `next`; the first login with it moves it to `current`
// (dropping the older one), so a client that lost the <success/> carrying its new token still logs
// in with the one it has. An installation is a client's SASL2 user-agent id, kept hashed.
// Tokens are credentials: a password change and the account's deletion remove them all.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { JSON_VALUES, keys, type AnyDb } from './db.ts';
import type { Storage } from '../xmpp/module.ts';

export interface FastToken {
  token: string;
  /** The mechanism it was issued for: it works with that one only. */
  mechanism: string;
  /** ms since the epoch. */
  expiry: number;
}

export interface FastSlots { current?: FastToken; next?: FastToken }

const installation = (agent: string): string => createHash('sha256').update(agent).digest('base64url').slice(0, 22);

export async function readTokens(db: AnyDb, bare: string, agent: string): Promise<FastSlots | undefined> {
  return (await db.get(keys.fast(bare, installation(agent)), JSON_VALUES)) as FastSlots | undefined;
}

/** A new token for this installation, in the `next` slot (an unused one there is replaced). */
export async function issueToken(db: AnyDb, bare: string, agent: string, mechanism: string, lifetimeMs: number, now = Date.now()): Promise<FastToken> {
  const slots = (await readTokens(db, bare, agent)) ?? {};
  const token: FastToken = { token: randomBytes(32).toString('base64url'), mechanism, expiry: now + lifetimeMs };
  await db.put(keys.fast(bare, installation(agent)), { ...(slots.current && slots.current.expiry > now ? { current: slots.current } : {}), next: token }, JSON_VALUES);
  return token;
}

/**
 * The live token that `matches` (the mechanism's proof checked with it), `next` first. A login with
 * `next` makes it `current`; `invalidate` (the client logging out) removes the one used.
 */
export async function useToken(db: AnyDb, bare: string, agent: string, mechanism: string, matches: (token: string) => boolean, o: { invalidate?: boolean; now?: number } = {}): Promise<FastToken | undefined> {
  const now = o.now ?? Date.now();
  const slots = await readTokens(db, bare, agent);
  if (!slots) return undefined;
  const live = (t: FastToken | undefined): t is FastToken => !!t && t.mechanism === mechanism && t.expiry > now && matches(t.token);
  const key = keys.fast(bare, installation(agent));
  if (live(slots.next)) {
    if (o.invalidate) await db.put(key, { ...(slots.current ? { current: slots.current } : {}) }, JSON_VALUES);
    else await db.put(key, { current: slots.next }, JSON_VALUES);
    return slots.next;
  }
  if (live(slots.current)) {
    if (o.invalidate) await db.put(key, { ...(slots.next ? { next: slots.next } : {}) }, JSON_VALUES);
    return slots.current;
  }
  return undefined;
}

/** Every token of the account (a password change, the account deleted), through the Storage facade:
 *  a module changing a password (XEP-0077) has that, the CLI wraps its DB in one. */
export async function revokeTokens(storage: Pick<Storage, 'range' | 'batch'>, bare: string): Promise<void> {
  const tokens = await storage.range(keys.fastOf(bare));
  if (tokens.length) await storage.batch(tokens.map(([key]) => ({ type: 'del' as const, key })));
}

/** One node's tokens: what a login asks of them. */
export interface FastTokens {
  /** See useToken; `expiry` says when the used token runs out (a rotation is due well before). */
  use(bare: string, agent: string, mechanism: string, matches: (token: string) => boolean, invalidate: boolean): Promise<FastToken | undefined>;
  issue(bare: string, agent: string, mechanism: string): Promise<FastToken>;
  /** How long a token lives. */
  lifetimeMs: number;
}

export function fastTokens(db: AnyDb, lifetimeMs: number, now: () => number = Date.now): FastTokens {
  return {
    lifetimeMs,
    use: (bare, agent, mechanism, matches, invalidate) => useToken(db, bare, agent, mechanism, matches, { invalidate, now: now() }),
    issue: (bare, agent, mechanism) => issueToken(db, bare, agent, mechanism, lifetimeMs, now()),
  };
}

/** Constant-time equality of two proofs. */
export function sameProof(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
