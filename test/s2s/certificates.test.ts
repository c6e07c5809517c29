// Federation by certificate (XEP-0178): two nodes whose certificates a test CA signed, and who trust
// that CA (s2s.ca_file), prove their domains with SASL EXTERNAL and need no dialback; with
// s2s.secure_auth a third node whose certificate proves nothing (self-signed) gets no link, and the
// sender hears remote-server-not-found.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { until } from '../helpers/runtime.ts';
import { testCa, type TestCa } from '../helpers/test-ca.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let ca: TestCa;
let a: TestServer, b: TestServer, x: TestServer;

test.before(async () => {
  ca = testCa(['a.test', 'b.test']);
  const ports = { 'a.test': await freePort(), 'b.test': await freePort(), 'x.test': await freePort() };
  const hosts = Object.fromEntries(Object.entries(ports).map(([d, port]) => [d, { host: '127.0.0.1', port }]));
  const node = (d: 'a.test' | 'b.test' | 'x.test', signed: boolean) => startServer((c) => {
    c.hosts = [d];
    c.listen.s2s = ports[d];
    c.s2s.hosts = hosts;
    c.s2s.ca_file = ca.ca;
    c.s2s.secure_auth = true;
    if (signed) c.tls = { [d]: ca.tlsFor(d) };
  });
  [a, b, x] = await Promise.all([node('a.test', true), node('b.test', true), node('x.test', false)]);
  await createAccount(a.node.runtime.db, 'alice@a.test', 'pw', { iterations: 4096 });
  await createAccount(b.node.runtime.db, 'bob@b.test', 'pw', { iterations: 4096 });
});
test.after(async () => {
  await Promise.all([a?.stop(), b?.stop(), x?.stop()]);
  ca?.remove();
});

test('certificates signed by a CA both trust: the link authenticates by SASL EXTERNAL both ways, no dialback', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true });
  try {
    await alice.c.send(xml('message', { to: 'bob@b.test', type: 'chat' }, xml('body', {}, 'signed hello')));
    await bob.next(isMessage('signed hello'), 15_000);
    await bob.c.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'signed answer')));
    await alice.next(isMessage('signed answer'), 15_000);
    for (const [server, from, to] of [[a, 'a.test', 'b.test'], [b, 'b.test', 'a.test']] as const) {
      assert.ok(server.logs.some((l) => l.includes(`s2s ${from} → ${to}: up (certificate, SASL EXTERNAL)`)), `${from} → ${to} by certificate`);
    }
    assert.not.ok([...a.logs, ...b.logs].some((l) => l.includes('(dialback)')), 'no dialback');
  } finally {
    await alice.c.stop();
    await bob.c.stop();
  }
});

test('secure_auth: a server whose certificate proves nothing gets no link; the sender hears remote-server-not-found', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'x' });
  try {
    await alice.c.send(xml('message', { to: 'xavier@x.test', type: 'chat', id: 'to-x' }, xml('body', {}, 'hello?')));
    const err = await alice.next((e) => e.is('message') && e.attrs.type === 'error' && e.attrs.id === 'to-x', 30_000);
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), err.toString());
    await until(() => a.logs.some((l) => /does not prove x\.test/.test(l)) || x.logs.some((l) => /does not prove x\.test/.test(l)), 5000, 'the refusal logged');
  } finally {
    await alice.c.stop();
  }
});

test.run();
