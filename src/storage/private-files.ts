// Everything in data_dir is secret (SCRAM verifiers, offline messages, TLS keys, the server secret,
// the admin socket), so Chorus keeps it owner-only: a process umask of 077 makes every file, LevelDB
// directory, certificate and socket private from the moment it is created, and data_dir itself
// must be 0700 — an existing one that is group- or world-accessible is fixed, or the node refuses.
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, relative } from 'node:path';

export const PRIVATE_UMASK = 0o077;

/** data_dir is open to other users and cannot be fixed: `chorus start` prints the message and exits 1. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
}

/** This process's user name for advice (the uid when it has none). */
function userName(uid: number | undefined): string {
  try { return userInfo().username; } catch { return String(uid ?? '$(id -un)'); }
}

/** Octal permission bits, e.g. "755". */
export const modeString = (mode: number): string => (mode & 0o777).toString(8).padStart(3, '0');

/** Make this process create everything owner-only. Main thread only (workers may not set the umask). */
export function usePrivateUmask(): void {
  if (process.platform !== 'win32') process.umask(PRIVATE_UMASK);
}

/**
 * Create data_dir 0700, or make an existing one 0700: a group- or world-accessible one is chmod'ed
 * (with a warning) when this process owns it (or is root); otherwise this throws, naming the fix.
 * `uid` is the process's, a parameter only so tests can pretend not to own the directory.
 */
export function ensurePrivateDataDir(dir: string, log: (level: string, text: string) => void,
  uid: number | undefined = process.getuid?.()): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'a read-only file system' : code === 'ENOTDIR' ? 'a part of its path is a file' : code ?? (e as Error).message;
    throw new DataDirError(`data_dir ${dir} cannot be created (${why}); create it for the node's user: ` +
      `sudo mkdir -p ${dir} && sudo chown ${userName(uid)} ${dir} && sudo chmod 700 ${dir}`);
  }
  if (process.platform === 'win32') return;
  const st = statSync(dir);
  if (!st.isDirectory()) throw new DataDirError(`data_dir ${dir} is not a directory`);
  const old = st.mode & 0o777;
  if (!(old & 0o077)) return;
  const refuse = (why: string) => new DataDirError(
    `data_dir ${dir} has mode ${modeString(old)}: other users could read password verifiers, keys and offline messages, ` +
    `and ${why}; make it private with: chmod 700 ${dir}`);
  if (uid !== st.uid && uid !== 0) {
    // Not ours to chmod: it needs its owner, or to become ours.
    throw new DataDirError(`data_dir ${dir} has mode ${modeString(old)}: other users could read password verifiers, keys and offline messages, ` +
      `and it belongs to uid ${st.uid}, not to this process (uid ${uid ?? '?'}); run chorus as its owner, or make it this user's: ` +
      `sudo chown -R ${userName(uid)} ${dir} && chmod 700 ${dir}`);
  }
  try {
    chmodSync(dir, 0o700);
  } catch (e) {
    throw refuse(`chmod failed (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  log('warn', `chorus: data_dir ${dir} had mode ${modeString(old)}, open to other users; changed it to 700`);
}

/**
 * Entries under `dir` (recursively, not following symlinks) with any group or other permission
 * bits, as paths relative to `dir` with their mode; at most `cap` of them, and how many in all.
 */
export function openEntries(dir: string, cap = 5): { entries: Array<{ path: string; mode: string }>; total: number } {
  const entries: Array<{ path: string; mode: string }> = [];
  let total = 0;
  const walk = (at: string) => {
    let names: string[];
    try { names = readdirSync(at); } catch { return; }
    for (const name of names.sort()) {
      const path = join(at, name);
      let st;
      try { st = lstatSync(path); } catch { continue; }
      if (st.isSymbolicLink()) continue; // a link's own mode means nothing
      if (st.mode & 0o077) {
        total++;
        if (entries.length < cap) entries.push({ path: relative(dir, path), mode: modeString(st.mode) });
      }
      if (st.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return { entries, total };
}
