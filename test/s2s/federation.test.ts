// Federation between two Chorus nodes on loopback, serving a.test and b.test, each finding the other
// by s2s.hosts: outbound links (actors/s2s) with STARTTLS and Server Dialback (XEP-0220), inbound
// streams (actors/s2sin) that verify the key with the peer's server, and stanzas both ways between
// real clients (xmpp.js) over real sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { until } from '../helpers/runtime.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let a: TestServer, b: TestServer;
let closed: number; // nobody listens there

async function node(host: string, s2s: number, peer: string, peerPort: number): Promise<TestServer> {
  const server = await startServer((c) => {
    c.hosts = [host];
    c.listen.s2s = s2s;
    c.limits.auth_timeout_seconds = 5; // an authenticated link must outlive it (tested below)
    c.s2s.idle_timeout_seconds = 12;
    c.s2s.hosts = { [peer]: { host: '127.0.0.1', port: peerPort }, [`conference.${peer}`]: { host: '127.0.0.1', port: peerPort }, 'nowhere.test': { host: '127.0.0.1', port: closed } };
  });
  return server;
}

test.before(async () => {
  const pa = await freePort(), pb = await freePort();
  closed = await freePort();
  [a, b] = await Promise.all([node('a.test', pa, 'b.test', pb), node('b.test', pb, 'a.test', pa)]);
  await createAccount(a.node.runtime.db, 'alice@a.test', 'pw', { iterations: 4096 });
  await createAccount(b.node.runtime.db, 'bob@b.test', 'pw', { iterations: 4096 });
});
test.after(async () => { await Promise.all([a?.stop(), b?.stop()]); });

test('a message to a user of another server gets there over a dialback-authenticated link, and the answer comes back', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true });
  try {
    await alice.c.send(xml('message', { to: 'bob@b.test', type: 'chat', id: 'm1' }, xml('body', {}, 'hello from a')));
    const got = await bob.next(isMessage('hello from a'), 15_000);
    assert.is(got.attrs.from, alice.jid);
    await bob.c.send(xml('message', { to: alice.jid, type: 'chat', id: 'm2' }, xml('body', {}, 'hello from b')));
    const back = await alice.next(isMessage('hello from b'), 15_000);
    assert.is(back.attrs.from, bob.jid);
    // What the operator sees (chorus s2s, through the admin socket).
    const links = await a.admin('s2s') as Array<Record<string, unknown>>;
    assert.equal(links.find((l) => l.link === 'a.test → b.test'), {
      link: 'a.test → b.test', state: 'up', queued: 0, verifying: 0, failedTries: 0, transport: 'STARTTLS', authenticated: 'dialback', acknowledgements: 'XEP-0198', peerCertificate: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('authenticated links outlive the authentication timeout (5 s here): the next message takes the same streams', async () => {
  const ups = () => [...a.logs, ...b.logs].filter((l) => l.includes('authenticated (dialback)')).length;
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'late' });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'late' });
  try {
    await alice.c.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'are you there?')));
    await bob.next(isMessage('are you there?'), 15_000);
    const before = ups();
    // Past limits.auth_timeout_seconds, well within the idle timeout: what is to be shown is that nothing happens.
    await new Promise((r) => setTimeout(r, 5500));
    await alice.c.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'still there?')));
    await bob.next(isMessage('still there?'), 15_000);
    assert.is(ups(), before, 'no new authentication: the streams stayed up');
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('a request from another server\'s user to this server itself (disco#info, ping) is answered; one no module handles is service-unavailable', async () => {
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'disco' });
  try {
    const info = (await bob.iq(xml('iq', { type: 'get', to: 'a.test' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })))).getChild('query')!;
    assert.is(info.getChild('identity')?.attrs.category, 'server');
    assert.ok(info.getChildren('feature').some((f) => f.attrs.var === 'urn:xmpp:ping'), 'a.test says it answers pings');
    await bob.iq(xml('iq', { type: 'get', to: 'a.test' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const err = await bob.iq(xml('iq', { type: 'get', to: 'a.test' }, xml('query', { xmlns: 'urn:example:nothing' }))).then(() => null, (e: { condition?: string }) => e);
    assert.is(err?.condition, 'service-unavailable');
  } finally {
    await bob.c.stop();
  }
});

test('an idle link closes after s2s.idle_timeout_seconds (12 s here) and opens again for the next stanza', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'idle' });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'idle' });
  try {
    const closed = () => a.logs.filter((l) => l.includes('s2s a.test → b.test: idle, closing')).length;
    const before = closed();
    await alice.c.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'before the pause')));
    await bob.next(isMessage('before the pause'), 15_000);
    await until(() => closed() > before, 30_000, 'the link closed when idle');
    await until(() => (a.node.runtime.stats(true, 's2s').then((st) => st.flatMap((t) => t.list ?? []).length === 0)), 15_000, 'the idle link gone');
    await alice.c.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'after the pause')));
    await bob.next(isMessage('after the pause'), 15_000);
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('a subscription across servers (RFC 6121): asked, approved, and presence flows from then on', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'sub' });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'sub' });
  try {
    await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' }))); // roster pushes come to a client that asked for it
    await alice.c.send(xml('presence', { to: 'bob@b.test', type: 'subscribe' }));
    const ask = await bob.next((e) => e.is('presence') && e.attrs.type === 'subscribe', 15_000);
    assert.is(ask.attrs.from, 'alice@a.test');
    await bob.c.send(xml('presence', { to: 'alice@a.test', type: 'subscribed' }));
    const push = await alice.next((e) => e.is('iq') && e.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.subscription === 'to', 15_000);
    assert.is(push.getChild('query', 'jabber:iq:roster')!.getChild('item')!.attrs.jid, 'bob@b.test');
    // Approved: bob's server sends his current presence, and his next one comes too.
    await alice.next((e) => e.is('presence') && e.attrs.from === bob.jid && e.attrs.type === undefined, 15_000);
    await bob.c.send(xml('presence', {}, xml('status', {}, 'gone fishing')));
    const status = await alice.next((e) => e.is('presence') && e.attrs.from === bob.jid && e.getChildText('status') === 'gone fishing', 15_000);
    assert.ok(status);
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('a group chat on one server with an occupant from the other: join, and messages both ways', async () => {
  const ROOM = 'garden@conference.a.test';
  const MUC = 'http://jabber.org/protocol/muc';
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'muc' });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'muc' });
  const selfPresence = (who: typeof alice, nick: string) => who.next((e) => e.is('presence') && e.attrs.from === `${ROOM}/${nick}`
    && e.getChild('x', `${MUC}#user`)?.getChildren('status').some((st) => st.attrs.code === '110') === true, 15_000);
  try {
    await alice.c.send(xml('presence', { to: `${ROOM}/Alice` }, xml('x', { xmlns: MUC })));
    await selfPresence(alice, 'Alice');
    await alice.iq(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    await bob.c.send(xml('presence', { to: `${ROOM}/Bob` }, xml('x', { xmlns: MUC }, xml('history', { maxstanzas: '0' }))));
    await selfPresence(bob, 'Bob');
    await alice.next((e) => e.is('presence') && e.attrs.from === `${ROOM}/Bob`, 15_000);
    await alice.c.send(xml('message', { to: ROOM, type: 'groupchat', id: 'g1' }, xml('body', {}, 'welcome, bob')));
    const g1 = await bob.next(isMessage('welcome, bob'), 15_000);
    assert.is(g1.attrs.from, `${ROOM}/Alice`);
    await bob.c.send(xml('message', { to: ROOM, type: 'groupchat', id: 'g2' }, xml('body', {}, 'thanks, alice')));
    const g2 = await alice.next(isMessage('thanks, alice'), 15_000);
    assert.is(g2.attrs.from, `${ROOM}/Bob`);
    await bob.next(isMessage('thanks, alice'), 15_000); // bob's own, reflected
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('a server that cannot be reached: the sender hears remote-server-not-found (after 3 tries)', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'lost' });
  try {
    await alice.c.send(xml('message', { to: 'carol@nowhere.test', type: 'chat', id: 'lost1' }, xml('body', {}, 'anyone?')));
    const err = await alice.next((e) => e.is('message') && e.attrs.type === 'error' && e.attrs.id === 'lost1', 30_000);
    assert.is(err.attrs.from, 'carol@nowhere.test');
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), err.toString());
  } finally {
    await alice.c.stop();
  }
});

test('the link actor killed again and again while messages stream over it (#8): every message arrives', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'kill' });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'kill' });
  try {
    const N = 200;
    const got = new Set<string>();
    let twice = 0;
    const all = new Promise<void>((resolve) => bob.c.on('stanza', (e) => {
      const body = e.is('message') ? e.getChildText('body') : null;
      if (!body?.startsWith('n')) return;
      if (got.has(body)) twice++;
      got.add(body);
      if (got.size === N) resolve();
    }));
    // One message every 10 ms; the link killed every 150 ms meanwhile.
    let kills = 0, sending = true;
    const killer = (async () => {
      while (sending) {
        await new Promise((r) => setTimeout(r, 150));
        if (sending && await a.node.runtime.kill('s2s:a.test|b.test', 'killed by the test').catch(() => false)) kills++;
      }
    })();
    for (let i = 0; i < N; i++) {
      await alice.c.send(xml('message', { to: bob.jid, type: 'chat', id: `n${i}` }, xml('body', {}, `n${i}`)));
      await new Promise((r) => setTimeout(r, 10));
    }
    sending = false;
    await killer;
    await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${got.size} of ${N} arrived`)), 60_000))]);
    console.log(`federation chaos: the link killed ${kills} times while ${N} messages went over it; 0 lost, ${twice} twice`);
    assert.ok(kills >= 5, `${kills} kills`);
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test.run();
