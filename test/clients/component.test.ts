// External components (XEP-0114) as gateways and bots are written: slixmpp's own ComponentXMPP on
// the component port (loopback) with its secret, talking to an account that uses xmpp.js; raw XML
// for the handshake's errors, a second component for the same domain, a spoofed sender, and a
// stanza for a component that is not connected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { freePort, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';
import { login, isMessage, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate
const SCRIPT = fileURLToPath(new URL('./component_slixmpp.py', import.meta.url));
const SECRET = 'gateway-secret';

let server: TestServer;
let port: number;
test.before(async () => {
  port = await freePort();
  server = await startServer((c) => { c.listen.component = port; c.components = { 'gw.localhost': { secret: SECRET }, 'bots.localhost': { secret: 'bots-secret' } }; });
  await server.addUser('alice', 'pw');
});
test.after(async () => { await server.stop(); });

test('slixmpp component: it logs in with its secret, writes to alice from its domain, and alice\'s message reaches it and its echo her', async () => {
  const alice = await login(server.port, 'alice', { password: 'pw', presence: true });
  const component = scenario(SCRIPT, ['127.0.0.1', String(port), 'gw.localhost', SECRET, 'alice@localhost']);
  const hello = await alice.next(isMessage('hello from the gateway'), 30_000);
  assert.is(hello.attrs.from, 'bot@gw.localhost');
  await alice.c.send(xml('message', { to: 'echo@gw.localhost', type: 'chat' }, xml('body', {}, 'ping')));
  const echo = await alice.next(isMessage('echo: ping'), 10_000);
  assert.is(echo.attrs.from, 'echo@gw.localhost');
  const out = await component;
  assert.equal(out.got, ['alice@localhost', 'echo@gw.localhost', 'ping']);
  await alice.stop();
});

const open = (to: string, xmlns = 'jabber:component:accept') => `<stream:stream xmlns='${xmlns}' xmlns:stream='http://etherx.jabber.org/streams' to='${to}'>`;

/** A raw component past its handshake. */
async function connected(domain = 'bots.localhost', secret = 'bots-secret'): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.send(open(domain));
  const [, id] = await c.next(/<stream:stream[^>]*id="([^"]+)"[^>]*>/);
  c.send(`<handshake>${createHash('sha1').update(id + secret).digest('hex')}</handshake>`);
  await c.next(/<handshake\/>/);
  return c;
}

test('raw: a wrong secret is not-authorized; an unknown domain host-unknown; a client stream invalid-namespace', async () => {
  const a = await RawClient.connect(port);
  a.send(open('bots.localhost'));
  await a.next(/<stream:stream[^>]*>/);
  a.send(`<handshake>${'0'.repeat(40)}</handshake>`);
  await a.next(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await a.waitClosed();
  const b = await RawClient.connect(port);
  b.send(open('nobody.localhost'));
  await b.next(/<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  const c = await RawClient.connect(port);
  c.send(open('bots.localhost', 'jabber:client'));
  await c.next(/<invalid-namespace xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
});

test('raw: one component per domain: a second is a conflict; with none connected a message to the domain is service-unavailable', async () => {
  const alice = await login(server.port, 'alice', { password: 'pw', presence: true });
  await alice.c.send(xml('message', { to: 'x@bots.localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'anyone?')));
  const bounced = await alice.next((e) => e.is('message') && e.attrs.type === 'error' && e.attrs.id === 'm1');
  assert.ok(bounced.getChild('error')!.getChild('service-unavailable'));
  const first = await connected();
  const second = await RawClient.connect(port);
  second.send(open('bots.localhost'));
  const [, id] = await second.next(/<stream:stream[^>]*id="([^"]+)"[^>]*>/);
  second.send(`<handshake>${createHash('sha1').update(id + 'bots-secret').digest('hex')}</handshake>`);
  await second.next(/<conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  // The first still works both ways.
  await alice.c.send(xml('message', { to: 'x@bots.localhost', type: 'chat' }, xml('body', {}, 'still there?')));
  await first.next(/<message[^>]*to="x@bots.localhost"[^>]*>[\s\S]*?still there\?/);
  first.send(`<message from='x@bots.localhost' to='alice@localhost' type='chat'><body>yes</body></message>`);
  await alice.next(isMessage('yes'));
  // A stanza from outside its domain ends its stream.
  first.send(`<message from='mallory@localhost' to='alice@localhost'><body>spoof</body></message>`);
  await first.next(/<invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await first.waitClosed();
  await alice.stop();
});

test.run();
