// Accounts made in-band (XEP-0077) as a new user's client makes them: slixmpp's xep_0077 plugin over
// STARTTLS, with the registration closed (the default) and an invitation from `chorus invite`
// (XEP-0401/0445), and with it open; raw XML for what a library would not send.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { freePort, RawClient, securedStream, startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';
import { accountRequest } from '../../src/cli/accounts.ts';
import { login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate
const SCRIPT = fileURLToPath(new URL('./register_slixmpp.py', import.meta.url));

let closed: TestServer;
let open: TestServer;
test.before(async () => {
  const http = await freePort();
  closed = await startServer((c) => { c.admins = ['admin@localhost']; c.listen.http = http; });
  for (const u of ['admin', 'alice']) await closed.addUser(u, 'pw');
  open = await startServer((c) => { c.modules.options.register = { allow_registration: true, min_seconds_between_registrations: 3600 }; });
});
test.after(async () => { await closed.stop(); await open.stop(); });

/** `chorus invite` against the running node (its admin socket), as the operator runs it. */
const invite = async (server: TestServer, target?: string, admin = false): Promise<string> => {
  const r = await accountRequest(server.config, 'invite', { host: 'localhost', days: 7, admin, ...(target ? { username: target } : {}) }) as { uri: string };
  return /preauth=([0-9a-f]+)/.exec(r.uri)![1]!;
};

const register = (server: TestServer, user: string, token?: string) =>
  scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', user, 'juliet-pw', ...(token ? [token] : [])]);

test('closed registration: slixmpp registers with an invitation, logs in with the new account on the same stream, and the invitation is used up', async () => {
  const token = await invite(closed);
  const out = await register(closed, 'juliet', token);
  assert.is(out.error, undefined, String(out.error));
  assert.is(out.token, 'accepted');
  assert.equal(out.fields, ['username', 'password']);
  assert.is(out.registered, true);
  assert.is(out.logged_in, 'juliet@localhost');
  assert.is(out.message, 'hello me');
  const again = await register(closed, 'romeo', token);
  assert.is(again.token, 'item-not-found', 'an invitation registers one account');
  assert.is(again.form, 'not-allowed');
});

test('chorus invite --admin: the account it makes sees and runs the admin commands; an account of an ordinary invitation does not', async () => {
  const commands = async (user: string) => {
    const c = await login(closed.port, user, { password: 'juliet-pw' });
    const items = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items', node: 'http://jabber.org/protocol/commands' })));
    const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node as string);
    const online = await c.iq(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'http://jabber.org/protocol/admin#get-online-users-list', action: 'execute' })))
      .then((r) => r.getChild('command')!.attrs.status as string, (e: { condition?: string }) => e.condition);
    await c.stop();
    return { nodes, online };
  };
  assert.is((await register(closed, 'warden', await invite(closed, undefined, true))).logged_in, 'warden@localhost');
  assert.is((await register(closed, 'page', await invite(closed))).logged_in, 'page@localhost');
  const warden = await commands('warden');
  assert.ok(warden.nodes.includes('http://jabber.org/protocol/admin#add-user'), warden.nodes.join(' '));
  assert.is(warden.online, 'executing', 'its form comes back');
  const page = await commands('page');
  assert.not.ok(page.nodes.some((n) => n.startsWith('http://jabber.org/protocol/admin#')), page.nodes.join(' '));
  assert.is(page.online, 'forbidden');
});

test('closed registration: without an invitation the form is refused', async () => {
  const out = await register(closed, 'mallory');
  assert.is(out.form, 'not-allowed');
  assert.is(out.logged_in, undefined);
});

test('an invitation naming the user reserves the name: the invitee takes that name only, and nobody else may take it', async () => {
  const token = await invite(closed, 'nurse');
  const taker = await register(closed, 'nurse', await invite(closed)); // an invitation that names nobody
  assert.is(taker.registered, 'conflict', 'the name is reserved for the invitee');
  const wrong = await register(closed, 'tybalt', token);
  assert.is(wrong.registered, 'not-allowed');
  const right = await register(closed, 'nurse', token);
  assert.is(right.registered, true);
  assert.is(right.logged_in, 'nurse@localhost');
});

test('open registration: slixmpp registers and logs in; a taken name is a conflict; an address registers once per interval', async () => {
  const out = await register(open, 'romeo');
  assert.is(out.error, undefined, String(out.error));
  assert.is(out.registered, true);
  assert.is(out.logged_in, 'romeo@localhost');
  const limited = await register(open, 'benvolio');
  assert.is(limited.registered, 'resource-constraint');
});

/** The xmpp: URI and expiry an invitation command (XEP-0401) completes with. */
const uriOf = (r: { getChild(n: string, ns?: string): any }) => {
  const fields = r.getChild('command', 'http://jabber.org/protocol/commands').getChild('x', 'jabber:x:data').getChildren('field');
  const value = (v: string) => fields.find((f: any) => f.attrs.var === v)?.getChildText('value');
  return { formType: value('FORM_TYPE'), uri: value('uri') as string, expire: value('expire') as string, page: value('landing-url') as string };
};

test('XEP-0401: an account invites a contact (ibr=y) and the invitee registers with it; an admin makes an account invitation for a name', async () => {
  const alice = await login(closed.port, 'alice', { password: 'pw' });
  const r = await alice.iq(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'urn:xmpp:invite#invite', action: 'execute' })));
  const got = uriOf(r);
  assert.is(got.formType, 'urn:xmpp:invite#invitation');
  assert.match(got.uri, /^xmpp:alice@localhost\?roster;preauth=[0-9a-f]{32};ibr=y$/);
  assert.ok(Date.parse(got.expire) > Date.now() + 6 * 86_400_000, 'valid for the configured week');
  const token = /preauth=([0-9a-f]+)/.exec(got.uri)![1]!;
  // Its web page, for someone with no XMPP app yet: which to install, and the link to open in it.
  assert.is(got.page, `http://localhost:${closed.config.listen.http}/invite/${token}`);
  const local = got.page.replace('localhost', '127.0.0.1');
  const html = await (await fetch(local)).text();
  assert.match(html, /<h1>alice@localhost invites you to chat<\/h1>/);
  assert.ok(html.includes(`href="${got.uri}"`), html);
  assert.match(html, /Conversations/);
  const mercutio = await register(closed, 'mercutio', token);
  assert.is(mercutio.registered, true);
  assert.is((await fetch(local)).status, 404, 'taken: the page says so');
  // XEP-0379, as the invitee's client does it: pre-approve the inviter, ask with the token. The
  // inviter's server approves for alice and asks back: both ways, with no question to anyone.
  const m = await login(closed.port, 'mercutio', { password: 'juliet-pw' });
  await m.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  await m.c.send(xml('presence', { type: 'subscribed', to: 'alice@localhost' }));
  await m.c.send(xml('presence', { type: 'subscribe', to: 'alice@localhost' }, xml('preauth', { xmlns: 'urn:xmpp:pars:0', token })));
  const both = (e: any) => e.is('iq') && e.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.subscription === 'both';
  assert.is((await alice.next(both)).getChild('query')!.getChild('item')!.attrs.jid, 'mercutio@localhost');
  assert.is((await m.next(both)).getChild('query')!.getChild('item')!.attrs.jid, 'alice@localhost');
  assert.not.ok(alice.inbox.some((e) => e.is('presence') && e.attrs.type === 'subscribe'), 'alice was asked nothing');
  // The token is spent: a second account cannot use it to register, nor to subscribe.
  const again = await register(closed, 'tybalt', token);
  assert.is(again.token, 'item-not-found');
  await m.stop();
  await alice.stop();

  const admin = await login(closed.port, 'admin', { password: 'pw' });
  const form = await admin.iq(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'urn:xmpp:invite#create-account', action: 'execute' })));
  const sessionid = form.getChild('command')!.attrs.sessionid;
  const done = await admin.iq(xml('iq', { type: 'set', to: 'localhost' }, xml('command', { xmlns: 'http://jabber.org/protocol/commands', node: 'urn:xmpp:invite#create-account', sessionid, action: 'complete' },
    xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'username' }, xml('value', {}, 'friar'))))));
  const account = uriOf(done);
  assert.match(account.uri, /^xmpp:friar@localhost\?register;preauth=[0-9a-f]{32}$/);
  const friar = await register(closed, 'friar', /preauth=([0-9a-f]+)/.exec(account.uri)![1]);
  assert.is(friar.logged_in, 'friar@localhost');
  await admin.stop();
});

const stream = (server: TestServer): Promise<RawClient> => securedStream(server.port);

test('raw: the stream features before authentication offer registration with a token (XEP-0445) and in-band registration', async () => {
  const c = await stream(closed);
  assert.match(c.received, /<register xmlns="urn:xmpp:ibr-token:0"\/>/);
  assert.match(c.received, /<register xmlns="http:\/\/jabber.org\/features\/iq-register"\/>/);
  c.close();
});

test('raw: a bad token is item-not-found; a taken name is a conflict; removal needs a login; other IQs before authentication end the stream', async () => {
  await closed.addUser('capulet', 'pw');
  const c = await stream(closed);
  c.send(`<iq type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='0123456789abcdef0123456789abcdef'/></iq>`);
  await c.next(/<iq[^>]*type="error"[^>]*id="p1"[\s\S]*?<item-not-found[\s\S]*?<\/iq>/);
  const token = await invite(closed);
  c.send(`<iq type='set' id='p2'><preauth xmlns='urn:xmpp:pars:0' token='${token}'/></iq>`);
  await c.next(/<iq[^>]*type="result"[^>]*id="p2"/);
  c.send(`<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>capulet</username><password>x</password></query></iq>`);
  await c.next(/<iq[^>]*type="error"[^>]*id="r1"[\s\S]*?<conflict[\s\S]*?<\/iq>/);
  c.send(`<iq type='set' id='r2'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
  await c.next(/<iq[^>]*type="error"[^>]*id="r2"[\s\S]*?<not-authorized[\s\S]*?<\/iq>/);
  c.send(`<iq type='set' id='r3'><query xmlns='jabber:iq:register'><username>paris</username></query></iq>`);
  await c.next(/<iq[^>]*type="error"[^>]*id="r3"[\s\S]*?<not-acceptable[\s\S]*?<\/iq>/);
  c.send(`<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>`);
  await c.next(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();
});

test('raw: requests before authentication sent together are answered in order (the stream waits for each)', async () => {
  const c = await stream(closed);
  c.send(`<iq type='get' id='g1'><query xmlns='jabber:iq:register'/></iq><iq type='set' id='g2'><preauth xmlns='urn:xmpp:pars:0' token='nope'/></iq><iq type='get' id='g3'><query xmlns='jabber:iq:register'/></iq>`);
  await c.next(/id="g1"[\s\S]*?<not-allowed[\s\S]*?id="g2"[\s\S]*?<item-not-found[\s\S]*?id="g3"[\s\S]*?<not-allowed/);
  c.close();
});

test.run();
