// A bound session that crashes is restarted from its snapshot and its connection watches the new one:
// the stream goes on, and when it ends later the connection is done and gives its place back (one
// connection per address here, so a connection never finished would keep the next one out).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OPEN, RawClient, startServer, type TestServer } from '../helpers/xmpp.ts';

const FROM = '127.0.0.7';
let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; c.limits.connections_per_ip = 1; });
  await server.addUser('alice');
});
test.after(async () => { await server.stop(); });

async function login(resource: string): Promise<RawClient> {
  const c = await RawClient.connect(server.port, FROM);
  c.send(OPEN);
  await c.next(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
  await c.next(/<success/);
  c.send(OPEN);
  await c.next(/<\/stream:features>/);
  c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  await c.next(/id="b"/);
  return c;
}

test('killed after bind: the stream goes on; ended later, its connection is done and the address may connect again', async () => {
  const c = await login('phone');
  // Answered once the session runs at its full JID (killed while it is still starting there, it has
  // nothing to restart from and the stream ends: a login, not a crash, to retry).
  c.send(`<iq type='get' id='p0' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.next(/<iq[^>]*id="p0"/);
  assert.ok(await server.node.runtime.kill('session:alice@localhost/phone'));
  c.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.next(/<iq[^>]*id="p1"/, 10_000);
  c.send('</stream:stream>');
  await c.waitClosed(10_000);
  // The per-address count comes back once the connection is done (its session ended, watched).
  for (let i = 0; ; i++) {
    const again = await RawClient.connect(server.port, FROM);
    again.send(OPEN);
    const got = await again.waitFor(/<\/stream:features>|<\/stream:error>/);
    again.close();
    if (got.includes('</stream:features>')) break;
    assert.ok(i < 100, `${FROM} never admitted again: ${got.slice(-200)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

test.run();
