// offline (XEP-0160) and the XEP-0203 helper, on the real core (test/helpers/core.ts): the user
// actor runs the hooks over a real LevelDB in a temp dir. Messages come from romeo, a contact on
// another server (a probe): what bounces goes back there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { keys } from '../../src/storage/db.ts';
import { x } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { addDelayXml, appendChildXml, delayElement, withDelay, xmppDateTime } from '../../src/xmpp/delay.ts';
import type { ModuleDefinition } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xml/namespaces.ts';
import offline, { OFFLINE_BATCH, offlineDisposition, offlineKeys } from '../../src/modules/offline.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { Core } from '../helpers/core.ts';

const HOST = 'example.com';
const BARE = 'juliet@example.com';
const SENDER = 'romeo@example.net/orchard';
const T0 = Date.UTC(2024, 2, 1, 8, 0, 0, 123);

const msg = (body: string, attrs = 'type="chat"', extra = '') =>
  `<message from="${SENDER}" to="${BARE}" ${attrs} id="m-${body}"><body>${body}</body>${extra}</message>`;
const initial = (priority?: number) => `<presence>${priority === undefined ? '' : `<priority>${priority}</priority>`}</presence>`;

/** juliet's account (offline storage is only for accounts that exist) with none of her clients online. */
async function world(options: Record<string, unknown> = {}, o: { account?: boolean; dir?: string; modules?: ModuleDefinition<any>[] } = {}): Promise<Core> {
  const h = await Core.start(o.modules ?? [offline], { options: { offline: options }, peers: ['example.net'], dir: o.dir });
  h.clock = T0;
  if (o.account !== false) await h.seed(keys.acct(BARE), { scram: {} });
  return h;
}

const stored = (h: Core): Promise<Array<[string, string]>> => h.storage.range<string>(offlineKeys.of(BARE));
const bodies = (els: XmlElement[]) => els.filter((e) => e.name === 'message').map((e) => e.getChildText('body') ?? '');
const storedBodies = async (h: Core) => (await stored(h)).map(([, v]) => parseElement(v).getChildText('body'));

/** juliet's client `resource` logs in and sends this presence. */
async function online(h: Core, resource: string, presenceXml = initial()): Promise<void> {
  h.bind(`${BARE}/${resource}`);
  h.send(`${BARE}/${resource}`, presenceXml);
  await h.settle();
}

// ---- the XEP-0203 helper --------------------------------------------------------------------------

test('delay: element, XEP-0082 stamp, appended to strings (self-closed or not, prefixed) and elements', () => {
  const d = delayElement('example.com', T0, 'Offline Storage');
  assert.is(xmppDateTime(T0), '2024-03-01T08:00:00.123Z');
  const parsed = parseElement(appendChildXml('<message to="a@b"><body>hi</body></message>', d));
  const got = parsed.child('delay', NS.DELAY)!;
  assert.equal({ ...got.attrs }, { xmlns: NS.DELAY, from: 'example.com', stamp: '2024-03-01T08:00:00.123Z' });
  assert.is(got.text(), 'Offline Storage');
  assert.is(parsed.getChildText('body'), 'hi');
  assert.is(appendChildXml('<message to="a@b" />', '<x xmlns="u"/>'), '<message to="a@b" ><x xmlns="u"/></message>');
  assert.is(appendChildXml('<c:message xmlns:c="jabber:client"><c:body/></c:message>', '<x xmlns="u"/>'),
    '<c:message xmlns:c="jabber:client"><c:body/><x xmlns="u"/></c:message>');
  assert.is(addDelayXml('<message/>', 'h', 0), '<message><delay xmlns="urn:xmpp:delay" from="h" stamp="1970-01-01T00:00:00.000Z"/></message>');
  assert.throws(() => appendChildXml('hello', d), /not an element/);
  const el = withDelay(x('message', { to: 'a@b' }, x('body', null, 'hi')), delayElement('h', 0));
  assert.equal(el.getChildren().map((c) => c.localName), ['body', 'delay']);
  assert.throws(() => xmppDateTime(Number.NaN), /invalid date/);
});

// ---- what is stored ---------------------------------------------------------------------------------

test('disposition: chat/normal with content stored; chat states dropped; others passed to the core', () => {
  const el = (s: string) => parseElement(s);
  assert.is(offlineDisposition(el(msg('a'))), 'store');
  assert.is(offlineDisposition(el(msg('a', ''))), 'store'); // no type = normal
  assert.is(offlineDisposition(el(msg('a', 'type="normal"'))), 'store');
  for (const t of ['headline', 'groupchat', 'error']) assert.is(offlineDisposition(el(msg('a', `type="${t}"`))), 'pass', t);
  assert.is(offlineDisposition(el(`<message type="chat"><composing xmlns="${NS.CHAT_STATES}"/><thread>t</thread></message>`)), 'drop');
  assert.is(offlineDisposition(el('<message type="chat"/>')), 'drop');
  assert.is(offlineDisposition(el(`<message><received xmlns="${NS.RECEIPTS}" id="x"/></message>`)), 'store');
  assert.is(offlineDisposition(el(`<message type="chat"><store xmlns="${NS.HINTS}"/><active xmlns="${NS.CHAT_STATES}"/></message>`)), 'store');
  assert.is(offlineDisposition(el(msg('a', 'type="chat"', `<no-store xmlns="${NS.HINTS}"/>`))), 'pass');
  assert.is(offlineDisposition(el(msg('a', 'type="chat"', `<no-permanent-store xmlns="${NS.HINTS}"/>`))), 'store');
});

test('undeliverable chat stored with a delay stamp, 16-digit keys', async () => {
  const h = await world();
  h.inject(msg('one'));
  await h.settle();
  h.clock += 1000;
  h.inject(msg('two', ''));
  await h.settle();
  const rows = await stored(h);
  assert.equal(rows.map(([k]) => k), [offlineKeys.at(BARE, 1), offlineKeys.at(BARE, 2)]);
  assert.match(rows[0]![0], /!0000000000000001$/);
  assert.is(rows[0]![1], msg('one').replace('</message>',
    `<delay xmlns="urn:xmpp:delay" from="${HOST}" stamp="2024-03-01T08:00:00.123Z">Offline Storage</delay></message>`));
  assert.is(parseElement(rows[1]![1]).child('delay', NS.DELAY)!.attr('stamp'), '2024-03-01T08:00:01.123Z');
  assert.equal(h.takeRemote(), []);
});

test('headline, groupchat and error are left to the core (RFC 6121 §8.5.2.2); chat states dropped silently', async () => {
  const h = await world();
  for (const t of ['headline', 'groupchat', 'error']) h.inject(msg('x', `type="${t}"`));
  h.inject(msg('x', 'type="chat"', `<no-store xmlns="${NS.HINTS}"/>`));
  h.inject(`<message from="${SENDER}" to="${BARE}" type="chat"><composing xmlns="${NS.CHAT_STATES}"/></message>`);
  h.inject(msg('kept'));
  await h.settle();
  assert.equal(await storedBodies(h), ['kept']);
  // groupchat and the no-store chat are service-unavailable; headline, error and chat states vanish
  assert.equal(h.takeRemote().map((e) => `${e.attr('id')} ${e.attr('type')} ${e.child('error')?.getChildren()[0]?.name}`),
    ['m-x error service-unavailable', 'm-x error service-unavailable']);
});

test('over the per-account limit the sender gets service-unavailable and nothing more is stored', async () => {
  const h = await world({ max_messages: 2 });
  for (const b of ['1', '2', '3']) h.inject(msg(b));
  await h.settle();
  assert.equal(await storedBodies(h), ['1', '2']);
  const back = h.takeRemote();
  assert.is(back.length, 1);
  const err = back[0]!;
  assert.equal([err.name, err.attr('type'), err.attr('to'), err.attr('from'), err.attr('id')], ['message', 'error', SENDER, BARE, 'm-3']);
  assert.is(err.child('error')!.attr('type'), 'cancel');
  assert.ok(err.child('error')!.child('service-unavailable', NS.STANZAS));
  // delivering frees room again
  await online(h, 'phone');
  assert.equal(bodies(h.received(`${BARE}/phone`)), ['1', '2']);
  h.send(`${BARE}/phone`, '<presence type="unavailable"/>');
  h.inject(msg('4'));
  await h.settle();
  assert.equal(h.takeRemote(), []);
  assert.equal(await storedBodies(h), ['4']);
});

test('mail handed back by an ended session is kept over the limit: it was accepted already (#30.2)', async () => {
  const h = await world({ max_messages: 2 });
  for (const b of ['1', '2']) h.inject(msg(b));
  await h.settle();
  h.bind(`${BARE}/phone`);
  h.handBack(`${BARE}/phone`, msg('3'));
  await h.settle();
  h.inject(msg('4'));
  await h.settle();
  assert.equal(await storedBodies(h), ['1', '2', '3']);
  assert.equal(h.takeRemote().map((e) => e.attr('id')), ['m-4'], 'only the new message is refused');
});

test('a limit of 0 stores nothing and bounces everything', async () => {
  const h = await world({ max_messages: 0 });
  h.inject(msg('a'));
  await h.settle();
  assert.equal(await stored(h), []);
  assert.is(h.takeRemote().length, 1);
});

test('a message replayed after a crash (state from the last snapshot) is stored under the same key, once', async () => {
  const h = await world();
  h.inject(msg('a'));
  await h.settle();
  // The actor crashes once 'b' is written, before its snapshot is: 'b' comes again to the restart.
  h.afterWrite = (key) => { if (key === offlineKeys.at(BARE, 2)) { h.afterWrite = null; h.crash('juliet'); } };
  h.inject(msg('b'));
  await h.settle();
  assert.ok(h.logs.some((l) => l.includes(`user:${BARE} crashed`)), 'it crashed');
  assert.equal((await stored(h)).map(([k, v]) => [k, parseElement(v).getChildText('body')]), [[offlineKeys.at(BARE, 1), 'a'], [offlineKeys.at(BARE, 2), 'b']]);
  h.inject(msg('c'));
  await h.settle();
  assert.equal((await stored(h)).map(([k]) => k), [1, 2, 3].map((n) => offlineKeys.at(BARE, n)));
});

// ---- delivery -------------------------------------------------------------------------------------

test('initial presence (priority >= 0) gets every stored message in order, with stamps; then they are gone', async () => {
  const h = await world();
  for (const b of ['one', 'two', 'three']) { h.inject(msg(b)); await h.settle(); h.clock += 10; }
  await online(h, 'balcony', initial(0));
  const got = h.take(`${BARE}/balcony`);
  assert.equal(bodies(got), ['one', 'two', 'three']);
  assert.equal(got.map((e) => e.child('delay', NS.DELAY)!.attr('stamp')),
    ['2024-03-01T08:00:00.123Z', '2024-03-01T08:00:00.133Z', '2024-03-01T08:00:00.143Z']);
  assert.equal(await stored(h), []);
  // a presence update of an available resource is not a new availability: what comes now is delivered live
  h.inject(msg('four'));
  h.send(`${BARE}/balcony`, initial(1));
  await h.settle();
  assert.equal(bodies(h.take(`${BARE}/balcony`)), ['four']);
  assert.equal(await stored(h), []);
});

test('not on negative priority or directed presence; yes once a negative priority turns non-negative', async () => {
  const h = await world();
  for (const b of ['a', 'b']) h.inject(msg(b));
  await h.settle();
  await online(h, 'low', initial(-1));
  await online(h, 'directed', `<presence to="room@conference.example.com/nick"/>`);
  assert.equal(h.received(`${BARE}/low`), []);
  assert.equal(bodies(h.received(`${BARE}/directed`)), []);
  assert.is((await stored(h)).length, 2);
  // RFC 6121 §8.5.2.2.1: 'low' becomes a candidate for delivery
  h.send(`${BARE}/low`, initial(0));
  await h.settle();
  assert.equal(bodies(h.received(`${BARE}/low`)), ['a', 'b']);
  assert.equal(await stored(h), []);
});

test(`more than one batch (${OFFLINE_BATCH}) is delivered whole and in order`, async () => {
  const h = await world();
  const n = OFFLINE_BATCH * 2 + 7;
  for (let i = 1; i <= n; i++) h.inject(msg(String(i)));
  await h.settle();
  await online(h, 'phone');
  assert.equal(bodies(h.received(`${BARE}/phone`)), Array.from({ length: n }, (_, i) => String(i + 1)));
  assert.equal(await stored(h), []);
});

test('storage survives a restart of the node, and numbering continues after the stored messages without the actor\'s state', async () => {
  const h1 = await world();
  for (const b of ['before-1', 'before-2']) h1.inject(msg(b));
  await h1.settle();
  const dir = await h1.close();
  const h2 = await world({}, { dir, account: false });
  await h2.storage.del(keys.snap(`user:${BARE}`)); // no actor state: numbering comes from what is stored
  h2.inject(msg('after'));
  await h2.settle();
  assert.equal((await stored(h2)).map(([k]) => k), [1, 2, 3].map((n) => offlineKeys.at(BARE, n)));
  await online(h2, 'phone');
  assert.equal(bodies(h2.received(`${BARE}/phone`)), ['before-1', 'before-2', 'after']);
});

test('a message for an account that does not exist is not stored: the sender gets service-unavailable', async () => {
  const h = await world({}, { account: false });
  h.inject(msg('to nobody'));
  await h.settle();
  assert.equal(await stored(h), []);
  const back = h.takeRemote();
  assert.equal(back.map((e) => [e.attr('type'), e.child('error')?.getChildren()[0]?.name]), [['error', 'service-unavailable']]);
});

// ---- with the real presence module ------------------------------------------------------------------

test('with roster and presence loaded: stored messages reach the initial presence, in order, not a negative priority', async () => {
  const h = await world({}, { modules: [roster, presence, offline] });
  const full = `${BARE}/phone`;
  const kept = ['one', 'two', 'three'].map((b, i) => addDelayXml(msg(b), HOST, T0 + i));
  for (const [i, xml] of kept.entries()) await h.seed(offlineKeys.at(BARE, i + 1), xml);
  await online(h, 'low', '<presence><priority>-1</priority></presence>');
  assert.equal(h.received(`${BARE}/low`).filter((e) => e.name === 'message'), [], 'negative priority');
  await online(h, 'phone');
  const got = h.received(full);
  assert.equal(bodies(got), ['one', 'two', 'three']);
  assert.ok(got.some((e) => e.name === 'presence'), 'the presence module still ran');
  assert.ok((await h.session(full))!.presence !== null, 'presence recorded');
  assert.equal(await stored(h), [], 'deleted');
});

test('declares XEP-0160 and XEP-0203, feature msgoffline; the limit option is validated', () => {
  assert.equal(offline.xeps?.map((d) => d.xep), [160, 203]);
  assert.equal(offline.features?.host, ['msgoffline']);
  assert.throws(() => new ModuleSet([HOST]).add(offline as never, { global: { max_messages: -1 } }), /max_messages: must be at least 0/);
});

test.run();
