// The operator's commands against a real node: `chorus start` runs as a child process on loopback
// ports with a temp data dir, and every other command is a child process too, talking to it over the
// admin socket (adduser, users, status, actors, kill, reload), with logged-in clients that must
// survive kill and reload; then SIGTERM stops the node cleanly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chorusCli, type Run } from '../helpers/process.ts';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, rawLogin, type RawClient } from '../helpers/xmpp.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let dir = '';
let config = '';
let sock = '';
let port = 0;
let node: ChildProcess | null = null;
let nodeErr = '';
let nodeExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
const clients: RawClient[] = [];
let alice: RawClient;
let bob: RawClient;

const chorus = (...args: string[]): Promise<Run> => chorusCli([...args, '--config', config]);

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}\nnode stderr:\n${nodeErr}`)), ms); })])
    .finally(() => clearTimeout(t));
}

let pings = 0;
/** An XEP-0199 ping to the server on this connection; resolves when the result arrives. */
async function ping(c: RawClient): Promise<void> {
  const id = `ping${++pings}`;
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.waitFor(new RegExp(`<iq(?=[^>]*\\sid="${id}")(?=[^>]*\\stype="result")[^>]*/?>`), 5000);
}

let sent = 0;
/** bob → alice chat message; resolves when alice's connection received it. */
async function message(text: string): Promise<void> {
  const id = `m${++sent}`;
  bob.send(`<message type='chat' id='${id}' to='alice@localhost'><body>${text}</body></message>`);
  await alice.waitFor(new RegExp(`<body>${text}</body>`), 5000);
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-admin-'));
  config = join(dir, 'chorus.yaml');
  sock = join(dir, 'data', 'admin.sock');
  port = await freePort();
  await writeFile(config, [
    'hosts: [localhost]',
    'data_dir: ./data',
    `listen: { address: 127.0.0.1, c2s: ${port}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false, component: false }`,
    'c2s_require_encryption: false',
    'schedulers: 2',
    'log_level: info',
    '',
  ].join('\n'));
});

test.after(async () => {
  for (const c of clients) c.close();
  if (node && node.exitCode === null && node.signalCode === null) {
    node.kill('SIGKILL'); // only when a test failed before the clean stop
    await nodeExit;
  }
  await rm(dir, { recursive: true, force: true });
});

test('status before any node runs: exit 1, says no node is running', async () => {
  const r = await chorus('status');
  assert.is(r.code, 1, r.err);
  assert.is(r.out, '');
  assert.is(r.err, `chorus: "status" needs a running node, and none answers on ${sock} (start it with: chorus start --config ${config})\n`);
});

test('chorus start comes up; the admin socket is mode 0600', async () => {
  const child = spawn(process.execPath, ['bin/chorus.js', 'start', '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  node = child;
  nodeExit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.stdout!.on('data', (d) => (nodeErr += d));
  const up = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => { nodeErr += d; if (/chorus: serving localhost on c2s 127\.0\.0\.1:\d+/.test(nodeErr)) resolve(); });
    child.once('exit', (code) => reject(new Error(`chorus start exited with ${code} before serving:\n${nodeErr}`)));
  });
  await within(up, 20_000, 'chorus start to serve');
  const s = await stat(sock);
  assert.ok(s.isSocket());
  assert.is((s.mode & 0o777).toString(8), '600');
});

test('adduser while the node runs goes over the admin socket; users lists the accounts', async () => {
  assert.equal(await chorus('adduser', 'alice@localhost', 'alice-pw'), { code: 0, out: 'created alice@localhost\n', err: '' });
  assert.equal(await chorus('adduser', 'Bob@LocalHost', 'bob-pw'), { code: 0, out: 'created bob@localhost\n', err: '' });
  assert.equal(await chorus('users'), { code: 0, out: 'alice@localhost\nbob@localhost\n', err: '' });
  // The running node (which holds the DB lock) knows the new accounts at once.
  alice = await rawLogin(port, 'alice', 'desk', 'alice-pw');
  bob = await rawLogin(port, 'bob', 'phone', 'bob-pw');
  clients.push(alice, bob);
  alice.send('<presence/>');
  bob.send('<presence/>');
  await ping(alice);
  await message('hello-before');
});

test('status shows uptime, every scheduler and actor counts per kind', async () => {
  const r = await chorus('status');
  assert.is(r.code, 0, r.err);
  assert.is(r.err, '');
  assert.match(r.out, /^uptime: (\d+[dhm] )*\d+[dhms]$/m); // in units, not raw seconds (#30.10)
  assert.match(r.out, /^memory: \d+\.\d MB$/m);
  assert.match(r.out, /^schedulers:$/m);
  assert.match(r.out, /^actorsByKind:$/m);
  assert.match(r.out, /^ {2}user: 2$/m);
  const j = await chorus('status', '--json');
  assert.is(j.code, 0, j.err);
  const s = JSON.parse(j.out) as { uptimeSeconds: number; schedulers: Array<{ thread: number; actors: number }>; actorsByKind: Record<string, number> };
  assert.ok(Number.isInteger(s.uptimeSeconds) && s.uptimeSeconds >= 0);
  assert.equal(s.schedulers.map((x) => x.thread).sort(), [1, 2]);
  assert.is(s.actorsByKind.user, 2);
  assert.ok(s.actorsByKind.session! >= 2, JSON.stringify(s.actorsByKind)); // + 'moved' aliases of pre-bind addresses for a few s
  assert.is(s.schedulers.reduce((n, x) => n + x.actors, 0), Object.values(s.actorsByKind).reduce((n, x) => n + x, 0));
});

test('actors --kind user lists the user actors as a table', async () => {
  const r = await chorus('actors', '--kind', 'user');
  assert.is(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.match(lines[0]!, /^address\s+kind\s+queue\s+durable\s+handled\s+status\s+scheduler$/);
  assert.equal(lines.slice(1).map((l) => l.split(/\s+/)[0]).sort(), ['user:alice@localhost', 'user:bob@localhost']);
  for (const l of lines.slice(1)) assert.match(l, /\suser\s.*\srunning\s+[12]$/);
  const s = await chorus('actors', '--kind', 'session');
  assert.match(s.out, /^session:alice@localhost\/desk\s+session\s.*running/m);
});

test('kill session:<full JID>: exit 0, the client stays connected and keeps working', async () => {
  const r = await chorus('kill', 'session:alice@localhost/desk');
  assert.equal(r, { code: 0, out: 'killed session:alice@localhost/desk\n', err: '' });
  await ping(alice);
  await message('hello-after-kill');
  assert.not.ok(alice.closed);
  assert.match(nodeErr, /session:alice@localhost\/desk crashed \(kill\); the connection stays open/);
  const s = await chorus('actors', '--kind', 'session');
  assert.match(s.out, /^session:alice@localhost\/desk\s+session\s.*running/m);
});

test('kill of an actor that does not exist: exit 1, one clear line', async () => {
  const r = await chorus('kill', 'session:nobody@localhost/x');
  assert.equal(r, { code: 1, out: '', err: 'chorus: no actor session:nobody@localhost/x\n' });
});

test('reload session: exit 0, clients stay connected and keep working', async () => {
  const r = await chorus('reload', 'session');
  assert.is(r.code, 0, r.err);
  assert.is(r.err, '');
  assert.match(r.out, /kind: session/);
  assert.not.match(r.out, /kind: user/);
  // each scheduler reloads its own copy, and says which it is (#30.10)
  assert.match(r.out, /scheduler: 1/);
  assert.match(r.out, /scheduler: 2/);
  await ping(alice);
  await ping(bob);
  await message('hello-after-reload');
  assert.not.ok(alice.closed);
  assert.not.ok(bob.closed);
});

test('SIGTERM stops the node: exit 0, socket gone, clients told, status says no node runs', async () => {
  // An admin client that stays connected (a stuck tool) must not hold the node up.
  const idle = connect(sock);
  await once(idle, 'connect');
  idle.on('error', () => undefined);
  node!.kill('SIGTERM');
  const exit = await within(nodeExit!, 15_000, 'the node to exit after SIGTERM');
  assert.equal(exit, { code: 0, signal: null }, nodeErr);
  assert.not.ok(existsSync(sock));
  await alice.waitClosed();
  assert.match(alice.received, /<system-shutdown/);
  const r = await chorus('status');
  assert.is(r.code, 1);
  assert.match(r.err, /^chorus: "status" needs a running node, and none answers on /);
  // The only errors logged are the two lines of the deliberate kill.
  const errors = nodeErr.split('\n').filter((l) => l.includes('[error]')).map((l) => l.replace(/^\S+ \[error\] /, ''));
  assert.equal(errors, ['actor session:alice@localhost/desk crashed: kill', 'sessions: session:alice@localhost/desk exited: kill; restarting']);
});

test.run();
