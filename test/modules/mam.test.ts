// Message archives (XEP-0313) with stanza ids (XEP-0359) on the real core: what alice receives and
// sends is archived before delivery; her clients page through it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import mam, { mamKeys } from '../../src/modules/mam.ts';
import offline from '../../src/modules/offline.ts';
import { keys } from '../../src/storage/db.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { Core, type CoreOptions } from '../helpers/core.ts';

const ALICE = 'alice@example.com', BOB = 'bob@example.com';
const A = `${ALICE}/phone`, A2 = `${ALICE}/laptop`, B = `${BOB}/pc`;

async function node(o: CoreOptions = {}): Promise<Core> {
  const h = await Core.start([offline, mam], { peers: ['remote.example'], ...o });
  for (const a of [ALICE, BOB]) await h.seed(keys.acct(a), { scram: {} });
  h.bind(A); h.bind(B);
  h.send(A, '<presence/>'); h.send(B, '<presence/>');
  await h.settle();
  h.clear();
  return h;
}

const chat = (h: Core, from: string, to: string, body: string) => h.send(from, `<message to="${to}" type="chat" id="${body}"><body>${body}</body></message>`);

/** A query from `full`; the results it got (forwarded messages' bodies, ids) and the <fin/>. */
async function ask(h: Core, full: string, inner = '', set = ''): Promise<{ bodies: string[]; ids: string[]; fin: XmlElement; results: XmlElement[] }> {
  h.clear();
  const r = await h.ask(full, 'set', `<query xmlns="${NS.MAM}" queryid="q1">${inner}${set ? `<set xmlns="${NS.RSM}">${set}</set>` : ''}</query>`);
  assert.is(r.attr('type'), 'result', r.toString());
  const got = h.received(full);
  // every result comes before the IQ's answer
  const results = got.slice(0, got.indexOf(got.find((e) => e.name === 'iq')!)).filter((e) => e.child('result', NS.MAM));
  const res = results.map((e) => e.child('result', NS.MAM)!);
  for (const e of res) assert.is(e.attr('queryid'), 'q1');
  return {
    bodies: res.map((e) => e.child('forwarded', NS.FORWARD)!.child('message')!.getChildText('body') ?? ''),
    ids: res.map((e) => e.attr('id')!),
    fin: r.child('fin', NS.MAM)!,
    results,
  };
}
const form = (fields: Record<string, string | string[]>) => `<x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE" type="hidden"><value>${NS.MAM}</value></field>`
  + Object.entries(fields).map(([k, v]) => `<field var="${k}">${(Array.isArray(v) ? v : [v]).map((s) => `<value>${s}</value>`).join('')}</field>`).join('') + '</x>';

test('received and sent chat is archived; a received message carries its archive id as <stanza-id/>', async () => {
  const h = await node();
  chat(h, B, ALICE, 'hi alice');
  await h.settle();
  const got = h.received(A).find((e) => e.name === 'message')!;
  const sid = got.child('stanza-id', NS.STANZA_ID)!;
  assert.is(sid.attr('by'), ALICE);
  chat(h, A, BOB, 'hi bob');
  await h.settle();
  const all = await ask(h, A);
  assert.equal(all.bodies, ['hi alice', 'hi bob']);
  assert.is(all.ids[0], sid.attr('id'), 'the stanza-id is the archive id');
  assert.is(all.fin.attr('complete'), 'true');
  const fwd = all.results[0]!.child('result', NS.MAM)!.child('forwarded', NS.FORWARD)!;
  assert.ok(fwd.child('delay', NS.DELAY)?.attr('stamp'));
  assert.equal([fwd.child('message', NS.CLIENT)!.attr('from'), fwd.child('message', NS.CLIENT)!.attr('to')], [B, ALICE], 'the forwarded message is a jabber:client one');
  // bob's archive has the same conversation, from his side
  assert.equal((await ask(h, B)).bodies, ['hi alice', 'hi bob']);
});

test('not archived: chat states alone, no-store, groupchat, errors; a forged stanza-id is replaced', async () => {
  const h = await node();
  h.send(B, `<message to="${ALICE}" type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`);
  h.send(B, `<message to="${ALICE}" type="chat"><body>secret</body><no-store xmlns="${NS.HINTS}"/></message>`);
  h.send(B, `<message to="${ALICE}" type="chat" id="f"><body>forged</body><stanza-id xmlns="${NS.STANZA_ID}" by="${ALICE}" id="fake"/></message>`);
  await h.settle();
  const forged = h.received(A).find((e) => e.attr('id') === 'f')!;
  assert.equal(forged.getChildren('stanza-id', NS.STANZA_ID).map((s) => s.attr('id') === 'fake'), [false]);
  assert.equal((await ask(h, A)).bodies, ['forged']);
});

test('filters: with, start and end, ids; paging with RSM forwards and backwards; an unknown id is item-not-found', async () => {
  const h = await node();
  h.bind('carol@example.com/x');
  await h.settle();
  for (let i = 1; i <= 6; i++) {
    h.clock += 60_000;
    chat(h, i % 2 ? B : 'carol@example.com/x', ALICE, `m${i}`);
    await h.settle();
  }
  assert.equal((await ask(h, A, form({ with: BOB }))).bodies, ['m1', 'm3', 'm5']);
  const base = 1_700_000_000_000;
  const iso = (min: number) => new Date(base + min * 60_000).toISOString();
  assert.equal((await ask(h, A, form({ start: iso(2), end: iso(4) }))).bodies, ['m2', 'm3', 'm4']);
  const p1 = await ask(h, A, '', '<max>2</max>');
  assert.equal(p1.bodies, ['m1', 'm2']);
  assert.is(p1.fin.attr('complete'), undefined);
  assert.is(p1.fin.child('set', NS.RSM)!.getChildText('last', NS.RSM), p1.ids[1]);
  const p2 = await ask(h, A, '', `<max>2</max><after>${p1.ids[1]}</after>`);
  assert.equal(p2.bodies, ['m3', 'm4']);
  const last = await ask(h, A, '', '<max>2</max><before/>');
  assert.equal(last.bodies, ['m5', 'm6'], 'the last page, in order');
  const before = await ask(h, A, '', `<max>2</max><before>${last.ids[0]}</before>`);
  assert.equal(before.bodies, ['m3', 'm4']);
  assert.equal((await ask(h, A, form({ ids: [p1.ids[0]!, p2.ids[1]!] }))).bodies, ['m1', 'm4']);
  assert.equal((await ask(h, A, '<flip-page/>', '<max>2</max>')).bodies, ['m2', 'm1'], 'flip-page');
  h.clear();
  const r = await h.ask(A, 'set', `<query xmlns="${NS.MAM}"><set xmlns="${NS.RSM}"><after>nosuch</after></set></query>`);
  assert.is(r.child('error')?.getChildren()[0]?.name, 'item-not-found');
});

test('metadata, the form, preferences (never for a JID), another account\'s archive forbidden', async () => {
  const h = await node();
  chat(h, B, ALICE, 'one');
  await h.settle();
  chat(h, B, ALICE, 'two');
  await h.settle();
  const md = (await h.ask(A, 'get', `<metadata xmlns="${NS.MAM}"/>`)).child('metadata', NS.MAM)!;
  const all = await ask(h, A);
  assert.equal([md.child('start')!.attr('id'), md.child('end')!.attr('id')], all.ids);
  const f = (await h.ask(A, 'get', `<query xmlns="${NS.MAM}"/>`)).child('query', NS.MAM)!.child('x', NS.DATA_FORMS)!;
  assert.ok(['with', 'start', 'end', 'before-id', 'after-id', 'ids'].every((v) => f.getChildren('field').some((x) => x.attr('var') === v)));
  const p = await h.ask(A, 'set', `<prefs xmlns="${NS.MAM}" default="always"><always/><never><jid>${BOB}</jid></never></prefs>`);
  assert.is(p.child('prefs', NS.MAM)!.child('never', NS.MAM)!.getChildText('jid', NS.MAM), BOB);
  chat(h, B, ALICE, 'unkept');
  await h.settle();
  assert.equal((await ask(h, A)).bodies, ['one', 'two']);
  const denied = await h.ask(B, 'set', `<query xmlns="${NS.MAM}"/>`);
  assert.is(denied.attr('type'), 'result', 'bob queries his own');
  h.clear();
  const other = await h.ask(B, 'get', `<metadata xmlns="${NS.MAM}"/>`, ALICE);
  assert.is(other.child('error')?.getChildren()[0]?.name, 'forbidden');
});

test('offline: a message for an offline account is archived too, and its stanza-id comes with it later', async () => {
  const h = await node();
  h.unbind(A);
  await h.settle();
  chat(h, B, ALICE, 'while away');
  await h.settle();
  h.bind(A2);
  h.send(A2, '<presence/>');
  await h.settle();
  const m = h.received(A2).find((e) => e.name === 'message')!;
  const id = m.child('stanza-id', NS.STANZA_ID)!.attr('id');
  assert.equal((await ask(h, A2)).ids, [id]);
});

test('expiry: what is older than expiry_days goes at the next login; deleting the account removes the archive', async () => {
  const h = await node({ options: { mam: { expiry_days: 1 } } });
  chat(h, B, ALICE, 'old');
  await h.settle();
  h.clock += 2 * 86_400_000;
  chat(h, B, ALICE, 'new');
  await h.settle();
  h.bind(A2);
  await h.settle();
  assert.equal((await ask(h, A2)).bodies, ['new']);
  assert.equal((await h.storage.range(mamKeys.byWith!.of(ALICE, BOB))).length, 1, "the expired message's index entry went with it");
  h.deleteAccount('alice');
  await h.settle();
  assert.equal(await h.storage.range(mamKeys.of(ALICE)), []);
  assert.equal(await h.storage.range(mamKeys.byWith!.of(ALICE, BOB)), [], 'and its index');
});

test("one contact's messages come from the index: an archive kept before it is indexed at its first query; paging and a full JID within it", async () => {
  const h = await node();
  // Kept as an older version wrote them: entries only, no index.
  const at = 1_700_000_000_000;
  for (let i = 1; i <= 6; i++) {
    const from = i % 3 === 0 ? 'carol@example.com/x' : `${BOB}/${i % 2 ? 'pc' : 'tablet'}`;
    await h.seed(mamKeys.entry(ALICE, `${(at + i).toString(36).padStart(9, '0')}0000`), { with: from.split('/')[0], at: at + i, dir: 'in', xml: `<message from="${from}" to="${ALICE}" type="chat"><body>o${i}</body></message>` });
  }
  assert.equal(await h.storage.range(mamKeys.byWith!.of(ALICE, BOB)), []);
  assert.equal((await ask(h, A, form({ with: BOB }))).bodies, ['o1', 'o2', 'o4', 'o5']);
  assert.is((await h.storage.range(mamKeys.byWith!.of(ALICE, BOB))).length, 4, 'indexed now');
  h.clock = at + 60_000;
  chat(h, B, ALICE, 'n1');
  await h.settle();
  assert.equal((await ask(h, A, form({ with: 'carol@example.com' }))).bodies, ['o3', 'o6']);
  const p1 = await ask(h, A, form({ with: BOB }), '<max>2</max><before/>');
  assert.equal(p1.bodies, ['o5', 'n1']);
  assert.equal((await ask(h, A, form({ with: BOB }), `<max>2</max><before>${p1.ids[0]}</before>`)).bodies, ['o2', 'o4']);
  assert.equal((await ask(h, A, form({ with: BOB }), `<max>10</max><after>${p1.ids[0]}</after>`)).bodies, ['n1']);
  assert.equal((await ask(h, A, form({ with: `${BOB}/tablet` }))).bodies, ['o2', 'o4']);
});

test.run();
