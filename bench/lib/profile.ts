// Summarises V8 .cpuprofile files (node --cpu-prof: one per thread) by self time: the top functions
// and files of each thread, and of all threads together. Usage:
//   node --import tsx bench/lib/profile.ts [--top N] FILE.cpuprofile…
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

export interface ProfileSummary {
  totalMs: number;
  /** Non-idle time: everything except (idle). */
  busyMs: number;
  functions: Array<{ name: string; where: string; ms: number }>;
  /** Time with the function anywhere on the stack (each sample counted once per function). */
  inclusive: Array<{ name: string; where: string; ms: number }>;
  files: Array<{ file: string; ms: number }>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function where(cf: CallFrame): string {
  if (!cf.url) return '';
  let u = cf.url;
  try { if (u.startsWith('file://')) u = relative(ROOT, fileURLToPath(u)); } catch { /* keep the URL */ }
  // A pinned revision (chorus ref=…) runs from the bench state dir: show its paths as in the repo.
  return u.replace(/^.*\/chorus-src\/[0-9a-f]{40}\//, '');
}

/** Self time per function and per file, from the samples (µs deltas), largest first. */
export function summarise(p: CpuProfile): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = p.samples ?? [], deltas = p.timeDeltas ?? [];
  // A sample's delta is the time until the next sample; attribute it to the node sampled.
  for (let i = 0; i < samples.length; i++) self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? 0));
  const fn = new Map<string, { name: string; where: string; ms: number }>();
  const files = new Map<string, number>();
  let total = 0, idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    const ms = us / 1000;
    total += ms;
    if (cf.functionName === '(idle)') idle += ms;
    const w = where(cf);
    const name = cf.functionName || '(anonymous)';
    const key = `${name}\0${w}:${cf.lineNumber}`;
    // tsx-compiled TypeScript has no useful line numbers (line 1): show the file alone then.
    const e = fn.get(key) ?? { name, where: w ? `${w}${cf.lineNumber > 0 ? `:${cf.lineNumber + 1}` : ''}` : '', ms: 0 };
    e.ms += ms;
    fn.set(key, e);
    const file = w || name;
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  // Inclusive: walk each sampled node's ancestors, counting each function once per stack.
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inc = new Map<string, { name: string; where: string; ms: number }>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      if (cf.functionName === '(root)' || cf.functionName === '(idle)') continue;
      const w = where(cf), name = cf.functionName || '(anonymous)';
      const key = `${name}\0${w}:${cf.lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = inc.get(key) ?? { name, where: w ? `${w}${cf.lineNumber > 0 ? `:${cf.lineNumber + 1}` : ''}` : '', ms: 0 };
      e.ms += us / 1000;
      inc.set(key, e);
    }
  }
  return {
    totalMs: total, busyMs: total - idle,
    functions: [...fn.values()].sort((a, b) => b.ms - a.ms),
    inclusive: [...inc.values()].sort((a, b) => b.ms - a.ms),
    files: [...files].map(([file, ms]) => ({ file, ms })).sort((a, b) => b.ms - a.ms),
  };
}

function merge(list: ProfileSummary[]): ProfileSummary {
  const fn = new Map<string, { name: string; where: string; ms: number }>(), inc = new Map<string, { name: string; where: string; ms: number }>(), files = new Map<string, number>();
  let total = 0, busy = 0;
  const add = (m: typeof fn, f: { name: string; where: string; ms: number }) => { const k = `${f.name}\0${f.where}`; const e = m.get(k) ?? { ...f, ms: 0 }; e.ms += f.ms; m.set(k, e); };
  for (const s of list) {
    total += s.totalMs; busy += s.busyMs;
    for (const f of s.functions) add(fn, f);
    for (const f of s.inclusive) add(inc, f);
    for (const f of s.files) files.set(f.file, (files.get(f.file) ?? 0) + f.ms);
  }
  const sorted = (m: typeof fn) => [...m.values()].sort((a, b) => b.ms - a.ms);
  return { totalMs: total, busyMs: busy, functions: sorted(fn), inclusive: sorted(inc), files: [...files].map(([file, ms]) => ({ file, ms })).sort((a, b) => b.ms - a.ms) };
}

/** Markdown: per thread and overall, the top functions and files by self time, as % of busy time. */
export function profileMarkdown(named: Array<{ name: string; summary: ProfileSummary }>, top = 25): string {
  const L: string[] = [];
  const pct = (ms: number, of: number) => of > 0 ? `${(ms / of * 100).toFixed(1)}%` : '–';
  const section = (title: string, s: ProfileSummary) => {
    L.push(`## ${title}`, '', `Sampled ${(s.totalMs / 1000).toFixed(1)} s, busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s.`, '');
    L.push('| self ms | % of busy | function | where |', '|---:|---:|---|---|');
    for (const f of s.functions.filter((x) => x.name !== '(idle)').slice(0, top)) L.push(`| ${Math.round(f.ms)} | ${pct(f.ms, s.busyMs)} | \`${f.name.replace(/\|/g, '\\|')}\` | ${f.where.replace(/\|/g, '\\|')} |`);
    L.push('', '| total ms (self + callees) | % of busy | function | where |', '|---:|---:|---|---|');
    for (const f of s.inclusive.filter((x) => !x.where.startsWith('node:') && x.name !== '(program)').slice(0, top)) L.push(`| ${Math.round(f.ms)} | ${pct(f.ms, s.busyMs)} | \`${f.name.replace(/\|/g, '\\|')}\` | ${f.where.replace(/\|/g, '\\|')} |`);
    L.push('', '| self ms | % of busy | file |', '|---:|---:|---|');
    for (const f of s.files.filter((x) => x.file !== '(idle)').slice(0, Math.ceil(top / 2))) L.push(`| ${Math.round(f.ms)} | ${pct(f.ms, s.busyMs)} | ${f.file.replace(/\|/g, '\\|')} |`);
    L.push('');
  };
  if (named.length > 1) section('All threads', merge(named.map((n) => n.summary)));
  for (const n of named.slice().sort((a, b) => b.summary.busyMs - a.summary.busyMs)) section(`Thread ${n.name}`, n.summary);
  return L.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  let top = 25;
  const i = args.indexOf('--top');
  if (i >= 0) { top = Number(args[i + 1]) || top; args.splice(i, 2); }
  if (!args.length) { process.stderr.write('usage: node --import tsx bench/lib/profile.ts [--top N] FILE.cpuprofile…\n'); process.exit(2); }
  const named = args.map((f) => ({ name: basename(f), summary: summarise(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile) }));
  process.stdout.write(profileMarkdown(named, top) + '\n');
}
