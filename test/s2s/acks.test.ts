// XEP-0198 on an outbound link: with a peer that offers stream management, a stanza's durable message
// is kept until the peer acknowledges it, so what was written but never acknowledged goes again on
// the next connection, and what was acknowledged does not. The peer here is the test itself, a
// server on Direct TLS that accepts the link's dialback key, counts, and drops the connection.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { generateSelfSigned } from '../../src/net/tls.ts';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';
import { login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let a: TestServer;
let peer: Server;
const accepted: RawClient[] = [];
const waiting: Array<(c: RawClient) => void> = [];

test.before(async () => {
  const port = await freePort();
  peer = createServer({ ...(await generateSelfSigned('b.test')), ALPNProtocols: ['xmpp-server'] }, (s: TLSSocket) => {
    const c = RawClient.wrap(s);
    const w = waiting.shift();
    if (w) w(c); else accepted.push(c);
  });
  peer.listen(port, '127.0.0.1');
  await once(peer, 'listening');
  const s2s = await freePort();
  a = await startServer((c) => {
    c.hosts = ['a.test'];
    c.listen.s2s = s2s;
    c.s2s.hosts = { 'b.test': { host: '127.0.0.1', port, directTls: true } };
  });
  await createAccount(a.node.runtime.db, 'alice@a.test', 'pw', { iterations: 4096 });
});
test.after(async () => {
  await a?.stop();
  peer?.close();
});

const nextConnection = (): Promise<RawClient> => new Promise((resolve) => { const c = accepted.shift(); if (c) resolve(c); else waiting.push(resolve); });

/** The peer's side of a link coming up: features with dialback and XEP-0198, the key taken as valid,
 *  stream management enabled. */
async function linkUp(c: RawClient): Promise<void> {
  await c.next(/<stream:stream[^>]*>/);
  c.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='b.test' to='a.test' id='peer-1' version='1.0'>" +
    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
  await c.next(/<db:result[^>]*>[^<]+<\/db:result>/);
  c.send("<db:result from='b.test' to='a.test' type='valid'/>");
  await c.next(/<enable xmlns="urn:xmpp:sm:3"\/>/);
  c.send("<enabled xmlns='urn:xmpp:sm:3'/>");
}

test('a stanza written but not acknowledged is sent again on the next connection; an acknowledged one is not', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true });
  try {
    await alice.c.send(xml('message', { to: 'bob@b.test', type: 'chat', id: 'm1' }, xml('body', {}, 'first')));
    const one = await nextConnection();
    await linkUp(one);
    await one.next(/<body>first<\/body>/);
    await alice.c.send(xml('message', { to: 'bob@b.test', type: 'chat', id: 'm2' }, xml('body', {}, 'second')));
    await one.next(/<body>second<\/body>/);
    // The first is acknowledged; our own <r/> is answered only once the link has read that ack.
    one.send("<a xmlns='urn:xmpp:sm:3' h='1'/><r xmlns='urn:xmpp:sm:3'/>");
    await one.next(/<a xmlns="urn:xmpp:sm:3" h="0"\/>/);
    one.close(); // the connection drops with the second unacknowledged

    const two = await nextConnection();
    await linkUp(two);
    await two.next(/<body>second<\/body>/, 15_000);
    two.send("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert.not.match(two.received, /<body>first<\/body>/, 'the acknowledged one is not sent again');
    const links = await a.admin('s2s') as Array<Record<string, unknown>>;
    assert.is(links.find((l) => l.link === 'a.test → b.test')?.acknowledgements, 'XEP-0198');
    two.close();
  } finally {
    await alice.c.stop();
  }
});

test.run();
