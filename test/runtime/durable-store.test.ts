// The group-commit store must read its own writes: a restart right after a crash or kill loads the
// snapshot and mailbox while their batch may still be pending or on its way to disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { DurableStore } from '../../src/runtime/durable-store.ts';

let dir: string;
let db: Level<string, string>;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-store-'));
  db = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
});
test.after(async () => { await db.close(); await rm(dir, { recursive: true, force: true }); });

const snap = (n: number) => ({ kind: 'k', version: 1, snapshot: { n } as never, savedAt: n });

test('a snapshot saved in this tick is what the next load returns', async () => {
  const store = new DurableStore(db);
  store.saveSnapshot('k:a', snap(1));
  await store.flushed();
  store.saveSnapshot('k:a', snap(2)); // still pending when the load starts
  assert.equal((await store.loadSnapshot('k:a'))?.snapshot, { n: 2 });
  store.saveSnapshot('k:a', null);
  assert.is(await store.loadSnapshot('k:a'), undefined);
});

test('a load during a batch in flight waits for it; the mailbox shows appends and removals asked for', async () => {
  const store = new DurableStore(db);
  const s1 = store.appendMessage('k:b', undefined, 'one');
  store.appendMessage('k:b', undefined, 'two');
  await new Promise((r) => setImmediate(r)); // the commit has started: its batch is being written
  store.removeMessage('k:b', s1);
  const box = await store.loadMailbox('k:b');
  assert.equal(box.map((m) => m.message), ['two']);
});

test.run();
