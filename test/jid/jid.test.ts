import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeKeyPart, unescapeKeyPart } from '../../src/storage/db.ts';
import {
  Jid, JidError, parseJid, tryParseJid,
  prepareLocalpart, prepareResourcepart, prepareDomainpart, type JidPart,
} from '../../src/xmpp/jid.ts';

function rejects(s: string, part: JidPart) {
  try {
    parseJid(s);
  } catch (e) {
    assert.instance(e, JidError, s);
    assert.is((e as JidError).condition, 'jid-malformed');
    assert.is((e as JidError).part, part, `${s}: wrong part (${(e as Error).message})`);
    return;
  }
  assert.unreachable(`${JSON.stringify(s)} should be rejected`);
}

// RFC 7622 §3.5 valid examples, with their normalised forms.
const VALID: [string, string][] = [
  ['juliet@example.com', 'juliet@example.com'],
  ['juliet@example.com/foo', 'juliet@example.com/foo'],
  ['juliet@example.com/foo bar', 'juliet@example.com/foo bar'],
  ['juliet@example.com/foo@bar', 'juliet@example.com/foo@bar'],
  ['foo\\20bar@example.com', 'foo\\20bar@example.com'],
  ['fussball@example.com', 'fussball@example.com'],
  ['fußball@example.com', 'fußball@example.com'],
  ['π@example.com', 'π@example.com'],
  ['Σ@example.com/foo', 'σ@example.com/foo'],
  ['σ@example.com/foo', 'σ@example.com/foo'],
  ['ς@example.com/foo', 'ς@example.com/foo'],
  ['king@example.com/♚', 'king@example.com/♚'],
  ['example.com', 'example.com'],
  ['example.com/foobar', 'example.com/foobar'],
  ['a.example.com/b@example.net', 'a.example.com/b@example.net'],
  // beyond the RFC list
  ['ΣΑΣΑ@example.com', 'σασα@example.com'],
  ['JuLiEt@Example.COM/Balcony', 'juliet@example.com/Balcony'],
  ['ｊｕｌｉｅｔ@example.com', 'juliet@example.com'], // fullwidth → ASCII
  ['juliet@example.com./x', 'juliet@example.com/x'], // trailing dot stripped
  ['juliet@xn--bcher-kva.example', 'juliet@bücher.example'], // A-label → U-label
  ['juliet@BÜCHER.example', 'juliet@bücher.example'],
  ['juliet@münchen。de', 'juliet@münchen.de'], // ideographic full stop is a label separator
  ['juliet@127.0.0.1/r', 'juliet@127.0.0.1/r'],
  ['juliet@[0:0::1]', 'juliet@[::1]'],
  ['juliet@[::FFFF:1.2.3.4]', 'juliet@[::ffff:102:304]'],
  ['a!b@example.com/c!d', 'a!b@example.com/c!d'],
  ['r@example.com/a\u00a0b', 'r@example.com/a b'], // non-ASCII space → U+0020 in OpaqueString
  ['r@example.com/e\u0301', 'r@example.com/\u00e9'], // NFC
  ['l\u00b7l@example.com', 'l\u00b7l@example.com'], // MIDDLE DOT between two l
  ['\u05e9\u05dc\u05d5\u05dd@example.com', '\u05e9\u05dc\u05d5\u05dd@example.com'], // Hebrew, RTL
  ['\u0915\u094d\u200d\u0937@example.com', '\u0915\u094d\u200d\u0937@example.com'], // ZWJ after a virama
];

test('RFC 7622 valid examples normalise', () => {
  for (const [input, want] of VALID) {
    const j = parseJid(input);
    assert.is(j.toString(), want, input);
    assert.is(parseJid(j.toString()).toString(), want, `${input}: not idempotent`);
  }
});

test('RFC 7622 invalid examples and more are rejected with the failing part', () => {
  rejects('"juliet"@example.com', 'localpart');
  rejects('foo bar@example.com', 'localpart');
  rejects('juliet@example.com/', 'resourcepart');
  rejects('henry\u2163@example.com', 'localpart'); // ROMAN NUMERAL FOUR has a compatibility mapping
  rejects('\u265a@example.com', 'localpart'); // symbols are FREE_PVAL, not in IdentifierClass
  rejects('@example.com', 'localpart');
  rejects('juliet@', 'domainpart');
  rejects('', 'domainpart');
  rejects('/foobar', 'domainpart');
  rejects('@', 'localpart');
  for (const c of ['&', "'", ':', '<', '>']) rejects(`a${c}b@example.com`, 'localpart');
  rejects('a\u0007b@example.com', 'localpart'); // control
  rejects('r@example.com/a\u0000', 'resourcepart');
  rejects('r@example.com/\u0378', 'resourcepart'); // unassigned
  rejects('r@example.com/\ue000', 'resourcepart'); // private use
  rejects('r@example.com/a\u00adb', 'resourcepart'); // default ignorable
  rejects('a\u200db@example.com', 'localpart'); // ZWJ with no virama before it
  rejects('a\u00b7l@example.com', 'localpart');
  rejects('abc\u05e9\u05dc\u05d5\u05dd@example.com', 'localpart'); // Bidi: RTL string starting LTR
  rejects('\u05e9\u05dc\u05d5\u05ddabc@example.com', 'localpart');
  rejects('a\u3000b@example.com', 'localpart'); // ideographic space width-maps to a space
  rejects('a@b@example.com', 'domainpart');
  rejects('a@exa mple.com', 'domainpart');
  rejects('a@a_b.example', 'domainpart');
  rejects('a@ex%61mple.com', 'domainpart'); // the URL host parser would percent-decode this
  rejects('a@exa\tmple.com', 'domainpart'); // ... drop the tab
  rejects('a@evil.com\\.example.com', 'domainpart'); // ... and cut at the backslash
  rejects('a@example.com:5222', 'domainpart');
  rejects('a@\uff05\uff16\uff11.example', 'domainpart'); // fullwidth %61
  rejects('a@a..b', 'domainpart');
  rejects('a@example.com..', 'domainpart');
  rejects('a@-a.example', 'domainpart');
  rejects('a@ab--c.example', 'domainpart'); // reserved LDH label
  rejects('a@xn--zz', 'domainpart'); // invalid punycode
  rejects('a@\u{1f4a9}.la', 'domainpart'); // emoji not valid in IDNA2008
  rejects('a@127.1', 'domainpart'); // not dotted-quad
  rejects('a@1.2.3.4.5', 'domainpart');
  rejects('a@[::1', 'domainpart');
  rejects('a@[example.com]', 'domainpart');
  rejects('a@' + 'x'.repeat(64) + '.example', 'domainpart');
});

test('each part is limited to 1023 octets', () => {
  assert.is(parseJid('a'.repeat(1023) + '@example.com').local.length, 1023);
  rejects('a'.repeat(1024) + '@example.com', 'localpart');
  assert.ok(parseJid('π'.repeat(511) + '@example.com')); // 1022 octets
  rejects('π'.repeat(512) + '@example.com', 'localpart'); // 1024 octets
  assert.ok(parseJid('r@example.com/' + 'x'.repeat(1023)));
  rejects('r@example.com/' + 'x'.repeat(1024), 'resourcepart');
  rejects('r@example.com/' + '\u00e9'.repeat(512), 'resourcepart');
  const label = 'a'.repeat(63);
  const domain = Array(16).fill(label).join('.'); // 1023 octets
  assert.is(parseJid(domain).domain, domain);
  rejects(domain + '.b', 'domainpart');
});

test('JID structure: split on the first / then the first @', () => {
  const j = parseJid('a@b/c@d/e');
  assert.equal([j.local, j.domain, j.resource], ['a', 'b', 'c@d/e']);
  const d = parseJid('example.com/x@y');
  assert.equal([d.local, d.domain, d.resource], ['', 'example.com', 'x@y']);
});

test('equals, bare, withResource', () => {
  const a = parseJid('Juliet@Example.com/Balcony');
  const b = new Jid('juliet', 'EXAMPLE.COM', 'Balcony');
  assert.ok(a.equals(b));
  assert.not.ok(a.equals(parseJid('juliet@example.com/balcony'))); // resources are case-sensitive
  assert.not.ok(a.equals(undefined));
  assert.ok(a.bareEquals(parseJid('juliet@example.com/other')));
  assert.is(a.bare().toString(), 'juliet@example.com');
  assert.ok(a.bare().isBare());
  assert.not.ok(a.isBare());
  assert.is(a.toBareString(), 'juliet@example.com');
  assert.is(a.bare().withResource('Orchard\u00a0X').toString(), 'juliet@example.com/Orchard X');
  assert.throws(() => a.withResource('\u0000'), (e: unknown) => e instanceof JidError);
  assert.throws(() => new Jid('a b', 'example.com'), (e: unknown) => e instanceof JidError && e.part === 'localpart');
  assert.is(JSON.stringify({ j: a }), '{"j":"juliet@example.com/Balcony"}');
  assert.is(tryParseJid('@x'), undefined);
  assert.is(tryParseJid('x@y')?.toString(), 'x@y');
});

test('part preparation functions are exported and agree with parseJid', () => {
  assert.is(prepareLocalpart('ΣΑΣΑ'), 'σασα');
  assert.is(prepareLocalpart('ABC'), 'abc');
  assert.is(prepareResourcepart('ABC'), 'ABC');
  assert.is(prepareDomainpart('Example.COM.'), 'example.com');
  // The non-ASCII path must agree with the ASCII fast path on ASCII content.
  assert.is(prepareLocalpart('ABC\u00e9'), 'abc\u00e9');
  assert.is(prepareLocalpart('A\u0301'), '\u00e1'); // case map then NFC
});

test('escapeKeyPart removes every ! and is reversible and injective', () => {
  const samples = ['plain@example.com', 'a!b@example.com', 'a%21b@example.com', '%', '!!', '%25!', ''];
  const seen = new Set<string>();
  for (const s of samples) {
    const e = escapeKeyPart(s);
    assert.not.ok(e.includes('!'), s);
    assert.is(unescapeKeyPart(e), s);
    assert.not.ok(seen.has(e), `collision for ${s}`);
    seen.add(e);
  }
  assert.is(escapeKeyPart('plain@example.com'), 'plain@example.com');
});

test.run();
