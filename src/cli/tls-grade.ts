// A TLS grade for one XMPP port, as xmpp.net's test graded servers: the port is probed as a client
// would probe it (STARTTLS after a stream header, or TLS from the first byte), once per question.
// A: TLS 1.2 and 1.3 only, forward-secret AEAD suites only, the server's cipher preference, X25519
// and P-256, no renegotiation, a certificate that chains to a trusted CA and names the host, RSA
// keys of 2048 bits or more. Each shortfall is named; the grade is the worst any of them allows.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, rootCertificates, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { serialize, streamOpen, x } from '../xml/builder.ts';
import { NS } from '../xml/namespaces.ts';

export type Grade = 'A' | 'B' | 'C' | 'F' | 'T';
export interface Finding { ok: boolean; what: string; grade?: Grade }
export interface GradeReport { grade: Grade; findings: Finding[]; negotiated?: { protocol: string; cipher: string } }

export interface Endpoint {
  /** The XMPP domain (the stream's `to` and the TLS server name). */
  domain: string;
  address: string;
  port: number;
  /** STARTTLS after a stream header, or TLS from the first byte (XEP-0368). */
  tls: 'starttls' | 'direct';
  stream: 'c2s' | 's2s';
  /** CAs to trust besides the system's (a private CA). */
  ca?: string[];
}

const TIMEOUT_MS = 5000;
const RENEGOTIATION_WAIT_MS = 1000;

/** Reads from a socket until `re` matches what came, or fails on close or timeout. */
function until(socket: Socket, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const done = (err?: Error) => {
      clearTimeout(t);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err); else resolve(got);
    };
    const onData = (b: Buffer) => { got += b.toString('utf8'); if (re.test(got)) done(); };
    const onClose = () => done(new Error(`closed before ${re}`));
    const t = setTimeout(() => done(new Error(`no ${re} in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** A plain socket at the point where the TLS handshake starts (STARTTLS's <proceed/> read). */
async function beforeHandshake(e: Endpoint): Promise<Socket> {
  const socket = netConnect({ host: e.address, port: e.port });
  socket.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    if (e.tls === 'direct') return socket;
    const ns = e.stream === 'c2s' ? NS.CLIENT : NS.SERVER;
    socket.write(streamOpen({ to: e.domain, xmlns: ns, version: '1.0' }));
    await until(socket, /<\/stream:features>/);
    socket.write(serialize(x('starttls', { xmlns: NS.TLS })));
    await until(socket, /<proceed/);
    return socket;
  } catch (err) {
    socket.destroy(); // a port that never answers as XMPP is left as found
    throw err;
  }
}

/** One handshake with these client options; the socket (to look at, then close) or the error. */
async function handshake(e: Endpoint, o: ConnectionOptions): Promise<TLSSocket | Error> {
  let plain: Socket;
  try { plain = await beforeHandshake(e); } catch (err) { return err as Error; }
  return new Promise((resolve) => {
    const alpn = e.tls === 'direct' ? [e.stream === 'c2s' ? 'xmpp-client' : 'xmpp-server'] : undefined;
    const s = tlsConnect({ socket: plain, servername: e.domain, ALPNProtocols: alpn, rejectUnauthorized: false, ...o });
    const t = setTimeout(() => { s.destroy(); resolve(new Error('handshake timed out')); }, TIMEOUT_MS);
    s.once('secureConnect', () => { clearTimeout(t); resolve(s); });
    s.once('error', (err) => { clearTimeout(t); plain.destroy(); resolve(err); });
  });
}

const accepted = async (e: Endpoint, o: ConnectionOptions): Promise<boolean> => {
  const s = await handshake(e, o);
  if (s instanceof Error) return false;
  s.destroy();
  return true;
};

/** What the server picks when offered these 1.2 suites in this order. */
async function pick(e: Endpoint, ciphers: string): Promise<string | null> {
  const s = await handshake(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers });
  if (s instanceof Error) return null;
  const name = s.getCipher().standardName ?? s.getCipher().name;
  s.destroy();
  return name;
}

// Old protocols and suites are off in the client too unless the security level allows them.
const LEGACY = 'ALL:@SECLEVEL=0';

export async function gradeEndpoint(e: Endpoint): Promise<GradeReport> {
  const findings: Finding[] = [];
  const say = (ok: boolean, what: string, grade?: Grade) => findings.push({ ok, what, ...(ok ? {} : { grade }) });

  const first = await handshake(e, {});
  if (first instanceof Error) return { grade: 'F', findings: [{ ok: false, what: `no TLS handshake: ${first.message}`, grade: 'F' }] };
  const negotiated = { protocol: first.getProtocol() ?? '?', cipher: first.getCipher().standardName ?? first.getCipher().name };
  // The certificate as a client sees it.
  const peer = first.getPeerX509Certificate();
  first.destroy();
  const trusted = await handshake(e, { ca: e.ca ? [...e.ca, ...rootCertificates] : undefined, rejectUnauthorized: true });
  if (trusted instanceof Error) say(false, `certificate not trusted: ${trusted.message}`, 'T');
  else { trusted.destroy(); say(true, 'certificate chains to a trusted CA and names the domain'); }
  if (peer) keyStrength(peer, say);

  for (const [v, name] of [['TLSv1', 'TLS 1.0'], ['TLSv1.1', 'TLS 1.1']] as const) {
    const on = await accepted(e, { minVersion: v, maxVersion: v, ciphers: LEGACY });
    say(!on, on ? `${name} accepted` : `${name} refused`, 'C');
  }
  say(await accepted(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }), 'TLS 1.2', 'B');
  say(await accepted(e, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }), 'TLS 1.3', 'B');

  // Suites without forward secrecy (RSA key exchange), and weak ones.
  const rsaKx = await accepted(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA' });
  say(!rsaKx, rsaKx ? 'a suite without forward secrecy (RSA key exchange) accepted' : 'forward secrecy on every suite', 'B');
  const cbc = await accepted(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: `${LEGACY}:!AESGCM:!CHACHA20:!aNULL` });
  say(!cbc, cbc ? 'a non-AEAD (CBC, RC4 or 3DES) suite accepted' : 'AEAD suites only', 'B');
  const anon = await accepted(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'aNULL:eNULL:@SECLEVEL=0' });
  say(!anon, anon ? 'an anonymous or null suite accepted' : 'no anonymous or null suites', 'F');

  // The server's preference: the same choice whichever order the client lists.
  const a = await pick(e, 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305');
  const b = await pick(e, 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256');
  say(a !== null && a === b, a === b ? 'the server chooses the suite' : `the client chooses the suite (${a} or ${b})`, 'B');

  for (const group of ['X25519', 'P-256']) say(await accepted(e, { ecdhCurve: group }), `ECDHE with ${group}`, 'B');

  const reneg = await renegotiates(e);
  say(!reneg, reneg ? 'client-initiated renegotiation accepted' : 'no renegotiation', 'B');

  const worst = (['F', 'T', 'C', 'B'] as const).find((g) => findings.some((f) => !f.ok && f.grade === g));
  return { grade: worst ?? 'A', findings, negotiated };
}

function keyStrength(cert: X509Certificate, say: (ok: boolean, what: string, grade?: Grade) => void): void {
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'rsa') say((d?.modulusLength ?? 0) >= 2048, `RSA key of ${d?.modulusLength} bits`, 'C');
  else say(true, `${key.asymmetricKeyType?.toUpperCase()} key${d?.namedCurve ? ` (${d.namedCurve})` : ''}`);
  const days = Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000);
  say(days >= 0, days >= 0 ? `certificate valid for ${days} more days` : 'certificate expired', 'T');
}

/** Whether a TLS 1.2 session may be renegotiated at the client's request. */
async function renegotiates(e: Endpoint): Promise<boolean> {
  const s = await handshake(e, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  if (s instanceof Error) return false;
  return new Promise((resolve) => {
    // A server that refuses may only send a warning alert and go on: no answer in time is a refusal.
    const t = setTimeout(() => { s.destroy(); resolve(false); }, RENEGOTIATION_WAIT_MS);
    s.on('error', () => undefined);
    const asked = s.renegotiate({ rejectUnauthorized: false }, (err) => { clearTimeout(t); s.destroy(); resolve(!err); });
    if (!asked) { clearTimeout(t); s.destroy(); resolve(false); }
  });
}
