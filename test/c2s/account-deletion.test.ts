// `chorus deluser` on a running node: the account's user actor runs the modules' user/deleted hooks
// (contacts told, storage removed), closes its sessions with not-authorized, and ends with its
// snapshot, so an account made again under the same name starts empty.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { accountRequest } from '../../src/cli/accounts.ts';
import { keys } from '../../src/storage/db.ts';
import { offlineKeys } from '../../src/modules/offline.ts';
import { rosterKeys } from '../../src/modules/roster-store.ts';
import { rawLogin, startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, isPresence, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the test node's certificate is self-signed
let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['romeo', 'juliet', 'nurse']) await server.addUser(u);
});
test.after(async () => { await server.stop(); });

const BLOCKING = 'urn:xmpp:blocking';

async function keysOf(bare: string): Promise<string[]> {
  // Not the user actor's snapshot: the runtime removes it as the actor ends, after its answer; that
  // it went shows below, where the account made again has no blocklist.
  const prefixes = [keys.acct(bare), rosterKeys.of(bare), rosterKeys.ver(bare), offlineKeys.of(bare)];
  const out: string[] = [];
  for await (const k of server.node.runtime.db.keys()) if (prefixes.some((p) => k === p || (p.endsWith('!') && k.startsWith(p)))) out.push(k);
  return out;
}

test('deluser on a running node: contacts told, sessions closed, data gone, a new account starts empty', async () => {
  const romeo = await login(server.port, 'romeo', { presence: true });
  const juliet = await login(server.port, 'juliet', { presence: true });
  for (const [x, y, xj, yj] of [[romeo, juliet, 'romeo@localhost', 'juliet@localhost'], [juliet, romeo, 'juliet@localhost', 'romeo@localhost']] as const) {
    await x.c.send(xml('presence', { to: yj, type: 'subscribe' }));
    await y.next((e) => e.is('presence') && e.attrs.type === 'subscribe' && e.attrs.from === xj);
    await y.c.send(xml('presence', { to: xj, type: 'subscribed' }));
    await x.next(isPresence(`${yj}/`));
  }
  await romeo.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: BLOCKING }, xml('item', { jid: 'tybalt@localhost' }))));
  // A stored offline message: the nurse writes to romeo's bare JID while his only session has no presence.
  await romeo.c.send(xml('presence', { type: 'unavailable' }));
  await juliet.next(isPresence('romeo@localhost/', 'unavailable'));
  const nurse = await login(server.port, 'nurse');
  await nurse.c.send(xml('message', { to: 'romeo@localhost', type: 'chat', id: 'n1' }, xml('body', {}, 'for later')));
  await nurse.iq(xml('iq', { type: 'get', to: 'romeo@localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' }))).catch(() => undefined); // after the message in romeo's mailbox
  const raw = await rawLogin(server.tlsPort, 'romeo', 'raw', 'secret', { directTls: true });
  const before = await keysOf('romeo@localhost');
  assert.ok(before.some((k) => k.startsWith(offlineKeys.of('romeo@localhost'))), `an offline message is stored: ${before.join(', ')}`);
  assert.ok(before.some((k) => k.startsWith(rosterKeys.of('romeo@localhost'))));

  assert.equal(await accountRequest(server.config, 'deluser', { jid: 'romeo@localhost' }), { jid: 'romeo@localhost' });
  // Told as if romeo had removed her from his roster (RFC 6121 §2.5.2).
  await juliet.next((e) => e.is('presence') && e.attrs.type === 'unsubscribe' && e.attrs.from === 'romeo@localhost');
  await juliet.next((e) => e.is('presence') && e.attrs.type === 'unsubscribed' && e.attrs.from === 'romeo@localhost');
  const closed = await raw.waitFor(/<\/stream:stream>/);
  assert.match(closed, /<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text[^>]*>account deleted<\/text>/);
  assert.equal(await keysOf('romeo@localhost'), []);
  // Juliet's roster item for romeo says the subscription is over.
  const item = (await juliet.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })))).getChild('query')!.getChildren('item').find((i) => i.attrs.jid === 'romeo@localhost');
  assert.is(item?.attrs.subscription, 'none');

  await server.addUser('romeo', 'new');
  const again = await login(server.port, 'romeo', { password: 'new', resource: 'again' });
  assert.equal((await again.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })))).getChild('query')!.getChildren('item'), []);
  assert.equal((await again.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: BLOCKING })))).getChild('blocklist')!.getChildren('item'), []);
  for (const c of [again, juliet, nurse, romeo]) await c.stop();
  raw.close();
});

test('deluser of an unknown account names it', async () => {
  try {
    await accountRequest(server.config, 'deluser', { jid: 'ghost@localhost' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'no account ghost@localhost');
  }
});

test.run();
