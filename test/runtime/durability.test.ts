// SIGKILL the whole node while durable messages are in flight: every message whose send was confirmed
// is delivered after the restart, once, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/runtime.ts';

const SCRIPT = fileURLToPath(new URL('../fixtures/durable-node.ts', import.meta.url));

test('kill -9 under durable load loses no confirmed message', async () => {
  const dir = tempDir();
  const confirmed = new Array(10).fill(0);
  let count = 0;
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'send', dir, '200000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const killed = new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl); buf = buf.slice(nl + 1);
        const [c, s, n] = line.split(' ');
        if (c !== 'c') continue;
        confirmed[Number(s)] = Math.max(confirmed[Number(s)], Number(n));
        if (++count === 3000) child.kill('SIGKILL');
      }
    });
    child.on('exit', () => resolve());
  });
  await killed;
  assert.ok(count >= 3000, `saw ${count} confirmations before the kill`);

  const report = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'report', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  report.stdout.on('data', (d) => (out += d));
  await new Promise((r) => report.on('exit', r));
  const results = JSON.parse(out.trim().split('\n').pop()!);
  let delivered = 0;
  for (let s = 0; s < 10; s++) {
    const r = results[`sink:k${s}`];
    assert.ok(r, `sink ${s} reported`);
    assert.ok(r.last >= confirmed[s], `sink ${s}: last ${r.last} >= confirmed ${confirmed[s]}`);
    assert.equal(r.gaps, [], `sink ${s}: no gaps`);
    assert.is(r.dups, 0, `sink ${s}: no duplicates`);
    assert.is(r.count, r.last, `sink ${s}: every message once`);
    delivered += r.count;
  }
  console.log(`confirmed before kill: ${count}; delivered after restart: ${delivered}`);
  rmSync(dir, { recursive: true, force: true });
});

test.run();
