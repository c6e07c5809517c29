// Federation with a real peer: Debian's ejabberd serving e.test and Chorus serving c.test, each on a
// loopback address of its own on the standard port 5269. ejabberd finds c.test by DNS only (SRV
// lookups through its own resolver): a DNS server in this test answers them. Chorus finds e.test
// through s2s.hosts. Self-signed certificates both sides: dialback over STARTTLS both ways, real
// clients on both servers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { startDns } from '../helpers/dns.ts';
import { anchorScript } from '../../bench/lib/anchors.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const CHORUS_IP = '127.0.0.7', EJABBERD_IP = '127.0.0.8';
const state = mkdtempSync(join(tmpdir(), 'chorus-s2s-ejabberd-'));
let run: ReturnType<typeof anchorScript>;
let env: NodeJS.ProcessEnv;
let chorus: TestServer;
let dns: Awaited<ReturnType<typeof startDns>>;

test.before(async () => {
  assert.is(spawnSync('dpkg-query', ['-W', 'ejabberd']).status, 0, 'Debian\'s ejabberd is not installed (.ci/run installs it)');
  dns = await startDns({ '_xmpp-server._tcp.c.test': [{ priority: 0, weight: 0, port: 5269, target: CHORUS_IP }] });
  env = {
    ...process.env, EJABBERD_PORT: String(await freePort()), EJABBERD_TLS_PORT: String(await freePort()), BENCH_DOMAIN: 'e.test', BENCH_STATE: state,
    EJABBERD_INTERFACE: EJABBERD_IP, EJABBERD_S2S_PORT: '5269', EJABBERD_NAMESERVER: `127.0.0.1:${dns.port}`, EJABBERD_LOG_LEVEL: process.env.EJABBERD_LOG_LEVEL ?? 'info',
  };
  run = anchorScript('ejabberd', env);
  await run('start', '2');
  chorus = await startServer((c) => {
    c.hosts = ['c.test'];
    c.listen.address = CHORUS_IP;
    c.listen.s2s = 5269;
    c.s2s.hosts = { 'e.test': { host: EJABBERD_IP, port: 5269 } };
  });
  await createAccount(chorus.node.runtime.db, 'alice@c.test', 'pw', { iterations: 4096 });
});
test.after(async () => {
  await chorus?.stop();
  await run?.('stop').catch(() => undefined);
  dns?.close();
  if (!process.env.KEEP_STATE) rmSync(state, { recursive: true, force: true });
});

test('Chorus ↔ ejabberd: a message each way between their users, over dialback-authenticated links both ways', async () => {
  const alice = await login(chorus.port, 'alice', { password: 'pw', domain: 'c.test', address: CHORUS_IP, presence: true });
  const u1 = await login(Number(env.EJABBERD_PORT), 'u1', { password: 'pw', domain: 'e.test', address: EJABBERD_IP, presence: true });
  try {
    await alice.c.send(xml('message', { to: 'u1@e.test', type: 'chat', id: 'c1' }, xml('body', {}, 'hello ejabberd')));
    const got = await u1.next(isMessage('hello ejabberd'), 20_000);
    assert.is(got.attrs.from, alice.jid);
    await u1.c.send(xml('message', { to: alice.jid, type: 'chat', id: 'e1' }, xml('body', {}, 'hello chorus')));
    const back = await alice.next(isMessage('hello chorus'), 20_000);
    assert.is(back.attrs.from, u1.jid);
    assert.ok(chorus.logs.some((l) => l.includes('s2s c.test → e.test: up (dialback)')), chorus.logs.join('\n'));
    assert.ok(chorus.logs.some((l) => l.includes('s2s e.test → c.test: authenticated (dialback)')), chorus.logs.join('\n'));
  } finally {
    await alice.c.stop();
    await u1.c.stop();
  }
});

test.run();
