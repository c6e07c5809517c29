import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  offeredMechanisms, selectMechanism, decodeSaslPayload, encodeSaslPayload, type MechanismOptions, type OfferContext,
} from '../../src/sasl/mechanisms.ts';
import { downgradeHash, ScramClient } from '../../src/sasl/scram.ts';
import { plainMessage } from '../../src/sasl/plain.ts';
import { SECRET, expectFailure, makeAccount, runScram, store } from '../helpers/sasl.ts';

const ALL_SCRAM = ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1'];
const ALL_PLUS = ALL_SCRAM.map((m) => `${m}-PLUS`);

test('offers: PLAIN only over TLS, -PLUS only with channel bindings', () => {
  assert.equal(offeredMechanisms({ tls: false, channelBindings: [] }), ALL_SCRAM);
  assert.equal(offeredMechanisms({ tls: true, channelBindings: [] }), [...ALL_SCRAM, 'PLAIN']);
  assert.equal(offeredMechanisms({ tls: true, channelBindings: ['tls-exporter'] }), [...ALL_PLUS, ...ALL_SCRAM, 'PLAIN']);
  assert.equal(offeredMechanisms({ tls: false, channelBindings: [], allowPlainWithoutTls: true }), [...ALL_SCRAM, 'PLAIN']);
  assert.equal(offeredMechanisms({ tls: true, channelBindings: ['tls-server-end-point'], plain: false, hashes: ['SHA-256'] }),
    ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
});

async function options(): Promise<MechanismOptions & { asked: string[] }> {
  const { lookup, asked } = store({ juliet: await makeAccount('pw') });
  return { lookup, serverSecret: SECRET, asked };
}

test('selection failures: invalid-mechanism and encryption-required', async () => {
  const o = await options();
  const noTls: OfferContext = { tls: false, channelBindings: [] };
  assert.equal(selectMechanism('PLAIN', noTls, o), { ok: false, condition: 'encryption-required' });
  assert.equal(selectMechanism('DIGEST-MD5', noTls, o), { ok: false, condition: 'invalid-mechanism' });
  assert.equal(selectMechanism('scram-sha-1', noTls, o), { ok: false, condition: 'invalid-mechanism' });
  assert.equal(selectMechanism('SCRAM-SHA-256-PLUS', { tls: true, channelBindings: [] }, o), { ok: false, condition: 'invalid-mechanism' });
  assert.equal(selectMechanism('SCRAM-SHA-1', { tls: true, channelBindings: [], hashes: ['SHA-256'] }, o), { ok: false, condition: 'invalid-mechanism' });
  assert.equal(selectMechanism('PLAIN', { tls: true, channelBindings: [], plain: false }, o), { ok: false, condition: 'invalid-mechanism' });
  assert.is(selectMechanism('PLAIN', { ...noTls, allowPlainWithoutTls: true }, o).ok, true);
});

test('selected mechanisms run: PLAIN, SCRAM, SCRAM-PLUS with each binding type', async () => {
  const o = await options();
  const exporter = Buffer.from('exporter'), endpoint = Buffer.from('endpoint');
  const ctx: OfferContext = { tls: true, channelBindings: ['tls-exporter', 'tls-server-end-point'] };
  const opts = { ...o, channelBindingData: { 'tls-exporter': exporter, 'tls-server-end-point': endpoint } };

  const p = selectMechanism('PLAIN', ctx, opts);
  assert.ok(p.ok && p.server.mechanism === 'PLAIN');
  assert.is(p.ok && (await p.server.start(plainMessage('juliet', 'pw'))).kind, 'success');

  for (const [type, data] of [['tls-exporter', exporter], ['tls-server-end-point', endpoint]] as const) {
    const s = selectMechanism('SCRAM-SHA-512-PLUS', ctx, opts);
    assert.ok(s.ok);
    if (!s.ok) return;
    assert.is(s.server.mechanism, 'SCRAM-SHA-512-PLUS');
    const { step, verified } = await runScram(s.server,
      new ScramClient({ hash: 'SHA-512', username: 'juliet', password: 'pw', channelBinding: { type, data } }));
    assert.is(step.kind, 'success', type);
    assert.ok(verified);
  }
});

test('a non-PLUS selection knows -PLUS was offered (downgrade detection)', async () => {
  const o = await options();
  const client = () => new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', supportsChannelBinding: true });
  const withPlus = selectMechanism('SCRAM-SHA-256', { tls: true, channelBindings: ['tls-exporter'] },
    { ...o, channelBindingData: { 'tls-exporter': Buffer.from('x') } });
  assert.ok(withPlus.ok);
  if (withPlus.ok) expectFailure((await runScram(withPlus.server, client())).step, 'not-authorized');
  const withoutPlus = selectMechanism('SCRAM-SHA-256', { tls: true, channelBindings: [] }, o);
  assert.ok(withoutPlus.ok);
  if (withoutPlus.ok) assert.is((await runScram(withoutPlus.server, client())).step.kind, 'success');
});

test("after a refused binding type, the client's 'y' is a fallback and succeeds; only a wrong password counts", async () => {
  const o = await options();
  const ctx: OfferContext = { tls: true, channelBindings: ['tls-exporter'] };
  const withData = { ...o, channelBindingData: { 'tls-exporter': Buffer.from('x') } };
  // slixmpp 1.8's defaults: -PLUS with tls-unique (not offered), refused without counting as a failed login.
  const plus = selectMechanism('SCRAM-SHA-256-PLUS', ctx, withData);
  assert.ok(plus.ok);
  if (!plus.ok) return;
  const refused = (await runScram(plus.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', channelBinding: { type: 'tls-unique' as never, data: Buffer.from('u') } }))).step;
  expectFailure(refused, 'not-authorized');
  assert.ok(refused.kind === 'failure' && refused.unsupportedBinding && !refused.wrongCredentials, JSON.stringify(refused));
  // Then SCRAM with 'y': it saw our -PLUS offer and used it, so nothing was stripped on the way.
  const fallback = selectMechanism('SCRAM-SHA-256', ctx, { ...withData, bindingRefused: true });
  assert.ok(fallback.ok);
  if (fallback.ok) assert.is((await runScram(fallback.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', supportsChannelBinding: true }))).step.kind, 'success');
  // A 'y' refused as a downgrade does not count either; a wrong password does.
  const downgrade = selectMechanism('SCRAM-SHA-256', ctx, withData);
  if (downgrade.ok) {
    const step = (await runScram(downgrade.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', supportsChannelBinding: true }))).step;
    assert.ok(step.kind === 'failure' && !step.wrongCredentials, JSON.stringify(step));
  }
  const wrong = selectMechanism('SCRAM-SHA-256', ctx, withData);
  if (wrong.ok) {
    const step = (await runScram(wrong.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'nope' }))).step;
    assert.ok(step.kind === 'failure' && step.wrongCredentials === true, JSON.stringify(step));
  }
});

test('binding data for a type not listed for the connection is not used', async () => {
  const o = await options();
  const data = Buffer.from('endpoint');
  const s = selectMechanism('SCRAM-SHA-256-PLUS', { tls: true, channelBindings: ['tls-exporter'] },
    { ...o, channelBindingData: { 'tls-exporter': Buffer.from('e'), 'tls-server-end-point': data } });
  assert.ok(s.ok);
  if (!s.ok) return;
  const { step } = await runScram(s.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw',
    channelBinding: { type: 'tls-server-end-point', data } }));
  expectFailure(step, 'not-authorized');
});

test("XEP-0474: the hash of the XEP's own example", () => {
  assert.is(downgradeHash('SHA-1', { mechanisms: ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1'], channelBindings: ['tls-server-end-point', 'tls-exporter'] }),
    'G6k/rBLDqgOhRRaCuuatSDFkJ08=');
});

test('XEP-0474: server-first carries h over what the stream offered; a client that saw less refuses', async () => {
  const o = await options();
  const ctx: OfferContext = { tls: true, channelBindings: ['tls-exporter', 'tls-server-end-point'] };
  const opts = { ...o, channelBindingData: { 'tls-exporter': Buffer.from('e'), 'tls-server-end-point': Buffer.from('p') } };
  const seen = { mechanisms: offeredMechanisms(ctx), channelBindings: ctx.channelBindings };
  const s1 = selectMechanism('SCRAM-SHA-256', ctx, opts);
  assert.ok(s1.ok);
  if (!s1.ok) return;
  const honest = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', advertised: seen });
  const first = await s1.server.start(Buffer.from(honest.clientFirst()));
  assert.ok(first.kind === 'challenge' && first.data.toString().endsWith(`,h=${downgradeHash('SHA-256', seen)}`));
  const whole = selectMechanism('SCRAM-SHA-256', ctx, opts);
  assert.ok(whole.ok);
  if (whole.ok) assert.is((await runScram(whole.server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', advertised: seen }))).step.kind, 'success');
  // A MITM struck the -PLUS mechanisms and XEP-0440's list from the features the client got.
  const struck = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', advertised: { mechanisms: offeredMechanisms({ tls: true, channelBindings: [] }) } });
  const s2 = selectMechanism('SCRAM-SHA-256', ctx, opts);
  assert.ok(s2.ok);
  if (!s2.ok) return;
  const challenge = await s2.server.start(Buffer.from(struck.clientFirst()));
  assert.ok(challenge.kind === 'challenge');
  if (challenge.kind !== 'challenge') return;
  try {
    await struck.clientFinal(challenge.data.toString());
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /XEP-0474/);
  }
});

test('payload encoding per RFC 6120 §6.4.2', () => {
  assert.equal(decodeSaslPayload('='), Buffer.alloc(0));
  assert.equal(decodeSaslPayload(''), Buffer.alloc(0));
  assert.equal(decodeSaslPayload('AGp1bGlldABwdw=='), Buffer.from('\0juliet\0pw'));
  assert.equal(decodeSaslPayload('AGp1bGll\n dABwdw=='), Buffer.from('\0juliet\0pw'));
  for (const bad of ['AGp1bGlldABwdw=', 'abc', 'ab!c', 'ab=c', '====']) assert.is(decodeSaslPayload(bad), undefined, bad);
  assert.is(encodeSaslPayload(undefined), '');
  assert.is(encodeSaslPayload(Buffer.alloc(0)), '=');
  assert.is(encodeSaslPayload(Buffer.from('v=abc')), 'dj1hYmM=');
});

test.run();
