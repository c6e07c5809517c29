// XEP-0077 for a logged-in account on a real socket: a password change (§3.3: the next login needs
// the new password) and the account deleting itself (§3.2).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RawClient, OPEN, rawLogin, startServer, type TestServer } from '../helpers/xmpp.ts';
import { listAccounts } from '../../src/storage/accounts.ts';

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; });
  for (const u of ['alice', 'bob']) await server.addUser(u, 'old-pw');
});
test.after(async () => { await server.stop(); });

/** Whether a PLAIN login with this password succeeds. */
async function logsIn(user: string, password: string): Promise<boolean> {
  const c = await RawClient.connect(server.port);
  c.send(OPEN);
  await c.waitFor(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
  const got = await c.waitFor(/<success|<failure/);
  c.close();
  return /<success/.test(got);
}

/** The answer to IQ `id` (the whole element). */
async function answer(c: RawClient, id: string): Promise<string> {
  return (await c.next(new RegExp(`<iq[^>]*id="${id}"[^>]*(?:/>|>[\\s\\S]*?</iq>)`)))[0];
}

test('an account changes its password in-band; the old one stops working, the open session stays', async () => {
  const a = await rawLogin(server.port, 'alice', 'pc', 'old-pw');
  a.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>`);
  assert.match(await answer(a, 'r1'), /type="result"[\s\S]*<registered\/>[\s\S]*<username>alice<\/username>/);
  a.send(`<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>bob</username><password>x</password></query></iq>`);
  assert.match(await answer(a, 'r2'), /type="error"[\s\S]*<not-authorized/, 'not someone else\'s');
  a.send(`<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>alice</username><password>new-pw</password></query></iq>`);
  assert.match(await answer(a, 'r3'), /type="result"/);
  assert.is(await logsIn('alice', 'old-pw'), false);
  assert.is(await logsIn('alice', 'new-pw'), true);
  assert.is(await logsIn('bob', 'old-pw'), true, 'bob is untouched');
  a.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`);
  assert.match(await answer(a, 'p1'), /type="result"/, 'the session that changed it is still there');
  a.close();
});

test('an account deletes itself: answered, then its sessions end with not-authorized, its roster goes, its password no longer works', async () => {
  await server.addUser('carol', 'pw');
  const c = await rawLogin(server.port, 'carol', 'pc', 'pw');
  const other = await rawLogin(server.port, 'carol', 'phone', 'pw');
  c.send(`<iq type='set' id='ro1'><query xmlns='jabber:iq:roster'><item jid='alice@localhost'/></query></iq>`);
  assert.match(await answer(c, 'ro1'), /type="result"/);
  c.send(`<iq type='set' id='del'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
  assert.match(await answer(c, 'del'), /type="result"/);
  for (const s of [c, other]) assert.match((await s.next(/<stream:error>[\s\S]*?<\/stream:error>/))[0], /<not-authorized/);
  assert.is(await logsIn('carol', 'pw'), false);
  assert.not.ok((await listAccounts(server.node.runtime.db)).includes('carol@localhost'));
  // Made anew, the account starts empty: nothing of the old roster is left.
  await server.addUser('carol', 'pw2');
  const again = await rawLogin(server.port, 'carol', 'pc', 'pw2');
  again.send(`<iq type='get' id='ro2'><query xmlns='jabber:iq:roster'/></iq>`);
  assert.not.match(await answer(again, 'ro2'), /alice@localhost/);
  again.close();
});

test.run();
