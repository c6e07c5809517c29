// The module contract's own rules (src/xmpp/modules.ts): depends returns the dependency's API, only
// for a module named in depends; a replacing set swaps one module's hooks and keeps the rest; service
// domains are declared per host and served once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defineModule } from '../../src/xmpp/module.ts';
import { availableModules, ModuleSet } from '../../src/xmpp/modules.ts';
import { PREFIX } from '../../src/storage/db.ts';

const provider = (answer: number) => defineModule({
  name: 'provider', description: 'gives an API',
  features: { host: [`urn:test:provider:${answer}`] },
  setup(m) {
    m.hook('user/started', () => answer === 2);
    return { answer };
  },
});

test('depends: the API the dependency returned from its setup, only when named in depends', () => {
  const set = new ModuleSet(['example.org']);
  set.add(provider(1));
  let seen: unknown;
  set.add(defineModule({ name: 'user-of', description: 'uses it', depends: ['provider'], setup(m) { seen = m.depends<{ answer: number }>('provider').answer; } }));
  assert.is(seen, 1);
  try {
    set.add(defineModule({ name: 'sneaky', description: 'does not say', setup(m) { m.depends('provider'); } }));
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /sneaky uses provider without naming it in depends/);
  }
});

test('replacing: a new set with the module\'s hooks and features swapped; the old set is untouched', async () => {
  const set = new ModuleSet(['example.org']);
  set.add(provider(1));
  const event = {} as never;
  assert.is(await set.run('user/started', event), false);
  const next = set.replacing(provider(2));
  assert.is(await next.run('user/started', event), true);
  assert.is(await set.run('user/started', event), false, 'a chain running on the old set keeps the old code');
  assert.equal([...next.hostFeatures], ['urn:test:provider:2']);
  try {
    set.replacing(defineModule({ name: 'absent', description: 'never loaded', setup() {} }));
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /module absent is not loaded/);
  }
});

test('options per host: modules.hosts.<host> over modules.options, each checked against the specs', async () => {
  const limited = defineModule({
    name: 'limited', description: 'one option',
    options: { max: { type: 'number', default: 10, min: 1, doc: 'a limit' } },
    setup(m) { return { a: m.optionsFor('a.example').max, b: m.optionsFor('b.example').max, other: m.optionsFor('c.example').max }; },
  });
  let seen: unknown;
  const set = new ModuleSet(['a.example', 'b.example', 'c.example']);
  set.add(limited, { global: { max: 5 }, hosts: { 'b.example': { max: 2 } } });
  set.add(defineModule({ name: 'reader', description: 'reads it', depends: ['limited'], setup(m) { seen = m.depends('limited'); } }));
  assert.equal(seen, { a: 5, b: 2, other: 5 });
  assert.throws(() => new ModuleSet(['b.example']).add(limited, { hosts: { 'b.example': { max: 0 } } }), /modules\.hosts\.b\.example\.limited\.max: must be at least 1/);
  const { moduleProblems } = await import('../../src/xmpp/modules.ts');
  const problems = await moduleProblems(['a.example'], { enabled: null, disabled: [], options: {}, hosts: { 'z.example': { offline: {} }, 'a.example': { offline: { max_messages: -1 }, nosuch: {} } } });
  assert.equal(problems.slice(0, 2), ['modules.hosts.z.example: not one of the hosts (a.example)', 'modules.hosts.a.example.offline.max_messages: must be at least 0, got -1']);
  assert.match(problems[2] ?? '', /^modules\.hosts\.a\.example: no module named 'nosuch' \(available: .*offline/);
  assert.is(problems.length, 3);
  // a near miss is named, as config keys are (#30.10)
  assert.equal(await moduleProblems(['a.example'], { enabled: null, disabled: ['ofline'], options: {} }), ["modules.disabled: no module named 'ofline' (did you mean 'offline'?)"]);
});

const service = (name: string, domain: (host: string) => string) => defineModule({
  name, description: 'serves a domain', options: { sub: { type: 'string', default: 'svc', doc: 'subdomain' } },
  services: (host, o) => [{ domain: domain(host).replace('SUB', o.sub), kind: 'room' }],
  setup() {},
});

test('services: each host\'s domain from its own options, found by domain, listed per host', () => {
  const set = new ModuleSet(['a.example', 'b.example']);
  set.add(service('muc', (h) => `SUB.${h}`), { hosts: { 'b.example': { sub: 'chat' } } });
  assert.equal(set.service('svc.a.example'), { domain: 'svc.a.example', host: 'a.example', kind: 'room', module: 'muc' });
  assert.equal(set.service('chat.b.example')?.host, 'b.example');
  assert.is(set.service('svc.b.example'), undefined);
  const next = set.without('muc');
  assert.is(next.service('svc.a.example'), undefined, 'unloading a module takes its domains away');
});

test('services: a domain served twice, or one that is a host of accounts, is a config error', () => {
  const set = new ModuleSet(['a.example']);
  set.add(service('one', (h) => `SUB.${h}`));
  assert.throws(() => set.add(service('two', (h) => `svc.${h}`)), /svc\.a\.example is served by both one and two/);
  assert.throws(() => new ModuleSet(['a.example']).add(service('three', (h) => h)), /a\.example, which is a host of accounts/);
});

test('storage: two modules may not keep data under one prefix; no built-in module takes a core prefix', async () => {
  const keeper = (name: string, storage: string[]) => defineModule({ name, description: 'keeps data', storage, setup() {} });
  const set = new ModuleSet(['a.example']);
  set.add(keeper('one', ['things']));
  assert.throws(() => set.add(keeper('two', ['stuff', 'things'])), /one and two both keep their data under things!/);
  const core = Object.values(PREFIX).map((p) => p.slice(0, -1));
  for (const def of await availableModules()) for (const p of def.storage ?? []) assert.not.ok(core.includes(p), `${def.name} keeps data under the core's ${p}!`);
});

test('no module is named as an actor kind: chorus reload NAME takes a module of that name first', async () => {
  const { readdirSync } = await import('node:fs');
  const kinds = readdirSync(new URL('../../actors/', import.meta.url), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  const clash = (await availableModules()).map((d) => d.name).filter((n) => kinds.includes(n));
  assert.equal(clash, []);
});

test.run();
