// XEP-0191 on the route hooks, with roster and presence loaded as on a node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import blocking, { isBlocked } from '../../src/modules/blocking.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import type { RosterItem } from '../../src/modules/roster-store.ts';
import { rosterKeys } from '../../src/modules/roster-store.ts';
import { serialize } from '../../src/xml/builder.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { parseJid } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Core, type CoreOptions } from '../helpers/core.ts';

const A = 'alice@example.com/a';
const A2 = 'alice@example.com/b';
const B = 'bob@example.com/b';
const ALICE = 'alice@example.com', BOB = 'bob@example.com';

const mk = (o?: CoreOptions) => Core.start([roster, presence, blocking], o);
const both = (h: Core, owner: string, contact: string) => h.seed(rosterKeys.item(owner, contact), {
  jid: contact, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true,
} satisfies RosterItem);

const blockIq = (...jids: string[]) => `<block xmlns="${NS.BLOCKING}">${jids.map((j) => `<item jid="${j}"/>`).join('')}</block>`;
const unblockIq = (...jids: string[]) => `<unblock xmlns="${NS.BLOCKING}">${jids.map((j) => `<item jid="${j}"/>`).join('')}</unblock>`;
const listed = (r: XmlElement) => (r.child('blocklist', NS.BLOCKING)?.getChildren('item') ?? []).map((i) => i.attr('jid'));
const condition = (e: XmlElement | undefined) => e?.child('error')?.getChildren()[0]?.name;

/** alice and bob are subscribed both ways and online. */
async function friends(o?: CoreOptions): Promise<Core> {
  const h = await mk(o);
  await both(h, ALICE, BOB);
  await both(h, BOB, ALICE);
  for (const full of [A, B]) { h.bind(full); h.send(full, '<presence/>'); }
  await h.settle();
  h.clear();
  h.takeRemote();
  return h;
}

test('JID matching follows §6: full, bare, domain/resource and domain entries', () => {
  const j = parseJid('romeo@montague.example/orchard');
  assert.ok(isBlocked(['romeo@montague.example/orchard'], j));
  assert.ok(isBlocked(['romeo@montague.example'], j));
  assert.ok(isBlocked(['montague.example/orchard'], j));
  assert.ok(isBlocked(['montague.example'], j));
  assert.not.ok(isBlocked(['romeo@montague.example/balcony'], j));
  assert.not.ok(isBlocked(['juliet@montague.example', 'capulet.example'], j));
  assert.not.ok(isBlocked(['romeo@montague.example/orchard'], parseJid('romeo@montague.example')));
});

test('get, block and unblock: the list, with pushes to the resources that asked for it', async () => {
  const h = await mk();
  h.bind(A); h.bind(A2);
  await h.settle();
  assert.equal(listed(await h.ask(A, 'get', `<blocklist xmlns="${NS.BLOCKING}"/>`)), []);
  h.clear();
  const r = await h.ask(A2, 'set', blockIq('romeo@montague.example', 'Capulet.Example'));
  assert.is(r.attr('type'), 'result');
  const push = h.received(A).find((e) => e.name === 'iq' && e.attr('type') === 'set');
  assert.equal(push?.child('block', NS.BLOCKING)?.getChildren('item').map((i) => i.attr('jid')), ['romeo@montague.example', 'capulet.example']);
  assert.not.ok(h.received(A2).some((e) => e.attr('type') === 'set'), 'no push to a resource that never asked');
  assert.equal(listed(await h.ask(A, 'get', `<blocklist xmlns="${NS.BLOCKING}"/>`)), ['romeo@montague.example', 'capulet.example']);
  h.clear();
  await h.ask(A2, 'set', unblockIq('capulet.example'));
  assert.ok(h.received(A).some((e) => e.child('unblock', NS.BLOCKING)?.getChildren('item')[0]?.attr('jid') === 'capulet.example'));
  assert.equal(listed(await h.ask(A, 'get', `<blocklist xmlns="${NS.BLOCKING}"/>`)), ['romeo@montague.example']);
  await h.ask(A2, 'set', unblockIq()); // §3.5: no items = everyone
  assert.equal(listed(await h.ask(A, 'get', `<blocklist xmlns="${NS.BLOCKING}"/>`)), []);
});

test('bad requests: no items, an invalid JID, an unknown element, beyond the limit', async () => {
  const h = await mk({ options: { blocking: { max_items: 2 } } });
  h.bind(A);
  await h.settle();
  assert.is(condition(await h.ask(A, 'set', blockIq())), 'bad-request');
  assert.is(condition(await h.ask(A, 'set', blockIq('a@b@c'))), 'jid-malformed');
  assert.is(condition(await h.ask(A, 'set', `<blocked xmlns="${NS.BLOCKING}"/>`)), 'bad-request');
  assert.is((await h.ask(A, 'set', blockIq('x@example.net', 'y@example.net'))).attr('type'), 'result');
  assert.is(condition(await h.ask(A, 'set', blockIq('z@example.net'))), 'resource-constraint');
  assert.equal(h.unanswered(), []);
});

test('blocking a subscribed contact sends it unavailable; then nothing of alice reaches bob', async () => {
  const h = await friends();
  await h.ask(A, 'set', blockIq(BOB));
  const toBob = h.take(B);
  assert.ok(toBob.some((e) => e.name === 'presence' && e.attr('type') === 'unavailable' && e.attr('from') === A), 'unavailable on block');
  // a new presence broadcast skips bob
  h.send(A, '<presence><show>away</show></presence>');
  await h.settle();
  assert.not.ok(h.take(B).some((e) => e.name === 'presence'));
  // alice's client writing to bob is refused with <blocked/>
  h.send(A, `<message to="${B}" id="m1" type="chat"><body>hi</body></message>`);
  await h.settle();
  const err = h.take(A).find((e) => e.name === 'message' && e.attr('type') === 'error');
  assert.is(condition(err), 'not-acceptable');
  assert.ok(err?.child('error')?.child('blocked', 'urn:xmpp:blocking:errors'));
  assert.equal(h.take(B), []);
});

test('from a blocked entity: messages and IQ get/set answered service-unavailable, presence and the rest dropped', async () => {
  const h = await friends();
  await h.ask(A, 'set', blockIq(BOB));
  h.clear();
  h.send(B, `<message to="${ALICE}" id="m1" type="chat"><body>hi</body></message>`);
  h.send(B, `<iq to="${A}" id="q1" type="get"><query xmlns="jabber:iq:version"/></iq>`);
  h.send(B, `<presence type="probe" to="${ALICE}"/>`);
  h.send(B, `<presence type="subscribe" to="${ALICE}"/>`);
  h.send(B, `<message to="${ALICE}" id="m2" type="error"/>`);
  await h.settle();
  assert.equal(h.received(A), [], 'alice gets nothing');
  const back = h.received(B).filter((e) => e.attr('type') === 'error');
  assert.equal(back.map((e) => `${e.name}:${e.attr('id')}:${condition(e)}`).sort(), ['iq:q1:service-unavailable', 'message:m1:service-unavailable']);
  assert.equal(h.received(B).filter((e) => e.name === "presence").map((e) => serialize(e)), [], "a probe from a blocked entity is not answered");
});

test('unblocking sends current presence to a subscribed contact again; messages flow', async () => {
  const h = await friends();
  await h.ask(A, 'set', blockIq(BOB));
  h.clear();
  await h.ask(A, 'set', unblockIq(BOB));
  assert.ok(h.take(B).some((e) => e.name === 'presence' && e.attr('type') === undefined && e.attr('from') === A), 'current presence on unblock');
  h.send(A, `<message to="${B}" id="m1" type="chat"><body>back</body></message>`);
  await h.settle();
  assert.ok(h.received(B).some((e) => e.name === 'message' && e.getChildText('body') === 'back'));
});

test('a session bound after the block checks its outbound stanzas too; the list survives a restart', async () => {
  const h = await friends();
  await h.ask(A, 'set', blockIq(BOB));
  h.crash('alice');
  h.bind(A2);
  await h.settle();
  h.send(A2, `<message to="${BOB}" id="m2" type="chat"><body>hi</body></message>`);
  await h.settle();
  assert.is(condition(h.received(A2).find((e) => e.attr('id') === 'm2')), 'not-acceptable');
  assert.equal(listed(await h.ask(A2, 'get', `<blocklist xmlns="${NS.BLOCKING}"/>`)), [BOB]);
});

test('the server announces the feature', async () => {
  const h = await mk();
  assert.ok(h.modules.hostFeatures.has(NS.BLOCKING));
});

test.run();
