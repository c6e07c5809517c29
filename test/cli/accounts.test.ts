// Account storage and the shared account-command handler, on a real LevelDB in a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScramClient, ScramServer } from '../../src/sasl/scram.ts';
import { accountAdminHandlers, handleAccountRequest } from '../../src/cli/accounts.ts';
import {
  accountLookup, AccountError, createAccount, deleteAccount, getCredentials, importAccounts, listAccounts, setPassword,
} from '../../src/storage/accounts.ts';
import { keys, openDb, range, type Db } from '../../src/storage/db.ts';

let dir = '';
let db: Db;
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-accounts-'));
  db = await openDb(dir);
});
test.after(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function allEntries(): Promise<[string, unknown][]> {
  const out: [string, unknown][] = [];
  for await (const [k, v] of db.iterator()) out.push([k, v]);
  return out;
}

/** A complete SCRAM exchange against the stored verifier; true when the server accepts. */
async function login(host: string, user: string, password: string, hash: 'SHA-1' | 'SHA-256' | 'SHA-512' = 'SHA-256'): Promise<boolean> {
  const server = new ScramServer({ hash, lookup: accountLookup(db, host), serverSecret: 'test-secret', domain: host });
  const client = new ScramClient({ hash, username: user, password });
  const first = await server.start(Buffer.from(client.clientFirst()));
  if (first.kind !== 'challenge') return false;
  const final = await server.step(Buffer.from(await client.clientFinal(first.data.toString())));
  return final.kind === 'success' && client.verifyServerFinal(final.data?.toString() ?? '');
}

test('createAccount stores only SCRAM verifiers for SHA-1, SHA-256 and SHA-512', async () => {
  const password = 'correct horse battery staple';
  assert.is(await createAccount(db, 'Juliet@Example.COM', password), 'juliet@example.com');
  const entries = await allEntries();
  assert.equal(entries.map(([k]) => k), ['acct!juliet@example.com']);
  const rec = entries[0]![1] as { scram: Record<string, Record<string, unknown>>; created: string };
  assert.equal(Object.keys(rec).sort(), ['created', 'scram']);
  assert.equal(Object.keys(rec.scram).sort(), ['SHA-1', 'SHA-256', 'SHA-512']);
  for (const c of Object.values(rec.scram)) {
    assert.equal(Object.keys(c).sort(), ['iterations', 'salt', 'serverKey', 'storedKey']);
    assert.is(c.iterations, 4096);
  }
  assert.is((await getCredentials(db, 'juliet@example.com', 'SHA-512'))!.storedKey.length, 64);
  assert.is(await getCredentials(db, 'nobody@example.com', 'SHA-1'), undefined);
  // The verifier works for a real login, with every hash, and the username is case-mapped.
  for (const h of ['SHA-1', 'SHA-256', 'SHA-512'] as const) assert.ok(await login('example.com', 'Juliet', password, h), h);
  assert.not.ok(await login('example.com', 'juliet', 'wrong'));
  await db.close();
  // No trace of the password anywhere in the files LevelDB wrote (log, tables, manifest).
  for (const f of await readdir(join(dir, 'db'))) {
    const bytes = await readFile(join(dir, 'db', f));
    assert.not.ok(bytes.includes(Buffer.from(password)), `password found in ${f}`);
    assert.not.ok(bytes.includes(Buffer.from(Buffer.from(password).toString('base64').slice(0, 20))), `base64 password in ${f}`);
  }
  db = await openDb(dir);
});

test('createAccount refuses duplicates, bad JIDs, foreign hosts and empty passwords', async () => {
  const fails = async (p: Promise<unknown>, msg: RegExp) => {
    try {
      await p;
    } catch (e) {
      assert.instance(e, AccountError);
      assert.match((e as Error).message, msg);
      return;
    }
    assert.unreachable('expected an AccountError');
  };
  await fails(createAccount(db, 'juliet@example.com', 'x'), /^account juliet@example\.com already exists$/);
  await fails(createAccount(db, 'not a jid', 'x'), /^invalid JID "not a jid": missing "@"$/);
  await fails(createAccount(db, 'romeo@example.com/phone', 'x'), /has no "\/resource"/);
  await fails(createAccount(db, 'romeo@other.org', 'x', { hosts: ['example.com'] }), /other\.org is not a host of this server/);
  await fails(createAccount(db, 'romeo@example.com', ''), /password is empty/);
  await fails(createAccount(db, 'romeo@example.com', 'x', { iterations: 1000 }), /iterations must be/);
});

test('setPassword replaces the verifiers with fresh salts and keeps created', async () => {
  const before = await db.get(keys.acct('juliet@example.com')) as { created: string; scram: Record<string, { salt: string }> };
  assert.is(await setPassword(db, 'juliet@example.com', 'new secret', { iterations: 5000 }), 'juliet@example.com');
  const after = await db.get(keys.acct('juliet@example.com')) as typeof before & { scram: Record<string, { iterations: number }> };
  assert.is(after.created, before.created);
  assert.is.not(after.scram['SHA-256']!.salt, before.scram['SHA-256']!.salt);
  assert.is(after.scram['SHA-256']!.iterations, 5000);
  assert.ok(await login('example.com', 'juliet', 'new secret'));
  assert.not.ok(await login('example.com', 'juliet', 'correct horse battery staple'));
  try {
    await setPassword(db, 'ghost@example.com', 'x');
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'no account ghost@example.com');
  }
});

test('listAccounts lists all or one host; JIDs with "!" survive the key escaping', async () => {
  await createAccount(db, 'romeo@example.com', 'r');
  await createAccount(db, 'wow!such@example.net', 'w');
  await createAccount(db, 'nurse@example.com.au', 'n');
  assert.equal(await listAccounts(db), ['juliet@example.com', 'nurse@example.com.au', 'romeo@example.com', 'wow!such@example.net']);
  assert.equal(await listAccounts(db, 'example.com'), ['juliet@example.com', 'romeo@example.com']);
  assert.equal(await listAccounts(db, 'example.net'), ['wow!such@example.net']);
  assert.equal(await listAccounts(db, 'nowhere.org'), []);
});

test('deleteAccount removes the record first, then hands the cleanup its normalised JID', async () => {
  const romeo = 'romeo@example.com';
  const seen: Array<[string, unknown]> = [];
  const cleanUp = async (bare: string) => { seen.push([bare, await db.get(keys.acct(bare))]); };
  assert.equal(await deleteAccount(db, 'Romeo@example.com', cleanUp), { jid: romeo });
  assert.equal(seen, [[romeo, undefined]]);
  try {
    await deleteAccount(db, romeo, cleanUp);
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'no account romeo@example.com');
  }
});

test('importAccounts: bad lines reported by number, good lines imported', async () => {
  const result = await importAccounts(db, [
    '# exported from the old server',
    'a1@example.com pass one',
    '',
    'not-a-jid secret',
    'a2@example.com',
    'a3@other.org secret',
    'A1@example.com again',
    'juliet@example.com taken',
    'a4@example.com\tp4\r',
  ], { hosts: ['example.com'] });
  assert.equal(result, {
    imported: 2,
    failed: [
      { line: 4, error: 'invalid JID "not-a-jid": missing "@"' },
      { line: 5, error: 'expected "JID PASSWORD"' },
      { line: 6, error: 'a3@other.org: other.org is not a host of this server (hosts: example.com)' },
      { line: 7, error: 'a1@example.com is already on line 2' },
      { line: 8, error: 'account juliet@example.com already exists' },
    ],
  });
  assert.ok(await login('example.com', 'a1', 'pass one'));
  assert.ok(await login('example.com', 'a4', 'p4'));
});

test('importAccounts does thousands in seconds, in batches', async () => {
  const n = 2000;
  const lines = Array.from({ length: n }, (_, i) => `bulk${i}@bulk.example pw-${i}`);
  const started = Date.now();
  const r = await importAccounts(db, lines, { batchSize: 300 });
  const seconds = (Date.now() - started) / 1000;
  assert.equal(r, { imported: n, failed: [] });
  assert.is((await listAccounts(db, 'bulk.example')).length, n);
  assert.ok(seconds < 30, `took ${seconds} s`);
  assert.ok(await login('bulk.example', 'bulk1999', 'pw-1999'));
  let count = 0;
  for await (const _ of db.keys(range('acct!bulk'))) count++;
  assert.is(count, n);
});

test('handleAccountRequest answers in the admin protocol and never throws', async () => {
  const cleanUp = async () => {};
  assert.equal(await handleAccountRequest(db, { id: 7, cmd: 'adduser', args: { jid: 'Mercutio@example.com', password: 'm' } }, { cleanUp }),
    { id: 7, ok: true, result: { jid: 'mercutio@example.com' } });
  assert.equal(await handleAccountRequest(db, { id: 8, cmd: 'adduser', args: { jid: 'x@elsewhere.org', password: 'm' } }, { hosts: ['example.com'], cleanUp }),
    { id: 8, ok: false, error: 'x@elsewhere.org: elsewhere.org is not a host of this server (hosts: example.com)' });
  assert.equal(await handleAccountRequest(db, { id: 9, cmd: 'adduser', args: { jid: 'y@example.com' } }, { cleanUp }),
    { id: 9, ok: false, error: 'adduser: args.password must be a string' });
  assert.equal(await handleAccountRequest(db, { id: 10, cmd: 'status', args: {} }, { cleanUp }),
    { id: 10, ok: false, error: 'not an account command: "status" (account commands: adduser, passwd, deluser, users, import-users, invite, role)' });
  assert.equal(await handleAccountRequest(db, null, { cleanUp }), { id: null, ok: false, error: 'not an account command: undefined (account commands: adduser, passwd, deluser, users, import-users, invite, role)' });
  assert.equal(await handleAccountRequest(db, { id: 11, cmd: 'users', args: { host: 'example.net' } }, { cleanUp }),
    { id: 11, ok: true, result: ['wow!such@example.net'] });
  const imp = await handleAccountRequest(db, { id: 12, cmd: 'import-users', args: { lines: ['tybalt@example.com t', 'bad'] } }, { cleanUp });
  assert.equal(imp, { id: 12, ok: true, result: { imported: 1, failed: [{ line: 2, error: 'expected "JID PASSWORD"' }] } });
  assert.equal(await handleAccountRequest(db, { id: 13, cmd: 'deluser', args: { jid: 'tybalt@example.com' } }, { cleanUp }),
    { id: 13, ok: true, result: { jid: 'tybalt@example.com' } });

  const handlers = accountAdminHandlers(db, { hosts: ['example.com'], cleanUp });
  assert.equal([...handlers.keys()], ['adduser', 'passwd', 'deluser', 'users', 'import-users', 'invite', 'role']);
  // An account invitation (XEP-0401): a link for the host, or one reserving a free name.
  const inv = await handlers.get('invite')!({ host: 'example.com', days: 2 }) as { uri: string; expires: number };
  assert.match(inv.uri, /^xmpp:example\.com\?register;preauth=[0-9a-f]{32}$/);
  assert.ok(Math.abs(inv.expires - Date.now() - 2 * 86_400_000) < 60_000);
  assert.match((await handlers.get('invite')!({ host: 'example.com', username: 'rosaline', days: 0 }) as { uri: string }).uri, /^xmpp:rosaline@example\.com\?register;preauth=/);
  for (const [args, error] of [
    [{ host: 'example.org', days: 1 }, /example\.org is not a host of this server/],
    [{ host: 'example.com', username: 'rosaline', days: 1 }, /rosaline@example\.com is reserved by another invitation/],
    [{ host: 'example.com', username: 'juliet', days: 1 }, /juliet@example\.com exists already/],
    [{ host: 'example.com', days: -1 }, /args\.days must be a number/],
  ] as const) {
    const r = await handleAccountRequest(db, { id: 14, cmd: 'invite', args }, { hosts: ['example.com'], cleanUp });
    assert.is(r.ok, false);
    assert.match((r as { error: string }).error, error);
  }
  assert.equal(await handlers.get('users')!({ host: 'example.net' }), ['wow!such@example.net']);
  try {
    await handlers.get('passwd')!({ jid: 'ghost@example.com', password: 'x' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'no account ghost@example.com');
  }
});

test('works on a DB handle opened with utf8 values (as the runtime opens it)', async () => {
  const { Level } = await import('level');
  await db.close();
  const raw = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await raw.open({ multithreading: true });
  try {
    await createAccount(raw, 'benvolio@example.com', 'b');
    const text = await raw.get(keys.acct('benvolio@example.com'));
    assert.equal(Object.keys(JSON.parse(text!)).sort(), ['created', 'scram']);
    assert.ok((await listAccounts(raw)).includes('benvolio@example.com'));
  } finally {
    await raw.close();
    db = await openDb(dir);
  }
});

test.run();
