// vCard-temp (XEP-0054) on the real core: set by the account, read by anyone, also through a room;
// its PHOTO in step with the PEP avatar and the avatar's hash in the account's presence (XEP-0398).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import vcard, { vcardKeys } from '../../src/modules/vcard.ts';
import muc from '../../src/modules/muc.ts';
import disco from '../../src/modules/disco.ts';
import pep from '../../src/modules/pep.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { Core } from '../helpers/core.ts';

const A = 'alice@example.com/a', B = 'bob@example.com/b';
const errorOf = (e: XmlElement) => e.attr('type') === 'error' ? e.child('error')!.getChildren().map((c) => c.name).filter((n) => n !== 'text').join(' ') : null;
const card = (fn: string) => `<vCard xmlns="${NS.VCARD}"><FN>${fn}</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>`;

async function node(o: Record<string, unknown> = {}): Promise<Core> {
  const h = await Core.start([disco, roster, presence, pep, vcard, muc], { options: { vcard: o } });
  for (const [owner, contact] of [['alice', 'bob'], ['bob', 'alice']]) {
    await h.seed(rosterKeys.item(`${owner}@example.com`, `${contact}@example.com`), { jid: `${contact}@example.com`, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true } satisfies RosterItem);
  }
  h.bind(A); h.bind(B);
  await h.settle();
  return h;
}

/** alice makes a room (an instant one) as Alice, bob joins it as Bob. */
async function teaParty(h: Core): Promise<string> {
  const room = 'tea@conference.example.com';
  h.send(A, `<presence to="${room}/Alice"><x xmlns="${NS.MUC}"/></presence>`);
  await h.settle();
  await h.ask(A, 'set', `<query xmlns="${NS.MUC_OWNER}"><x xmlns="${NS.DATA_FORMS}" type="submit"/></query>`, room);
  h.send(B, `<presence to="${room}/Bob"><x xmlns="${NS.MUC}"/></presence>`);
  await h.settle();
  return room;
}

test('the account sets its vCard; it and anyone else read it; none yet is item-not-found', async () => {
  const h = await node();
  assert.is(errorOf(await h.ask(A, 'get', `<vCard xmlns="${NS.VCARD}"/>`)), 'item-not-found');
  assert.is((await h.ask(A, 'set', card('Alice Liddell'))).attr('type'), 'result');
  const own = (await h.ask(A, 'get', `<vCard xmlns="${NS.VCARD}"/>`)).child('vCard', NS.VCARD)!;
  assert.is(own.getChildText('FN', NS.VCARD), 'Alice Liddell');
  const other = await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, 'alice@example.com');
  assert.equal([other.attr('from'), other.child('vCard', NS.VCARD)!.child('PHOTO', NS.VCARD)!.getChildText('BINVAL', NS.VCARD)], ['alice@example.com', 'iVBORw0KGgo=']);
  assert.is(errorOf(await h.ask(B, 'set', card('Mallory'), 'alice@example.com')), 'forbidden');
  assert.is(errorOf(await h.ask(A, 'set', `<vcard xmlns="${NS.VCARD}"/>`)), 'bad-request');
});

test('too big is not acceptable; deleting the account removes it', async () => {
  const h = await node({ max_bytes: 1024 });
  assert.is(errorOf(await h.ask(A, 'set', card('x'.repeat(2000)))), 'not-acceptable');
  await h.ask(A, 'set', card('Alice'));
  h.deleteAccount('alice');
  await h.settle();
  assert.is(await h.peek(vcardKeys.of('alice@example.com')), undefined);
});

test('an occupant\'s vCard through the room: asked of room/nick, answered by the occupant\'s account', async () => {
  const h = await node();
  await h.ask(A, 'set', card('Alice Liddell'));
  const room = await teaParty(h);
  const r = await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, `${room}/Alice`);
  assert.equal([r.attr('type'), r.attr('from'), r.child('vCard', NS.VCARD)?.getChildText('FN', NS.VCARD)], ['result', `${room}/Alice`, 'Alice Liddell']);
});

const IMAGE = 'iVBORw0KGgo=';
const HASH = createHash('sha1').update(Buffer.from(IMAGE, 'base64')).digest('hex');
const items = async (h: Core, who: string, node: string) =>
  (await h.ask(who, 'get', `<pubsub xmlns="${NS.PUBSUB}"><items node="${node}"/></pubsub>`, 'alice@example.com')).child('pubsub', NS.PUBSUB)?.child('items', NS.PUBSUB)?.getChildren('item', NS.PUBSUB) ?? [];
const publish = (node: string, id: string, payload: string) => `<pubsub xmlns="${NS.PUBSUB}"><publish node="${node}"><item id="${id}">${payload}</item></publish></pubsub>`;
const photoSent = (e: XmlElement | undefined) => e?.child('x', NS.VCARD_UPDATE)?.getChildText('photo', NS.VCARD_UPDATE);

test('XEP-0398: a PHOTO set in the vCard is published as the PEP avatar (data, then metadata with its hash)', async () => {
  const h = await node();
  const features = (await h.ask(A, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`)).child('query')!.getChildren('feature').map((f) => f.attr('var'));
  assert.ok(features.includes(NS.PEP_VCARD_CONVERSION));
  await h.ask(A, 'set', card('Alice'));
  const data = await items(h, B, NS.AVATAR_DATA);
  assert.equal(data.map((i) => [i.attr('id'), i.getChildText('data', NS.AVATAR_DATA)]), [[HASH, IMAGE]]);
  const info = (await items(h, B, NS.AVATAR_METADATA))[0]?.child('metadata', NS.AVATAR_METADATA)?.child('info', NS.AVATAR_METADATA);
  assert.equal(['id', 'type', 'bytes'].map((a) => info?.attr(a)), [HASH, 'image/png', '8']);
});

test('XEP-0398: an avatar published over PEP becomes the vCard\'s PHOTO; one whose data does not match its id does not', async () => {
  const h = await node();
  await h.ask(A, 'set', `<vCard xmlns="${NS.VCARD}"><FN>Alice</FN></vCard>`);
  await h.ask(A, 'set', publish(NS.AVATAR_DATA, HASH, `<data xmlns="${NS.AVATAR_DATA}">${IMAGE}</data>`));
  await h.ask(A, 'set', publish(NS.AVATAR_METADATA, HASH, `<metadata xmlns="${NS.AVATAR_METADATA}"><info bytes="8" id="${HASH}" type="image/png"/></metadata>`));
  const v = (await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, 'alice@example.com')).child('vCard', NS.VCARD)!;
  assert.equal([v.getChildText('FN', NS.VCARD), v.child('PHOTO', NS.VCARD)?.getChildText('BINVAL', NS.VCARD), v.child('PHOTO', NS.VCARD)?.getChildText('TYPE', NS.VCARD)], ['Alice', IMAGE, 'image/png']);
  const other = createHash('sha1').update('another').digest('hex');
  await h.ask(A, 'set', publish(NS.AVATAR_METADATA, other, `<metadata xmlns="${NS.AVATAR_METADATA}"><info bytes="8" id="${other}" type="image/png"/></metadata>`));
  const still = (await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, 'alice@example.com')).child('vCard', NS.VCARD)!;
  assert.is(still.child('PHOTO', NS.VCARD)?.getChildText('BINVAL', NS.VCARD), IMAGE);
  // Disabled (an empty metadata item): the PHOTO goes.
  await h.ask(A, 'set', publish(NS.AVATAR_METADATA, 'off', `<metadata xmlns="${NS.AVATAR_METADATA}"/>`));
  const none = (await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, 'alice@example.com')).child('vCard', NS.VCARD)!;
  assert.equal([none.getChildText('FN', NS.VCARD), none.child('PHOTO', NS.VCARD)], ['Alice', undefined]);
});

test('XEP-0398 §4: available presence carries the avatar hash, to contacts and into a room; an empty <photo/> is left as the client sent it', async () => {
  const h = await node();
  h.send(B, '<presence/>');
  await h.ask(A, 'set', card('Alice'));
  h.clear();
  h.send(A, '<presence><show>away</show></presence>');
  await h.settle();
  const toBob = h.take(B).find((e) => e.name === 'presence' && e.attr('from') === A);
  assert.is(photoSent(toBob), HASH);
  assert.is(toBob?.getChildText('show'), 'away');
  h.send(A, `<presence><x xmlns="${NS.VCARD_UPDATE}"><photo/></x></presence>`);
  await h.settle();
  assert.is(photoSent(h.take(B).find((e) => e.name === 'presence' && e.attr('from') === A)), '');
  const room = await teaParty(h);
  assert.is(photoSent(h.take(B).find((e) => e.name === 'presence' && e.attr('from') === `${room}/Alice`)), HASH);
});

test.run();
