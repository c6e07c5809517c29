import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import {
  ScramClient, deriveCredentials, credentialsToJson, credentialsFromJson, saltPassword, keysFromSaltedPassword,
} from '../../src/sasl/scram.ts';
import type { HashName } from '../../src/sasl/types.ts';
import { SECRET, b64, expectFailure, makeAccount, rejects, runScram, scramServer, store } from '../helpers/sasl.ts';

// ---- RFC test vectors -----------------------------------------------------------------------------

const RFC5802 = {
  hash: 'SHA-1' as HashName, salt: 'QSXCR+Q6sek8bf92', cnonce: 'fyko+d2lbbFgONRv9qkxdawL', snonce: '3rfcNHYJY1ZVvWVs7j',
  clientFirst: 'n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL',
  serverFirst: 'r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096',
  clientFinal: 'c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=',
  serverFinal: 'v=rmF9pqV8S7suAoZWja4dJRkFsKQ=',
};
const RFC7677 = {
  hash: 'SHA-256' as HashName, salt: 'W22ZaJ0SNY7soEsUEjb6gQ==', cnonce: 'rOprNGfwEbeRWgbNEkqO', snonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

for (const [name, v] of [['RFC 5802 SCRAM-SHA-1', RFC5802], ['RFC 7677 SCRAM-SHA-256', RFC7677]] as const) {
  test(`${name} vector: server side`, async () => {
    const creds = await deriveCredentials('pencil', v.hash, 4096, Buffer.from(v.salt, 'base64'));
    const { lookup } = store({ user: { scram: { [v.hash]: creds } } });
    const server = scramServer({ hash: v.hash, lookup, nonce: () => v.snonce });
    const first = await server.start(Buffer.from(v.clientFirst));
    assert.is(first.kind === 'challenge' && first.data.toString(), v.serverFirst);
    const done = await server.step(Buffer.from(v.clientFinal));
    assert.is(done.kind, 'success');
    assert.is(done.kind === 'success' && done.data?.toString(), v.serverFinal);
    assert.is(done.kind === 'success' && done.authcid, 'user');
  });

  test(`${name} vector: client side`, async () => {
    const client = new ScramClient({ hash: v.hash, username: 'user', password: 'pencil', nonce: v.cnonce });
    assert.is(client.clientFirst(), v.clientFirst);
    assert.is(await client.clientFinal(v.serverFirst), v.clientFinal);
    assert.ok(client.verifyServerFinal(v.serverFinal));
    assert.not.ok(client.verifyServerFinal(v.serverFinal.replace('v=', 'v=A')));
  });
}

test('deriveCredentials matches an independent computation for every hash', async () => {
  for (const [hash, node, len] of [['SHA-1', 'sha1', 20], ['SHA-256', 'sha256', 32], ['SHA-512', 'sha512', 64]] as const) {
    const salt = Buffer.from('0123456789abcdef');
    const c = await deriveCredentials('pencil', hash, 1000, salt);
    const sp = pbkdf2Sync('pencil', salt, 1000, len, node);
    const clientKey = createHmac(node, sp).update('Client Key').digest();
    assert.equal(c.storedKey, createHash(node).update(clientKey).digest(), hash);
    assert.equal(c.serverKey, createHmac(node, sp).update('Server Key').digest(), hash);
    assert.is(c.iterations, 1000);
    assert.equal(c.salt, salt);
  }
  const r1 = await deriveCredentials('pencil', 'SHA-256');
  const r2 = await deriveCredentials('pencil', 'SHA-256');
  assert.is(r1.salt.length, 16);
  assert.is(r1.iterations, 4096);
  assert.not.equal(r1.salt, r2.salt); // random salt
  await rejects(deriveCredentials('x', 'SHA-1', 0));
});

test('credentials round-trip through their stored JSON form', async () => {
  const c = await deriveCredentials('pencil', 'SHA-256', 4096);
  const j = credentialsToJson(c);
  assert.type(j.salt, 'string');
  assert.equal(credentialsFromJson(JSON.parse(JSON.stringify(j))), c);
  // The server accepts the JSON form straight from storage.
  const { lookup } = store({ juliet: { scram: { 'SHA-256': j } } });
  const { step, verified } = await runScram(scramServer({ hash: 'SHA-256', lookup }),
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pencil' }));
  assert.is(step.kind, 'success');
  assert.ok(verified);
});

// ---- full exchanges -------------------------------------------------------------------------------

for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
  test(`full exchange SCRAM-${hash}, with and without initial response`, async () => {
    const { lookup, asked } = store({ juliet: await makeAccount('r0m30myr0m30') });
    const { step, verified } = await runScram(scramServer({ hash, lookup }),
      new ScramClient({ hash, username: 'juliet', password: 'r0m30myr0m30' }));
    assert.is(step.kind, 'success');
    assert.ok(verified, 'server signature verifies');
    assert.equal(asked, ['juliet']);

    // RFC 6120: <auth/> without initial response gets an empty challenge first.
    const server = scramServer({ hash, lookup });
    const empty = await server.start(undefined);
    assert.is(empty.kind === 'challenge' && empty.data.length, 0);
    const client = new ScramClient({ hash, username: 'juliet', password: 'r0m30myr0m30' });
    const sf = await server.step(Buffer.from(client.clientFirst()));
    assert.is(sf.kind, 'challenge');
    const done = await server.step(Buffer.from(await client.clientFinal(sf.kind === 'challenge' ? sf.data.toString() : '')));
    assert.ok(done.kind === 'success' && client.verifyServerFinal(done.data!.toString()));
  });
}

for (const type of ['tls-exporter', 'tls-server-end-point'] as const) {
  test(`SCRAM-SHA-256-PLUS with ${type}`, async () => {
    const { lookup } = store({ juliet: await makeAccount('pw') });
    const data = Buffer.from(`${type} binding bytes`);
    const server = scramServer({
      hash: 'SHA-256', plus: true, plusOffered: true, lookup,
      channelBindings: { [type]: data },
    });
    const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', channelBinding: { type, data } });
    assert.is(client.mechanism, 'SCRAM-SHA-256-PLUS');
    assert.ok(client.clientFirst().startsWith(`p=${type},,`));
    const { step, verified } = await runScram(server, client);
    assert.is(step.kind, 'success');
    assert.ok(verified);
  });
}

test('a mobile client can log in with only a cached salted password', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw', {}, ['SHA-256']) });
  const first = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' });
  assert.is((await runScram(scramServer({ hash: 'SHA-256', lookup }), first)).step.kind, 'success');
  const cached = first.salted!;
  assert.ok(cached);
  const second = new ScramClient({ hash: 'SHA-256', username: 'juliet', cached });
  const { step, verified } = await runScram(scramServer({ hash: 'SHA-256', lookup }), second);
  assert.is(step.kind, 'success');
  assert.ok(verified);
  // A cache for other parameters without a password cannot proceed.
  const stale = new ScramClient({ hash: 'SHA-256', username: 'juliet', cached: { ...cached, iterations: cached.iterations + 1 } });
  const s = scramServer({ hash: 'SHA-256', lookup });
  const sf = await s.start(Buffer.from(stale.clientFirst()));
  await rejects(stale.clientFinal(sf.kind === 'challenge' ? sf.data.toString() : ''));
});

test('usernames with "," and "=" are escaped by the client and decoded by the server', async () => {
  const { lookup, asked } = store({ 'a,b=c': await makeAccount('pw') });
  const client = new ScramClient({ hash: 'SHA-1', username: 'a,b=c', password: 'pw' });
  assert.ok(client.clientFirst().includes('n=a=2Cb=3Dc,'));
  const { step } = await runScram(scramServer({ hash: 'SHA-1', lookup }), client);
  assert.is(step.kind, 'success');
  assert.equal(asked, ['a,b=c']);
});

test('lookup may return a canonical username, reported as authcid', async () => {
  const account = await makeAccount('pw', { username: 'juliet' });
  const lookup = async (u: string) => (u.toLowerCase() === 'juliet' ? account : undefined);
  const { step } = await runScram(scramServer({ hash: 'SHA-256', lookup }),
    new ScramClient({ hash: 'SHA-256', username: 'Juliet', password: 'pw' }));
  assert.is(step.kind === 'success' && step.authcid, 'juliet');
});

// ---- authzid --------------------------------------------------------------------------------------

test('authzid: own bare JID allowed with a domain, others are invalid-authzid', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const own = await runScram(scramServer({ hash: 'SHA-256', lookup, domain: 'example.com' }),
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', authzid: 'Juliet@Example.com' }));
  assert.is(own.step.kind === 'success' && own.step.authzid, 'Juliet@Example.com');
  for (const authzid of ['romeo@example.com', 'juliet@example.com/res', 'not a jid@']) {
    const other = await runScram(scramServer({ hash: 'SHA-256', lookup, domain: 'example.com' }),
      new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', authzid }));
    expectFailure(other.step, 'invalid-authzid', authzid);
  }
  const noDomain = await runScram(scramServer({ hash: 'SHA-256', lookup }),
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', authzid: 'juliet@example.com' }));
  expectFailure(noDomain.step, 'invalid-authzid');
  const hooked = await runScram(scramServer({ hash: 'SHA-256', lookup, authorize: (c, z) => c === 'juliet' && z === 'admin@x' }),
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', authzid: 'admin@x' }));
  assert.is(hooked.step.kind, 'success');
});

test('an authzid with "," survives escaping', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  let seen = '';
  const { step } = await runScram(scramServer({ hash: 'SHA-1', lookup, authorize: (_c, z) => { seen = z; return true; } }),
    new ScramClient({ hash: 'SHA-1', username: 'juliet', password: 'pw', authzid: 'a,b=c' }));
  assert.is(step.kind, 'success');
  assert.is(seen, 'a,b=c');
});

// ---- failures -------------------------------------------------------------------------------------

test('wrong password → not-authorized', async () => {
  const { lookup } = store({ juliet: await makeAccount('right') });
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
    const { step } = await runScram(scramServer({ hash, lookup }), new ScramClient({ hash, username: 'juliet', password: 'wrong' }));
    expectFailure(step, 'not-authorized', hash);
  }
});

test('unknown user looks like a wrong password: same shape, stable fake salt, not-authorized', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const serverFirst = async (user: string, secret = SECRET) => {
    const s = scramServer({ hash: 'SHA-256', lookup, serverSecret: secret });
    const step = await s.start(Buffer.from(`n,,n=${user},r=abc`));
    assert.is(step.kind, 'challenge', user);
    const attrs = Object.fromEntries((step as { data: Buffer }).data.toString().split(',').map((a) => [a[0], a.slice(2)]));
    return attrs as { r: string; s: string; i: string };
  };
  const real = await serverFirst('juliet');
  const ghost1 = await serverFirst('nobody');
  const ghost2 = await serverFirst('nobody');
  assert.is(ghost1.i, real.i);
  assert.is(Buffer.from(ghost1.s, 'base64').length, Buffer.from(real.s, 'base64').length);
  assert.is(ghost1.s, ghost2.s, 'fake salt must not change between attempts');
  assert.is.not((await serverFirst('somebody')).s, ghost1.s);
  assert.is.not((await serverFirst('nobody', 'other-secret')).s, ghost1.s);
  const { step } = await runScram(scramServer({ hash: 'SHA-256', lookup }), new ScramClient({ hash: 'SHA-256', username: 'nobody', password: 'pw' }));
  expectFailure(step, 'not-authorized');
  assert.is(step.kind === 'failure' && step.reason, 'invalid credentials');
  const wrong = await runScram(scramServer({ hash: 'SHA-256', lookup }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'x' }));
  assert.is(wrong.step.kind === 'failure' && wrong.step.reason, 'invalid credentials', 'same reason as unknown user');
});

test('an account without a verifier for the hash fails like an unknown user', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw', {}, ['SHA-256']) });
  const { step } = await runScram(scramServer({ hash: 'SHA-1', lookup }), new ScramClient({ hash: 'SHA-1', username: 'juliet', password: 'pw' }));
  expectFailure(step, 'not-authorized');
});

test('disabled account: account-disabled only after a correct proof', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw', { disabled: true }) });
  const ok = await runScram(scramServer({ hash: 'SHA-256', lookup }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' }));
  expectFailure(ok.step, 'account-disabled');
  const bad = await runScram(scramServer({ hash: 'SHA-256', lookup }), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'nope' }));
  expectFailure(bad.step, 'not-authorized');
});

test('lookup errors and corrupt records → temporary-auth-failure', async () => {
  const boom = async () => { throw new Error('db down'); };
  const s1 = await scramServer({ hash: 'SHA-1', lookup: boom }).start(Buffer.from('n,,n=juliet,r=abc'));
  expectFailure(s1, 'temporary-auth-failure');
  const good = await deriveCredentials('pw', 'SHA-1');
  const corrupt = { scram: { 'SHA-1': { ...good, storedKey: good.storedKey.subarray(0, 5) } } };
  const s2 = await scramServer({ hash: 'SHA-1', lookup: async () => corrupt }).start(Buffer.from('n,,n=juliet,r=abc'));
  expectFailure(s2, 'temporary-auth-failure');
});

test('malformed client-first messages → malformed-request', async () => {
  const { lookup, asked } = store({ user: await makeAccount('pw') });
  const bad: (string | Buffer)[] = [
    '', 'user', 'x,,n=user,r=abc', 'n,n=user,r=abc', 'n,,r=abc,n=user', 'n,,n=user', 'n,,n=user,r=',
    'n,,m=ext,n=user,r=abc', 'n,,n=us=er,r=abc', 'n,,n=us=2c,r=abc', 'n,,n=,r=abc', 'n,a=,n=user,r=abc',
    'n,b=x,n=user,r=abc', 'n,,n=user,r=ab,c', 'n,,n=user,r=a\u00e9', 'n,,n=user,r=abc,1=x',
    'n,,n=\u0007,r=abc', // SASLprep prohibits control characters
    'n,,n=user,r=abc\u0000', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61]), // not UTF-8
    `n,,n=${'u'.repeat(9000)},r=abc`,
  ];
  for (const msg of bad) {
    const step = await scramServer({ hash: 'SHA-1', lookup }).start(Buffer.from(msg));
    expectFailure(step, 'malformed-request', JSON.stringify(msg.toString().slice(0, 40)));
  }
  assert.equal(asked, [], 'no lookup for malformed input');
  // Extensions after the nonce are allowed and ignored.
  const ok = await scramServer({ hash: 'SHA-1', lookup }).start(Buffer.from('n,,n=user,r=abc,x=ext'));
  assert.is(ok.kind, 'challenge');
});

async function atFinal(hash: HashName = 'SHA-1') {
  const { lookup } = store({ user: await makeAccount('pencil') });
  const server = scramServer({ hash, lookup, nonce: () => 'SERVERNONCE' });
  const first = await server.start(Buffer.from('n,,n=user,r=CLIENT'));
  assert.is(first.kind, 'challenge');
  return server;
}

test('malformed client-final messages → malformed-request', async () => {
  const p = b64(Buffer.alloc(20));
  const bad = [
    'c=biws,r=CLIENTSERVERNONCE', // no proof
    `r=CLIENTSERVERNONCE,c=biws,p=${p}`, // wrong order
    `c=biws,p=${p}`, // no nonce
    'c=biws,r=CLIENTSERVERNONCE,p=!!!!', // proof not base64
    `c=biws,r=CLIENTSERVERNONCE,p=${b64(Buffer.alloc(19))}`, // proof of the wrong length
    `c=bi*s,r=CLIENTSERVERNONCE,p=${p}`, // c not base64
    `c=biws,r=CLIENTSERVERNONCE,bad,p=${p}`, // bad extension syntax
  ];
  for (const msg of bad) expectFailure(await (await atFinal()).step(Buffer.from(msg)), 'malformed-request', msg);
});

test('nonce not echoed exactly → not-authorized', async () => {
  const client = new ScramClient({ hash: 'SHA-1', username: 'user', password: 'pencil', nonce: 'CLIENT' });
  for (const tamper of ['CLIENTSERVERNONCEX', 'CLIENTSERVERNONC', 'OTHERSERVERNONCE']) {
    const server = await atFinal();
    client.clientFirst();
    const final = await client.clientFinal('r=CLIENTSERVERNONCE,s=QSXCR+Q6sek8bf92,i=4096');
    const step = await server.step(Buffer.from(final.replace('r=CLIENTSERVERNONCE', `r=${tamper}`)));
    expectFailure(step, 'not-authorized', tamper);
    // The proof is wrong too here; the reason shows the nonce check itself fired first.
    assert.is(step.kind === 'failure' && step.reason, 'nonce mismatch');
  }
});

test('a correct exchange fails if the proof is altered by one bit', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const server = scramServer({ hash: 'SHA-512', lookup });
  const client = new ScramClient({ hash: 'SHA-512', username: 'juliet', password: 'pw' });
  const sf = await server.start(Buffer.from(client.clientFirst()));
  const final = await client.clientFinal(sf.kind === 'challenge' ? sf.data.toString() : '');
  const proof = Buffer.from(final.split(',p=')[1]!, 'base64');
  proof[0]! ^= 1;
  expectFailure(await server.step(Buffer.from(`${final.split(',p=')[0]},p=${proof.toString('base64')}`)), 'not-authorized');
});

test('channel binding downgrade: "y" while -PLUS was offered fails; "y" without -PLUS on offer succeeds', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const client = () => new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', supportsChannelBinding: true });
  assert.ok(client().clientFirst().startsWith('y,,'));
  const attacked = await runScram(scramServer({ hash: 'SHA-256', plusOffered: true, lookup }), client());
  expectFailure(attacked.step, 'not-authorized');
  const honest = await runScram(scramServer({ hash: 'SHA-256', plusOffered: false, lookup }), client());
  assert.is(honest.step.kind, 'success');
  // 'n' (client cannot bind) is fine even when -PLUS was offered.
  const plain = await runScram(scramServer({ hash: 'SHA-256', plusOffered: true, lookup }),
    new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' }));
  assert.is(plain.step.kind, 'success');
});

test('channel binding mismatches', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const real = Buffer.from('the real exporter value');
  const plusServer = () => scramServer({ hash: 'SHA-256', plus: true, plusOffered: true, lookup, channelBindings: { 'tls-exporter': real } });
  // Different bytes (a MITM's own TLS session).
  const mitm = await runScram(plusServer(), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw',
    channelBinding: { type: 'tls-exporter', data: Buffer.from('the attacker exporter value') } }));
  expectFailure(mitm.step, 'not-authorized');
  // A type this connection has no data for.
  const otherType = await runScram(plusServer(), new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw',
    channelBinding: { type: 'tls-server-end-point', data: real } }));
  expectFailure(otherType.step, 'not-authorized');
  const unknownType = await plusServer().start(Buffer.from('p=tls-unique,,n=juliet,r=abc'));
  expectFailure(unknownType, 'not-authorized');
  // -PLUS without binding, and binding on a non-PLUS mechanism.
  expectFailure(await plusServer().start(Buffer.from('n,,n=juliet,r=abc')), 'malformed-request');
  expectFailure(await plusServer().start(Buffer.from('y,,n=juliet,r=abc')), 'malformed-request');
  expectFailure(await scramServer({ hash: 'SHA-256', lookup, channelBindings: { 'tls-exporter': real } })
    .start(Buffer.from('p=tls-exporter,,n=juliet,r=abc')), 'malformed-request');
});

test('c= must repeat the GS2 header: swapping n for y is caught', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const server = scramServer({ hash: 'SHA-256', lookup });
  const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw', supportsChannelBinding: true });
  // An attacker rewrites 'y' to 'n' in client-first; the client's c= still says 'y,,'.
  const sf = await server.start(Buffer.from(client.clientFirst().replace(/^y/, 'n')));
  const final = await client.clientFinal(sf.kind === 'challenge' ? sf.data.toString() : '');
  assert.ok(final.startsWith(`c=${b64('y,,')},`));
  expectFailure(await server.step(Buffer.from(final)), 'not-authorized');
});

test('after the exchange ends, further steps fail', async () => {
  const { lookup } = store({ juliet: await makeAccount('pw') });
  const server = scramServer({ hash: 'SHA-256', lookup });
  const { step } = await runScram(server, new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'pw' }));
  assert.is(step.kind, 'success');
  expectFailure(await server.step(Buffer.from('x')), 'malformed-request');
  expectFailure(await server.start(Buffer.from('n,,n=juliet,r=abc')), 'malformed-request');
});

test('client rejects a bad server-first and a bad server-final', async () => {
  const mk = () => { const c = new ScramClient({ hash: 'SHA-1', username: 'u', password: 'p', nonce: 'abc' }); c.clientFirst(); return c; };
  for (const sf of ['r=abc,s=QSXCR+Q6sek8bf92,i=4096', 'r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096', 'r=abcdef,s=***,i=4096',
    'r=abcdef,s=QSXCR+Q6sek8bf92,i=0', 'r=abcdef,s=QSXCR+Q6sek8bf92,i=-1', 'r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999999',
    'm=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=1', 'r=abcdef,i=1,s=QSXCR+Q6sek8bf92', 'r=abcdef,s=,i=1']) {
    await rejects(mk().clientFinal(sf), sf);
  }
  const c = mk();
  assert.not.ok(c.verifyServerFinal('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='), 'before clientFinal');
  await c.clientFinal('r=abcdef,s=QSXCR+Q6sek8bf92,i=1');
  assert.not.ok(c.verifyServerFinal('e=invalid-proof'));
  assert.not.ok(c.verifyServerFinal(''));
  assert.throws(() => new ScramClient({ hash: 'MD5', username: 'u', password: 'p' }));
});

test('saltPassword + keysFromSaltedPassword agree with deriveCredentials', async () => {
  const salt = Buffer.from('saltsaltsaltsalt');
  const c = await deriveCredentials('pw', 'SHA-512', 50, salt);
  const k = keysFromSaltedPassword('SHA-512', await saltPassword('pw', 'SHA-512', salt, 50));
  assert.equal(k.storedKey, c.storedKey);
  assert.equal(k.serverKey, c.serverKey);
});

test.run();
