// What the CLI can see of other processes on this machine, from /proc (Linux; elsewhere nothing):
// running nodes, and who holds a port. Best effort: another user's processes may be invisible.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

function pids(): string[] {
  try { return readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return []; }
}

const argvOf = (pid: string): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** `node …/chorus.js start …` or `chorus start …`. */
const isChorusStart = (argv: string[]): boolean => {
  const at = argv.findIndex((a) => /(^|\/)chorus(\.js)?$/.test(a));
  return at >= 0 && argv[at + 1] === 'start';
};

export interface RunningNode {
  pid: number;
  cwd: string;
  /** The config file it started with, as `chorus start` finds one (--config, $CHORUS_CONFIG,
   *  /etc/chorus/chorus.yaml, ./chorus.yaml); undefined: the built-in defaults (data in cwd/data). */
  config?: string;
}

/** Other `chorus start` processes on this machine (Linux /proc; elsewhere none are found). */
export function runningNodes(): RunningNode[] {
  const out: RunningNode[] = [];
  for (const d of pids()) {
    if (Number(d) === process.pid) continue;
    try {
      const argv = argvOf(d);
      if (!isChorusStart(argv)) continue;
      const cwd = readlinkSync(`/proc/${d}/cwd`);
      out.push({ pid: Number(d), cwd, config: configOfNode(d, argv, cwd) });
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}

function configOfNode(pid: string, argv: string[], cwd: string): string | undefined {
  const at = (p: string) => (isAbsolute(p) ? p : join(cwd, p));
  const flag = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (flag >= 0) return at(argv[flag]!.includes('=') ? argv[flag]!.slice('--config='.length) : argv[flag + 1] ?? '');
  let env: string | undefined;
  try { env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('CHORUS_CONFIG='))?.slice('CHORUS_CONFIG='.length); } catch { /* not ours to read */ }
  if (env) return at(env);
  for (const f of ['/etc/chorus/chorus.yaml', join(cwd, 'chorus.yaml')]) if (existsSync(f)) return f;
  return undefined;
}

/**
 * The process listening on a TCP port, from /proc (Linux): the socket's inode in /proc/net/tcp{,6},
 * then the process holding that inode. null when it cannot be seen (another user's, or not Linux);
 * `node` when it is a `chorus start`.
 */
export function portHolder(port: number): { pid: number; command: string; node: boolean } | null {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(table, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is IP:PORT in hex; state 0A is LISTEN; the inode is the tenth column.
      if (f[1]?.endsWith(`:${hex}`) && f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const pid of pids()) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let target = '';
      try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (!m || !inodes.has(m[1]!)) continue;
      const argv = argvOf(pid);
      return { pid: Number(pid), command: argv.slice(0, 3).join(' ') || readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), node: isChorusStart(argv) };
    }
  }
  return null;
}
