// chorus backup / restore (#14): a backup taken while the node runs and a client chats, restored
// into a new data_dir, serves the same accounts (their passwords) and rosters; a backup never
// overwrites, a restore never runs under a live node, and a directory that is no backup says so.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chorusCli, cliConfig } from '../helpers/process.ts';
import { friendsServer, startServer } from '../helpers/xmpp.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-backup-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const configFor = (name: string, dataDir: string): Promise<string> => cliConfig(dir, name, dataDir);

test('a backup of a running node, restored into a new data_dir, serves the same accounts and rosters', async () => {
  const backup = join(dir, 'b1');
  const server = await friendsServer();
  const cfg = await configFor('live', server.config.data_dir);
  try {
    // Taken while alice and bob chat.
    const alice = await login(server.port, 'alice', { password: 'pw', presence: true });
    const bob = await login(server.port, 'bob', { password: 'pw', presence: true });
    const chatting = (async () => { for (let i = 0; i < 50; i++) { await alice.c.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, `b${i}`))); } })();
    const r = await chorusCli(['backup', backup, '--config', cfg]);
    await chatting;
    await bob.next(isMessage('b49'));
    assert.is(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^backed up \\d+ entries \\(\\d+\\.\\d MB\\) to ${backup}\\n$`));
    const again = await chorusCli(['backup', backup, '--config', cfg]);
    assert.is(again.code, 1);
    assert.match(again.err, /is not empty: a backup goes into a new directory/);
    const live = await chorusCli(['restore', backup, '--config', cfg]);
    assert.is(live.code, 1);
    assert.match(live.err, /a node is running on .*: stop it first/);
    await alice.c.stop();
    await bob.c.stop();
  } finally {
    await server.stop();
  }
  const fresh = join(dir, 'fresh');
  const restored = await chorusCli(['restore', backup, '--config', await configFor('fresh', fresh)]);
  assert.is(restored.code, 0, restored.err);
  assert.match(restored.out, /^restored \d+ entries from /);
  const again = await startServer((c) => { c.data_dir = fresh; });
  try {
    const alice = await login(again.port, 'alice', { password: 'pw' });
    const roster = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const items = roster.getChild('query')!.getChildren('item').map((i) => `${i.attrs.jid} ${i.attrs.subscription}`);
    assert.equal(items, ['bob@localhost both']);
    await alice.c.stop();
  } finally {
    await again.stop();
  }
});

test('restore names what is wrong: a directory that is no backup', async () => {
  const r = await chorusCli(['restore', dir, '--config', await configFor('x', join(dir, 'x'))]);
  assert.is(r.code, 1);
  assert.match(r.err, /is not a Chorus backup \(no readable backup\.json\)/);
});

test.run();
