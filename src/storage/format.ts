// The storage format's version, kept in the database itself (`meta!format`): a node refuses a
// data_dir written by a newer Chorus (it would misread it) and brings an older one up to date at
// start, one step at a time, before anything else reads it. Format 1 is the layout of
// docs/ARCHITECTURE.md's storage table; a database without the key (written before versioning) has
// that layout already, so its step writes the key only.
import type { AnyDb } from './db.ts';
import { OperatorError } from '../operator-error.ts';

export const STORAGE_FORMAT = 1;
const FORMAT_KEY = 'meta!format';

/** MIGRATIONS[n] brings format n to n + 1. */
const MIGRATIONS: Array<(db: AnyDb) => Promise<void>> = [
  async () => { /* 0 → 1: the same layout, now versioned */ },
];

/** Checks and, if older, migrates the database; returns the format it had. */
export async function upgradeStorage(db: AnyDb, log: (text: string) => void = () => undefined): Promise<number> {
  const stored = await db.get(FORMAT_KEY, { valueEncoding: 'json' }) as number | undefined;
  // No key: an empty database is new; one with data was written before versioning (format 0).
  let format = stored ?? STORAGE_FORMAT;
  if (stored === undefined) for await (const _ of db.keys({ limit: 1 })) { void _; format = 0; }
  if (format > STORAGE_FORMAT) {
    throw new OperatorError(`the database was written by a newer Chorus (storage format ${format}; this one reads up to ${STORAGE_FORMAT})`,
      'run the newer Chorus again, or restore a backup made for this one (chorus restore DIR)');
  }
  for (let f = format; f < STORAGE_FORMAT; f++) {
    await MIGRATIONS[f]!(db);
    log(`storage: format ${f} brought to ${f + 1}`);
  }
  if (stored !== STORAGE_FORMAT) await db.put(FORMAT_KEY, STORAGE_FORMAT, { valueEncoding: 'json' });
  return format;
}
