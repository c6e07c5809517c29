// The Storage modules get (src/storage/kv.ts) over a real LevelDB in a temp dir: ranges by prefix,
// narrowed by bounds for paging (an archive read from a given id on, or backwards before one), and
// the key builders that keep a `!` inside a JID from splitting a key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { keyOf, keysUnder, openDb, type Db } from '../../src/storage/db.ts';
import { kvStorage } from '../../src/storage/kv.ts';
import type { Storage } from '../../src/xmpp/module.ts';
import { tempDir } from '../helpers/runtime.ts';

let dir: string, db: Db, s: Storage;
const at = (n: number) => keyOf('arch', 'a!b@x', String(n).padStart(4, '0'));
const under = keysUnder('arch', 'a!b@x');
test.before(async () => {
  dir = tempDir('chorus-kv-');
  db = await openDb(dir);
  s = kvStorage(db as never);
  await s.batch([1, 2, 3, 4, 5].map((n) => ({ type: 'put' as const, key: at(n), value: n })));
  await s.put(keyOf('arch', 'a'), 'not under a!b@x'); // a prefix of the escaped JID's part, not under it
});
test.after(async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); });

const values = async (o: Parameters<Storage['range']>[1]) => (await s.range<number>(under, o)).map(([, v]) => v);

test('a prefix holds its keys only, in order; a ! in a JID is escaped', async () => {
  assert.ok(under.startsWith('arch!a%21b@x!'), under);
  assert.equal(await values({}), [1, 2, 3, 4, 5]);
});

test('bounds page forwards after a key and backwards before one', async () => {
  assert.equal(await values({ gt: at(2), limit: 2 }), [3, 4]);
  assert.equal(await values({ gte: at(2), lt: at(4) }), [2, 3]);
  assert.equal(await values({ lt: at(4), reverse: true, limit: 2 }), [3, 2]);
  assert.equal(await values({ gte: at(3), lte: at(5) }), [3, 4, 5]);
});

test('a bound outside the prefix is refused', async () => {
  try { await s.range(under, { gt: keyOf('other', 'x') }); assert.unreachable(); } catch (e) { assert.match((e as Error).message, /outside/); }
});

test.run();
