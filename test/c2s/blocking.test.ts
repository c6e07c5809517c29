// XEP-0191 blocking with a real client library over real sockets: a module written on the route
// hooks alone (pre-* in the sender's session and user actor, <kind>/<target> at the recipient).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, isMessage, isPresence, xml, type TestClient } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test node's certificate is self-signed
let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['romeo', 'juliet']) await server.addUser(u);
});
test.after(async () => { await server.stop(); });

const BLOCKING = 'urn:xmpp:blocking';
const blockIq = (verb: 'block' | 'unblock', jid?: string) => xml('iq', { type: 'set' }, xml(verb, { xmlns: BLOCKING }, ...(jid ? [xml('item', { jid })] : [])));
const errorOf = (e: { getChild(n: string): any }) => e.getChild('error')?.children?.[0]?.name;

async function subscribeBoth(a: TestClient, b: TestClient, aj: string, bj: string): Promise<void> {
  for (const [x, y, xj, yj] of [[a, b, aj, bj], [b, a, bj, aj]] as const) {
    await x.c.send(xml('presence', { to: yj, type: 'subscribe' }));
    await y.next((e) => e.is('presence') && e.attrs.type === 'subscribe' && e.attrs.from === xj);
    await y.c.send(xml('presence', { to: xj, type: 'subscribed' }));
    await x.next(isPresence(`${yj}/`));
  }
}

test('the server announces urn:xmpp:blocking; block, refusals both ways, unblock', async () => {
  const romeo = await login(server.port, 'romeo', { presence: true });
  const juliet = await login(server.port, 'juliet', { presence: true });
  await subscribeBoth(romeo, juliet, 'romeo@localhost', 'juliet@localhost');
  const info = await juliet.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  assert.ok(info.getChild('query')!.getChildren('feature').some((f) => f.attrs.var === BLOCKING));

  assert.equal((await juliet.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })))).getChild('blocklist')!.getChildren('item'), []);
  await juliet.iq(blockIq('block', 'romeo@localhost'));
  // the push to the resource that asked for the list, and unavailable to the blocked contact
  await juliet.next((e) => e.is('iq') && e.attrs.type === 'set' && e.getChild('block', BLOCKING)?.getChild('item')?.attrs.jid === 'romeo@localhost');
  await romeo.next(isPresence('juliet@localhost/test', 'unavailable'));

  await romeo.c.send(xml('message', { to: 'juliet@localhost', type: 'chat', id: 'r1' }, xml('body', {}, 'hello?')));
  const r1 = await romeo.next((e) => e.is('message') && e.attrs.id === 'r1' && e.attrs.type === 'error');
  assert.is(errorOf(r1), 'service-unavailable');
  await juliet.c.send(xml('message', { to: romeo.jid, type: 'chat', id: 'j1' }, xml('body', {}, 'go away')));
  const j1 = await juliet.next((e) => e.is('message') && e.attrs.id === 'j1' && e.attrs.type === 'error');
  assert.is(errorOf(j1), 'not-acceptable');
  assert.ok(j1.getChild('error')!.getChild('blocked', 'urn:xmpp:blocking:errors'));
  assert.not.ok(juliet.inbox.some(isMessage('hello?')));
  assert.not.ok(romeo.inbox.some(isMessage('go away')));

  // A second session of juliet's, logged in after the block, is held to it too.
  const juliet2 = await login(server.port, 'juliet', { resource: 'phone' });
  await juliet2.c.send(xml('message', { to: 'romeo@localhost', type: 'chat', id: 'j2' }, xml('body', {}, 'from the phone')));
  assert.is(errorOf(await juliet2.next((e) => e.attrs.id === 'j2' && e.attrs.type === 'error')), 'not-acceptable');
  await juliet2.stop();

  await juliet.iq(blockIq('unblock', 'romeo@localhost'));
  await romeo.next(isPresence('juliet@localhost/test'));
  await romeo.c.send(xml('message', { to: 'juliet@localhost', type: 'chat' }, xml('body', {}, 'friends again')));
  await juliet.next(isMessage('friends again'));
  await romeo.stop();
  await juliet.stop();
});

test.run();
