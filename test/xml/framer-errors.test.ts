// Every violation the framer detects, each fed whole and byte by byte: the stream error condition must not
// depend on how the input was cut.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FramerOptions } from '../../src/xml/framer.ts';
import type { StreamErrorCondition } from '../../src/xmpp/errors.ts';
import { HEADER, feed, feedBytes, recorder, stanzas } from '../helpers/framer.ts';

type Case = [label: string, input: string | Buffer, condition: StreamErrorCondition, options?: FramerOptions];

const H = HEADER;
const STREAMS = 'http://etherx.jabber.org/streams';
const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

const cases: Case[] = [
  // RFC 6120 §11.1 restricted XML
  ['DOCTYPE in the prolog', "<?xml version='1.0'?><!DOCTYPE stream:stream>", 'restricted-xml'],
  ['DOCTYPE with an internal entity subset', "<!DOCTYPE s [<!ENTITY x 'boom'>]>" + H, 'restricted-xml'],
  ['DOCTYPE inside a stanza', H + '<message><!DOCTYPE x></message>', 'restricted-xml'],
  ['ENTITY declaration inside a stanza', H + "<message><!ENTITY x 'y'></message>", 'restricted-xml'],
  ['ELEMENT declaration', H + '<!ELEMENT a ANY>', 'restricted-xml'],
  ['ATTLIST declaration', H + '<message><!ATTLIST a b CDATA #IMPLIED></message>', 'restricted-xml'],
  ['NOTATION declaration', H + '<!NOTATION n SYSTEM "x">', 'restricted-xml'],
  ['comment in the prolog', '<!-- hello -->' + H, 'restricted-xml'],
  ['comment between stanzas', H + '<presence/><!-- hi -->', 'restricted-xml'],
  ['comment inside a stanza', H + '<message><!-- x --></message>', 'restricted-xml'],
  ['processing instruction inside a stanza', H + '<message><?php echo 1 ?></message>', 'restricted-xml'],
  ['processing instruction between stanzas', H + '<?foo bar?>', 'restricted-xml'],
  ['processing instruction in the prolog', '<?xml-stylesheet href="a"?>' + H, 'restricted-xml'],
  ['XML declaration not at the very start', " <?xml version='1.0'?>" + H, 'restricted-xml'],
  ['second XML declaration', "<?xml version='1.0'?><?xml version='1.0'?>" + H, 'restricted-xml'],
  ['XML declaration after the header', H + "<?xml version='1.0'?>", 'restricted-xml'],

  // well-formedness: tags
  ['mismatched end tag', H + '<message><body></message></body>', 'not-well-formed'],
  ['end tag with a different prefix', H + "<a:x xmlns:a='u' xmlns:b='u'></b:x>", 'not-well-formed'],
  ['stray end tag closes the stream wrongly', H + '</message>', 'not-well-formed'],
  ['end tag before any header', '</stream:stream>', 'not-well-formed'],
  ['stream closed with the wrong name', H + '</stream:streamx>', 'not-well-formed'],
  ['stream closed without its prefix', H + '</stream>', 'not-well-formed'],
  ['space before an element name', H + '< message/>', 'not-well-formed'],
  ['element name starting with a digit', H + '<1message/>', 'not-well-formed'],
  ['element name starting with a hyphen', H + '<-a/>', 'not-well-formed'],
  ['element name with two colons', H + "<a:b:c xmlns:a='u'/>", 'not-well-formed'],
  ['element name starting with a colon', H + '<:a/>', 'not-well-formed'],
  ['element name ending with a colon', H + '<a:/>', 'not-well-formed'],
  ['xmlns prefix on an element', H + "<xmlns:a xmlns:a='u'/>", 'not-well-formed'],
  ['junk inside a start tag', H + "<message id='1' ?/>", 'not-well-formed'],
  ['slash not followed by >', H + '<message/ >', 'not-well-formed'],
  ['space after </', H + '<message></ message>', 'not-well-formed'],
  ['attribute in an end tag', H + "<message></message id='1'>", 'not-well-formed'],
  ['unterminated end tag followed by <', H + '<message></message<', 'not-well-formed'],

  // well-formedness: attributes
  ['duplicate attribute', H + "<message id='1' id='2'/>", 'not-well-formed'],
  ['duplicate attribute in a child', H + "<message><x a='1' b='2' a='3'/></message>", 'not-well-formed'],
  ['duplicate expanded attribute name', H + "<message xmlns:a='u' xmlns:b='u' a:x='1' b:x='2'/>", 'not-well-formed'],
  ['duplicate namespace declaration', H + "<message xmlns='a' xmlns='b'/>", 'not-well-formed'],
  ["'<' in a single-quoted attribute value", H + "<message id='a<b'/>", 'not-well-formed'],
  ["'<' in a double-quoted attribute value", H + '<message><x y="<"/></message>', 'not-well-formed'],
  ['unquoted attribute value', H + '<message id=1/>', 'not-well-formed'],
  ['attribute without a value', H + '<message id/>', 'not-well-formed'],
  ['attribute without a value before another', H + "<message id to='x'/>", 'not-well-formed'],
  ['no whitespace between attributes', H + "<message id='1'to='x'/>", 'not-well-formed'],
  ['attribute name with two colons', H + "<message a:b:c='1'/>", 'not-well-formed'],
  ['attribute name starting with a digit', H + "<message 1a='1'/>", 'not-well-formed'],
  ['unterminated attribute value spanning the tag', H + "<message id='1/><body>x</body></message>", 'not-well-formed'],

  // well-formedness: namespace declarations
  ['xmlns prefix declared', H + "<message xmlns:xmlns='urn:x'/>", 'not-well-formed'],
  ['xml prefix rebound', H + "<message xmlns:xml='urn:other'/>", 'not-well-formed'],
  ['prefix undeclared (XML 1.0 forbids)', H + "<message xmlns:a=''/>", 'not-well-formed'],
  ['XML namespace as the default', H + "<message xmlns='http://www.w3.org/XML/1998/namespace'/>", 'not-well-formed'],
  ['xmlns namespace as the default', H + "<message xmlns='http://www.w3.org/2000/xmlns/'/>", 'not-well-formed'],
  ['XML namespace bound to another prefix', H + "<message xmlns:a='http://www.w3.org/XML/1998/namespace'/>", 'not-well-formed'],
  ['xmlns namespace bound to a prefix', H + "<message xmlns:a='http://www.w3.org/2000/xmlns/'/>", 'not-well-formed'],
  ['xmlns prefix on an attribute of the header', "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns:xmlns='u'>", 'not-well-formed'],

  // well-formedness: references
  ['undefined entity', H + '<message><body>&nbsp;</body></message>', 'not-well-formed'],
  ['entity with wrong case', H + '<message><body>&Amp;</body></message>', 'not-well-formed'],
  ['long undefined entity', H + '<message><body>&verylongentityname;</body></message>', 'not-well-formed'],
  ['bare & in text', H + '<message><body>a & b</body></message>', 'not-well-formed'],
  ['bare & at the end of text', H + '<message><body>a &</body></message>', 'not-well-formed'],
  ['bare & in an attribute', H + "<message id='a&b'/>", 'not-well-formed'],
  ['undefined entity in an attribute', H + "<message id='&copy;'/>", 'not-well-formed'],
  ['&#0; in text', H + '<message><body>&#0;</body></message>', 'not-well-formed'],
  ['&#x0; in an attribute', H + "<message id='&#x0;'/>", 'not-well-formed'],
  ['&#8; (backspace)', H + '<message><body>&#8;</body></message>', 'not-well-formed'],
  ['&#xB; (vertical tab)', H + '<message><body>&#xB;</body></message>', 'not-well-formed'],
  ['&#x1F; (unit separator)', H + "<message id='&#x1F;'/>", 'not-well-formed'],
  ['&#xD800; (surrogate)', H + '<message><body>&#xD800;</body></message>', 'not-well-formed'],
  ['&#xDFFF; (surrogate)', H + "<message id='&#xDFFF;'/>", 'not-well-formed'],
  ['&#xFFFE;', H + '<message><body>&#xFFFE;</body></message>', 'not-well-formed'],
  ['&#xFFFF;', H + '<message><body>&#65535;</body></message>', 'not-well-formed'],
  ['&#x110000; (beyond Unicode)', H + '<message><body>&#x110000;</body></message>', 'not-well-formed'],
  ['&#1114112; (beyond Unicode)', H + "<message id='&#1114112;'/>", 'not-well-formed'],
  ['huge character reference', H + '<message><body>&#99999999999999999999;</body></message>', 'not-well-formed'],
  ['empty decimal reference', H + '<message><body>&#;</body></message>', 'not-well-formed'],
  ['empty hex reference', H + '<message><body>&#x;</body></message>', 'not-well-formed'],
  ['letters in a decimal reference', H + '<message><body>&#12a;</body></message>', 'not-well-formed'],
  ['uppercase X in a hex reference', H + '<message><body>&#X41;</body></message>', 'not-well-formed'],
  ['sign in a reference', H + '<message><body>&#x-1;</body></message>', 'not-well-formed'],
  ['reference padded beyond the length cap', H + '<message><body>&#' + '0'.repeat(40) + '65;</body></message>', 'not-well-formed'],

  // well-formedness: characters
  ['control character in text', H + '<message><body>a\x01b</body></message>', 'not-well-formed'],
  ['vertical tab in text', H + '<message><body>\x0B</body></message>', 'not-well-formed'],
  ['NUL in text', H + '<message><body>\x00</body></message>', 'not-well-formed'],
  ['control character in an attribute', H + "<message id='\x1B'/>", 'not-well-formed'],
  ['U+FFFE in text', H + '<message><body>\uFFFE</body></message>', 'not-well-formed'],
  ['U+FFFF in an attribute', H + "<message id='\uFFFF'/>", 'not-well-formed'],
  ['control character in CDATA', H + '<message><body><![CDATA[\x02]]></body></message>', 'not-well-formed'],
  ['U+FFFF in CDATA', H + '<message><body><![CDATA[\uFFFF]]></body></message>', 'not-well-formed'],
  ["']]>' in text", H + '<message><body>a]]>b</body></message>', 'not-well-formed'],
  ["']]]>' in text", H + '<message><body>]]]></body></message>', 'not-well-formed'],
  ['character not allowed in a name', H + '<mess\u00D7age/>', 'not-well-formed'],
  // stricter than XML on purpose: fast-xml-parser would split names at these (JavaScript \s)
  ['U+FEFF in an element name', H + '<a\uFEFFb/>', 'not-well-formed'],
  ['U+1680 in an attribute name', H + "<a x\u1680y='1'/>", 'not-well-formed'],

  // well-formedness: markup declarations and CDATA
  ['malformed comment', H + '<message><!-x></message>', 'not-well-formed'],
  ['unknown <! keyword', H + '<message><!FOO></message>', 'not-well-formed'],
  ['lowercase <! keyword', H + '<message><!doctype x></message>', 'not-well-formed'],
  ['misspelt CDATA', H + '<message><![CDAT[x]]></message>', 'not-well-formed'],
  ['lowercase CDATA', H + '<message><![cdata[x]]></message>', 'not-well-formed'],
  ['CDATA in the prolog', '<![CDATA[x]]>' + H, 'not-well-formed'],

  // prolog, declaration, after close
  ['text before the header', 'hello' + H, 'not-well-formed'],
  ['an HTTP request', 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n', 'not-well-formed'],
  ['XML declaration with version 1.1', "<?xml version='1.1'?>" + H, 'not-well-formed'],
  ['XML declaration without version', "<?xml encoding='UTF-8'?>" + H, 'not-well-formed'],
  ['XML declaration with an unknown pseudo-attribute', "<?xml version='1.0' foo='bar'?>" + H, 'not-well-formed'],
  ['XML declaration with standalone=maybe', "<?xml version='1.0' standalone='maybe'?>" + H, 'not-well-formed'],
  ['element after the stream closed', H + '</stream:stream><message/>', 'not-well-formed'],
  ['text after the stream closed', H + '</stream:stream> x', 'not-well-formed'],

  // XMPP rules
  ['text between stanzas', H + '<presence/>hello', 'bad-format'],
  ['entity reference between stanzas', H + '&amp;', 'bad-format'],
  ['character reference to a space between stanzas', H + '&#32;', 'bad-format'],
  ['CDATA between stanzas', H + '<![CDATA[ ]]>', 'bad-format'],
  ['empty-element stream header', `<stream:stream xmlns='jabber:client' xmlns:stream='${STREAMS}'/>`, 'bad-format'],

  // namespaces
  ['stream prefix not declared', "<stream:stream xmlns='jabber:client' to='example.com'>", 'bad-namespace-prefix'],
  ['unbound prefix on a stanza', H + '<foo:message/>', 'bad-namespace-prefix'],
  ['unbound prefix on a child', H + '<message><foo:x/></message>', 'bad-namespace-prefix'],
  ['unbound prefix on an attribute', H + "<message foo:id='1'/>", 'bad-namespace-prefix'],
  ['unbound prefix on a header attribute', `<stream:stream xmlns:stream='${STREAMS}' foo:x='1'>`, 'bad-namespace-prefix'],
  ['prefix declared only in a sibling', H + "<message><a xmlns:p='u'/><p:b/></message>", 'bad-namespace-prefix'],
  ['prefix declared only in an earlier stanza', H + "<message xmlns:p='u'/><p:b/>", 'bad-namespace-prefix'],
  ['wrong stream namespace', "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>", 'invalid-namespace'],
  ['wrong root name', `<stream:foo xmlns='jabber:client' xmlns:stream='${STREAMS}'>`, 'invalid-namespace'],
  ['a stanza as the root', "<message xmlns='jabber:client'>", 'invalid-namespace'],
  ['unsupported content namespace', `<stream:stream xmlns='urn:evil' xmlns:stream='${STREAMS}'>`, 'invalid-namespace'],
  ['content namespace equal to the stream namespace', `<stream:stream xmlns='${STREAMS}' xmlns:stream='${STREAMS}'>`, 'invalid-namespace'],

  // encoding (RFC 6120 §11.6)
  ['UTF-16 big-endian BOM', bytes([0xfe, 0xff], '<'), 'unsupported-encoding'],
  ['UTF-16 little-endian BOM', bytes([0xff, 0xfe], '<'), 'unsupported-encoding'],
  ['UTF-32 big-endian BOM', bytes([0x00, 0x00, 0xfe, 0xff]), 'unsupported-encoding'],
  ['UTF-16LE without a BOM', Buffer.from("<?xml version='1.0'?>", 'utf16le'), 'unsupported-encoding'],
  ['UTF-16BE without a BOM', Buffer.from("<?xml version='1.0'?>", 'utf16le').swap16(), 'unsupported-encoding'],
  ['declared ISO-8859-1', "<?xml version='1.0' encoding='ISO-8859-1'?>" + H, 'unsupported-encoding'],
  ['declared UTF-16', "<?xml version='1.0' encoding=\"UTF-16\"?>" + H, 'unsupported-encoding'],
  ['overlong encoding of NUL', bytes(H + '<message id="', [0xc0, 0x80], '"/>'), 'unsupported-encoding'],
  ['overlong encoding of /', bytes(H + '<message id="', [0xe0, 0x80, 0xaf], '"/>'), 'unsupported-encoding'],
  ['encoded surrogate', bytes(H + '<message><body>', [0xed, 0xa0, 0x80], '</body></message>'), 'unsupported-encoding'],
  ['code point beyond U+10FFFF', bytes(H + '<message><body>', [0xf4, 0x90, 0x80, 0x80], '</body></message>'), 'unsupported-encoding'],
  ['byte 0xF5', bytes(H + '<message><body>', [0xf5, 0x80, 0x80, 0x80], '</body></message>'), 'unsupported-encoding'],
  ['byte 0xFF', bytes(H + '<message><body>', [0xff], '</body></message>'), 'unsupported-encoding'],
  ['lone continuation byte', bytes(H + '<message><body>', [0x80], '</body></message>'), 'unsupported-encoding'],
  ['truncated sequence followed by ASCII', bytes(H + '<message><body>', [0xe2, 0x82], 'a</body></message>'), 'unsupported-encoding'],
  ['Latin-1 byte in a name', bytes(H + '<m', [0xe9], '/>'), 'unsupported-encoding'],

  // limits (policy-violation)
  ['stanza over maxStanzaBytes', H + '<message><body>' + 'x'.repeat(100) + '</body></message>', 'policy-violation', { maxStanzaBytes: 100 }],
  ['unfinished stanza over maxStanzaBytes', H + '<message><body>' + 'x'.repeat(200), 'policy-violation', { maxStanzaBytes: 100 }],
  ['unfinished start tag over maxStanzaBytes', H + "<message id='" + 'x'.repeat(200), 'policy-violation', { maxStanzaBytes: 100 }],
  ['stanza over the limit counted in UTF-8 bytes', H + '<m>' + 'é'.repeat(14) + '</m>', 'policy-violation', { maxStanzaBytes: 30 }],
  ['stanza over the limit with astral characters', H + '<m>' + '😀'.repeat(6) + '</m>', 'policy-violation', { maxStanzaBytes: 30 }],
  ['nesting deeper than maxDepth', H + '<a><b><c><d/></c></b></a>', 'policy-violation', { maxDepth: 3 }],
  ['deep nesting with the default limit', H + '<a>'.repeat(40), 'policy-violation'],
  ['more attributes than maxAttributes', H + "<a x='1' y='2' z='3'/>", 'policy-violation', { maxAttributes: 3 }],
  ['namespace declarations count as attributes', H + "<a><b xmlns='u' xmlns:p='v' p:q='1' r='2' s='3'/></a>", 'policy-violation', { maxAttributes: 4 }],
  ['stream header over maxHeaderBytes', `<stream:stream xmlns='jabber:client' xmlns:stream='${STREAMS}' to='${'x'.repeat(200)}'>`, 'policy-violation', { maxHeaderBytes: 128 }],
  ['unfinished stream header over maxHeaderBytes', `<stream:stream to='${'x'.repeat(300)}`, 'policy-violation', { maxHeaderBytes: 128 }],
  ['endless whitespace before the header', ' '.repeat(300), 'policy-violation', { maxHeaderBytes: 128 }],
  ['endless XML declaration', "<?xml version='1.0'" + ' '.repeat(300), 'policy-violation', { maxHeaderBytes: 128 }],
];

for (const [label, input, condition, options] of cases) {
  test(`${condition}: ${label}`, () => {
    const whole = feed(input, [], options);
    assert.ok(whole.error, `accepted whole: ${label}`);
    assert.is(whole.error.condition, condition, `whole: ${whole.error.message}`);
    const split = feedBytes(input, options);
    assert.ok(split.error, `accepted byte by byte: ${label}`);
    assert.is(split.error.condition, condition, `bytes: ${split.error.message}`);
    assert.ok(whole.error.message.length > 0);
  });
}

test('end tag at depth 0 in fragment mode is not well-formed', () => {
  const run = feed('<a/></a>', [], { fragment: { xmlns: 'jabber:client' } });
  assert.is(run.error?.condition, 'not-well-formed');
  assert.is(stanzas(run).length, 1);
});

test('stanzas before a violation are still delivered, in order', () => {
  const run = feed(H + '<presence/><message/><message><body>&bogus;</body></message>');
  assert.is(run.error?.condition, 'not-well-formed');
  assert.equal(stanzas(run), ['<presence/>', '<message/>']);
});

test('a stanza before invalid UTF-8 in the same chunk is delivered before the error', () => {
  const run = feed(bytes(H + '<presence/><message><body>', [0xc3, 0x28], '</body></message>'));
  assert.is(run.error?.condition, 'unsupported-encoding');
  assert.equal(stanzas(run), ['<presence/>']);
});

test('failure is sticky: later writes throw the same error', () => {
  const { framer } = recorder();
  let first: unknown;
  try { framer.writeString(H + '<a></b>'); } catch (e) { first = e; }
  assert.ok(first);
  assert.throws(() => framer.writeString('<presence/>'), (e: unknown) => e === first);
  assert.throws(() => framer.write(Buffer.from(' ')), (e: unknown) => e === first);
});

test('a peer that keeps sending while the framer is paused hits a limit', () => {
  const { framer } = recorder({ maxStanzaBytes: 1000 });
  const f2 = framer;
  f2.writeString(H);
  f2.pause();
  f2.writeString('<presence/>'.repeat(50));
  assert.throws(() => f2.writeString('<presence/>'.repeat(50)), (e: unknown) => (e as { condition?: string }).condition === 'policy-violation');
});

test.run();
