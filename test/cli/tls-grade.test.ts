// The TLS grade `chorus check` gives a running node's ports (src/cli/tls-grade.ts): a node with a
// CA-signed certificate gets A on all four TLS ports (c2s and s2s, STARTTLS and Direct TLS); with
// its generated self-signed certificate T (not trusted) and nothing else short; a TLS server set up
// the old way (TLS 1.0, RSA key exchange, CBC, the client's preference) gets C with each named.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:tls';
import { once } from 'node:events';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { testCa, type TestCa } from '../helpers/test-ca.ts';
import { gradeEndpoint, type Endpoint } from '../../src/cli/tls-grade.ts';

let ca: TestCa, signed: TestServer, selfSigned: TestServer;
test.before(async () => {
  ca = testCa(['localhost']);
  const ports = [await freePort(), await freePort(), await freePort()];
  signed = await startServer((c) => {
    c.tls = { localhost: ca.tlsFor('localhost') };
    c.listen.c2s_direct_tls = ports[0]!; c.listen.s2s = ports[1]!; c.listen.s2s_direct_tls = ports[2]!;
  });
  selfSigned = await startServer();
});
test.after(async () => { await signed?.stop(); await selfSigned?.stop(); ca?.remove(); });

const at = (port: number, tls: Endpoint['tls'], stream: Endpoint['stream'], trust = true): Endpoint =>
  ({ domain: 'localhost', address: '127.0.0.1', port, tls, stream, ...(trust ? { ca: [readFileSync(ca.ca, 'utf8')] } : {}) });

test('a node with a CA-signed certificate: grade A on c2s and s2s, STARTTLS and Direct TLS', async () => {
  const l = signed.config.listen;
  for (const [port, tls, stream] of [[signed.port, 'starttls', 'c2s'], [l.c2s_direct_tls, 'direct', 'c2s'], [l.s2s, 'starttls', 's2s'], [l.s2s_direct_tls, 'direct', 's2s']] as const) {
    const g = await gradeEndpoint(at(port as number, tls, stream));
    assert.is(g.grade, 'A', `${stream} ${tls}: ${JSON.stringify(g.findings.filter((f) => !f.ok))}`);
    assert.is(g.negotiated?.protocol, 'TLSv1.3');
    for (const what of ['TLS 1.0 refused', 'TLS 1.1 refused', 'forward secrecy on every suite', 'AEAD suites only', 'the server chooses the suite', 'ECDHE with X25519', 'no renegotiation']) {
      assert.ok(g.findings.some((f) => f.ok && f.what === what), `${stream} ${tls}: ${what}`);
    }
  }
});

test('the generated self-signed certificate: grade T, the only shortfall being trust', async () => {
  const g = await gradeEndpoint(at(selfSigned.port, 'starttls', 'c2s', false));
  assert.is(g.grade, 'T');
  const short = g.findings.filter((f) => !f.ok);
  assert.is(short.length, 1, JSON.stringify(short));
  assert.match(short[0]!.what, /^certificate not trusted/);
});

test('a TLS server set up the old way is graded C, each weakness named', async () => {
  const tls = ca.tlsFor('localhost');
  const old: Server = createServer({
    cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: 'TLSv1', honorCipherOrder: false,
    ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:@SECLEVEL=0',
  }, (s) => s.on('error', () => undefined));
  old.listen(0, '127.0.0.1');
  await once(old, 'listening');
  try {
    const g = await gradeEndpoint(at((old.address() as { port: number }).port, 'direct', 'c2s'));
    const short = g.findings.filter((f) => !f.ok).map((f) => f.what);
    assert.is(g.grade, 'C', short.join('; '));
    for (const what of ['TLS 1.0 accepted', 'a non-AEAD (CBC, RC4 or 3DES) suite accepted']) assert.ok(short.includes(what), `${what} in ${short.join('; ')}`);
    assert.ok(short.some((w) => w.startsWith('the client chooses the suite')), short.join('; '));
  } finally {
    old.close();
  }
});

test.run();
