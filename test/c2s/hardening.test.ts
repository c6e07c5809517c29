// No input from one client may escape its connection (#8): every path by which bytes or a late actor
// message reach a connection on the main thread ends, at worst, in a stream error on that connection,
// while the node and every other client carry on. Each test ends by proving the node still serves:
// a fresh login and a message between two other clients.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, RawClient, OPEN, rawLogin, starttls, bodies, type TestServer } from '../helpers/xmpp.ts';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const plainAuth = (user: string, password = 'secret') =>
  `<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`;
const INVALID_UTF8 = Buffer.from([0xff, 0xfe, 0x3c, 0x61]);

let server: TestServer;
const clients: RawClient[] = [];
const track = (c: RawClient) => { clients.push(c); return c; };

test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 1000; });
  for (const u of ['alice', 'bob', 'mallory']) await server.addUser(u);
});
test.after.each(() => { for (const c of clients.splice(0)) c.close(); });
test.after(async () => { await server.stop(); });

/** The node still logs people in and routes their messages. */
async function nodeServes(tag: string): Promise<void> {
  const a = track(await rawLogin(server.port, 'alice', `a-${tag}`));
  const b = track(await rawLogin(server.port, 'bob', `b-${tag}`));
  a.send(`<message to='bob@localhost/b-${tag}' type='chat' id='m-${tag}'><body>still-${tag}</body></message>`);
  await b.waitFor(new RegExp(`still-${tag}`));
  assert.equal(bodies(b.received).filter((x) => x === `still-${tag}`).length, 1);
}

/** The stream ends with a stream error naming one of `conditions`. */
async function streamError(c: RawClient, conditions: string[]): Promise<void> {
  const text = await c.waitFor(/<\/stream:error>/);
  const m = /<stream:error><([a-z-]+) xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/.exec(text);
  assert.ok(m && conditions.includes(m[1]!), `stream error ${conditions.join('|')}: ${text.slice(-400)}`);
  await c.waitClosed();
}

/** A stream opened to the features; over TLS when `tls`. The client never ends its side. */
async function opened(tls: boolean): Promise<RawClient> {
  let c = track(await RawClient.connect(server.port));
  c.socket.setTimeout(0);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  if (tls) {
    c = track((await starttls(c)).c);
    c.send(OPEN);
    await c.next(/<\/stream:features>/);
  }
  return c;
}

for (const tls of [true, false]) {
  const over = tls ? 'after STARTTLS' : 'in plaintext';
  test(`valid PLAIN <auth/> and invalid UTF-8 in one write, ${over}: that stream ends, the node serves on`, async () => {
    const c = await opened(tls);
    c.send(Buffer.concat([Buffer.from(plainAuth('mallory')), INVALID_UTF8]));
    await streamError(c, ['unsupported-encoding']);
    await nodeServes(`utf8-${tls}`);
  });

  test(`valid PLAIN <auth/> and malformed XML in one write, ${over}: that stream ends, the node serves on`, async () => {
    const c = await opened(tls);
    c.send(plainAuth('mallory') + `<stream:stream xmlns='jabber:client'><a></b>`);
    await streamError(c, ['not-well-formed', 'invalid-namespace', 'bad-format']);
    await nodeServes(`xml-${tls}`);
  });
}

test('a new header and a bad stanza pipelined behind <auth/>: held, then refused, node serves on', async () => {
  const c = await opened(true);
  c.send(plainAuth('mallory') + OPEN.replace(/^<\?xml[^>]*>/, '') + `<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><message to='@@'>&bogus;</message>`);
  await streamError(c, ['not-well-formed']);
  await nodeServes('pipelined');
});

test('a late message to a connection whose socket is gone is absorbed', async () => {
  const b = track(await rawLogin(server.port, 'bob', 'gone'));
  const a = track(await rawLogin(server.port, 'alice', 'sender'));
  b.socket.destroy();
  for (let i = 0; i < 50; i++) a.send(`<message to='bob@localhost/gone' type='chat' id='late${i}'><body>late ${i}</body></message>`);
  a.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await a.waitFor(/id=["']p1["']/);
  await nodeServes('late');
});

test('Direct TLS: garbage after the handshake and an abrupt close end only that connection', async () => {
  const { connect } = await import('node:tls');
  const t = connect({ host: '127.0.0.1', port: server.tlsPort, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] });
  await new Promise<void>((r, j) => { t.once('secureConnect', () => r()); t.once('error', j); });
  const c = track(RawClient.wrap(t));
  c.send(Buffer.concat([Buffer.from(OPEN), INVALID_UTF8]));
  await streamError(c, ['unsupported-encoding']);
  await nodeServes('direct');
});

test('a roster at its item cap, larger than max_stanza_bytes in all, is still fetched', async () => {
  const a = track(await rawLogin(server.port, 'alice', 'big-roster'));
  const N = 1000; // the default max_items
  let sets = '';
  for (let i = 0; i < N; i++) sets += `<iq type='set' id='rs${i}'><query xmlns='jabber:iq:roster'><item jid='contact${i}@example.org' name='Contact ${i} ${'x'.repeat(240)}'><group>Friends</group></item></query></iq>`;
  a.send(sets);
  await a.waitFor(new RegExp(`id="rs${N - 1}"`), 60_000);
  a.send(`<iq type='get' id='rget'><query xmlns='jabber:iq:roster'/></iq>`);
  const text = await a.waitFor(/id="rget"[\s\S]*<\/iq>/, 30_000);
  const result = text.slice(text.lastIndexOf('<iq', text.indexOf('id="rget"')));
  assert.ok(result.length > server.config.limits.max_stanza_bytes, `the result is ${result.length} bytes`);
  assert.is((result.match(/<item /g) ?? []).length, N);
});

test('a message to a malformed JID and an immediate disconnect crash no actor', async () => {
  const before = server.node.runtime.counters.actorCrashes;
  for (let i = 0; i < 5; i++) {
    const c = await rawLogin(server.port, 'mallory', `bad-jid-${i}`);
    c.send(`<presence/><message to='a@b@c' type='chat' id='bad${i}'><body>x</body></message>`);
    c.close();
  }
  await nodeServes('bad-jid');
  assert.is(server.node.runtime.counters.actorCrashes, before);
});

test('streams that end at once (bad XML, a bare close) leave no child behind in the sessions supervisor', async () => {
  // Sessions that end within the tick they started in, in each of the ways that happens.
  await Promise.all(Array.from({ length: 60 }, async (_, i) => {
    const c = await RawClient.connect(server.port);
    if (i % 3 === 0) c.close();
    else { c.send(i % 3 === 1 ? OPEN + '<a></b>' : OPEN + '</stream:stream>'); await c.waitClosed(); }
  }));
  const rt = server.node.runtime;
  const children = () => rt.supervisors().find((s) => s.name === 'sessions')!.children;
  const live = async () => (await rt.stats(true, 'session')).reduce((n, t) => n + (t.list?.length ?? 0), 0);
  const deadline = Date.now() + 20_000;
  let counts: [number, number] = [children(), await live()];
  while (counts[0] !== counts[1] && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50)); // sessions end on their own schedule: poll their count
    counts = [children(), await live()];
  }
  assert.is(counts[0], counts[1], `supervisor children ${counts[0]}, live sessions ${counts[1]}`);
});

test('no crash was logged as an error by the node', () => {
  const errors = server.logs.filter((l) => l.startsWith('[error]'));
  assert.equal(errors, [], errors.join('\n'));
});

test('limits: connections per IP and unauthenticated connections in total, refused with policy-violation; counts come back (#8)', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.connections_per_ip = 3; c.limits.unauthenticated_connections = 5; });
  const mine: RawClient[] = [];
  const open = async (from: string) => { const c = await RawClient.connect(s.port, from); mine.push(c); c.send(OPEN); return c; };
  /** Until a connection from `from` is admitted (the server counts one out when its session is done). */
  const admitted = async (from: string) => {
    for (let i = 0; i < 100; i++) {
      const c = await open(from);
      const got = await c.waitFor(/<\/stream:features>|<\/stream:error>/);
      if (got.includes('</stream:features>')) return c;
      await c.waitClosed();
    }
    throw new Error(`no connection from ${from} admitted`);
  };
  try {
    await s.addUser('alice');
    const a = [await admitted('127.0.0.5'), await admitted('127.0.0.5'), await admitted('127.0.0.5')];
    const fourth = await open('127.0.0.5');
    await streamError(fourth, ['policy-violation']);
    assert.match(fourth.received, /too many connections from 127\.0\.0\.5/);
    // 127.0.0.1 is exempt from the per-IP limit, not from the total of unauthenticated ones (3 + 2 = 5).
    await admitted('127.0.0.1');
    await admitted('127.0.0.1');
    const sixth = await open('127.0.0.6');
    await streamError(sixth, ['policy-violation']);
    assert.match(sixth.received, /not yet authenticated/);
    // An authenticated stream no longer counts as unauthenticated; a closed one gives its place back.
    a[0]!.send(plainAuth('alice'));
    await a[0]!.waitFor(/<success/);
    await admitted('127.0.0.6');
    a[1]!.close();
    const again = await admitted('127.0.0.5');
    again.close();
    // Churn does not leak counts: many connections one after another from one address.
    for (let i = 0; i < 10; i++) (await admitted('127.0.0.7')).close();
  } finally {
    for (const c of mine) c.close();
    await s.stop();
  }
});

test.run();
