import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { tlsServerEndPoint, certificateSignatureHash } from '../../src/sasl/channel-binding.ts';
import { CERTS } from './fixtures/certs.ts';

const der = (name: keyof typeof CERTS) => Buffer.from(CERTS[name], 'base64');

test('tls-server-end-point hashes with the signature hash, SHA-1 upgraded to SHA-256 (RFC 5929 §4.1)', () => {
  const cases: [keyof typeof CERTS, string][] = [
    ['ec256', 'sha256'], ['ec384', 'sha384'], ['rsa512', 'sha512'], ['rsa1', 'sha256'], ['pss512', 'sha512'],
  ];
  for (const [name, hash] of cases) {
    assert.is(certificateSignatureHash(der(name)), hash, name);
    assert.equal(tlsServerEndPoint(der(name)), createHash(hash).update(der(name)).digest(), name);
  }
});

test('no tls-server-end-point for algorithms RFC 5929 does not cover', () => {
  assert.is(tlsServerEndPoint(der('ed')), undefined);
});

test('malformed DER throws', () => {
  assert.throws(() => certificateSignatureHash(Buffer.from([0x30, 0x05, 0x30])));
  assert.throws(() => certificateSignatureHash(Buffer.from([0x02, 0x01, 0x00])));
  assert.throws(() => certificateSignatureHash(der('ec256').subarray(0, 100)));
});

test.run();
