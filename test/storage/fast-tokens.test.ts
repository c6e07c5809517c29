// FAST tokens (src/storage/fast-tokens.ts) over a real LevelDB: the two slots of XEP-0484's
// implementation notes (a new token in `next` until first used; the older one dropped then), tokens
// bound to their mechanism and their installation, expiry, invalidation, revocation with the account.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync } from 'node:fs';
import { openDb, type Db } from '../../src/storage/db.ts';
import { fastTokens, readTokens, revokeTokens, type FastTokens } from '../../src/storage/fast-tokens.ts';
import { createAccount, deleteAccount, setPassword } from '../../src/storage/accounts.ts';
import { kvStorage } from '../../src/storage/kv.ts';
import { tempDir } from '../helpers/runtime.ts';

let dir: string, db: Db, clock = 1_700_000_000_000, t: FastTokens;
const DAY = 24 * 3600_000;
const NONE = 'HT-SHA-256-NONE';
test.before(async () => {
  dir = tempDir('chorus-fast-');
  db = await openDb(dir);
  t = fastTokens(db, 21 * DAY, () => clock);
});
test.after(async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); });

const is = (token: string) => (candidate: string) => candidate === token;

test('a new token waits in `next`; its first use makes it `current`, and the older one stops working', async () => {
  const a = await t.issue('alice@x', 'phone', NONE);
  assert.is(a.expiry, clock + 21 * DAY);
  assert.ok(await t.use('alice@x', 'phone', NONE, is(a.token), false));
  assert.equal(await readTokens(db, 'alice@x', 'phone'), { current: a });
  // Rotation: the new one is issued; until it is used, both work (the client may never have got it).
  const b = await t.issue('alice@x', 'phone', NONE);
  assert.ok(await t.use('alice@x', 'phone', NONE, is(a.token), false), 'the old one, before the new one is used');
  assert.ok(await t.use('alice@x', 'phone', NONE, is(b.token), false));
  assert.not.ok(await t.use('alice@x', 'phone', NONE, is(a.token), false), 'the old one, once the new one was used');
});

test('a token works for its installation and its mechanism only, and until its expiry', async () => {
  const a = await t.issue('bob@x', 'phone', NONE);
  assert.not.ok(await t.use('bob@x', 'laptop', NONE, is(a.token), false), 'another installation');
  assert.not.ok(await t.use('bob@x', 'phone', 'HT-SHA-256-EXPR', is(a.token), false), 'another mechanism');
  assert.not.ok(await t.use('bob@x', 'phone', NONE, is('guess'), false), 'a wrong proof');
  clock += 22 * DAY;
  assert.not.ok(await t.use('bob@x', 'phone', NONE, is(a.token), false), 'expired');
});

test('invalidate (a client logging out): the token used is gone', async () => {
  const a = await t.issue('carol@x', 'phone', NONE);
  assert.ok(await t.use('carol@x', 'phone', NONE, is(a.token), true));
  assert.not.ok(await t.use('carol@x', 'phone', NONE, is(a.token), false));
});

test("a password change and the account's deletion revoke every token; other accounts keep theirs", async () => {
  await createAccount(db, 'dave@x', 'pw', { iterations: 4096 });
  await createAccount(db, 'erin@x', 'pw', { iterations: 4096 });
  await t.issue('dave@x', 'phone', NONE);
  await t.issue('dave@x', 'laptop', NONE);
  const e = await t.issue('erin@x', 'phone', NONE);
  await setPassword(db, 'dave@x', 'new');
  assert.not.ok(await readTokens(db, 'dave@x', 'phone'));
  assert.not.ok(await readTokens(db, 'dave@x', 'laptop'));
  const d3 = await t.issue('dave@x', 'phone', NONE);
  await deleteAccount(db, 'dave@x', async () => undefined);
  assert.not.ok(await t.use('dave@x', 'phone', NONE, is(d3.token), false));
  assert.ok(await t.use('erin@x', 'phone', NONE, is(e.token), false));
  await revokeTokens(kvStorage(db as never), 'erin@x');
  assert.not.ok(await readTokens(db, 'erin@x', 'phone'));
});

test.run();
