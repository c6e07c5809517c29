// The module contract's own rules (src/xmpp/modules.ts): depends returns the dependency's API, only
// for a module named in depends; a replacing set swaps one module's hooks and keeps the rest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defineModule } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';

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

test.run();
