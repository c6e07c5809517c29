// Server-side figures from /proc: CPU (utime+stime, all threads, plus live descendants and reaped
// children) and RSS of a process tree. CPU seconds used, not wall time, is what stays comparable when
// the load generator and the server share a busy machine.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond = 100;
try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { /* Linux default */ }

export interface ProcStat { pid: number; ppid: number; utime: number; stime: number; cutime: number; cstime: number; rssKB: number; comm: string }

/** Parses /proc/<pid>/stat (comm may contain spaces and parentheses, so split after the last ')'). */
export function readStat(pid: number): ProcStat | null {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // fields from 3 (state) on: ppid=4, utime=14, stime=15, cutime=16, cstime=17, rss=24 (pages)
  const pageKB = 4;
  return {
    pid, comm, ppid: +f[1], utime: +f[11], stime: +f[12], cutime: +f[13], cstime: +f[14], rssKB: +f[21] * pageKB,
  };
}

/** RSS in KB from /proc/<pid>/status (VmRSS), which does not depend on the page size guess. */
export function readRssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? +m[1] : 0;
  } catch { return 0; }
}

/** The PIDs given and all their live descendants. */
export function processTree(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  let all: string[] = [];
  try { all = readdirSync('/proc'); } catch { return roots; }
  for (const name of all) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readStat(+name);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(st.pid); else children.set(st.ppid, [st.pid]);
  }
  const out: number[] = [];
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    for (const k of children.get(p) ?? []) stack.push(k);
  }
  return out;
}

export interface TreeSample { at: number; cpuS: number; rssKB: number; pids: number; alive: boolean }

/** One reading of a tree: CPU seconds (own + reaped children) and summed RSS. */
export function sampleTree(roots: number[]): TreeSample {
  let ticks = 0, rssKB = 0, n = 0, alive = false;
  const rootSet = new Set(roots);
  for (const pid of processTree(roots)) {
    const st = readStat(pid);
    if (!st) continue;
    n++;
    if (rootSet.has(pid)) alive = true;
    ticks += st.utime + st.stime;
    // Children already reaped are folded into their parent's cutime/cstime; count them at the roots.
    if (rootSet.has(pid)) ticks += st.cutime + st.cstime;
    rssKB += readRssKB(pid);
  }
  return { at: Date.now(), cpuS: ticks / ticksPerSecond, rssKB, pids: n, alive };
}

/** Samples a tree at an interval, keeping every reading (for the memory-over-time chart). */
export class ProcSampler {
  samples: TreeSample[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly roots: number[], readonly intervalMs = 1000) {}

  get enabled(): boolean { return this.roots.length > 0; }

  sample(): TreeSample {
    const s = sampleTree(this.roots);
    this.samples.push(s);
    return s;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): TreeSample | null {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.enabled ? this.sample() : null;
  }

  peakRssKB(): number { return this.samples.reduce((m, s) => Math.max(m, s.rssKB), 0); }
}

export { ticksPerSecond };

/** CPU seconds the whole machine has spent busy (every core; user, nice, system, irq, softirq, steal),
 *  from /proc/stat: minus the server's and the generator's, it is what other processes took. */
export function machineBusyS(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
    const busy = f[0]! + f[1]! + f[2]! + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / ticksPerSecond;
  } catch { return 0; }
}
