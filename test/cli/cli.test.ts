// The `chorus` command run as a child process, against a temp data dir — directly on the DB, and
// through a node's admin socket while the node holds the DB lock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chorusCli, type Run } from '../helpers/process.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountAdminHandlers } from '../../src/cli/accounts.ts';
import { AdminServer } from '../../src/runtime/admin.ts';
import { ScramClient, ScramServer } from '../../src/sasl/scram.ts';
import { accountLookup, listAccounts } from '../../src/storage/accounts.ts';
import { keys, openDb, type Db } from '../../src/storage/db.ts';
import { offlineKeys } from '../../src/modules/offline.ts';
import { rosterKeys } from '../../src/modules/roster-store.ts';

let dir = '';
let config = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-cli-'));
  config = join(dir, 'chorus.yaml');
  await writeFile(config, 'hosts: [example.org, example.net]\ndata_dir: ./data\nlisten: { address: 127.0.0.1, s2s: false, http: false, https: false }\n');
  // The database exists, as after a first start: the suite's other files may run nodes meanwhile, and
  // creating a fresh database beside a running node is refused (test/cli/config-discovery.test.ts).
  await (await openDb(join(dir, 'data'))).close();
});
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const chorus = (args: string[], input?: string): Promise<Run> => chorusCli(args, { input });
const withConfig = (...args: string[]) => [...args, '--config', config];

/** One clean error line, exit 1, nothing on stdout, no stack trace. */
function userError(r: Run, line: string): void {
  assert.is(r.code, 1, r.err);
  assert.is(r.out, '');
  assert.is(r.err, line + '\n');
}

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await openDb(join(dir, 'data'));
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function canLogin(db: Db, host: string, user: string, password: string): Promise<boolean> {
  const server = new ScramServer({ hash: 'SHA-256', lookup: accountLookup(db, host), serverSecret: 's', domain: host });
  const client = new ScramClient({ hash: 'SHA-256', username: user, password });
  const first = await server.start(Buffer.from(client.clientFirst()));
  if (first.kind !== 'challenge') return false;
  const final = await server.step(Buffer.from(await client.clientFinal(first.data.toString())));
  return final.kind === 'success';
}

test('adduser with the password as an argument, then users', async () => {
  const r = await chorus(withConfig('adduser', 'Alice@Example.org', 's3cret'));
  assert.equal(r, { code: 0, out: 'created alice@example.org\n', err: '' });
  const u = await chorus(withConfig('users'));
  assert.equal(u, { code: 0, out: 'alice@example.org\n', err: '' });
  assert.ok(await withDb((db) => canLogin(db, 'example.org', 'alice', 's3cret')));
  // passwd takes one as adduser does (#30.10)
  const p = await chorus(withConfig('passwd', 'alice@example.org', 'n3w'));
  assert.equal(p, { code: 0, out: 'password changed for alice@example.org\n', err: '' });
  assert.ok(await withDb((db) => canLogin(db, 'example.org', 'alice', 'n3w')));
});

test('role shows an account\'s role and makes it an admin or a user again; a password change keeps it', async () => {
  assert.is((await chorus(withConfig('adduser', 'rolf@example.org', 'r'))).code, 0);
  assert.equal(await chorus(withConfig('role', 'rolf@example.org')), { code: 0, out: 'rolf@example.org: user\n', err: '' });
  assert.equal(await chorus(withConfig('role', 'rolf@example.org', 'admin')), { code: 0, out: 'rolf@example.org: admin\n', err: '' });
  assert.is((await chorus(withConfig('passwd', 'rolf@example.org', 'r2'))).code, 0);
  assert.equal(await chorus(withConfig('role', 'rolf@example.org')), { code: 0, out: 'rolf@example.org: admin\n', err: '' });
  assert.equal(await chorus(withConfig('role', 'rolf@example.org', 'user')), { code: 0, out: 'rolf@example.org: user\n', err: '' });
  userError(await chorus(withConfig('role', 'rolf@example.org', 'owner')), 'chorus: unknown role "owner": admin or user');
  userError(await chorus(withConfig('role', 'ghost@example.org', 'admin')), 'chorus: no account ghost@example.org');
  assert.is((await chorus(withConfig('deluser', 'rolf@example.org'))).code, 0);
});

test('adduser and passwd read the password from a pipe', async () => {
  const r = await chorus(withConfig('adduser', 'bob@example.net'), 'piped password\nignored second line\n');
  assert.equal(r, { code: 0, out: 'created bob@example.net\n', err: '' });
  assert.ok(await withDb((db) => canLogin(db, 'example.net', 'bob', 'piped password')));
  const p = await chorus(withConfig('passwd', 'bob@example.net'), 'changed\n');
  assert.equal(p, { code: 0, out: 'password changed for bob@example.net\n', err: '' });
  await withDb(async (db) => {
    assert.ok(await canLogin(db, 'example.net', 'bob', 'changed'));
    assert.not.ok(await canLogin(db, 'example.net', 'bob', 'piped password'));
  });
  userError(await chorus(withConfig('adduser', 'carl@example.net'), ''), 'chorus: no password given (empty line or end of input)');
});

test('bad JIDs, foreign hosts, duplicates and missing accounts are one clear line, exit 1', async () => {
  userError(await chorus(withConfig('adduser', 'not a jid', 'pw')), 'chorus: invalid JID "not a jid": missing "@"');
  userError(await chorus(withConfig('adduser', 'eve@example.org/laptop', 'pw')), 'chorus: invalid JID "eve@example.org/laptop": a bare JID has no "/resource"');
  userError(await chorus(withConfig('adduser', 'eve@evil.example', 'pw')), 'chorus: eve@evil.example: evil.example is not a host of this server (hosts: example.org, example.net)');
  userError(await chorus(withConfig('adduser', 'alice@example.org', 'pw')), 'chorus: account alice@example.org already exists');
  userError(await chorus(withConfig('deluser', 'ghost@example.org')), 'chorus: no account ghost@example.org');
  userError(await chorus(withConfig('users', 'nowhere.example')), 'chorus: nowhere.example is not a host of this server (hosts: example.org, example.net)');
});

test('users HOST filters; deluser removes the account and what the modules kept for it, nobody else\'s', async () => {
  assert.is((await chorus(withConfig('users', 'example.net'))).out, 'bob@example.net\n');
  const bob = 'bob@example.net';
  const kept = [rosterKeys.item('alice@example.org', bob), rosterKeys.item('bob@example.net.au', 'x@y.z'), offlineKeys.at('bob@example.net.au', 1)];
  const gone = [rosterKeys.item(bob, 'alice@example.org'), rosterKeys.ver(bob), offlineKeys.at(bob, 1), offlineKeys.at(bob, 2), keys.snap(`user:${bob}`)];
  const db = await openDb(join(dir, 'data'));
  await db.batch([...kept, ...gone].map((key) => ({ type: 'put' as const, key, value: '{}' })));
  await db.close();
  assert.equal(await chorus(withConfig('deluser', 'BOB@example.net')), { code: 0, out: 'deleted bob@example.net\n', err: '' });
  assert.equal(await chorus(withConfig('users')), { code: 0, out: 'alice@example.org\n', err: '' });
  const after = await openDb(join(dir, 'data'));
  const left = new Set<string>();
  for await (const k of after.keys()) left.add(k);
  await after.close();
  assert.equal(gone.filter((k) => left.has(k)), []);
  assert.equal(kept.filter((k) => !left.has(k)), []);
});

test('import-users reports bad lines by number and imports the rest', async () => {
  const file = join(dir, 'users.txt');
  await writeFile(file, 'dave@example.org d\nbroken-line\nerin@example.net e e\n');
  const r = await chorus(withConfig('import-users', file));
  assert.is(r.code, 1);
  assert.is(r.out, 'imported 2 accounts; 1 line failed\n');
  assert.is(r.err, `${file}:2: expected "JID PASSWORD"\n`);
  assert.ok(await withDb((db) => canLogin(db, 'example.net', 'erin', 'e e')));
  userError(await chorus(withConfig('import-users', join(dir, 'missing.txt'))), `chorus: cannot read ${join(dir, 'missing.txt')}: no such file`);
});

test('node-only commands say clearly that no node is running', async () => {
  const sock = join(dir, 'data', 'admin.sock');
  for (const cmd of ['status', 'actors', 'kill', 'reload']) {
    const args = cmd === 'kill' ? ['kill', 'session:x@example.org/r'] : [cmd];
    userError(await chorus(withConfig(...args)),
      `chorus: "${cmd}" needs a running node, and none answers on ${sock} (start it with: chorus start --config ${config})`);
  }
});

test('with a node holding the DB, account commands go through its admin socket', async () => {
  const db = await openDb(join(dir, 'data'));
  const handlers = accountAdminHandlers(db, { hosts: ['example.org', 'example.net'], cleanUp: async () => {} });
  handlers.set('status', async () => ({ uptimeSeconds: 42, mainThread: { heapUsed: 2_097_152, external: 1_048_576, arrayBuffers: 0 }, schedulers: [{ thread: 0, actors: 3 }] }));
  handlers.set('actors', async (args) => [{ address: `session:alice@example.org/${String(args.kind ?? 'any')}`, kind: 'session', scheduler: 0 }]);
  const admin = new AdminServer(join(dir, 'data', 'admin.sock'), handlers);
  await admin.listen();
  try {
    assert.equal(await chorus(withConfig('adduser', 'frank@example.org', 'f')), { code: 0, out: 'created frank@example.org\n', err: '' });
    assert.ok((await listAccounts(db)).includes('frank@example.org'), 'written by the node process');
    assert.ok(await canLogin(db, 'example.org', 'frank', 'f'));
    const users = await chorus(withConfig('users', 'example.org'));
    assert.equal(users.out.split('\n').filter(Boolean), ['alice@example.org', 'dave@example.org', 'frank@example.org']);
    userError(await chorus(withConfig('deluser', 'ghost@example.org')), 'chorus: no account ghost@example.org');
    const status = await chorus(withConfig('status'));
    assert.equal(status, { code: 0, out: 'uptime: 42s\nmainThread:\n  heap: 2.0 MB\n  external: 1.0 MB\n  arrayBuffers: 0.0 MB\nschedulers:\n  - thread: 0\n    actors: 3\n', err: '' });
    const json = await chorus(withConfig('status', '--json'));
    assert.equal(JSON.parse(json.out), { uptimeSeconds: 42, mainThread: { heapUsed: 2_097_152, external: 1_048_576, arrayBuffers: 0 }, schedulers: [{ thread: 0, actors: 3 }] });
    const actors = await chorus(withConfig('actors', '--kind', 'session'));
    const rows = actors.out.split('\n').filter(Boolean);
    assert.equal(rows.map((l) => l.split(/ {2,}/)), [['address', 'kind', 'scheduler'], ['session:alice@example.org/session', 'session', '0']]);
    assert.is(rows[0]!.indexOf('kind'), rows[1]!.indexOf(' session ') + 1, 'columns line up');
    userError(await chorus(withConfig('kill', 'session:x@example.org/r')), 'chorus: unknown command "kill"; known: adduser, passwd, deluser, users, import-users, invite, role, status, actors');
  } finally {
    await admin.close();
  }
  try {
    // Node gone but the lock still held (a node starting or stopping): say so, do not hang or crash.
    const r = await chorus(withConfig('users'));
    userError(r, `chorus: the database ${join(dir, 'data', 'db')} is locked by another process, but nothing answers on ${join(dir, 'data', 'admin.sock')}; is a node starting or stopping? Try again in a moment`);
  } finally {
    await db.close();
  }
});

test('--help for every command; unknown commands and options are named', async () => {
  const top = await chorus(['--help']);
  assert.is(top.code, 0);
  for (const cmd of ['start', 'adduser', 'passwd', 'deluser', 'users', 'import-users', 'check', 'status', 'actors', 'kill', 'reload', 'load', 'unload', 'bench']) {
    assert.match(top.out, new RegExp(`^  ${cmd} `, 'm'));
    const h = await chorus([cmd, '--help']);
    assert.is(h.code, 0, `${cmd} --help: ${h.err}`);
    assert.match(h.out, new RegExp(`^usage: chorus ${cmd}`, 'm'));
  }
  userError(await chorus(['frobnicate']), 'chorus: unknown command "frobnicate" (see chorus --help)');
  userError(await chorus(withConfig('users', '--colour')), 'chorus: unknown option --colour for "chorus users" (see chorus users --help)');
  userError(await chorus(withConfig('deluser')), 'chorus: missing argument: usage: chorus deluser JID');
  userError(await chorus(withConfig('adduser', 'a@example.org', 'pw', '--iterations', 'lots')), 'chorus: --iterations expects a whole number, got "lots"');
});

test('a bad config lists every problem and exits 1', async () => {
  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, 'listen:\n  c2s: abc\nhostz: [x]\n');
  const r = await chorus(['users', '--config', bad]);
  userError(r, [
    'chorus: config error: listen.c2s: expected a port number 1-65535, got "abc" (line 2)',
    'chorus: config error: hostz: unknown key; did you mean "hosts"? (line 3)',
  ].join('\n'));
});

test('start names the cause and the fix: a data_dir it cannot create, a database another process holds (#30.5)', async () => {
  const ports = 'listen: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false }\n';
  await writeFile(join(dir, 'a-file'), 'not a folder');
  const blocked = join(dir, 'blocked.yaml');
  await writeFile(blocked, `hosts: [example.org]\ndata_dir: ${join(dir, 'a-file', 'data')}\n${ports}`);
  const r1 = await chorus(['start', '--config', blocked]);
  assert.is(r1.code, 1, r1.err);
  assert.match(r1.err, new RegExp(`^chorus: data_dir ${join(dir, 'a-file', 'data')} cannot be created \\(a part of its path is a file\\); create it for the node's user: sudo mkdir -p `, 'm'));
  assert.not.match(r1.err, /internal error/);
  // As when two nodes start at once: the database's lock is taken and no admin socket answers yet.
  const held = join(dir, 'held.yaml');
  await writeFile(held, `hosts: [example.org]\ndata_dir: ./held\n${ports}`);
  const db = await openDb(join(dir, 'held'));
  try {
    const r2 = await chorus(['start', '--config', held]);
    assert.is(r2.code, 1, r2.err);
    assert.match(r2.err, /chorus: data_dir \S+held: its database is in use by another process\nchorus: fix: is a node already running with this data_dir/);
  } finally { await db.close(); }
});

test.run();
