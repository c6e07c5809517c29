// Channel binding data (pure: the TLS layer supplies the certificate or exporter bytes).
import { createHash } from 'node:crypto';

/** RFC 9266: socket.exportKeyingMaterial(TLS_EXPORTER_LENGTH, TLS_EXPORTER_LABEL, Buffer.alloc(0)). TLS 1.3 only. */
export const TLS_EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
export const TLS_EXPORTER_LENGTH = 32;

// Signature algorithm OID → hash used by the signature (RFC 5929 §4.1 then upgrades MD5/SHA-1 to SHA-256).
const SIG_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224',
  '2.16.840.1.101.3.4.3.2': 'sha256',
};
const DIGEST_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha256', // SHA-1, upgraded
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';

/**
 * tls-server-end-point data (RFC 5929 §4.1): the DER certificate hashed with its signature's hash.
 * Undefined when RFC 5929 defines no hash for the algorithm (e.g. Ed25519); do not offer the type then.
 */
export function tlsServerEndPoint(certDer: Uint8Array): Buffer | undefined {
  const hash = certificateSignatureHash(certDer);
  return hash ? createHash(hash).update(certDer).digest() : undefined;
}

/** The hash name RFC 5929 prescribes for this certificate, or undefined. Throws on malformed DER. */
export function certificateSignatureHash(certDer: Uint8Array): string | undefined {
  const der = Buffer.from(certDer.buffer, certDer.byteOffset, certDer.byteLength);
  const cert = readTlv(der, 0, 0x30);
  const tbs = readTlv(der, cert.start, 0x30);
  const algId = readTlv(der, tbs.end, 0x30);
  const oidTlv = readTlv(der, algId.start, 0x06);
  const oid = decodeOid(der.subarray(oidTlv.start, oidTlv.end));
  if (oid !== RSASSA_PSS) return SIG_HASH[oid];
  // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
  if (oidTlv.end >= algId.end || der[oidTlv.end] !== 0x30) return 'sha256';
  const params = readTlv(der, oidTlv.end, 0x30);
  if (params.start >= params.end || der[params.start] !== 0xa0) return 'sha256';
  const tagged = readTlv(der, params.start, 0xa0);
  const hashAlg = readTlv(der, tagged.start, 0x30);
  const hashOid = readTlv(der, hashAlg.start, 0x06);
  return DIGEST_OID[decodeOid(der.subarray(hashOid.start, hashOid.end))];
}

interface Tlv { start: number; end: number }

function readTlv(der: Buffer, at: number, tag: number): Tlv {
  if (der[at] !== tag) throw new Error(`DER: expected tag 0x${tag.toString(16)} at ${at}`);
  let len = der[at + 1];
  let start = at + 2;
  if (len === undefined) throw new Error('DER: truncated');
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('DER: unsupported length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] ?? NaN);
    start += n;
  }
  const end = start + len;
  if (!(end <= der.length)) throw new Error('DER: truncated');
  return { start, end };
}

function decodeOid(b: Buffer): string {
  const out: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) { out.push(v); v = 0; }
  }
  const first = out.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...out].join('.');
}
