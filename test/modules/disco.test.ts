// disco (XEP-0030) through the real loader (ModuleSet) and a fake IqRequest; the module reads the
// loaded modules' features through the loader's `features()`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serialize } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { iqResultElement, stanzaErrorElement } from '../../src/xmpp/errors.ts';
import { parseJid } from '../../src/xmpp/jid.ts';
import { defineModule, type IqRequest, type ModuleDefinition, type Storage } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xml/namespaces.ts';
import disco from '../../src/modules/disco.ts';
import ping from '../../src/modules/ping.ts';
import version from '../../src/modules/version.ts';
import time from '../../src/modules/time.ts';
import offline from '../../src/modules/offline.ts';

const HOST = 'example.com';
const USER = 'juliet@example.com';
const FROM = `${USER}/balcony`;

const noStorage = new Proxy({} as Storage, { get: () => { throw new Error('disco must not touch storage'); } });

/** A fake module with account features, as PEP or MAM would declare. */
const accounty = defineModule({
  name: 'accounty',
  description: 'test module with host and account features',
  features: { host: ['urn:test:host-only'], account: ['urn:test:account', 'urn:xmpp:mam:2'] },
  setup() {},
});

/** Loads disco first (so it cannot have seen the others at setup time), then the rest. */
function load(others: ModuleDefinition<any>[], discoOptions: Record<string, unknown> = {}): ModuleSet {
  const set = new ModuleSet([HOST]);
  set.add(disco as ModuleDefinition, { global: discoOptions });
  for (const d of others) set.add(d as ModuleDefinition);
  return set;
}

interface Asked { reply: XmlElement; logs: string[] }

function ask(set: ModuleSet, type: 'get' | 'set', target: 'host' | 'self' | 'bare', payload: string): Asked {
  const to = target === 'host' ? HOST : USER;
  const from = target === 'bare' ? 'romeo@example.net/orchard' : FROM;
  const stanza = parseElement(`<iq type="${type}" id="d1" from="${from}" to="${to}">${payload}</iq>`);
  const p = stanza.getChildren()[0]!;
  const handler = set.iqHandler(type, target, p.getXmlns());
  if (!handler) throw new Error(`no handler for ${type}/${target}/${p.getXmlns()}`);
  const out: XmlElement[] = [];
  const logs: string[] = [];
  const req: IqRequest = {
    host: HOST, now: () => Date.now(), route: () => { throw new Error('unexpected route'); }, storage: noStorage,
    log: (level, text) => { logs.push(`${level}: ${text}`); },
    stanza, payload: p, from: parseJid(from), to: parseJid(to), type,
    reply: (pl) => { out.push(iqResultElement(stanza, pl)); },
    error: (c, t, text) => { out.push(stanzaErrorElement(stanza, t ?? null, c, text)!); },
  };
  handler(req);
  assert.is(out.length, 1, 'exactly one answer');
  return { reply: parseElement(serialize(out[0]!)), logs };
}

const features = (q: XmlElement) => q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attr('var')!);
const identities = (q: XmlElement) => q.getChildren('identity', NS.DISCO_INFO).map((i) => ({ ...i.attrs }));

function condition(reply: XmlElement): string {
  assert.is(reply.attr('type'), 'error');
  return reply.child('error')!.getChildren().find((c) => c.getXmlns() === NS.STANZAS)!.localName;
}

test('server disco#info: identity server/im and the features of every loaded module, each once', () => {
  const set = load([ping, version, time, offline, accounty]);
  const { reply, logs } = ask(set, 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`);
  assert.is(reply.attr('type'), 'result');
  assert.is(reply.attr('to'), FROM);
  const q = reply.child('query', NS.DISCO_INFO)!;
  assert.ok(q);
  assert.is(q.attr('node'), undefined);
  assert.equal(identities(q), [{ category: 'server', type: 'im', name: 'Chorus' }]);
  const f = features(q);
  assert.equal(f, [...new Set(f)], 'no duplicates');
  assert.equal([...f].sort(), [
    NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING, NS.VERSION, NS.TIME, 'msgoffline', 'urn:test:host-only',
  ].sort());
  assert.equal(logs, []);
});

test('server disco#info follows what is loaded: without offline there is no msgoffline', () => {
  const f = features(ask(load([ping]), 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`).reply.child('query', NS.DISCO_INFO)!);
  assert.equal([...f].sort(), [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING].sort());
});

test('the server identity name is an option', () => {
  const q = ask(load([], { name: 'Capulet IM' }), 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`).reply.child('query', NS.DISCO_INFO)!;
  assert.equal(identities(q), [{ category: 'server', type: 'im', name: 'Capulet IM' }]);
});

test('account disco#info (bare JID and self): account/registered and account features only', () => {
  const set = load([ping, offline, accounty]);
  for (const target of ['bare', 'self'] as const) {
    const { reply } = ask(set, 'get', target, `<query xmlns="${NS.DISCO_INFO}"/>`);
    assert.is(reply.attr('type'), 'result', target);
    assert.is(reply.attr('from'), USER, target);
    const q = reply.child('query', NS.DISCO_INFO)!;
    assert.equal(identities(q), [{ category: 'account', type: 'registered' }], target);
    assert.equal([...features(q)].sort(), [NS.DISCO_INFO, 'urn:test:account', 'urn:xmpp:mam:2'].sort(), target);
  }
});

test('disco#items: the configured services on the server, none on an account', () => {
  const empty = ask(load([]), 'get', 'host', `<query xmlns="${NS.DISCO_ITEMS}"/>`).reply;
  assert.is(empty.attr('type'), 'result');
  assert.equal(empty.child('query', NS.DISCO_ITEMS)!.getChildren(), []);

  const set = load([], { items: ['conference.example.com', 'upload.example.com'] });
  const q = ask(set, 'get', 'host', `<query xmlns="${NS.DISCO_ITEMS}"/>`).reply.child('query', NS.DISCO_ITEMS)!;
  assert.equal(q.getChildren('item', NS.DISCO_ITEMS).map((i) => ({ ...i.attrs })), [{ jid: 'conference.example.com' }, { jid: 'upload.example.com' }]);

  for (const target of ['bare', 'self'] as const) {
    const r = ask(set, 'get', target, `<query xmlns="${NS.DISCO_ITEMS}"/>`).reply;
    assert.is(r.attr('type'), 'result', target);
    assert.equal(r.child('query', NS.DISCO_ITEMS)!.getChildren(), [], target);
  }
});

test('an invalid JID in items is a config error at load', () => {
  assert.throws(() => load([], { items: ['not a jid@'] }), /modules\.options\.disco\.items \(for [^)]+\): 'not a jid@' is not a valid JID/);
  assert.throws(() => load([], { items: 'conference.example.com' }), /expected a list of strings/);
});

test('an unknown node is item-not-found, for info and items, server and account', () => {
  const set = load([ping], { items: ['conference.example.com'] });
  for (const ns of [NS.DISCO_INFO, NS.DISCO_ITEMS]) {
    for (const target of ['host', 'bare', 'self'] as const) {
      const { reply } = ask(set, 'get', target, `<query xmlns="${ns}" node="urn:xmpp:commands"/>`);
      assert.is(condition(reply), 'item-not-found', `${target} ${ns}`);
      assert.is(reply.child('error')!.attr('type'), 'cancel');
    }
  }
});

test('a set to disco#info or disco#items is not-allowed', () => {
  const set = load([]);
  for (const ns of [NS.DISCO_INFO, NS.DISCO_ITEMS]) {
    for (const target of ['host', 'bare', 'self'] as const) {
      assert.is(condition(ask(set, 'set', target, `<query xmlns="${ns}"/>`).reply), 'not-allowed', `${target} ${ns}`);
    }
  }
});

test.run();
