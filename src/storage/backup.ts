// Backups of a node's data: its LevelDB copied through one iterator (LevelDB reads an iterator from a
// snapshot taken when it opens, so a running node's writes meanwhile are either all in or all out),
// into a LevelDB of its own under DIR, with the node's secret (what FAST tokens, fake SCRAM salts
// and dialback keys are made from). Restore puts both in place of a stopped node's, keeping what
// was there beside it. Shared files (upload/) are plain files: copy them with the tools for that.
import { cp, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { OperatorError } from '../operator-error.ts';
import type { AnyDb } from './db.ts';

const FORMAT = 1;
const BATCH = 1000;

export interface BackupInfo { format: number; created: string; entries: number; bytes: number }

async function emptyOrMissing(dir: string): Promise<boolean> {
  return !existsSync(dir) || (await readdir(dir)).length === 0;
}

/** Copies `db` (open, maybe a running node's) and the node's secret into `dir`, which must be empty. */
export async function backupDb(db: AnyDb, dataDir: string, dir: string): Promise<BackupInfo & { dir: string }> {
  if (!(await emptyOrMissing(dir))) throw new OperatorError(`${dir} is not empty: a backup goes into a new directory`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const out = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await out.open();
  let entries = 0, bytes = 0;
  try {
    let batch = out.batch();
    for await (const [key, value] of db.iterator({ keyEncoding: 'utf8', valueEncoding: 'utf8' }) as AsyncIterable<[string, string]>) {
      batch.put(key, value);
      entries++;
      bytes += key.length + value.length;
      if (batch.length >= BATCH) { await batch.write(); batch = out.batch(); }
    }
    await batch.write();
  } finally {
    await out.close();
  }
  const secret = join(dataDir, 'secret');
  if (existsSync(secret)) await writeFile(join(dir, 'secret'), await readFile(secret), { mode: 0o600 });
  const info: BackupInfo = { format: FORMAT, created: new Date().toISOString(), entries, bytes };
  await writeFile(join(dir, 'backup.json'), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  return { ...info, dir };
}

/** What a backup directory says of itself; OperatorError when it is none. */
export async function readBackup(dir: string): Promise<BackupInfo> {
  let info: BackupInfo;
  try { info = JSON.parse(await readFile(join(dir, 'backup.json'), 'utf8')) as BackupInfo; } catch {
    throw new OperatorError(`${dir} is not a Chorus backup (no readable backup.json)`);
  }
  if (info.format !== FORMAT) throw new OperatorError(`${dir} is a backup in format ${info.format}; this Chorus reads format ${FORMAT}`);
  if (!existsSync(join(dir, 'db'))) throw new OperatorError(`${dir} has no db/: the backup is incomplete`);
  return info;
}

/** Puts a backup in place of a stopped node's database and secret; what was there is kept beside
 *  them (db.before-restore-<time>, secret.before-restore-<time>). */
export async function restoreDb(dataDir: string, dir: string): Promise<BackupInfo & { kept: string[] }> {
  const info = await readBackup(dir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const kept: string[] = [];
  for (const name of ['db', 'secret']) {
    const here = join(dataDir, name);
    if (existsSync(here)) { await rename(here, `${here}.before-restore-${stamp}`); kept.push(`${here}.before-restore-${stamp}`); }
  }
  await cp(join(dir, 'db'), join(dataDir, 'db'), { recursive: true });
  if (existsSync(join(dir, 'secret'))) await cp(join(dir, 'secret'), join(dataDir, 'secret'));
  return { ...info, kept };
}
