// The file-transfer proxy (XEP-0065) through slixmpp's own plugin, as clients use it when they
// cannot connect to each other directly: discovery, the mediated connection, activation, bytes both
// ways; raw SOCKS5 and IQs for what the proxy refuses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { once } from 'node:events';
import { freePort, friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { login, xml } from '../helpers/clients.ts';
import { scenario } from '../helpers/process.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const SCRIPT = new URL('./proxy65_slixmpp.py', import.meta.url).pathname;

let server: TestServer, socks: number;
test.before(async () => {
  socks = await freePort();
  server = await friendsServer((c) => { c.modules.options = { proxy65: { enabled: true, port: socks, address: '127.0.0.1', interface: '127.0.0.1' } }; });
});
test.after(async () => { await server.stop(); });

test('slixmpp finds the proxy, bob connects through it, alice activates the pair, and bytes go both ways', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  assert.equal(out, { proxies: { 'proxy.localhost': ['127.0.0.1', socks] }, bob_got: 'a file, in bytes', alice_got: 'thanks' });
});

test('refusals: an activation with no one connected is item-not-found; SOCKS5 without the no-auth method is refused', async () => {
  const alice = await login(server.port, 'alice', { password: 'pw', resource: 'raw' });
  try {
    const err = await alice.iq(xml('iq', { type: 'set', to: 'proxy.localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/bytestreams', sid: 's1' }, xml('activate', {}, 'bob@localhost/x'))))
      .then(() => 'result', (e: { condition?: string }) => e.condition);
    assert.is(err, 'item-not-found');
  } finally { await alice.c.stop(); }
  const s = connect(socks, '127.0.0.1');
  await once(s, 'connect');
  s.write(Buffer.from([5, 1, 2])); // username/password only
  const [reply] = await once(s, 'data') as [Buffer];
  assert.equal([...reply], [5, 0xff]);
  s.destroy();
});

test.run();
