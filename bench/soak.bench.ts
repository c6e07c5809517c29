// A soak (#8, #13): an hour (or --minutes) of mixed load against one Chorus node in a child process,
// with the server's RSS and the latency of chat sampled every minute, to show whether either drifts.
//   - chat: --pairs pairs, each sender one message every 100 ms to its receiver (latency from a
//     timestamp in the body; a message not received within 10 s counts as lost);
//   - idle: --idle logged-in sessions that say nothing;
//   - churn: a fresh login (PLAIN, bind, presence, a ping answered, close) every second;
//   - a room: 8 occupants, one of them speaking every second;
//   - a misbehaving client every 10 s: garbage after the header, or a stanza trickled a byte at a time
//     that it abandons.
//
//   node --import tsx bench/soak.bench.ts [--minutes 60] [--pairs 20] [--idle 400]
//
// Prints one JSON line per minute and a summary: RSS after the warm-up (minute 5, or the first one
// for shorter runs) and at the end, growth per hour, and the chat p99 of the first and last minutes.
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readRssKB } from './lib/proc.ts';
import type { ChorusTargetOptions } from './lib/chorus-target.ts';

const arg = (name: string, d: number) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const MINUTES = arg('minutes', 60), PAIRS = arg('pairs', 20), IDLE = arg('idle', 400);
const ROOM = 'soak@conference.localhost', OCCUPANTS = 8;
const OPEN = `<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A lean client: keeps only what is unread (a soak's clients read for an hour). */
class Client {
  private buf = '';
  private wake: (() => void) | null = null;
  closed = false;
  onMessage: ((body: string) => void) | null = null;
  private constructor(readonly s: Socket) {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.buf += d;
      if (this.onMessage) {
        let m: RegExpExecArray | null;
        const re = /<body>([^<]*)<\/body>/g;
        while ((m = re.exec(this.buf))) this.onMessage(m[1]!);
        const at = this.buf.lastIndexOf('</body>');
        this.buf = (at >= 0 ? this.buf.slice(at + 7) : this.buf).slice(-4096);
      } else if (this.buf.length > 65_536) this.buf = this.buf.slice(-16_384);
      this.wake?.();
    });
    s.on('error', () => undefined);
    s.on('close', () => { this.closed = true; this.wake?.(); });
  }
  static async open(port: number): Promise<Client> {
    const s = connect(port, '127.0.0.1');
    await once(s, 'connect');
    return new Client(s);
  }
  send(x: string): void { if (!this.closed) this.s.write(x); }
  async until(re: RegExp, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(this.buf)) {
      if (this.closed || Date.now() > end) throw new Error(`no ${re}`);
      await new Promise<void>((r) => { const t = setTimeout(r, end - Date.now()); this.wake = () => { clearTimeout(t); this.wake = null; r(); }; });
    }
    this.buf = '';
  }
  close(): void { this.s.destroy(); }
}

async function login(port: number, user: string, resource: string): Promise<Client> {
  const c = await Client.open(port);
  c.send(OPEN);
  await c.until(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0pw`).toString('base64')}</auth>`);
  await c.until(/<success/);
  c.send(OPEN);
  await c.until(/<\/stream:features>/);
  c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq><presence/>`);
  await c.until(/id=["']b["']/);
  return c;
}

const q = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 10) / 10 : null; };

const dataDir = await mkdtemp(join(tmpdir(), 'chorus-soak-'));
const port = 27_222;
const accounts = 2 * PAIRS + IDLE + OCCUPANTS + 10;
const opts: ChorusTargetOptions = { port, domain: 'localhost', accounts, password: 'pw', dataDir, tls: false, logLevel: 'warn' };
const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./lib/chorus-target.ts', import.meta.url)), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
let errors = 0;
child.stderr!.on('data', (d: Buffer) => { errors += (String(d).match(/\[error\]/g) ?? []).length; });
await new Promise<void>((resolve, reject) => {
  let out = '';
  child.stdout!.on('data', (d) => { out += d; if (out.includes('CHORUS_READY')) resolve(); });
  child.once('exit', (c) => reject(new Error(`chorus exited ${c}`)));
});
let died: string | null = null;
child.once('exit', (code, sig) => { died = `exit ${code ?? sig}`; });

const end = Date.now() + MINUTES * 60_000;
const running = () => Date.now() < end && !died;
const minute = { chat: [] as number[], sent: 0, got: 0, lost: 0, logins: [] as number[], loginFailed: 0, room: 0, misbehaved: 0 };

// Idle sessions, then the room, then the chatting pairs.
let u = 1;
const idle: Client[] = [];
for (let i = 0; i < IDLE; i += 50) idle.push(...await Promise.all(Array.from({ length: Math.min(50, IDLE - i) }, () => login(port, `u${u++}`, 'idle'))));
const occupants: Client[] = [];
for (let i = 0; i < OCCUPANTS; i++) {
  const c = await login(port, `u${u++}`, 'room');
  c.send(`<presence to='${ROOM}/o${i}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
  await c.until(/<subject/);
  if (i === 0) { c.send(`<iq to='${ROOM}' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`); await c.until(/id=["']cfg["']/); }
  c.onMessage = (b) => { if (b.startsWith('room ')) minute.room++; };
  occupants.push(c);
}
const pending = new Map<string, number>();
const pairs = await Promise.all(Array.from({ length: PAIRS }, async (_, i) => {
  const s = await login(port, `u${u + 2 * i}`, 'chat'), r = await login(port, `u${u + 2 * i + 1}`, 'chat');
  r.onMessage = (b) => { const t = pending.get(b); if (t !== undefined) { pending.delete(b); minute.got++; minute.chat.push(performance.now() - t); } };
  return { i, s, to: `u${u + 2 * i + 1}@localhost/chat`, r };
}));
const churnUser = `u${u + 2 * PAIRS}`;

const chat = (async () => {
  for (let n = 0; running(); n++) {
    for (const p of pairs) { const body = `p${p.i}-${n}`; pending.set(body, performance.now()); minute.sent++; p.s.send(`<message to='${p.to}' type='chat'><body>${body}</body></message>`); }
    await sleep(100);
    const old = performance.now() - 10_000;
    for (const [b, t] of pending) if (t < old) { pending.delete(b); minute.lost++; }
  }
})();
const churn = (async () => {
  while (running()) {
    const t0 = performance.now();
    try {
      const c = await login(port, churnUser, `churn${Date.now()}`);
      c.send(`<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await c.until(/id=["']p["']/);
      minute.logins.push(performance.now() - t0);
      c.send('</stream:stream>');
      c.close();
    } catch { minute.loginFailed++; }
    await sleep(Math.max(0, 1000 - (performance.now() - t0)));
  }
})();
const room = (async () => {
  for (let n = 0; running(); n++) { occupants[n % OCCUPANTS]!.send(`<message to='${ROOM}' type='groupchat'><body>room ${n}</body></message>`); await sleep(1000); }
})();
const misbehave = (async () => {
  for (let n = 0; running(); n++) {
    await sleep(10_000);
    try {
      const c = await Client.open(port);
      c.send(OPEN);
      if (n % 2) c.send(Buffer.from([0x3c, 0xff, 0xfe, 0x00, 0x3e]).toString('latin1') + '<<<&&&');
      else for (const ch of `<message to='u1@localhost'><body>${'x'.repeat(20)}`) { c.send(ch); await sleep(200); }
      minute.misbehaved++;
      c.close();
    } catch { /* refused: counted by nothing, the login latency tells */ }
  }
})();

const rows: Array<Record<string, unknown>> = [];
for (let m = 1; running(); m++) {
  const until = Math.min(end, Date.now() + 60_000);
  while (Date.now() < until && !died) await sleep(500);
  const row = {
    minute: m, rssMb: Math.round(readRssKB(child.pid!) / 1024), sent: minute.sent, delivered: minute.got, lost: minute.lost,
    chatMs: { p50: q(minute.chat, 0.5), p99: q(minute.chat, 0.99), max: q(minute.chat, 1) },
    logins: minute.logins.length, loginFailed: minute.loginFailed, loginMs: { p50: q(minute.logins, 0.5), max: q(minute.logins, 1) },
    roomDeliveries: minute.room, misbehaving: minute.misbehaved, idleOpen: idle.filter((c) => !c.closed).length, errorsLogged: errors, died,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
  Object.assign(minute, { chat: [], sent: 0, got: 0, lost: 0, logins: [], loginFailed: 0, room: 0, misbehaved: 0 });
}
await Promise.all([chat, churn, room, misbehave]);
const warm = rows[Math.min(4, rows.length - 1)]!, last = rows.at(-1)!;
const hours = Math.max(1 / 60, (rows.length - rows.indexOf(warm)) / 60);
console.log(JSON.stringify({
  summary: true, minutes: rows.length, pairs: PAIRS, idle: IDLE, rssWarmMb: warm.rssMb, rssLastMb: last.rssMb,
  rssGrowthMbPerHour: Math.round((((last.rssMb as number) - (warm.rssMb as number)) / hours) * 10) / 10,
  chatP99FirstMs: (rows[0]!.chatMs as { p99: number }).p99, chatP99LastMs: (last.chatMs as { p99: number }).p99,
  lost: rows.reduce((n, r) => n + (r.lost as number), 0), loginFailed: rows.reduce((n, r) => n + (r.loginFailed as number), 0), errorsLogged: errors, died,
}));
for (const c of [...idle, ...occupants, ...pairs.flatMap((p) => [p.s, p.r])]) c.close();
const diedDuringRun = died; // the stop below ends the child too
if (!diedDuringRun) { child.kill('SIGTERM'); await once(child, 'exit'); }
await rm(dataDir, { recursive: true, force: true });
process.exit(diedDuringRun ? 1 : 0);
