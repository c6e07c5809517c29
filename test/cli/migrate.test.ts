// XEP-0227 (#14): chorus export on a running node and chorus import into a new one carry accounts
// (their SCRAM keys: the same passwords work), rosters, vCards, private XML, offline messages and
// PEP nodes; a real ejabberd's export_piefxis (Debian's 23.01: SCRAM keys, a roster and a vCard
// made over XMPP) is imported and its account logs in to Chorus with its password; and a file in
// the older shape (the old namespace, a password in the clear, bookmarks in private XML).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chorusCli, cliConfig } from '../helpers/process.ts';
import { freePort, friendsServer, startServer } from '../helpers/xmpp.ts';
import { anchorScript } from '../../bench/lib/anchors.ts';
import { isMessage, login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-migrate-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

const configFor = (name: string, dataDir: string): Promise<string> => cliConfig(dir, name, dataDir);

test('export from a running node, import into a new one: passwords, roster, vCard, private XML, offline messages, PEP and the message archive come along', async () => {
  const file = join(dir, 'export.xml');
  const a = await friendsServer();
  try {
    const alice = await login(a.port, 'alice', { password: 'pw', presence: true });
    await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Liddell'))));
    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('notes', { xmlns: 'urn:example:notes' }, 'remember the tea'))));
    await alice.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' },
      xml('publish', { node: 'urn:example:mood' }, xml('item', { id: 'current' }, xml('mood', { xmlns: 'urn:example:mood' }, 'curious'))))));
    await alice.c.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'off1' }, xml('body', {}, 'while you were away')));
    await alice.c.stop();
    const r = await chorusCli(['export', file, '--config', await configFor('a', a.config.data_dir)]);
    assert.is(r.code, 0, r.err);
    assert.is(r.out, `exported 2 accounts to ${file}\n`);
    assert.is((await stat(file)).mode & 0o777, 0o600, 'an export holds every account\'s keys');
    const text = await readFile(file, 'utf8');
    assert.not.match(text, /password=/, 'no password is written');
    assert.match(text, /<scram-credentials xmlns="urn:xmpp:pie:0#scram" mechanism="SCRAM-SHA-256">/);
    assert.match(text, /<archive xmlns="urn:xmpp:pie:0#mam"><result xmlns="urn:xmpp:mam:2" id="[^"]+"><forwarded xmlns="urn:xmpp:forward:0"><delay xmlns="urn:xmpp:delay" stamp="[^"]+"\/><message [^>]*xmlns="jabber:client"[^>]*><body>while you were away</);
  } finally {
    await a.stop();
  }

  const fresh = join(dir, 'fresh');
  const imported = await chorusCli(['import', file, '--config', await configFor('fresh', fresh)]);
  assert.is(imported.code, 0, imported.err);
  assert.is(imported.out, 'imported 2 accounts\n');
  const b = await startServer((c) => { c.data_dir = fresh; });
  try {
    const alice = await login(b.port, 'alice', { password: 'pw' }); // SCRAM, with the keys made on the old server
    const roster = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(roster.getChild('query')!.getChildren('item').map((i) => `${i.attrs.jid} ${i.attrs.subscription}`), ['bob@localhost both']);
    const card = await alice.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.is(card.getChild('vCard')?.getChildText('FN'), 'Alice Liddell');
    const priv = await alice.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:private' }, xml('notes', { xmlns: 'urn:example:notes' }))));
    assert.is(priv.getChild('query')?.getChild('notes')?.getText(), 'remember the tea');
    const mood = await alice.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: 'urn:example:mood' }))));
    assert.is(mood.getChild('pubsub')?.getChild('items')?.getChild('item')?.getChild('mood')?.getText(), 'curious');
    // Her archive (XEP-0313) has what she sent bob, at its time.
    const archived: string[] = [];
    alice.c.on('stanza', (e) => {
      const m = e.getChild('result', 'urn:xmpp:mam:2')?.getChild('forwarded', 'urn:xmpp:forward:0')?.getChild('message');
      if (m) archived.push(`${m.attrs.to} ${m.getChildText('body')}`);
    });
    await alice.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'urn:xmpp:mam:2', queryid: 'q1' })));
    assert.equal(archived, ['bob@localhost while you were away']);
    await alice.c.stop();
    const bob = await login(b.port, 'bob', { password: 'pw', presence: true });
    await bob.next(isMessage('while you were away'));
    await bob.c.stop();
  } finally {
    await b.stop();
  }
});

/**
 * Debian's `server` (through its anchor script) with accounts u1 and u2: u1 adds u2 to its roster in
 * `group` and sets a vCard over XMPP; the server stops, `exported` gives the files it wrote, and they
 * are imported into a new Chorus data dir, which `check` gets running, with u1 logged in there with
 * its old password (SCRAM-SHA-1 with the other server's keys).
 */
async function migrated(server: 'prosody' | 'ejabberd', group: string, exported: (run: ReturnType<typeof anchorScript>, out: string) => Promise<string[]>, check: (u1: Awaited<ReturnType<typeof login>>, port: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  const prefix = server.toUpperCase();
  const run = anchorScript(server, { ...process.env, [`${prefix}_PORT`]: String(port), [`${prefix}_TLS_PORT`]: String(await freePort()), BENCH_DOMAIN: 'localhost', BENCH_STATE: join(dir, server) });
  await run('start', '2');
  try {
    const u1 = await login(port, 'u1', { password: 'pw' });
    await u1.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'u2@localhost', name: 'Second' }, xml('group', {}, group)))));
    await u1.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'User One'))));
    await u1.c.stop();
  } catch (e) { await run('stop'); throw e; }
  const files = await exported(run, join(dir, `${server}-export`));
  const data = join(dir, `from-${server}`);
  const r = await chorusCli(['import', ...files, '--config', await configFor(`from-${server}`, data)]);
  assert.is(r.code, 0, r.err);
  assert.is(r.out, 'imported 2 accounts\n');
  const s = await startServer((c) => { c.data_dir = data; });
  try {
    const u1 = await login(s.port, 'u1', { password: 'pw' });
    const roster = await u1.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const item = roster.getChild('query')!.getChild('item')!;
    assert.equal([item.attrs.jid, item.attrs.name, item.getChildText('group')], ['u2@localhost', 'Second', group]);
    await check(u1, s.port);
    await u1.c.stop();
  } finally {
    await s.stop();
  }
}

test('a real ejabberd\'s export_piefxis: its account logs in to Chorus with the same password, roster and vCard there', async () => {
  await migrated('ejabberd', 'Bench', async (run, out) => {
    try { await run('export', out); } finally { await run('stop'); }
    return [join(out, (await readdir(out)).find((f) => /^\d{8}-\d{6}\.xml$/.test(f))!)]; // the main file; its host files through it
  }, async (u1) => {
    const card = await u1.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: 'vcard-temp' })));
    assert.is(card.getChild('vCard')?.getChildText('FN'), 'User One');
  });
});

test('a real Prosody through Debian\'s prosody-migrator (one XEP-0227 file per account): its accounts log in to Chorus with the same password, roster and vCard (Prosody keeps it as the vCard4 PEP node) there', async () => {
  await migrated('prosody', 'Friends', async (run, out) => {
    await run('stop');
    await run('migrate', out);
    const files = (await readdir(out)).filter((f) => f.endsWith('.xml')).sort();
    assert.equal(files, ['u1@localhost.xml', 'u2@localhost.xml']);
    return files.map((f) => join(out, f));
  }, async (u1, port) => {
    const card = await u1.iq(xml('iq', { type: 'get', to: 'u1@localhost' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: 'urn:xmpp:vcard4' }))));
    const vcard = card.getChild('pubsub')?.getChild('items')?.getChild('item')?.getChild('vcard', 'urn:ietf:params:xml:ns:vcard-4.0');
    assert.is(vcard?.getChild('fn')?.getChildText('text'), 'User One');
    await (await login(port, 'u2', { password: 'pw' })).c.stop();
  });
});

test('a file in the older shape: the old namespace, its host file XInclude\'d, a password in the clear, bookmarks in private XML', async () => {
  await writeFile(join(dir, 'ej.xml'), `<?xml version='1.0' encoding='UTF-8'?><server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='ej_localhost.xml'/></server-data>`);
  await writeFile(join(dir, 'ej_localhost.xml'), `<?xml version='1.0' encoding='UTF-8'?><host xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns' xmlns:xi='http://www.w3.org/2001/XInclude' jid='localhost'>` +
    `<user name='carol' password='sekrit'><query xmlns='jabber:iq:roster'><item jid='dave@elsewhere.example' name='Dave' subscription='to'><group>Work</group></item></query>` +
    `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='tea@conference.localhost' name='Tea' autojoin='true'><nick>carol</nick></conference></storage></query></user>` +
    `<user name='Bad User!' password='x'/></host>`);
  const data = join(dir, 'ej-data');
  const r = await chorusCli(['import', join(dir, 'ej.xml'), '--config', await configFor('ej', data)]);
  assert.is(r.code, 0, r.err);
  assert.is(r.out, 'imported 1 accounts, skipped 1\n');
  assert.match(r.err, /skipped bad user!@localhost: not a valid username|skipped Bad User!@localhost: not a valid username/);
  const s = await startServer((c) => { c.data_dir = data; });
  try {
    const carol = await login(s.port, 'carol', { password: 'sekrit' });
    const roster = await carol.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    const item = roster.getChild('query')!.getChild('item')!;
    assert.equal([item.attrs.jid, item.attrs.name, item.attrs.subscription, item.getChildText('group')], ['dave@elsewhere.example', 'Dave', 'to', 'Work']);
    // The bookmark is a Bookmarks 2 item (XEP-0402) now, and still there through private XML (XEP-0411).
    const b2 = await carol.iq(xml('iq', { type: 'get', to: 'carol@localhost' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: 'urn:xmpp:bookmarks:1' }))));
    assert.is(b2.getChild('pubsub')?.getChild('items')?.getChild('item')?.attrs.id, 'tea@conference.localhost');
    await carol.c.stop();
  } finally {
    await s.stop();
  }
});

test.run();
