import { test } from 'uvu';
import * as assert from 'uvu/assert';
import presence from '../../src/modules/presence.ts';
import { parsePriority } from '../../src/xmpp/priority.ts';
import roster from '../../src/modules/roster.ts';
import { rosterKeys, type RosterItem, type Subscription } from '../../src/modules/roster-store.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Core, type CoreOptions } from '../helpers/core.ts';

const ALICE = 'alice@example.com';
const A = `${ALICE}/a`;
const A2 = `${ALICE}/b`;
const BOB = 'bob@example.com';
const B = `${BOB}/b`;
const CAROL = 'carol@example.com';
const C = `${CAROL}/c`;
// A contact on another server: what alice's server sends it is recorded, and nothing answers.
const ROMEO = 'romeo@montague.example';
/** Other servers (probes): what goes there is in h.remote. */
const PEERS = ['montague.example', 'capulet.example', 'example.net', 'conference.montague.example'];

const mk = (o?: CoreOptions) => Core.start([roster, presence], { peers: PEERS, ...o });
const stored = (h: Core, owner: string, contact: string) => h.peek<RosterItem>(rosterKeys.item(owner, contact));
const seed = (h: Core, owner: string, it: RosterItem) => h.seed(rosterKeys.item(owner, it.jid), it);
const typeOf = (e: XmlElement) => e.attr('type') ?? 'available';
const presences = (els: XmlElement[]) => els.filter((e) => e.name === 'presence');
const pushesIn = (els: XmlElement[]) => els.filter((e) => e.name === 'iq' && e.attr('type') === 'set' && e.child('query', NS.ROSTER));

function item(jid: string, patch: Partial<RosterItem> = {}): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, approved: false, pendingIn: null, listed: true, ...patch };
}

/** Binds, gets the roster (so it gets pushes), optionally sends initial presence; forgets what that produced. */
async function connect(h: Core, full: string, o: { available?: boolean; presence?: string } = {}): Promise<void> {
  h.bind(full);
  h.iq(full, 'get', `<query xmlns="${NS.ROSTER}"/>`);
  if (o.available !== false) h.send(full, o.presence ?? '<presence/>');
  await h.settle();
  h.clear();
}

/** Both accounts see each other as `sub` (from the first one's side). */
async function befriend(h: Core, a: string, b: string, sub: Subscription = 'both'): Promise<void> {
  const mirror: Record<Subscription, Subscription> = { none: 'none', to: 'from', from: 'to', both: 'both' };
  await seed(h, a, item(b, { subscription: sub }));
  await seed(h, b, item(a, { subscription: mirror[sub] }));
}

// ---- RFC 6121 Appendix A, row by row ------------------------------------------------------------

const STATES = ['None', 'None+PendingOut', 'None+PendingIn', 'None+PendingOut+In', 'To', 'To+PendingIn', 'From', 'From+PendingOut', 'Both'] as const;
type State = (typeof STATES)[number];

const pendingRequest = (contact: string) => `<presence type="subscribe" from="${contact}" to="${ALICE}"/>`;

function itemFor(state: State, contact: string): RosterItem {
  const base = state.split('+')[0]!.toLowerCase() as Subscription;
  return item(contact, {
    subscription: base,
    ask: state.includes('PendingOut'),
    pendingIn: state.includes('PendingIn') || state.endsWith('+In') ? pendingRequest(contact) : null,
  });
}

function stateOf(it: RosterItem | undefined): State {
  if (!it) return 'None';
  const base = { none: 'None', to: 'To', from: 'From', both: 'Both' }[it.subscription];
  const out = it.ask, inn = it.pendingIn !== null;
  return (base + (out && inn ? '+PendingOut+In' : out ? '+PendingOut' : inn ? '+PendingIn' : '')) as State;
}

interface Row {
  from: State;
  /** Outbound: routed to the contact. Inbound: delivered to the user's available resources. */
  passes: boolean;
  to: State;
  /** Types of everything the user's server sends the contact ('available' = no type); default: the stanza itself if routed. */
  remote?: string[];
  /** A pre-approval is recorded. */
  approved?: boolean;
}

const OUTBOUND: Record<string, Row[]> = {
  // A.2.1
  subscribe: [
    { from: 'None', passes: true, to: 'None+PendingOut' },
    { from: 'None+PendingOut', passes: true, to: 'None+PendingOut' },
    { from: 'None+PendingIn', passes: true, to: 'None+PendingOut+In' },
    { from: 'None+PendingOut+In', passes: true, to: 'None+PendingOut+In' },
    { from: 'To', passes: true, to: 'To' },
    { from: 'To+PendingIn', passes: true, to: 'To+PendingIn' },
    { from: 'From', passes: true, to: 'From+PendingOut' },
    { from: 'From+PendingOut', passes: true, to: 'From+PendingOut' },
    { from: 'Both', passes: true, to: 'Both' },
  ],
  // A.2.2
  unsubscribe: [
    { from: 'None', passes: true, to: 'None' },
    { from: 'None+PendingOut', passes: true, to: 'None' },
    { from: 'None+PendingIn', passes: true, to: 'None+PendingIn' },
    { from: 'None+PendingOut+In', passes: true, to: 'None+PendingIn' },
    { from: 'To', passes: true, to: 'None' },
    { from: 'To+PendingIn', passes: true, to: 'None+PendingIn' },
    { from: 'From', passes: true, to: 'From' },
    { from: 'From+PendingOut', passes: true, to: 'From' },
    { from: 'Both', passes: true, to: 'From' },
  ],
  // A.2.3, with pre-approval (§3.4) where no request is pending; approving sends current presence (§3.1.5)
  subscribed: [
    { from: 'None', passes: false, to: 'None', approved: true },
    { from: 'None+PendingOut', passes: false, to: 'None+PendingOut', approved: true },
    { from: 'None+PendingIn', passes: true, to: 'From', remote: ['available', 'subscribed'] },
    { from: 'None+PendingOut+In', passes: true, to: 'From+PendingOut', remote: ['available', 'subscribed'] },
    { from: 'To', passes: false, to: 'To', approved: true },
    { from: 'To+PendingIn', passes: true, to: 'Both', remote: ['available', 'subscribed'] },
    { from: 'From', passes: false, to: 'From' },
    { from: 'From+PendingOut', passes: false, to: 'From+PendingOut' },
    { from: 'Both', passes: false, to: 'Both' },
  ],
  // A.2.4; ending From also sends unavailable presence (§3.2.2)
  unsubscribed: [
    { from: 'None', passes: false, to: 'None' },
    { from: 'None+PendingOut', passes: false, to: 'None+PendingOut' },
    { from: 'None+PendingIn', passes: true, to: 'None' },
    { from: 'None+PendingOut+In', passes: true, to: 'None+PendingOut' },
    { from: 'To', passes: false, to: 'To' },
    { from: 'To+PendingIn', passes: true, to: 'To' },
    { from: 'From', passes: true, to: 'None', remote: ['unavailable', 'unsubscribed'] },
    { from: 'From+PendingOut', passes: true, to: 'None+PendingOut', remote: ['unavailable', 'unsubscribed'] },
    { from: 'Both', passes: true, to: 'To', remote: ['unavailable', 'unsubscribed'] },
  ],
};

const INBOUND: Record<string, Row[]> = {
  // A.3.1; already subscribed: an automatic 'subscribed' (and current presence)
  subscribe: [
    { from: 'None', passes: true, to: 'None+PendingIn' },
    { from: 'None+PendingOut', passes: true, to: 'None+PendingOut+In' },
    { from: 'None+PendingIn', passes: false, to: 'None+PendingIn' },
    { from: 'None+PendingOut+In', passes: false, to: 'None+PendingOut+In' },
    { from: 'To', passes: true, to: 'To+PendingIn' },
    { from: 'To+PendingIn', passes: false, to: 'To+PendingIn' },
    { from: 'From', passes: false, to: 'From', remote: ['available', 'subscribed'] },
    { from: 'From+PendingOut', passes: false, to: 'From+PendingOut', remote: ['available', 'subscribed'] },
    { from: 'Both', passes: false, to: 'Both', remote: ['available', 'subscribed'] },
  ],
  // A.3.2; ending From sends unavailable (§3.3.3), and nothing is answered (see the race test below)
  unsubscribe: [
    { from: 'None', passes: false, to: 'None' },
    { from: 'None+PendingOut', passes: false, to: 'None+PendingOut' },
    { from: 'None+PendingIn', passes: true, to: 'None' },
    { from: 'None+PendingOut+In', passes: true, to: 'None+PendingOut' },
    { from: 'To', passes: false, to: 'To' },
    { from: 'To+PendingIn', passes: true, to: 'To' },
    { from: 'From', passes: true, to: 'None', remote: ['unavailable'] },
    { from: 'From+PendingOut', passes: true, to: 'None+PendingOut', remote: ['unavailable'] },
    { from: 'Both', passes: true, to: 'To', remote: ['unavailable'] },
  ],
  // A.3.3
  subscribed: [
    { from: 'None', passes: false, to: 'None' },
    { from: 'None+PendingOut', passes: true, to: 'To' },
    { from: 'None+PendingIn', passes: false, to: 'None+PendingIn' },
    { from: 'None+PendingOut+In', passes: true, to: 'To+PendingIn' },
    { from: 'To', passes: false, to: 'To' },
    { from: 'To+PendingIn', passes: false, to: 'To+PendingIn' },
    { from: 'From', passes: false, to: 'From' },
    { from: 'From+PendingOut', passes: true, to: 'Both' },
    { from: 'Both', passes: false, to: 'Both' },
  ],
  // A.3.4
  unsubscribed: [
    { from: 'None', passes: false, to: 'None' },
    { from: 'None+PendingOut', passes: true, to: 'None' },
    { from: 'None+PendingIn', passes: false, to: 'None+PendingIn' },
    { from: 'None+PendingOut+In', passes: true, to: 'None+PendingIn' },
    { from: 'To', passes: true, to: 'None' },
    { from: 'To+PendingIn', passes: true, to: 'None+PendingIn' },
    { from: 'From', passes: false, to: 'From' },
    { from: 'From+PendingOut', passes: true, to: 'From' },
    { from: 'Both', passes: true, to: 'From' },
  ],
};

// What the client's roster shows of a state: pending-in is not visible (RFC 6121 §2.1.2).
const visible = (s: State) => `${s.split('+')[0]}${s.includes('PendingOut') ? '+ask' : ''}`;

/** The push for a row, if one is due: checks its content; returns whether there was one. */
function checkPush(h: Core, row: Row, what: string): void {
  const pushes = pushesIn(h.received(A));
  const due = visible(row.from) !== visible(row.to) || row.approved === true;
  assert.is(pushes.length, due ? 1 : 0, `${what}: roster pushes`);
  if (!due) return;
  const el = pushes[0]!.child('query')!.child('item')!;
  assert.is(el.attr('jid'), ROMEO);
  assert.is(el.attr('subscription'), row.to.split('+')[0]!.toLowerCase(), `${what}: pushed subscription`);
  assert.is(el.attr('ask'), row.to.includes('PendingOut') ? 'subscribe' : undefined, `${what}: pushed ask`);
  assert.is(el.attr('approved'), row.approved ? 'true' : undefined, `${what}: pushed approved`);
}

for (const [type, rows] of Object.entries(OUTBOUND)) {
  for (const row of rows) {
    const what = `outbound ${type} in ${row.from}`;
    test(`${what}: ${row.passes ? 'routed' : 'not routed'}, ${row.to === row.from ? 'no state change' : row.to}`, async () => {
      const h = await mk();
      await seed(h, ALICE, itemFor(row.from, ROMEO));
      await connect(h, A);
      h.send(A, `<presence type="${type}" to="${ROMEO}/balcony"><status>hi</status></presence>`);
      await h.settle();
      const remote = h.takeRemote();
      assert.equal(remote.map(typeOf).sort(), row.remote ?? (row.passes ? [type] : []), `${what}: sent to the contact`);
      const routed = remote.find((e) => typeOf(e) === type);
      if (routed) {
        // §3.1.2: stamped with the bare JIDs of both parties, the content kept
        assert.is(routed.attr('from'), ALICE);
        assert.is(routed.attr('to'), ROMEO);
        assert.is(routed.getChildText('status'), 'hi');
      }
      assert.is(stateOf((await stored(h, ALICE, ROMEO))), row.to, `${what}: new state`);
      assert.is((await stored(h, ALICE, ROMEO))?.approved ?? false, row.approved ?? false, `${what}: pre-approval`);
      checkPush(h, row, what);
    });
  }
}

for (const [type, rows] of Object.entries(INBOUND)) {
  for (const row of rows) {
    const what = `inbound ${type} in ${row.from}`;
    test(`${what}: ${row.passes ? 'delivered' : 'not delivered'}, ${row.to === row.from ? 'no state change' : row.to}`, async () => {
      const h = await mk();
      await seed(h, ALICE, itemFor(row.from, ROMEO));
      await connect(h, A);
      await connect(h, A2, { available: false }); // bound but never available: gets nothing (§8.5.2)
      h.inject(`<presence type="${type}" from="${ROMEO}/balcony" to="${ALICE}"/>`);
      await h.settle();
      const got = presences(h.received(A)).filter((e) => typeOf(e) === type);
      assert.is(got.length, row.passes ? 1 : 0, `${what}: delivered`);
      if (got[0]) assert.is(got[0].attr('from'), ROMEO, 'subscription stanzas come from the bare JID');
      assert.equal(presences(h.received(A2)), []);
      assert.equal(h.takeRemote().map(typeOf).sort(), row.remote ?? [], `${what}: sent back to the contact`);
      assert.is(stateOf((await stored(h, ALICE, ROMEO))), row.to, `${what}: new state`);
      checkPush(h, row, what);
    });
  }
}

test('no roster item at all: as None; only subscribe (either way) and subscribed (pre-approval) create one', async () => {
  for (const [dir, type, created, remote] of [
    ['out', 'subscribe', { listed: true, ask: true }, ['subscribe']], ['out', 'unsubscribe', null, ['unsubscribe']],
    ['out', 'subscribed', { listed: true, approved: true }, []], ['out', 'unsubscribed', null, []],
    ['in', 'subscribe', { listed: false, pendingIn: true }, []], ['in', 'unsubscribe', null, []],
    ['in', 'subscribed', null, []], ['in', 'unsubscribed', null, []],
  ] as const) {
    const h = await mk();
    await connect(h, A);
    if (dir === 'out') h.send(A, `<presence type="${type}" to="${ROMEO}"/>`);
    else h.inject(`<presence type="${type}" from="${ROMEO}" to="${ALICE}"/>`);
    await h.settle();
    assert.equal(h.takeRemote().map(typeOf), [...remote], `${dir} ${type}: sent to the contact`);
    assert.is(presences(h.received(A)).filter((e) => typeOf(e) === type).length, dir === 'in' && type === 'subscribe' ? 1 : 0, `${dir} ${type}: delivered`);
    const it = (await stored(h, ALICE, ROMEO));
    if (created === null) { assert.is(it, undefined, `${dir} ${type}`); continue; }
    assert.ok(it, `${dir} ${type} creates a record`);
    assert.is(it.listed, created.listed, `${dir} ${type}: listed`);
    if ('ask' in created) assert.ok(it.ask);
    if ('approved' in created) assert.ok(it.approved);
    if ('pendingIn' in created) assert.ok(it.pendingIn);
    // a hidden record is not pushed; listed ones are
    assert.is(pushesIn(h.received(A)).length, created.listed ? 1 : 0, `${dir} ${type}: push`);
  }
});

// ---- pre-approval, pending requests --------------------------------------------------------------

test('pre-approval: the contact is accepted without asking the user, and gets subscribed and presence', async () => {
  const h = await mk();
  await connect(h, A, { presence: '<presence><show>dnd</show></presence>' });
  await connect(h, B);
  h.send(A, `<presence type="subscribed" to="${BOB}"/>`);
  await h.settle();
  assert.is((await stored(h, ALICE, BOB))?.approved, true);
  assert.equal(presences(h.received(B)), [], 'a pre-approval is not routed');
  h.clear();
  h.send(B, `<presence type="subscribe" to="${ALICE}"/>`);
  await h.settle();
  assert.equal(presences(h.received(A)).filter((e) => typeOf(e) === 'subscribe'), [], 'alice is not asked');
  assert.equal({ ...(await stored(h, ALICE, BOB)), approved: false }, item(BOB, { subscription: 'from' }));
  assert.equal((await stored(h, BOB, ALICE)), item(ALICE, { subscription: 'to' }));
  const atBob = presences(h.received(B));
  assert.ok(atBob.some((e) => typeOf(e) === 'subscribed' && e.attr('from') === ALICE));
  assert.ok(atBob.some((e) => typeOf(e) === 'available' && e.attr('from') === A && e.getChildText('show') === 'dnd'), "alice's presence reaches bob");
  assert.equal(pushesIn(h.received(A)).map((p) => p.child('query')!.child('item')!.attr('subscription')), ['from']);
});

test('pre-approval is cancelled by unsubscribed, and a later request is asked for again', async () => {
  const h = await mk();
  await connect(h, A);
  h.send(A, `<presence type="subscribed" to="${ROMEO}"/>`);
  await h.settle();
  h.send(A, `<presence type="unsubscribed" to="${ROMEO}"/>`);
  await h.settle();
  assert.equal((await stored(h, ALICE, ROMEO)), item(ROMEO));
  assert.equal(h.takeRemote(), []);
  assert.equal(pushesIn(h.received(A)).map((p) => p.child('query')!.child('item')!.attr('approved')), ['true', undefined]);
  h.inject(`<presence type="subscribe" from="${ROMEO}" to="${ALICE}"/>`);
  await h.settle();
  assert.ok(presences(h.received(A)).some((e) => typeOf(e) === 'subscribe'));
  assert.is(stateOf((await stored(h, ALICE, ROMEO))), 'None+PendingIn');
});

test('a request to an offline user is kept, hidden from the roster, and delivered at each initial presence until answered', async () => {
  const h = await mk();
  h.inject(`<presence type="subscribe" from="${ROMEO}/balcony" to="${ALICE}"><status>let me in</status></presence>`);
  await h.settle();
  const rec = (await stored(h, ALICE, ROMEO))!;
  assert.is(rec.listed, false);
  h.bind(A);
  const id = h.iq(A, 'get', `<query xmlns="${NS.ROSTER}"/>`);
  await h.settle();
  assert.equal(h.reply(A, id)!.child('query')!.getChildren('item'), [], 'not in the roster');
  assert.equal(presences(h.received(A)), [], 'not before initial presence');
  h.send(A, '<presence/>');
  await h.settle();
  const req = presences(h.received(A)).filter((e) => typeOf(e) === 'subscribe');
  assert.is(req.length, 1);
  assert.is(req[0]!.attr('from'), ROMEO);
  assert.is(req[0]!.getChildText('status'), 'let me in', 'the whole stanza is kept');
  // another resource coming online gets it too
  h.bind(A2);
  h.send(A2, '<presence/>');
  await h.settle();
  assert.is(presences(h.received(A2)).filter((e) => typeOf(e) === 'subscribe').length, 1);
  // once answered it is gone
  h.send(A, `<presence type="subscribed" to="${ROMEO}"/>`);
  await h.settle();
  assert.is((await stored(h, ALICE, ROMEO))?.pendingIn, null);
  h.unbind(A2);
  await h.settle();
  h.bind(A2);
  h.send(A2, '<presence/>');
  await h.settle();
  h.take(A2);
  assert.equal(presences(h.received(A2)).filter((e) => typeOf(e) === 'subscribe'), []);
});

test('denying a hidden request deletes the record without a push', async () => {
  const h = await mk();
  await connect(h, A);
  h.inject(`<presence type="subscribe" from="${ROMEO}" to="${ALICE}"/>`);
  await h.settle();
  h.send(A, `<presence type="unsubscribed" to="${ROMEO}"/>`);
  await h.settle();
  assert.is((await stored(h, ALICE, ROMEO)), undefined);
  assert.equal(pushesIn(h.received(A)), []);
  assert.equal(h.takeRemote().map(typeOf), ['unsubscribed']);
});

test('the contact withdrawing a hidden request deletes the record', async () => {
  const h = await mk();
  await connect(h, A);
  h.inject(`<presence type="subscribe" from="${ROMEO}" to="${ALICE}"/>`);
  h.inject(`<presence type="unsubscribe" from="${ROMEO}" to="${ALICE}"/>`);
  await h.settle();
  assert.is((await stored(h, ALICE, ROMEO)), undefined);
  assert.equal(presences(h.received(A)).map(typeOf), ['subscribe', 'unsubscribe']);
});

test('a full subscription handshake between two local accounts ends in Both on both sides', async () => {
  const h = await mk();
  await connect(h, A);
  await connect(h, B);
  h.send(A, `<presence type="subscribe" to="${BOB}"/>`);
  await h.settle();
  h.send(B, `<presence type="subscribed" to="${ALICE}"/>`);
  h.send(B, `<presence type="subscribe" to="${ALICE}"/>`);
  await h.settle();
  h.send(A, `<presence type="subscribed" to="${BOB}"/>`);
  await h.settle();
  assert.equal((await stored(h, ALICE, BOB)), item(BOB, { subscription: 'both' }));
  assert.equal((await stored(h, BOB, ALICE)), item(ALICE, { subscription: 'both' }));
  // each learns the other's presence when the subscription starts (§3.1.5)
  assert.ok(presences(h.received(A)).some((e) => typeOf(e) === 'available' && e.attr('from') === B));
  assert.ok(presences(h.received(B)).some((e) => typeOf(e) === 'available' && e.attr('from') === A));
  // the client sees the push before the contact's presence that follows it
  const seen = h.received(A).map((e) => (e.name === 'iq' ? `push:${e.child('query')?.child('item')?.attr('subscription')}` : `${typeOf(e)}:${e.attr('from')}`));
  assert.ok(seen.indexOf('push:to') < seen.indexOf(`available:${B}`), seen.join(' '));
});

test('cancelling a subscription sends unavailable while the contact is still subscribed: before unsubscribed (§3.2.2)', async () => {
  for (const how of ['unsubscribed', 'remove'] as const) {
    const h = await mk();
    await seed(h, ALICE, item(ROMEO, { subscription: 'both' }));
    await connect(h, A);
    await connect(h, A2);
    if (how === 'remove') h.iq(A, 'set', `<query xmlns="${NS.ROSTER}"><item jid="${ROMEO}" subscription="remove"/></query>`);
    else h.send(A, `<presence type="unsubscribed" to="${ROMEO}"/>`);
    await h.settle();
    const order = h.takeRemote().map((e) => `${typeOf(e)} ${e.attr('from')}`);
    const cut = order.indexOf(`unsubscribed ${ALICE}`);
    assert.ok(cut > 0, `${how}: ${order.join(', ')}`);
    assert.equal(order.slice(0, cut).filter((o) => o.startsWith('unavailable')).sort(), [`unavailable ${A}`, `unavailable ${A2}`], `${how}: ${order.join(', ')}`);
  }
});

test('unsubscribing and subscribing again at once: the contact approves and both end in Both', async () => {
  for (const run of [1, 2]) {
    const h = await mk();
    await befriend(h, ALICE, BOB);
    await connect(h, A);
    await connect(h, B);
    h.send(A, `<presence type="unsubscribe" to="${BOB}"/>`);
    h.send(A, `<presence type="subscribe" to="${BOB}"/>`);
    await h.settle();
    assert.is(stateOf((await stored(h, ALICE, BOB))), 'From+PendingOut', `run ${run}`);
    h.send(B, `<presence type="subscribed" to="${ALICE}"/>`);
    await h.settle();
    assert.is(stateOf((await stored(h, ALICE, BOB))), 'Both', `run ${run}`);
    assert.is(stateOf((await stored(h, BOB, ALICE))), 'Both', `run ${run}`);
  }
});

test('back-to-back subscription stanzas for one contact are applied in order', async () => {
  for (const run of [1, 2]) {
    const h = await mk();
    await connect(h, A);
    // romeo's answer comes from elsewhere: in order with alice's stanzas only once it is here
    h.send(A, `<presence type="subscribe" to="${ROMEO}"/>`);
    await h.settle();
    h.inject(`<presence type="subscribed" from="${ROMEO}" to="${ALICE}"/>`);
    await h.settle();
    h.send(A, `<presence type="unsubscribe" to="${ROMEO}"/>`);
    h.send(A, `<presence type="subscribe" to="${ROMEO}"/>`);
    await h.settle();
    assert.is(stateOf((await stored(h, ALICE, ROMEO))), 'None+PendingOut', `run ${run}`);
    const vers = pushesIn(h.received(A)).map((p) => Number(p.child('query')!.attr('ver')));
    assert.equal(vers.length, 4, `run ${run}: ask, to, none, ask`);
    assert.equal(vers, [...vers].sort((a, b) => a - b));
  }
});

// ---- presence broadcast (§4.2 - §4.5) ----------------------------------------------------------

test('initial presence: to subscribers and own resources, probes to contacts, their presence back to this resource', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB, 'both');
  await befriend(h, ALICE, CAROL, 'to'); // alice sees carol; carol does not see alice
  await seed(h, ALICE, item(ROMEO, { subscription: 'from' })); // romeo sees alice
  await connect(h, B, { presence: '<presence><status>bob here</status></presence>' });
  await connect(h, C);
  h.bind(A);
  h.send(A, '<presence><show>away</show><priority>7</priority></presence>');
  await h.settle();
  const atA = presences(h.received(A));
  assert.ok(atA.some((e) => e.attr('from') === A && e.attr('to') === A && e.getChildText('show') === 'away'), 'its own presence');
  assert.ok(atA.some((e) => e.attr('from') === B && e.attr('to') === A && e.getChildText('status') === 'bob here'), "bob's presence answers the probe");
  assert.ok(atA.some((e) => e.attr('from') === C && e.attr('to') === A), "carol's presence answers the probe");
  assert.ok(presences(h.received(B)).some((e) => e.attr('from') === A && e.getChildText('show') === 'away'));
  assert.equal(presences(h.received(C)), [], 'carol is not subscribed to alice');
  const remote = h.takeRemote();
  assert.equal(remote.map((e) => `${typeOf(e)} ${e.attr('from')} ${e.attr('to')}`), [`available ${A} ${ROMEO}`], 'no probe to romeo (from only)');
  assert.is((await h.session(A))!.priority, 7);
  assert.ok((await h.session(A))!.presence!.includes('away'));
});

test("a second resource gets the first one's presence, and the first sees the second arrive", async () => {
  const h = await mk();
  await connect(h, A, { presence: '<presence><status>one</status></presence>' });
  h.bind(A2);
  h.send(A2, '<presence><status>two</status></presence>');
  await h.settle();
  assert.equal(presences(h.received(A)).map((e) => `${e.attr('from')} ${e.getChildText('status')}`), [`${A2} two`]);
  assert.equal(presences(h.received(A2)).map((e) => `${e.attr('from')} ${e.getChildText('status')}`).sort(), [`${A} one`, `${A2} two`]);
});

test('subsequent presence: broadcast again, without new probes', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await seed(h, ALICE, item(ROMEO, { subscription: 'both' }));
  await connect(h, B);
  await connect(h, A);
  h.send(A, '<presence><show>xa</show><priority>-1</priority></presence>');
  await h.settle();
  assert.equal(h.takeRemote().map(typeOf), ['available'], 'to romeo, no probe');
  assert.equal(presences(h.received(B)).map((e) => e.getChildText('show')), ['xa']);
  assert.equal(presences(h.received(A)).map((e) => e.getChildText('show')), ['xa']);
  assert.is((await h.session(A))!.priority, -1);
});

test('unavailable: broadcast to subscribers and own resources, the session recorded unavailable, nothing more at unbind', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await connect(h, B);
  await connect(h, A);
  await connect(h, A2);
  h.send(A, '<presence type="unavailable"><status>gone</status></presence>');
  await h.settle();
  for (const who of [B, A2, A]) {
    assert.equal(presences(h.received(who)).map((e) => `${typeOf(e)} ${e.attr('from')} ${e.getChildText('status')}`), [`unavailable ${A} gone`], who);
  }
  assert.is((await h.session(A))!.presence, null);
  h.clear();
  h.send(B, `<presence type="probe" to="${ALICE}"/>`); // a resource that went unavailable is not reported
  h.unbind(A);
  await h.settle();
  assert.equal(presences(h.received(B)).map((e) => `${typeOf(e)} ${e.attr('from')}`), [`available ${A2}`]);
  assert.equal(presences(h.received(A2)), []);
});

test('a stream that ends without unavailable: contacts, own resources and directed recipients get unavailable', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await connect(h, B);
  await connect(h, C);
  await connect(h, A);
  await connect(h, A2);
  h.send(A, `<presence to="${C}"><status>psst</status></presence>`);
  h.send(A, `<presence to="room@conference.montague.example/alice"/>`);
  await h.settle();
  assert.equal(presences(h.received(C)).map((e) => e.getChildText('status')), ['psst'], 'directed presence delivered');
  h.clear();
  h.unbind(A);
  await h.settle();
  const unavailableFromA = (els: XmlElement[]) => presences(els).filter((e) => typeOf(e) === 'unavailable' && e.attr('from') === A);
  assert.is(unavailableFromA(h.received(B)).length, 1);
  assert.is(unavailableFromA(h.received(A2)).length, 1);
  assert.is(unavailableFromA(h.received(C)).length, 1);
  assert.equal(h.takeRemote().map((e) => `${typeOf(e)} ${e.attr('to')}`), ['unavailable room@conference.montague.example/alice']);
  assert.equal(Object.keys((await h.moduleState<{ res: object }>('alice', 'presence'))!.res), ['b'], 'only the ended resource is forgotten');
});

test('a resource that never sent presence leaves silently', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await connect(h, B);
  await connect(h, A, { available: false });
  h.unbind(A);
  await h.settle();
  assert.equal(presences(h.received(B)), []);
});

test('directed presence: unavailable to the recipient ends tracking; subscribers are not sent unavailable twice', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await connect(h, B);
  await connect(h, C);
  await connect(h, A);
  h.send(A, `<presence to="${C}"/>`);
  h.send(A, `<presence to="${B}"/>`);
  h.send(A, `<presence type="unavailable" to="${C}"/>`);
  await h.settle();
  h.clear();
  h.unbind(A);
  await h.settle();
  assert.equal(presences(h.received(C)), [], 'carol already got unavailable');
  assert.is(presences(h.received(B)).filter((e) => typeOf(e) === 'unavailable').length, 1);
});

test('inbound presence reaches available resources only; to a full JID, that session even if not available', async () => {
  const h = await mk();
  await connect(h, A);
  await connect(h, A2, { available: false });
  h.inject(`<presence from="${ROMEO}/x" to="${ALICE}"><show>chat</show></presence>`);
  h.inject(`<presence from="${ROMEO}/x" to="${A2}"/>`);
  h.inject(`<presence from="${ROMEO}/x" to="${ALICE}/nosuch"/>`);
  await h.settle();
  assert.equal(presences(h.received(A)).map((e) => e.getChildText('show')), ['chat']);
  assert.equal(presences(h.received(A2)).map((e) => e.attr('to')), [A2]);
});

test('inbound presence for an account with no available resource is not kept', async () => {
  const h = await mk();
  h.inject(`<presence from="${ROMEO}/x" to="${ALICE}"/>`);
  await h.settle();
  await connect(h, A, { available: false });
  h.send(A, '<presence/>');
  await h.settle();
  assert.equal(presences(h.received(A)).map((e) => e.attr('from')), [A]);
});

// ---- probes (§4.3) ------------------------------------------------------------------------------

test('probe from a subscriber: the presence of each available resource, addressed to the prober', async () => {
  const h = await mk();
  await seed(h, ALICE, item(ROMEO, { subscription: 'from' }));
  await connect(h, A, { presence: '<presence><status>1</status></presence>' });
  await connect(h, A2, { presence: '<presence><status>2</status></presence>' });
  h.inject(`<presence type="probe" from="${ROMEO}/balcony" to="${ALICE}"/>`);
  await h.settle();
  assert.equal(h.takeRemote().map((e) => `${e.attr('from')} ${e.attr('to')} ${e.getChildText('status')}`).sort(),
    [`${A} ${ROMEO}/balcony 1`, `${A2} ${ROMEO}/balcony 2`]);
  assert.equal(presences(h.received(A)), [], 'probes are not shown to the user');
});

test('probe from a subscriber while offline: the last unavailable presence with when it was sent, or a bare unavailable', async () => {
  const h = await mk();
  await seed(h, ALICE, item(ROMEO, { subscription: 'both' }));
  h.inject(`<presence type="probe" id="p1" from="${ROMEO}" to="${ALICE}"/>`);
  await h.settle();
  assert.equal(h.takeRemote().map((e) => `${typeOf(e)} ${e.attr('from')} ${e.attr('id')}`), [`unavailable ${ALICE} p1`]);
  await connect(h, A);
  h.clock = Date.UTC(2026, 0, 2, 3, 4, 5);
  h.send(A, '<presence type="unavailable" id="bye"><status>on holiday</status></presence>');
  h.unbind(A);
  await h.settle();
  h.takeRemote();
  h.clock += 60_000;
  h.inject(`<presence type="probe" id="p2" from="${ROMEO}" to="${ALICE}"/>`);
  await h.settle();
  const [last, ...more] = h.takeRemote();
  assert.is(more.length, 0);
  assert.equal([typeOf(last!), last!.attr('from'), last!.attr('id'), last!.getChildText('status')], ['unavailable', A, 'bye', 'on holiday']);
  const delay = last!.child('delay', NS.DELAY);
  assert.is(delay?.attr('stamp'), '2026-01-02T03:04:05.000Z');
  assert.is(delay?.attr('from'), ALICE);
});

test('probe from someone not subscribed: unsubscribed, and no presence', async () => {
  for (const state of ['None', 'None+PendingOut', 'None+PendingIn', 'To', 'To+PendingIn'] as const) {
    const h = await mk();
    await seed(h, ALICE, itemFor(state, ROMEO));
    await connect(h, A);
    h.inject(`<presence type="probe" id="p" from="${ROMEO}/x" to="${ALICE}"/>`);
    await h.settle();
    assert.equal(h.takeRemote().map((e) => `${typeOf(e)} ${e.attr('from')} ${e.attr('to')} ${e.attr('id')}`), [`unsubscribed ${ALICE} ${ROMEO} p`], state);
  }
});

// ---- edges ----------------------------------------------------------------------------------------

test('priority: integers in -128..127, clamped outside, 0 when absent or not a number', () => {
  const p = (inner: string) => parsePriority(parseElement(`<presence>${inner}</presence>`));
  assert.is(p(''), 0);
  assert.is(p('<priority>5</priority>'), 5);
  assert.is(p('<priority> -128 </priority>'), -128);
  assert.is(p('<priority>+127</priority>'), 127);
  assert.is(p('<priority>300</priority>'), 127);
  assert.is(p('<priority>-1000</priority>'), -128);
  assert.is(p('<priority>1.5</priority>'), 0);
  assert.is(p('<priority>high</priority>'), 0);
  assert.is(p('<priority/>'), 0);
});

test('bad presence from a client: an unknown type, a subscription with no to; both answered bad-request', async () => {
  const h = await mk();
  await connect(h, A);
  h.send(A, '<presence type="invisible"/>');
  h.send(A, '<presence type="subscribe"/>');
  await h.settle();
  const errs = presences(h.received(A)).filter((e) => typeOf(e) === 'error');
  assert.equal(errs.map((e) => e.child('error')!.getChildren()[0]!.name), ['bad-request', 'bad-request']);
  assert.equal(h.takeRemote(), []);
});

test('subscription stanzas to oneself change nothing', async () => {
  const h = await mk();
  await connect(h, A);
  h.send(A, `<presence type="subscribe" to="${ALICE}"/>`);
  await h.settle();
  assert.is((await stored(h, ALICE, ALICE)), undefined);
  assert.equal(pushesIn(h.received(A)), []);
});

test('resources a crash left in the state with no session are announced unavailable at the restart, once', async () => {
  const h = await mk();
  await befriend(h, ALICE, BOB);
  await connect(h, B);
  await connect(h, C);
  // as a crash could leave it: alice/a announced available (to bob, directed to carol), no session any more
  await h.restartWith('alice', 'presence', { res: { a: { on: true, directed: [C] } }, lastUnavailable: null });
  await h.settle();
  assert.equal(presences(h.received(B)).map((e) => `${typeOf(e)} ${e.attr('from')}`), [`unavailable ${A}`]);
  assert.equal(presences(h.received(C)).map((e) => `${typeOf(e)} ${e.attr('from')}`), [`unavailable ${A}`]);
  assert.equal((await h.moduleState<{ res: object }>('alice', 'presence'))!.res, {});
  h.clear();
  h.bind(A);
  await h.settle();
  assert.equal(presences(h.received(B)), [], 'not again at the next bind');
  assert.equal(presences(h.received(A)), [], 'nor to the new session');
});

test("the roster limit of the roster module applies to the presence module's additions", async () => {
  const h = await mk({ options: { roster: { max_items: 1 } } });
  await seed(h, ALICE, item(BOB));
  await connect(h, A);
  h.send(A, `<presence type="subscribed" to="${ROMEO}"/>`); // a pre-approval would add an item
  await h.settle();
  assert.is((await stored(h, ALICE, ROMEO)), undefined);
  assert.equal(presences(h.received(A)).map((e) => e.child('error')?.getChildren()[0]?.name), ['policy-violation']);
});

test.run();
