// The storage format's version (#14): a data_dir written before versioning (format 0: an account in
// it) starts, is brought to the current format and serves its account; one written by a newer
// Chorus is refused with the reason and its fix; a new one is stamped at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../src/storage/db.ts';
import { createAccount } from '../../src/storage/accounts.ts';
import { STORAGE_FORMAT } from '../../src/storage/format.ts';
import { startServer } from '../helpers/xmpp.ts';
import { login } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-format-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const formatOf = async (data: string): Promise<unknown> => {
  const db = await openDb(data);
  try { return await db.get('meta!format'); } finally { await db.close(); }
};

test('a data_dir of the previous format (no version) starts, is brought up to date, and its account logs in', async () => {
  const data = join(dir, 'old');
  const db = await openDb(data);
  await createAccount(db, 'alice@localhost', 'pw', { iterations: 4096 });
  await db.close();
  const s = await startServer((c) => { c.data_dir = data; });
  try {
    assert.ok(s.logs.includes(`[info] storage: format 0 brought to ${STORAGE_FORMAT}`), s.logs.join('\n'));
    const alice = await login(s.port, 'alice', { password: 'pw' });
    await alice.c.stop();
  } finally {
    await s.stop();
  }
  assert.is(await formatOf(data), STORAGE_FORMAT);
});

test('a data_dir written by a newer Chorus is refused, with the fix; a new one is stamped without ado', async () => {
  const data = join(dir, 'newer');
  const db = await openDb(data);
  await db.put('meta!format', STORAGE_FORMAT + 1);
  await db.close();
  try {
    const s = await startServer((c) => { c.data_dir = data; });
    await s.stop();
    assert.unreachable('a newer format must not start');
  } catch (e) {
    assert.match((e as Error).message, new RegExp(`written by a newer Chorus \\(storage format ${STORAGE_FORMAT + 1}; this one reads up to ${STORAGE_FORMAT}\\)`));
    assert.match((e as { fix?: string }).fix ?? '', /restore a backup/);
  }
  const fresh = join(dir, 'fresh');
  const s = await startServer((c) => { c.data_dir = fresh; });
  try { assert.not.ok(s.logs.some((l) => l.includes('storage: format')), 'nothing to migrate in a new database'); } finally { await s.stop(); }
  assert.is(await formatOf(fresh), STORAGE_FORMAT);
});

test.run();
