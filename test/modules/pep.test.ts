// PEP (XEP-0163) on the real core: accounts publish to their own nodes; their own resources and
// their contacts' get the events their caps (XEP-0115) ask for. The OMEMO (XEP-0384) flow of two
// devices of alice and one of bob is the proof: device list and bundle published, notified, fetched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pep, { capsHash, pepKeys } from '../../src/modules/pep.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import disco from '../../src/modules/disco.ts';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import { serialize } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Core } from '../helpers/core.ts';

const ALICE = 'alice@example.com', BOB = 'bob@example.com', CAROL = 'carol@example.com';
const A1 = `${ALICE}/phone`, A2 = `${ALICE}/laptop`, B1 = `${BOB}/phone`, B2 = `${BOB}/tablet`, C1 = `${CAROL}/pc`;
const DEVICES = 'eu.siacs.conversations.axolotl.devicelist';
const BUNDLE = 'eu.siacs.conversations.axolotl.bundles:1';
const OMEMO = 'eu.siacs.conversations.axolotl';

const mk = () => Core.start([roster, presence, disco, pep]);

async function friends(h: Core, a: string, b: string): Promise<void> {
  for (const [owner, contact] of [[a, b], [b, a]] as const) {
    await h.seed(rosterKeys.item(owner, contact), { jid: contact, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true } satisfies RosterItem);
  }
}

/** A client's disco#info: an identity and these features. */
const discoInfo = (features: string[]) => parseElement(`<query xmlns="${NS.DISCO_INFO}"><identity category="client" type="phone" name="Test"/>${features.map((f) => `<feature var="${f}"/>`).join('')}</query>`);

/**
 * `full` logs in and goes online with caps for `features`; when the server asks for the disco#info
 * behind a hash it does not know, the client answers (with `lie`, other features than the hash says).
 */
async function online(h: Core, full: string, features: string[], lie?: string[]): Promise<void> {
  const ver = capsHash(discoInfo(features));
  h.bind(full);
  h.send(full, `<presence><c xmlns="${NS.CAPS}" hash="sha-1" node="https://test.example" ver="${ver}"/></presence>`);
  await h.settle();
  // each account that sees the client online may ask (its own, and each contact's)
  for (const ask of h.received(full).filter((e) => e.name === 'iq' && e.attr('type') === 'get' && e.child('query', NS.DISCO_INFO))) {
    const q = discoInfo(lie ?? features);
    h.send(full, `<iq type="result" id="${ask.attr('id')}" to="${ask.attr('from')}"><query xmlns="${NS.DISCO_INFO}" node="${ask.child('query')!.attr('node')}">${q.getChildren().map((c) => serialize(c)).join('')}</query></iq>`);
  }
  await h.settle();
}

const publish = (node: string, payload: string, id?: string, access?: string) => `<pubsub xmlns="${NS.PUBSUB}"><publish node="${node}"><item${id ? ` id="${id}"` : ''}>${payload}</item></publish>`
  + (access ? `<publish-options><x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var="pubsub#access_model"><value>${access}</value></field></x></publish-options>` : '')
  + '</pubsub>';
const items = (node: string) => `<pubsub xmlns="${NS.PUBSUB}"><items node="${node}"/></pubsub>`;
const events = (els: XmlElement[]) => els.filter((e) => e.name === 'message' && e.child('event', NS.PUBSUB_EVENT))
  .map((e) => { const i = e.child('event', NS.PUBSUB_EVENT)!.getChildren()[0]!; return `${e.attr('from')} ${i.name} ${i.attr('node')} ${i.getChildren().map((c) => `${c.name}:${c.attr('id')}`).join(',')}`; });
const errorOf = (e: XmlElement) => e.attr('type') === 'error' ? e.child('error')!.getChildren().map((c) => c.name).filter((n) => n !== 'text').join(' ') : null;
const wantsDevices = [NS.DISCO_INFO, OMEMO, `${DEVICES}+notify`];

test('the account advertises PEP: identity pubsub/pep and the pubsub features', async () => {
  const h = await mk();
  h.bind(A1);
  await h.settle();
  const q = (await h.ask(A1, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`, ALICE)).child('query', NS.DISCO_INFO)!;
  assert.ok(q.getChildren('identity').some((i) => i.attr('category') === 'pubsub' && i.attr('type') === 'pep'));
  const vars = q.getChildren('feature').map((f) => f.attr('var'));
  for (const f of [NS.PUBSUB, `${NS.PUBSUB}#publish-options`, `${NS.PUBSUB}#access-open`, `${NS.PUBSUB}#last-published`]) assert.ok(vars.includes(f), f);
});

test('OMEMO: device lists go to both devices of alice and to bob\'s, by caps; bundles are fetched, not pushed', async () => {
  const h = await mk();
  await friends(h, ALICE, BOB);
  await online(h, A1, wantsDevices);
  await online(h, A2, wantsDevices);
  await online(h, B1, wantsDevices);
  await online(h, C1, wantsDevices); // not a contact of alice's
  h.clear();
  const r = await h.ask(A1, 'set', publish(DEVICES, `<list xmlns="${OMEMO}"><device id="1001"/></list>`, 'current', 'open'));
  assert.equal(r.child('pubsub', NS.PUBSUB)!.child('publish')!.child('item')!.attr('id'), 'current');
  for (const full of [A1, A2, B1]) assert.equal(events(h.received(full)), [`${ALICE} items ${DEVICES} item:current`], full);
  assert.equal(events(h.received(C1)), [], 'carol is no contact of alice and has no presence from her');
  const ev = h.received(B1).find((e) => e.name === 'message')!;
  assert.equal([ev.attr('type'), ev.attr('to')], ['headline', B1]);
  assert.is(ev.child('event', NS.PUBSUB_EVENT)!.child('items')!.child('item')!.child('list', OMEMO)!.child('device')!.attr('id'), '1001');
  // a bundle: nobody asked to be told (no +notify), bob fetches it
  h.clear();
  await h.ask(A1, 'set', publish(BUNDLE, `<bundle xmlns="${OMEMO}"><signedPreKeyPublic signedPreKeyId="1">BASE64</signedPreKeyPublic></bundle>`, 'current', 'open'));
  for (const full of [A1, A2, B1, C1]) assert.equal(events(h.received(full)), [], full);
  const fetched = await h.ask(B1, 'get', items(BUNDLE), ALICE);
  assert.is(fetched.child('pubsub', NS.PUBSUB)!.child('items')!.child('item')!.child('bundle', OMEMO)!.getChildText('signedPreKeyPublic', OMEMO), 'BASE64');
  // open: anyone may fetch, carol too
  assert.is((await h.ask(C1, 'get', items(BUNDLE), ALICE)).attr('type'), 'result');
});

test('a device coming online later gets the last item of what it wants at once; the caps hash is asked once', async () => {
  const h = await mk();
  await friends(h, ALICE, BOB);
  await online(h, B1, wantsDevices);
  await online(h, A1, wantsDevices);
  await h.ask(A1, 'set', publish(DEVICES, `<list xmlns="${OMEMO}"><device id="7"/></list>`, 'current', 'open'));
  h.clear();
  await online(h, B2, wantsDevices);
  assert.ok(!h.received(B2).some((e) => e.name === 'iq' && e.attr('type') === 'get'), 'the hash is known: no disco#info asked');
  assert.equal(events(h.received(B2)), [`${ALICE} items ${DEVICES} item:current`]);
  assert.ok(await h.peek(pepKeys.caps(capsHash(discoInfo(wantsDevices)))), 'the hash is kept');
});

test('caps that do not match the client\'s disco#info are trusted for that client alone', async () => {
  const h = await mk();
  await friends(h, ALICE, BOB);
  await online(h, A1, [NS.DISCO_INFO]);
  // bob's hash says one thing, its disco#info another (the device list): believed for bob alone
  const claimed = [NS.DISCO_INFO, 'urn:test:other'];
  await online(h, B1, claimed, wantsDevices);
  assert.is(await h.peek(pepKeys.caps(capsHash(discoInfo(claimed)))), undefined, 'not kept for others');
  h.clear();
  await h.ask(A1, 'set', publish(DEVICES, `<list xmlns="${OMEMO}"/>`, 'current', 'open'));
  assert.equal(events(h.received(B1)), [`${ALICE} items ${DEVICES} item:current`]);
  assert.equal(events(h.received(A1)), [], 'alice\'s client asked for nothing');
  // another client with bob's hash is asked again
  await online(h, B2, claimed);
  assert.ok(h.received(B2).some((e) => e.name === 'iq' && e.child('query', NS.DISCO_INFO)), 'asked');
});

test('access models: presence needs a subscription, whitelist only the owner; publish-options are preconditions', async () => {
  const h = await mk();
  await friends(h, ALICE, BOB);
  for (const full of [A1, B1, C1]) h.bind(full);
  await h.settle();
  await h.ask(A1, 'set', publish('urn:xmpp:avatar:metadata', '<metadata xmlns="urn:xmpp:avatar:metadata"/>', 'a'));
  assert.is((await h.ask(B1, 'get', items('urn:xmpp:avatar:metadata'), ALICE)).attr('type'), 'result', 'a subscribed contact');
  assert.is(errorOf(await h.ask(C1, 'get', items('urn:xmpp:avatar:metadata'), ALICE)), 'not-authorized presence-subscription-required');
  await h.ask(A1, 'set', publish('urn:xmpp:bookmarks:1', '<conference xmlns="urn:xmpp:bookmarks:1" autojoin="true"/>', 'room@conference.example.com', 'whitelist'));
  assert.is(errorOf(await h.ask(B1, 'get', items('urn:xmpp:bookmarks:1'), ALICE)), 'not-allowed closed-node');
  assert.is((await h.ask(A1, 'get', items('urn:xmpp:bookmarks:1'))).child('pubsub')!.child('items')!.getChildren('item').length, 1);
  // the node is whitelist: publishing with access_model=open is a failed precondition
  assert.is(errorOf(await h.ask(A1, 'set', publish('urn:xmpp:bookmarks:1', '<conference xmlns="urn:xmpp:bookmarks:1"/>', 'x@conference.example.com', 'open'))), 'conflict precondition-not-met');
  assert.is(errorOf(await h.ask(B1, 'set', publish('urn:xmpp:bookmarks:1', '<conference xmlns="urn:xmpp:bookmarks:1"/>', 'y'), ALICE)), 'forbidden');
  assert.is(errorOf(await h.ask(C1, 'get', items('nosuch'), ALICE)), 'item-not-found', 'to others an absent node is not there');
});

test('items: max_items keeps the newest; retract and delete notify; configure reads and changes the node', async () => {
  const h = await mk();
  h.bind(A1);
  await h.settle();
  await online(h, A2, [NS.DISCO_INFO, 'urn:test:node+notify']);
  const configure = (fields: string) => `<pubsub xmlns="${NS.PUBSUB_OWNER}"><configure node="urn:test:node"><x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/pubsub#node_config</value></field>${fields}</x></configure></pubsub>`;
  await h.ask(A1, 'set', publish('urn:test:node', '<n xmlns="urn:test"/>', 'one'));
  assert.is((await h.ask(A1, 'set', configure('<field var="pubsub#max_items"><value>2</value></field>'))).attr('type'), 'result');
  for (const id of ['two', 'three']) await h.ask(A1, 'set', publish('urn:test:node', '<n xmlns="urn:test"/>', id));
  const got = await h.ask(A1, 'get', items('urn:test:node'));
  assert.equal(got.child('pubsub')!.child('items')!.getChildren('item').map((i) => i.attr('id')), ['two', 'three']);
  const form = await h.ask(A1, 'get', `<pubsub xmlns="${NS.PUBSUB_OWNER}"><configure node="urn:test:node"/></pubsub>`);
  const fields = Object.fromEntries(form.child('pubsub')!.child('configure')!.child('x', NS.DATA_FORMS)!.getChildren('field').map((f) => [f.attr('var'), f.getChildText('value', NS.DATA_FORMS)]));
  assert.equal([fields['pubsub#max_items'], fields['pubsub#access_model']], ['2', 'presence']);
  h.clear();
  await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB}"><retract node="urn:test:node" notify="true"><item id="two"/></retract></pubsub>`);
  assert.equal(events(h.received(A2)), [`${ALICE} items urn:test:node retract:two`]);
  assert.is(errorOf(await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB}"><retract node="urn:test:node"><item id="two"/></retract></pubsub>`)), 'item-not-found');
  h.clear();
  await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB_OWNER}"><delete node="urn:test:node"/></pubsub>`);
  assert.equal(events(h.received(A2)), [`${ALICE} delete urn:test:node `]);
  assert.equal((await h.ask(A1, 'get', items('urn:test:node'))).child('pubsub')!.child('items')!.getChildren(), [], 'to its owner a deleted node is an empty one');
});

test('bad requests: no node, two items, an unknown publish-options value, subscribing', async () => {
  const h = await mk();
  h.bind(A1);
  await h.settle();
  assert.is(errorOf(await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB}"><publish><item><n xmlns="urn:test"/></item></publish></pubsub>`)), 'bad-request nodeid-required');
  assert.is(errorOf(await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB}"><publish node="n"><item><a xmlns="urn:test"/></item><item><b xmlns="urn:test"/></item></publish></pubsub>`)), 'bad-request invalid-payload');
  assert.is(errorOf(await h.ask(A1, 'set', publish('n', '<n xmlns="urn:test"/>', 'i', 'everyone'))), 'conflict precondition-not-met');
  assert.is(errorOf(await h.ask(A1, 'set', `<pubsub xmlns="${NS.PUBSUB}"><subscribe node="n" jid="${A1}"/></pubsub>`)), 'feature-not-implemented unsupported');
});

test('deleting the account removes its nodes', async () => {
  const h = await mk();
  h.bind(A1);
  await h.settle();
  await h.ask(A1, 'set', publish('n', '<n xmlns="urn:test"/>', 'i'));
  assert.ok(await h.peek(pepKeys.node(ALICE, 'n')));
  h.deleteAccount('alice');
  await h.settle();
  assert.is(await h.peek(pepKeys.node(ALICE, 'n')), undefined);
});

test.run();
