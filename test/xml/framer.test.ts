import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamFramer, validateStanza, XmlError } from '../../src/xml/framer.ts';
import { HEADER, feed, feedBytes, recorder, stanzas, type Event } from '../helpers/framer.ts';

function ok(input: string, options?: Parameters<typeof feed>[2]): Event[] {
  const run = feed(input, [], options);
  if (run.error) throw run.error;
  // the same input byte by byte must give the same events
  const bytes = feedBytes(input, options);
  if (bytes.error) throw bytes.error;
  assert.equal(bytes.events, run.events);
  return run.events;
}

function only(events: Event[]): Extract<Event, { t: 'stanza' }> {
  const s = events.filter((e) => e.t === 'stanza');
  assert.is(s.length, 1);
  return s[0] as Extract<Event, { t: 'stanza' }>;
}

test('stream header: attributes, content namespace, declaration flag', () => {
  const ev = ok(`<?xml version='1.0' encoding='UTF-8'?>\n<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en' id='s&amp;1' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
  assert.is(ev.length, 1);
  const e = ev[0]!;
  if (e.t !== 'start') throw new Error('expected start');
  assert.is(e.h.name, 'stream:stream');
  assert.is(e.h.xmlns, 'jabber:client');
  assert.is(e.h.to, 'im.example.com');
  assert.is(e.h.from, 'juliet@im.example.com');
  assert.is(e.h.version, '1.0');
  assert.is(e.h.lang, 'en');
  assert.is(e.h.id, 's&1');
  assert.is(e.h.declaration, true);
  assert.is(e.h.attrs['xmlns:stream'], 'http://etherx.jabber.org/streams');
  assert.is(ok(HEADER)[0]!.t === 'start' && (ok(HEADER)[0] as { h: { declaration: boolean } }).h.declaration, false);
});

test('stanza header: name, inherited namespace, decoded addressing, exact attribute offsets', () => {
  const xml = `<message to='juliet@example.com/a&amp;b' from="romeo@example.net/orchard" type='chat' id='a&#9;b' xml:lang='de'><body>hi</body></message>`;
  const s = only(ok(HEADER + xml));
  assert.is(s.xml, xml);
  assert.equal({ name: s.h.name, xmlns: s.h.xmlns, to: s.h.to, from: s.h.from, type: s.h.type, id: s.h.id, lang: s.h.lang }, {
    name: 'message', xmlns: 'jabber:client', to: 'juliet@example.com/a&b', from: 'romeo@example.net/orchard',
    type: 'chat', id: 'a\tb', lang: 'de',
  });
  assert.is(xml.slice(s.h.toStart, s.h.toEnd), "to='juliet@example.com/a&amp;b'");
  assert.is(xml.slice(s.h.fromStart, s.h.fromEnd), 'from="romeo@example.net/orchard"');
  assert.is(xml.slice(0, s.h.nameEnd), '<message');
});

test('absent addressing is null and offsets are -1', () => {
  const s = only(ok(HEADER + '<presence/>'));
  assert.equal([s.h.to, s.h.from, s.h.type, s.h.id, s.h.lang, s.h.toStart, s.h.fromStart], [null, null, null, null, null, -1, -1]);
  assert.is(s.h.nameEnd, 9);
});

test('attribute values: literal whitespace normalised, character references kept', () => {
  const s = only(ok(HEADER + "<iq type='get' id='a\nb\r\nc\td&#10;e&#13;f'/>"));
  assert.is(s.h.id, 'a b c d\ne\rf');
});

test("'>' and the other quote inside quoted attribute values", () => {
  const xml = `<message id='a>b"c' to="x>y'z" type='chat'><body a='>' b=">"/></message>`;
  const s = only(ok(HEADER + xml));
  assert.is(s.xml, xml);
  assert.is(s.h.id, 'a>b"c');
  assert.is(s.h.to, "x>y'z");
});

test('source text kept exactly: quotes, whitespace inside tags, CDATA, references', () => {
  const xml = `<iq\n type = "get"\tid='1' ><query xmlns='jabber:iq:roster' ver=''/>\n  <x >a &lt; b &#x1F600; <![CDATA[ <raw> & ]]></x ></iq\n>`;
  assert.is(only(ok(HEADER + xml)).xml, xml);
});

test('whitespace keepalives between stanzas are allowed and produce nothing', () => {
  const run = ok(HEADER + ' \n\r\n\t <presence/>\n\n \t<presence/>   ');
  assert.is(stanzas({ events: run, error: null }).length, 2);
  const { framer, events } = recorder();
  framer.writeString(HEADER);
  for (let k = 0; k < 50; k++) framer.writeString(' ');
  framer.writeString('\n');
  assert.is(events.length, 1);
  assert.is(framer.buffered, 0);
});

test("CDATA sections with ']' and ']]' edge cases", () => {
  const bodies = ['<![CDATA[]]>', '<![CDATA[]]]>', '<![CDATA[]]]]>', '<![CDATA[a]b]]c]]>', '<![CDATA[]] >]]>',
    '<![CDATA[<![CDATA[]]>', '<![CDATA[&amp;&unknown;<]]>', 'x]]y ]] > ] ]>'];
  for (const b of bodies) {
    const xml = `<message><body>${b}</body></message>`;
    assert.is(only(ok(HEADER + xml)).xml, xml, b);
  }
});

test(']]> inside an attribute value is allowed (the rule is for content only)', () => {
  assert.is(only(ok(HEADER + "<message id=']]>'/>")).h.id, ']]>');
});

test('character references to every XML Char boundary are accepted', () => {
  const refs = ['&#9;', '&#xA;', '&#13;', '&#x20;', '&#xD7FF;', '&#xE000;', '&#xFFFD;', '&#x10000;', '&#x10FFFF;',
    '&#1114111;', '&#0065;', '&#x0041;', '&#x1f600;', '&lt;&gt;&amp;&quot;&apos;'];
  for (const r of refs) {
    assert.is(only(ok(`${HEADER}<message id='${r}'><body>${r}</body></message>`)).xml.includes(r), true, r);
  }
  assert.is(only(ok(HEADER + "<message id='&#x1F600;&#65;'/>")).h.id, '\u{1F600}A');
});

test('DEL and other non-control characters are allowed literally', () => {
  assert.is(only(ok(HEADER + '<message id="\x7F\u0085\uFFFD\u{10FFFF}"/>')).h.id, '\x7F\u0085\uFFFD\u{10FFFF}');
});

test('explicit namespace on a stanza wins over the stream default', () => {
  assert.is(only(ok(HEADER + "<iq xmlns='jabber:server' type='get' id='1'/>")).h.xmlns, 'jabber:server');
  assert.is(only(ok(HEADER + "<r xmlns='urn:xmpp:sm:3'/>")).h.xmlns, 'urn:xmpp:sm:3');
});

test('prefixed top-level element: local name, namespace, stream prefix copied into the stanza', () => {
  const s = only(ok(HEADER + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"));
  assert.is(s.h.name, 'features');
  assert.is(s.h.xmlns, 'http://etherx.jabber.org/streams');
  assert.is(s.xml, `<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`);
  // the copy stands alone: it validates without the stream around it
  assert.is(validateStanza(s.xml).xmlns, 'http://etherx.jabber.org/streams');
});

test('a prefix borrowed from the stream header deep inside a stanza is declared, offsets follow', () => {
  const header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' xmlns:x=\"urn:a&amp;b\">";
  const xml = "<message from='a@b' to='c@d'><x:y x:z='1'><db:v/></x:y></message>";
  const s = only(ok(header + xml));
  assert.is(s.xml, `<message xmlns:x="urn:a&amp;b" xmlns:db="jabber:server:dialback" from='a@b' to='c@d'><x:y x:z='1'><db:v/></x:y></message>`);
  assert.is(s.xml.slice(s.h.fromStart, s.h.fromEnd), "from='a@b'");
  assert.is(s.xml.slice(s.h.toStart, s.h.toEnd), "to='c@d'");
  assert.is(s.xml.slice(0, s.h.nameEnd), '<message');
  validateStanza(s.xml);
});

test('a prefix redeclared inside the stanza is not copied from the stream', () => {
  const header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:outer'>";
  const xml = "<message><x:a xmlns:x='urn:inner'/></message>";
  assert.is(only(ok(header + xml)).xml, xml);
});

test('no default namespace on the header: unqualified stanzas have namespace ""', () => {
  const header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>";
  const ev = ok(header + "<message xmlns='jabber:client'/><message/>");
  const st = ev.filter((e) => e.t === 'stanza') as Extract<Event, { t: 'stanza' }>[];
  assert.equal(st.map((e) => e.h.xmlns), ['jabber:client', '']);
  assert.is((ev[0] as Extract<Event, { t: 'start' }>).h.xmlns, '');
});

test('unprefixed stream element in the streams namespace is accepted', () => {
  const ev = ok("<stream xmlns='http://etherx.jabber.org/streams'><message xmlns='jabber:client'/></stream>");
  assert.equal(ev.map((e) => e.t), ['start', 'stanza', 'end']);
  assert.is((ev[0] as Extract<Event, { t: 'start' }>).h.xmlns, '');
});

test('xml prefix needs no declaration; declaring it correctly is allowed; xmlns="" undeclares', () => {
  const s = only(ok(HEADER + "<message xml:lang='fr' xmlns:xml='http://www.w3.org/XML/1998/namespace'><x xmlns=''><y/></x></message>"));
  assert.is(s.h.lang, 'fr');
});

test('non-ASCII names, including astral NameStartChars', () => {
  const xml = "<message><ünïcødé ä='ö'/><漢字/><\u{10000}a\u{EFFFF}/></message>";
  assert.is(only(ok(HEADER + xml)).xml, xml);
});

test('UTF-8 byte order mark at the stream start is skipped', () => {
  const run = feed(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`<?xml version='1.0'?>${HEADER}<presence/>`)]));
  assert.is(run.error, null);
  assert.equal(run.events.map((e) => e.t), ['start', 'stanza']);
});

test('stream close is reported; trailing whitespace is fine; the framer is then closed', () => {
  const { framer, events } = recorder();
  framer.writeString(HEADER + '<presence/></stream:stream>\n ');
  assert.equal(events.map((e) => e.t), ['start', 'stanza', 'end']);
  assert.is(framer.isOpen, false);
});

test('isOpen follows the header', () => {
  const { framer } = recorder();
  assert.is(framer.isOpen, false);
  framer.writeString(HEADER.slice(0, 20));
  assert.is(framer.isOpen, false);
  framer.writeString(HEADER.slice(20));
  assert.is(framer.isOpen, true);
});

test('contentNamespaces option: null accepts any default namespace, a list restricts it', () => {
  const h = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>";
  assert.is(ok(h, { contentNamespaces: null }).length, 1);
  assert.is(ok(h, { contentNamespaces: ['jabber:component:accept'] }).length, 1);
  assert.is(feed(h).error?.condition, 'invalid-namespace');
});

test('limits at exactly their value are accepted', () => {
  const xml = '<message><body>' + 'é'.repeat(10) + '</body></message>';
  const bytes = Buffer.byteLength(xml);
  assert.is(only(ok(HEADER + xml, { maxStanzaBytes: bytes })).xml, xml);
  assert.is(only(ok(HEADER + '<a><b><c/></b></a>', { maxDepth: 3 })).h.name, 'a');
  const twoAttrHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
  assert.is(only(ok(twoAttrHeader + "<a x='1' y='2'><b xmlns='u' z='3'/></a>", { maxAttributes: 2 })).h.name, 'a');
  assert.is(ok(HEADER, { maxHeaderBytes: Buffer.byteLength(HEADER) }).length, 1);
});

test('fragment mode: top-level elements without a stream header', () => {
  const { framer, events } = recorder({ fragment: { xmlns: 'jabber:client', prefixes: { stream: 'http://etherx.jabber.org/streams' } } });
  framer.writeString("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>");
  framer.writeString('<message/> <stream:error/>');
  const st = events as Extract<Event, { t: 'stanza' }>[];
  assert.equal(st.map((e) => [e.h.name, e.h.xmlns]), [
    ['open', 'urn:ietf:params:xml:ns:xmpp-framing'], ['message', 'jabber:client'], ['error', 'http://etherx.jabber.org/streams'],
  ]);
  assert.is(st[2]!.xml, '<stream:error xmlns:stream="http://etherx.jabber.org/streams"/>');
});

test('validateStanza returns the header of exactly one element', () => {
  const h = validateStanza("  <iq type='get' id='7'><ping xmlns='urn:xmpp:ping'/></iq>\n");
  assert.equal([h.name, h.xmlns, h.type, h.id], ['iq', 'jabber:client', 'get', '7']);
  assert.is(validateStanza('<iq/>', 'jabber:server').xmlns, 'jabber:server');
  for (const bad of ['', '  ', '<a/><b/>', '<a>', '<a/>text', 'text<a/>', '<a></b>']) {
    assert.throws(() => validateStanza(bad), (e: unknown) => e instanceof XmlError, JSON.stringify(bad));
  }
});

test('the framer can be fed Uint8Array views, not only Buffers', () => {
  const bytes = new TextEncoder().encode(HEADER + '<presence/>');
  const { framer, events } = recorder();
  framer.write(bytes.subarray(0, 10));
  framer.write(new Uint8Array(bytes.buffer, 10, bytes.length - 10));
  assert.equal(events.map((e) => e.t), ['start', 'stanza']);
  assert.ok(new StreamFramer({ onStreamStart() {}, onStanza() {}, onStreamEnd() {} }) instanceof StreamFramer);
});

test.run();
