// A hostile-input fuzzer over live sockets (#8): every input is one connection that plays a real
// session up to a stage (nothing, stream header, after STARTTLS, after SASL, after bind) and then
// sends a mutated tail in random read-sized pieces, over plaintext, STARTTLS or Direct TLS. Seeded:
// the same seed replays the same inputs. The server runs in a child process (Chorus through the bench
// target, or Debian's Prosody through its anchor script), so its death, its RSS and the errors it
// logs are its own; or any server already listening (--port, --tls-port).
//
//   node --import tsx bench/fuzz.ts --inputs 1000000 --seed 1 [--concurrency 200] [--server chorus|prosody]
//
// Prints one JSON line of counts every 10,000 inputs and one at the end: streams the server closed or
// left open, refused connections, the server's RSS (MB: after the first 10,000 inputs, highest, last),
// the errors it logged, whether it died, and whether a normal login and message worked afterwards.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readRssKB } from './lib/proc.ts';
import { anchorScript } from './lib/anchors.ts';
import type { ChorusTargetOptions } from './lib/chorus-target.ts';

/** mulberry32: small, fast and seedable; the fuzzer needs reproducibility, not cryptography. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The accounts every target has (the bench targets' u1..uN with password pw, on localhost): the
 *  fuzzer logs in as u1 and aims stanzas at u2. */
export const USER = 'u1', VICTIM = 'u2', PASSWORD = 'pw';
const HEADER = `<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const RESTART = `<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const plain = (user: string, pw: string): string => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString('base64')}</auth>`;

/** Real traffic a client sends once bound: the material mutations start from. */
const STANZAS = [
  `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fuzz</resource></bind></iq>`,
  `<presence><priority>5</priority><status>here</status></presence>`,
  `<message to='u2@localhost' type='chat' id='m1'><body>hello &amp; welcome</body></message>`,
  `<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`,
  `<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='x@example.org' name='X'><group>G</group></item></query></iq>`,
  `<iq type='get' to='localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
  `<enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='3'/>`,
  `<presence to='u2@localhost' type='subscribe'/>`,
  `<iq type='get' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`,
  `</stream:stream>`,
  plain(USER, PASSWORD), // valid for the fuzzing account: what follows it in the same write is read after success
];

/** Inputs built to hit a limit or a parser corner, not by chance. */
const CRAFTED: Array<(r: () => number) => string | Buffer> = [
  (r) => '<a>'.repeat(10 + Math.floor(r() * 5000)),
  (r) => `<message to='u2@localhost' ${'a'.repeat(1 + Math.floor(r() * 70_000))}='1'/>`,
  (r) => `<${'n'.repeat(1 + Math.floor(r() * 70_000))}/>`,
  (r) => `<message ${Array.from({ length: 1 + Math.floor(r() * 3000) }, (_, i) => `a${i}='v'`).join(' ')}/>`,
  () => `<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><message><body>&b;</body></message>`,
  () => `<message><body>&#0;&#xD800;&#x110000;&lt;&amp</body></message>`,
  () => `<?xml-stylesheet href='x'?><!-- c --><![CDATA[x]]>`,
  () => `<message to='u2@localhost'><body>${'x'.repeat(1_048_576)}</body></message>`,
  () => Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xff, 0xfe, 0xed]),
  () => Buffer.from([0xfe, 0xff, 0x00, 0x3c, 0x00, 0x61]), // UTF-16 BOM
  () => `<stream:stream xmlns:stream='urn:bad' xmlns='jabber:server' version='2.0'>`,
  () => `<iq type='result' id='x'/><iq type='error' id='y'><error type='cancel'/></iq><message type='error' to='@@'/>`,
  (r) => `<message to='${'ä'.repeat(1 + Math.floor(r() * 2000))}@localhost/${'\u{1F600}'.repeat(100)}'><body>x</body></message>`,
  () => `<a xmlns:p='urn:x'><p:b p:c='1' c='2' p:c='3'/></a>`,
];

function mutate(input: Buffer, r: () => number): Buffer {
  let b = Buffer.from(input);
  const n = 1 + Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * Math.max(1, b.length));
    switch (Math.floor(r() * 7)) {
      case 0: if (b.length) b[at] = Math.floor(r() * 256); break; // flip a byte
      case 1: b = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(r() * 256)]), b.subarray(at)]); break;
      case 2: b = b.subarray(0, at); break; // truncate
      case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + Math.floor(r() * 64)), b.subarray(at)]); break; // repeat a run
      case 4: b = Buffer.concat([b.subarray(0, at), Buffer.from(['<', '>', '&', "'", '"', '/', '=', ':', '\0', '\r'][Math.floor(r() * 10)]!), b.subarray(at)]); break;
      case 5: b = Buffer.concat([b.subarray(0, at), Buffer.from([0xe2, 0x82]), b.subarray(at)]); break; // a cut UTF-8 sequence
      default: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + Math.floor(r() * 16)))]); break; // delete a run
    }
  }
  return b;
}

export type Stage = 'raw' | 'header' | 'starttls' | 'auth' | 'bound';
export type Transport = 'plain' | 'starttls' | 'direct';
export interface FuzzInput { stage: Stage; transport: Transport; tail: Buffer; cuts: number[] }

/** The n-th input of a seed: where the session is when the mutated tail starts, and the tail. */
export function inputFor(seed: number, n: number): FuzzInput {
  const r = rng((seed * 0x9e3779b1) ^ n);
  const transport: Transport = (['plain', 'starttls', 'direct'] as const)[Math.floor(r() * 3)]!;
  const stages: Stage[] = transport === 'starttls' ? ['raw', 'header', 'starttls', 'auth', 'bound'] : ['raw', 'header', 'auth', 'bound'];
  const stage = stages[Math.floor(r() * stages.length)]!;
  let tail: Buffer;
  const pick = r();
  if (pick < 0.25) {
    const c = CRAFTED[Math.floor(r() * CRAFTED.length)]!(r);
    tail = typeof c === 'string' ? Buffer.from(c) : c;
  } else if (pick < 0.35) {
    tail = Buffer.from(Array.from({ length: Math.floor(r() * 512) }, () => Math.floor(r() * 256)));
  } else {
    const base = stage === 'raw' ? HEADER + STANZAS[Math.floor(r() * STANZAS.length)]!
      : Array.from({ length: 1 + Math.floor(r() * 4) }, () => STANZAS[Math.floor(r() * STANZAS.length)]!).join('');
    tail = pick < 0.4 ? Buffer.from(base) : mutate(Buffer.from(base), r); // a few unmutated: pipelining
  }
  const cuts = Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * tail.length)).sort((a, b) => a - b);
  return { stage, transport, tail, cuts };
}

export interface FuzzTarget { host: string; port: number; tlsPort: number }

/** A socket's reader: waits for a pattern or the close, by events (a fuzz run holds hundreds). */
class Reader {
  private buf = '';
  private wake: (() => void) | null = null;
  closed = false;
  constructor(private sock: Socket) { this.attach(sock); }
  attach(sock: Socket): void {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      if (this.buf.length > 65_536) this.buf = this.buf.slice(-16_384);
      this.wake?.();
    });
    sock.on('error', () => undefined);
    sock.once('close', () => { this.closed = true; this.wake?.(); });
  }
  /** Whether `re` was read (the buffer is then emptied) before the close or `ms`. */
  async until(re: RegExp | null, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    for (;;) {
      if (re?.test(this.buf)) { this.buf = ''; return true; }
      const left = end - Date.now();
      if (this.closed || left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
      });
    }
  }
  /** Stops reading the socket underneath (STARTTLS hands it to a TLS socket). */
  detach(): Socket { this.sock.removeAllListeners('data'); return this.sock; }
}

/** TLS sessions resumed per transport after the first full handshake, so that the run's CPU goes to
 *  the inputs rather than to key exchanges (what is fuzzed is the XML after the handshake). */
const sessions: { direct?: Buffer; starttls?: Buffer } = {};
const remember = (tls: TLSSocket, kind: 'direct' | 'starttls') => tls.on('session', (s: Buffer) => { sessions[kind] = s; });

/** Plays one input; resolves when the server closed the stream or `settleMs` passed. Never throws. */
export async function play(t: FuzzTarget, input: FuzzInput, settleMs = 300): Promise<'closed' | 'open' | 'refused'> {
  let sock: Socket;
  try {
    if (input.transport === 'direct') {
      const tls = tlsConnect({ host: t.host, port: t.tlsPort, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'], session: sessions.direct });
      remember(tls, 'direct');
      sock = tls;
      await once(sock, 'secureConnect');
    } else {
      sock = netConnect(t.port, t.host);
      await once(sock, 'connect');
    }
  } catch { return 'refused'; }
  const r = new Reader(sock);
  const step = async (send: string, re: RegExp) => { sock.write(send); return r.until(re, 3000); };
  try {
    if (input.stage !== 'raw') {
      if (!(await step(HEADER, /<\/stream:features>/))) return r.closed ? 'closed' : 'open';
      if (input.transport === 'starttls' && input.stage !== 'header') {
        if (!(await step(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, /<proceed/))) return r.closed ? 'closed' : 'open';
        const tls = tlsConnect({ socket: r.detach(), servername: 'localhost', rejectUnauthorized: false, session: sessions.starttls });
        remember(tls, 'starttls');
        await once(tls, 'secureConnect');
        r.attach(tls);
        sock = tls;
        if (!(await step(HEADER, /<\/stream:features>/))) return r.closed ? 'closed' : 'open';
      }
      if (input.stage === 'auth' || input.stage === 'bound') {
        if (!(await step(plain(USER, PASSWORD), /<success/))) return r.closed ? 'closed' : 'open';
        if (!(await step(RESTART, /<\/stream:features>/))) return r.closed ? 'closed' : 'open';
      }
      if (input.stage === 'bound' && !(await step(STANZAS[0]!, /id=["']b1["']/))) return r.closed ? 'closed' : 'open';
    }
    let from = 0;
    for (const cut of [...input.cuts, input.tail.length]) {
      if (r.closed) break;
      sock.write(input.tail.subarray(from, cut));
      from = cut;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await r.until(null, settleMs);
    return r.closed ? 'closed' : 'open';
  } catch {
    return r.closed ? 'closed' : 'open';
  } finally {
    sock.destroy();
  }
}

export interface FuzzCounts { inputs: number; closed: number; open: number; refused: number; ms: number }

/** Runs inputs [0, total) of `seed`, `concurrency` at a time; `progress` every 10,000 inputs. */
export async function fuzz(t: FuzzTarget, seed: number, total: number, concurrency = 16, progress?: (c: FuzzCounts) => boolean | void): Promise<FuzzCounts> {
  const c: FuzzCounts = { inputs: 0, closed: 0, open: 0, refused: 0, ms: 0 };
  const started = Date.now();
  let next = 0, stop = false;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total && !stop) {
      const n = next++;
      c[await play(t, inputFor(seed, n))]++;
      c.inputs++;
      if (progress && c.inputs % 10_000 === 0 && progress({ ...c, ms: Date.now() - started }) === false) stop = true;
    }
  }));
  c.ms = Date.now() - started;
  return c;
}

/** After the run: u1 and u2 log in over plain TCP, u1's message reaches u2. */
export async function normalChat(t: FuzzTarget): Promise<boolean> {
  const login = async (user: string) => {
    const sock = netConnect(t.port, t.host);
    await once(sock, 'connect');
    const r = new Reader(sock);
    const ok = async (send: string, re: RegExp) => { sock.write(send); if (!(await r.until(re, 10_000))) throw new Error(`${user}: no ${re}`); };
    await ok(HEADER, /<\/stream:features>/);
    await ok(plain(user, PASSWORD), /<success/);
    await ok(RESTART, /<\/stream:features>/);
    await ok(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>after</resource></bind></iq><presence/>`, /id=["']b1["']/);
    return { sock, r };
  };
  try {
    const a = await login(USER), b = await login(VICTIM);
    a.sock.write(`<message to='${VICTIM}@localhost/after' type='chat' id='z'><body>after the fuzz</body></message>`);
    const got = await b.r.until(/after the fuzz/, 10_000);
    a.sock.destroy(); b.sock.destroy();
    return got;
  } catch { return false; }
}

/** A server to fuzz in a child process: its pid, where it listens, the errors it logged, whether it died. */
interface Server { target: FuzzTarget; pid: number; errors: string[]; died: () => string | null; stop(): Promise<void> }

async function chorusServer(port: number): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'chorus-fuzz-'));
  const opts: ChorusTargetOptions = { port, tlsPort: port + 1, domain: 'localhost', accounts: 2, password: PASSWORD, dataDir, tls: true, logLevel: 'warn', sessionsPerAccount: 100_000 };
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/chorus-target.ts', import.meta.url)), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const errors: string[] = [];
  let exit: string | null = null, out = '', err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d;
    const lines = err.split('\n');
    err = lines.pop()!;
    for (const l of lines) if (l.includes('[error]') || !/^\S+ \[(warn|info)\]/.test(l)) errors.push(l);
  });
  child.once('exit', (code, signal) => { exit = `exit ${code ?? signal}`; });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { out += d; if (out.includes('CHORUS_READY')) resolve(); });
    child.once('exit', (c) => reject(new Error(`chorus exited ${c}: ${errors.join('\n')}`)));
  });
  return {
    target: { host: '127.0.0.1', port, tlsPort: port + 1 }, pid: child.pid!, errors, died: () => exit,
    stop: async () => { if (!exit) { child.kill('SIGTERM'); await once(child, 'exit'); } await rm(dataDir, { recursive: true, force: true }); },
  };
}

async function prosodyServer(port: number): Promise<Server> {
  const state = await mkdtemp(join(tmpdir(), 'prosody-fuzz-'));
  const run = anchorScript('prosody', { ...process.env, PROSODY_PORT: String(port), PROSODY_TLS_PORT: String(port + 1), BENCH_DOMAIN: 'localhost', BENCH_STATE: state });
  const pid = Number(/PIDS=(\d+)/.exec(await run('start', '2'))?.[1]);
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  return {
    target: { host: '127.0.0.1', port, tlsPort: port + 1 }, pid, errors: [], died: () => (alive() ? null : 'gone'),
    stop: async () => { await run('stop'); await rm(state, { recursive: true, force: true }); },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : d; };
  const seed = Number(arg('seed', '1')), total = Number(arg('inputs', '10000')), conc = Number(arg('concurrency', '200'));
  const server = arg('server', 'chorus');
  const s: Server = process.argv.includes('--port')
    ? { target: { host: '127.0.0.1', port: Number(arg('port', '5222')), tlsPort: Number(arg('tls-port', '5223')) }, pid: Number(arg('pid', '0')), errors: [], died: () => null, stop: async () => {} }
    : server === 'prosody' ? await prosodyServer(26_322) : await chorusServer(26_222);
  const rss = { warmMb: 0, maxMb: 0, lastMb: 0 };
  const sample = () => { if (!s.pid) return; rss.lastMb = Math.round(readRssKB(s.pid) / 1024); rss.maxMb = Math.max(rss.maxMb, rss.lastMb); };
  const sampler = setInterval(sample, 1000);
  const report = (c: FuzzCounts) => ({ server, ...c, perSecond: Math.round(c.inputs / (c.ms / 1000)), rss, errors: s.errors.length, firstErrors: s.errors.slice(0, 3), died: s.died() });
  const c = await fuzz(s.target, seed, total, conc, (p) => {
    sample();
    if (p.inputs === 10_000) rss.warmMb = rss.lastMb;
    console.log(JSON.stringify(report(p)));
    return !s.died();
  });
  clearInterval(sampler);
  sample();
  const died = s.died();
  const after = died ? false : await normalChat(s.target);
  console.log(JSON.stringify({ ...report(c), seed, normalChatAfter: after, done: true }));
  await s.stop();
  process.exit(died || !after ? 1 : 0);
}
