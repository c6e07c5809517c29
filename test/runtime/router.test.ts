import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { placeAddress } from '../../src/runtime/address.ts';
import { startTestNode, type TestNode } from '../helpers/runtime.ts';

let node: TestNode;
test.before(async () => { node = await startTestNode(); });
test.after(async () => { await node.cleanup(); });

test('same address always lands on the same scheduler; addresses spread over both', () => {
  const a = placeAddress('user:juliet@example.com', 2);
  for (let i = 0; i < 5; i++) assert.is(placeAddress('user:juliet@example.com', 2), a);
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) seen.add(placeAddress(`sink:${i}`, 2));
  assert.equal([...seen].sort(), [1, 2]);
  assert.is(placeAddress('conn:1', 2), 0);
  // a user's actor and its sessions share a thread, whatever the resource
  for (const r of ['balcony', 'garden', 'a/b']) assert.is(placeAddress(`session:juliet@example.com/${r}`, 2), a);
});

test('messages to an on-demand actor start it and arrive in order, across threads', async () => {
  const box = node.inbox('conn:t1');
  for (let n = 1; n <= 1000; n++) node.runtime.send('sink:a', { type: 'n', n });
  node.runtime.send('sink:a', { type: 'report', to: 'conn:t1' });
  const r = await box.next();
  assert.is(r.count, 1000);
  assert.is(r.last, 1000);
  assert.equal(r.gaps, []);
  assert.is(r.dups, 0);
});

test('durable sends are confirmed and delivered in order', async () => {
  const box = node.inbox('conn:t2');
  const sends = [];
  for (let n = 1; n <= 500; n++) sends.push(node.runtime.sendDurable('sink:b', { type: 'n', n }));
  await Promise.all(sends);
  node.runtime.send('sink:b', { type: 'report', to: 'conn:t2' });
  const r = await box.next();
  assert.is(r.count, 500);
  assert.equal(r.gaps, []);
});

test.run();
