// disco (XEP-0030) on the real core (test/helpers/core.ts): clients ask the server, their own account
// and another account; the module reads the loaded modules' features through the loader's `features()`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { XmlElement } from '../../src/xml/element.ts';
import { defineModule, type ModuleDefinition } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { NS } from '../../src/xml/namespaces.ts';
import disco from '../../src/modules/disco.ts';
import ping from '../../src/modules/ping.ts';
import version from '../../src/modules/version.ts';
import time from '../../src/modules/time.ts';
import offline from '../../src/modules/offline.ts';
import { Core } from '../helpers/core.ts';

const HOST = 'example.com';
const USER = 'juliet@example.com';
const FROM = `${USER}/balcony`;
const OTHER = 'romeo@example.com/orchard';

/** A fake module with account features, as PEP or MAM would declare. */
const accounty = defineModule({
  name: 'accounty',
  description: 'test module with host and account features',
  features: { host: ['urn:test:host-only'], account: ['urn:test:account', 'urn:xmpp:mam:2'] },
  setup() {},
});

/** disco first (so it cannot have seen the others at setup time), then the rest; juliet and romeo online. */
async function load(others: ModuleDefinition<any>[], discoOptions: Record<string, unknown> = {}): Promise<Core> {
  const h = await Core.start([disco, ...others], { options: { disco: discoOptions } });
  h.bind(FROM);
  h.bind(OTHER);
  await h.settle();
  return h;
}

interface Asked { reply: XmlElement; logs: string[] }

/** 'host': juliet asks the server; 'self': her own account; 'bare': romeo asks juliet's account. */
async function ask(h: Core, type: 'get' | 'set', target: 'host' | 'self' | 'bare', payload: string): Promise<Asked> {
  const asker = target === 'bare' ? OTHER : FROM;
  const logs = h.logs.length;
  const reply = await h.ask(asker, type, payload, target === 'host' ? HOST : target === 'bare' ? USER : undefined);
  assert.is(h.received(asker).length, 1, 'exactly one answer');
  h.clear();
  return { reply, logs: h.logs.slice(logs).filter((l) => !l.startsWith('[debug]')) };
}

const features = (q: XmlElement) => q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attr('var')!);
const identities = (q: XmlElement) => q.getChildren('identity', NS.DISCO_INFO).map((i) => ({ ...i.attrs }));

function condition(reply: XmlElement): string {
  assert.is(reply.attr('type'), 'error');
  return reply.child('error')!.getChildren().find((c) => c.getXmlns() === NS.STANZAS)!.localName;
}

test('server disco#info: identity server/im and the features of every loaded module, each once', async () => {
  const h = await load([ping, version, time, offline, accounty]);
  const { reply, logs } = await ask(h, 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`);
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

test('server disco#info follows what is loaded: without offline there is no msgoffline', async () => {
  const f = features((await ask(await load([ping]), 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`)).reply.child('query', NS.DISCO_INFO)!);
  assert.equal([...f].sort(), [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.PING].sort());
});

test('contact addresses (XEP-0157): the operator\'s, as extended info of the server; none configured, no form', async () => {
  const h = await load([], { abuse_addresses: ['mailto:abuse@example.com'], admin_addresses: ['xmpp:admin@example.com', 'mailto:admin@example.com'] });
  const q = (await ask(h, 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`)).reply.child('query', NS.DISCO_INFO)!;
  const form = q.child('x', NS.DATA_FORMS)!;
  const fields = Object.fromEntries(form.getChildren('field').map((f) => [f.attr('var'), f.getChildren('value').map((v) => v.text())]));
  assert.equal(fields, { FORM_TYPE: ['http://jabber.org/network/serverinfo'], 'abuse-addresses': ['mailto:abuse@example.com'], 'admin-addresses': ['xmpp:admin@example.com', 'mailto:admin@example.com'] });
  const plain = (await ask(await load([]), 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`)).reply.child('query', NS.DISCO_INFO)!;
  assert.is(plain.child('x', NS.DATA_FORMS), undefined);
});

test('the server identity name is an option', async () => {
  const q = (await ask(await load([], { name: 'Capulet IM' }), 'get', 'host', `<query xmlns="${NS.DISCO_INFO}"/>`)).reply.child('query', NS.DISCO_INFO)!;
  assert.equal(identities(q), [{ category: 'server', type: 'im', name: 'Capulet IM' }]);
});

test('account disco#info (bare JID and self): account/registered and account features only', async () => {
  const h = await load([ping, offline, accounty]);
  for (const target of ['bare', 'self'] as const) {
    const { reply } = await ask(h, 'get', target, `<query xmlns="${NS.DISCO_INFO}"/>`);
    assert.is(reply.attr('type'), 'result', target);
    assert.is(reply.attr('from'), USER, target);
    const q = reply.child('query', NS.DISCO_INFO)!;
    assert.equal(identities(q), [{ category: 'account', type: 'registered' }], target);
    assert.equal([...features(q)].sort(), [NS.DISCO_INFO, 'urn:test:account', 'urn:xmpp:mam:2'].sort(), target);
  }
});

test('disco#items: the configured services on the server, none on an account', async () => {
  const empty = (await ask(await load([]), 'get', 'host', `<query xmlns="${NS.DISCO_ITEMS}"/>`)).reply;
  assert.is(empty.attr('type'), 'result');
  assert.equal(empty.child('query', NS.DISCO_ITEMS)!.getChildren(), []);

  const h = await load([], { items: ['conference.example.com', 'upload.example.com'] });
  const q = (await ask(h, 'get', 'host', `<query xmlns="${NS.DISCO_ITEMS}"/>`)).reply.child('query', NS.DISCO_ITEMS)!;
  assert.equal(q.getChildren('item', NS.DISCO_ITEMS).map((i) => ({ ...i.attrs })), [{ jid: 'conference.example.com' }, { jid: 'upload.example.com' }]);

  for (const target of ['bare', 'self'] as const) {
    const r = (await ask(h, 'get', target, `<query xmlns="${NS.DISCO_ITEMS}"/>`)).reply;
    assert.is(r.attr('type'), 'result', target);
    assert.equal(r.child('query', NS.DISCO_ITEMS)!.getChildren(), [], target);
  }
});

test('an invalid JID in items is a config error at load', () => {
  const load = (o: Record<string, unknown>) => new ModuleSet([HOST]).add(disco as ModuleDefinition, { global: o });
  assert.throws(() => load({ items: ['not a jid@'] }), /modules\.options\.disco\.items \(for [^)]+\): 'not a jid@' is not a valid JID/);
  assert.throws(() => load({ items: 'conference.example.com' }), /expected a list of strings/);
});

test('an unknown node is item-not-found, for info and items, server and account', async () => {
  const h = await load([ping], { items: ['conference.example.com'] });
  for (const ns of [NS.DISCO_INFO, NS.DISCO_ITEMS]) {
    for (const target of ['host', 'bare', 'self'] as const) {
      const { reply } = await ask(h, 'get', target, `<query xmlns="${ns}" node="urn:xmpp:commands"/>`);
      assert.is(condition(reply), 'item-not-found', `${target} ${ns}`);
      assert.is(reply.child('error')!.attr('type'), 'cancel');
    }
  }
});

test('a set to disco#info or disco#items is not-allowed', async () => {
  const h = await load([]);
  for (const ns of [NS.DISCO_INFO, NS.DISCO_ITEMS]) {
    for (const target of ['host', 'bare', 'self'] as const) {
      assert.is(condition((await ask(h, 'set', target, `<query xmlns="${ns}"/>`)).reply), 'not-allowed', `${target} ${ns}`);
    }
  }
});

test.run();
