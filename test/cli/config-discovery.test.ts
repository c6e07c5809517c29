// Which config a command uses when none is given, and the trap of a command run from the wrong
// directory: an account created in a fresh database that the running node never reads (#18.4).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { CHORUS_BIN, chorusCli } from '../helpers/process.ts';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/xmpp.ts';


const chorus = (cwd: string, args: string[], env: Record<string, string> = {}) => chorusCli(args, { cwd, env: { ...process.env, CHORUS_CONFIG: '', ...env } });

test('without --config: $CHORUS_CONFIG, else ./chorus.yaml; the command says which config and data_dir', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-find-'));
  try {
    await writeFile(join(dir, 'chorus.yaml'), 'hosts: [example.org]\ndata_dir: ./here\n');
    await writeFile(join(dir, 'other.yaml'), 'hosts: [example.net]\ndata_dir: ./there\n');
    const local = await chorus(dir, ['users']);
    assert.match(local.err, new RegExp(`chorus: config ${join(dir, 'chorus.yaml')}; data_dir ${join(dir, 'here')}`));
    const env = await chorus(dir, ['users'], { CHORUS_CONFIG: join(dir, 'other.yaml') });
    assert.match(env.err, new RegExp(`chorus: config ${join(dir, 'other.yaml')}; data_dir ${join(dir, 'there')}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('adduser refuses to create a fresh database while a node runs elsewhere; --new-database overrides', async () => {
  const nodeDir = await mkdtemp(join(tmpdir(), 'chorus-node-'));
  const elsewhere = await mkdtemp(join(tmpdir(), 'chorus-elsewhere-'));
  await writeFile(join(nodeDir, 'chorus.yaml'), `hosts: [localhost]\ndata_dir: ./data\nlisten: { address: 127.0.0.1, c2s: ${await freePort()}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false }\n`);
  await writeFile(join(elsewhere, 'chorus.yaml'), 'hosts: [localhost]\ndata_dir: ./data\n');
  const node = spawn(process.execPath, [CHORUS_BIN, 'start'], { cwd: nodeDir, env: { ...process.env, CHORUS_CONFIG: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      node.stderr!.on('data', (d) => { log += d; if (log.includes('chorus: serving')) resolve(); });
      node.once('exit', () => reject(new Error(`chorus start exited:\n${log}`)));
    });
    const refused = await chorus(elsewhere, ['adduser', 'juliet@localhost', 'pw']);
    assert.is(refused.code, 1, refused.err);
    // Every running node is named; other nodes on the machine (an `npm start` beside the tests) may come first.
    assert.match(refused.err, new RegExp(`no database at ${join(elsewhere, 'data', 'db')}, and a node is running elsewhere \\([^)]*pid ${node.pid} in ${nodeDir}[;)]`));
    assert.not.ok(existsSync(join(elsewhere, 'data', 'db')), 'nothing created');
    // users, from there, says where the accounts are instead of printing nothing (#30.6)
    const users = await chorus(elsewhere, ['users']);
    assert.is(users.code, 1, users.err);
    assert.match(users.err, new RegExp(`a node is running elsewhere \\([^)]*pid ${node.pid} in ${nodeDir}[;)].*its accounts are not here`));
    // a node command from there reaches the running node; with others running too it asks which (#30.6)
    const status = await chorus(elsewhere, ['status']);
    if (status.code === 0) assert.match(status.err, new RegExp(`"status" goes to the node running in ${nodeDir} \\(pid ${node.pid}`));
    else assert.match(status.err, new RegExp(`nodes run on this machine \\([^)]*pid ${node.pid} in ${nodeDir}.*say which with --config FILE`));
    // an explicit --config is the operator's word: no --new-database needed (#30.12)
    const other = await mkdtemp(join(tmpdir(), 'chorus-explicit-'));
    await writeFile(join(other, 'mine.yaml'), 'hosts: [localhost]\ndata_dir: ./data\n');
    const explicit = await chorus(elsewhere, ['adduser', 'romeo@localhost', 'pw', '--config', join(other, 'mine.yaml')]);
    assert.is(explicit.code, 0, explicit.err);
    assert.ok(existsSync(join(other, 'data', 'db')));
    await rm(other, { recursive: true, force: true });
    const forced = await chorus(elsewhere, ['adduser', 'juliet@localhost', 'pw', '--new-database']);
    assert.is(forced.code, 0, forced.err);
    assert.match(forced.out, /created juliet@localhost/);
    // The node's own config (found as ./chorus.yaml) goes through its admin socket.
    const mine = await chorus(nodeDir, ['adduser', 'romeo@localhost', 'pw']);
    assert.is(mine.code, 0, mine.err);
  } finally {
    node.kill('SIGTERM');
    await once(node, 'exit');
    await rm(nodeDir, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
  }
});

test.run();
