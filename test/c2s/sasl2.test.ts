// XEP-0388 (SASL2) with XEP-0386 (Bind 2) and XEP-0198 enabled inline: a login in one round trip
// for SCRAM's two, no stream restart, the resource bound and stream management on in <success/>.
// Driven by xmpp.js (@xmpp/client, which speaks SASL2 when offered) over STARTTLS, and by a raw
// client for the exact elements and the error paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { client, xml, type Element } from '@xmpp/client';
import { createHmac } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { OPEN, RawClient, rawLogin, startServer, type TestServer } from '../helpers/xmpp.ts';
import { setPassword } from '../../src/storage/accounts.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate

let server: TestServer;

test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; c.c2s_fast_token_days = 7; });
  for (const u of ['alice', 'bob', 'carol']) await server.addUser(u, 'secret');
});
test.after(async () => { await server.stop(); });

interface Js { c: ReturnType<typeof client>; sent: Element[]; got: Element[]; errors: Error[] }
async function xmppJs(user: string, o: { password?: string; agent?: string; resource?: string; reconnect?: boolean } = {}): Promise<Js> {
  const c = client({
    service: `xmpp://127.0.0.1:${server.port}`, domain: 'localhost', username: user, password: o.password ?? 'secret', resource: o.resource ?? 'phone',
    ...(o.agent ? { userAgent: xml('user-agent', { id: o.agent }) } : {}),
  });
  const js: Js = { c, sent: [], got: [], errors: [] };
  c.on('send', (el: Element) => js.sent.push(el));
  c.on('element', (el: Element) => js.got.push(el));
  c.on('error', (e: Error) => js.errors.push(e));
  if (!o.reconnect) c.reconnect.stop();
  return js;
}

const until = async (f: () => boolean, what: string, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('xmpp.js logs in with SASL2: authenticated, bound and stream management enabled in one <success/>, no restart, no bind IQ', async () => {
  const a = await xmppJs('alice');
  await a.c.start();
  const auth = a.sent.find((e) => e.is('authenticate', 'urn:xmpp:sasl:2'));
  assert.ok(auth, 'SASL2 used');
  assert.is(auth!.attrs.mechanism, 'SCRAM-SHA-1');
  assert.ok(auth!.getChild('bind', 'urn:xmpp:bind:0')?.getChild('enable', 'urn:xmpp:sm:3'), 'XEP-0198 asked inline');
  assert.not.ok(a.sent.some((e) => e.is('auth') || e.is('iq')), 'no RFC 6120 auth, no bind IQ');
  const success = a.got.find((e) => e.is('success', 'urn:xmpp:sasl:2'))!;
  const jid = success.getChildText('authorization-identifier')!;
  assert.match(jid, /^alice@localhost\/phone\/[A-Za-z0-9_-]{12}$/, 'the tag, then an id of our own');
  assert.is(a.c.jid!.toString(), jid);
  assert.ok(success.getChild('bound', 'urn:xmpp:bind:0')?.getChild('enabled', 'urn:xmpp:sm:3'), 'enabled inside bound');
  assert.ok(success.getChild('bound', 'urn:xmpp:bind:0')?.getChild('metadata', 'urn:xmpp:mam:2'), 'the archive\'s metadata inside bound (XEP-0386)');
  assert.ok(a.c.streamManagement.enabled);
  // The features after <success/> are a bound stream's: no bind, no sm (enabled already).
  const features = a.got.filter((e) => e.is('features', 'http://etherx.jabber.org/streams')).pop()!;
  assert.not.ok(features.getChild('bind'));
  assert.not.ok(features.getChild('sm'));
  assert.ok(features.getChild('csi', 'urn:xmpp:csi:0'));

  // It works as a session: a message to bob, logged in the RFC 6120 way, and his answer.
  const bob = await rawLogin(server.port, 'bob', 'desk');
  bob.send("<presence/>");
  await a.c.send(xml('message', { to: 'bob@localhost/desk', type: 'chat', id: 'm1' }, xml('body', {}, 'hi bob')));
  await bob.waitFor(new RegExp(`from="${jid.replace(/[/]/g, '\\/')}"[^>]*>.*hi bob`));
  bob.send(`<message to='${jid}' type='chat' id='m2'><body>hi alice</body></message>`);
  await until(() => a.got.some((e) => e.is('message') && e.getChildText('body') === 'hi alice'), 'the answer');
  bob.close();
  await a.c.stop();
});

test('the same installation (user-agent id) gets the same resource back, and its new login replaces its old session', async () => {
  const agent = 'd7a4c0de-5a8e-4a51-9d3f-1b2a3c4d5e6f';
  const first = await xmppJs('carol', { agent, resource: 'tablet' });
  await first.c.start();
  const jid = first.c.jid!.toString();
  const second = await xmppJs('carol', { agent, resource: 'tablet' });
  await second.c.start();
  assert.is(second.c.jid!.toString(), jid);
  await until(() => first.got.some((e) => e.is('error', 'http://etherx.jabber.org/streams') && !!e.getChild('conflict')), 'the old stream ends with conflict');
  const other = await xmppJs('carol', { agent: 'another-install', resource: 'tablet' });
  await other.c.start();
  assert.is.not(other.c.jid!.toString(), jid);
  await second.c.stop();
  await other.c.stop();
});

test('a wrong password: <failure/> in the SASL2 namespace with the RFC 6120 condition; the stream stays open for another try', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.next(/<authentication xmlns="urn:xmpp:sasl:2">.*?<bind xmlns="urn:xmpp:bind:0"><inline><feature var="urn:xmpp:sm:3"\/>.*?<\/inline><\/bind>.*?<\/authentication>/);
  const plain = (pw: string) => Buffer.from(`\0alice\0${pw}`).toString('base64');
  c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${plain('wrong')}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>raw</tag></bind></authenticate>`);
  await c.next(/<failure xmlns="urn:xmpp:sasl:2"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/><\/failure>/);
  // Without Bind 2: authenticated (a bare JID), then the features to bind with — no restart.
  c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${plain('secret')}</initial-response></authenticate>`);
  await c.next(/<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>alice@localhost<\/authorization-identifier><\/success><stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
  c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>`);
  await c.next(/<jid>alice@localhost\/raw<\/jid>/);
  c.close();
});

test('a SCRAM exchange in the SASL2 namespace: challenge, response, and the server signature in <additional-data/>', async () => {
  const a = await xmppJs('bob', { resource: 'laptop' });
  await a.c.start();
  assert.ok(a.got.some((e) => e.is('challenge', 'urn:xmpp:sasl:2')));
  assert.ok(a.sent.some((e) => e.is('response', 'urn:xmpp:sasl:2')));
  const data = a.got.find((e) => e.is('success', 'urn:xmpp:sasl:2'))!.getChildText('additional-data')!;
  assert.match(Buffer.from(data, 'base64').toString(), /^v=/, 'verified by xmpp.js before it went on');
  await a.c.stop();
});

test('FAST with xmpp.js: the password login asks for a token; the next login is one HMAC, same resource; a password change revokes the token', async () => {
  const a = await xmppJs('alice', { agent: 'fast-install-1', resource: 'pad' });
  await a.c.start();
  const first = a.sent.find((e) => e.is('authenticate'))!;
  assert.is(first.getChild('request-token', 'urn:xmpp:fast:0')?.attrs.mechanism, 'HT-SHA-256-NONE');
  const token = a.got.find((e) => e.is('success'))!.getChild('token', 'urn:xmpp:fast:0')!;
  const days = (Date.parse(token.attrs.expiry!) - Date.now()) / 86_400_000;
  assert.ok(token.attrs.token && days > 6.99 && days <= 7, `a token for c2s_fast_token_days (7), not ${days}`);
  const jid = a.c.jid!.toString();
  await a.c.stop();

  a.sent.length = 0; a.got.length = 0;
  await a.c.start();
  const second = a.sent.find((e) => e.is('authenticate'))!;
  assert.is(second.attrs.mechanism, 'HT-SHA-256-NONE');
  assert.ok(second.getChild('fast', 'urn:xmpp:fast:0'));
  assert.not.ok(a.got.some((e) => e.is('challenge')), 'one round trip');
  assert.is(a.c.jid!.toString(), jid);
  await a.c.stop();

  // A password change: the token no longer works; xmpp.js falls back to the password and gets a new one.
  await setPassword(server.node.runtime.db, 'alice@localhost', 'secret');
  a.sent.length = 0; a.got.length = 0;
  await a.c.start();
  assert.equal(a.sent.filter((e) => e.is('authenticate')).map((e) => e.attrs.mechanism), ['HT-SHA-256-NONE', 'SCRAM-SHA-1']);
  assert.ok(a.got.some((e) => e.is('failure', 'urn:xmpp:sasl:2') && !!e.getChild('not-authorized')));
  assert.ok(a.got.find((e) => e.is('success'))!.getChild('token', 'urn:xmpp:fast:0'), 'a new token');
  await a.c.stop();
});

test('FAST bound to the TLS channel (HT-SHA-256-EXPR): the proof and the answer carry the exporter; the token works with its own mechanism only', async () => {
  const plain = Buffer.from('\0bob\0secret').toString('base64');
  const c = await RawClient.connectTls(server.tlsPort);
  c.send(OPEN);
  await c.next(/<fast xmlns="urn:xmpp:fast:0"><mechanism>HT-SHA-256-EXPR<\/mechanism><mechanism>HT-SHA-256-ENDP<\/mechanism><mechanism>HT-SHA-256-NONE<\/mechanism><\/fast>/);
  c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${plain}</initial-response><user-agent id='raw-install'/><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-EXPR'/></authenticate>`);
  const token = (await c.next(/<token xmlns="urn:xmpp:fast:0" expiry="[^"]+" token="([^"]+)"\/><\/success>/))[1]!;
  c.close();

  const hmac = (label: string, cb: Buffer) => createHmac('sha256', token).update(label).update(cb).digest();
  const login = async (mechanism: string, withBinding: boolean) => {
    const t = await RawClient.connectTls(server.tlsPort);
    const exporter = (t.socket as TLSSocket).exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
    t.send(OPEN);
    await t.next(/<\/stream:features>/);
    const proof = Buffer.concat([Buffer.from('bob\0'), hmac('Initiator', withBinding ? exporter : Buffer.alloc(0))]).toString('base64');
    t.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='${mechanism}'><initial-response>${proof}</initial-response><user-agent id='raw-install'/><fast xmlns='urn:xmpp:fast:0'/></authenticate>`);
    const m = await t.next(/<(success|failure) xmlns="urn:xmpp:sasl:2">(?:<additional-data>([^<]*)<\/additional-data>)?/);
    t.close();
    return { ok: m[1] === 'success', answer: m[2] ? Buffer.from(m[2], 'base64') : null, exporter };
  };
  const good = await login('HT-SHA-256-EXPR', true);
  assert.ok(good.ok);
  assert.equal(good.answer, hmac('Responder', good.exporter), 'the server proves it holds the token, on this channel');
  assert.not.ok((await login('HT-SHA-256-NONE', false)).ok, 'not with another mechanism');
  assert.not.ok((await login('HT-SHA-256-EXPR', false)).ok, 'not without the channel binding');
  assert.ok((await login('HT-SHA-256-EXPR', true)).ok, 'still good');
});

test('XEP-0198 inside SASL2: xmpp.js cut off comes back with <resume/> in its <authenticate/>; the stream goes on, what came meanwhile arrives', async () => {
  const a = await xmppJs('alice', { agent: 'roaming-1', resource: 'roam', reconnect: true });
  await a.c.start();
  await a.c.send(xml('presence'));
  const jid = a.c.jid!.toString();
  const resumed = new Promise<void>((resolve) => (a.c.streamManagement as unknown as { on(e: 'resumed', f: () => void): void }).on('resumed', () => resolve()));
  a.sent.length = 0; a.got.length = 0;
  a.c.socket!.socket!.destroy(); // the network drops
  const bob = await rawLogin(server.port, 'bob', 'desk2');
  bob.send(`<message to='${jid}' type='chat' id='away1'><body>while you were away</body></message>`);
  await resumed;
  const auth = a.sent.find((e) => e.is('authenticate'))!;
  assert.ok(auth.getChild('resume', 'urn:xmpp:sm:3'), 'asked inline');
  const success = a.got.find((e) => e.is('success', 'urn:xmpp:sasl:2'))!;
  assert.is(success.getChildText('authorization-identifier'), jid, 'the same session');
  assert.ok(success.getChild('resumed', 'urn:xmpp:sm:3'));
  assert.not.ok(success.getChild('bound'), 'no new bind');
  await until(() => a.got.some((e) => e.is('message') && e.getChildText('body') === 'while you were away'), 'the message sent while away');
  bob.close();
  a.c.reconnect.stop();
  await a.c.stop();
});

test('a resumption inside SASL2 that fails is said in <success/> before the new bind', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.next(/<sm xmlns="urn:xmpp:sm:3"\/><\/inline><\/authentication>/);
  const plain = Buffer.from('\0carol\0secret').toString('base64');
  c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${plain}</initial-response><resume xmlns='urn:xmpp:sm:3' previd='gone' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>raw</tag></bind></authenticate>`);
  await c.next(/<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>carol@localhost\/raw\/[^<]+<\/authorization-identifier><failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/failed><bound xmlns="urn:xmpp:bind:0">.*?<\/bound><\/success>/);
  c.close();
});

test('Bind 2 turns on what the client asks inline: carbons (a module\'s, XEP-0280) and its XEP-0352 state', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.next(/<bind xmlns="urn:xmpp:bind:0"><inline><feature var="urn:xmpp:sm:3"\/><feature var="urn:xmpp:csi:0"\/><feature var="urn:xmpp:carbons:2"\/><\/inline><\/bind>/);
  const plain = Buffer.from('\0carol\0secret').toString('base64');
  c.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${plain}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>watch</tag><enable xmlns='urn:xmpp:carbons:2'/><inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>`);
  const jid = (await c.next(/<authorization-identifier>([^<]+)<\/authorization-identifier>/))[1]!;
  await c.next(/<\/stream:features>/);
  // carol's other device (RFC 6120 login, no carbons of its own) writes to bob: the watch gets the sent copy.
  const phone = await rawLogin(server.port, 'carol', 'phone');
  phone.send("<message to='bob@localhost' type='chat' id='c1'><body>copy me</body></message>");
  await c.next(new RegExp(`<message from="carol@localhost" to="${jid.replace(/\//g, '\\/')}" type="chat"><sent xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message[^>]*>.*copy me`));
  phone.close();
  c.close();
});

test('anything but the exchange before its outcome ends the stream; <authenticate/> is refused where SASL2 is not offered', async () => {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.next(/<\/stream:features>/);
  c.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>biwsbj1hbGljZSxyPWFiYw==</initial-response></authenticate>");
  await c.next(/<challenge xmlns="urn:xmpp:sasl:2">/);
  c.send("<message to='bob@localhost'><body>too early</body></message>");
  await c.next(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();

  const off = await startServer((cfg) => { cfg.c2s_require_encryption = false; cfg.c2s_sasl2 = false; });
  try {
    const r = await RawClient.connect(off.port);
    r.send(OPEN);
    const features = (await r.next(/<stream:features>.*?<\/stream:features>/))[0];
    assert.not.match(features, /urn:xmpp:sasl:2/);
    r.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHNlY3JldA==</initial-response></authenticate>");
    await r.next(/<unsupported-stanza-type xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await r.waitClosed();
  } finally {
    await off.stop();
  }
});

test.run();
