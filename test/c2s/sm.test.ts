// XEP-0198 stream management and crash tolerance: acks, resumption after a dropped socket, and a
// session actor that crashes (or is killed) under a live connection that stays open.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bodies, OPEN, rawLogin, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';
import { until } from '../helpers/runtime.ts';
import { traffic } from '../../src/net/traffic.ts';

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 30; });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'eve', 'hank']) await server.addUser(u);
});
test.after(async () => { await server.stop(); });

const SM = 'urn:xmpp:sm:3';
const msg = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;

test('<r/> is answered once everything before it is handled: <a h/> counts them', async () => {
  const a = await rawLogin(server.port, 'alice', 'ack');
  a.send(`<enable xmlns='${SM}'/>`);
  await a.waitFor(/<enabled xmlns="urn:xmpp:sm:3"/);
  a.send(`<presence/>${msg('eve@localhost', '1')}${msg('eve@localhost', '2')}<r xmlns='${SM}'/>`);
  await a.waitFor(/<a xmlns="urn:xmpp:sm:3" h="3"\/>/);
  a.close();
});

test('a dropped socket is resumed: queued and unacknowledged stanzas arrive, none twice', async () => {
  const b = await rawLogin(server.port, 'dave', 'phone');
  b.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
  const enabled = await b.waitFor(/<enabled[^>]*id="([^"]+)"/);
  const id = /id="([^"]+)"/.exec(enabled.slice(enabled.indexOf('<enabled')))![1]!;
  await b.waitFor(/<presence from="dave@localhost\/phone"/); // our own presence: outbound stanza 1
  const a = await rawLogin(server.port, 'alice', 'pc');
  a.send(msg('dave@localhost/phone', 'before-1') + msg('dave@localhost/phone', 'before-2'));
  await b.waitFor(/before-2/);
  b.close(); // no ack, no stream close: the socket just dies
  // the log says so, and that the session waits (#30.9)
  await until(() => server.logs.some((l) => /^\[info\] conn:\S+: closed \(\S+\); its session waits 30 s for a resumption$/.test(l)), 10_000, 'the detach line');
  a.send(msg('dave@localhost/phone', 'while-away'));
  // Bob comes back: authenticates, then resumes saying he handled the first one only.
  const b2 = await RawClient.connect(server.port);
  b2.send(OPEN);
  await b2.waitFor(/<\/stream:features>/);
  b2.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0dave\0secret').toString('base64')}</auth>`);
  await b2.waitFor(/<success/);
  b2.send(OPEN);
  await b2.waitFor(/<sm xmlns/);
  // Handled: our presence and before-1. So before-2 and while-away must come (again).
  b2.send(`<resume xmlns='${SM}' previd='${id}' h='2'/>`);
  await b2.waitFor(/<resumed[^>]*previd=/);
  await b2.waitFor(/while-away/);
  const got = bodies(b2.received);
  assert.equal(got, ['before-2', 'while-away']);
  assert.ok(server.logs.some((l) => /^\[info\] conn:\S+: resumed \(\S+\), \d+ stanzas sent again$/.test(l)), server.logs.join('\n'));
  // The resumed stream works both ways.
  b2.send(msg('alice@localhost/pc', 'back'));
  await a.waitFor(/back/);
  a.close(); b2.close();
});

/** Authenticates a new connection as `user` and resumes `previd`; null if the server refused (it may
 *  not have seen the old socket die yet). */
async function tryResume(port: number, user: string, previd: string): Promise<RawClient | null> {
  const c = await RawClient.connect(port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0secret`).toString('base64')}</auth>`);
  await c.waitFor(/<success/);
  c.send(OPEN);
  await c.waitFor(/<sm xmlns/);
  c.send(`<resume xmlns='${SM}' previd='${previd}' h='0'/>`);
  const r = await c.waitFor(/<resumed[^>]*>|<failed[\s\S]*?<\/failed>/);
  if (r.includes('<resumed')) return c;
  c.close();
  return null;
}

test('SIGTERM after a resumption: the resumed stream gets system-shutdown and the node stops (#18.2)', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 30; });
  await s.addUser('frank');
  const f = await rawLogin(s.port, 'frank', 'phone');
  f.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
  const enabled = await f.waitFor(/<enabled[^>]*id="([^"]+)"/);
  const id = /id="([^"]+)"/.exec(enabled.slice(enabled.indexOf('<enabled')))![1]!;
  f.close();
  // A phone comes back after a while: later than the listener once forgot a closed socket's stream (6 s).
  await new Promise((r) => setTimeout(r, 6500));
  let f2: RawClient | null = null;
  for (let i = 0; i < 50 && !f2; i++) f2 = await tryResume(s.port, 'frank', id); // until the server saw the drop
  assert.ok(f2, 'resumed');
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    s.stop().then(() => true),
    new Promise<boolean>((r) => { timer = setTimeout(() => r(false), 20_000); }),
  ]).finally(() => clearTimeout(timer));
  assert.ok(stopped, 'the node stopped within 20 s');
  await f2!.waitFor(/system-shutdown/);
  await f2!.waitClosed();
});

test('a new login taking the resource of a detached stream binds at once, and gets what the old one never acked', async () => {
  const old = await rawLogin(server.port, 'carol', 'phone');
  old.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
  await old.waitFor(/<enabled[^>]*resume="true"/);
  const a = await rawLogin(server.port, 'alice', 'desk');
  a.send(msg('carol@localhost/phone', 'never-acked'));
  await old.waitFor(/never-acked/);
  old.close(); // detached: resumable for 30 s
  await new Promise((r) => setTimeout(r, 200));
  // A client that does not resume (nbxmpp after a restart) logs in again with the same resource:
  // its bind must not wait for the detached stream's resumption timeout.
  const started = Date.now();
  const again = await rawLogin(server.port, 'carol', 'phone');
  assert.ok(Date.now() - started < 4000, `bind took ${Date.now() - started} ms`);
  again.send('<presence/>');
  await again.waitFor(/never-acked/);
  for (const c of [a, again]) c.close();
});

test('a session that is not resumed in time sends its unacknowledged stanzas to offline storage', async () => {
  const quick = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 1; });
  await quick.addUser('frank'); await quick.addUser('gina');
  const f = await rawLogin(quick.port, 'frank', 'phone');
  f.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
  await f.waitFor(/<enabled/);
  const g = await rawLogin(quick.port, 'gina', 'pc');
  g.send(msg('frank@localhost/phone', 'unacked-1') + msg('frank@localhost/phone', 'unacked-2'));
  await f.waitFor(/unacked-2/);
  f.close(); // never acknowledged
  await new Promise((r) => setTimeout(r, 200));
  g.send(msg('frank@localhost', 'while-detached'));
  await new Promise((r) => setTimeout(r, 2000)); // the 1 s resumption window passes
  const f2 = await rawLogin(quick.port, 'frank', 'laptop');
  f2.send('<presence/>');
  await f2.waitFor(/while-detached/);
  assert.equal(bodies(f2.received).sort(), ['unacked-1', 'unacked-2', 'while-detached']);
  assert.match(f2.received, /<delay xmlns="urn:xmpp:delay"/);
  f2.close(); g.close();
  await quick.stop();
});

test('at the session limit a detached session gives way to a new login, and loses nothing; only live sessions refuse one (#30.13)', async () => {
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 300; c.limits.sessions_per_account = 2; });
  try {
    await s.addUser('kim'); await s.addUser('lee');
    const lee = await rawLogin(s.port, 'lee', 'pc');
    const detach = async (resource: string, body?: string) => {
      const k = await rawLogin(s.port, 'kim', resource);
      k.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
      await k.waitFor(/<enabled/);
      if (body) { lee.send(msg(`kim@localhost/${resource}`, body)); await k.waitFor(new RegExp(body)); }
      k.close(); // the connection drops: the session waits for a resumption
      await until(() => s.logs.some((l) => l.includes(`kim@localhost: ${resource} detached`)), 10_000, `${resource} detached`);
    };
    await detach('one', 'held-by-one');
    await detach('two');
    // both places are taken by detached sessions: the oldest (one) gives way
    const three = await rawLogin(s.port, 'kim', 'three');
    three.send('<presence/>');
    assert.ok(s.logs.some((l) => /kim@localhost: one, detached since \S+, ended for a new login \(at most 2 sessions per account\)/.test(l)), s.logs.join('\n'));
    const four = await rawLogin(s.port, 'kim', 'four'); // two gives way
    four.send('<presence/>');
    // what one held is routed again: to three, or to two (still available, detached) and, once two
    // gives way too, on to three and four; never lost
    await until(() => /held-by-one/.test(three.received + four.received), 10_000, 'the message one held');
    // three and four are live: a fifth is refused
    const five = await rawLogin(s.port, 'kim', 'five'); // its bind is answered, with an error
    assert.match(five.received, /<iq[^>]*type="error"[^>]*>[\s\S]*resource-constraint[\s\S]*at most 2 sessions per account/);
    for (const c of [lee, three, four, five]) c.close();
  } finally { await s.stop(); }
});

test('a message to the bare JID reaches each resource once, though the copy of one that expires detached comes back', async () => {
  const quick = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 1; });
  await quick.addUser('hana'); await quick.addUser('ivan');
  const phone = await rawLogin(quick.port, 'hana', 'phone');
  phone.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
  await phone.waitFor(/<enabled/);
  const desk = await rawLogin(quick.port, 'hana', 'desk');
  desk.send('<presence/>');
  await phone.waitFor(/<presence from="hana@localhost\/desk"/);
  phone.close(); // detached, with presence: the next message to hana@localhost goes to both
  await new Promise((r) => setTimeout(r, 200));
  const i = await rawLogin(quick.port, 'ivan', 'pc');
  i.send(msg('hana@localhost', 'for both'));
  await desk.waitFor(/for both/);
  // The phone's stream expires after 1 s and hands its copy back; the desk has it already.
  await desk.waitFor(/<presence[^>]*from="hana@localhost\/phone"[^>]*type="unavailable"|<presence[^>]*type="unavailable"[^>]*from="hana@localhost\/phone"/, 10_000);
  const deadline = Date.now() + 10_000;
  while (!quick.logs.some((l) => l.includes('hana@localhost: a copy of a message that phone never got is not routed again: desk has it')) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(quick.logs.some((l) => l.includes('not routed again: desk has it')), quick.logs.slice(-10).join('\n'));
  assert.equal(bodies(desk.received), ['for both']);
  // Nothing went to offline storage either: a new resource gets nothing.
  const later = await rawLogin(quick.port, 'hana', 'later');
  later.send(`<presence/><iq type='get' id='p1'><query xmlns='jabber:iq:roster'/></iq>`); // answered by the user actor after the login's offline flush
  await later.waitFor(/id="p1"/);
  assert.equal(bodies(later.received), []);
  for (const c of [desk, i, later]) c.close();
  await quick.stop();
});

test('when every resource a bare-JID message reached expires detached, it is stored offline once', async () => {
  const quick = await startServer((c) => { c.c2s_require_encryption = false; c.stream_management.resume_timeout_seconds = 1; });
  await quick.addUser('jun'); await quick.addUser('kim');
  const devices = [];
  for (const r of ['phone', 'tablet']) {
    const d = await rawLogin(quick.port, 'jun', r);
    d.send(`<enable xmlns='${SM}' resume='true'/><presence/>`);
    await d.waitFor(/<enabled/);
    devices.push(d);
  }
  await devices[0]!.waitFor(/<presence from="jun@localhost\/tablet"/);
  const k = await rawLogin(quick.port, 'kim', 'pc');
  k.send(msg('jun@localhost', 'for both'));
  for (const d of devices) await d.waitFor(/for both/);
  for (const d of devices) d.close(); // neither acknowledged it
  const deadline = Date.now() + 10_000;
  while (!quick.logs.some((l) => l.includes('jun@localhost: a copy of a message that')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const later = await rawLogin(quick.port, 'jun', 'later');
  later.send('<presence/>');
  await later.waitFor(/for both/, 10_000);
  later.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
  await later.waitFor(/id="r1"/);
  assert.equal(bodies(later.received), ['for both'], quick.logs.filter((l) => l.includes('jun')).join('\n') + later.received);
  for (const c of [k, later]) c.close();
  await quick.stop();
});

test('the server asks for an ack soon after delivering, so a client that acks and closes gets nothing twice', async () => {
  const h = await rawLogin(server.port, 'carol', 'once');
  h.send(`<enable xmlns='${SM}'/>`);
  await h.waitFor(/<enabled/);
  const a = await rawLogin(server.port, 'alice', 'once');
  a.send(msg('carol@localhost/once', 'just once'));
  await h.waitFor(/just once/);
  await h.next(/<r xmlns="urn:xmpp:sm:3"\/>/, 3000); // asked, without 8 stanzas waiting
  h.send(`<a xmlns='${SM}' h='1'/></stream:stream>`);
  await h.waitClosed();
  const again = await rawLogin(server.port, 'carol', 'once');
  again.send('<presence/>');
  await new Promise((r) => setTimeout(r, 500));
  assert.not.match(again.received, /just once/);
  again.close(); a.close();
});

test('failures that are not wrong credentials do not count towards closing the stream (clients fall back)', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  for (let i = 0; i < 6; i++) {
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!not base64!!</auth>`);
    await c.next(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><incorrect-encoding\/>/);
  }
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0carol\0secret').toString('base64')}</auth>`);
  await c.next(/<success/);
  assert.not.match(c.received, /stream:error/);
  c.close();
});

test('resuming an unknown or expired stream fails with item-not-found', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0carol\0secret').toString('base64')}</auth>`);
  await c.waitFor(/<success/);
  c.send(OPEN);
  await c.waitFor(/<sm xmlns/);
  c.send(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
  await c.waitFor(/<failed xmlns="urn:xmpp:sm:3"[^>]*><item-not-found/);
  c.close();
});

test('<enable/> pipelined between stanzas: the count starts where it came in, though the session answers it later', async () => {
  const a = await rawLogin(server.port, 'alice', 'pipe');
  a.send(`<presence/><enable xmlns='${SM}'/>${msg('eve@localhost', '1')}${msg('eve@localhost', '2')}<r xmlns='${SM}'/>`);
  await a.waitFor(/<enabled xmlns="urn:xmpp:sm:3"/);
  await a.waitFor(/<a xmlns="urn:xmpp:sm:3" h="2"\/>/);
  a.close();
});

test('the session allows each request where it belongs: <enable/> once and after bind, <resume/> between auth and bind; the rest is feature-not-implemented', async () => {
  const failed = (condition: string) => new RegExp(`<failed xmlns="${SM}"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>`);
  // Before authentication.
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  c.send(`<resume xmlns='${SM}' previd='x' h='0'/>`);
  await c.waitFor(failed('unexpected-request'));
  // Authenticated, not bound: no <enable/> yet.
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0bob\0secret').toString('base64')}</auth>`);
  await c.waitFor(/<success/);
  c.send(OPEN);
  await c.waitFor(/<sm xmlns/);
  c.send(`<enable xmlns='${SM}'/>`);
  await c.waitFor(failed('unexpected-request'));
  c.close();
  // Bound: <enable/> once; <resume/> no longer.
  const b = await rawLogin(server.port, 'bob', 'twice');
  b.send(`<enable xmlns='${SM}'/>`);
  await b.waitFor(/<enabled/);
  b.send(`<enable xmlns='${SM}'/>`);
  await b.waitFor(failed('unexpected-request'));
  b.send(`<resume xmlns='${SM}' previd='x' h='0'/><unknown xmlns='${SM}'/>`);
  await b.waitFor(/unexpected-request[\s\S]*unexpected-request[\s\S]*feature-not-implemented/);
  assert.not.match(b.received, /stream:error/);
  b.close();
});

test('a session actor killed from outside is restarted; the client connection stays open and working', async () => {
  const c = await rawLogin(server.port, 'carol', 'desk');
  c.send(`<enable xmlns='${SM}'/><presence/>`);
  await c.waitFor(/<enabled/);
  const a = await rawLogin(server.port, 'alice', 'kill');
  a.send(`<presence/>`);
  assert.ok(await server.node.runtime.kill('session:carol@localhost/desk'));
  // The connection is not closed, the next stanzas are answered and mail still arrives.
  c.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.waitFor(/id="p1"/);
  a.send(msg('carol@localhost/desk', 'after the crash'));
  await c.waitFor(/after the crash/);
  c.send(`<r xmlns='${SM}'/>`);
  await c.waitFor(/<a xmlns="urn:xmpp:sm:3" h="2"\/>/);
  assert.not.ok(c.closed);
  assert.not.match(c.received, /stream:error/);
  assert.ok(server.logs.some((l) => l.includes('session:carol@localhost/desk crashed: kill')), 'the crash is logged');
  c.close(); a.close();
});


test('deliveries the client has not acknowledged when the threads of its actors die are not written again (#8)', async () => {
  const c = await rawLogin(server.port, 'hank', 'dup');
  c.send(`<enable xmlns='${SM}'/><presence/>`);
  await c.waitFor(/<enabled/);
  const a = await rawLogin(server.port, 'alice', 'dup');
  a.send(`<presence/>${msg('hank@localhost/dup', 'one')}${msg('hank@localhost', 'two')}`);
  await c.waitFor(/<body>two<\/body>/);
  // Not acknowledged: the connection holds both receipts, so both durable messages are still on disk,
  // and the replacement threads load them again.
  const rt = server.node.runtime;
  const before = { dropped: traffic.duplicatesDropped, restarts: rt.counters.schedulerRestarts };
  const threads = new Set(['user:hank@localhost', 'session:hank@localhost/dup'].map((a) => rt.router.place(a)));
  for (const t of threads) await rt.worker(t)!.terminate();
  await until(() => rt.counters.schedulerRestarts >= before.restarts + threads.size, 10_000, 'threads replaced');
  a.send(msg('hank@localhost/dup', 'three'));
  await c.waitFor(/<body>three<\/body>/);
  assert.equal(bodies(c.received), ['one', 'two', 'three']);
  assert.ok(traffic.duplicatesDropped >= before.dropped + 2, 'the redelivered ones were dropped, and counted');
  c.send(`<r xmlns='${SM}'/>`);
  await c.waitFor(/<a xmlns="urn:xmpp:sm:3" h="\d+"\/>/);
  assert.not.match(c.received, /stream:error/);
  c.close(); a.close();
});

test.run();
