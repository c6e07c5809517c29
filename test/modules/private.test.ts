// Private XML storage (XEP-0049) on the real core: one fragment per namespace, the account's own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import priv, { privateKeys } from '../../src/modules/private.ts';
import pep from '../../src/modules/pep.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { Core } from '../helpers/core.ts';

const A = 'alice@example.com/a', A2 = 'alice@example.com/b', B = 'bob@example.com/b';
const q = (inner: string) => `<query xmlns="${NS.PRIVATE}">${inner}</query>`;
const errorOf = (e: XmlElement) => e.attr('type') === 'error' ? e.child('error')!.getChildren().map((c) => c.name).filter((n) => n !== 'text').join(' ') : null;

async function node(options: Record<string, unknown> = {}): Promise<Core> {
  const h = await Core.start([pep, priv], { options: { private: options } });
  for (const full of [A, A2, B]) h.bind(full);
  await h.settle();
  return h;
}

test('set then get from another client of the account; an unknown namespace gives the empty element back', async () => {
  const h = await node();
  const prefs = '<prefs xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></prefs>';
  assert.is((await h.ask(A, 'set', q(prefs))).attr('type'), 'result');
  const got = (await h.ask(A2, 'get', q('<prefs xmlns="exodus:prefs"/>'))).child('query', NS.PRIVATE)!.child('prefs', 'exodus:prefs')!;
  assert.is(got.getChildText('defaultnick', 'exodus:prefs'), 'Hamlet');
  const none = (await h.ask(A, 'get', q('<other xmlns="urn:test:none"/>'))).child('query', NS.PRIVATE)!;
  assert.equal(none.getChildren().map((c) => [c.name, c.getXmlns(), c.children.length]), [['other', 'urn:test:none', 0]]);
  // a new set replaces the fragment
  await h.ask(A, 'set', q('<prefs xmlns="exodus:prefs"><defaultnick>Horatio</defaultnick></prefs>'));
  assert.is((await h.ask(A, 'get', q('<prefs xmlns="exodus:prefs"/>'))).child('query')!.child('prefs')!.getChildText('defaultnick', 'exodus:prefs'), 'Horatio');
});

test('another account may not read or write it: forbidden; reserved namespaces and empty requests are not acceptable', async () => {
  const h = await node();
  await h.ask(A, 'set', q('<prefs xmlns="exodus:prefs"/>'));
  assert.is(errorOf(await h.ask(B, 'get', q('<prefs xmlns="exodus:prefs"/>'), 'alice@example.com')), 'forbidden');
  assert.is(errorOf(await h.ask(B, 'set', q('<prefs xmlns="exodus:prefs"/>'), 'alice@example.com')), 'forbidden');
  assert.is(errorOf(await h.ask(A, 'set', q(`<x xmlns="${NS.CLIENT}"/>`))), 'not-acceptable');
  assert.is(errorOf(await h.ask(A, 'set', q(''))), 'not-acceptable');
  assert.is(errorOf(await h.ask(A, 'get', q(''))), 'not-acceptable');
});

test('limits: a fragment too big, too many namespaces', async () => {
  const h = await node({ max_bytes: 256, max_namespaces: 2 });
  assert.is(errorOf(await h.ask(A, 'set', q(`<big xmlns="urn:test:big">${'x'.repeat(300)}</big>`))), 'not-acceptable');
  await h.ask(A, 'set', q('<a xmlns="urn:test:a"/>'));
  await h.ask(A, 'set', q('<b xmlns="urn:test:b"/>'));
  assert.is(errorOf(await h.ask(A, 'set', q('<c xmlns="urn:test:c"/>'))), 'not-acceptable');
  assert.is((await h.ask(A, 'set', q('<b xmlns="urn:test:b"><v/></b>'))).attr('type'), 'result', 'replacing one stays within');
});

test('bookmarks (XEP-0411): storage:bookmarks set here is the Bookmarks 2 PEP node, and read back from it', async () => {
  const h = await node();
  const legacy = `<storage xmlns="storage:bookmarks"><conference jid="tea@conference.example.com" name="Tea" autojoin="true"><nick>Alice</nick></conference></storage>`;
  assert.is((await h.ask(A, 'set', q(legacy))).attr('type'), 'result');
  const items = (await h.ask(A2, 'get', `<pubsub xmlns="${NS.PUBSUB}"><items node="urn:xmpp:bookmarks:1"/></pubsub>`)).child('pubsub')!.child('items')!.getChildren('item');
  assert.equal(items.map((i) => [i.attr('id'), i.child('conference', 'urn:xmpp:bookmarks:1')!.attr('name'), i.child('conference')!.getChildText('nick', 'urn:xmpp:bookmarks:1')]), [['tea@conference.example.com', 'Tea', 'Alice']]);
  // a Bookmarks 2 client adds one; the old client reads both
  await h.ask(A2, 'set', `<pubsub xmlns="${NS.PUBSUB}"><publish node="urn:xmpp:bookmarks:1"><item id="cake@conference.example.com"><conference xmlns="urn:xmpp:bookmarks:1" name="Cake"/></item></publish></pubsub>`);
  const back = (await h.ask(A, 'get', q('<storage xmlns="storage:bookmarks"/>'))).child('query')!.child('storage', 'storage:bookmarks')!;
  assert.equal(back.getChildren('conference').map((c) => `${c.attr('jid')} ${c.attr('name')} ${c.attr('autojoin') ?? ''}`), ['tea@conference.example.com Tea true', 'cake@conference.example.com Cake ']);
  assert.is(await h.peek(privateKeys.item('alice@example.com', 'storage:bookmarks')), undefined, 'kept once, in PEP');
});

test('deleting the account removes what it stored', async () => {
  const h = await node();
  await h.ask(A, 'set', q('<prefs xmlns="exodus:prefs"/>'));
  assert.ok(await h.peek(privateKeys.item('alice@example.com', 'exodus:prefs')));
  h.deleteAccount('alice');
  await h.settle();
  assert.equal(await h.storage.range(privateKeys.of('alice@example.com')), []);
});

test.run();
