// The bench's raw XMPP client and load worker against a tiny fake XMPP server written here: PLAIN
// auth, bind, and message routing by full JID between its sessions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { XmppClient } from '../../bench/lib/client.ts';
import { Framer, attr, childText, stanzaName } from '../../bench/lib/parser.ts';
import { LoadWorker } from '../../bench/lib/worker.ts';
import type { StatsReport } from '../../bench/lib/protocol.ts';
import { ScramServer, deriveCredentials } from '../../src/sasl/scram.ts';
import type { HashName, ScramCredentials } from '../../src/sasl/types.ts';

const DOMAIN = 'fake.local';
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='${DOMAIN}' id='s1' version='1.0'>`;

interface Fake { server: net.Server; port: number; sessions: Map<string, net.Socket>; received: string[]; close(): Promise<void> }

// One SCRAM verifier per hash for every user (password 'pw'), derived once.
const verifiers: Partial<Record<HashName, ScramCredentials>> = {};
async function credentials() {
  for (const h of ['SHA-1', 'SHA-256'] as const) verifiers[h] ??= await deriveCredentials('pw', h, 4096);
  return { scram: verifiers };
}

/** Accepts users u<N> with password 'pw' (PLAIN or SCRAM, via the project's ScramServer); routes
 *  <message to=full-jid> to that session. */
async function fakeServer(opts: { dropMessages?: boolean } = {}): Promise<Fake> {
  await credentials();
  const sessions = new Map<string, net.Socket>();
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let user = '', authed = false, jid = '';
    let scram: ScramServer | null = null;
    const sasl = (step: Awaited<ReturnType<ScramServer['start']>>) => {
      if (step.kind === 'challenge') sock.write(`<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${step.data.toString('base64')}</challenge>`);
      else if (step.kind === 'success') {
        user = step.authcid; authed = true;
        framer.reset();
        sock.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${step.data?.toString('base64') ?? ''}</success>`);
      } else sock.write(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><${step.condition}/></failure>`);
    };
    const payload = (s: string) => Buffer.from(s.replace(/<[^>]+>/g, ''), 'base64');
    const framer: Framer = new Framer({
      onHeader: () => {
        sock.write(HEADER);
        sock.write(authed
          ? `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`
          : `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>`);
      },
      onStanza: (s) => {
        received.push(s);
        const name = stanzaName(s);
        if (name === 'auth' && attr(s, 'mechanism')!.startsWith('SCRAM-')) {
          const hash = attr(s, 'mechanism')!.slice(6) as HashName;
          scram = new ScramServer({ hash, serverSecret: 'test', lookup: async (u) => /^u\d+$/.test(u) ? { scram: verifiers } : undefined });
          void scram.start(payload(s)).then(sasl);
        } else if (name === 'response' && scram) {
          void scram.step(payload(s)).then(sasl);
        } else if (name === 'auth') {
          const [, u, pw] = Buffer.from(childText(s, 'auth') ?? s.replace(/<[^>]+>/g, ''), 'base64').toString().split('\0');
          if (pw === 'pw' && /^u\d+$/.test(u)) {
            user = u; authed = true;
            framer.reset();
            sock.write(`<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`);
          } else sock.write(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>`);
        } else if (name === 'iq' && s.includes('xmpp-bind')) {
          jid = `${user}@${DOMAIN}/${childText(s, 'resource') ?? 'r'}`;
          sessions.set(jid, sock);
          sock.write(`<iq type='result' id='${attr(s, 'id')}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>${jid}</jid></bind></iq>`);
        } else if (name === 'iq') {
          sock.write(`<iq type='result' id='${attr(s, 'id')}' from='${DOMAIN}'><query xmlns='jabber:iq:version'><name>Fake</name><version>1</version></query></iq>`);
        } else if (name === 'message' && !opts.dropMessages) {
          const to = sessions.get(attr(s, 'to') ?? '');
          to?.write(s.replace('<message ', `<message from='${jid}' `));
        }
      },
      onEnd: () => { sock.end('</stream:stream>'); },
    });
    sock.on('data', (d) => framer.push(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server, port, sessions, received,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

test('logs in with PLAIN, binds, asks an IQ and closes', async () => {
  const fake = await fakeServer();
  try {
    const c = new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: 'u1', password: 'pw', resource: 'res' });
    const t = await c.login();
    assert.is(c.jid, `u1@${DOMAIN}/res`);
    assert.ok(t.totalMs >= t.authMs);
    const auth = fake.received.find((s) => stanzaName(s) === 'auth')!;
    assert.is(attr(auth, 'mechanism'), 'PLAIN');
    const v = await c.iq("<query xmlns='jabber:iq:version'/>", 'get', DOMAIN);
    assert.is(childText(v, 'name'), 'Fake');
    await c.close();
    assert.ok(c.closed);
  } finally { await fake.close(); }
});

test('logs in with SCRAM-SHA-1 and SCRAM-SHA-256 through the SASL library, twice (salted password cached)', async () => {
  const fake = await fakeServer();
  try {
    for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-256']) {
      const c = new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: 'u7', password: 'pw', mechanism });
      await c.login();
      assert.is(c.jid, `u7@${DOMAIN}/bench`);
      await c.close();
    }
    const warm = new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: 'u8', password: 'pw', mechanism: 'SCRAM-SHA-1', warmOnly: true });
    await warm.login();
    // The abort is on its way when login() returns; wait for the server to read it (bounded).
    for (let i = 0; i < 200 && !fake.received.some((x) => stanzaName(x) === 'abort'); i++) await new Promise((r) => setTimeout(r, 10));
    warm.destroy();
    assert.ok(fake.received.some((x) => stanzaName(x) === 'abort'), 'a warm-up aborts after the challenge');
    const bad = new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: 'u7', password: 'wrong', mechanism: 'SCRAM-SHA-1' });
    await bad.login().then(() => assert.unreachable('should fail'), (e: Error) => assert.match(e.message, /failed/));
  } finally { await fake.close(); }
});

test('a wrong password rejects with the server failure', async () => {
  const fake = await fakeServer();
  try {
    const c = new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: 'u1', password: 'nope' });
    await c.login().then(() => assert.unreachable('should fail'), (e: Error) => assert.match(e.message, /not-authorized/));
  } finally { await fake.close(); }
});

test('a refused connection rejects', async () => {
  const fake = await fakeServer();
  const port = fake.port;
  await fake.close();
  const c = new XmppClient({ host: '127.0.0.1', port, domain: DOMAIN, username: 'u1', password: 'pw' });
  await c.login().then(() => assert.unreachable('should fail'), (e: Error) => assert.ok(e.message.length > 0));
});

test('two clients exchange messages, coalesced and not', async () => {
  const fake = await fakeServer();
  try {
    for (const coalesce of [true, false]) {
      const mk = (u: string) => new XmppClient({ host: '127.0.0.1', port: fake.port, domain: DOMAIN, username: u, password: 'pw', resource: 'r' + coalesce, coalesce });
      const a = mk('u1'), b = mk('u2');
      await a.login(); await b.login();
      const got: string[] = [];
      const all = new Promise<void>((res) => { b.onStanza = (s) => { got.push(childText(s, 'body')!); if (got.length === 100) res(); }; });
      for (let i = 0; i < 100; i++) a.send(`<message to='${b.jid}' type='chat'><body>${i}</body></message>`);
      await all;
      assert.equal(got, Array.from({ length: 100 }, (_, i) => String(i)));
      await a.close(); await b.close();
    }
  } finally { await fake.close(); }
});

async function worker(port: number, index = 0) {
  const stats: StatsReport[] = [];
  const w = new LoadWorker({
    index, endpoint: { host: '127.0.0.1', port, domain: DOMAIN }, tls: 'none', mechanism: 'PLAIN', sasl2: false, password: 'pw',
    mainTimeOrigin: performance.timeOrigin, loginTimeoutMs: 10_000, coalesce: false, padding: 1, toBare: false,
  }, (m) => stats.push(m));
  return { w, stats };
}

test('load worker: login storm counts logins and failures', async () => {
  const fake = await fakeServer();
  try {
    const { w, stats } = await worker(fake.port);
    const r = await w.run({ op: 'login', users: [1, 2, 3, 4, 5], concurrency: 2, hold: false, presence: false });
    assert.equal(r, { ok: 5, failed: 0 });
    w.report();
    assert.is(stats[0].logins, 5);
    assert.is(stats[0].login.n, 5);
  } finally { await fake.close(); }
});

test('load worker: closed-loop chat delivers everything it sent, latency recorded', async () => {
  const fake = await fakeServer();
  try {
    const { w, stats } = await worker(fake.port);
    await w.run({ op: 'login', users: [1, 2, 3, 4], concurrency: 4, hold: true, presence: true });
    await w.run({ op: 'chat', pairs: [[1, 2], [3, 4]], mode: 'closed', inflight: 3, rate: 0, durationMs: 0 });
    await new Promise((r) => setTimeout(r, 200));
    const stopped = await w.run({ op: 'stop' }) as { sent: number };
    const drained = await w.run({ op: 'drain', expect: stopped.sent, drainMs: 5000 }) as { sent: number; recv: number };
    assert.ok(drained.sent >= 12, 'each of 4 senders had 3 in flight');
    assert.is(drained.recv, drained.sent);
    w.report();
    const lat = stats.reduce((n, s) => n + s.lat.n, 0);
    assert.is(lat, drained.recv);
    await w.run({ op: 'close' });
  } finally { await fake.close(); }
});

test('load worker: messages the server drops are counted lost after the drain', async () => {
  const fake = await fakeServer({ dropMessages: true });
  try {
    const { w } = await worker(fake.port);
    await w.run({ op: 'login', users: [1, 2], concurrency: 2, hold: true, presence: false });
    await w.run({ op: 'chat', pairs: [[1, 2]], mode: 'closed', inflight: 2, rate: 0, durationMs: 0 });
    const stopped = await w.run({ op: 'stop' }) as { sent: number };
    const drained = await w.run({ op: 'drain', expect: stopped.sent, drainMs: 100 }) as { sent: number; recv: number };
    assert.is(drained.sent, 4);
    assert.is(drained.recv, 0);
    await w.run({ op: 'close' });
  } finally { await fake.close(); }
});

test('load worker: a server without a conference service makes the MUC probe say so', async () => {
  const fake = await fakeServer();
  try {
    const { w } = await worker(fake.port);
    await w.run({ op: 'login', users: [1], concurrency: 1, hold: true, presence: false });
    const r = await w.run({ op: 'muc-probe' }) as { service: string | null; reason: string };
    assert.is(r.service, null);
    assert.match(r.reason, /no conference service/);
    await w.run({ op: 'close' });
  } finally { await fake.close(); }
});

test('load worker: open loop sends at the offered rate and stamps scheduled times', async () => {
  const fake = await fakeServer();
  try {
    const { w } = await worker(fake.port);
    await w.run({ op: 'login', users: [1, 2], concurrency: 2, hold: true, presence: false });
    await w.run({ op: 'chat', pairs: [[1, 2]], mode: 'open', inflight: 0, rate: 500, durationMs: 0 });
    await new Promise((r) => setTimeout(r, 300));
    const stopped = await w.run({ op: 'stop' }) as { sent: number };
    const drained = await w.run({ op: 'drain', expect: stopped.sent, drainMs: 5000 }) as { sent: number; recv: number };
    assert.ok(drained.sent > 0);
    assert.is(drained.recv, drained.sent);
    await w.run({ op: 'close' });
  } finally { await fake.close(); }
});

test.run();
