import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PlainServer, plainMessage } from '../../src/sasl/plain.ts';
import type { CredentialLookup } from '../../src/sasl/types.ts';
import { SECRET, expectFailure, makeAccount, store } from '../helpers/sasl.ts';

const plain = (lookup: CredentialLookup, extra: Partial<ConstructorParameters<typeof PlainServer>[0]> = {}) =>
  new PlainServer({ lookup, serverSecret: SECRET, ...extra });

test('correct password succeeds against each stored hash', async () => {
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
    const { lookup } = store({ juliet: await makeAccount('r0m30', {}, [hash]) });
    const step = await plain(lookup).start(plainMessage('juliet', 'r0m30'));
    assert.equal(step, { kind: 'success', authcid: 'juliet' }, hash);
  }
});

test('wrong password and unknown user both → not-authorized with the same reason', async () => {
  const { lookup, asked } = store({ juliet: await makeAccount('r0m30') });
  const wrong = await plain(lookup).start(plainMessage('juliet', 'nope'));
  const ghost = await plain(lookup).start(plainMessage('nobody', 'r0m30'));
  expectFailure(wrong, 'not-authorized');
  expectFailure(ghost, 'not-authorized');
  assert.is(wrong.kind === 'failure' && wrong.reason, ghost.kind === 'failure' ? ghost.reason : 'x');
  assert.equal(asked, ['juliet', 'nobody']);
});

test('unknown user still costs a PBKDF2 run (timing does not reveal absence)', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw', {}, ['SHA-256'], 200_000) });
  const time = async (user: string) => {
    const t = performance.now();
    await plain(lookup, { fakeIterations: 200_000 }).start(plainMessage(user, 'wrong'));
    return performance.now() - t;
  };
  await time('juliet'); // warm up
  const real = await time('juliet');
  const ghost = await time('nobody');
  assert.ok(ghost > real * 0.3, `unknown user took ${ghost.toFixed(1)} ms vs ${real.toFixed(1)} ms`);
});

test('malformed messages → malformed-request', async () => {
  const { lookup, asked } = store({ juliet: await makeAccount('pw') });
  const bad = [
    Buffer.from('juliet'), Buffer.from('\0juliet'), Buffer.from('\0juliet\0pw\0'), Buffer.from('\0\0pw'),
    Buffer.from('\0juliet\0'), Buffer.from([0, 0x6a, 0, 0xff, 0xfe]), Buffer.alloc(0), Buffer.from('\0\u0007\0pw'), Buffer.from('\0\u00ad\0pw'),
    Buffer.from(`\0juliet\0${'x'.repeat(9000)}`),
  ];
  for (const msg of bad) expectFailure(await plain(lookup).start(msg), 'malformed-request', JSON.stringify(msg.toString()));
  assert.equal(asked, []);
});

test('no initial response: empty challenge, then the response', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const server = plain(lookup);
  const ch = await server.start(undefined);
  assert.is(ch.kind === 'challenge' && ch.data.length, 0);
  assert.is((await server.step(plainMessage('juliet', 'pw'))).kind, 'success');
  expectFailure(await server.step(plainMessage('juliet', 'pw')), 'malformed-request', 'after success');
});

test('disabled account revealed only with the right password', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw', { disabled: true }) });
  expectFailure(await plain(lookup).start(plainMessage('juliet', 'pw')), 'account-disabled');
  expectFailure(await plain(lookup).start(plainMessage('juliet', 'px')), 'not-authorized');
});

test('authzid', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const own = await plain(lookup, { domain: 'example.com' }).start(plainMessage('juliet', 'pw', 'juliet@example.com'));
  assert.equal(own, { kind: 'success', authcid: 'juliet', authzid: 'juliet@example.com' });
  expectFailure(await plain(lookup, { domain: 'example.com' }).start(plainMessage('juliet', 'pw', 'romeo@example.com')), 'invalid-authzid');
  expectFailure(await plain(lookup).start(plainMessage('juliet', 'pw', 'juliet@example.com')), 'invalid-authzid');
  const thrower = plain(lookup, { authorize: () => { throw new Error('x'); } });
  expectFailure(await thrower.start(plainMessage('juliet', 'pw', 'a@b')), 'temporary-auth-failure');
});

test('lookup failure → temporary-auth-failure; canonical username is reported', async () => {
  expectFailure(await plain(async () => { throw new Error('down'); }).start(plainMessage('juliet', 'pw')), 'temporary-auth-failure');
  const account = await makeAccount('pw', { username: 'juliet' });
  const step = await plain(async (u) => (u.toLowerCase() === 'juliet' ? account : undefined)).start(plainMessage('JULIET', 'pw'));
  assert.is(step.kind === 'success' && step.authcid, 'juliet');
});

test('hash preference picks the first stored verifier', async () => {
  const account = await makeAccount('pw', {}, ['SHA-1', 'SHA-512']);
  // Corrupt the SHA-1 verifier: preferring SHA-1 must then fail, preferring SHA-512 must pass.
  account.scram['SHA-1'] = { ...account.scram['SHA-1']!, storedKey: Buffer.alloc(20) } as never;
  const { lookup } = store({ juliet: account });
  expectFailure(await plain(lookup, { hashPreference: ['SHA-1', 'SHA-512'] }).start(plainMessage('juliet', 'pw')), 'not-authorized');
  assert.is((await plain(lookup, { hashPreference: ['SHA-512', 'SHA-1'] }).start(plainMessage('juliet', 'pw'))).kind, 'success');
  assert.is((await plain(lookup).start(plainMessage('juliet', 'pw'))).kind, 'success', 'default skips the absent SHA-256');
});

test.run();
