// The /proc sampler, on this test's own process and a child it starts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readStat, readRssKB, processTree, sampleTree, ProcSampler } from '../../bench/lib/proc.ts';

test('readStat reads this process', () => {
  const st = readStat(process.pid)!;
  assert.ok(st);
  assert.is(st.pid, process.pid);
  assert.is(st.ppid, process.ppid);
  assert.ok(st.utime + st.stime >= 0);
  assert.ok(st.rssKB > 0);
  assert.ok(readRssKB(process.pid) > 0);
});

test('readStat of a missing process is null', () => {
  assert.is(readStat(2 ** 22 + 12345), null);
});

test('CPU seconds grow after work; RSS is the process tree sum', () => {
  const a = sampleTree([process.pid]);
  let x = 0;
  for (let i = 0; i < 3e7; i++) x += Math.sqrt(i);
  assert.ok(x > 0);
  const b = sampleTree([process.pid]);
  assert.ok(b.cpuS >= a.cpuS);
  assert.ok(b.rssKB > 0);
  assert.ok(b.alive);
});

test('the tree includes child processes', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    const tree = processTree([process.pid]);
    assert.ok(tree.includes(process.pid));
    assert.ok(tree.includes(child.pid!));
    const s = sampleTree([process.pid]);
    assert.ok(s.pids >= 2);
  } finally {
    child.kill();
  }
});

test('a sampler with no PIDs is disabled and returns nothing', () => {
  const s = new ProcSampler([]);
  assert.not.ok(s.enabled);
  s.start();
  assert.is(s.stop(), null);
});

test('a sampler keeps its readings and the peak RSS', () => {
  const s = new ProcSampler([process.pid], 10_000);
  s.start();
  s.sample();
  const last = s.stop()!;
  assert.ok(s.samples.length >= 3);
  assert.ok(s.peakRssKB() >= last.rssKB);
});

test.run();
