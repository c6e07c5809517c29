// A server-to-server stream (jabber:server) on the s2s listener, over a real socket: the same stream
// engine as a client's, with its own machine (actors/s2sin). It reaches its features — STARTTLS
// (required), then dialback — and refuses what comes before authentication;
// dialback's two requests are answered (test/s2s/federation.test.ts has the whole exchange).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dialbackKey } from '../../src/xmpp/dialback.ts';
import { freePort, RawClient, securedStream, startServer, type TestServer } from '../helpers/xmpp.ts';

let server: TestServer;
let port: number;
test.before(async () => {
  port = await freePort();
  const closed = await freePort(); // nobody listens there
  server = await startServer((c) => {
    c.listen.s2s = port;
    c.s2s.hosts = { 'other.example': { host: '127.0.0.1', port: closed } };
    c.s2s.max_stanza_bytes = 20_000;
  });
});
test.after(async () => { await server.stop(); });

const open = (to = 'localhost', xmlns = 'jabber:server') =>
  `<?xml version='1.0'?><stream:stream xmlns='${xmlns}' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='other.example' to='${to}' version='1.0'>`;

const secured = (): Promise<RawClient> => securedStream(port, open());

test('a peer reaches the features: STARTTLS required first; over TLS, dialback (with error support)', async () => {
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
  assert.not.match(after, /<mechanisms/, 'no SASL EXTERNAL until certificates are verified');
  assert.match(after, /<dialback xmlns="urn:xmpp:features:dialback"><errors\/><\/dialback>/);
  assert.not.match(after, /starttls/);
  s.close();
});

test('s2s.max_stanza_bytes: a larger stanza ends the stream with policy-violation, before it is read whole', async () => {
  const c = await secured();
  c.send(`<message from='a@other.example' to='b@localhost'><body>${'x'.repeat(30_000)}`);
  await c.next(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/><text[^>]*>stanza larger than 20000 bytes/);
  await c.waitClosed();
});

test('before TLS, anything but STARTTLS is a policy violation', async () => {
  const c = await RawClient.connect(port);
  c.send(open());
  await c.next(/<\/stream:features>/);
  c.send(`<db:result from='other.example' to='localhost'>abc</db:result>`);
  await c.next(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();
});

test('over TLS: SASL EXTERNAL is refused; a dialback key from a peer whose server cannot be reached gets an error result; a stanza before authentication ends the stream', async () => {
  const c = await secured();
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`);
  await c.next(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
  // other.example is routed to a closed port: the link tries three times (1 s, 5 s apart), then gives up.
  c.send(`<db:result from='other.example' to='localhost'>abc</db:result>`);
  await c.next(/<db:result from="localhost" to="other.example" type="error"><error type="cancel"><remote-connection-failed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/, 30_000);
  c.send(`<message from='romeo@other.example' to='juliet@localhost'><body>hi</body></message>`);
  await c.next(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  await c.waitClosed();
});

test('a peer asking whether we made a dialback key (db:verify) hears valid for ours and invalid for any other; a request for a domain not ours is an error', async () => {
  const c = await secured();
  const secret = readFileSync(join(server.config.data_dir, 'secret'), 'utf8').trim();
  c.send(`<db:verify from='other.example' to='localhost' id='s1'>${dialbackKey(secret, 'other.example', 'localhost', 's1')}</db:verify>`);
  await c.next(/<db:verify from="localhost" to="other.example" id="s1" type="valid"\/>/);
  c.send(`<db:verify from='other.example' to='localhost' id='s2'>${dialbackKey(secret, 'other.example', 'localhost', 's1')}</db:verify>`);
  await c.next(/<db:verify from="localhost" to="other.example" id="s2" type="invalid"\/>/);
  c.send(`<db:verify from='other.example' to='elsewhere.example' id='s3'>abc</db:verify>`);
  await c.next(/<db:verify from="elsewhere.example" to="other.example" id="s3" type="error"><error type="cancel"><item-not-found/);
  c.close();
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
