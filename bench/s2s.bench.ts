// Federation throughput: messages per server-CPU-second over the links between two Chorus nodes
// (a.bench and b.bench, each its own process on loopback, found through s2s.hosts). P pairs: u<i> on
// A and u<i> on B send to each other, each sender keeping W messages in flight (closed loop), for D
// seconds; both nodes' CPU (every thread) from /proc. Every message crosses one s2s link (both
// directions are used, one link each way), and is durable on both sides.
//   node --import tsx bench/s2s.bench.ts [--pairs P] [--inflight W] [--duration D] [--prosody] [--label L]
// --prosody: the second server is Debian's Prosody (b.bench), on 127.0.0.6:5269 beside Chorus on 127.0.0.5.
// Writes bench/results/<stamp>-s2s-<label>.md and .json.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { XmppClient } from './lib/client.ts';
import { anchorScript } from './lib/anchors.ts';
import { sampleTree } from './lib/proc.ts';
import { Histogram, percentilesMs } from './lib/histogram.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const PAIRS = arg('pairs', 50), INFLIGHT = arg('inflight', 5), DURATION = arg('duration', 15);
/** The second server: another Chorus node, or Debian's Prosody (bench/anchors/prosody.sh). */
const PEER = process.argv.includes('--prosody') ? 'prosody' : 'chorus';
const LABEL = (() => { const i = process.argv.indexOf('--label'); return i > 0 ? process.argv[i + 1]! : `chorus-${PEER}`; })();
// With Prosody both servers listen on 5269, each on a loopback address of its own (Prosody finds
// Chorus through a hosts file its resolver reads; it has no static routes).
const CHORUS_IP = PEER === 'prosody' ? '127.0.0.5' : '127.0.0.1', PEER_IP = PEER === 'prosody' ? '127.0.0.6' : '127.0.0.1';
const TARGET = fileURLToPath(new URL('./lib/chorus-target.ts', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
});

interface Node { domain: string; ip: string; c2s: number; pid: number; stop(): Promise<void> }

async function startNode(domain: string, c2s: number, s2s: number, peer: string, peerS2s: number): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), `chorus-s2s-bench-${domain}-`));
  const opts = { port: c2s, domain, accounts: PAIRS, password: 'pw', dataDir: dir, tls: false, iterations: 4096, address: CHORUS_IP, s2s: { port: s2s, hosts: { [peer]: { host: PEER_IP, port: peerS2s } } } };
  const child = spawn(process.execPath, ['--import', 'tsx', TARGET, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => { out += d; const m = /CHORUS_READY PIDS=(\d+)/.exec(out); if (m) resolve(Number(m[1])); });
    child.once('exit', (code) => reject(new Error(`${domain} exited (${code}) before it was ready`)));
  });
  const stop = async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); rmSync(dir, { recursive: true, force: true }); };
  return { domain, ip: CHORUS_IP, c2s, pid, stop };
}

async function startProsody(domain: string, c2s: number, chorusDomain: string): Promise<Node> {
  const state = mkdtempSync(join(tmpdir(), 'chorus-s2s-bench-prosody-'));
  writeFileSync(join(state, 'hosts'), `${CHORUS_IP} ${chorusDomain}\n`);
  const env = { ...process.env, PROSODY_PORT: String(c2s), PROSODY_TLS_PORT: String(await freePort()), BENCH_DOMAIN: domain, BENCH_STATE: state,
    PROSODY_INTERFACE: PEER_IP, PROSODY_S2S_PORT: '5269', PROSODY_HOSTS_FILE: join(state, 'hosts'), PROSODY_SCRAM_ITERATIONS: '4096' };
  const run = anchorScript('prosody', env);
  const out = await run('start', String(PAIRS));
  const pid = Number(/PIDS=(\d+)/.exec(out)![1]);
  return { domain, ip: PEER_IP, c2s, pid, stop: async () => { await run('stop'); rmSync(state, { recursive: true, force: true }); } };
}

async function client(n: Node, user: string): Promise<XmppClient> {
  const c = new XmppClient({ host: n.ip, port: n.c2s, domain: n.domain, username: user, password: 'pw', mechanism: 'PLAIN', resource: 'bench' });
  await c.login();
  c.send('<presence/>');
  return c;
}

const [pa, pb, sa, sb] = [await freePort(), await freePort(), await freePort(), await freePort()];
const [A, B] = PEER === 'prosody'
  ? await Promise.all([startNode('a.bench', pa, 5269, 'b.bench', 5269), startProsody('b.bench', pb, 'a.bench')])
  : await Promise.all([startNode('a.bench', pa, sa, 'b.bench', sb), startNode('b.bench', pb, sb, 'a.bench', sa)]);
let sent = 0, delivered = 0, running = true;
const lat = new Histogram();
try {
  const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => [await client(A, `u${i + 1}`), await client(B, `u${i + 1}`)] as const));
  // Both ends of a pair send to each other; each delivery lets its sender send the next (closed loop).
  const wire = (from: XmppClient, to: XmppClient) => {
    const send = () => {
      if (!running) return;
      sent++;
      from.send(`<message to="${to.jid}" type="chat"><body>${performance.now().toFixed(3)}</body></message>`);
    };
    to.onStanza = (s) => {
      if (!s.startsWith('<message')) return;
      const body = /<body>([^<]*)<\/body>/.exec(s)?.[1];
      if (body === undefined) return;
      delivered++;
      lat.record((performance.now() - Number(body)) * 1000);
      send(); // this delivery lets its sender send the next

    };
    return send;
  };
  const starters = pairs.flatMap(([a, b]) => [wire(a, b), wire(b, a)]);
  // Warm the links (dialback both ways) before measuring.
  for (const s of starters) s();
  await new Promise((r) => setTimeout(r, 3000));
  const cpu0 = sampleTree([A.pid]).cpuS + sampleTree([B.pid]).cpuS;
  const d0 = delivered, t0 = performance.now();
  lat.reset();
  for (let k = 1; k < INFLIGHT; k++) for (const s of starters) s();
  await new Promise((r) => setTimeout(r, DURATION * 1000));
  const cpu1 = sampleTree([A.pid]).cpuS + sampleTree([B.pid]).cpuS;
  const wall = (performance.now() - t0) / 1000;
  const n = delivered - d0;
  running = false;
  await new Promise((r) => setTimeout(r, 3000)); // drain
  const p = percentilesMs(lat);
  const result = {
    when: new Date().toISOString(), peer: PEER, pairs: PAIRS, inflight: INFLIGHT, durationS: DURATION,
    delivered: n, msgPerS: Math.round(n / wall), serverCpuS: +(cpu1 - cpu0).toFixed(2), msgPerServerCpuS: Math.round(n / (cpu1 - cpu0)),
    lost: sent - delivered, latencyMs: { p50: p.p50, p99: p.p99, max: p.max },
  };
  const stamp = result.when.replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const md = [
    `# bench/s2s.bench.ts: federation between Chorus and ${PEER === 'prosody' ? 'Prosody' : 'another Chorus node'}`, '',
    `- When: ${result.when}`, `- Command: \`node --import tsx bench/s2s.bench.ts --pairs ${PAIRS} --inflight ${INFLIGHT} --duration ${DURATION}${PEER === 'prosody' ? ' --prosody' : ''} --label ${LABEL}\``,
    `- Load: ${PAIRS} pairs, u<i>@a.bench ↔ u<i>@b.bench, both directions, ${INFLIGHT} in flight per sender, ${DURATION} s, plain c2s, s2s over TLS (dialback), ${PEER === 'prosody' ? 'Chorus and Debian\'s Prosody on loopback' : 'two node processes on loopback'}`, '',
    '| figure | value |', '|---|---:|',
    `| delivered messages (measured window) | ${n} |`, `| delivered msg/s (wall) | ${result.msgPerS} |`,
    `| server CPU, both servers (s) | ${result.serverCpuS} |`, `| **delivered msg per server-CPU-s (both servers)** | **${result.msgPerServerCpuS}** |`,
    `| lost (sent − delivered after a 3 s drain) | ${result.lost} |`, `| latency p50 / p99 / max (ms) | ${p.p50} / ${p.p99} / ${p.max} |`, '',
  ].join('\n');
  writeFileSync(join(RESULTS, `${stamp}-s2s-${LABEL}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(RESULTS, `${stamp}-s2s-${LABEL}.md`), md);
  process.stdout.write(md);
  for (const [a, b] of pairs) { a.destroy(); b.destroy(); }
} finally {
  await Promise.all([A.stop(), B.stop()]);
}
