// HTTP File Upload (XEP-0363) through the public surface: slixmpp's own plugin shares a file as a
// client does (discovery, slot, PUT, the URL in a message, the download), raw requests show the
// limits (size, quota) and the HTTP side's refusals, and a file goes with its account or its time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { freePort, startServer, subscribedBothWays, type TestServer } from '../helpers/xmpp.ts';
import { login, xml, type TestClient } from '../helpers/clients.ts';
import { scenario } from '../helpers/process.ts';
import { until } from '../helpers/runtime.ts';
import { testCa } from '../helpers/test-ca.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
const SCRIPT = new URL('./upload_slixmpp.py', import.meta.url).pathname;
const UPLOAD = 'urn:xmpp:http:upload:0';

let server: TestServer, short: TestServer;
let base: string, httpsPort: number;

async function uploadServer(o: { expires?: number } = {}): Promise<TestServer> {
  const http = await freePort(), https = await freePort();
  const s = await startServer((c) => {
    c.listen.http = http;
    c.listen.https = https;
    c.modules.options = { upload: { url: `http://127.0.0.1:${http}`, max_file_bytes: 100_000, quota_bytes: 150_000, ...(o.expires ? { expires_after_seconds: o.expires } : {}) } };
  });
  for (const u of ['alice', 'bob', 'carol']) await s.addUser(u, 'pw');
  return s;
}

test.before(async () => {
  server = await uploadServer();
  await subscribedBothWays(server, 'alice', 'bob');
  base = `http://127.0.0.1:${server.config.listen.http}`;
  httpsPort = server.config.listen.https as number;
  short = await uploadServer({ expires: 2 });
});
test.after(async () => { await server?.stop(); await short?.stop(); });

type Slot = { put: string; get: string; auth: string };
async function requestSlot(c: TestClient, filename: string, size: number, type = 'text/plain') {
  return c.iq(xml('iq', { type: 'get', to: 'upload.localhost' }, xml('request', { xmlns: UPLOAD, filename, size: String(size), 'content-type': type })));
}
const slotOf = (iq: Awaited<ReturnType<typeof requestSlot>>): Slot => {
  const s = iq.getChild('slot', UPLOAD)!;
  return { put: s.getChild('put')!.attrs.url, get: s.getChild('get')!.attrs.url, auth: s.getChild('put')!.getChild('header')!.getText() };
};
const put = (s: Slot, body: string, o: { auth?: string; type?: string } = {}) =>
  fetch(s.put, { method: 'PUT', body, headers: { Authorization: o.auth ?? s.auth, 'Content-Type': o.type ?? 'text/plain' } });

/** The upload counters /metrics shows: bytes received and sent. */
async function uploadBytes(): Promise<{ received: number; sent: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const n = (name: string) => Number(new RegExp(`^chorus_upload_${name}_bytes_total (\\d+)$`, 'm').exec(text)?.[1]);
  return { received: n('received'), sent: n('sent') };
}

test('slixmpp shares a file: the service is found by disco, the slot PUT, the URL sent, and bob downloads the same bytes', async () => {
  const before = await uploadBytes();
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']) as { url: string; max: number; status: number; type: string; size: number; same: boolean };
  assert.equal({ status: out.status, type: out.type, size: out.size, same: out.same, max: out.max }, { status: 200, type: 'application/x-test', size: 40_007, same: true, max: 100_000 });
  assert.ok(out.url.startsWith(`${base}/upload/`), out.url);
  // What a web client needs besides: CORS, ranges, a HEAD; and the same file over HTTPS.
  const r = await fetch(out.url, { headers: { Range: 'bytes=40000-' } });
  assert.is(r.status, 206);
  assert.is(await r.text(), 'the end');
  assert.is(r.headers.get('content-range'), 'bytes 40000-40006/40007');
  assert.is(r.headers.get('access-control-allow-origin'), '*');
  assert.is(r.headers.get('x-content-type-options'), 'nosniff');
  const head = await fetch(out.url, { method: 'HEAD' });
  assert.is(head.headers.get('content-length'), '40007');
  const pre = await fetch(out.url, { method: 'OPTIONS' });
  assert.is(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PUT/);
  const overTls = await new Promise<number>((resolve, reject) => {
    httpsGet(out.url.replace(base, `https://127.0.0.1:${httpsPort}`), { rejectUnauthorized: false }, (res) => { res.resume(); res.on('end', () => resolve(Number(res.headers['content-length']))); }).on('error', reject);
  });
  assert.is(overTls, 40_007);
  // /metrics counts the bytes: one PUT; bob's GET, the range and the GET over TLS (a HEAD sends none).
  const after = await uploadBytes();
  assert.equal({ received: after.received - before.received, sent: after.sent - before.sent }, { received: 40_007, sent: 40_007 + 7 + 40_007 });
});

test('limits: a file above max_file_bytes is refused with the XEP\'s error; the quota counts what is kept and what is promised', async () => {
  const carol = await login(server.port, 'carol', { password: 'pw' });
  try {
    const big = await requestSlot(carol, 'big.bin', 100_001).catch((e: { element?: { toString(): string } }) => e.element?.toString() ?? String(e));
    assert.match(String(big), /<not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(String(big), /<file-too-large xmlns="urn:xmpp:http:upload:0"><max-file-size>100000<\/max-file-size><\/file-too-large>/);
    const first = slotOf(await requestSlot(carol, 'a.txt', 90_000));
    // The first slot is not used yet, but it is promised: 90,000 + 90,000 is more than the 150,000 quota.
    const over = await requestSlot(carol, 'b.txt', 90_000).catch((e: { element?: { toString(): string } }) => e.element?.toString() ?? String(e));
    assert.match(String(over), /type="wait"><resource-constraint/);
    assert.is((await put(first, 'x'.repeat(90_000))).status, 201);
    assert.ok((await requestSlot(carol, 'c.txt', 50_000)).getChild('slot', UPLOAD), 'what fits still fits');
  } finally { await carol.c.stop(); }
});

test('the HTTP side refuses what the slot does not allow: another token, another size or type, a second PUT', async () => {
  const carol = await login(server.port, 'carol', { password: 'pw', resource: 'r2' });
  try {
    const s = slotOf(await requestSlot(carol, 'note.txt', 5));
    const other = slotOf(await requestSlot(carol, 'other.txt', 5));
    assert.is((await put(s, 'hello', { auth: other.auth })).status, 403, 'a token for another slot');
    assert.is((await put(s, 'hello', { auth: `${s.auth.slice(0, -3)}AAA` })).status, 403, 'a forged token');
    assert.is((await put(s, 'hello!')).status, 400, 'another size');
    assert.is((await put(s, 'hello', { type: 'image/png' })).status, 400, 'another type');
    assert.is((await fetch(s.get)).status, 404, 'nothing there yet');
    assert.is((await put(s, 'hello')).status, 201);
    assert.is((await put(s, 'hallo')).status, 409, 'a slot is used once');
    assert.is(await (await fetch(s.get)).text(), 'hello');
    assert.is((await fetch(`${base}/nothing/here`)).status, 404);
  } finally { await carol.c.stop(); }
});

test('a deleted account\'s files go with it', async () => {
  const bob = await login(server.port, 'bob', { password: 'pw', resource: 'del' });
  const s = slotOf(await requestSlot(bob, 'mine.txt', 4));
  assert.is((await put(s, 'mine')).status, 201);
  await bob.c.stop();
  await server.admin('deluser', { jid: 'bob@localhost' });
  assert.is((await fetch(s.get)).status, 404);
  assert.not.ok(existsSync(join(server.config.data_dir, 'upload', new URL(s.get).pathname.split('/')[2]!)), 'the file is gone from disk');
});

test('a file expires after expires_after_seconds: not served from then on, and removed from disk', async () => {
  const alice = await login(short.port, 'alice', { password: 'pw' });
  try {
    const s = slotOf(await requestSlot(alice, 'soon.txt', 4));
    assert.is((await put(s, 'soon')).status, 201);
    assert.is((await fetch(s.get)).status, 200);
    await until(async () => (await fetch(s.get)).status === 404, 10_000, 'the file expired');
    await until(() => readdirSync(join(short.config.data_dir, 'upload')).length === 0, 30_000, 'the expired file removed');
  } finally { await alice.c.stop(); }
});

test('a host with a real certificate that does not name upload.<host> is told at start: clients would refuse the files over HTTPS', async () => {
  const ca = testCa(['localhost']); // names localhost and conference.localhost, not upload.localhost
  const https = await freePort();
  const s = await startServer((c) => { c.listen.https = https; c.tls = { localhost: ca.tlsFor('localhost') }; });
  try {
    assert.ok(s.logs.some((l) => l.includes('no certificate covers upload.localhost (module upload)')), s.logs.join('\n'));
    assert.not.ok(s.logs.some((l) => l.includes('no certificate covers conference.localhost')), 'conference.localhost is named');
  } finally {
    await s.stop();
    ca.remove();
  }
});

test.run();
