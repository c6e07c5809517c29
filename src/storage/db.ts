// The node's one LevelDB (docs/CONVENTIONS.md, "Storage"): opening it and building its keys.
// Keys are `!`-separated; JIDs and addresses go through escapeKeyPart so a `!` inside a localpart can
// never split a key. Values are JSON unless noted.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';

/** The DB as this module opens it (utf8 keys, JSON values). */
export type Db = Level<string, unknown>;
/**
 * Any open handle on the node's DB, whatever its default value encoding (the runtime opens its own
 * with utf8 values). Storage functions pass `valueEncoding: 'json'` per call so either works.
 */
export type AnyDb = Level<string, any>;

export const JSON_VALUES = { valueEncoding: 'json' } as const;

/**
 * Open (creating if needed) `<dataDir>/db`. `multithreading: true` lets scheduler worker threads open
 * the same DB in this process; another process still gets LEVEL_LOCKED (see isLockedError).
 */
export async function openDb(dataDir: string): Promise<Db> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const db = new Level<string, unknown>(join(dataDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'json' });
  await db.open({ multithreading: true });
  return db;
}

/** True when open failed because another process (normally a running node) holds the DB's lock. */
export function isLockedError(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'LEVEL_LOCKED') return true;
    // LevelDB's own message when the LOCK file is held (classic-level does not always set the code).
    if (/lock .*(temporarily unavailable|already held)/i.test(String((e as Error).message ?? ''))) return true;
  }
  return false;
}

/** Makes a string safe as one `!`-separated LevelDB key part (JIDs may contain `!`). Injective. */
export function escapeKeyPart(s: string): string {
  return s.includes('!') || s.includes('%') ? s.replace(/[%!]/g, (c) => (c === '%' ? '%25' : '%21')) : s;
}

export function unescapeKeyPart(s: string): string {
  return s.includes('%') ? s.replace(/%2[51]/g, (c) => (c === '%25' ? '%' : '!')) : s;
}

const part = escapeKeyPart;

/** A durable mailbox sequence number (clock-based, microseconds: 17 digits sort until year 5138). */
export const mailboxSeq = (n: number): string => String(n).padStart(17, '0');

/** Key builders for the core's prefixes; a feature module builds its own with keyOf. */
export const keys = {
  acct: (bare: string) => `acct!${part(bare)}`,
  /** An account's FAST tokens for one installation (fast-tokens.ts). */
  fast: (bare: string, installation: string) => `fast!${part(bare)}!${installation}`,
  fastOf: (bare: string) => `fast!${part(bare)}!`,
  /** `seq` from mailboxSeq(). */
  mbox: (address: string, seq: string) => `mbox!${part(address)}!${seq}`,
  mboxOf: (address: string) => `mbox!${part(address)}!`,
  snap: (address: string) => `snap!${part(address)}`,
  dead: (address: string, seq: string) => `dead!${part(address)}!${seq}`,
  /** The address in an `mbox!` or `snap!` key. */
  addressOf: (key: string) => unescapeKeyPart(key.startsWith('mbox!') ? key.slice(5, key.lastIndexOf('!')) : key.slice(key.indexOf('!') + 1)),
  /** The bare JID in an `acct!` key. */
  acctJid: (key: string) => unescapeKeyPart(key.slice('acct!'.length)),
} as const;

/** The core's prefixes; the feature modules declare theirs (their `storage`) and may not take these. */
export const PREFIX = { acct: 'acct!', fast: 'fast!', invite: 'invite!', mbox: 'mbox!', snap: 'snap!', dead: 'dead!' } as const;

/** A key under a prefix a module owns: `prefix!part!…`, each part escaped (a JID may hold a `!`). */
export const keyOf = (prefix: string, ...parts: string[]): string => [prefix, ...parts.map(part)].join('!');
/** The start of every key under `prefix!parts…!`, for Storage.range. */
export const keysUnder = (prefix: string, ...parts: string[]): string => `${keyOf(prefix, ...parts)}!`;

/**
 * Iterator bounds for every key starting with `prefix`. The upper bound is the prefix with its last
 * character incremented, which is correct for UTF-8 byte order (a `\xff` suffix is not: it encodes
 * as C3 BF, below many non-ASCII characters).
 */
export function range(prefix: string): { gte: string; lt: string } {
  const last = prefix.charCodeAt(prefix.length - 1);
  return { gte: prefix, lt: prefix.slice(0, -1) + String.fromCharCode(last + 1) };
}
