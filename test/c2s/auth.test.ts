// SASL (RFC 6120 §6, RFC 5802/7677 SCRAM, RFC 5929/9266 channel binding) and resource binding (§7) over
// real sockets: failures with their exact <failure/> conditions, the retry limit, successful logins over
// Direct TLS and STARTTLS with and without channel binding, downgrade protection, resource conflicts
// and the per-account session limit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions, type TLSSocket } from 'node:tls';
import { startServer, RawClient, OPEN, starttls as tlsUpgrade, type TestServer } from '../helpers/xmpp.ts';
import { ScramClient } from '../../src/sasl/scram.ts';
import type { ChorusConfig } from '../../src/config/index.ts';
import { parseElement } from '../../src/xml/element.ts';

const NS = {
  STREAM_ERRORS: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  PING: 'urn:xmpp:ping',
} as const;

// ---- helpers ----------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s.trim() === '=' ? '' : s.trim(), 'base64').toString('utf8');
const reEsc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const wrap = (socket: Socket): RawClient => RawClient.wrap(socket);

// Failed logins are throttled per client address with a growing delay; each connection here comes from
// its own loopback address so one test's failures do not slow down the next.
let lastIp = 10;
const nextIp = () => { lastIp++; return `127.0.${lastIp >> 8}.${lastIp & 255}`; };

const clients: RawClient[] = [];
function track<T extends RawClient>(c: T): T { clients.push(c); return c; }

async function connectPlain(port: number, localAddress = nextIp()): Promise<RawClient> {
  const s = netConnect({ port, host: '127.0.0.1', localAddress });
  const c = track(wrap(s));
  await once(s, 'connect');
  s.setNoDelay(true);
  return c;
}

async function connectDirectTls(port: number, opts: TlsOptions = {}): Promise<{ c: RawClient; tls: TLSSocket }> {
  const raw = netConnect({ port, host: '127.0.0.1', localAddress: nextIp() });
  await once(raw, 'connect');
  const t = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'], ...opts });
  const c = track(wrap(t));
  await once(t, 'secureConnect');
  return { c, tls: t };
}

const next = (c: RawClient, re: RegExp, ms = 8000): Promise<RegExpExecArray> => c.next(re, ms);

const features = (c: RawClient) => next(c, /<stream:features>[\s\S]*?<\/stream:features>|<stream:features\/>/).then((m) => m[0]);

function mechanisms(f: string): string[] {
  return [...f.matchAll(/<mechanism>([^<]*)<\/mechanism>/g)].map((m) => m[1]!);
}

async function open(c: RawClient): Promise<string[]> {
  c.send(OPEN);
  return mechanisms(await features(c));
}

async function starttls(c: RawClient, opts: TlsOptions = {}): Promise<{ c: RawClient; tls: TLSSocket }> {
  const r = await tlsUpgrade(c, opts);
  track(r.c);
  return r;
}

type SaslAnswer = { kind: 'challenge' | 'success'; data: string; xml: string } | { kind: 'failure'; condition: string; xml: string };

/** The next SASL element from the server; a <failure/> must hold exactly one condition (RFC 6120 §6.5). */
async function sasl(c: RawClient): Promise<SaslAnswer> {
  const m = await next(c, /<(challenge|success|failure)\b[^>]*?(?:\/>|>([\s\S]*?)<\/\1>)/);
  const xml = m[0];
  assert.match(xml, new RegExp(`^<${m[1]} xmlns=["']${reEsc(NS.SASL)}["']`), `SASL namespace: ${xml}`);
  if (m[1] === 'failure') {
    const inner = (m[2] ?? '').trim();
    const f = /^<([a-z-]+)\s*\/>(?:<text\b[^>]*>[^<]*<\/text>)?$/.exec(inner);
    assert.ok(f, `one failure condition: ${xml}`);
    return { kind: 'failure', condition: f![1]!, xml };
  }
  return { kind: m[1] as 'challenge' | 'success', data: unb64(m[2] ?? ''), xml };
}

async function expectFailure(c: RawClient, condition: string): Promise<string> {
  const a = await sasl(c);
  assert.is(a.kind, 'failure', `expected <failure><${condition}/></failure>, got ${a.xml}`);
  assert.is((a as { condition: string }).condition, condition, a.xml);
  return a.xml;
}

function plain(c: RawClient, user: string, password: string): void {
  c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64(`\0${user}\0${password}`)}</auth>`);
}

interface ScramResult { answer: SaslAnswer; serverFirst?: string; verified?: boolean }

/** A whole SCRAM exchange; `verified` says whether the server proved it knows the verifier. */
async function scram(c: RawClient, client: ScramClient, mechanism = client.mechanism): Promise<ScramResult> {
  c.send(`<auth xmlns='${NS.SASL}' mechanism='${mechanism}'>${b64(client.clientFirst())}</auth>`);
  const first = await sasl(c);
  if (first.kind !== 'challenge') return { answer: first };
  const serverFirst = first.data;
  c.send(`<response xmlns='${NS.SASL}'>${b64(await client.clientFinal(serverFirst))}</response>`);
  const answer = await sasl(c);
  return { answer, serverFirst, verified: answer.kind === 'success' && client.verifyServerFinal(answer.data) };
}

/** After <success/>: restart the stream (bind offered, no SASL any more) and bind. Returns the bind reply. */
async function bind(c: RawClient, resource: string, id = 'bind-1'): Promise<string> {
  c.send(OPEN);
  const f = await features(c);
  assert.match(f, /<bind xmlns=["']urn:ietf:params:xml:ns:xmpp-bind["']\s*\/>/);
  assert.not.ok(f.includes('<mechanisms'), 'no SASL after authentication');
  return bindAgain(c, resource, id);
}

async function bindAgain(c: RawClient, resource: string, id: string): Promise<string> {
  c.send(`<iq type='set' id='${id}'><bind xmlns='${NS.BIND}'><resource>${resource}</resource></bind></iq>`);
  return (await next(c, new RegExp(`<iq\\b(?=[^>]*\\sid=["']${reEsc(id)}["'])[^>]*?(?:/>|>[\\s\\S]*?</iq>)`)))[0];
}

function assertBound(reply: string, jid: string): void {
  const iq = parseElement(reply);
  assert.is(iq.attr('type'), 'result', reply);
  assert.is(iq.child('bind', NS.BIND)?.getChildText('jid', NS.BIND), jid, reply);
}

async function login(port: number, user: string, resource: string): Promise<RawClient> {
  const c = await connectPlain(port);
  await open(c);
  plain(c, user, 'secret');
  assert.is((await sasl(c)).kind, 'success');
  assertBound(await bind(c, resource), `${user}@localhost/${resource}`);
  return c;
}

/** Stream error with exactly one condition, then the server's close and the TCP close. */
async function expectStreamError(c: RawClient, condition: string, ms = 8000): Promise<void> {
  await c.waitFor(/<stream:error>[\s\S]*<\/stream:error>/, ms);
  await c.waitClosed(ms);
  const m = /<stream:error>([\s\S]*?)<\/stream:error>([\s\S]*)$/.exec(c.received)!;
  const conds = [...m[1]!.matchAll(/<([A-Za-z][\w.-]*)\s+xmlns=(["'])([^"']*)\2\s*(?:\/>|>)/g)].filter((x) => x[1] !== 'text').map((x) => `${x[1]} ${x[3]}`);
  assert.equal(conds, [`${condition} ${NS.STREAM_ERRORS}`], `stream error: ${m[1]}`);
  assert.is(m[2]!.trim(), '</stream:stream>');
}

async function pingOk(c: RawClient, id: string): Promise<void> {
  c.send(`<iq type='get' to='localhost' id='${id}'><ping xmlns='${NS.PING}'/></iq>`);
  const m = await next(c, new RegExp(`<iq\\b(?=[^>]*\\sid=["']${reEsc(id)}["'])[^>]*?(?:/>|>[\\s\\S]*?</iq>)`));
  assert.is(parseElement(m[0]).attr('type'), 'result', m[0]);
}

// ---- servers -----------------------------------------------------------------------------------------

/** TLS optional: PLAIN and SCRAM on a plain socket (no -PLUS offered there). */
let plainServer: TestServer;
/** The default config: TLS required. */
let tlsServer: TestServer;
/** TLS optional, at most 2 sessions per account. */
let limitServer: TestServer;

// The per-account login throttle would answer temporary-auth-failure after a few failures; the
// retry limit tested here is the per-stream one (RFC 6120 §6.4.5).
const noAccountThrottle = (c: ChorusConfig) => { c.limits.login_attempts = { ...c.limits.login_attempts, max_failures: 1000, window_seconds: 60 }; };

test.before(async () => {
  [plainServer, tlsServer, limitServer] = await Promise.all([
    startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 1000; noAccountThrottle(c); }),
    startServer((c) => { c.limits.sessions_per_account = 1000; noAccountThrottle(c); }),
    startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 2; noAccountThrottle(c); }),
  ]);
  for (const u of ['alice', 'bob', 'carol', 'frank']) await plainServer.addUser(u);
  await tlsServer.addUser('alice');
  for (const u of ['dave', 'erin', 'grace']) await limitServer.addUser(u);
});
test.after.each(() => { for (const c of clients.splice(0)) c.close(); });
test.after(async () => { await Promise.all([plainServer.stop(), tlsServer.stop(), limitServer.stop()]); });

// ---- failures ------------------------------------------------------------------------------------------

test('PLAIN, wrong password → <failure><not-authorized/></failure>; the stream stays usable', async () => {
  const c = await connectPlain(plainServer.port);
  assert.ok((await open(c)).includes('PLAIN'));
  plain(c, 'alice', 'wrong');
  await expectFailure(c, 'not-authorized');
  assert.not.ok(c.closed);
  plain(c, 'alice', 'secret');
  assert.is((await sasl(c)).kind, 'success');
  assertBound(await bind(c, 'plain'), 'alice@localhost/plain');
});

test('each login and failed login is one info line with user, address and mechanism, never the password (#17.4, #18.6)', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  plain(c, 'carol', 'hunter2-wrong');
  await expectFailure(c, 'not-authorized');
  plain(c, 'carol', 'secret');
  assert.is((await sasl(c)).kind, 'success');
  const ip = c.socket.localAddress!;
  const lines = plainServer.logs.filter((l) => l.includes(`ip=${ip} `));
  assert.ok(lines.some((l) => /^\[info\] session:\S+: login failed: user=carol@localhost ip=\S+ mechanism=PLAIN condition=not-authorized reason="/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^\[info\] session:\S+: login: user=carol@localhost ip=\S+ mechanism=PLAIN$/.test(l)), lines.join('\n'));
  assert.not.ok(plainServer.logs.some((l) => l.includes('hunter2')), 'no password in the log');
  assert.ok(plainServer.logs.some((l) => /^\[info\] conn:\S+: opened \(/.test(l)));
});

for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
  test(`SCRAM-${hash}: wrong password → not-authorized; right password → success with a valid server signature`, async () => {
    const c = await connectPlain(plainServer.port);
    assert.ok((await open(c)).includes(`SCRAM-${hash}`));
    const bad = await scram(c, new ScramClient({ hash, username: 'alice', password: 'wrong' }));
    assert.is(bad.answer.kind, 'failure', bad.answer.xml);
    assert.is((bad.answer as { condition: string }).condition, 'not-authorized', bad.answer.xml);
    assert.not.ok(c.closed);
    const good = await scram(c, new ScramClient({ hash, username: 'alice', password: 'secret' }));
    assert.is(good.answer.kind, 'success', good.answer.xml);
    assert.ok(good.verified, 'server signature verifies');
    assertBound(await bind(c, `scram-${hash}`), `alice@localhost/scram-${hash}`);
  });
}

test('an unknown user fails exactly like a wrong password (PLAIN and SCRAM)', async () => {
  // PLAIN: the same failure element
  const p1 = await connectPlain(plainServer.port); await open(p1);
  plain(p1, 'bob', 'wrong');
  const wrongPlain = await expectFailure(p1, 'not-authorized');
  const p2 = await connectPlain(plainServer.port); await open(p2);
  plain(p2, 'nosuchuser', 'wrong');
  const unknownPlain = await expectFailure(p2, 'not-authorized');
  assert.is(unknownPlain, wrongPlain);

  // SCRAM: a server-first of the same shape (salt size, iteration count), a stable salt, the same failure
  const attempt = async (username: string) => {
    const c = await connectPlain(plainServer.port); await open(c);
    const r = await scram(c, new ScramClient({ hash: 'SHA-256', username, password: 'wrong' }));
    assert.ok(r.serverFirst, `a challenge for ${username}: ${r.answer.xml}`);
    // XEP-0474's h depends on the stream's offer only: the same for a real and an unknown user.
    const f = /^r=[^,]+,s=([^,]+),i=(\d+),h=([^,]+)$/.exec(r.serverFirst!);
    assert.ok(f, `server-first: ${r.serverFirst}`);
    assert.is(r.answer.kind, 'failure');
    return { salt: f![1]!, iterations: f![2]!, failure: r.answer.xml, h: f![3]! };
  };
  const real = await attempt('bob');
  const ghost1 = await attempt('nosuchuser');
  const ghost2 = await attempt('nosuchuser');
  assert.is(ghost1.failure, real.failure);
  assert.is(ghost1.h, real.h);
  assert.is(ghost1.iterations, real.iterations, 'same iteration count');
  assert.is(Buffer.from(ghost1.salt, 'base64').length, Buffer.from(real.salt, 'base64').length, 'same salt size');
  assert.is(ghost2.salt, ghost1.salt, 'an unknown user has a stable salt, like a real one');
  const real2 = await attempt('bob');
  assert.is(real2.salt, real.salt);
});

test('invalid mechanism → <invalid-mechanism/>; the stream stays usable', async () => {
  const c = await connectPlain(plainServer.port);
  const offered = await open(c);
  assert.not.ok(offered.some((m) => m.endsWith('-PLUS')), 'no channel binding without TLS');
  for (const mech of ['DIGEST-MD5', 'X-NOT-A-MECHANISM', 'SCRAM-SHA-256-PLUS', 'scram-sha-256']) {
    c.send(`<auth xmlns='${NS.SASL}' mechanism='${mech}'>${b64('n,,n=alice,r=abcdefgh')}</auth>`);
    try { await expectFailure(c, 'invalid-mechanism'); } catch (err) { throw new Error(`${mech}: ${(err as Error).message}`); }
  }
  c.send(`<auth xmlns='${NS.SASL}'>${b64('\0alice\0secret')}</auth>`); // no mechanism attribute at all
  await expectFailure(c, 'invalid-mechanism');
  plain(c, 'alice', 'secret');
  assert.is((await sasl(c)).kind, 'success');
});

test('bad base64 → <incorrect-encoding/> (in <auth/> and in <response/>)', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>!!not*base64!!</auth>`);
  await expectFailure(c, 'incorrect-encoding');
  c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA=</auth>`); // bad padding
  await expectFailure(c, 'incorrect-encoding');
  const client = new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' });
  c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(client.clientFirst())}</auth>`);
  assert.is((await sasl(c)).kind, 'challenge');
  c.send(`<response xmlns='${NS.SASL}'>%%%</response>`);
  await expectFailure(c, 'incorrect-encoding');
  assert.not.ok(c.closed);
  plain(c, 'alice', 'secret');
  assert.is((await sasl(c)).kind, 'success');
});

test('<abort/> in the middle of SCRAM → <aborted/>; a new attempt then succeeds', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  const client = new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' });
  c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(client.clientFirst())}</auth>`);
  assert.is((await sasl(c)).kind, 'challenge');
  c.send(`<abort xmlns='${NS.SASL}'/>`);
  await expectFailure(c, 'aborted');
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' }));
  assert.is(r.answer.kind, 'success', r.answer.xml);
  assert.ok(r.verified);
});

test('hot reload of the session kind between two SCRAM steps: the exchange goes on and the login completes', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  const client = new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' });
  c.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64(client.clientFirst())}</auth>`);
  const first = await sasl(c);
  assert.is(first.kind, 'challenge');
  const reloaded = await plainServer.node.runtime.reload('session');
  assert.ok(reloaded.every((r) => !('error' in r)), JSON.stringify(reloaded));
  c.send(`<response xmlns='${NS.SASL}'>${b64(await client.clientFinal((first as { data: string }).data))}</response>`);
  const answer = await sasl(c);
  assert.is(answer.kind, 'success', answer.xml);
  assert.ok(client.verifyServerFinal((answer as { data: string }).data));
  assert.match(await bind(c, 'reloaded-sasl'), /type=["']result["']/);
});

test('hot reload of the session kind with a bind request in flight: bound, and the stream goes on', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  plain(c, 'alice', 'secret');
  assert.is((await sasl(c)).kind, 'success');
  c.send(OPEN);
  await features(c);
  c.send(`<iq type='set' id='b'><bind xmlns='${NS.BIND}'><resource>reloaded-bind</resource></bind></iq><iq type='get' id='p'><ping xmlns='${NS.PING}'/></iq>`);
  await plainServer.node.runtime.reload('session');
  assert.match((await next(c, /<iq\b[^>]*id=["']b["'][\s\S]*?<\/iq>/))[0], /<jid>alice@localhost\/reloaded-bind<\/jid>/);
  await next(c, /<iq\b[^>]*id=["']p["']/);
  await plainServer.node.runtime.reload('session');
  c.send(`<iq type='get' id='p2'><ping xmlns='${NS.PING}'/></iq>`);
  await next(c, /<iq\b[^>]*id=["']p2["']/);
});

test('a session that crashes before bind kept no snapshot: the stream ends with internal-server-error and a new login works', async () => {
  const sessions = async () => new Set((await plainServer.node.runtime.stats(true, 'session')).flatMap((st) => (st.list ?? []).map((a) => a.address)));
  const before = await sessions();
  const c = await connectPlain(plainServer.port);
  await open(c);
  plain(c, 'alice', 'secret');
  assert.is((await sasl(c)).kind, 'success');
  const mine = [...await sessions()].filter((a) => !before.has(a) && a.startsWith('session:@'));
  assert.is(mine.length, 1, mine.join());
  assert.ok(await plainServer.node.runtime.kill(mine[0]!));
  await next(c, /<internal-server-error xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/);
  await c.waitClosed();
  const again = await connectPlain(plainServer.port);
  await open(again);
  plain(again, 'alice', 'secret');
  assert.is((await sasl(again)).kind, 'success');
  assert.match(await bind(again, 'after-crash'), /type=["']result["']/);
});

test('5 failed attempts → the stream is closed with policy-violation (RFC 6120 §6.4.5)', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  for (let i = 1; i <= 4; i++) {
    plain(c, 'frank', `wrong-${i}`);
    await expectFailure(c, 'not-authorized').catch((err: Error) => { throw new Error(`attempt ${i}: ${err.message}`); });
    assert.not.ok(c.closed, `still open after ${i} failures`);
  }
  plain(c, 'frank', 'wrong-5');
  await expectStreamError(c, 'policy-violation');
  assert.not.ok(c.received.includes('<success'));
});

test('the 5th failed attempt is still answered with <failure><not-authorized/></failure> before the stream error', async () => {
  const c = await connectPlain(plainServer.port);
  await open(c);
  for (let i = 1; i <= 5; i++) {
    plain(c, 'frank', `wrong-${i}`);
    await expectFailure(c, 'not-authorized').catch((err: Error) => { throw new Error(`attempt ${i}: ${err.message}`); });
  }
  await expectStreamError(c, 'policy-violation');
});

test('the account throttle counts failures node-wide, and locks out only sources that failed, not the real user (#7.8, #8)', async () => {
  // Streams are placed on the two schedulers by connection id: with per-thread buckets the retry
  // below would get through unless all four failures had landed on its thread.
  const s = await startServer((c) => { c.c2s_require_encryption = false; c.limits.login_attempts = { ...c.limits.login_attempts, max_failures: 4, window_seconds: 600 }; });
  try {
    await s.addUser('henry');
    const attackers = [nextIp(), nextIp(), nextIp(), nextIp()];
    for (const [i, ip] of attackers.entries()) {
      const c = await connectPlain(s.port, ip); // one guess from each address: only the account's bucket fills
      await open(c);
      plain(c, 'henry', `wrong-${i}`);
      await expectFailure(c, 'not-authorized').catch((err: Error) => { throw new Error(`attempt ${i + 1}: ${err.message}`); });
      c.close();
    }
    // An address that guessed wrong is refused now, even with the right password ...
    const again = await connectPlain(s.port, attackers[0]);
    await open(again);
    plain(again, 'henry', 'secret');
    await expectFailure(again, 'temporary-auth-failure');
    // ... while the real user, from an address that never failed, still gets in.
    const home = await connectPlain(s.port);
    await open(home);
    plain(home, 'henry', 'secret');
    assert.is((await sasl(home)).kind, 'success');
  } finally {
    await s.stop();
  }
});

// ---- successful logins over TLS --------------------------------------------------------------------------

test('Direct TLS (ALPN xmpp-client): SCRAM-SHA-256 login and bind', async () => {
  const { c, tls } = await connectDirectTls(tlsServer.tlsPort);
  assert.is(tls.alpnProtocol, 'xmpp-client');
  c.send(OPEN);
  const f = await features(c);
  assert.not.ok(f.includes('<starttls'), 'no STARTTLS on a TLS connection');
  const offered = mechanisms(f);
  for (const m of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'PLAIN']) assert.ok(offered.includes(m), `${m} offered: ${offered}`);
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' }));
  assert.is(r.answer.kind, 'success', r.answer.xml);
  assert.ok(r.verified, 'server signature verifies');
  assertBound(await bind(c, 'direct'), 'alice@localhost/direct');
  await pingOk(c, 'direct-ping');
});

test('STARTTLS, TLS 1.3: SCRAM-SHA-256-PLUS with tls-exporter', async () => {
  const p = await connectPlain(tlsServer.port);
  await open(p);
  const { c, tls } = await starttls(p);
  assert.is(tls.getProtocol(), 'TLSv1.3');
  const offered = await open(c);
  assert.ok(offered.includes('SCRAM-SHA-256-PLUS'), `offered: ${offered}`);
  const data = tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type: 'tls-exporter', data } }));
  assert.is(r.answer.kind, 'success', r.answer.xml);
  assert.ok(r.verified, 'server signature verifies');
  assertBound(await bind(c, 'exporter'), 'alice@localhost/exporter');
});

test('STARTTLS, TLS 1.2: SCRAM-SHA-256-PLUS with tls-server-end-point; tls-exporter is refused on 1.2', async () => {
  const p = await connectPlain(tlsServer.port);
  await open(p);
  const { c, tls } = await starttls(p, { maxVersion: 'TLSv1.2' });
  assert.is(tls.getProtocol(), 'TLSv1.2');
  const offered = await open(c);
  assert.ok(offered.includes('SCRAM-SHA-256-PLUS'), `offered: ${offered}`);
  // RFC 9266 §3: tls-exporter is not for TLS 1.2 (without extended master secret it is unsafe).
  const exporter = tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const bad = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type: 'tls-exporter', data: exporter } }));
  assert.is(bad.answer.kind, 'failure', bad.answer.xml);
  assert.is((bad.answer as { condition: string }).condition, 'not-authorized', bad.answer.xml);
  // RFC 5929 §4.1: the server certificate hashed with its signature's hash (ECDSA with SHA-256 here).
  const data = createHash('sha256').update(tls.getPeerCertificate().raw).digest();
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type: 'tls-server-end-point', data } }));
  assert.is(r.answer.kind, 'success', r.answer.xml);
  assert.ok(r.verified, 'server signature verifies');
  assertBound(await bind(c, 'endpoint'), 'alice@localhost/endpoint');
});

test('a -PLUS attempt with a binding type not offered (tls-unique, as slixmpp and poezio try) is no failed login: no line the fail2ban recipe matches (#30.1)', async () => {
  const p = await connectPlain(tlsServer.port);
  await open(p);
  const { c } = await starttls(p);
  await open(c);
  const type = 'tls-unique' as never; // what the client believes the server has; we offer it nowhere
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type, data: Buffer.alloc(12) } }));
  assert.is(r.answer.kind, 'failure', r.answer.xml);
  const good = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret' }));
  assert.is(good.answer.kind, 'success', good.answer.xml);
  const ip = c.socket.localAddress ?? p.socket.localAddress!;
  const mine = tlsServer.logs.filter((l) => l.includes(`ip=${ip} `));
  // README: failregex = login failed: user=\S+ ip=<HOST>
  assert.not.ok(mine.some((l) => new RegExp(`login failed: user=\\S+ ip=${ip.replace(/\./g, '\\.')} `).test(l)), mine.join('\n'));
  assert.ok(mine.some((l) => /^\[debug\] session:\S+: login refused before any password check: user=alice@localhost ip=\S+ mechanism=SCRAM-SHA-256-PLUS condition=not-authorized reason="unsupported channel binding type tls-unique"$/.test(l)), mine.join('\n'));
});

test('-PLUS with the wrong channel binding data → not-authorized', async () => {
  for (const [type, maxVersion] of [['tls-exporter', 'TLSv1.3'], ['tls-server-end-point', 'TLSv1.3']] as const) {
    const p = await connectPlain(tlsServer.port);
    await open(p);
    const { c } = await starttls(p, { maxVersion });
    await open(c);
    const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type, data: randomBytes(32) } }));
    assert.is(r.answer.kind, 'failure', `${type}: ${r.answer.xml}`);
    assert.is((r.answer as { condition: string }).condition, 'not-authorized', `${type}: ${r.answer.xml}`);
  }
  // binding data of another TLS connection (what a man in the middle's client would send)
  const other = await connectDirectTls(tlsServer.tlsPort);
  const stolen = other.tls.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  const { c } = await connectDirectTls(tlsServer.tlsPort);
  await open(c);
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', channelBinding: { type: 'tls-exporter', data: stolen } }));
  assert.is(r.answer.kind, 'failure', r.answer.xml);
  assert.is((r.answer as { condition: string }).condition, 'not-authorized', r.answer.xml);
});

test('downgrade: gs2 "y" while the server offered -PLUS → failure; "y" is fine when no -PLUS was offered', async () => {
  const p = await connectPlain(tlsServer.port);
  await open(p);
  const { c } = await starttls(p);
  assert.ok((await open(c)).includes('SCRAM-SHA-256-PLUS'));
  const client = new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', supportsChannelBinding: true });
  assert.ok(client.clientFirst().startsWith('y,,'));
  const r = await scram(c, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', supportsChannelBinding: true }), 'SCRAM-SHA-256');
  assert.is(r.answer.kind, 'failure', r.answer.xml);
  assert.is((r.answer as { condition: string }).condition, 'not-authorized', r.answer.xml);
  assert.not.ok(c.received.includes('<success'));

  // Direct TLS as well
  const d = await connectDirectTls(tlsServer.tlsPort);
  await open(d.c);
  const r2 = await scram(d.c, new ScramClient({ hash: 'SHA-512', username: 'alice', password: 'secret', supportsChannelBinding: true }), 'SCRAM-SHA-512');
  assert.is(r2.answer.kind, 'failure', r2.answer.xml);

  // Without TLS nothing was offered with -PLUS: "y" is the honest answer and succeeds.
  const q = await connectPlain(plainServer.port);
  assert.not.ok((await open(q)).some((m) => m.endsWith('-PLUS')));
  const ok = await scram(q, new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'secret', supportsChannelBinding: true }), 'SCRAM-SHA-256');
  assert.is(ok.answer.kind, 'success', ok.answer.xml);
  assert.ok(ok.verified);
});

// ---- resource binding --------------------------------------------------------------------------------------

test('resource conflict: the older session gets a <conflict/> stream error, the new one is bound', async () => {
  const first = await login(plainServer.port, 'carol', 'same');
  await pingOk(first, 'first-alive');
  const second = await connectPlain(plainServer.port);
  await open(second);
  plain(second, 'carol', 'secret');
  assert.is((await sasl(second)).kind, 'success');
  const reply = await bind(second, 'same');
  await expectStreamError(first, 'conflict');
  assertBound(reply, 'carol@localhost/same');
  // the new session works: stanzas to the full JID reach it, and it is answered itself
  const bob = await login(plainServer.port, 'bob', 'conflict-sender');
  bob.send(`<message to='carol@localhost/same' type='chat' id='to-same'><body>hello</body></message>`);
  const m = await next(second, /<message\b[^>]*\sid=["']to-same["'][^>]*>[\s\S]*?<\/message>/);
  assert.is(parseElement(m[0]).getChildText('body'), 'hello');
  await pingOk(second, 'second-alive');
  second.send('</stream:stream>');
  bob.send('</stream:stream>');
  await Promise.all([second.waitClosed(), bob.waitClosed()]);
});

test('pipelined after <success/>: until bound the session takes one stanza at a time, answered in order, and what follows the bind request reaches the bound session', async () => {
  const bob = await login(plainServer.port, 'bob', 'pipe-peer');
  const c = await connectPlain(plainServer.port);
  await open(c);
  plain(c, 'carol', 'secret');
  assert.is((await sasl(c)).kind, 'success');
  c.send(OPEN
    + `<iq type='get' id='early' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`
    + `<iq type='set' id='bind-p'><bind xmlns='${NS.BIND}'><resource>pipe</resource></bind></iq>`
    + `<message to='bob@localhost/pipe-peer' type='chat'><body>right after bind</body></message>`
    + `<iq type='get' id='late' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const late = (await next(c, /<iq\b(?=[^>]*\sid="late")[^>]*?(?:\/>|>[\s\S]*?<\/iq>)/))[0];
  assert.match(late, /type="result"/);
  const order = [...c.received.matchAll(/<iq\b[^>]*\sid="(early|bind-p|late)"[^>]*\stype="(\w+)"|<iq\b[^>]*\stype="(\w+)"[^>]*\sid="(early|bind-p|late)"/g)].map((m) => `${m[1] ?? m[4]} ${m[2] ?? m[3]}`);
  assert.equal(order, ['early error', 'bind-p result', 'late result']);
  await bob.waitFor(/right after bind/);
  assert.match(bob.received, /from="carol@localhost\/pipe"/);
  c.close(); bob.close();
});

test('sessions_per_account = 2: a third bind → resource-constraint (wait); freed by a closed stream', async () => {
  const one = await login(limitServer.port, 'dave', 'one');
  const two = await login(limitServer.port, 'dave', 'two');
  const three = await connectPlain(limitServer.port);
  await open(three);
  plain(three, 'dave', 'secret');
  assert.is((await sasl(three)).kind, 'success');
  const reply = await bind(three, 'three', 'bind-3');
  const iq = parseElement(reply);
  assert.is(iq.attr('type'), 'error', reply);
  assert.is(iq.attr('id'), 'bind-3');
  const err = iq.child('error');
  assert.is(err?.attr('type'), 'wait', reply);
  assert.equal(err!.getChildren().filter((k) => k.localName !== 'text' && k.getXmlns() === NS.STANZAS).map((k) => k.localName), ['resource-constraint'], reply);
  assert.not.ok(three.closed, 'the stream stays open: the client may retry');
  await pingOk(two, 'two-alive');
  // one closes its stream: its slot is free again
  one.send('</stream:stream>');
  await one.waitClosed();
  let bound = '';
  for (let i = 0; i < 20; i++) {
    const r = await bindAgain(three, 'three', `bind-3-retry-${i}`);
    if (parseElement(r).attr('type') === 'result') { bound = r; break; }
    await sleep(150);
  }
  assert.ok(bound, 'bound once a session ended');
  assertBound(bound, 'dave@localhost/three');
  two.send('</stream:stream>'); three.send('</stream:stream>');
  await Promise.all([two.waitClosed(), three.waitClosed()]);
});

test('a session whose TCP connection drops (no </stream:stream>) is unbound: its slot is free again', async () => {
  const one = await login(limitServer.port, 'erin', 'one');
  const two = await login(limitServer.port, 'erin', 'two');
  await pingOk(two, 'erin-two');
  one.close(); // TCP gone, no stream close
  await one.waitClosed();
  const three = await connectPlain(limitServer.port);
  await open(three);
  plain(three, 'erin', 'secret');
  assert.is((await sasl(three)).kind, 'success');
  three.send(OPEN);
  await features(three);
  let last = '';
  for (let i = 0; i < 20; i++) {
    last = await bindAgain(three, 'three', `erin-3-${i}`);
    if (parseElement(last).attr('type') === 'result') break;
    await sleep(150);
  }
  assertBound(last, 'erin@localhost/three');
});

test('a session closed by a stream error (not-well-formed) is unbound: its slot is free again', async () => {
  const one = await login(limitServer.port, 'grace', 'one');
  await login(limitServer.port, 'grace', 'two');
  one.send('<message><body>x</message>');
  await expectStreamError(one, 'not-well-formed');
  const three = await connectPlain(limitServer.port);
  await open(three);
  plain(three, 'grace', 'secret');
  assert.is((await sasl(three)).kind, 'success');
  three.send(OPEN);
  await features(three);
  let last = '';
  for (let i = 0; i < 20; i++) {
    last = await bindAgain(three, 'three', `grace-3-${i}`);
    if (parseElement(last).attr('type') === 'result') break;
    await sleep(150);
  }
  assertBound(last, 'grace@localhost/three');
});

test.run();
