// Accounts: `acct!<bare>` → { scram: { 'SHA-1', 'SHA-256', 'SHA-512' verifiers }, created }.
// Only SCRAM verifiers are stored, never the password (RFC 5802 §3: the server keeps StoredKey and
// ServerKey, from which no password and no ClientKey can be recovered).
import { availableParallelism } from 'node:os';
import { checkBareJid } from '../config/names.ts';
import {
  credentialsFromJson, credentialsToJson, deriveCredentials, DEFAULT_ITERATIONS,
} from '../sasl/scram.ts';
import type { CredentialLookup, HashName, ScramCredentials, ScramCredentialsJson, StoredCredentials } from '../sasl/types.ts';
import { prepareLocalpart } from '../xmpp/jid.ts';
import { JSON_VALUES, keys, PREFIX, range, type AnyDb } from './db.ts';
import { revokeTokens } from './fast-tokens.ts';
import { kvStorage } from './kv.ts';
import type { Storage } from '../xmpp/module.ts';

export const ACCOUNT_HASHES: readonly HashName[] = ['SHA-1', 'SHA-256', 'SHA-512'];
export { DEFAULT_ITERATIONS };

export interface AccountRecord {
  scram: Record<HashName, ScramCredentialsJson>;
  /** ISO 8601 time the account was created. */
  created: string;
  /** Roles given to the account (an admin invitation makes an admin); the config's `admins` are
   *  admins without one. */
  roles?: Role[];
}

export type Role = 'admin';

/** A problem the operator caused (bad JID, unknown host, no such account): shown as one line. */
export class AccountError extends Error {
  override readonly name = 'AccountError';
}

export interface AccountOptions {
  /** PBKDF2 iterations for new verifiers (default 4096, RFC 7677's minimum). */
  iterations?: number;
  /** When given, the JID's domain must be one of these (the node's configured hosts). */
  hosts?: readonly string[];
}

/** Normalise a JID for an account (RFC 7622) and check it belongs to a served host. */
export function accountJid(jid: string, hosts?: readonly string[]): string {
  const bare = checkBareJid(jid);
  if (typeof bare !== 'string') throw new AccountError(`invalid JID ${JSON.stringify(jid)}: ${bare.problem}`);
  const domain = bare.slice(bare.lastIndexOf('@') + 1);
  if (hosts && !hosts.includes(domain)) {
    throw new AccountError(`${bare}: ${domain} is not a host of this server (hosts: ${hosts.join(', ')})`);
  }
  return bare;
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password === '') throw new AccountError('the password is empty');
}

function checkIterations(n: number | undefined): number {
  const it = n ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(it) || it < 4096 || it > 10_000_000) {
    throw new AccountError(`iterations must be an integer from 4096 (RFC 7677) to 10000000, got ${n}`);
  }
  return it;
}

/** Verifiers for every hash, derived in parallel on the PBKDF2 pool (src/sasl/pbkdf2-pool.ts). */
async function derive(password: string, iterations: number): Promise<Record<HashName, ScramCredentialsJson>> {
  let all: ScramCredentials[];
  try {
    all = await Promise.all(ACCOUNT_HASHES.map((h) => deriveCredentials(password, h, iterations)));
  } catch (e) {
    // SASLprep (RFC 4013) refuses prohibited or unassigned characters.
    throw new AccountError(`the password cannot be used: ${(e as Error).message}`);
  }
  const out = {} as Record<HashName, ScramCredentialsJson>;
  ACCOUNT_HASHES.forEach((h, i) => (out[h] = credentialsToJson(all[i]!)));
  return out;
}

async function readRecord(db: AnyDb, bare: string): Promise<AccountRecord | undefined> {
  return (await db.get(keys.acct(bare), JSON_VALUES)) as AccountRecord | undefined;
}

/** Create an account; fails if it exists. Returns the normalised bare JID. */
export async function createAccount(db: AnyDb, jid: string, password: string, opts: AccountOptions = {}): Promise<string> {
  const bare = accountJid(jid, opts.hosts);
  checkPassword(password);
  const iterations = checkIterations(opts.iterations);
  if (await readRecord(db, bare)) throw new AccountError(`account ${bare} already exists`);
  const record: AccountRecord = { scram: await derive(password, iterations), created: new Date().toISOString() };
  await db.put(keys.acct(bare), record, JSON_VALUES);
  return bare;
}

/** Replace an existing account's verifiers (new salts); keeps its creation time. */
export async function setPassword(db: AnyDb, jid: string, password: string, opts: AccountOptions = {}): Promise<string> {
  const bare = accountJid(jid);
  const old = await readRecord(db, bare);
  if (!old) throw new AccountError(`no account ${bare}`);
  await db.put(keys.acct(bare), await withPassword(old, password, opts.iterations), JSON_VALUES);
  await revokeTokens(kvStorage(db), bare); // FAST tokens got with the old password go with it
  return bare;
}

/** An account record with new verifiers for `password` (new salts), its creation time kept: what a
 *  password change stores, wherever it is made (the CLI, or a client over XEP-0077). */
export async function withPassword(old: AccountRecord, password: string, iterations?: number): Promise<AccountRecord> {
  checkPassword(password);
  return { ...old, scram: await derive(password, checkIterations(iterations)) };
}

/**
 * Delete an account. Its record goes first (no new login can start), then `cleanUp` removes what
 * the feature modules stored for it (their `user/deleted` hooks): this file names no feature.
 */
export async function deleteAccount(db: AnyDb, jid: string, cleanUp: (bare: string) => Promise<void>): Promise<{ jid: string }> {
  const bare = accountJid(jid);
  if (!(await readRecord(db, bare))) throw new AccountError(`no account ${bare}`);
  await db.del(keys.acct(bare));
  await revokeTokens(kvStorage(db), bare);
  await cleanUp(bare);
  return { jid: bare };
}

/** Gives an existing account a role, or takes it away (`given` false); kept in its record, so it goes
 *  with the account and a password change keeps it. */
export async function setRole(storage: Pick<Storage, 'get' | 'put'>, bare: string, role: Role, given = true): Promise<Role[]> {
  const rec = await storage.get<AccountRecord>(keys.acct(bare));
  if (!rec) throw new AccountError(`no account ${bare}`);
  const roles: Role[] = (rec.roles ?? []).filter((r) => r !== role);
  if (given) roles.push(role);
  await storage.put(keys.acct(bare), { ...rec, roles });
  return roles;
}

/** An account's roles; AccountError when there is no such account. */
export async function accountRoles(storage: Pick<Storage, 'get'>, bare: string): Promise<Role[]> {
  const rec = await storage.get<AccountRecord>(keys.acct(bare));
  if (!rec) throw new AccountError(`no account ${bare}`);
  return rec.roles ?? [];
}

export async function hasRole(storage: Pick<Storage, 'get'>, bare: string, role: Role): Promise<boolean> {
  return (await storage.get<AccountRecord>(keys.acct(bare)))?.roles?.includes(role) ?? false;
}

/** Bare JIDs of all accounts, in key order; only those of `host` when given. */
export async function listAccounts(db: AnyDb, host?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const key of db.keys(range(PREFIX.acct))) {
    const bare = keys.acctJid(key);
    if (host === undefined || bare.slice(bare.lastIndexOf('@') + 1) === host) out.push(bare);
  }
  return out;
}

/** One hash's verifier for an account, as bytes; undefined when there is no such account. */
export async function getCredentials(db: AnyDb, bare: string, hash: HashName): Promise<ScramCredentials | undefined> {
  const rec = await readRecord(db, bare);
  const c = rec?.scram?.[hash];
  return c ? credentialsFromJson(c) : undefined;
}

/**
 * A SASL credential lookup for one host: the SASL username is a localpart, normalised like a JID's
 * (so "Juliet" logs into juliet@host).
 */
export function accountLookup(db: AnyDb, host: string): CredentialLookup {
  return async (username) => {
    let local: string;
    try {
      local = prepareLocalpart(username);
    } catch {
      return undefined;
    }
    const rec = await readRecord(db, `${local}@${host}`);
    return rec ? ({ scram: rec.scram, username: local } satisfies StoredCredentials) : undefined;
  };
}

export interface ImportResult {
  imported: number;
  /** Lines that were not imported, by 1-based line number; the good lines are imported regardless. */
  failed: { line: number; error: string }[];
}

export interface ImportOptions extends AccountOptions {
  /** Accounts written per LevelDB batch. */
  batchSize?: number;
}

/**
 * Import `JID PASSWORD` lines (the password is the rest of the line after the first run of spaces;
 * blank lines and `#` comments are skipped), or `{ jid, password }` objects. Derivation runs in
 * parallel; writes go in batches. Bad lines are reported, not fatal.
 */
export async function importAccounts(db: AnyDb, lines: Iterable<string | { jid: string; password: string }>,
  opts: ImportOptions = {}): Promise<ImportResult> {
  const iterations = checkIterations(opts.iterations);
  const batchSize = opts.batchSize ?? 500;
  const failed: ImportResult['failed'] = [];
  const todo: { line: number; bare: string; password: string }[] = [];
  const firstLine = new Map<string, number>();

  let n = 0;
  for (const entry of lines) {
    n++;
    let jid: string, password: string;
    if (typeof entry === 'string') {
      const text = entry.replace(/\r$/, '');
      if (/^\s*(#|$)/.test(text)) continue;
      const m = /^\s*(\S+)\s+(.+)$/.exec(text);
      if (!m) {
        failed.push({ line: n, error: 'expected "JID PASSWORD"' });
        continue;
      }
      [jid, password] = [m[1]!, m[2]!];
    } else ({ jid, password } = entry);
    try {
      const bare = accountJid(jid, opts.hosts);
      checkPassword(password);
      const seen = firstLine.get(bare);
      if (seen !== undefined) throw new AccountError(`${bare} is already on line ${seen}`);
      firstLine.set(bare, n);
      todo.push({ line: n, bare, password });
    } catch (e) {
      if (!(e instanceof AccountError)) throw e;
      failed.push({ line: n, error: e.message });
    }
  }

  let imported = 0;
  const created = new Date().toISOString();
  // Enough in flight to keep the PBKDF2 pool busy without holding every record in memory.
  const lanes = Math.max(8, availableParallelism() * 4);
  for (let start = 0; start < todo.length; start += batchSize) {
    const chunk = todo.slice(start, start + batchSize);
    const exists = await db.getMany(chunk.map((a) => keys.acct(a.bare)), JSON_VALUES);
    const fresh = chunk.filter((a, i) => {
      if (exists[i] === undefined) return true;
      failed.push({ line: a.line, error: `account ${a.bare} already exists` });
      return false;
    });
    const records: ({ key: string; value: AccountRecord } | undefined)[] = new Array(fresh.length);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(lanes, fresh.length) }, async () => {
      while (next < fresh.length) {
        const i = next++;
        const a = fresh[i]!;
        try {
          records[i] = { key: keys.acct(a.bare), value: { scram: await derive(a.password, iterations), created } };
        } catch (e) {
          if (!(e instanceof AccountError)) throw e;
          failed.push({ line: a.line, error: `${a.bare}: ${e.message}` });
        }
      }
    }));
    const ops = records.filter((r) => r !== undefined).map((r) => ({ type: 'put' as const, ...r }));
    if (ops.length) await db.batch(ops, JSON_VALUES);
    imported += ops.length;
  }
  failed.sort((a, b) => a.line - b.line);
  return { imported, failed };
}
