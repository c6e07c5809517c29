// Federation with a real peer: Debian's Prosody serving p.test and Chorus serving c.test, each on a
// loopback address of its own on the standard port 5269 (Prosody finds c.test through a hosts file
// its resolver reads, Chorus finds p.test through s2s.hosts). Prosody's outbound and inbound s2s
// authenticate by dialback (self-signed certificates both sides); real clients on both servers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccount } from '../../src/storage/accounts.ts';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';
import { anchorScript } from '../../bench/lib/anchors.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const CHORUS_IP = '127.0.0.5', PROSODY_IP = '127.0.0.6';
const state = mkdtempSync(join(tmpdir(), 'chorus-s2s-prosody-'));
let run: ReturnType<typeof anchorScript>;
let env: NodeJS.ProcessEnv;
let chorus: TestServer;

test.before(async () => {
  assert.is(spawnSync('dpkg-query', ['-W', 'prosody']).status, 0, 'Debian\'s prosody is not installed (.ci/run installs it)');
  writeFileSync(join(state, 'hosts'), `${CHORUS_IP} c.test\n`);
  env = {
    ...process.env, PROSODY_PORT: String(await freePort()), PROSODY_TLS_PORT: String(await freePort()), BENCH_DOMAIN: 'p.test', BENCH_STATE: state,
    PROSODY_REQUIRE_ENCRYPTION: 'true', PROSODY_SCRAM_ITERATIONS: '4096', PROSODY_INTERFACE: PROSODY_IP, PROSODY_S2S_PORT: '5269',
    PROSODY_HOSTS_FILE: join(state, 'hosts'), PROSODY_LOG_LEVEL: 'debug',
  };
  run = anchorScript('prosody', env);
  await run('start', '2');
  chorus = await startServer((c) => {
    c.hosts = ['c.test'];
    c.listen.address = CHORUS_IP;
    c.listen.s2s = 5269;
    c.s2s.hosts = { 'p.test': { host: PROSODY_IP, port: 5269 } };
  });
  await createAccount(chorus.node.runtime.db, 'alice@c.test', 'pw', { iterations: 4096 });
});
test.after(async () => {
  await chorus?.stop();
  await run('stop').catch(() => undefined);
  if (!process.env.KEEP_STATE) rmSync(state, { recursive: true, force: true });
});

test('Chorus ↔ Prosody: a message each way between their users, over dialback-authenticated links both ways', async () => {
  const alice = await login(chorus.port, 'alice', { password: 'pw', domain: 'c.test', address: CHORUS_IP, presence: true });
  const u1 = await login(Number(env.PROSODY_PORT), 'u1', { password: 'pw', domain: 'p.test', address: PROSODY_IP, presence: true });
  try {
    await alice.c.send(xml('message', { to: 'u1@p.test', type: 'chat', id: 'c1' }, xml('body', {}, 'hello prosody')));
    const got = await u1.next(isMessage('hello prosody'), 20_000);
    assert.is(got.attrs.from, alice.jid);
    await u1.c.send(xml('message', { to: alice.jid, type: 'chat', id: 'p1' }, xml('body', {}, 'hello chorus')));
    const back = await alice.next(isMessage('hello chorus'), 20_000);
    assert.is(back.attrs.from, u1.jid);
  } finally {
    await alice.c.stop();
    await u1.c.stop();
  }
});

test.run();
