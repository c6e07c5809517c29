// TLS contexts built from the config: self-signed generation and reuse, SNI per host, protocol and
// cipher limits, reload, certificate diagnostics and the RFC 5929 channel-binding hash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer as netServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { defaultConfig, type ChorusConfig } from '../../src/config/index.ts';
import {
  createTlsContexts, generateSelfSigned, inspectCertificate, serverEndPointHash, type TlsContexts,
} from '../../src/net/tls.ts';

let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-tls-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

function config(sub: string, hosts: string[]): ChorusConfig {
  const c = defaultConfig(join(dir, sub));
  c.hosts = hosts;
  return c;
}

interface Result { protocol: string | null; cipher: string; cn: unknown; raw: Buffer; socket: tls.TLSSocket }
function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts }, () => {
      const peer = s.getPeerCertificate();
      resolve({ protocol: s.getProtocol(), cipher: s.getCipher().name, cn: peer.subject.CN, raw: peer.raw, socket: s });
    });
    s.once('error', reject);
  });
}
async function refused(port: number, opts: tls.ConnectionOptions): Promise<string> {
  try {
    const r = await handshake(port, opts);
    r.socket.destroy();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`handshake with ${JSON.stringify(opts)} was expected to fail`);
}
async function listen(server: tls.Server | ReturnType<typeof netServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}
const close = (server: { close(cb: () => void): unknown }) => new Promise<void>((r) => server.close(() => r()));

test('first start generates a self-signed ECDSA P-256 certificate per host; later starts reuse it', async () => {
  const c = config('gen', ['a.test', 'b.test']);
  const lines: string[] = [];
  const first = await createTlsContexts(c, { log: (l) => lines.push(l) });
  assert.equal(first.hosts, ['a.test', 'b.test']);
  assert.is(lines.length, 2);
  assert.match(lines[0]!, /^chorus: no certificate configured for a\.test: generated a self-signed one at .*a\.test\.crt /);
  const certFile = join(c.data_dir, 'certs', 'a.test.crt');
  const keyFile = join(c.data_dir, 'certs', 'a.test.key');
  assert.is((await stat(keyFile)).mode & 0o777, 0o600);
  const pem = await readFile(certFile, 'utf8');
  const x = new X509Certificate(pem);
  assert.is(x.subjectAltName, 'DNS:a.test');
  assert.is(x.publicKey.asymmetricKeyType, 'ec');
  assert.is(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(x.verify(x.publicKey), 'self-signed');
  assert.is(first.certificateFor('a.test')?.selfSigned, true);

  const again: string[] = [];
  await createTlsContexts(c, { log: (l) => again.push(l) });
  assert.equal(again, []);
  assert.is(await readFile(certFile, 'utf8'), pem);
});

test('an expired generated certificate is replaced', async () => {
  const c = config('expired', ['old.test']);
  const old = await generateSelfSigned('old.test', { days: -1 / 48 });
  await createTlsContexts(c, { log: () => {} });
  await writeFile(join(c.data_dir, 'certs', 'old.test.crt'), old.cert);
  await writeFile(join(c.data_dir, 'certs', 'old.test.key'), old.key);
  const lines: string[] = [];
  await createTlsContexts(c, { log: (l) => lines.push(l) });
  assert.is(lines.length, 1);
  const now = new X509Certificate(await readFile(join(c.data_dir, 'certs', 'old.test.crt')));
  assert.ok(new Date(now.validTo) > new Date());
});

let shared: TlsContexts;
let server: tls.Server;
let port = 0;
test('SNI picks the certificate per host; no SNI gets the first host; TLS 1.3 and 1.2 negotiate', async () => {
  shared = await createTlsContexts(config('sni', ['a.test', 'b.test']), { log: () => {} });
  server = tls.createServer(shared.serverOptions(), (s) => s.end('hello'));
  shared.attach(server);
  port = await listen(server);
  const a = await handshake(port, { servername: 'a.test' });
  const b = await handshake(port, { servername: 'b.test' });
  const none = await handshake(port, {});
  // A name the node does not serve (#17.3): the default host's certificate, not an alert — clients
  // that send their SRV target as SNI still connect, and then check the name themselves.
  const unknown = await handshake(port, { servername: 'nobody.example' });
  const v12 = await handshake(port, { servername: 'b.test', maxVersion: 'TLSv1.2' });
  for (const r of [a, b, none, unknown, v12]) r.socket.destroy();
  assert.is(a.cn, 'a.test');
  assert.is(b.cn, 'b.test');
  assert.is(none.cn, 'a.test');
  assert.is(unknown.cn, 'a.test');
  assert.is(a.protocol, 'TLSv1.3');
  assert.is(v12.protocol, 'TLSv1.2');
  assert.match(v12.cipher, /^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
});

test('TLS 1.1 and non-AEAD TLS 1.2 suites are refused (a permissive server shows the client could)', async () => {
  const old: tls.ConnectionOptions = { servername: 'a.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' };
  const cbc: tls.ConnectionOptions = { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' };
  // Control: the same client options succeed against a server without our limits.
  const lax = tls.createServer({ ...shared.serverOptions(), minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) => s.end());
  const laxPort = await listen(lax);
  const ok1 = await handshake(laxPort, old);
  const ok2 = await handshake(laxPort, cbc);
  assert.is(ok1.protocol, 'TLSv1.1');
  assert.is(ok2.cipher, 'ECDHE-ECDSA-AES128-SHA');
  ok1.socket.destroy(); ok2.socket.destroy();
  await close(lax);

  assert.match(await refused(port, old), /protocol version|unsupported protocol/);
  assert.match(await refused(port, cbc), /handshake failure|no shared cipher/);
});

test('STARTTLS-style TLSSocket with a context from contextFor(): the limits live in the contexts', async () => {
  const plain = netServer((sock) => {
    sock.once('data', () => {
      sock.write('<proceed/>');
      const secure = new tls.TLSSocket(sock, {
        isServer: true, secureContext: shared.contextFor('b.test')!, SNICallback: shared.SNICallback,
      });
      secure.on('secure', () => secure.end('ok'));
      secure.on('error', () => secure.destroy());
    });
  });
  const p = await listen(plain);
  const starttls = (opts: tls.ConnectionOptions) => new Promise<Result>((resolve, reject) => {
    const raw = netConnect(p, '127.0.0.1', () => raw.write('<starttls/>'));
    // Start TLS only after <proceed/>, as in XMPP, so the ClientHello never races the command.
    raw.once('data', () => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false, ...opts }, () =>
        resolve({ protocol: s.getProtocol(), cipher: s.getCipher().name, cn: s.getPeerCertificate().subject.CN, raw: s.getPeerCertificate().raw, socket: s }));
      s.once('error', reject);
    });
  });
  const r = await starttls({});
  assert.is(r.cn, 'b.test');
  r.socket.destroy();
  const sni = await starttls({ servername: 'a.test' });
  assert.is(sni.cn, 'a.test');
  sni.socket.destroy();
  let error = '';
  await starttls({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }).then(
    (x) => x.socket.destroy(), (e: Error) => { error = e.message; });
  assert.match(error, /protocol version|unsupported protocol/);
  await close(plain);
});

test('reload: new handshakes get new files, open connections stay up, bad files keep the old context', async () => {
  const files = { cert: join(dir, 'r.crt'), key: join(dir, 'r.key') };
  const v1 = await generateSelfSigned('r.test');
  await writeFile(files.cert, v1.cert);
  await writeFile(files.key, v1.key);
  const c = config('reload', ['r.test']);
  c.tls['r.test'] = files;
  const warned: string[] = [];
  const ctx = await createTlsContexts(c, { log: () => assert.unreachable('no generation for a configured host'), warn: (w) => warned.push(w) });
  assert.equal(warned, ['tls.r.test: self-signed: clients will warn unless the certificate is pinned or trusted by hand']);
  assert.is(ctx.certificateFor('r.test')?.selfSigned, false);
  const srv = tls.createServer(ctx.serverOptions(), (s) => s.on('data', (d) => s.write(d)));
  ctx.attach(srv);
  const p = await listen(srv);
  const before = await handshake(p, { servername: 'r.test' });
  assert.equal(before.raw, new X509Certificate(v1.cert).raw);

  const v2 = await generateSelfSigned('r.test');
  await writeFile(files.cert, v2.cert);
  await writeFile(files.key, v2.key);
  assert.equal(await ctx.reload(), { reloaded: ['r.test'], failed: [], warnings: [{ host: 'r.test', warning: 'self-signed: clients will warn unless the certificate is pinned or trusted by hand' }] });
  const after = await handshake(p, { servername: 'r.test' });
  const afterNoSni = await handshake(p, {});
  assert.equal(after.raw, new X509Certificate(v2.cert).raw);
  assert.equal(afterNoSni.raw, new X509Certificate(v2.cert).raw);
  // The connection made before the reload still carries data.
  const echoed = await new Promise<string>((r) => { before.socket.once('data', (d) => r(String(d))); before.socket.write('still here'); });
  assert.is(echoed, 'still here');

  await writeFile(files.key, (await generateSelfSigned('r.test')).key); // key no longer matches the cert
  const bad = await ctx.reload();
  assert.equal(bad.reloaded, []);
  assert.is(bad.failed.length, 1);
  assert.match(bad.failed[0]!.error, /^tls\.r\.test: .*r\.key is not the private key of .*r\.crt/);
  const still = await handshake(p, { servername: 'r.test' });
  assert.equal(still.raw, new X509Certificate(v2.cert).raw);
  for (const r of [before, after, afterNoSni, still]) r.socket.destroy();
  await close(srv);
});

test('internationalised hosts: the certificate names the A-label and SNI in A-labels finds it', async () => {
  const ctx = await createTlsContexts(config('idn', ['a.test', 'bücher.test']), { log: () => {} });
  const srv = tls.createServer(ctx.serverOptions(), (s) => s.end());
  const p = await listen(srv);
  const r = await handshake(p, { servername: 'xn--bcher-kva.test' });
  r.socket.destroy();
  await close(srv);
  assert.is(r.cn, 'xn--bcher-kva.test');
  assert.is(new X509Certificate(r.raw).subjectAltName, 'DNS:xn--bcher-kva.test');
  assert.ok(ctx.contextFor('bücher.test'));
  assert.is(ctx.contextFor('bücher.test'), ctx.contextFor('XN--BCHER-KVA.test.'));
});

test('serverEndPointHash: hash of the DER with the signature hash, SHA-1 upgraded to SHA-256', async () => {
  const r = await handshake(port, { servername: 'a.test' });
  r.socket.destroy();
  const der = r.raw;
  assert.equal(serverEndPointHash(der), createHash('sha256').update(der).digest());
  assert.equal(serverEndPointHash({ raw: der }), createHash('sha256').update(der).digest());
  const s384 = await generateSelfSigned('h.test', { hash: 'SHA-384' });
  const d384 = new X509Certificate(s384.cert).raw;
  assert.equal(serverEndPointHash(s384.cert), createHash('sha384').update(d384).digest());
  const s1 = await generateSelfSigned('h.test', { hash: 'SHA-1' });
  const d1 = new X509Certificate(s1.cert).raw;
  assert.equal(serverEndPointHash(d1), createHash('sha256').update(d1).digest());
  assert.not.equal(serverEndPointHash(d1), createHash('sha1').update(d1).digest());
});

test('inspectCertificate names a mismatched key, a foreign host, expiry and an unreadable file', async () => {
  const a = await generateSelfSigned('a.test');
  const b = await generateSelfSigned('b.test');
  const expired = await generateSelfSigned('a.test', { days: -1 / 48 });
  const put = async (name: string, text: string) => { const f = join(dir, name); await writeFile(f, text); return f; };
  const ok = await inspectCertificate('a.test', await put('a.crt', a.cert), await put('a.key', a.key));
  assert.equal(ok.problems, []);
  assert.equal(ok.names, ['a.test']);
  assert.match(ok.warnings.join('\n'), /self-signed/);
  const wrong = await inspectCertificate('b.test', join(dir, 'a.crt'), await put('b.key', b.key));
  assert.equal(wrong.problems, [
    `${join(dir, 'b.key')} is not the private key of ${join(dir, 'a.crt')}`,
    'does not cover b.test (names: a.test)',
  ]);
  const old = await inspectCertificate('a.test', await put('e.crt', expired.cert), await put('e.key', expired.key));
  assert.match(old.problems.join('\n'), /^expired on /);
  const missing = await inspectCertificate('a.test', join(dir, 'nope.crt'), join(dir, 'a.key'));
  assert.equal(missing.problems, [`cannot read ${join(dir, 'nope.crt')}: no such file`]);
});

test('cleanup', async () => { await close(server); });

test.run();
