// Group chat over real sockets: a room is an actor whose snapshot is the room, so killing it
// mid-conversation changes nothing anyone sees, and a persistent room outlives a SIGKILLed node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join as joinPath } from 'node:path';
import { Level } from 'level';
import { createAccount } from '../../src/storage/accounts.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { freePort, startNodeProcess, startServer, type TestServer } from '../helpers/xmpp.ts';
import { party, type Party } from '../helpers/transcript.ts';
import { tempDir, until } from '../helpers/runtime.ts';
import { chorusCli } from '../helpers/process.ts';
import { writeFile } from 'node:fs/promises';

const ROOM = 'hall@conference.localhost';

/** Joins `p` as `nick` and reads until the subject (the end of a join); returns what came. */
async function join(p: Party, nick: string, history = '<history maxstanzas="0"/>'): Promise<XmlElement[]> {
  p.sends(`<presence to='${ROOM}/${nick}'><x xmlns='${NS.MUC}'>${history}</x></presence>`);
  const got: XmlElement[] = [];
  for (;;) {
    const e = await p.next(10_000);
    got.push(e);
    if (e.attr('type') === 'error') throw new Error(`${p.jid} could not join: ${e.toString()}`);
    if (e.name === 'message' && e.child('subject') && !e.child('body')) return got;
  }
}

/** The next message with a body `p` receives, as "nick: body" (presence and the rest skipped). */
async function said(p: Party): Promise<string> {
  for (;;) {
    const e = await p.next(10_000);
    if (e.name === 'message' && e.child('body')) return `${e.attr('from')!.split('/')[1]}: ${e.getChildText('body')}`;
  }
}

const instant = `<iq to='${ROOM}' type='set' id='cfg'><query xmlns='${NS.MUC_OWNER}'><x xmlns='${NS.DATA_FORMS}' type='submit'/></query></iq>`;

/** `names` log in; the first makes the room (an instant one), the others join; each has read the
 *  presences of those who came after it, so what each gets next is what the test causes. */
async function gathered(server: TestServer, names: string[]): Promise<Party[]> {
  for (const n of names) await server.addUser(n);
  const ps = await Promise.all(names.map((n) => party(server.port, n, 'pc')));
  await join(ps[0]!, names[0]!);
  ps[0]!.sends(instant);
  assert.is((await ps[0]!.next()).attr('type'), 'result');
  for (const [i, p] of ps.entries()) if (i > 0) await join(p, names[i]!);
  for (const [i, p] of ps.entries()) for (let k = i + 1; k < ps.length; k++) assert.is((await p.next()).name, 'presence');
  return ps;
}

test('a room actor killed mid-conversation with 5 occupants: each sees the conversation go on, and nothing else', async () => {
  const names = ['ann', 'ben', 'cat', 'dan', 'eve'];
  const server = await startServer((c) => { c.c2s_require_encryption = false; });
  try {
    const ps = await gathered(server, names);
    ps[1]!.sends(`<message to='${ROOM}' type='groupchat'><body>before</body></message>`);
    for (const p of ps) assert.is(await said(p), 'ben: before');
    assert.ok(await server.node.runtime.kill(`room:${ROOM}`, 'killed by the test'));
    await until(() => server.logs.some((l) => l.includes(`room:${ROOM}`) && l.includes('crashed')));
    ps[2]!.sends(`<message to='${ROOM}' type='groupchat'><body>after</body></message>`);
    for (const p of ps) assert.is(await said(p), 'cat: after');
    // nothing else reached anyone: an IQ's answer is the next thing each gets
    for (const p of ps) await p.sync('localhost');
    for (const p of ps) p.close();
  } finally {
    await server.stop();
  }
});

test('rooms hot-reload under traffic: chorus reload room moves every live room to the new code, nobody notices', async () => {
  const names = ['ann', 'ben', 'cat'];
  const server = await startServer((c) => { c.c2s_require_encryption = false; });
  try {
    const ps = await gathered(server, names);
    // messages in flight while the kind reloads
    for (let i = 1; i <= 10; i++) ps[i % 3]!.sends(`<message to='${ROOM}' type='groupchat'><body>m${i}</body></message>`);
    const results = await server.node.runtime.reload('room');
    assert.ok(results.every((r) => r.kind === 'room'));
    for (let i = 11; i <= 20; i++) ps[i % 3]!.sends(`<message to='${ROOM}' type='groupchat'><body>m${i}</body></message>`);
    for (const p of ps) {
      const got: string[] = [];
      for (let i = 0; i < 20; i++) got.push((await said(p)).split(': ')[1]!);
      // each sender's messages in its order; all twenty
      assert.equal([...got].sort(), Array.from({ length: 20 }, (_, i) => `m${i + 1}`).sort(), p.jid);
      for (const who of [0, 1, 2]) {
        const mine = got.filter((b) => Number(b.slice(1)) % 3 === who);
        assert.equal(mine, [...mine].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))), `${p.jid}: in order`);
      }
    }
    for (const p of ps) await p.sync('localhost');
    for (const p of ps) p.close();
  } finally {
    await server.stop();
  }
});


test('the operator: chorus rooms lists the rooms, room info shows one, room destroy ends it with the reason to its occupants', async () => {
  const server = await startServer((c) => { c.c2s_require_encryption = false; });
  try {
    const [ann, ben] = await gathered(server, ['ann', 'ben']);
    const config = joinPath(server.config.data_dir, 'chorus.yaml');
    await writeFile(config, `hosts: [localhost]\ndata_dir: ${server.config.data_dir}\n`);
    const chorus = (...args: string[]) => chorusCli([...args, '--config', config]);
    const rooms = await chorus('rooms', '--json');
    assert.is(rooms.code, 0, rooms.err);
    assert.equal(JSON.parse(rooms.out), [{ room: ROOM, name: 'hall', public: true, persistent: false }]);
    const info = await chorus('room', 'info', ROOM, '--json');
    assert.is(info.code, 0, info.err);
    const r = JSON.parse(info.out) as { occupants: Array<{ nick: string; affiliation: string }>; persistent: boolean };
    assert.equal(r.occupants.map((o) => [o.nick, o.affiliation]), [['ann', 'owner'], ['ben', 'none']]);
    const gone = await chorus('room', 'destroy', ROOM, 'moving to the garden');
    assert.is(gone.code, 0, gone.err);
    for (const p of [ann, ben]) {
      const e = await p.next();
      const destroy = e.child('x', NS.MUC_USER)?.child('destroy', NS.MUC_USER);
      assert.equal([e.attr('type'), destroy?.getChildText('reason', NS.MUC_USER)], ['unavailable', 'moving to the garden']);
    }
    const none = await chorus('room', 'info', ROOM);
    assert.equal([none.code, none.err.trim()], [1, `chorus: no room ${ROOM}`]);
    const bad = await chorus('room', 'info', 'hall@elsewhere.org');
    assert.match(bad.err, /not a room of this server \(a room is name@conference\.localhost\)/);
    for (const p of [ann, ben]) p.close();
  } finally {
    await server.stop();
  }
});

test('a persistent room outlives a SIGKILLed node: name, affiliations and history come back', async () => {
  const dir = tempDir('chorus-muc-kill-');
  const db = new Level<string, string>(joinPath(dir, 'db'));
  await db.open();
  for (const u of ['ann', 'ben', 'mal']) await createAccount(db, `${u}@localhost`, 'secret', { iterations: 4096 });
  await db.close();
  const port = await freePort();
  const child = await startNodeProcess(dir, port);
  const ann = await party(port, 'ann', 'pc');
  await join(ann, 'ann');
  ann.sends(`<iq to='${ROOM}' type='set' id='cfg'><query xmlns='${NS.MUC_OWNER}'><x xmlns='${NS.DATA_FORMS}' type='submit'>`
    + `<field var='muc#roomconfig_roomname'><value>The Hall</value></field><field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query></iq>`);
  assert.is((await ann.next()).attr('type'), 'result');
  ann.sends(`<iq to='${ROOM}' type='set' id='ban'><query xmlns='${NS.MUC_ADMIN}'><item affiliation='outcast' jid='mal@localhost'/></query></iq>`);
  assert.is((await ann.next()).attr('type'), 'result');
  ann.sends(`<message to='${ROOM}' type='groupchat'><body>kept</body></message>`);
  assert.is(await said(ann), 'ann: kept');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const again = await startNodeProcess(dir, port);
  try {
    const ben = await party(port, 'ben', 'pc');
    const got = await join(ben, 'ben', '');
    assert.equal(got.filter((e) => e.child('body')).map((e) => e.getChildText('body')), ['kept'], 'the history');
    ben.sends(`<iq to='${ROOM}' type='get' id='info'><query xmlns='${NS.DISCO_INFO}'/></iq>`);
    const info = await ben.next();
    assert.is(info.child('query', NS.DISCO_INFO)!.child('identity')!.attr('name'), 'The Hall');
    assert.ok(info.child('query', NS.DISCO_INFO)!.getChildren('feature').some((f) => f.attr('var') === 'muc_persistent'));
    const mal = await party(port, 'mal', 'pc');
    mal.sends(`<presence to='${ROOM}/mal'><x xmlns='${NS.MUC}'/></presence>`);
    const refused = await mal.next();
    assert.is(refused.child('error')?.child('forbidden', NS.STANZAS)?.name, 'forbidden', 'still banned');
    for (const p of [ann, ben, mal]) p.close();
  } finally {
    again.kill('SIGKILL');
  }
});

test.run();
