// offline (XEP-0160) and the XEP-0203 helper, through the real loader (ModuleSet) over a real LevelDB in
// a temp dir. A small fake user actor runs the hooks as the core does: one message at a time, each
// async hook awaited before the next (the runtime suspends the actor), presence/out before the
// presence module records the presence, module state kept as the actor's snapshot keeps it.
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kvStorage } from '../../src/storage/kv.ts';
import { keys, openDb, type Db } from '../../src/storage/db.ts';
import { x } from '../../src/xml/builder.ts';
import { parseElement } from '../../src/xml/element.ts';
import { addDelayXml, appendChildXml, delayElement, withDelay, xmppDateTime } from '../../src/xmpp/delay.ts';
import { parseJid, type Jid } from '../../src/xmpp/jid.ts';
import { stanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../../src/xmpp/errors.ts';
import type { SessionInfo, StanzaContext, Storage, UserContext } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { parsePriority } from '../../src/xmpp/priority.ts';
import offline, { OFFLINE_BATCH, offlineDisposition, offlineKeys } from '../../src/modules/offline.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { Harness } from '../helpers/module-harness.ts';
import { tempDir } from '../helpers/runtime.ts';

const HOST = 'example.com';
const BARE = 'juliet@example.com';
const SENDER = 'romeo@example.net/orchard';
const T0 = Date.UTC(2024, 2, 1, 8, 0, 0, 123);

class FakeUser {
  readonly jid: Jid = parseJid(BARE);
  readonly sessions = new Map<string, SessionInfo>();
  readonly delivered: Array<{ resource: string; xml: string }> = [];
  readonly routed: string[] = [];
  /** The module state as the actor's snapshot holds it (JSON: mutating without setState is lost). */
  state: Record<string, string> = {};
  clock = T0;
  readonly storage: Storage;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly set: ModuleSet, db: Db) {
    this.storage = kvStorage(db as never);
  }

  /** One actor message: runs after the previous one has settled. */
  private message<T>(f: () => T | Promise<T>): Promise<T> {
    const r = this.chain.then(f);
    this.chain = r.catch(() => undefined);
    return r;
  }

  ctx(): StanzaContext {
    return {
      host: HOST, now: () => this.clock, storage: this.storage,
      route: (s) => { this.routed.push(typeof s === 'string' ? s : String(s)); },
      log: () => {},
    };
  }

  user(): UserContext {
    return {
      jid: this.jid,
      sessions: () => [...this.sessions.values()],
      session: (r) => this.sessions.get(r),
      deliver: async (r, s) => { assert.ok(this.sessions.has(r), `deliver to unbound ${r}`); this.delivered.push({ resource: r, xml: String(s) }); },
      state: <T>(m: string, init: () => T) => (m in this.state ? JSON.parse(this.state[m]!) as T : init()),
      setState: (m, v) => { this.state[m] = JSON.stringify(v); },
      setPresence: (r, presence, priority) => { const s = this.sessions.get(r); if (s) this.sessions.set(r, { ...s, presence, priority }); },
      setInterested: () => {},
    };
  }

  bind(resource: string): void {
    this.sessions.set(resource, { resource, address: `session:${BARE}/${resource}`, presence: null, priority: 0, since: 0, interested: false });
  }

  /** A message the core found undeliverable; resolves to the hook chain's answer. */
  undeliverable(xml: string, handedBack = false): Promise<boolean> {
    const stanza = parseElement(xml);
    const error = (c: StanzaErrorCondition, t?: StanzaErrorType, text?: string) => { this.routed.push(stanzaError(stanza, t ?? null, c, text)!); };
    return this.message(() => this.set.run('message/undeliverable', { ...this.ctx(), stanza, xml, from: parseJid(stanza.attr('from')!), to: parseJid(stanza.attr('to')!), user: this.user(), error, handedBack }));
  }

  /** Presence a session sent: the hooks run, then (as the presence module does) the presence is recorded. */
  presence(resource: string, xml: string): Promise<boolean> {
    const stanza = parseElement(xml);
    const to = stanza.attr('to');
    return this.message(async () => {
      const handled = await this.set.run('presence/out', {
        ...this.ctx(), stanza, xml, from: this.jid.withResource(resource), to: to ? parseJid(to) : this.jid, user: this.user(), resource,
        error: () => { throw new Error('offline never refuses a presence'); },
      });
      if (!to && stanza.attr('type') === undefined) this.user().setPresence(resource, xml, parsePriority(stanza));
      return handled;
    });
  }

  settle(): Promise<unknown> { return this.message(() => undefined); }

  stored(): Promise<Array<[string, string]>> { return this.storage.range<string>(offlineKeys.of(BARE)); }

  bodies(resource?: string): string[] {
    return this.delivered.filter((d) => resource === undefined || d.resource === resource).map((d) => parseElement(d.xml).getChildText('body') ?? '');
  }
}

const msg = (body: string, attrs = 'type="chat"', extra = '') =>
  `<message from="${SENDER}" to="${BARE}" ${attrs} id="m-${body}"><body>${body}</body>${extra}</message>`;
const initial = (priority?: number) => `<presence>${priority === undefined ? '' : `<priority>${priority}</priority>`}</presence>`;

interface World { dir: string; db: Db; set: ModuleSet; u: FakeUser }

async function world(options: Record<string, unknown> = {}, dir = tempDir('chorus-offline-'), account = true): Promise<World> {
  const db = await openDb(dir);
  // Offline storage is only for accounts that exist: the module checks for the account record.
  if (account) await db.put(keys.acct(BARE), { scram: {} } as never, { valueEncoding: 'json' } as never);
  const set = new ModuleSet([HOST]);
  set.add(offline as never, { global: options });
  return { dir, db, set, u: new FakeUser(set, db) };
}
async function done(w: World, keepDir = false): Promise<void> {
  await w.db.close();
  if (!keepDir) rmSync(w.dir, { recursive: true, force: true });
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
  const w = await world();
  const { u } = w;
  assert.ok(await u.undeliverable(msg('one')));
  u.clock += 1000;
  assert.ok(await u.undeliverable(msg('two', '')));
  const rows = await u.stored();
  assert.equal(rows.map(([k]) => k), [offlineKeys.at(BARE, 1), offlineKeys.at(BARE, 2)]);
  assert.match(rows[0]![0], /!0000000000000001$/);
  assert.is(rows[0]![1], msg('one').replace('</message>',
    `<delay xmlns="urn:xmpp:delay" from="${HOST}" stamp="2024-03-01T08:00:00.123Z">Offline Storage</delay></message>`));
  assert.is(parseElement(rows[1]![1]).child('delay', NS.DELAY)!.attr('stamp'), '2024-03-01T08:00:01.123Z');
  assert.equal(u.routed, []);
  await done(w);
});

test('headline, groupchat and error are not handled (the core applies RFC 6121); chat states dropped silently', async () => {
  const w = await world();
  const { u } = w;
  for (const t of ['headline', 'groupchat', 'error']) assert.not.ok(await u.undeliverable(msg('x', `type="${t}"`)), t);
  assert.not.ok(await u.undeliverable(msg('x', 'type="chat"', `<no-store xmlns="${NS.HINTS}"/>`)));
  assert.ok(await u.undeliverable(`<message from="${SENDER}" to="${BARE}" type="chat"><composing xmlns="${NS.CHAT_STATES}"/></message>`));
  assert.ok(await u.undeliverable(msg('kept')));
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['kept']);
  assert.equal(u.routed, []);
  await done(w);
});

test('over the per-account limit the sender gets service-unavailable and nothing more is stored', async () => {
  const w = await world({ max_messages: 2 });
  const { u } = w;
  for (const b of ['1', '2', '3']) void u.undeliverable(msg(b));
  await u.settle();
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['1', '2']);
  assert.is(u.routed.length, 1);
  const err = parseElement(u.routed[0]!);
  assert.equal([err.name, err.attr('type'), err.attr('to'), err.attr('from'), err.attr('id')], ['message', 'error', SENDER, BARE, 'm-3']);
  assert.is(err.child('error')!.attr('type'), 'cancel');
  assert.ok(err.child('error')!.child('service-unavailable', NS.STANZAS));
  // delivering frees room again
  u.bind('phone');
  await u.presence('phone', initial());
  u.sessions.set('phone', { ...u.sessions.get('phone')!, presence: null }); // gone again
  assert.ok(await u.undeliverable(msg('4')));
  assert.is(u.routed.length, 1);
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['4']);
  await done(w);
});

test('mail handed back by an ended session is kept over the limit: it was accepted already (#30.2)', async () => {
  const w = await world({ max_messages: 2 });
  const { u } = w;
  for (const b of ['1', '2']) void u.undeliverable(msg(b));
  void u.undeliverable(msg('3'), true);
  void u.undeliverable(msg('4'));
  await u.settle();
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['1', '2', '3']);
  assert.equal(u.routed.map((x) => parseElement(x).attr('id')), ['m-4'], 'only the new message is refused');
  await done(w);
});

test('a limit of 0 stores nothing and bounces everything', async () => {
  const w = await world({ max_messages: 0 });
  assert.ok(await w.u.undeliverable(msg('a')));
  assert.equal(await w.u.stored(), []);
  assert.is(w.u.routed.length, 1);
  await done(w);
});

test('a message replayed after a crash (state from the last snapshot) is stored under the same key, once', async () => {
  const w = await world();
  const { u } = w;
  await u.undeliverable(msg('a'));
  const snapshot = { ...u.state };
  await u.undeliverable(msg('b'));
  u.state = snapshot; // the actor crashed after the write, before its snapshot was saved: 'b' comes again
  await u.undeliverable(msg('b'));
  assert.equal((await u.stored()).map(([k, v]) => [k, parseElement(v).getChildText('body')]), [[offlineKeys.at(BARE, 1), 'a'], [offlineKeys.at(BARE, 2), 'b']]);
  await done(w);
});

// ---- delivery -------------------------------------------------------------------------------------

test('initial presence (priority >= 0) gets every stored message in order, with stamps; then they are gone', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['one', 'two', 'three']) { await u.undeliverable(msg(b)); u.clock += 10; }
  u.bind('balcony');
  assert.not.ok(await u.presence('balcony', initial(0)), 'presence/out must go on to the presence module');
  assert.equal(u.bodies('balcony'), ['one', 'two', 'three']);
  assert.equal(u.delivered.map((d) => parseElement(d.xml).child('delay', NS.DELAY)!.attr('stamp')),
    ['2024-03-01T08:00:00.123Z', '2024-03-01T08:00:00.133Z', '2024-03-01T08:00:00.143Z']);
  assert.equal(await u.stored(), []);
  // a presence update of an available resource is not a new availability: nothing new happens
  await u.undeliverable(msg('four'));
  await u.presence('balcony', initial(1));
  assert.is(u.delivered.length, 3);
  await done(w);
});

test('not on negative priority, directed presence or an update; yes once a negative priority turns non-negative', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['a', 'b']) await u.undeliverable(msg(b));
  u.bind('low');
  await u.presence('low', initial(-1));
  u.bind('directed');
  await u.presence('directed', `<presence to="room@conference.example.com/nick"/>`);
  u.bind('updating');
  u.sessions.set('updating', { ...u.sessions.get('updating')!, presence: '<presence/>' });
  await u.presence('updating', initial(5));
  assert.equal(u.delivered, []);
  assert.is((await u.stored()).length, 2);
  // RFC 6121 §8.5.2.2.1: 'low' becomes a candidate for delivery
  await u.presence('low', initial(0));
  assert.equal(u.delivered.map((d) => d.resource), ['low', 'low']);
  assert.equal(u.bodies(), ['a', 'b']);
  await done(w);
});

test(`more than one batch (${OFFLINE_BATCH}) is delivered whole and in order`, async () => {
  const w = await world();
  const { u } = w;
  const n = OFFLINE_BATCH * 2 + 7;
  for (let i = 1; i <= n; i++) void u.undeliverable(msg(String(i)));
  u.bind('phone');
  await u.presence('phone', initial());
  assert.equal(u.bodies('phone'), Array.from({ length: n }, (_, i) => String(i + 1)));
  assert.equal(await u.stored(), []);
  await done(w);
});

test('storage survives a restart, and numbering continues after the stored messages', async () => {
  const dir = tempDir('chorus-offline-');
  const w1 = await world({}, dir);
  for (const b of ['before-1', 'before-2']) await w1.u.undeliverable(msg(b));
  await done(w1, true);

  const w2 = await world({}, dir); // new DB handle, new ModuleSet, no actor state
  const { u } = w2;
  await u.undeliverable(msg('after'));
  assert.equal((await u.stored()).map(([k]) => k), [1, 2, 3].map((n) => offlineKeys.at(BARE, n)));
  u.bind('phone');
  await u.presence('phone', initial());
  assert.equal(u.bodies('phone'), ['before-1', 'before-2', 'after']);
  await done(w2);
});

test('a message for an account that does not exist is not stored: the sender gets service-unavailable', async () => {
  const w = await world({}, undefined, false);
  assert.ok(await w.u.undeliverable(msg('to nobody')));
  assert.equal(await w.u.stored(), []);
  assert.is(w.u.routed.length, 1);
  assert.match(w.u.routed[0]!, /type="error"[\s\S]*<service-unavailable/);
  await done(w);
});

// ---- with the real presence module ------------------------------------------------------------------

test('with roster and presence loaded: stored messages reach the initial presence, in order, under shuffled storage timing', async () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const h = new Harness([roster, presence, offline], { seed });
    const full = `${BARE}/phone`;
    const stored = ['one', 'two', 'three'].map((b, i) => addDelayXml(msg(b), HOST, T0 + i));
    for (const [i, xml] of stored.entries()) await h.storage.put(offlineKeys.at(BARE, i + 1), xml);
    h.bind(`${BARE}/low`);
    h.send(`${BARE}/low`, '<presence><priority>-1</priority></presence>');
    await h.settle();
    assert.equal(h.received(`${BARE}/low`).filter((e) => e.name === 'message'), [], `seed ${seed}: negative priority`);
    h.bind(full);
    h.send(full, '<presence/>');
    await h.settle();
    const got = h.received(full);
    assert.equal(got.filter((e) => e.name === 'message').map((e) => e.getChildText('body')), ['one', 'two', 'three'], `seed ${seed}`);
    assert.ok(got.some((e) => e.name === 'presence'), `seed ${seed}: the presence module still ran`);
    assert.ok(h.session(full)!.presence !== null, `seed ${seed}: presence recorded`);
    assert.equal(await h.storage.range(offlineKeys.of(BARE)), [], `seed ${seed}: deleted`);
    assert.equal(h.unhandled, [], `seed ${seed}`);
  }
});

test('declares XEP-0160 and XEP-0203, feature msgoffline; the limit option is validated', () => {
  assert.equal(offline.xeps?.map((d) => d.xep), [160, 203]);
  assert.equal(offline.features?.host, ['msgoffline']);
  assert.throws(() => new ModuleSet([HOST]).add(offline as never, { global: { max_messages: -1 } }), /max_messages: must be at least 0/);
});

test.run();
