// Bringing targets up: a setup command's KEY=VALUE lines, teardown, pid files, and the Chorus adapter's
// clear failure while the node entry point does not exist.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTarget, prepareTarget, startChorusTarget } from '../../src/bench/target.ts';

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

test('startChorusTarget fails with a clear message, or starts, depending on what exists', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-chorus-'));
  try {
    const node = await startChorusTarget({ port: 0, domain: 'bench.local', accounts: 1, password: 'pw', dataDir: dir, tls: false })
      .catch((e: Error) => { assert.match(e.message, /Chorus target/); return null; });
    await node?.stop();
  } finally { await rm(dir, { recursive: true, force: true }); }
});

test.run();
