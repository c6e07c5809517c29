// Bringing targets up: a setup command's KEY=VALUE lines, teardown, pid files, and the Chorus adapter's
// Chorus started in its own process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { parseTarget, prepareTarget, pinRef, chorusSource } from '../../bench/lib/target.ts';
import { XmppClient } from '../../bench/lib/client.ts';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

test('a setup command fills in PIDs, port, domain and version; teardown runs on stop', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-target-'));
  try {
    const spec = parseTarget(`name=fake port=1 setup="echo noise; echo PIDS=11,12; echo PORT=5999; echo DOMAIN=d.test; echo VERSION=Fake 2.0; echo {n} > ${dir}/n" teardown="touch ${dir}/stopped"`);
    const live = await prepareTarget(spec, 42, { password: 'pw', tls: false });
    assert.equal(live.pids, [11, 12]);
    assert.equal(live.endpoint, { host: '127.0.0.1', port: 5999, tlsPort: undefined, domain: 'd.test' });
    assert.is(live.version, 'Fake 2.0');
    assert.is((await readFile(join(dir, 'n'), 'utf8')).trim(), '42');
    await live.stop();
    await readFile(join(dir, 'stopped'));
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('PIDs can come from a pid file; a failing setup command is an error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-target-'));
  try {
    await writeFile(join(dir, 'pids'), '7 8\n');
    const live = await prepareTarget(parseTarget(`port=5222 pidfile=${dir}/pids`), 1, { password: 'pw', tls: false });
    assert.equal(live.pids, [7, 8]);
    await prepareTarget(parseTarget('port=1 setup="exit 3"'), 1, { password: 'pw', tls: false })
      .then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /command failed/));
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test('chorus ref= pins a commit; the working tree is labelled with its commit', async () => {
  assert.match(pinRef('chorus ref=HEAD'), /^chorus ref=HEAD ref=[0-9a-f]{40}$/);
  assert.is(parseTarget(pinRef('chorus ref=HEAD')).ref!.length, 40);
  assert.is(pinRef('prosody'), 'prosody');
  const here = await chorusSource({});
  assert.is(here.root, undefined);
  assert.match(here.label, /^@[0-9a-f]{7,}/);
});

test('a Chorus target runs in its own process: PLAIN, SCRAM-SHA-1 and STARTTLS logins, a message, a clean stop', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-chorus-'));
  process.env.BENCH_STATE = dir; // the account cache goes here, not into the shared state dir
  let live: Awaited<ReturnType<typeof prepareTarget>> | null = null;
  try {
    const port = await freePort();
    live = await prepareTarget(parseTarget(`chorus port=${port} tlsport=${await freePort()} schedulers=1`), 2, { password: 'pw', tls: true });
    assert.is(live.pids.length, 1);
    assert.is.not(live.pids[0], process.pid);
    assert.match(live.version, /^chorus .*1 schedulers/);
    const opts = { host: '127.0.0.1', port, domain: 'bench.local', password: 'pw', timeoutMs: 15_000 };
    const a = new XmppClient({ ...opts, username: 'u1', mechanism: 'PLAIN', resource: 'a' });
    const b = new XmppClient({ ...opts, username: 'u2', mechanism: 'SCRAM-SHA-1', resource: 'b', tls: 'starttls' });
    const d = new XmppClient({ ...opts, port: live.endpoint.tlsPort!, username: 'u2', mechanism: 'SCRAM-SHA-1', resource: 'd', tls: 'direct' });
    await Promise.all([a.login(), b.login(), d.login()]);
    assert.match(b.jid, /^u2@bench\.local\/b/);
    const got = new Promise<string>((res) => { b.onStanza = (s: string) => { if (s.startsWith('<message')) res(s); }; });
    b.send("<presence/>");
    a.send(`<message to='${b.jid}' type='chat'><body>hello</body></message>`);
    assert.match(await got, /hello/);
    await Promise.all([a.close(), b.close(), d.close()]);
    await live.stop();
    assert.equal(live.notes?.() ?? [], []);
    live = null;
  } finally {
    await live?.stop();
    delete process.env.BENCH_STATE;
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
