// offline (XEP-0160) and the XEP-0203 helper, through the real loader (ModuleSet) over a real LevelDB in
// a temp dir. A small fake user actor runs the hooks as the core does (presence/out before the presence
// module records the presence) and hands `later` messages back to the module's onLater, one at a time.
// `settle()` is exact, not a sleep: it waits until no storage call is in flight and no later message
// is queued.
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kvStorage } from '../../src/storage/kv.ts';
import { keys, openDb, type Db } from '../../src/storage/db.ts';
import { x } from '../../src/xml/builder.ts';
import { parseElement } from '../../src/xml/element.ts';
import { addDelayXml, appendChildXml, delayElement, withDelay, xmppDateTime } from '../../src/xmpp/delay.ts';
import { parseJid, type Jid } from '../../src/xmpp/jid.ts';
import type { MessageEvent, SessionInfo, StanzaContext, Storage, UserContext } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xmpp/namespaces.ts';
import offline, { OFFLINE_BATCH, offlineDisposition } from '../../src/modules/offline.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import { Harness } from '../helpers/module-harness.ts';
import { tempDir } from '../helpers/runtime.ts';

const HOST = 'example.com';
const BARE = 'juliet@example.com';
const SENDER = 'romeo@example.net/orchard';
const T0 = Date.UTC(2024, 2, 1, 8, 0, 0, 123);

/** Storage that counts calls in flight, so tests can wait for the module's chain to go quiet. */
function counting(inner: Storage): Storage & { inflight(): number } {
  let n = 0;
  const track = <T>(p: Promise<T>): Promise<T> => { n++; return p.finally(() => { n--; }); };
  return {
    inflight: () => n,
    get: (k) => track(inner.get(k)),
    put: (k, v) => track(inner.put(k, v)),
    del: (k) => track(inner.del(k)),
    range: (p, o) => track(inner.range(p, o)),
    batch: (ops) => track(inner.batch(ops)),
  };
}

class FakeUser {
  readonly jid: Jid = parseJid(BARE);
  readonly sessions = new Map<string, SessionInfo>();
  readonly delivered: Array<{ resource: string; xml: string }> = [];
  readonly routed: string[] = [];
  readonly logs: string[] = [];
  readonly laters: unknown[] = [];
  kept = 0;
  released = 0;
  clock = T0;
  readonly storage: ReturnType<typeof counting>;

  constructor(readonly set: ModuleSet, db: Db) {
    this.storage = counting(kvStorage(db as never));
  }

  ctx(): StanzaContext {
    return {
      host: HOST, now: () => this.clock, storage: this.storage,
      route: (s) => { this.routed.push(typeof s === 'string' ? s : String(s)); },
      log: (level, text) => { this.logs.push(`${level}: ${text}`); },
      later: (module) => { assert.is(module, 'offline'); return (data) => { this.laters.push(data); }; },
      keep: () => { this.kept++; let done = false; return () => { assert.not.ok(done, 'released twice'); done = true; this.released++; }; },
    };
  }

  user(): UserContext {
    return {
      jid: this.jid,
      sessions: () => [...this.sessions.values()],
      session: (r) => this.sessions.get(r),
      deliver: (r, s) => { assert.ok(this.sessions.has(r), `deliver to unbound ${r}`); this.delivered.push({ resource: r, xml: String(s) }); },
      state: () => { throw new Error('offline keeps no actor state'); },
      setState: () => { throw new Error('offline keeps no actor state'); },
      setSessionFeature: () => {},
      setPresence: (r, presence, priority) => { const s = this.sessions.get(r); if (s) this.sessions.set(r, { ...s, presence, priority }); },
      setInterested: () => {},
    };
  }

  bind(resource: string): void {
    this.sessions.set(resource, { resource, address: `session:${BARE}/${resource}`, presence: null, priority: 0, interested: false, features: {} });
    this.set.run('session/bound', { ...this.ctx(), user: this.user(), resource });
  }

  unbind(resource: string): void {
    this.set.run('session/unbound', { ...this.ctx(), user: this.user(), resource });
    this.sessions.delete(resource);
  }

  /** A message the core found undeliverable; returns the hook chain's answer. */
  undeliverable(xml: string): boolean {
    const stanza = parseElement(xml);
    const ev: MessageEvent = { ...this.ctx(), stanza, xml, from: parseJid(stanza.attr('from')!), to: parseJid(stanza.attr('to')!), user: this.user() };
    return this.set.run('message/undeliverable', ev);
  }

  /** Presence a session sent: the hooks run, then (as the presence module does) the presence is
   *  recorded — unless `record` is false: the real presence module records it after async work. */
  presence(resource: string, xml: string, record = true): boolean {
    const stanza = parseElement(xml);
    const to = stanza.attr('to');
    const handled = this.set.run('presence/out', {
      ...this.ctx(), stanza, xml, from: this.jid.withResource(resource), to: to ? parseJid(to) : this.jid, user: this.user(), resource,
    });
    if (!to && record) this.record(resource, xml);
    return handled;
  }

  /** What the presence module does once it has handled a presence. */
  record(resource: string, xml: string): void {
    const stanza = parseElement(xml);
    {
      const type = stanza.attr('type');
      if (type === undefined) this.user().setPresence(resource, xml, Number(stanza.getChildText('priority') ?? 0));
      else if (type === 'unavailable') this.user().setPresence(resource, null, 0);
    }
  }

  /** Runs later messages, as the actor would, until nothing is queued or in flight. */
  async settle(): Promise<void> {
    for (let spins = 0; spins < 100_000; spins++) {
      await new Promise((r) => setImmediate(r));
      if (this.laters.length) {
        const data = this.laters.shift();
        this.set.later('offline')!(data, { ...this.ctx(), user: this.user() });
      } else if (this.storage.inflight() === 0) {
        await new Promise((r) => setImmediate(r));
        if (this.laters.length === 0 && this.storage.inflight() === 0) return;
      }
    }
    throw new Error('offline never settled');
  }

  async stored(): Promise<Array<[string, string]>> {
    return kvStorageRange(this.storage);
  }

  bodies(resource?: string): string[] {
    return this.delivered.filter((d) => resource === undefined || d.resource === resource).map((d) => parseElement(d.xml).getChildText('body') ?? '');
  }
}

const kvStorageRange = (s: Storage) => s.range<string>(keys.offlineOf(BARE));

const msg = (body: string, attrs = 'type="chat"', extra = '') =>
  `<message from="${SENDER}" to="${BARE}" ${attrs} id="m-${body}"><body>${body}</body>${extra}</message>`;
const initial = (priority?: number) => `<presence>${priority === undefined ? '' : `<priority>${priority}</priority>`}</presence>`;

interface World { dir: string; db: Db; set: ModuleSet; u: FakeUser }

async function world(options: Record<string, unknown> = {}, dir = tempDir('chorus-offline-'), account = true): Promise<World> {
  const db = await openDb(dir);
  // Offline storage is only for accounts that exist: the module checks for the account record.
  if (account) await db.put(keys.acct(BARE), { scram: {} } as never, { valueEncoding: 'json' } as never);
  const set = new ModuleSet([HOST]);
  set.add(offline as never, options);
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

test('undeliverable chat stored with a delay stamp, 16-digit keys; the durable stanza kept until written', async () => {
  const w = await world();
  const { u } = w;
  assert.ok(u.undeliverable(msg('one')));
  u.clock += 1000;
  assert.ok(u.undeliverable(msg('two', '')));
  assert.is(u.kept, 2);
  assert.is(u.released, 0, 'not released before the write');
  await u.settle();
  assert.is(u.released, 2);
  const rows = await u.stored();
  assert.equal(rows.map(([k]) => k), [keys.offline(BARE, 1), keys.offline(BARE, 2)]);
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
  for (const t of ['headline', 'groupchat', 'error']) assert.not.ok(u.undeliverable(msg('x', `type="${t}"`)), t);
  assert.not.ok(u.undeliverable(msg('x', 'type="chat"', `<no-store xmlns="${NS.HINTS}"/>`)));
  assert.ok(u.undeliverable(`<message from="${SENDER}" to="${BARE}" type="chat"><composing xmlns="${NS.CHAT_STATES}"/></message>`));
  assert.ok(u.undeliverable(msg('kept')));
  await u.settle();
  const rows = await u.stored();
  assert.equal(rows.map(([, v]) => parseElement(v).getChildText('body')), ['kept']);
  assert.equal([u.kept, u.released], [1, 1]);
  assert.equal(u.routed, []);
  await done(w);
});

test('over the per-account limit the sender gets service-unavailable and nothing more is stored', async () => {
  const w = await world({ max_messages: 2 });
  const { u } = w;
  for (const b of ['1', '2', '3']) assert.ok(u.undeliverable(msg(b)));
  await u.settle();
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['1', '2']);
  assert.is(u.routed.length, 1);
  const err = parseElement(u.routed[0]!);
  assert.equal([err.name, err.attr('type'), err.attr('to'), err.attr('from'), err.attr('id')], ['message', 'error', SENDER, BARE, 'm-3']);
  assert.is(err.child('error')!.attr('type'), 'cancel');
  assert.ok(err.child('error')!.child('service-unavailable', NS.STANZAS));
  assert.equal([u.kept, u.released], [3, 3]);
  // delivering frees room again
  u.bind('phone');
  u.presence('phone', initial());
  await u.settle();
  assert.ok(u.undeliverable(msg('4')));
  await u.settle();
  assert.is(u.routed.length, 1);
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['4']);
  await done(w);
});

test('a limit of 0 stores nothing and bounces everything', async () => {
  const w = await world({ max_messages: 0 });
  assert.ok(w.u.undeliverable(msg('a')));
  await w.u.settle();
  assert.equal(await w.u.stored(), []);
  assert.is(w.u.routed.length, 1);
  await done(w);
});

// ---- delivery -------------------------------------------------------------------------------------

test('initial presence (priority >= 0) gets every stored message in order, with stamps; then they are gone', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['one', 'two', 'three']) { assert.ok(u.undeliverable(msg(b))); u.clock += 10; }
  await u.settle();
  u.bind('balcony');
  assert.not.ok(u.presence('balcony', initial(0)), 'presence/out must go on to the presence module');
  await u.settle();
  assert.equal(u.bodies('balcony'), ['one', 'two', 'three']);
  assert.equal(u.delivered.map((d) => parseElement(d.xml).child('delay', NS.DELAY)!.attr('stamp')),
    ['2024-03-01T08:00:00.123Z', '2024-03-01T08:00:00.133Z', '2024-03-01T08:00:00.143Z']);
  assert.equal(await u.stored(), []);
  // a later presence update is not initial: nothing new happens
  assert.ok(u.undeliverable(msg('four')));
  await u.settle();
  u.presence('balcony', initial(1));
  await u.settle();
  assert.is(u.delivered.length, 3);
  await done(w);
});

test('not on negative priority, not on directed presence, not on a presence update', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['a', 'b']) u.undeliverable(msg(b));
  await u.settle();
  u.bind('low');
  u.presence('low', initial(-1));
  await u.settle();
  u.bind('directed');
  u.presence('directed', `<presence to="room@conference.example.com/nick"/>`);
  await u.settle();
  u.bind('updating');
  u.sessions.set('updating', { ...u.sessions.get('updating')!, presence: '<presence/>' });
  u.presence('updating', initial(5));
  await u.settle();
  assert.equal(u.delivered, []);
  assert.is((await u.stored()).length, 2);
  // the first real initial presence with priority >= 0 takes them
  u.bind('desk');
  u.presence('desk', initial(0));
  await u.settle();
  assert.equal(u.delivered.map((d) => d.resource), ['desk', 'desk']);
  assert.equal(u.bodies(), ['a', 'b']);
  await done(w);
});

test('a message stored while a delivery is under way follows the older ones to the same resource', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['1', '2', '3']) u.undeliverable(msg(b));
  await u.settle();
  u.bind('phone');
  u.presence('phone', initial());
  // the read of the stored messages is in flight: these are queued behind it
  assert.ok(u.undeliverable(msg('4')));
  assert.ok(u.undeliverable(msg('5')));
  await u.settle();
  assert.equal(u.bodies('phone'), ['1', '2', '3', '4', '5']);
  assert.equal(await u.stored(), []);
  assert.equal([u.kept, u.released], [5, 5]);
  await done(w);
});

test(`more than one batch (${OFFLINE_BATCH}) is delivered whole and in order`, async () => {
  const w = await world();
  const { u } = w;
  const n = OFFLINE_BATCH * 2 + 7;
  for (let i = 0; i < n; i++) u.undeliverable(msg(String(i)));
  await u.settle();
  assert.is((await u.stored()).length, n);
  u.bind('phone');
  u.presence('phone', initial());
  await u.settle();
  assert.equal(u.bodies('phone'), Array.from({ length: n }, (_, i) => String(i)));
  assert.equal(await u.stored(), []);
  await done(w);
});

test('unavailable or unbind before the read completes: nothing delivered, nothing lost', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['a', 'b']) u.undeliverable(msg(b));
  await u.settle();
  u.bind('flaky');
  u.presence('flaky', initial());
  u.presence('flaky', '<presence type="unavailable"/>');
  await u.settle();
  u.bind('gone');
  u.presence('gone', initial());
  u.unbind('gone');
  await u.settle();
  assert.equal(u.delivered, []);
  assert.is((await u.stored()).length, 2);
  // ... and the next initial presence still gets them
  u.presence('flaky', initial());
  await u.settle();
  assert.equal(u.bodies('flaky'), ['a', 'b']);
  await done(w);
});

test('presence recorded after the delivery (async presence module): messages stored meanwhile reach that resource', async () => {
  const w = await world();
  const { u } = w;
  u.undeliverable(msg('a'));
  await u.settle();
  u.bind('phone');
  u.presence('phone', initial(), false);
  await u.settle();
  assert.equal(u.bodies('phone'), ['a']);
  // the core still sees no available resource: undeliverable, but phone is coming online
  assert.ok(u.undeliverable(msg('b')));
  assert.ok(u.undeliverable(msg('c')));
  await u.settle();
  assert.equal(u.bodies('phone'), ['a', 'b', 'c']);
  assert.equal(await u.stored(), []);
  // once the presence is recorded (seen at the next presence), the delivery is over
  u.record('phone', initial());
  u.presence('phone', initial(3));
  assert.ok(u.undeliverable(msg('d'))); // e.g. the core found no candidate for another reason
  await u.settle();
  assert.equal(u.bodies('phone'), ['a', 'b', 'c']);
  assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['d']);
  await done(w);
});

test('a waiting delivery ends on a negative priority, unavailable or unbind of its resource', async () => {
  const ends: Array<[string, (u: FakeUser) => void]> = [
    ['negative priority', (u) => u.presence('phone', initial(-5), false)],
    ['unavailable', (u) => u.presence('phone', '<presence type="unavailable"/>', false)],
    ['unbind', (u) => u.unbind('phone')],
  ];
  for (const [what, end] of ends) {
    const w = await world();
    const { u } = w;
    u.undeliverable(msg('a'));
    await u.settle();
    u.bind('phone');
    u.presence('phone', initial(), false);
    await u.settle();
    assert.equal(u.bodies('phone'), ['a'], what);
    end(u);
    assert.ok(u.undeliverable(msg('b')));
    await u.settle();
    assert.equal(u.bodies(), ['a'], what);
    assert.equal((await u.stored()).map(([, v]) => parseElement(v).getChildText('body')), ['b'], what);
    await done(w);
  }
});

test('two resources coming online together: the first gets the messages, once', async () => {
  const w = await world();
  const { u } = w;
  for (const b of ['a', 'b']) u.undeliverable(msg(b));
  await u.settle();
  u.bind('one');
  u.bind('two');
  u.presence('one', initial());
  u.presence('two', initial());
  await u.settle();
  assert.equal(u.delivered.map((d) => `${d.resource}:${parseElement(d.xml).getChildText('body')}`), ['one:a', 'one:b']);
  await done(w);
});

test('storage survives a restart, and numbering continues after the stored messages', async () => {
  const dir = tempDir('chorus-offline-');
  const w1 = await world({}, dir);
  for (const b of ['before-1', 'before-2']) w1.u.undeliverable(msg(b));
  await w1.u.settle();
  await done(w1, true);

  const w2 = await world({}, dir); // new DB handle, new ModuleSet: nothing in memory
  const { u } = w2;
  u.undeliverable(msg('after'));
  await u.settle();
  assert.equal((await u.stored()).map(([k]) => k), [1, 2, 3].map((n) => keys.offline(BARE, n)));
  u.bind('phone');
  u.presence('phone', initial());
  await u.settle();
  assert.equal(u.bodies('phone'), ['before-1', 'before-2', 'after']);
  await done(w2);
});

// ---- with the real presence module (which records presence only after its own async roster load) ----

test('a message for an account that does not exist is not stored: the sender gets service-unavailable', async () => {
  const w = await world({}, undefined, false);
  assert.ok(w.u.undeliverable(msg('to nobody')));
  await w.u.settle();
  assert.equal(await w.u.stored(), []);
  assert.is(w.u.routed.length, 1);
  assert.match(w.u.routed[0]!, /type="error"[\s\S]*<service-unavailable/);
  assert.is(w.u.released, w.u.kept, 'the durable stanza is released');
  await done(w);
});

test('with roster and presence loaded: stored messages reach the initial presence, in order, under shuffled storage timing', async () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const h = new Harness([roster, presence, offline], { seed });
    const full = `${BARE}/phone`;
    const stored = ['one', 'two', 'three'].map((b, i) => addDelayXml(msg(b), HOST, T0 + i));
    for (const [i, xml] of stored.entries()) await h.storage.put(keys.offline(BARE, i + 1), xml);
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
    assert.equal(await h.storage.range(keys.offlineOf(BARE)), [], `seed ${seed}: deleted`);
    assert.equal(h.unhandled, [], `seed ${seed}`);
  }
});

test('declares XEP-0160 and XEP-0203, feature msgoffline; the limit option is validated', () => {
  assert.equal(offline.xeps?.map((d) => d.xep), [160, 203]);
  assert.equal(offline.features?.host, ['msgoffline']);
  assert.throws(() => new ModuleSet([HOST]).add(offline as never, { max_messages: -1 }), /max_messages: must be at least 0/);
});

test.run();
