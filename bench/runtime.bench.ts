// Runtime micro-benchmarks (issue: actor runtime). Run: `npx chorus bench runtime` or
// `node --import tsx bench/runtime.bench.ts [--quick]`. Prints a table and writes bench/results/.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { startRuntime, type RunningRuntime } from '../src/runtime/node.ts';
import { placeAddress } from '../src/runtime/address.ts';
import { nodeTree } from '../supervisors/tree.ts';

const ACTORS = fileURLToPath(new URL('./actors', import.meta.url));
const quick = process.argv.includes('--quick');
const scale = quick ? 0.1 : 1;
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const want = (name: string) => !only || only.split(',').includes(name);

interface Row { name: string; value: number; unit: string; note?: string }
const rows: Row[] = [];
const record = (name: string, value: number, unit: string, note?: string) => {
  rows.push({ name, value, unit, note });
  console.log(`${name.padEnd(48)} ${Math.round(value).toLocaleString('en').padStart(12)} ${unit}${note ? `  (${note})` : ''}`);
};

async function withNode<T>(schedulers: number, fn: (n: RunningRuntime, wait: (pred: (m: any) => boolean) => Promise<any>) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const node = await startRuntime({ dataDir: dir, schedulers, actorDirs: [ACTORS], tree: nodeTree, log: (l, t) => { if (l === 'error') console.error(t); } });
  const waiters: Array<{ pred: (m: any) => boolean; resolve: (m: any) => void }> = [];
  node.runtime.registerEndpoint('conn:bench', (m) => {
    const i = waiters.findIndex((w) => w.pred(m));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  const wait = (pred: (m: any) => boolean) => new Promise<any>((resolve) => waiters.push({ pred, resolve }));
  try { return await fn(node, wait); } finally { await node.stop(); rmSync(dir, { recursive: true, force: true }); }
}

/** Two addresses of `kind` on the same scheduler (same = true) or on different ones. */
function pair(kind: string, same: boolean, schedulers = 2, salt = ''): [string, string] {
  const a = `${kind}:a${salt}`;
  for (let i = 0; ; i++) {
    const b = `${kind}:b${salt}${i}`;
    if ((placeAddress(a, schedulers) === placeAddress(b, schedulers)) === same) return [a, b];
  }
}

async function blast(same: boolean, durable: boolean, n: number): Promise<number> {
  return withNode(2, async (node, wait) => {
    const [from, to] = pair(durable ? 'blaster' : 'blaster', same);
    const counter = pair('counter', true, 2, '').find(() => true)!;
    void counter;
    const sink = same ? findOn('counter', placeAddress(from, 2)) : findOn('counter', 3 - placeAddress(from, 2));
    void to;
    node.runtime.send(sink, { type: 'expect', n, report: 'conn:bench' });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const done = wait((m) => m.type === 'counted');
    node.runtime.send(from, { type: 'blast', to: sink, n, durable });
    await done;
    return n / ((performance.now() - t0) / 1000);
  });
}

function findOn(kind: string, thread: number): string {
  for (let i = 0; ; i++) if (placeAddress(`${kind}:${i}`, 2) === thread) return `${kind}:${i}`;
}

/** `colocated`: both ends of a pair share a placement key (as a user's actor and its sessions do). */
async function pingPong(schedulers: number, pairs: number, rounds: number, window: number, colocated: boolean): Promise<number> {
  return withNode(schedulers, async (node, wait) => {
    const t0 = performance.now();
    const dones = [];
    for (let p = 0; p < pairs; p++) {
      dones.push(wait((m) => m.type === 'done'));
      const [x, y] = colocated ? [`pp:p${p}/x`, `pp:p${p}/y`] : [`pp:x${p}`, `pp:y${p}`];
      node.runtime.send(x, { type: 'start', peer: y, rounds, window, report: 'conn:bench' });
    }
    // Each waiter takes the first 'done' left; count them all.
    for (const d of dones) await d;
    return (pairs * rounds * 2) / ((performance.now() - t0) / 1000);
  });
}

async function actorsAndReload(n: number): Promise<void> {
  await withNode(2, async (node) => {
    const base = await node.runtime.stats(false, undefined, true);
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    let reports = 0;
    const all = new Promise<void>((resolve) => node.runtime.registerEndpoint('conn:reports', () => { if (++reports === n) resolve(); }));
    for (let i = 0; i < n; i++) {
      node.runtime.send(`idle:u${i}`, { type: 'bind', jid: `u${i}@example.com/phone` });
      node.runtime.send(`idle:u${i}`, { type: 'report', to: 'conn:reports' });
    }
    await all;
    record('actor activation (on-demand start + 2 msgs)', n / ((performance.now() - t0) / 1000), 'actors/s', `${n} actors`);
    const after = await node.runtime.stats(false, undefined, true);
    const heap = after.reduce((s, x) => s + x.heapUsed, 0) - base.reduce((s, x) => s + x.heapUsed, 0);
    record('heap per idle actor (xstate actor + mailbox)', heap / n, 'bytes', 'schedulers heap after full GC');
    record('process RSS per idle actor', (process.memoryUsage().rss - rss0) / n, 'bytes');
    const t1 = performance.now();
    const res = await node.runtime.reload('idle');
    record(`hot reload of ${n} live actors`, performance.now() - t1, 'ms', `moved ${res.reduce((s, r) => s + r.actors, 0)}`);

    const t2 = performance.now();
    const m = Math.round(n / 5);
    for (let i = 0; i < m; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, m - i) }, (_, j) => node.runtime.spawn(`idle:s${i + j}`)));
    }
    record('supervised spawn (via the kind\'s supervisor)', m / ((performance.now() - t2) / 1000), 'actors/s', `${m} actors, 500 concurrent`);
  });
}

/** Heap after repeated reloads of one kind, sampled every 50: it must level off (old code is collected). */
async function reloadLeak(times: number): Promise<void> {
  await withNode(1, async (node) => {
    for (let i = 0; i < 200; i++) node.runtime.send(`idle:r${i}`, { type: 'touch' });
    await node.runtime.reload('idle');
    const heap = async () => (await node.runtime.stats(false, undefined, true))[0]!.heapUsed;
    const samples = [await heap()];
    for (let i = 1; i <= times; i++) {
      await node.runtime.reload('idle');
      if (i % 50 === 0) samples.push(await heap());
    }
    const kib = samples.map((h) => Math.round(h / 1024));
    record(`heap after ${times} reloads of a kind with 200 live actors`, (samples.at(-1)! - samples[0]!) / 1024, 'KiB growth', `every 50: ${kib.join(' → ')} KiB`);
  });
}

console.log(`Chorus runtime benchmarks — Node ${process.version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB${quick ? ' (quick)' : ''}\n`);
const N = Math.round(200_000 * scale);
if (want('messages')) {
const D = Math.round(50_000 * scale);
record('messages/s, same thread', await blast(true, false, N), 'msg/s', `${N} msgs actor->actor`);
record('messages/s, cross thread', await blast(false, false, N), 'msg/s', `${N} msgs actor->actor`);
record('durable messages/s, same thread', await blast(true, true, D), 'msg/s', `${D} msgs, LevelDB group commit`);
record('durable messages/s, cross thread', await blast(false, true, D), 'msg/s', `${D} msgs`);
}
const pairs = 64, rounds = Math.round(4000 * scale);
if (want('schedulers')) for (const colocated of [true, false]) {
  const what = colocated ? 'pairs co-located' : 'pairs split at random';
  const one = await pingPong(1, pairs, rounds, 8, colocated);
  const two = await pingPong(2, pairs, rounds, 8, colocated);
  record(`ping-pong, ${what}, 1 scheduler`, one, 'msg/s', `${pairs} pairs x ${rounds} rounds, window 8`);
  record(`ping-pong, ${what}, 2 schedulers`, two, 'msg/s');
  record(`  speed-up 2 vs 1 (${what})`, (two / one) * 100, '%');
}
if (want('actors')) await actorsAndReload(Math.round(10_000 * (quick ? 0.2 : 1)));
if (want('reload')) await reloadLeak(quick ? 50 : 300);

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const dir = fileURLToPath(new URL('./results', import.meta.url));
mkdirSync(dir, { recursive: true });
const md = [
  `# Runtime benchmarks ${new Date().toISOString()}`, '',
  `Command: \`node --import tsx bench/runtime.bench.ts${quick ? ' --quick' : ''}\``,
  `Machine: ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`, '',
  '| benchmark | value | unit | note |', '|---|---:|---|---|',
  ...rows.map((r) => `| ${r.name} | ${Math.round(r.value).toLocaleString('en')} | ${r.unit} | ${r.note ?? ''} |`), '',
].join('\n');
if (!quick) {
  writeFileSync(join(dir, `runtime-${stamp}.md`), md);
  writeFileSync(join(dir, `runtime-${stamp}.json`), JSON.stringify({ when: new Date().toISOString(), node: process.version, rows }, null, 2));
}
process.exit(0);
