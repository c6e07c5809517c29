// Supervision of real actors on real scheduler threads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { placeAddress } from '../../src/runtime/address.ts';
import { startTestNode, until, type TestNode } from '../helpers/runtime.ts';

let node: TestNode;
test.before(async () => { node = await startTestNode(); });
test.after(async () => { await node.cleanup(); });

test('a crashed actor is restarted from its last snapshot; the crash is logged with its reason', async () => {
  const box = node.inbox('conn:sup1');
  await node.runtime.spawn('crasher:a');
  for (let i = 0; i < 5; i++) node.runtime.send('crasher:a', { type: 'inc' });
  assert.is((await node.report('crasher:a', box, 'conn:sup1')).count, 5);
  node.runtime.send('crasher:a', { type: 'boom' });
  node.runtime.send('crasher:a', { type: 'inc' }); // queued behind the crash: must survive the restart
  const r = await node.report('crasher:a', box, 'conn:sup1');
  assert.is(r.count, 6);
  assert.is(r.restored, 1);
  assert.ok(node.logs.some((l) => l.includes('crasher:a crashed: boom requested')), 'crash logged');
  assert.ok(node.logs.some((l) => l.includes('actors: crasher:a exited: boom requested; restarting')), 'restart logged');
});

test('kill (exit/2 with kill) is a crash the supervisor handles', async () => {
  const box = node.inbox('conn:sup2');
  await node.runtime.spawn('crasher:k');
  node.runtime.send('crasher:k', { type: 'inc' });
  assert.is((await node.report('crasher:k', box, 'conn:sup2')).count, 1);
  assert.ok(await node.runtime.kill('crasher:k'));
  const r = await node.report('crasher:k', box, 'conn:sup2');
  assert.is(r.restored, 1);
  assert.is(r.count, 1);
  assert.not.ok(await node.runtime.kill('crasher:nobody'));
});

test('mail that comes for an on-demand actor as it ends is not lost: its next life takes it', async () => {
  const box = node.inbox('conn:sup-end');
  node.runtime.send('ender:e', { type: 'inc' });
  node.runtime.send('ender:e', { type: 'end' });
  node.runtime.send('ender:e', { type: 'report', to: 'conn:sup-end' }); // queued behind the end, not durable
  const r = await box.next((m) => m.type === 'report', 5000);
  assert.equal({ address: r.address, count: r.count }, { address: 'ender:e', count: 0 }, 'a new life answered');
});

test('a normal exit is not restarted (transient) and its snapshot is gone', async () => {
  await node.runtime.spawn('crasher:n');
  let reason = '';
  node.runtime.monitor('crasher:n', (r) => { reason = r; });
  node.runtime.send('crasher:n', { type: 'stop' });
  await until(() => reason !== '', 5000, 'down');
  assert.is(reason, 'normal');
  const stats = await node.runtime.stats(true, 'crasher');
  assert.not.ok(stats.flatMap((s) => s.list!).some((a) => a.address === 'crasher:n'));
});

test('monitors get a down message with the reason (and the tag the watcher gave)', async () => {
  const box = node.inbox('conn:sup3');
  await node.runtime.spawn('crasher:watcher');
  await node.runtime.spawn('crasher:watched');
  node.runtime.send('crasher:watcher', { type: 'watch', target: 'crasher:watched' });
  node.runtime.send('crasher:watcher', { type: 'watch', target: 'crasher:ghost', tag: 'g1' });
  await new Promise((r) => setTimeout(r, 50));
  node.runtime.send('crasher:watched', { type: 'boom' });
  await until(async () => {
    node.runtime.send('crasher:watcher', { type: 'downs', to: 'conn:sup3' });
    const m = await box.next((x) => x.type === 'downs');
    return m.downs.length === 2;
  }, 5000, 'two downs');
  node.runtime.send('crasher:watcher', { type: 'downs', to: 'conn:sup3' });
  const m = await box.next((x) => x.type === 'downs');
  assert.equal(m.downs.sort(), ['crasher:ghost:noproc:g1', 'crasher:watched:boom requested']);
});

test('links: an abnormal exit takes the linked actor down too; one that traps exits gets a message', async () => {
  const box = node.inbox('conn:sup6');
  for (const a of ['crasher:l1', 'crasher:l2', 'crasher:l3', 'crasher:l4']) await node.runtime.spawn(a);
  node.runtime.send('crasher:l1', { type: 'link', target: 'crasher:l2' });
  node.runtime.send('crasher:l3', { type: 'trap' });
  node.runtime.send('crasher:l3', { type: 'link', target: 'crasher:l4' });
  await new Promise((r) => setTimeout(r, 50));
  node.runtime.send('crasher:l2', { type: 'boom' });
  node.runtime.send('crasher:l4', { type: 'boom' });
  await until(() => node.logs.some((l) => l.includes('crasher:l1 crashed: boom requested')), 5000, 'l1 taken down by the link');
  const l1 = await node.report('crasher:l1', box, 'conn:sup6');
  assert.is(l1.restored, 1, 'l1 was restarted by its supervisor');
  node.runtime.send('crasher:l3', { type: 'downs', to: 'conn:sup6' });
  const l3 = await box.next((m) => m.type === 'downs');
  assert.equal(l3.downs, ['exit:crasher:l4:boom requested']);
  assert.not.ok(node.logs.some((l) => l.includes('crasher:l3 crashed')), 'l3 trapped the exit and lives');
});

test('a scheduler thread that dies is replaced and its actors restored from their snapshots', async () => {
  const box = node.inbox('conn:sup4');
  // Two actors on the same thread: one ends the thread, the other must come back with its state.
  let other = '';
  for (let i = 0; !other; i++) if (placeAddress(`crasher:o${i}`, 2) === placeAddress('crasher:t', 2)) other = `crasher:o${i}`;
  await node.runtime.spawn('crasher:t');
  await node.runtime.spawn(other);
  for (let i = 0; i < 3; i++) node.runtime.send(other, { type: 'inc' });
  assert.is((await node.report(other, box, 'conn:sup4')).count, 3);
  const before = node.runtime.counters.schedulerRestarts;
  node.runtime.send('crasher:t', { type: 'exit-thread' });
  await until(() => node.runtime.counters.schedulerRestarts > before, 10_000, 'thread replaced');
  const r = await node.report(other, box, 'conn:sup4');
  assert.is(r.count, 3);
  assert.ok(r.restored >= 1);
  assert.ok(node.logs.some((l) => /scheduler thread \d died/.test(l)));
});

test('a promise no actor waits for fails, and a timer logs outside any frame: both logged, the thread and its actors go on', async () => {
  const box = node.inbox('conn:sup7');
  await node.runtime.spawn('crasher:orphan');
  node.runtime.send('crasher:orphan', { type: 'inc' });
  const before = node.runtime.counters.schedulerRestarts;
  node.runtime.send('crasher:orphan', { type: 'orphan' });
  await until(() => node.logs.some((l) => l.includes('a promise no actor waits for failed: Error: nobody waits for this')), 10_000, 'rejection logged');
  await until(() => node.logs.some((l) => l.includes('a line from a timer')), 10_000, 'timer line logged');
  node.runtime.send('crasher:orphan', { type: 'inc' });
  const r = await node.report('crasher:orphan', box, 'conn:sup7');
  assert.is(r.count, 2);
  assert.is(r.restored, 0, 'never restarted');
  assert.is(node.runtime.counters.schedulerRestarts, before, 'no thread died');
});

test('one busy actor does not starve the others on its thread', async () => {
  const box = node.inbox('conn:sup5');
  let other = '';
  for (let i = 0; !other; i++) if (placeAddress(`hog:p${i}`, 2) === placeAddress('hog:busy', 2)) other = `hog:p${i}`;
  // 300 messages of 2 ms each: 600 ms of work queued on one actor.
  for (let n = 0; n < 300; n++) node.runtime.send('hog:busy', { type: 'work', ms: 2, n, to: n === 299 ? 'conn:sup5' : undefined });
  await new Promise((r) => setTimeout(r, 20));
  node.runtime.send(other, { type: 'ping', to: 'conn:sup5', n: 1 });
  const first = await box.next((m) => m.type === 'pong' || m.type === 'worked');
  assert.is(first.type, 'pong', 'the ping was answered before the busy actor finished its queue');
  await box.next((m) => m.type === 'worked');
});

test.run();
