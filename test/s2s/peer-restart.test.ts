// The other server goes down and comes back while a message waits for it: the link keeps the
// message (durably) through its retries and delivers it once the peer is up again; nothing bounces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { startNode, type ChorusNode } from '../../src/node.ts';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { until } from '../helpers/runtime.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

let a: TestServer, b: TestServer;
let again: ChorusNode | null = null;

test.before(async () => {
  const pa = await freePort(), pb = await freePort();
  const node = (host: string, s2s: number, peer: string, peerPort: number) => startServer((c) => {
    c.hosts = [host];
    c.listen.s2s = s2s;
    c.s2s.hosts = { [peer]: { host: '127.0.0.1', port: peerPort } };
  });
  [a, b] = await Promise.all([node('a.test', pa, 'b.test', pb), node('b.test', pb, 'a.test', pa)]);
  await createAccount(a.node.runtime.db, 'alice@a.test', 'pw', { iterations: 4096 });
  await createAccount(b.node.runtime.db, 'bob@b.test', 'pw', { iterations: 4096 });
});
test.after(async () => {
  await a?.stop();
  await again?.stop();
  rmSync(b.config.data_dir, { recursive: true, force: true });
});

test('a message for a server that is down waits through the retries and arrives when it is back', async () => {
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true });
  try {
    await b.node.stop();
    await alice.c.send(xml('message', { to: 'bob@b.test', type: 'chat', id: 'away' }, xml('body', {}, 'while you were away')));
    await until(() => a.logs.some((l) => l.includes('s2s: b.test not reached')), 10_000, 'a first try that failed');
    again = await startNode(b.config, { log: (level, text) => b.logs.push(`[${level}] ${text}`) });
    const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true });
    try {
      const got = await bob.next(isMessage('while you were away'), 20_000);
      assert.is(got.attrs.from, alice.jid);
    } finally {
      await bob.c.stop();
    }
    assert.not.ok(alice.inbox.some((e) => e.attrs.type === 'error'), 'nothing bounced');
  } finally {
    await alice.c.stop();
  }
});

test('a message waiting in a link outlives a restart of its own server too: the link comes back from disk and delivers it', async () => {
  const bobJid = 'bob@b.test';
  const alice = await login(a.port, 'alice', { password: 'pw', domain: 'a.test', presence: true, resource: 'r2' });
  await again!.stop();
  again = null;
  await alice.c.send(xml('message', { to: bobJid, type: 'chat', id: 'kept' }, xml('body', {}, 'kept through a restart')));
  const failures = () => a.logs.filter((l) => l.includes('s2s: b.test not reached')).length;
  const before = failures();
  await until(() => failures() > before, 10_000, 'a first try that failed');
  await alice.c.stop();
  // Our own node stops with the message in the link's durable mailbox, and starts again.
  const config = a.config;
  await a.node.stop();
  const restarted = await startNode(config, { log: (level, text) => a.logs.push(`[${level}] ${text}`) });
  a = { ...a, node: restarted, stop: async () => { await restarted.stop(); rmSync(config.data_dir, { recursive: true, force: true }); } };
  again = await startNode(b.config, { log: (level, text) => b.logs.push(`[${level}] ${text}`) });
  const bob = await login(b.port, 'bob', { password: 'pw', domain: 'b.test', presence: true, resource: 'r2' });
  try {
    await bob.next(isMessage('kept through a restart'), 20_000);
  } finally {
    await bob.c.stop();
  }
});

test.run();
