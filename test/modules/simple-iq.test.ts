// ping (XEP-0199), version (XEP-0092) and time (XEP-0202) on the real core (test/helpers/core.ts):
// a client sends the IQ to its server over its session and reads the reply it is delivered.
import { readFileSync } from 'node:fs';
import { release, type } from 'node:os';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { XmlElement } from '../../src/xml/element.ts';
import type { ModuleDefinition } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xml/namespaces.ts';
import ping from '../../src/modules/ping.ts';
import version from '../../src/modules/version.ts';
import time from '../../src/modules/time.ts';
import { Core } from '../helpers/core.ts';

const HOST = 'example.com';
const FROM = 'juliet@example.com/balcony';

function load(defs: Array<[ModuleDefinition<any>, Record<string, unknown>?]>): ModuleSet {
  const set = new ModuleSet([HOST]);
  for (const [d, o] of defs) set.add(d as ModuleDefinition, { global: o ?? {} });
  return set;
}

/** A core with these modules and juliet online. */
async function node(defs: Array<[ModuleDefinition<any>, Record<string, unknown>?]>): Promise<Core> {
  const h = await Core.start(defs.map(([d]) => d), { options: Object.fromEntries(defs.map(([d, o]) => [d.name, o ?? {}])) });
  h.bind(FROM);
  await h.settle();
  return h;
}

/** juliet asks her server; the one answer she gets. */
async function ask(h: Core, type: 'get' | 'set', payload: string): Promise<XmlElement> {
  const r = await h.ask(FROM, type, payload, HOST);
  assert.is(h.received(FROM).length, 1, 'exactly one answer');
  h.clear();
  return r;
}

function errorOf(reply: XmlElement): { type: string | undefined; condition: string } {
  assert.is(reply.attr('type'), 'error');
  const err = reply.child('error')!;
  const cond = err.getChildren().find((c) => c.getXmlns() === NS.STANZAS && c.localName !== 'text')!;
  return { type: err.attr('type'), condition: cond.localName };
}

test('ping: a get to the server gets an empty result, addressed back to the sender', async () => {
  const r = await ask(await node([[ping]]), 'get', `<ping xmlns="${NS.PING}"/>`);
  assert.is(r.attr('type'), 'result');
  assert.match(r.attr('id') ?? '', /^iq\d+$/);
  assert.is(r.attr('to'), FROM);
  assert.is(r.attr('from'), HOST);
  assert.is(r.children.length, 0);
});

test('ping, version, time: a set is refused with not-allowed (cancel)', async () => {
  const h = await node([[ping], [version], [time]]);
  for (const payload of [`<ping xmlns="${NS.PING}"/>`, `<query xmlns="${NS.VERSION}"/>`, `<time xmlns="${NS.TIME}"/>`]) {
    assert.equal(errorOf(await ask(h, 'set', payload)), { type: 'cancel', condition: 'not-allowed' }, payload);
  }
});

test('each declares its XEP and its host feature, and registers nothing for other targets', () => {
  assert.equal([ping.xeps?.[0]?.xep, version.xeps?.[0]?.xep, time.xeps?.[0]?.xep], [199, 92, 202]);
  const set = load([[ping], [version], [time]]);
  assert.equal([...set.hostFeatures].sort(), [NS.VERSION, NS.TIME, NS.PING].sort());
  assert.equal([...set.accountFeatures], []);
  // no 'self' handlers: the core falls back to the host ones
  for (const ns of [NS.PING, NS.VERSION, NS.TIME]) assert.is(set.iqHandler('get', 'self', ns), undefined, ns);
});

test('version: name Chorus and the package.json version; no OS unless show_os', async () => {
  const pkgVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const q = (await ask(await node([[version]]), 'get', `<query xmlns="${NS.VERSION}"/>`)).child('query', NS.VERSION)!;
  assert.ok(q, 'a jabber:iq:version query');
  assert.is(q.getChildText('name', NS.VERSION), 'Chorus');
  assert.is(q.getChildText('version', NS.VERSION), pkgVersion);
  assert.is(q.child('os'), undefined);
  assert.equal(q.getChildren().map((c) => c.localName), ['name', 'version']);

  const withOs = (await ask(await node([[version, { show_os: true }]]), 'get', `<query xmlns="${NS.VERSION}"/>`)).child('query', NS.VERSION)!;
  assert.is(withOs.getChildText('os', NS.VERSION), `${type()} ${release()}`);
});

test('version: a bad option value is a config error', () => {
  assert.throws(() => load([[version, { show_os: 'yes' }]]), /modules\.options\.version\.show_os: expected true or false/);
});

test('time: utc and tzo per XEP-0082 from the context clock, in several time zones', async () => {
  const saved = process.env.TZ;
  try {
    const h = await node([[time]]);
    const cases: Array<[string, number, string]> = [
      ['UTC', Date.UTC(2024, 0, 15, 9, 30, 5, 250), '+00:00'],
      ['Asia/Kolkata', Date.UTC(2024, 0, 15, 9, 30, 5, 0), '+05:30'],
      ['America/New_York', Date.UTC(2024, 6, 1, 12, 0, 0, 0), '-04:00'], // daylight saving time
      ['America/New_York', Date.UTC(2024, 0, 1, 12, 0, 0, 0), '-05:00'],
      ['America/St_Johns', Date.UTC(2024, 0, 1, 12, 0, 0, 0), '-03:30'],
    ];
    for (const [tz, at, tzo] of cases) {
      process.env.TZ = tz;
      h.clock = at;
      const t = (await ask(h, 'get', `<time xmlns="${NS.TIME}"/>`)).child('time', NS.TIME)!;
      assert.ok(t, 'a urn:xmpp:time element');
      assert.is(t.getChildText('tzo', NS.TIME), tzo, tz);
      const utc = t.getChildText('utc', NS.TIME)!;
      assert.match(utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.is(Date.parse(utc), at, tz);
    }
  } finally {
    if (saved === undefined) delete process.env.TZ; else process.env.TZ = saved;
  }
});

test.run();
