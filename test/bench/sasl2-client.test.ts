// The bench's raw client logging in to a real node with SASL2 and Bind 2 (PLAIN, SCRAM) and with
// FAST: the warm-up's password login gets a token, the measured login is one HMAC each way.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XmppClient } from '../../bench/lib/client.ts';
import { startServer, type TestServer } from '../helpers/xmpp.ts';

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.c2s_require_encryption = false; });
  await server.addUser('u1', 'pw');
});
test.after(async () => { await server.stop(); });

const client = (o: Partial<ConstructorParameters<typeof XmppClient>[0]>) =>
  new XmppClient({ host: '127.0.0.1', port: server.port, domain: 'localhost', username: 'u1', password: 'pw', resource: 'bench', ...o });

test('SASL2 with Bind 2: PLAIN and SCRAM-SHA-1 bind in the exchange; the session answers an IQ', async () => {
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-1']) {
    const c = client({ mechanism, sasl2: true });
    await c.login();
    assert.match(c.jid, /^u1@localhost\/bench\/[A-Za-z0-9_-]{12}$/);
    assert.match(await c.iq("<ping xmlns='urn:xmpp:ping'/>", 'get', 'localhost'), /type=["']result["']/);
    await c.close();
  }
});

test('FAST: the warm-up gets a token over TLS; the login with it binds; without a warm-up it is refused', async () => {
  const warm = client({ mechanism: 'HT-SHA-256-NONE', tls: 'starttls', warmOnly: true });
  await warm.login();
  warm.destroy();
  const c = client({ mechanism: 'HT-SHA-256-NONE', tls: 'starttls' });
  await c.login();
  assert.match(c.jid, /^u1@localhost\/bench\//);
  await c.close();
  const stranger = client({ mechanism: 'HT-SHA-256-NONE', tls: 'starttls', username: 'u2' });
  try { await stranger.login(); assert.unreachable('logged in without a token'); } catch (e) { assert.match((e as Error).message, /no token/); }
});

test.run();
