// Async effects: a handler suspends its actor on a promise (real actors on real scheduler threads).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestNode, until, type TestNode } from '../helpers/runtime.ts';

let node: TestNode;
test.before(async () => { node = await startTestNode(); });
test.after(async () => { await node.cleanup(); });

test('the mailbox waits while a handler is suspended; the API works after its await', async () => {
  const box = node.inbox('conn:w1');
  await node.runtime.spawn('waiter:o');
  node.runtime.send('waiter:o', { type: 'fetch', ms: 300, value: 'a', to: 'conn:w1' });
  node.runtime.send('waiter:o', { type: 'note', value: 'b' }); // arrives while 'fetch' is suspended
  const r = await node.report('waiter:o', box, 'conn:w1');
  assert.equal(r.log, ['a', 'b']);
  assert.is((await box.next((m) => m.type === 'after-await')).self, 'waiter:o');
});

test('a durable message suspended in its handler survives a kill: the restart handles it', async () => {
  const box = node.inbox('conn:w2');
  await node.runtime.spawn('waiter:k');
  node.runtime.send('waiter:k', { type: 'note', value: 'n' }); // a snapshot to restart from
  assert.equal((await node.report('waiter:k', box, 'conn:w2')).log, ['n']);
  await node.runtime.sendDurable('waiter:k', { type: 'fetch', ms: 1500, value: 'k', to: 'conn:w2' });
  const first = await box.next((m) => m.type === 'started');
  assert.ok(first.id, 'durable');
  assert.ok(await node.runtime.kill('waiter:k'));
  const again = await box.next((m) => m.type === 'started');
  assert.is(again.id, first.id, 'the same message, redelivered');
  await box.next((m) => m.type === 'after-await');
  const r = await node.report('waiter:k', box, 'conn:w2');
  assert.equal(r.log, ['n', 'k']);
  assert.is(r.restored, 1);
});

test('a rejected effect crashes the actor; its durable message is redelivered and then done once', async () => {
  const box = node.inbox('conn:w3');
  await node.runtime.spawn('waiter:f');
  node.runtime.send('waiter:f', { type: 'note', value: 'n' });
  assert.equal((await node.report('waiter:f', box, 'conn:w3')).log, ['n']);
  await node.runtime.sendDurable('waiter:f', { type: 'fetch', ms: 10, value: 'f', to: 'conn:w3', failOnce: true });
  await until(() => node.logs.some((l) => l.includes('waiter:f crashed: disk on fire')), 10_000, 'crash logged');
  await box.next((m) => m.type === 'after-await');
  const r = await node.report('waiter:f', box, 'conn:w3');
  assert.equal(r.log, ['n', 'f']);
  assert.is(r.restored, 1);
});

test("an invoked child's answer reaches the machine through its mailbox: its actions may use the API", async () => {
  const box = node.inbox('conn:w4');
  await node.runtime.spawn('waiter:i');
  node.runtime.send('waiter:i', { type: 'work', ms: 50, value: 'x', to: 'conn:w4' });
  node.runtime.send('waiter:i', { type: 'note', value: 'meanwhile' }); // handled while the child works
  assert.is((await box.next((m) => m.type === 'job-done')).self, 'waiter:i');
  node.runtime.send('waiter:i', { type: 'work', ms: 10, value: 'y', to: 'conn:w4', fail: true });
  await box.next((m) => m.type === 'job-done');
  assert.equal((await node.report('waiter:i', box, 'conn:w4')).log, ['meanwhile', 'job:x', 'job:error']);
});

test('the answer of a child whose state was left (or entered again) is dropped', async () => {
  const box = node.inbox('conn:w5');
  await node.runtime.spawn('waiter:c');
  node.runtime.send('waiter:c', { type: 'work', ms: 300, value: 'old', to: 'conn:w5' });
  node.runtime.send('waiter:c', { type: 'cancel' });
  node.runtime.send('waiter:c', { type: 'work', ms: 400, value: 'new', to: 'conn:w5' });
  await box.next((m) => m.type === 'job-done');
  assert.equal((await node.report('waiter:c', box, 'conn:w5')).log, ['job:new']);
});

test('persistIf: a state it refuses is not written; a crash restarts from the last one written', async () => {
  const box = node.inbox('conn:w6');
  await node.runtime.spawn('waiter:p');
  node.runtime.send('waiter:p', { type: 'note', value: 'kept' });
  node.runtime.send('waiter:p', { type: 'note', value: 'unsaved' });
  assert.equal((await node.report('waiter:p', box, 'conn:w6')).log, ['kept', 'unsaved']);
  assert.ok(await node.runtime.kill('waiter:p'));
  const running = async () => (await node.runtime.stats(true, 'waiter')).some((s) => s.list?.some((a) => a.address === 'waiter:p' && a.status === 'running'));
  await until(running, 10_000, 'waiter:p restarted');
  const r = await node.report('waiter:p', box, 'conn:w6');
  assert.equal([r.log, r.restored], [['kept'], 1]);
});

test('a monitor follows a move: the watcher hears the new address, then the end there', async () => {
  const box = node.inbox('conn:w7');
  await node.runtime.spawn('waiter:from');
  const heard: Array<[string, string | undefined]> = [];
  node.runtime.monitor('waiter:from', (reason, movedTo) => heard.push([reason, movedTo]));
  node.runtime.send('waiter:from', { type: 'note', value: 'before' });
  node.runtime.send('waiter:from', { type: 'move', to: 'waiter:to' });
  await until(() => heard.length === 1, 10_000, 'the move notice');
  assert.equal(heard, [['moved', 'waiter:to']]);
  assert.equal((await node.report('waiter:to', box, 'conn:w7')).log, ['before']);
  assert.ok(await node.runtime.kill('waiter:to'));
  await until(() => heard.length === 2, 10_000, 'the down notice');
  assert.equal(heard[1], ['kill', undefined]);
});

test.run();
