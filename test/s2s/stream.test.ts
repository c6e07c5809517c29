// A server-to-server stream (jabber:server) on the s2s listener, over a real socket: the same stream
// engine as a client's, with its own machine (actors/s2sin). It reaches its features — STARTTLS
// (required), then SASL EXTERNAL and dialback — and refuses what comes before authentication.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, RawClient, startServer, starttls, type TestServer } from '../helpers/xmpp.ts';

let server: TestServer;
let port: number;
test.before(async () => {
  port = await freePort();
  server = await startServer((c) => { c.listen.s2s = port; });
});
test.after(async () => { await server.stop(); });

const open = (to = 'localhost', xmlns = 'jabber:server') =>
  `<?xml version='1.0'?><stream:stream xmlns='${xmlns}' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='other.example' to='${to}' version='1.0'>`;

async function secured(): Promise<RawClient> {
  const plain = await RawClient.connect(port);
  plain.send(open());
  await plain.next(/<\/stream:features>/);
  const { c } = await starttls(plain);
  c.send(open());
  await c.next(/<\/stream:features>/);
  return c;
}

test('a peer reaches the features: STARTTLS required first; over TLS, SASL EXTERNAL and dialback (with error support)', async () => {
  const c = await RawClient.connect(port);
  c.send(open());
  const [features] = await c.next(/<stream:stream[^>]*>[\s\S]*?<\/stream:features>/);
  assert.match(features, /xmlns="jabber:server"/);
  assert.match(features, /xmlns:db="jabber:server:dialback"/);
  assert.match(features, /from="localhost"/);
  assert.match(features, /to="other.example"/);
  assert.match(features, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/);
  assert.not.match(features, /EXTERNAL|dialback xmlns/);
  c.close();
  const s = await secured();
  const after = s.received.slice(s.received.lastIndexOf('<stream:stream'));
  assert.match(after, /<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>EXTERNAL<\/mechanism><\/mechanisms>/);
  assert.match(after, /<dialback xmlns="urn:xmpp:features:dialback"><errors\/><\/dialback>/);
  assert.not.match(after, /starttls/);
  s.close();
});

test('before TLS, anything but STARTTLS is a policy violation', async () => {
  const c = await RawClient.connect(port);
  c.send(open());
  await c.next(/<\/stream:features>/);
  c.send(`<db:result from='other.example' to='localhost'>abc</db:result>`);
  await c.next(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();
});

test('over TLS, authentication is refused until federation can verify a peer; a stanza before it ends the stream', async () => {
  const c = await secured();
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`);
  await c.next(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
  c.send(`<db:result from='other.example' to='localhost'>abc</db:result>`);
  await c.next(/<db:result type="error" from="localhost" to="other.example"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
  c.send(`<message from='romeo@other.example' to='juliet@localhost'><body>hi</body></message>`);
  await c.next(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();
});

test('a client stream on the s2s port is invalid-namespace; a domain not served here is host-unknown', async () => {
  const a = await RawClient.connect(port);
  a.send(open('localhost', 'jabber:client'));
  await a.next(/<invalid-namespace xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await a.waitClosed();
  const b = await RawClient.connect(port);
  b.send(open('elsewhere.example'));
  await b.next(/<host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await b.waitClosed();
});

test.run();
