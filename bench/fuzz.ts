// A hostile-input fuzzer over live sockets (#8): every input is one connection that plays a real
// session up to a stage (nothing, stream header, after STARTTLS, after SASL, after bind) and then
// sends a mutated tail in random read-sized pieces, over plaintext, STARTTLS or Direct TLS. Seeded:
// the same seed replays the same inputs. Against a Chorus node in this process (so a node death is
// this process's death) or any server by port (Prosody, for comparison: only its survival is seen).
//
//   node --import tsx bench/fuzz.ts --inputs 1000000 --seed 1 [--concurrency 32] [--port P --tls-port Q]
//
// Prints one JSON line of counts at the end (and one every 10,000 inputs).
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';

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

const HEADER = `<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const RESTART = `<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const plain = (user: string, pw: string) => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString('base64')}</auth>`;

/** Real traffic a client sends once bound: the material mutations start from. */
const STANZAS = [
  `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>fuzz</resource></bind></iq>`,
  `<presence><priority>5</priority><status>here</status></presence>`,
  `<message to='victim@localhost' type='chat' id='m1'><body>hello &amp; welcome</body></message>`,
  `<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`,
  `<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='x@example.org' name='X'><group>G</group></item></query></iq>`,
  `<iq type='get' to='localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
  `<enable xmlns='urn:xmpp:sm:3' resume='true'/><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='3'/>`,
  `<presence to='victim@localhost' type='subscribe'/>`,
  `<iq type='get' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`,
  `</stream:stream>`,
  plain('fuzz', 'secret'), // valid for the fuzz account: what follows it in the same write is read after success
];

/** Inputs built to hit a limit or a parser corner, not by chance. */
const CRAFTED: Array<(r: () => number) => string | Buffer> = [
  (r) => '<a>'.repeat(10 + Math.floor(r() * 5000)),
  (r) => `<message to='victim@localhost' ${'a'.repeat(1 + Math.floor(r() * 70_000))}='1'/>`,
  (r) => `<${'n'.repeat(1 + Math.floor(r() * 70_000))}/>`,
  (r) => `<message ${Array.from({ length: 1 + Math.floor(r() * 3000) }, (_, i) => `a${i}='v'`).join(' ')}/>`,
  () => `<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><message><body>&b;</body></message>`,
  () => `<message><body>&#0;&#xD800;&#x110000;&lt;&amp</body></message>`,
  () => `<?xml-stylesheet href='x'?><!-- c --><![CDATA[x]]>`,
  () => `<message to='victim@localhost'><body>${'x'.repeat(1_048_576)}</body></message>`,
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

export interface FuzzTarget { host: string; port: number; tlsPort: number; user: string; password: string }

/** Plays one input; resolves when the server closed the stream or `settleMs` passed. Never throws. */
export async function play(t: FuzzTarget, input: FuzzInput, settleMs = 300): Promise<'closed' | 'open' | 'refused'> {
  let sock: Socket;
  try {
    if (input.transport === 'direct') {
      sock = tlsConnect({ host: t.host, port: t.tlsPort, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] });
      await once(sock, 'secureConnect');
    } else {
      sock = netConnect(t.port, t.host);
      await once(sock, 'connect');
    }
  } catch { return 'refused'; }
  let buf = '';
  let closed = false;
  const onData = (d: Buffer) => { buf += d.toString('latin1'); if (buf.length > 65536) buf = buf.slice(-16384); };
  sock.on('data', onData);
  sock.on('error', () => undefined);
  sock.once('close', () => { closed = true; });
  const until = async (re: RegExp, ms = 3000): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!re.test(buf)) {
      if (closed || Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 2));
    }
    buf = '';
    return true;
  };
  try {
    if (input.stage !== 'raw') {
      sock.write(HEADER);
      if (!(await until(/<\/stream:features>/))) return closed ? 'closed' : 'open';
      if (input.transport === 'starttls' && input.stage !== 'header') {
        sock.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
        if (!(await until(/<proceed/))) return closed ? 'closed' : 'open';
        sock.removeListener('data', onData);
        const tls = tlsConnect({ socket: sock, servername: 'localhost', rejectUnauthorized: false });
        await once(tls, 'secureConnect');
        tls.on('data', onData);
        tls.on('error', () => undefined);
        tls.once('close', () => { closed = true; });
        sock = tls;
        sock.write(HEADER);
        if (!(await until(/<\/stream:features>/))) return closed ? 'closed' : 'open';
      }
      if (input.stage === 'auth' || input.stage === 'bound') {
        sock.write(plain(t.user, t.password));
        if (!(await until(/<success/))) return closed ? 'closed' : 'open';
        sock.write(RESTART);
        if (!(await until(/<\/stream:features>/))) return closed ? 'closed' : 'open';
      }
      if (input.stage === 'bound') {
        sock.write(STANZAS[0]!);
        if (!(await until(/id=["']b1["']/))) return closed ? 'closed' : 'open';
      }
    }
    let from = 0;
    for (const cut of [...input.cuts, input.tail.length]) {
      if (closed) break;
      sock.write(input.tail.subarray(from, cut));
      from = cut;
      await new Promise((r) => setImmediate(r));
    }
    const end = Date.now() + settleMs;
    while (!closed && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    return closed ? 'closed' : 'open';
  } catch {
    return closed ? 'closed' : 'open';
  } finally {
    sock.destroy();
  }
}

export interface FuzzCounts { inputs: number; closed: number; open: number; refused: number; rssMaxMb: number; ms: number }

/** Runs inputs [0, total) of `seed`, `concurrency` at a time. */
export async function fuzz(t: FuzzTarget, seed: number, total: number, concurrency = 16, progress?: (c: FuzzCounts) => void): Promise<FuzzCounts> {
  const c: FuzzCounts = { inputs: 0, closed: 0, open: 0, refused: 0, rssMaxMb: 0, ms: 0 };
  const started = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const n = next++;
      c[await play(t, inputFor(seed, n))]++;
      c.inputs++;
      if (c.inputs % 1000 === 0) c.rssMaxMb = Math.max(c.rssMaxMb, Math.round(process.memoryUsage().rss / 1048576));
      if (progress && c.inputs % 10_000 === 0) progress({ ...c, ms: Date.now() - started });
    }
  }));
  c.ms = Date.now() - started;
  c.rssMaxMb = Math.max(c.rssMaxMb, Math.round(process.memoryUsage().rss / 1048576));
  return c;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, d: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : d; };
  const seed = Number(arg('seed', '1')), total = Number(arg('inputs', '10000')), conc = Number(arg('concurrency', '16'));
  const external = process.argv.includes('--port');
  let target: FuzzTarget, stop = async () => {};
  let crashes = () => ({}) as Record<string, number>;
  if (external) {
    target = { host: '127.0.0.1', port: Number(arg('port', '5222')), tlsPort: Number(arg('tls-port', '5223')), user: arg('user', 'fuzz'), password: arg('password', 'secret') };
  } else {
    const { startServer } = await import('../test/helpers/xmpp.ts');
    const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 100_000; c.limits.login_attempts = { max_failures: 1e9, window_seconds: 1, address_max_failures: 1e9, address_window_seconds: 1 }; });
    await s.addUser('fuzz'); await s.addUser('victim');
    target = { host: '127.0.0.1', port: s.port, tlsPort: s.tlsPort, user: 'fuzz', password: 'secret' };
    crashes = () => {
      const by: Record<string, number> = {};
      for (const l of s.logs) { const m = /^\[error\] actor ([a-z]+):/.exec(l); if (m) by[m[1]!] = (by[m[1]!] ?? 0) + 1; }
      return by;
    };
    stop = () => s.stop();
  }
  const c = await fuzz(target, seed, total, conc, (p) => console.log(JSON.stringify({ ...p, crashes: crashes() })));
  console.log(JSON.stringify({ ...c, seed, crashes: crashes(), done: true }));
  await stop();
  process.exit(0);
}
