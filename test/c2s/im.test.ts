// Instant messaging with a real client library over real sockets: roster, subscriptions, presence,
// chat, offline storage (RFC 6121, XEP-0160, XEP-0203), Direct TLS (XEP-0368).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, isMessage, isPresence, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test node's certificate is self-signed
let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['romeo', 'juliet', 'nurse', 'tybalt']) await server.addUser(u);
});
test.after(async () => { await server.stop(); });

test('two users add each other, see each other online, and chat', async () => {
  const romeo = await login(server.port, 'romeo');
  const juliet = await login(server.port, 'juliet');
  const roster = await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  assert.equal(roster.getChild('query')!.getChildren('item'), []);
  await romeo.c.send(xml('presence'));
  await juliet.c.send(xml('presence'));
  // Romeo asks; Juliet approves and asks back (RFC 6121 §3.1).
  await romeo.c.send(xml('presence', { to: 'juliet@localhost', type: 'subscribe' }));
  await juliet.next((e) => e.is('presence') && e.attrs.type === 'subscribe' && e.attrs.from === 'romeo@localhost');
  await juliet.c.send(xml('presence', { to: 'romeo@localhost', type: 'subscribed' }));
  await romeo.next(isPresence('juliet@localhost/test'));
  await juliet.c.send(xml('presence', { to: 'romeo@localhost', type: 'subscribe' }));
  await romeo.next((e) => e.is('presence') && e.attrs.type === 'subscribe');
  await romeo.c.send(xml('presence', { to: 'juliet@localhost', type: 'subscribed' }));
  await juliet.next(isPresence('romeo@localhost/test'));
  const r2 = await romeo.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  const item = r2.getChild('query')!.getChild('item')!;
  assert.is(item.attrs.jid, 'juliet@localhost');
  assert.is(item.attrs.subscription, 'both');
  await romeo.c.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', {}, 'It is my lady')));
  const m = await juliet.next(isMessage('It is my lady'));
  assert.is(m.attrs.from, romeo.jid);
  await juliet.c.send(xml('message', { to: m.attrs.from, type: 'chat' }, xml('body', {}, 'Ay me')));
  await romeo.next(isMessage('Ay me'));
  // Going offline is seen by the contact (RFC 6121 §4.5).
  await juliet.stop();
  await romeo.next(isPresence('juliet@localhost/test', 'unavailable'));
  await romeo.stop();
});

test('a message to an offline user is stored and delivered at their next available presence, with a delay stamp', async () => {
  const nurse = await login(server.port, 'nurse');
  await nurse.c.send(xml('message', { to: 'tybalt@localhost', type: 'chat' }, xml('body', {}, 'one')));
  await nurse.c.send(xml('message', { to: 'tybalt@localhost', type: 'normal' }, xml('body', {}, 'two')));
  await nurse.c.send(xml('message', { to: 'tybalt@localhost', type: 'headline' }, xml('body', {}, 'not stored')));
  await new Promise((r) => setTimeout(r, 300));
  const tybalt = await login(server.port, 'tybalt');
  await new Promise((r) => setTimeout(r, 200));
  assert.is(tybalt.inbox.filter((e) => e.is('message')).length, 0, 'nothing before initial presence');
  await tybalt.c.send(xml('presence'));
  const one = await tybalt.next(isMessage('one'));
  const two = await tybalt.next(isMessage('two'));
  for (const m of [one, two]) {
    const delay = m.getChild('delay', 'urn:xmpp:delay');
    assert.ok(delay, 'has a XEP-0203 delay');
    assert.is(delay!.attrs.from, 'localhost');
    assert.ok(!Number.isNaN(Date.parse(delay!.attrs.stamp!)));
  }
  assert.is(tybalt.inbox.filter(isMessage('not stored')).length, 0);
  await tybalt.stop();
  // Delivered once: a new session does not get them again.
  const again = await login(server.port, 'tybalt', { presence: true });
  await new Promise((r) => setTimeout(r, 300));
  assert.is(again.inbox.filter((e) => e.is('message')).length, 0);
  await again.stop();
  await nurse.stop();
});

test('service discovery, ping, version and time answer', async () => {
  const c = await login(server.port, 'romeo');
  const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
  for (const f of ['urn:xmpp:ping', 'jabber:iq:version', 'urn:xmpp:time', 'msgoffline', 'http://jabber.org/protocol/disco#info']) assert.ok(features.includes(f), `feature ${f}`);
  await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  const v = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'jabber:iq:version' })));
  assert.is(v.getChild('query')!.getChildText('name'), 'Chorus');
  const t = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('time', { xmlns: 'urn:xmpp:time' })));
  assert.ok(t.getChild('time')!.getChildText('utc'));
  await c.stop();
});

test('Direct TLS (XEP-0368) login and chat', async () => {
  const a = await login(server.tlsPort, 'romeo', { tls: 'direct', resource: 'tls', presence: true });
  const b = await login(server.port, 'nurse', { presence: true });
  await b.c.send(xml('message', { to: 'romeo@localhost/tls', type: 'chat' }, xml('body', {}, 'over direct TLS')));
  await a.next(isMessage('over direct TLS'));
  await a.stop(); await b.stop();
});

test.run();
