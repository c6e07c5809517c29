import { test } from 'uvu';
import * as assert from 'uvu/assert';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Core, type CoreOptions } from '../helpers/core.ts';

const A = 'alice@example.com/a';
const A2 = 'alice@example.com/b';
const B = 'bob@example.com/b';
const ROMEO = 'romeo@montague.example';

const mk = (o?: CoreOptions) => Core.start([roster, presence], { peers: ["montague.example"], ...o });
const q = (inner = '', attrs = '') => `<query xmlns="${NS.ROSTER}"${attrs}>${inner}</query>`;

function item(jid: string, patch: Partial<RosterItem> = {}): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, approved: false, pendingIn: null, listed: true, ...patch };
}
const seed = (h: Core, owner: string, it: RosterItem) => h.seed(rosterKeys.item(owner, it.jid), it);
const stored = (h: Core, owner: string, contact: string) => h.peek<RosterItem>(rosterKeys.item(owner, contact));

/** Binds, asks for the roster (so it gets pushes) and clears what that produced. */
async function connect(h: Core, full: string, o: { get?: boolean; available?: boolean } = {}): Promise<void> {
  h.bind(full);
  if (o.get !== false) h.iq(full, 'get', q());
  if (o.available) h.send(full, '<presence/>');
  await h.settle();
  h.clear();
}


const errorOf = (r: XmlElement) => r.attr('type') === 'error' ? r.child('error')!.getChildren()[0]!.name : null;
const itemsOf = (query: XmlElement | undefined) => (query?.getChildren('item') ?? []).map((i) => ({
  jid: i.attr('jid'), name: i.attr('name'), subscription: i.attr('subscription'), ask: i.attr('ask'), approved: i.attr('approved'),
  groups: i.getChildren('group').map((g) => g.text()),
}));
const pushesIn = (els: XmlElement[]) => els.filter((e) => e.name === 'iq' && e.attr('type') === 'set' && e.child('query', NS.ROSTER));

test("stream features: roster versioning and pre-approval are offered", async () => {
  const h = await mk();
  assert.ok(h.modules.streamFeatures.includes(`<ver xmlns="${NS.ROSTER_VER}"/>`));
  assert.ok(h.modules.streamFeatures.includes(`<sub xmlns="${NS.PRE_APPROVAL}"/>`));
});

test('get lists roster items with name, groups, subscription, ask and approved; pending-only records stay hidden', async () => {
  const h = await mk();
  await seed(h, 'alice@example.com', item('bob@example.com', { subscription: 'both', name: 'Bob', groups: ['Friends', 'Work'] }));
  await seed(h, 'alice@example.com', item('carol@example.com', { ask: true }));
  await seed(h, 'alice@example.com', item('dave@example.com', { approved: true }));
  await seed(h, 'alice@example.com', item('eve@example.com', { listed: false, pendingIn: '<presence type="subscribe" from="eve@example.com" to="alice@example.com"/>' }));
  await connect(h, A, { get: false });
  const r = await h.ask(A, 'get', q());
  assert.is(r.attr('type'), 'result');
  assert.equal(itemsOf(r.child('query', NS.ROSTER)), [
    { jid: 'bob@example.com', name: 'Bob', subscription: 'both', ask: undefined, approved: undefined, groups: ['Friends', 'Work'] },
    { jid: 'carol@example.com', name: undefined, subscription: 'none', ask: 'subscribe', approved: undefined, groups: [] },
    { jid: 'dave@example.com', name: undefined, subscription: 'none', ask: undefined, approved: 'true', groups: [] },
  ]);
  assert.is(r.child('query')!.attr('ver'), undefined, 'no ver asked, none given');
  assert.ok((await h.session(A))!.interested);
});

test('set adds an item: stored under keys.roster, pushed with a version, then a result', async () => {
  const h = await mk();
  await connect(h, A);
  const r = await h.ask(A, 'set', q('<item jid="Bob@Example.com" name="Bob"><group>Friends</group></item>'));
  assert.is(r.attr('type'), 'result');
  assert.is(r.children.length, 0);
  // the JID is stored normalised
  assert.equal((await stored(h, 'alice@example.com', 'bob@example.com')), item('bob@example.com', { name: 'Bob', groups: ['Friends'] }));
  const [push, ...more] = pushesIn(h.received(A));
  assert.is(more.length, 0);
  assert.is(push!.attr('to'), A);
  assert.is(push!.attr('from'), undefined);
  const query = push!.child('query', NS.ROSTER)!;
  assert.is(query.attr('ver'), String((await h.peek(rosterKeys.ver('alice@example.com')))));
  assert.equal(itemsOf(query), [{ jid: 'bob@example.com', name: 'Bob', subscription: 'none', ask: undefined, approved: undefined, groups: ['Friends'] }]);
  // the push comes before the result
  const order = h.received(A).map((e) => e.attr('type'));
  assert.equal(order, ['set', 'result']);
});

test('pushes go to resources that asked for the roster, and only to them', async () => {
  const h = await mk();
  await connect(h, A);
  await connect(h, A2, { get: false });
  await h.ask(A, 'set', q('<item jid="bob@example.com"/>'));
  assert.is(pushesIn(h.received(A)).length, 1);
  assert.is(pushesIn(h.received(A2)).length, 0);
  assert.is((await h.session(A2))!.interested, false);
  await h.ask(A2, 'get', q());
  h.clear();
  await h.ask(A, 'set', q('<item jid="carol@example.com"/>'));
  assert.is(pushesIn(h.received(A)).length, 1);
  assert.is(pushesIn(h.received(A2)).length, 1);
});

test('set updates name and groups and keeps the subscription state', async () => {
  const h = await mk();
  const pending = '<presence type="subscribe" from="bob@example.com" to="alice@example.com"/>';
  await seed(h, 'alice@example.com', item('bob@example.com', { subscription: 'to', pendingIn: pending, name: 'B', groups: ['Old'] }));
  await connect(h, A);
  await h.ask(A, 'set', q('<item jid="bob@example.com" name="Bobby"><group>New</group><group>Other</group></item>'));
  assert.equal((await stored(h, 'alice@example.com', 'bob@example.com')),
    item('bob@example.com', { subscription: 'to', pendingIn: pending, name: 'Bobby', groups: ['New', 'Other'] }));
  // an item without a name loses it; an empty name is no name
  await h.ask(A, 'set', q('<item jid="bob@example.com" name=""/>'));
  const after = (await stored(h, 'alice@example.com', 'bob@example.com'))!;
  assert.is(after.name, undefined);
  assert.equal(after.groups, []);
  assert.is(after.subscription, 'to');
});

test('a set that changes nothing is answered but neither pushed nor versioned', async () => {
  const h = await mk();
  await connect(h, A);
  await h.ask(A, 'set', q('<item jid="bob@example.com" name="Bob"/>'));
  const ver = (await h.peek(rosterKeys.ver('alice@example.com')));
  h.clear();
  const r = await h.ask(A, 'set', q('<item jid="bob@example.com" name="Bob"/>'));
  assert.is(r.attr('type'), 'result');
  assert.is(pushesIn(h.received(A)).length, 0);
  assert.is((await h.peek(rosterKeys.ver('alice@example.com'))), ver);
});

test('versioning: ver only when asked, an empty result when up to date, the full roster otherwise', async () => {
  const h = await mk();
  await connect(h, A, { get: false });
  const first = await h.ask(A, 'get', q('', ' ver=""'));
  const v0 = first.child('query')!.attr('ver');
  assert.type(v0, 'string');
  await h.ask(A, 'set', q('<item jid="bob@example.com"/>'));
  const v1 = pushesIn(h.received(A))[0]!.child('query')!.attr('ver')!;
  await h.ask(A, 'set', q('<item jid="carol@example.com"/>'));
  const v2 = pushesIn(h.received(A))[1]!.child('query')!.attr('ver')!;
  assert.ok(Number(v2) > Number(v1), 'versions grow');
  const upToDate = await h.ask(A, 'get', q('', ` ver="${v2}"`));
  assert.is(upToDate.attr('type'), 'result');
  assert.is(upToDate.children.length, 0, 'empty result when the client has the current version');
  const stale = await h.ask(A, 'get', q('', ` ver="${v1}"`));
  assert.is(stale.child('query')!.attr('ver'), v2);
  assert.equal(itemsOf(stale.child('query')).map((i) => i.jid), ['bob@example.com', 'carol@example.com']);
  const plain = await h.ask(A, 'get', q());
  assert.is(plain.child('query')!.attr('ver'), undefined);
  assert.is(itemsOf(plain.child('query')).length, 2);
});

test('versioning: a roster without a stored version is never reported up to date', async () => {
  const h = await mk();
  // items written without a version counter (e.g. by an import)
  await seed(h, 'alice@example.com', item('bob@example.com'));
  await connect(h, A, { get: false });
  const r = await h.ask(A, 'get', q('', ' ver="0"'));
  assert.equal(itemsOf(r.child('query')).map((i) => i.jid), ['bob@example.com']);
});

test('a new account starts its versions above any an earlier account of the same name handed out', async () => {
  const h = await mk();
  h.clock = 5_000_000;
  await connect(h, A);
  await h.ask(A, 'set', q('<item jid="bob@example.com"/>'));
  assert.is((await h.peek(rosterKeys.ver('alice@example.com'))), 5_000_000);
});

const invalid: Array<[string, string, string]> = [
  ['two items', '<item jid="a@example.com"/><item jid="b@example.com"/>', 'bad-request'],
  ['no item', '', 'bad-request'],
  ["subscription='both'", '<item jid="bob@example.com" subscription="both"/>', 'bad-request'],
  ["subscription='none'", '<item jid="bob@example.com" subscription="none"/>', 'bad-request'],
  ['no jid', '<item name="x"/>', 'jid-malformed'],
  ['an invalid jid', '<item jid="a@b@example.com"/>', 'jid-malformed'],
  ['an empty localpart', '<item jid="@example.com"/>', 'jid-malformed'],
  ['a full jid', '<item jid="bob@example.com/home"/>', 'jid-malformed'],
  ['a name over the limit', `<item jid="bob@example.com" name="${'n'.repeat(11)}"/>`, 'not-acceptable'],
  ['a name over the limit in octets', `<item jid="bob@example.com" name="${'é'.repeat(6)}"/>`, 'not-acceptable'],
  ['an empty group', '<item jid="bob@example.com"><group/></item>', 'not-acceptable'],
  ['a group over the limit', `<item jid="bob@example.com"><group>${'g'.repeat(9)}</group></item>`, 'not-acceptable'],
  ['a group twice', '<item jid="bob@example.com"><group>G</group><group>G</group></item>', 'bad-request'],
  ['the account itself', '<item jid="alice@example.com"/>', 'not-allowed'],
];
for (const [what, inner, condition] of invalid) {
  test(`set with ${what}: ${condition}, nothing stored or pushed`, async () => {
    const h = await mk({ options: { roster: { max_name_length: 10, max_group_length: 8 } } });
    await connect(h, A);
    const r = await h.ask(A, 'set', q(inner));
    assert.is(errorOf(r), condition);
    assert.equal(await h.storage.range(rosterKeys.of('alice@example.com')), []);
    assert.is(await h.peek(rosterKeys.ver('alice@example.com')), undefined);
    assert.is(pushesIn(h.received(A)).length, 0);
  });
}

test('limits are inclusive: a name and a group of exactly the limit are accepted', async () => {
  const h = await mk({ options: { roster: { max_name_length: 10, max_group_length: 8 } } });
  await connect(h, A);
  const r = await h.ask(A, 'set', q(`<item jid="bob@example.com" name="${'n'.repeat(10)}"><group>${'g'.repeat(8)}</group></item>`));
  assert.is(r.attr('type'), 'result');
});

test("set ignores the client's ask, approved and subscription state", async () => {
  const h = await mk();
  await connect(h, A);
  await h.ask(A, 'set', q('<item jid="bob@example.com" ask="subscribe" approved="true"/>'));
  assert.equal((await stored(h, 'alice@example.com', 'bob@example.com')), item('bob@example.com'));
  assert.equal(h.remote, [], 'no subscription request went out');
});

test('roster IQs from another account are forbidden', async () => {
  const h = await mk();
  await seed(h, 'alice@example.com', item('carol@example.com', { name: 'secret' }));
  await connect(h, A);
  await connect(h, B);
  const get = h.iq(B, 'get', q(), 'alice@example.com');
  const set = h.iq(B, 'set', q('<item jid="mallory@example.com"/>'), 'alice@example.com');
  await h.settle();
  assert.is(errorOf(h.reply(B, get)!), 'forbidden');
  assert.is(errorOf(h.reply(B, set)!), 'forbidden');
  assert.not.ok(h.reply(B, get)!.child('query'), 'no roster content leaks');
  assert.is((await stored(h, 'alice@example.com', 'mallory@example.com')), undefined);
  assert.equal(h.unanswered(), []);
});

test('item limit: an addition beyond max_items is refused, updates and removals still work', async () => {
  const h = await mk({ options: { roster: { max_items: 2 } } });
  await connect(h, A, { available: true });
  await h.ask(A, 'set', q('<item jid="b1@example.com"/>'));
  await h.ask(A, 'set', q('<item jid="b2@example.com"/>'));
  const r = await h.ask(A, 'set', q('<item jid="b3@example.com"/>'));
  assert.is(errorOf(r), 'policy-violation');
  assert.is((await stored(h, 'alice@example.com', 'b3@example.com')), undefined);
  assert.is((await h.ask(A, 'set', q('<item jid="b2@example.com" name="two"/>'))).attr('type'), 'result');
  // an outbound subscribe would add an item too: refused to the client, not routed
  h.clear();
  h.send(A, `<presence type="subscribe" to="${ROMEO}"/>`);
  await h.settle();
  assert.equal(h.remote, []);
  const err = h.received(A).find((e) => e.name === 'presence' && e.attr('type') === 'error');
  assert.is(err?.child('error')?.child('policy-violation', NS.STANZAS)?.name, 'policy-violation');
  assert.is((await stored(h, 'alice@example.com', ROMEO)), undefined);
  // an inbound request from a stranger would be stored: refused with an error to the sender
  h.inject(`<presence type="subscribe" from="${ROMEO}" to="alice@example.com"/>`);
  await h.settle();
  assert.is((await stored(h, 'alice@example.com', ROMEO)), undefined);
  assert.is(h.takeRemote().map((e) => e.attr('type')).join(), 'error');
  await h.ask(A, 'set', q('<item jid="b1@example.com" subscription="remove"/>'));
  assert.is((await h.ask(A, 'set', q('<item jid="b3@example.com"/>'))).attr('type'), 'result');
});

test('remove of an item not in the roster: item-not-found, hidden pending records included', async () => {
  const h = await mk();
  const pending = `<presence type="subscribe" from="${ROMEO}" to="alice@example.com"/>`;
  await seed(h, 'alice@example.com', item(ROMEO, { listed: false, pendingIn: pending }));
  await connect(h, A);
  assert.is(errorOf(await h.ask(A, 'set', q('<item jid="nobody@example.com" subscription="remove"/>'))), 'item-not-found');
  assert.is(errorOf(await h.ask(A, 'set', q(`<item jid="${ROMEO}" subscription="remove"/>`))), 'item-not-found');
  assert.is((await stored(h, 'alice@example.com', ROMEO))?.pendingIn, pending);
  assert.equal(h.remote, []);
});

test('remove with subscription both: unsubscribe, unsubscribed and unavailable go out, the removal is pushed', async () => {
  const h = await mk();
  await seed(h, 'alice@example.com', item(ROMEO, { subscription: 'both', name: 'R' }));
  await connect(h, A, { available: true });
  const r = await h.ask(A, 'set', q(`<item jid="${ROMEO}" subscription="remove"/>`));
  assert.is(r.attr('type'), 'result');
  assert.is((await stored(h, 'alice@example.com', ROMEO)), undefined);
  const out = h.takeRemote().map((e) => `${e.attr('type')} ${e.attr('from')}`);
  assert.equal(out.sort(), ['unavailable alice@example.com/a', 'unsubscribe alice@example.com', 'unsubscribed alice@example.com']);
  const [push] = pushesIn(h.received(A));
  assert.equal(itemsOf(push!.child('query')), [{ jid: ROMEO, name: undefined, subscription: 'remove', ask: undefined, approved: undefined, groups: [] }]);
});

test('remove of a none item sends no presence; pending requests both ways are cancelled', async () => {
  const h = await mk();
  await seed(h, 'alice@example.com', item('none@montague.example'));
  await seed(h, 'alice@example.com', item(ROMEO, { ask: true, pendingIn: `<presence type="subscribe" from="${ROMEO}" to="alice@example.com"/>` }));
  await connect(h, A);
  await h.ask(A, 'set', q('<item jid="none@montague.example" subscription="remove"/>'));
  assert.equal(h.takeRemote(), []);
  await h.ask(A, 'set', q(`<item jid="${ROMEO}" subscription="remove"/>`));
  assert.equal(h.takeRemote().map((e) => e.attr('type')).sort(), ['unsubscribe', 'unsubscribed']);
});

test("remove between two local accounts ends the contact's side too", async () => {
  const h = await mk();
  await seed(h, 'alice@example.com', item('bob@example.com', { subscription: 'both' }));
  await seed(h, 'bob@example.com', item('alice@example.com', { subscription: 'both' }));
  await connect(h, A, { available: true });
  await connect(h, B, { available: true });
  await h.ask(A, 'set', q('<item jid="bob@example.com" subscription="remove"/>'));
  assert.is((await stored(h, 'bob@example.com', 'alice@example.com'))?.subscription, 'none');
  const got = h.received(B);
  assert.equal(pushesIn(got).map((p) => p.child('query')!.child('item')!.attr('subscription')).pop(), 'none');
  assert.ok(got.some((e) => e.name === 'presence' && e.attr('type') === 'unavailable' && e.attr('from') === A), 'bob sees alice go offline');
});

test('storage failure: internal-server-error, the actor crashes as on any error, and the next get works', async () => {
  const h = await mk();
  await connect(h, A);
  h.failWith = new Error('disk on fire');
  const id = h.iq(A, 'get', q());
  const crash = await h.settle().then(() => null, (e: Error) => e);
  assert.match(String(crash?.message), 'disk on fire');
  assert.is(errorOf(h.reply(A, id)!), 'internal-server-error');
  h.failWith = null;
  assert.is((await h.ask(A, 'get', q())).attr('type'), 'result');
  assert.ok(h.logs.some((l) => l.includes('disk on fire')));
});

test('sets sent back to back are applied in order, each pushed with a larger version', async () => {
  const h = await mk();
  await connect(h, A);
  h.iq(A, 'set', q('<item jid="bob@example.com" name="1"/>'));
  h.iq(A, 'set', q('<item jid="bob@example.com" name="2"/>'));
  h.iq(A, 'set', q('<item jid="bob@example.com" subscription="remove"/>'));
  h.iq(A, 'set', q('<item jid="bob@example.com" name="4"/>'));
  await h.settle();
  const pushes = pushesIn(h.received(A)).map((p) => p.child('query')!);
  assert.equal(pushes.map((p) => p.child('item')!.attr('name') ?? p.child('item')!.attr('subscription')), ['1', '2', 'remove', '4']);
  const vers = pushes.map((p) => Number(p.attr('ver')));
  assert.equal(vers, [...vers].sort((a, b) => a - b));
  assert.is(new Set(vers).size, 4);
  assert.is((await stored(h, 'alice@example.com', 'bob@example.com'))?.name, '4');
  assert.equal(h.unanswered(), []);
});

test('a whole flow: add, subscribe, approve, versioned get, remove', async () => {
  {
    const h = await mk();
    const storage = h.storage;
    await connect(h, A, { available: true });
    await connect(h, B, { available: true });
    await h.ask(A, 'set', q('<item jid="bob@example.com" name="Bob"><group>G</group></item>'));
    h.send(A, '<presence type="subscribe" to="bob@example.com"/>');
    await h.settle();
    h.send(B, '<presence type="subscribed" to="alice@example.com"/>');
    await h.settle();
    const mine = await storage.get<RosterItem>(rosterKeys.item('alice@example.com', 'bob@example.com'));
    assert.equal(mine, item('bob@example.com', { name: 'Bob', groups: ['G'], subscription: 'to' }));
    assert.is((await storage.get<RosterItem>(rosterKeys.item('bob@example.com', 'alice@example.com')))?.subscription, 'from');
    const full = await h.ask(A, 'get', q('', ' ver=""'));
    const ver = full.child('query')!.attr('ver')!;
    assert.equal(itemsOf(full.child('query')).map((i) => `${i.jid} ${i.subscription}`), ['bob@example.com to']);
    assert.is((await h.ask(A, 'get', q('', ` ver="${ver}"`))).children.length, 0);
    await h.ask(A, 'set', q('<item jid="bob@example.com" subscription="remove"/>'));
    assert.equal(await storage.range(rosterKeys.of('alice@example.com')), []);
    assert.is((await storage.get<RosterItem>(rosterKeys.item('bob@example.com', 'alice@example.com')))?.subscription, 'none');
    assert.equal(h.unanswered(), []);
  }
});

test.run();
