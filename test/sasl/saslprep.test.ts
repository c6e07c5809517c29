import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ScramClient, deriveCredentials, saslprep } from '../../src/sasl/scram.ts';
import { PlainServer, plainMessage } from '../../src/sasl/plain.ts';
import { SECRET, expectFailure, makeAccount, runScram, scramServer, store } from '../helpers/sasl.ts';

test('RFC 4013 §3 examples', () => {
  assert.is(saslprep('I\u00adX'), 'IX'); // soft hyphen mapped to nothing
  assert.is(saslprep('user'), 'user');
  assert.is(saslprep('USER'), 'USER'); // no case folding
  assert.is(saslprep('\u00aa'), 'a'); // NFKC
  assert.is(saslprep('\u2168'), 'IX');
  assert.throws(() => saslprep('\u0007')); // prohibited
  assert.throws(() => saslprep('\u0627\u0031')); // bidi check
});

test('more mappings: non-ASCII spaces become U+0020, B.1 characters vanish', () => {
  assert.is(saslprep('a\u00a0b'), 'a b');
  assert.is(saslprep('a\u3000b'), 'a b');
  assert.is(saslprep('a\u2060b\ufeff'), 'ab'); // B.1: mapped to nothing
  assert.throws(() => saslprep('a\ue000')); // private use
  assert.throws(() => saslprep('a\u0378')); // unassigned, not allowed in stored strings
});

test('passwords are SASLprep\'d before salting: equivalent spellings derive the same verifier', async () => {
  const salt = Buffer.alloc(16, 7);
  const a = await deriveCredentials('I\u00adX', 'SHA-256', 100, salt);
  const b = await deriveCredentials('\u2168', 'SHA-256', 100, salt);
  const c = await deriveCredentials('IX', 'SHA-256', 100, salt);
  const d = await deriveCredentials('ix', 'SHA-256', 100, salt);
  assert.equal(a.storedKey, c.storedKey);
  assert.equal(b.storedKey, c.storedKey);
  assert.not.equal(d.storedKey, c.storedKey);
  let threw = false;
  try { await deriveCredentials('bad\u0007', 'SHA-256', 100, salt); } catch { threw = true; }
  assert.ok(threw, 'prohibited characters are refused');
});

test('SCRAM: username and password SASLprep on both sides', async () => {
  const { lookup, asked } = store({ IX: await makeAccount('pass word') });
  const { step, verified } = await runScram(scramServer({ hash: 'SHA-256', lookup }),
    new ScramClient({ hash: 'SHA-256', username: 'I\u00adX', password: 'pass\u00a0word' }));
  assert.is(step.kind, 'success');
  assert.ok(verified);
  assert.equal(asked, ['IX']);
  // The server preps what it receives even if the client did not.
  const server = scramServer({ hash: 'SHA-256', lookup });
  await server.start(Buffer.from('n,,n=\u2168,r=abc'));
  assert.equal(asked, ['IX', 'IX']);
});

test('PLAIN: authcid and password SASLprep', async () => {
  const { lookup, asked } = store({ IX: await makeAccount('pass word') });
  const server = new PlainServer({ lookup, serverSecret: SECRET });
  const step = await server.start(plainMessage('\u2168', 'pass\u3000word'));
  assert.is(step.kind === 'success' && step.authcid, 'IX');
  assert.equal(asked, ['IX']);
  const bad = await new PlainServer({ lookup, serverSecret: SECRET }).start(plainMessage('IX', 'pass\u0007word'));
  expectFailure(bad, 'not-authorized');
});

test.run();
