// Push notifications (XEP-0357) end to end: an app server as an external component (XEP-0114, a raw
// socket here, as the app vendors' push components are), alice's xmpp.js client registering it
// and going away, and bob's message waking her through it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { freePort, rawLogin, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, xml } from '../helpers/clients.ts';
import { until } from '../helpers/runtime.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate

let server: TestServer;
let port: number;
test.before(async () => {
  port = await freePort();
  server = await startServer((c) => {
    c.listen.component = port;
    c.components = { 'push.localhost': { secret: 'app-server-secret' } };
    c.modules.options.push = { include_sender: true };
    c.c2s_require_encryption = false; // the raw client of the detached-session test logs in in plaintext
    c.log_level = 'info'; // the detached-session test waits for the connection's line
  });
  for (const u of ['alice', 'bob']) await server.addUser(u, 'pw');
});
test.after(async () => { await server.stop(); });

async function appServer(): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='push.localhost'>`);
  const [, id] = await c.next(/<stream:stream[^>]*id="([^"]+)"[^>]*>/);
  c.send(`<handshake>${createHash('sha1').update(id + 'app-server-secret').digest('hex')}</handshake>`);
  await c.next(/<handshake\/>/);
  return c;
}

const enable = (node: string) => xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node },
  xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
    xml('field', { var: 'secret' }, xml('value', {}, 'device-secret')))));

test('alice registers the app server and leaves; bob\'s messages publish summaries to her node with her secret; back online, the count restarts; disabled, nothing', async () => {
  const app = await appServer();
  const alice = await login(server.port, 'alice', { password: 'pw', presence: true });
  const info = await alice.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === 'urn:xmpp:push:0'), 'the account says it can push');
  assert.is((await alice.iq(enable('node-1'))).attrs.type, 'result');
  await alice.stop();

  const bob = await login(server.port, 'bob', { password: 'pw', presence: true });
  for (const body of ['one', 'two']) await bob.c.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, body)));
  const [first] = await app.next(/<iq[^>]*to="push.localhost"[\s\S]*?<\/iq>/);
  assert.match(first, /from="alice@localhost"/);
  assert.match(first, /<publish node="node-1"><item><notification xmlns="urn:xmpp:push:0"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"[^>]*><value>urn:xmpp:push:summary<\/value><\/field><field var="message-count"><value>1<\/value><\/field><field var="last-message-sender"><value>bob@localhost<\/value>/);
  assert.not.match(first, /last-message-body/, 'no text unless the operator allows it');
  assert.match(first, /<publish-options><x xmlns="jabber:x:data" type="submit">[\s\S]*<field var="secret"><value>device-secret<\/value>/);
  const [second] = await app.next(/<iq[^>]*to="push.localhost"[\s\S]*?<\/iq>/);
  assert.match(second, /message-count"><value>2</);
  // The app server answers; a chat state alone wakes nobody.
  const id = /id="([^"]+)"/.exec(first)![1];
  app.send(`<iq type='result' from='push.localhost' to='alice@localhost' id='${id}'/>`);
  await bob.c.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));

  const back = await login(server.port, 'alice', { password: 'pw', presence: true });
  await back.next((e) => e.is('message') && e.getChildText('body') === 'two');
  assert.is((await back.iq(xml('iq', { type: 'set' }, xml('disable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: 'node-1' })))).attrs.type, 'result');
  await back.stop();
  await bob.c.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'three')));
  // Nothing more reaches the app server: the message is stored, and the next login gets it.
  const again = await login(server.port, 'alice', { password: 'pw', presence: true });
  await again.next((e) => e.is('message') && e.getChildText('body') === 'three');
  assert.is(app.received.match(/<iq[^>]*to="push.localhost"/g)!.length, 2, 'two notifications, for the two messages while push was on');
  await again.stop(); await bob.stop(); app.close();
});

test('a phone whose socket died while its session waits for a resumption (XEP-0198) is woken for a message held for it', async () => {
  const app = await appServer();
  const phone = await rawLogin(server.port, 'alice', 'phone', 'pw');
  phone.send(`<iq type='set' id='p1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='phone-node'/></iq>`);
  await phone.next(/id="p1"/);
  phone.send(`<enable xmlns='urn:xmpp:sm:3' resume='true'/><presence/>`);
  await phone.next(/<enabled[^>]*resume="true"/);
  const bob = await login(server.port, 'bob', { password: 'pw', presence: true });
  phone.close(); // the socket dies: the session is detached, kept for a resumption
  await until(() => server.logs.some((l) => l.includes('its session waits')), 10_000, 'the connection detached');
  // The account's actor hears of it through the session: a message sent before it does is delivered
  // live (no push); the next ones are held for the phone, and pushed.
  for (let i = 0; !app.received.includes('phone-node'); i++) {
    await bob.c.send(xml('message', { to: 'alice@localhost/phone', type: 'chat' }, xml('body', {}, `wake up ${i}`)));
    await new Promise((r) => setTimeout(r, 200));
    if (i > 50) throw new Error('no notification for the detached session');
  }
  assert.match(app.received, /<publish node="phone-node">/);
  await bob.stop(); app.close();
});

test('bad requests: no jid, a form of another type, too many services', async () => {
  const alice = await login(server.port, 'bob', { password: 'pw' });
  const err = async (el: ReturnType<typeof xml>) => { try { await alice.iq(el); return 'result'; } catch (e) { return (e as { condition?: string }).condition; } };
  assert.is(await err(xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:push:0', node: 'n' }))), 'bad-request');
  assert.is(await err(xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: 'n' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:example')))))), 'bad-request');
  for (let i = 0; i < 5; i++) assert.is(await err(xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: `n${i}` }))), 'result');
  assert.is(await err(xml('iq', { type: 'set' }, xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: 'n5' }))), 'resource-constraint');
  await alice.stop();
});

test.run();
