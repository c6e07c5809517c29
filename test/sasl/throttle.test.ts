import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AuthThrottle, addressKey } from '../../src/sasl/throttle.ts';
import { ScramClient } from '../../src/sasl/scram.ts';
import { PlainServer, plainMessage } from '../../src/sasl/plain.ts';
import { SECRET, expectFailure, makeAccount, runScram, scramServer, store } from '../helpers/sasl.ts';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('account bucket: capacity failures, then refused until a token refills', () => {
  const c = clock();
  const t = new AuthThrottle({ now: c.now, account: { capacity: 3, refillPerMinute: 1 }, address: false, backoff: false });
  for (let i = 0; i < 3; i++) {
    assert.ok(t.check('juliet', '10.0.0.1').allowed, `attempt ${i}`);
    assert.is(t.recordFailure('juliet', '10.0.0.1'), 0);
  }
  const d = t.check('juliet', '10.0.0.1');
  assert.not.ok(d.allowed);
  assert.is(d.retryAfterMs, 60_000);
  assert.ok(t.check('romeo', '10.0.0.1').allowed, 'other accounts unaffected');
  c.t += 30_000;
  assert.is(t.check('juliet', undefined).retryAfterMs, 30_000);
  c.t += 30_000;
  assert.ok(t.check('juliet', undefined).allowed);
});

test('an account locked by guesses from some sources still lets a source that never failed in (#8)', () => {
  const c = clock();
  const t = new AuthThrottle({ now: c.now, account: { capacity: 3, refillPerMinute: 1 }, backoff: false });
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) t.recordFailure('juliet', ip);
  assert.not.ok(t.check('juliet', '10.0.0.1').allowed, 'a source that failed');
  assert.not.ok(t.check('juliet', undefined).allowed, 'an unknown source');
  assert.ok(t.check('juliet', '192.0.2.7').allowed, 'the real user, from elsewhere');
});

test('account names are normalised so case variants share a bucket', () => {
  const t = new AuthThrottle({ now: clock().now, account: { capacity: 2, refillPerMinute: 1 }, address: false });
  t.recordFailure('Juliet', undefined);
  t.recordFailure('JULIET', undefined);
  assert.not.ok(t.check('juliet', undefined).allowed);
});

test('address bucket catches spraying across accounts; IPv6 keyed by /64', () => {
  const t = new AuthThrottle({ now: clock().now, account: false, address: { capacity: 4, refillPerMinute: 2 }, backoff: false });
  for (let i = 0; i < 4; i++) t.recordFailure(`user${i}`, `2001:db8:1:2::${i}`);
  assert.not.ok(t.check('fresh', '2001:db8:1:2:ffff::9').allowed);
  assert.is(t.check('fresh', '2001:db8:1:2:ffff::9').retryAfterMs, 30_000);
  assert.ok(t.check('fresh', '2001:db8:1:3::1').allowed);
  assert.ok(t.check('fresh', '10.0.0.1').allowed);
});

test('addressKey', () => {
  assert.is(addressKey('192.0.2.1'), '192.0.2.1');
  assert.is(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.is(addressKey('2001:DB8:0:0:1::1'), '2001:db8:0:0::/64');
  assert.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.is(addressKey('[2001:db8:a:b:c:d:e:f]'), '2001:db8:a:b::/64');
  assert.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.is(addressKey('::1'), '0:0:0:0::/64');
  assert.is(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

test('exponential backoff per streak, capped, reset by success', () => {
  const t = new AuthThrottle({ now: clock().now, account: { capacity: 100, refillPerMinute: 1 }, address: false, backoff: { baseMs: 100, maxMs: 1000 } });
  const delays = Array.from({ length: 6 }, () => t.recordFailure('juliet', undefined));
  assert.equal(delays, [100, 200, 400, 800, 1000, 1000]);
  t.recordSuccess('juliet', undefined);
  assert.is(t.recordFailure('juliet', undefined), 100);
});

test('a success clears the account for its own source only: the guesser stays held back; the address keeps its record (#30.7)', () => {
  const t = new AuthThrottle({ now: clock().now, account: { capacity: 2, refillPerMinute: 1 }, address: { capacity: 5, refillPerMinute: 1 }, backoff: false });
  t.recordFailure('juliet', '10.0.0.9'); // a guesser
  t.recordFailure('juliet', '10.0.0.1'); // the owner's typo: the account's bucket is empty now
  assert.not.ok(t.check('juliet', '10.0.0.1').allowed);
  t.recordSuccess('juliet', '10.0.0.1');
  assert.ok(t.check('juliet', '10.0.0.1').allowed, 'the owner, where the success came from');
  assert.not.ok(t.check('juliet', '10.0.0.9').allowed, 'the guesser, still');
  t.recordFailure('juliet', '10.0.0.1'); // a new failure from the owner's source counts again
  assert.not.ok(t.check('juliet', '10.0.0.1').allowed);
  const a = new AuthThrottle({ now: clock().now, account: { capacity: 1, refillPerMinute: 1 }, address: { capacity: 1, refillPerMinute: 1 } });
  a.recordFailure('juliet', '10.0.0.1');
  a.recordSuccess('juliet', '10.0.0.1');
  assert.not.ok(a.check(undefined, '10.0.0.1').allowed, 'one good account does not launder the address');
});

test('memory is bounded: recovered entries are pruned, then the oldest evicted', () => {
  const c = clock();
  const t = new AuthThrottle({ now: c.now, maxEntries: 3, account: { capacity: 1, refillPerMinute: 60 }, address: false });
  for (const u of ['a', 'b', 'c']) t.recordFailure(u, undefined);
  assert.is(t.size.accounts, 3);
  c.t += 1000; // 'a'..'c' fully refilled
  t.recordFailure('d', undefined);
  assert.is(t.size.accounts, 1, 'recovered entries dropped first');
  for (const u of ['e', 'f', 'g']) t.recordFailure(u, undefined);
  assert.is(t.size.accounts, 3);
  assert.ok(t.check('d', undefined).allowed, 'oldest evicted');
  assert.not.ok(t.check('e', undefined).allowed);
  assert.not.ok(t.check('g', undefined).allowed);
  c.t += 1000;
  t.prune();
  assert.is(t.size.accounts, 0);
  assert.throws(() => new AuthThrottle({ account: { capacity: 0, refillPerMinute: 1 } }));
});

test('mechanisms consult the throttle: delays, then temporary-auth-failure even with the right password', async () => {
  const c = clock();
  const throttle = new AuthThrottle({ now: c.now, account: { capacity: 2, refillPerMinute: 1 }, address: false, backoff: { baseMs: 50, maxMs: 1000 } });
  const { lookup, asked } = store({ juliet: await makeAccount('pw') });
  const o = { lookup, throttle, address: '10.0.0.1' };
  const f1 = (await runScram(scramServer({ hash: 'SHA-256', ...o }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'x' }))).step;
  expectFailure(f1, 'not-authorized');
  assert.is(f1.kind === 'failure' && f1.delayMs, 50);
  const f2 = await new PlainServer({ ...o, serverSecret: SECRET }).start(plainMessage('juliet', 'x'));
  assert.is(f2.kind === 'failure' && f2.delayMs, 100);
  const before = asked.length;
  const refused = (await runScram(scramServer({ hash: 'SHA-256', ...o }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' }))).step;
  expectFailure(refused, 'temporary-auth-failure');
  assert.is(refused.kind === 'failure' && refused.retryAfterMs, 60_000);
  assert.is(asked.length, before, 'refused before touching storage');
  expectFailure(await new PlainServer({ ...o, serverSecret: SECRET }).start(plainMessage('juliet', 'pw')), 'temporary-auth-failure');
  c.t += 60_000;
  const ok = await runScram(scramServer({ hash: 'SHA-256', ...o }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' }));
  assert.is(ok.step.kind, 'success');
  assert.ok(throttle.check('juliet', undefined).allowed);
  // Malformed input is not a password guess and does not spend tokens.
  for (let i = 0; i < 5; i++) await scramServer({ hash: 'SHA-256', ...o }).start(Buffer.from('n,,n=juliet'));
  assert.ok(throttle.check('juliet', undefined).allowed, 'its one token is still there');
});

test.run();
