// External service discovery (XEP-0215) on the real core: the configured STUN/TURN servers, with
// TURN credentials by the REST scheme coturn checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import ext, { parseServiceUri } from '../../src/modules/external-services.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import type { ModuleDefinition } from '../../src/xmpp/module.ts';
import { Core } from '../helpers/core.ts';

const A = 'alice@example.com/a';
const NS_EXT = 'urn:xmpp:extdisco:2';
const services = ['stun:turn.example.com', 'turn:turn.example.com:3478?transport=udp', 'turns:turn.example.com?transport=tcp'];

async function node(o: Record<string, unknown>): Promise<Core> {
  const h = await Core.start([ext], { options: { external_services: o } });
  h.bind(A);
  await h.settle();
  return h;
}

test('services: every configured server; TURN ones with credentials coturn accepts, expiring after ttl', async () => {
  const h = await node({ services, secret: 's3cret', ttl_seconds: 3600 });
  const r = await h.ask(A, 'get', `<services xmlns="${NS_EXT}"/>`, 'example.com');
  const got = r.child('services', NS_EXT)!.getChildren('service').map((s) => ({ ...s.attrs }));
  assert.equal(got.map((s) => `${s.type} ${s.host} ${s.port} ${s.transport ?? ''}`), ['stun turn.example.com 3478 ', 'turn turn.example.com 3478 udp', 'turns turn.example.com 5349 tcp']);
  assert.is(got[0]!.username, undefined, 'STUN needs no credentials');
  const turn = got[1]!;
  const expiry = Math.floor(h.clock / 1000) + 3600;
  assert.is(turn.username, `${expiry}:alice@example.com`);
  assert.is(turn.password, createHmac('sha1', 's3cret').update(turn.username!).digest('base64'));
  assert.is(turn.restricted, '1');
  assert.is(Date.parse(turn.expires!), expiry * 1000);
  const only = await h.ask(A, 'get', `<services xmlns="${NS_EXT}" type="turn"/>`, 'example.com');
  assert.equal(only.child('services', NS_EXT)!.getChildren('service').map((s) => s.attr('type')), ['turn']);
  const cred = await h.ask(A, 'get', `<credentials xmlns="${NS_EXT}"><service host="turn.example.com" type="turns"/></credentials>`, 'example.com');
  assert.is(cred.child('credentials', NS_EXT)!.child('service')!.attr('type'), 'turns');
});

test('without a secret, no credentials; nothing configured, an empty list; a set is not allowed', async () => {
  const h = await node({ services: ['turn:turn.example.com'] });
  const r = await h.ask(A, 'get', `<services xmlns="${NS_EXT}"/>`, 'example.com');
  assert.is(r.child('services', NS_EXT)!.child('service')!.attr('username'), undefined);
  const none = await node({});
  assert.equal((await none.ask(A, 'get', `<services xmlns="${NS_EXT}"/>`, 'example.com')).child('services', NS_EXT)!.getChildren(), []);
  assert.is((await none.ask(A, 'set', `<services xmlns="${NS_EXT}"/>`, 'example.com')).child('error')?.getChildren()[0]?.name, 'not-allowed');
});

test('a service that is not a STUN/TURN URI is a config error naming it', () => {
  assert.throws(() => new ModuleSet(['example.com']).add(ext as ModuleDefinition, { global: { services: ['http://turn.example.com'] } }), /services\[0\].*'http:\/\/turn.example.com' is not a STUN\/TURN URI/);
  assert.equal(parseServiceUri('turn:[2001:db8::1]:3479?transport=tcp', 'x'), { type: 'turn', host: '[2001:db8::1]', port: 3479, transport: 'tcp' });
});

test.run();
