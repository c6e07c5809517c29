// Message Carbons (XEP-0280) as a real client library uses them: slixmpp's own xep_0280 plugin, two
// resources of one account and a contact, over STARTTLS on real sockets (carbons_slixmpp.py says
// what each step shows). Debian's python3-slixmpp, which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';
import { login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate
const SCRIPT = fileURLToPath(new URL('./carbons_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['bob', 'alice']) await server.addUser(u, 'pw');
});
test.after(async () => { await server.stop(); });

test('the server announces carbons (urn:xmpp:carbons:2 and its rules) in its disco#info', async () => {
  const c = await login(server.port, 'alice', { password: 'pw' });
  const info = await c.iq(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  const vars = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
  assert.ok(vars.includes('urn:xmpp:carbons:2'), vars.join(' '));
  assert.ok(vars.includes('urn:xmpp:carbons:rules:0'), vars.join(' '));
  await c.stop();
});

test('slixmpp: received and sent copies, <private/>, disable and enable again', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'bob', 'alice', 'pw']) as Record<string, string[]>;
  assert.equal(out.phone, ['msg:m1', 'msg:m5', 'msg:m7']);
  assert.equal(out.alice, ['msg:m2', 'msg:m3', 'msg:m4', 'msg:m6']);
  // m3 was private, m5 and m6 passed while the laptop had carbons off
  assert.equal(out.laptop, ['received:m1', 'sent:m2>alice@localhost', 'sent:m4>alice@localhost', 'received:m7']);
});

test.run();
