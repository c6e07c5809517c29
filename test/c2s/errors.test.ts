// RFC 6120 error paths of the c2s stream over real sockets, by hand-written XML: stream errors (§4.9)
// with the socket closed after them, stanza errors (§8.3) with the stream kept open, STARTTLS policy
// (§5), restricted XML and encoding (§11), limits (auth timeout, stanza size, read and stanza rates,
// slowloris) and the close
// handshake (§4.4).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer, RawClient, OPEN, starttls, type TestServer } from '../helpers/xmpp.ts';
import type { ChorusConfig } from '../../src/config/index.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';

const NS = {
  STREAMS: 'http://etherx.jabber.org/streams',
  STREAM_ERRORS: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  PING: 'urn:xmpp:ping',
} as const;

// ---- helpers ----------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const reEsc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A stream header with the given attributes (each may be overridden or dropped with null). */
function header(o: { to?: string | null; version?: string | null; xmlns?: string | null; streamNs?: string; decl?: boolean } = {}): string {
  const attrs = [
    o.to === null ? '' : ` to='${o.to ?? 'localhost'}'`,
    o.xmlns === null ? '' : ` xmlns='${o.xmlns ?? 'jabber:client'}'`,
    ` xmlns:stream='${o.streamNs ?? NS.STREAMS}'`,
    o.version === null ? '' : ` version='${o.version ?? '1.0'}'`,
  ].join('');
  return `${o.decl === false ? '' : "<?xml version='1.0'?>"}<stream:stream${attrs}>`;
}

const next = (c: RawClient, re: RegExp, ms = 5000): Promise<RegExpExecArray> => c.next(re, ms);

/** The whole element `<kind ... id='id' ...>…</kind>` anywhere in what the client received. */
async function stanza(c: RawClient, kind: string, id: string, ms = 5000): Promise<string> {
  const re = new RegExp(`<${kind}\\b(?=[^>]*\\sid=["']${reEsc(id)}["'])[^>]*?(?:/>|>[\\s\\S]*?</${kind}>)`);
  const text = await c.waitFor(re, ms);
  return re.exec(text)![0];
}

const features = (c: RawClient) => next(c, /<stream:features>[\s\S]*?<\/stream:features>|<stream:features\/>/).then((m) => m[0]);

/**
 * The stream ended with exactly one defined condition (RFC 6120 §4.9): `<stream:error>` holding one
 * condition element in the streams-errors namespace (and optionally `<text/>`), followed by the
 * server's `</stream:stream>` and nothing else, then the TCP connection closed.
 */
async function expectStreamError(c: RawClient, condition: string, o: { headerFirst?: boolean; ms?: number } = {}): Promise<string> {
  await c.waitFor(/<stream:error>[\s\S]*<\/stream:error>/, o.ms ?? 5000);
  await c.waitClosed(o.ms ?? 5000);
  const all = c.received;
  const m = /<stream:error>([\s\S]*?)<\/stream:error>([\s\S]*)$/.exec(all)!;
  const inner = m[1]!;
  const conds = [...inner.matchAll(/<([A-Za-z][\w.-]*)\s+xmlns=(["'])([^"']*)\2\s*(?:\/>|>)/g)]
    .filter((x) => x[1] !== 'text').map((x) => `${x[1]} ${x[3]}`);
  assert.equal(conds, [`${condition} ${NS.STREAM_ERRORS}`], `stream error condition in: ${inner}`);
  assert.ok(/^(?:<([A-Za-z][\w.-]*)\s+xmlns=(["'])[^"']*\2\s*\/>)(?:<text\s[^>]*>[^<]*<\/text>)?$/.test(inner.trim()),
    `stream error element shape: ${inner}`);
  assert.is(m[2]!.trim(), '</stream:stream>', 'the server closes its stream right after the error');
  if (o.headerFirst) {
    // §4.9.1.1: an error before our header is still preceded by a stream header.
    assert.ok(/^(?:<\?xml[^>]*\?>)?\s*<stream:stream\s[^>]*xmlns:stream=["']http:\/\/etherx\.jabber\.org\/streams["'][^>]*>/.test(all),
      `stream header before the error: ${all.slice(0, 300)}`);
    assert.is((all.match(/<stream:stream\s/g) ?? []).length, 1, 'exactly one header');
  }
  assert.ok(c.closed, 'socket closed');
  return inner;
}

/** Asserts an RFC 6120 §8.3 stanza error reply; returns the parsed stanza. */
function assertStanzaError(xml: string, kind: string, id: string | null, type: string, condition: string): XmlElement {
  const el = parseElement(xml);
  assert.is(el.localName, kind, `element: ${xml}`);
  assert.is(el.attr('type'), 'error', `type='error': ${xml}`);
  assert.is(el.attr('id') ?? null, id, `id: ${xml}`);
  const errors = el.getChildren('error');
  assert.is(errors.length, 1, `one <error/>: ${xml}`);
  assert.is(errors[0]!.attr('type'), type, `error type: ${xml}`);
  const conds = errors[0]!.getChildren().filter((k) => k.localName !== 'text' && k.getXmlns() === NS.STANZAS).map((k) => k.localName);
  assert.equal(conds, [condition], `error condition: ${xml}`);
  return el;
}

async function opened(port: number, head = OPEN): Promise<RawClient> {
  const c = await RawClient.connect(port);
  c.socket.setNoDelay(true);
  c.send(head);
  await features(c);
  return c;
}

/** PLAIN login (the server must allow it without TLS), stream restart, resource bind. */
async function login(port: number, user = 'alice', resource = 'r1'): Promise<RawClient> {
  const c = await opened(port);
  c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64(`\0${user}\0secret`)}</auth>`);
  await next(c, /<success\b[^>]*?(?:\/>|>[^<]*<\/success>)/);
  c.send(OPEN);
  await features(c);
  c.send(`<iq type='set' id='bind-1'><bind xmlns='${NS.BIND}'><resource>${resource}</resource></bind></iq>`);
  const r = (await next(c, /<iq\b(?=[^>]*\sid=["']bind-1["'])[^>]*?(?:\/>|>[\s\S]*?<\/iq>)/))[0];
  assert.ok(r.includes(`<jid>${user}@localhost/${resource}</jid>`), `bound: ${r}`);
  return c;
}

/** An IQ ping to the server answered: the stream is alive. */
async function pingOk(c: RawClient, id: string): Promise<void> {
  c.send(`<iq type='get' to='localhost' id='${id}'><ping xmlns='${NS.PING}'/></iq>`);
  const r = parseElement(await stanza(c, 'iq', id));
  assert.is(r.attr('type'), 'result');
  assert.not.ok(c.closed);
}

async function withServer(over: (c: ChorusConfig) => void, fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer(over);
  try { await fn(s); } finally { await s.stop(); }
}

// ---- the shared server: TLS optional, so PLAIN works on a plain socket ---------------------------------

let server: TestServer;
const clients: RawClient[] = [];
const track = (c: RawClient) => { clients.push(c); return c; };

test.before(async () => {
  // Many logins of one account here: the session limit is auth.test.ts's business.
  server = await startServer((c) => { c.c2s_require_encryption = false; c.limits.sessions_per_account = 1000; });
  await server.addUser('alice');
  await server.addUser('bob');
});
test.after.each(() => { for (const c of clients.splice(0)) c.close(); });
test.after(async () => { await server.stop(); });

// ---- §11: not well-formed, restricted XML, encoding -------------------------------------------------------

test('not-well-formed: mismatched end tag', async () => {
  const c = track(await opened(server.port));
  c.send(`<message to='bob@localhost'><body>hi</message>`);
  await expectStreamError(c, 'not-well-formed');
});

test('not-well-formed: bare & in character data (after bind)', async () => {
  const c = track(await login(server.port, 'alice', 'amp'));
  c.send(`<message to='bob@localhost' id='amp1'><body>fish & chips</body></message>`);
  await expectStreamError(c, 'not-well-formed');
});

test('not-well-formed: undefined entity (&nbsp;) in text and in an attribute', async () => {
  const c = track(await opened(server.port));
  c.send(`<message to='bob@localhost'><body>a&nbsp;b</body></message>`);
  await expectStreamError(c, 'not-well-formed');
  const d = track(await opened(server.port));
  d.send(`<message to='bob@localhost' id='x&copy;'/>`);
  await expectStreamError(d, 'not-well-formed');
});

test('not-well-formed: garbage instead of a stream header gets a header first', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send('hello there\r\n');
  await expectStreamError(c, 'not-well-formed', { headerFirst: true });
});

test('restricted-xml: DOCTYPE before the stream header', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(`<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>${header({ decl: false })}`);
  await expectStreamError(c, 'restricted-xml', { headerFirst: true });
});

test('restricted-xml: a comment inside a stanza', async () => {
  const c = track(await opened(server.port));
  c.send(`<message to='bob@localhost'><!-- hi --><body>x</body></message>`);
  await expectStreamError(c, 'restricted-xml');
});

test('restricted-xml: a comment between stanzas', async () => {
  const c = track(await opened(server.port));
  c.send(`<!-- hi -->`);
  await expectStreamError(c, 'restricted-xml');
});

test('restricted-xml: a processing instruction', async () => {
  const c = track(await opened(server.port));
  c.send(`<?xml-stylesheet href='a.xsl'?>`);
  await expectStreamError(c, 'restricted-xml');
  const d = track(await opened(server.port));
  d.send(`<message to='bob@localhost'><body><?php echo 1; ?></body></message>`);
  await expectStreamError(d, 'restricted-xml');
});

test('restricted-xml: an internal DTD subset inside the stream', async () => {
  const c = track(await opened(server.port));
  c.send(`<!ENTITY lol 'lol'>`);
  await expectStreamError(c, 'restricted-xml');
});

test('UTF-8 split across writes at every byte of multi-byte characters', async () => {
  const c = track(await login(server.port, 'alice', 'utf8'));
  const chars = ['é', '€', '😀', '中'];
  let n = 0;
  const roundTrip = async (pieces: Buffer[], text: string) => {
    const id = `u${++n}`;
    for (const [i, p] of pieces.entries()) { if (i > 0) await sleep(15); c.send(p); }
    const m = parseElement(await stanza(c, 'message', id));
    assert.is(m.attr('from'), 'alice@localhost/utf8');
    assert.is(m.getChildText('body'), text, `body of ${id}`);
  };
  for (const ch of chars) {
    const text = `a${ch}b`;
    const mk = () => Buffer.from(`<message to='alice@localhost/utf8' type='chat' id='u${n + 1}'><body>${text}</body></message>`, 'utf8');
    const charBytes = Buffer.byteLength(ch);
    assert.ok(charBytes >= 2);
    // every split point inside the character
    for (let k = 1; k < charBytes; k++) {
      const buf = mk();
      const at = buf.indexOf(Buffer.from(ch, 'utf8')) + k;
      await roundTrip([buf.subarray(0, at), buf.subarray(at)], text);
    }
    // and each byte of the character on its own
    const buf = mk();
    const start = buf.indexOf(Buffer.from(ch, 'utf8'));
    const pieces = [buf.subarray(0, start)];
    for (let k = 0; k < charBytes; k++) pieces.push(buf.subarray(start + k, start + k + 1));
    pieces.push(buf.subarray(start + charBytes));
    await roundTrip(pieces, text);
  }
  // a character split inside an attribute value too
  const id = 'id-😀-中';
  const buf = Buffer.from(`<iq type='get' to='localhost' id='${id}'><ping xmlns='${NS.PING}'/></iq>`, 'utf8');
  const at = buf.indexOf(Buffer.from('😀', 'utf8')) + 2;
  c.send(buf.subarray(0, at)); await sleep(15); c.send(buf.subarray(at));
  assert.is(parseElement(await stanza(c, 'iq', id)).attr('type'), 'result');
  assert.not.ok(c.closed);
});

test('invalid UTF-8 bytes → unsupported-encoding', async () => {
  const bad: Array<[string, number[]]> = [
    ['bad continuation', [0xc3, 0x28]],
    ['lone continuation byte', [0x80]],
    ['overlong encoding of /', [0xc0, 0xaf]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['0xFF', [0xff]],
  ];
  for (const [what, bytes] of bad) {
    const c = track(await opened(server.port));
    c.send(Buffer.concat([Buffer.from(`<message to='bob@localhost'><body>a`), Buffer.from(bytes), Buffer.from(`b</body></message>`)]));
    try { await expectStreamError(c, 'unsupported-encoding'); } catch (err) { throw new Error(`${what}: ${(err as Error).message}`); }
  }
});

test('UTF-16 (byte order mark) → unsupported-encoding, header first', async () => {
  for (const [what, bom, enc] of [['UTF-16BE', [0xfe, 0xff], 'be'], ['UTF-16LE', [0xff, 0xfe], 'le']] as const) {
    const c = track(await RawClient.connect(server.port));
    const le = Buffer.from(header(), 'utf16le');
    const body = enc === 'le' ? le : Buffer.from(le).swap16();
    c.send(Buffer.concat([Buffer.from(bom), body]));
    try { await expectStreamError(c, 'unsupported-encoding', { headerFirst: true }); } catch (err) { throw new Error(`${what}: ${(err as Error).message}`); }
  }
});

test('unsupported-encoding: an XML declaration naming another encoding', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(`<?xml version='1.0' encoding='ISO-8859-1'?>${header({ decl: false })}`);
  await expectStreamError(c, 'unsupported-encoding', { headerFirst: true });
});

// ---- §4.7, §4.9.3: the stream header ---------------------------------------------------------------

test('invalid-namespace: wrong stream namespace', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(header({ streamNs: 'http://example.com/streams' }));
  await expectStreamError(c, 'invalid-namespace', { headerFirst: true });
});

test('invalid-namespace: content namespace jabber:server on the c2s port', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(header({ xmlns: 'jabber:server' }));
  await expectStreamError(c, 'invalid-namespace', { headerFirst: true });
});

test('invalid-namespace: unknown content namespace', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(header({ xmlns: 'urn:example:bogus' }));
  await expectStreamError(c, 'invalid-namespace', { headerFirst: true });
});

test('host-unknown: to a domain this server does not serve', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(header({ to: 'nope.example' }));
  await expectStreamError(c, 'host-unknown', { headerFirst: true });
  assert.not.ok(c.received.includes('<stream:features'), 'no features for an unknown host');
});

test('unsupported-version: 0.9, 2.0 and a missing version', async () => {
  for (const version of ['0.9', '2.0', null]) {
    const c = track(await RawClient.connect(server.port));
    c.send(header({ version }));
    try { await expectStreamError(c, 'unsupported-version', { headerFirst: true }); } catch (err) { throw new Error(`version ${version}: ${(err as Error).message}`); }
    assert.not.ok(c.received.includes('<stream:features'));
  }
});

test('version 1.1 is answered with 1.0 (§4.7.5), not an error', async () => {
  const c = track(await RawClient.connect(server.port));
  c.send(header({ version: '1.1' }));
  await features(c);
  assert.match(c.received, /<stream:stream\s[^>]*version=["']1\.0["']/);
  assert.not.ok(c.received.includes('<stream:error'));
});

// ---- before authentication ---------------------------------------------------------------------------

test('a stanza before authentication → not-authorized', async () => {
  const c = track(await opened(server.port));
  c.send(`<message to='bob@localhost' id='early'><body>hi</body></message>`);
  await expectStreamError(c, 'not-authorized');
  assert.not.ok(/<message\b/.test(c.received), 'nothing routed back');
  const d = track(await opened(server.port));
  d.send(`<iq type='get' to='localhost' id='early-iq'><ping xmlns='${NS.PING}'/></iq>`);
  await expectStreamError(d, 'not-authorized');
});

test('stanza limit → policy-violation (complete and unfinished stanzas)', async () => {
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.max_stanza_bytes = 1024; }, async (s) => {
    await s.addUser('alice');
    const c = track(await login(s.port));
    // under the limit: delivered
    const small = `<message to='alice@localhost/r1' type='chat' id='small'><body>${'s'.repeat(800)}</body></message>`;
    assert.ok(Buffer.byteLength(small) < 1024);
    c.send(small);
    await stanza(c, 'message', 'small');
    c.send(`<message to='alice@localhost/r1' type='chat' id='big'><body>${'b'.repeat(2000)}</body></message>`);
    await expectStreamError(c, 'policy-violation');
    assert.not.ok(/id="big"/.test(c.received), 'the oversize stanza was not delivered');
    // an unfinished stanza that keeps growing is cut off without waiting for its end
    const d = track(await opened(s.port));
    d.send(`<message to='alice@localhost'><body>${'x'.repeat(3000)}`);
    await expectStreamError(d, 'policy-violation');
  });
});

test('TLS required (default config): features say <required/>, no mechanisms before TLS; <auth> → policy-violation', async () => {
  await withServer(() => {}, async (s) => {
    assert.is(s.config.c2s_require_encryption, true, 'the default requires encryption');
    await s.addUser('alice');
    const c = track(await RawClient.connect(s.port));
    c.send(OPEN);
    const f = await features(c);
    assert.match(f, /<starttls xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']>\s*<required\/>\s*<\/starttls>/);
    assert.not.ok(f.includes('<mechanisms'), `no SASL before TLS: ${f}`);
    assert.not.ok(f.includes('PLAIN'), 'PLAIN is not offered before TLS');
    c.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64('\0alice\0secret')}</auth>`);
    await expectStreamError(c, 'policy-violation');
    assert.not.ok(c.received.includes('<success'), 'no authentication in plaintext');

    // a SCRAM attempt is refused the same way
    const d = track(await RawClient.connect(s.port));
    d.send(OPEN);
    await features(d);
    d.send(`<auth xmlns='${NS.SASL}' mechanism='SCRAM-SHA-256'>${b64('n,,n=alice,r=abcdefghijklmnop')}</auth>`);
    await expectStreamError(d, 'policy-violation');

    // a stanza before TLS as well
    const e = track(await RawClient.connect(s.port));
    e.send(OPEN);
    await features(e);
    e.send(`<message to='alice@localhost'><body>x</body></message>`);
    await expectStreamError(e, 'policy-violation');

    // after STARTTLS: a fresh header, mechanisms including PLAIN, no starttls any more
    const p = track(await RawClient.connect(s.port));
    p.send(OPEN);
    await features(p);
    const t = track((await starttls(p)).c);
    t.send(OPEN);
    const f2 = await features(t);
    assert.not.ok(f2.includes('<starttls'), `no starttls after TLS: ${f2}`);
    assert.match(f2, /<mechanism>PLAIN<\/mechanism>/);
    assert.match(f2, /<mechanism>SCRAM-SHA-256<\/mechanism>/);
  });
});

// ---- after bind: stanza errors (§8.3) and stream errors -------------------------------------------------

test('after bind: a forged from → invalid-from', async () => {
  const c = track(await login(server.port, 'alice', 'forge'));
  // one's own full JID and bare JID are fine (§8.1.2.1)
  c.send(`<iq type='get' to='localhost' id='own-full' from='alice@localhost/forge'><ping xmlns='${NS.PING}'/></iq>`);
  assert.is(parseElement(await stanza(c, 'iq', 'own-full')).attr('type'), 'result');
  c.send(`<message to='bob@localhost' from='bob@localhost/x' id='forged'><body>I am bob</body></message>`);
  await expectStreamError(c, 'invalid-from');
  const d = track(await login(server.port, 'alice', 'forge2'));
  d.send(`<message to='bob@localhost' from='alice@localhost/someone-else' id='forged2'><body>x</body></message>`);
  await expectStreamError(d, 'invalid-from');
});

test('after bind: an iq with no id (or no type) → bad-request, the stream stays open', async () => {
  const c = track(await login(server.port, 'alice', 'noid'));
  c.send(`<iq type='get' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  const m = await next(c, /<iq\b[^>]*>[\s\S]*?<\/iq>/);
  assertStanzaError(m[0], 'iq', null, 'modify', 'bad-request');
  c.send(`<iq id='notype' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'notype'), 'iq', 'notype', 'modify', 'bad-request');
  c.send(`<iq type='fetch' id='badtype' to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'badtype'), 'iq', 'badtype', 'modify', 'bad-request');
  await pingOk(c, 'alive-noid');
});

test('after bind: an iq get with no child element → bad-request (to the server and to oneself)', async () => {
  const c = track(await login(server.port, 'alice', 'empty'));
  c.send(`<iq type='get' to='localhost' id='empty-host'/>`);
  assertStanzaError(await stanza(c, 'iq', 'empty-host'), 'iq', 'empty-host', 'modify', 'bad-request');
  c.send(`<iq type='get' id='empty-self'/>`);
  assertStanzaError(await stanza(c, 'iq', 'empty-self', 3000), 'iq', 'empty-self', 'modify', 'bad-request');
  await pingOk(c, 'alive-empty');
});

test('after bind: a message to a malformed JID → jid-malformed, the stream stays open', async () => {
  const c = track(await login(server.port, 'alice', 'malformed'));
  const bad = ['@localhost', 'a@b@localhost', 'alice@localhost/', 'bad user@localhost'];
  for (const [i, to] of bad.entries()) {
    c.send(`<message to='${to}' id='jm${i}' type='chat'><body>x</body></message>`);
    try {
      assertStanzaError(await stanza(c, 'message', `jm${i}`), 'message', `jm${i}`, 'modify', 'jid-malformed');
    } catch (err) { throw new Error(`to='${to}': ${(err as Error).message}`); }
  }
  c.send(`<iq type='get' to='a@b@localhost' id='jm-iq'><ping xmlns='${NS.PING}'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'jm-iq'), 'iq', 'jm-iq', 'modify', 'jid-malformed');
  await pingOk(c, 'alive-malformed');
});

test('after bind: to a remote domain → remote-server-not-found (no s2s)', async () => {
  const c = track(await login(server.port, 'alice', 'remote'));
  c.send(`<message to='someone@remote.example' id='rm1' type='chat'><body>x</body></message>`);
  const m = assertStanzaError(await stanza(c, 'message', 'rm1'), 'message', 'rm1', 'cancel', 'remote-server-not-found');
  assert.is(m.attr('from'), 'someone@remote.example', 'the error comes from the address it was sent to');
  c.send(`<iq type='get' to='remote.example' id='rm2'><ping xmlns='${NS.PING}'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'rm2'), 'iq', 'rm2', 'cancel', 'remote-server-not-found');
  await pingOk(c, 'alive-remote');
});

test('after bind: an iq get to the server in an unknown namespace → service-unavailable', async () => {
  const c = track(await login(server.port, 'alice', 'unknownns'));
  c.send(`<iq type='get' to='localhost' id='uns1'><query xmlns='urn:example:nothing-here'/></iq>`);
  const r = assertStanzaError(await stanza(c, 'iq', 'uns1'), 'iq', 'uns1', 'cancel', 'service-unavailable');
  assert.is(r.attr('from'), 'localhost');
  c.send(`<iq type='set' to='localhost' id='uns2'><query xmlns='urn:example:nothing-here'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'uns2'), 'iq', 'uns2', 'cancel', 'service-unavailable');
  await pingOk(c, 'alive-unknownns');
});

test('after bind: a message to a local user with no account → service-unavailable, nothing stored', async () => {
  const c = track(await login(server.port, 'alice', 'nouser'));
  c.send(`<message to='nobody@localhost' id='nu1' type='chat'><body>anyone?</body></message>`);
  let reply: string | null = null;
  try { reply = await stanza(c, 'message', 'nu1', 3000); } catch { /* reported below */ }
  // Whatever the reply, the message must not sit in offline storage for an account that does not exist.
  const stored: string[] = [];
  for await (const k of server.node.runtime.db.keys({ gte: 'offline!nobody@localhost!', lt: 'offline!nobody@localhost!\xff' })) stored.push(k);
  assert.ok(reply !== null && stored.length === 0,
    `RFC 6121 §8.5.1: answered with service-unavailable and not stored; got reply: ${reply ?? 'none in 3 s'}, offline keys: ${JSON.stringify(stored)}`);
  const m = assertStanzaError(reply!, 'message', 'nu1', 'cancel', 'service-unavailable');
  assert.is(m.attr('from'), 'nobody@localhost');
  await pingOk(c, 'alive-nouser');
});

test('after bind: an iq to a local user with no account → service-unavailable', async () => {
  const c = track(await login(server.port, 'alice', 'nouser-iq'));
  c.send(`<iq type='get' to='nobody@localhost' id='nui1'><query xmlns='jabber:iq:version'/></iq>`);
  assertStanzaError(await stanza(c, 'iq', 'nui1', 3000), 'iq', 'nui1', 'cancel', 'service-unavailable');
  await pingOk(c, 'alive-nouser-iq');
});

test('after bind: a top-level element that is not a stanza → unsupported-stanza-type', async () => {
  const c = track(await login(server.port, 'alice', 'unsupported'));
  c.send(`<foo/>`);
  await expectStreamError(c, 'unsupported-stanza-type');
});

test('bad-namespace-prefix: an undeclared prefix', async () => {
  const c = track(await login(server.port, 'alice', 'prefix'));
  c.send(`<x:message to='bob@localhost'><x:body>x</x:body></x:message>`);
  await expectStreamError(c, 'bad-namespace-prefix');
});

// ---- timers and rates ----------------------------------------------------------------------------------

test('auth timeout → connection-timeout, for a stream that authenticated but never bound too; a bound stream is not timed out', async () => {
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.auth_timeout_seconds = 1; }, async (s) => {
    await s.addUser('alice');
    const t0 = Date.now();
    const idle = track(await opened(s.port));
    const silent = track(await RawClient.connect(s.port)); // never sends a header
    const ok = track(await login(s.port));
    // Authenticated but never bound: the same limit covers bind (#7.3), or such a stream lives forever.
    const unbound = track(await opened(s.port));
    unbound.send(`<auth xmlns='${NS.SASL}' mechanism='PLAIN'>${b64('\0alice\0secret')}</auth>`);
    await next(unbound, /<success\b/);
    unbound.send(OPEN);
    await features(unbound);
    await expectStreamError(idle, 'connection-timeout', { ms: 4000 });
    assert.ok(Date.now() - t0 >= 950, `not before the timeout (${Date.now() - t0} ms)`);
    await expectStreamError(silent, 'connection-timeout', { ms: 4000, headerFirst: true });
    await expectStreamError(unbound, 'connection-timeout', { ms: 4000 });
    await sleep(Math.max(0, 1600 - (Date.now() - t0)));
    await pingOk(ok, 'still-here');
  });
});

test('limits.max_xml_depth and max_xml_attributes: one level or attribute more is policy-violation (#8)', async () => {
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.max_xml_depth = 5; c.limits.max_xml_attributes = 10; }, async (s) => {
    await s.addUser('alice');
    const nest = (n: number) => '<x xmlns="urn:example:nest">'.repeat(n) + '</x>'.repeat(n);
    const attrs = (n: number) => Array.from({ length: n - 3 }, (_, i) => ` a${i}='v'`).join(''); // plus type, id and to
    const ok = track(await login(s.port));
    // depth 5: the message, then four nested elements; 10 attributes: type, id, to and seven more.
    ok.send(`<message to='alice@localhost' type='chat' id='deep-ok'>${nest(4)}</message><iq type='get' id='attrs-ok'${attrs(10)} to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
    await pingOk(ok, 'after-limits');
    const deep = track(await login(s.port, 'alice', 'deep'));
    deep.send(`<message to='alice@localhost' type='chat'>${nest(5)}</message>`);
    await expectStreamError(deep, 'policy-violation');
    const wide = track(await login(s.port, 'alice', 'wide'));
    wide.send(`<iq type='get' id='w'${attrs(11)} to='localhost'><ping xmlns='${NS.PING}'/></iq>`);
    await expectStreamError(wide, 'policy-violation');
  });
});

test('rate limit: the server reads slower but drops nothing; all answered in order', async () => {
  const rate = 50_000, burst = 8192;
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.bytes_per_second = rate; c.limits.burst_bytes = burst; }, async (s) => {
    await s.addUser('alice');
    const c = track(await login(s.port));
    await sleep(300); // let the bucket refill after the login
    const N = 500;
    const pad = 'p'.repeat(520);
    let burstXml = '';
    for (let i = 0; i < N; i++) burstXml += `<iq type='get' to='localhost' id='q${i}-${pad}'><ping xmlns='${NS.PING}'/></iq>`;
    const bytes = Buffer.byteLength(burstXml);
    const t0 = Date.now();
    c.send(burstXml);
    await stanza(c, 'iq', `q${N - 1}-${pad}`, 30_000);
    const elapsed = Date.now() - t0;
    const order = [...c.received.matchAll(/<iq\b[^>]*\sid="q(\d+)-p+"[^>]*>/g)].map((m) => Number(m[1]));
    assert.equal(order, Array.from({ length: N }, (_, i) => i), 'every stanza answered once, in order');
    assert.ok(/<iq\b[^>]*type="result"[^>]*id="q0-/.test(c.received) || /<iq\b[^>]*id="q0-[^>]*type="result"/.test(c.received));
    // A reader can take at most one socket read (64 KiB) beyond what the bucket allows.
    const minMs = Math.floor(((bytes - burst - 65_536) / rate) * 1000) - 50;
    assert.ok(minMs > 1000, 'the burst is big enough to measure');
    assert.ok(elapsed >= minMs, `${bytes} bytes at ${rate} B/s took ${elapsed} ms; expected at least ${minMs} ms`);
    assert.not.ok(c.closed);
  });
});

test('stanza rate limit: a burst of pings over limits.stanzas_per_second is read slower, none dropped, all answered in order (#8)', async () => {
  const rate = 40, burst = 20;
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.stanzas_per_second = rate; c.limits.stanza_burst = burst; }, async (s) => {
    await s.addUser('alice');
    const c = track(await login(s.port));
    await sleep(burst / rate * 1000 + 100); // the bucket full again after the login's stanzas
    const N = 120;
    let pings = '';
    for (let i = 0; i < N; i++) pings += `<iq type='get' to='localhost' id='s${i}'><ping xmlns='${NS.PING}'/></iq>`;
    const t0 = Date.now();
    c.send(pings); // one write: the framer holds them all, the rate decides when each is read
    await stanza(c, 'iq', `s${N - 1}`, 30_000);
    const elapsed = Date.now() - t0;
    const order = [...c.received.matchAll(/<iq\b[^>]*\sid="s(\d+)"[^>]*>/g)].map((m) => Number(m[1]));
    assert.equal(order, Array.from({ length: N }, (_, i) => i), 'every stanza answered once, in order');
    const minMs = ((N - burst - 1) / rate) * 1000 - 100;
    assert.ok(elapsed >= minMs, `${N} stanzas at ${rate}/s (burst ${burst}) took ${elapsed} ms; expected at least ${minMs} ms`);
    assert.not.ok(c.closed);
  });
});

test('slowloris: a stanza trickled in a byte at a time is cut off after limits.stanza_timeout_seconds; a slow but steady client is not (#8)', async () => {
  await withServer((c) => { c.c2s_require_encryption = false; c.limits.stanza_timeout_seconds = 1; }, async (s) => {
    await s.addUser('alice');
    const slow = track(await login(s.port, 'alice', 'slow'));
    const steady = track(await login(s.port, 'alice', 'steady'));
    const t0 = Date.now();
    const part = `<message to='alice@localhost/steady' type='chat'><body>${'z'.repeat(200)}`;
    let i = 0;
    const drip = setInterval(() => { if (!slow.closed && i < part.length) slow.send(part[i++]!); }, 150);
    // Meanwhile a client that completes a stanza every 300 ms stays.
    for (let k = 0; k < 8; k++) { await sleep(300); steady.send(`<presence><status>${k}</status></presence>`); }
    try {
      await expectStreamError(slow, 'policy-violation', { ms: 5000 });
    } finally { clearInterval(drip); }
    assert.ok(Date.now() - t0 >= 950, 'not before the timeout');
    await pingOk(steady, 'steady-still-here');
  });
});

// ---- §4.4: closing -------------------------------------------------------------------------------------

test('</stream:stream> before auth → the server closes its stream too', async () => {
  const c = track(await opened(server.port));
  const mark = c.received.length;
  c.send('</stream:stream>');
  await c.waitClosed();
  assert.is(c.received.slice(mark).trim(), '</stream:stream>');
});

test('</stream:stream> after bind → the server closes its stream too', async () => {
  const c = track(await login(server.port, 'alice', 'closing'));
  await pingOk(c, 'before-close');
  const mark = c.received.length;
  c.send('</stream:stream>');
  await c.waitClosed();
  assert.is(c.received.slice(mark).trim(), '</stream:stream>');
});

test.run();
