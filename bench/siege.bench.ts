// A server under siege (#8): thousands of idle connections that never log in, and slowloris
// connections trickling a stanza a byte at a time, held open while fresh clients log in. What a
// public server must keep doing: a login (connect, stream, SASL PLAIN, bind, a ping answered)
// still completes quickly. Against Chorus with its default limits (started here, in a child
// process) and, with --prosody, Debian's Prosody the same way.
//
//   node --import tsx bench/siege.bench.ts [--idle 5000] [--slow 50] [--logins 20] [--prosody]
//
// Prints one JSON line per server: the idle and slowloris connections still open when the logins
// ran, the logins' latency (ms: p50, p95, max), failures, and the server's RSS.
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readRssKB } from './lib/proc.ts';
import { anchorScript } from './lib/anchors.ts';
import type { ChorusTargetOptions } from './lib/chorus-target.ts';

const arg = (name: string, d: number) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const IDLE = arg('idle', 5000), SLOW = arg('slow', 50), LOGINS = arg('logins', 20);
const DOMAIN = 'bench.local';
const header = `<?xml version='1.0'?><stream:stream to='${DOMAIN}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with what the socket read once `re` matches it; rejects on close or after `ms`. */
function waitFor(s: Socket, re: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const t = setTimeout(() => { off(); reject(new Error(`timeout waiting for ${re}`)); }, ms);
    const onData = (b: Buffer) => { got += b; if (re.test(got)) { off(); resolve(got); } };
    const onClose = () => { off(); reject(new Error(`closed waiting for ${re}`)); };
    const off = () => { clearTimeout(t); s.off('data', onData); s.off('close', onClose); };
    s.on('data', onData);
    s.on('close', onClose);
  });
}

async function open(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
}

/** A connection that sends its header, reads the features and then says nothing. */
async function idle(port: number): Promise<Socket> {
  const s = await open(port);
  s.write(header);
  await waitFor(s, /<\/stream:features>/);
  s.resume();
  return s;
}

/** One fresh login, timed from connect to the answer of a ping after bind. */
async function login(port: number, user: string): Promise<number> {
  const t0 = performance.now();
  const s = await open(port);
  try {
    s.write(header);
    await waitFor(s, /<\/stream:features>/);
    s.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString('base64')}</auth>`);
    await waitFor(s, /<success/);
    s.write(header);
    await waitFor(s, /<\/stream:features>/);
    s.write(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='get' id='p' to='${DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await waitFor(s, /id=["']p["']/);
    return performance.now() - t0;
  } finally {
    s.destroy();
  }
}

async function siege(name: string, port: number, pid: number): Promise<Record<string, unknown>> {
  const held: Socket[] = [];
  let refused = 0;
  // Idle connections, opened 100 at a time.
  for (let i = 0; i < IDLE; i += 100) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(100, IDLE - i) }, () => idle(port)));
    for (const b of batch) if (b.status === 'fulfilled') held.push(b.value); else refused++;
  }
  // Slowloris: a header, then a message a byte every 500 ms.
  const slow: Socket[] = [];
  for (let i = 0; i < SLOW; i++) { try { slow.push(await idle(port)); } catch { refused++; } }
  const drip = `<message to='u1@${DOMAIN}' type='chat'><body>${'x'.repeat(10_000)}</body></message>`;
  let at = 0;
  const dripper = setInterval(() => { const c = drip[at++ % drip.length]!; for (const s of slow) if (!s.destroyed) s.write(c); }, 500);
  await sleep(2000);
  const latencies: number[] = [];
  let failed = 0;
  for (let i = 0; i < LOGINS; i++) {
    try { latencies.push(await login(port, `u${1 + (i % 20)}`)); } catch { failed++; }
    await sleep(250);
  }
  clearInterval(dripper);
  const stillOpen = held.filter((s) => !s.destroyed && s.readable).length;
  const slowOpen = slow.filter((s) => !s.destroyed && s.readable).length;
  const rssMb = Math.round(readRssKB(pid) / 1024);
  for (const s of [...held, ...slow]) s.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN);
  return { server: name, idle: IDLE, idleOpen: stillOpen, refused, slowloris: SLOW, slowOpen, logins: latencies.length, failed, loginMs: { p50: q(0.5), p95: q(0.95), max: Math.round(latencies.at(-1) ?? NaN) }, serverRssMb: rssMb };
}

async function chorus(): Promise<Record<string, unknown>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'chorus-siege-'));
  const port = 25_222;
  const opts: ChorusTargetOptions = { port, domain: DOMAIN, accounts: 20, password: 'pw', dataDir, tls: false, logLevel: 'warn' };
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/chorus-target.ts', import.meta.url)), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { out += d; if (out.includes('CHORUS_READY')) resolve(); });
    child.once('exit', (c) => reject(new Error(`chorus exited ${c}`)));
  });
  try {
    return await siege('chorus', port, child.pid!);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function prosody(): Promise<Record<string, unknown>> {
  const port = 25_322;
  const state = await mkdtemp(join(tmpdir(), 'prosody-siege-'));
  const run = anchorScript('prosody', { ...process.env, PROSODY_PORT: String(port), PROSODY_TLS_PORT: String(port + 1), BENCH_DOMAIN: DOMAIN, BENCH_STATE: state });
  const started = await run('start', '20');
  const pid = Number(/PIDS=(\d+)/.exec(started)?.[1]);
  try {
    return await siege('prosody', port, pid);
  } finally {
    await run('stop');
    await rm(state, { recursive: true, force: true });
  }
}

console.log(JSON.stringify(await chorus()));
if (process.argv.includes('--prosody')) console.log(JSON.stringify(await prosody()));
process.exit(0);
