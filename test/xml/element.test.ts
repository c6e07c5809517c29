import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serialize, x } from '../../src/xml/builder.ts';
import { XmlElement, parseElement, type XmlNode } from '../../src/xml/element.ts';
import { XmlError, validateStanza } from '../../src/xml/framer.ts';
import { HEADER, feed, stanzas } from '../helpers/framer.ts';

const attrs = (o: Record<string, string>): Record<string, string> => Object.assign(Object.create(null), o);

test('parses names, attributes, children and text in order', () => {
  const el = parseElement("<message to='a@b' type='chat'><body>Hi</body><x xmlns='urn:x'/>tail</message>");
  assert.is(el.name, 'message');
  assert.equal(el.attrs, attrs({ to: 'a@b', type: 'chat' }));
  assert.is(el.children.length, 3);
  assert.is((el.children[0] as XmlElement).text(), 'Hi');
  assert.is(el.children[2], 'tail');
});

test('no trimming and no type coercion', () => {
  const el = parseElement("<a n='007' b='true' e=''>  0012  <b> </b>\n</a>");
  assert.equal(el.attrs, attrs({ n: '007', b: 'true', e: '' }));
  assert.equal(el.children[0], '  0012  ');
  assert.equal((el.children[1] as XmlElement).children, [' ']);
  assert.equal(el.children[2], '\n');
  assert.is(parseElement('<a>1e3</a>').text(), '1e3');
  assert.is(parseElement('<a>0x10</a>').text(), '0x10');
});

test('the five entities and numeric references are decoded; CDATA is not', () => {
  const el = parseElement("<a v='&lt;&gt;&amp;&quot;&apos;&#65;&#x1F600;'>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;<![CDATA[&amp;<x>]]></a>");
  assert.is(el.attr('v'), `<>&"'A😀`);
  assert.is(el.text(), `<>&"'AB😀&amp;<x>`);
});

test('HTML entities, unknown entities and bare & are refused, never expanded', () => {
  for (const bad of ['<a>&nbsp;</a>', '<a>&copy;</a>', "<a v='&eacute;'/>", '<a>a & b</a>', '<a>&#0;</a>', '<a>&#xFFFE;</a>']) {
    assert.throws(() => parseElement(bad), (e: unknown) => e instanceof XmlError && e.condition === 'not-well-formed', bad);
  }
});

test('a DOCTYPE with internal entities is refused, not expanded', () => {
  const xml = "<!DOCTYPE a [<!ENTITY boom 'BOOM'>]><a>&boom;</a>";
  assert.throws(() => parseElement(xml), (e: unknown) => e instanceof XmlError && e.condition === 'restricted-xml');
  assert.throws(() => parseElement('<a><!-- c --></a>'), (e: unknown) => e instanceof XmlError && e.condition === 'restricted-xml');
});

test('attribute normalisation: literal TAB/LF/CR become spaces, references survive', () => {
  const el = parseElement("<a v='1\t2\n3\r\n4&#9;5&#10;6&#13;7'/>");
  assert.is(el.attr('v'), '1 2 3 4\t5\n6\r7');
});

test('end-of-line handling in text: CRLF and CR become LF, &#13; stays CR', () => {
  assert.is(parseElement('<a>1\r\n2\r3&#13;4</a>').text(), '1\n2\n3\r4');
});

test('markup-like text inside CDATA is content, not a comment or DTD', () => {
  assert.is(parseElement('<a><![CDATA[<!-- x --> <!DOCTYPE y>]]></a>').text(), '<!-- x --> <!DOCTYPE y>');
  assert.throws(() => parseElement('<a><![CDATA[x]]><!-- y --></a>'), (e: unknown) => e instanceof XmlError && e.condition === 'restricted-xml');
});

test('names fast-xml-parser would split (U+FEFF, U+1680) are refused when validating', () => {
  assert.throws(() => parseElement('<a\uFEFFb/>', 'jabber:client', { validate: true }), (e: unknown) => e instanceof XmlError);
});

test('adjacent text and CDATA merge into one text child', () => {
  const el = parseElement('<a>x<![CDATA[y]]>z<![CDATA[]]><b/>w</a>');
  assert.equal(el.children.map((c) => (typeof c === 'string' ? c : c.name)), ['xyz', 'b', 'w']);
});

test('namespace inheritance: unqualified children take the default namespace in scope', () => {
  const el = parseElement("<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'><group>g</group></item></query><x/></iq>");
  assert.is(el.getXmlns(), 'jabber:client');
  const q = el.child('query', 'jabber:iq:roster')!;
  assert.ok(q);
  assert.is(q.child('item')!.getXmlns(), 'jabber:iq:roster');
  assert.is(q.child('item')!.child('group', 'jabber:iq:roster')!.text(), 'g');
  assert.is(el.child('x')!.getXmlns(), 'jabber:client');
  assert.is(el.child('query', 'jabber:client'), undefined);
  assert.is(parseElement('<iq/>', 'jabber:server').getXmlns(), 'jabber:server');
});

test('prefixed names resolve through declarations on ancestors; xmlns="" undeclares', () => {
  const el = parseElement("<m xmlns:p='urn:p'><p:a><b/><p:c xmlns:p='urn:q'/></p:a><d xmlns=''><e/></d><f xml:lang='en'/></m>");
  const a = el.child('a', 'urn:p')!;
  assert.is(a.name, 'p:a');
  assert.is(a.localName, 'a');
  assert.is(a.child('b')!.getXmlns(), 'jabber:client'); // the default namespace, not the parent's prefix
  assert.is(a.child('c')!.getXmlns(), 'urn:q');
  assert.is(el.child('d')!.getXmlns(), '');
  assert.is(el.child('d')!.child('e')!.getXmlns(), '');
  assert.is(el.child('f')!.attr('xml:lang'), 'en');
  assert.throws(() => parseElement('<m><p:a/></m>'), (e: unknown) => e instanceof XmlError && e.condition === 'bad-namespace-prefix');
});

test('names that are JavaScript object keys survive and pollute nothing', () => {
  const xml = "<constructor toString='1' __proto__='x' valueOf='v'><prototype hasOwnProperty='h'/><__proto__/><text/><cdata/></constructor>";
  const el = parseElement(xml);
  assert.is(el.name, 'constructor');
  assert.equal(Object.keys(el.attrs), ['toString', '__proto__', 'valueOf']);
  assert.is(el.attr('__proto__'), 'x');
  assert.equal(el.getChildren().map((c) => c.name), ['prototype', '__proto__', 'text', 'cdata']);
  assert.is(el.child('prototype')!.attr('hasOwnProperty'), 'h');
  assert.is(({} as Record<string, unknown>)['x'], undefined);
  assert.is(serialize(el), xml.replace(/'/g, '"'));
});

test('validate option rejects what fast-xml-parser would silently accept', () => {
  const lenient = ['<a><b></a></b>', "<a x='1' x='2'/>", '<a>&bogus;</a>', '<a/><b/>', '<a>', "<a x='<'/>"];
  for (const xml of lenient) {
    assert.throws(() => parseElement(xml, 'jabber:client', { validate: true }), (e: unknown) => e instanceof XmlError, xml);
  }
  assert.is(parseElement("<a x='1'/>", 'jabber:client', { validate: true }).attr('x'), '1');
});

test('whitespace around the element is fine; other text or a second element is not', () => {
  assert.is(parseElement('\n <a/> \n').name, 'a');
  for (const xml of ['x<a/>', '<a/>x', '<a/><b/>', '', '  ']) {
    assert.throws(() => parseElement(xml), (e: unknown) => e instanceof XmlError, JSON.stringify(xml));
  }
});

test('helpers: child, getChildren, text, getChildText, attr, is', () => {
  const el = parseElement("<message><body>a</body><body xml:lang='de'>b</body><thread>t</thread>c<d/></message>");
  assert.is(el.child('body')!.text(), 'a');
  assert.equal(el.getChildren('body').map((b) => b.text()), ['a', 'b']);
  assert.equal(el.getChildren().map((b) => b.name), ['body', 'body', 'thread', 'd']);
  assert.is(el.getChildText('thread'), 't');
  assert.is(el.getChildText('nope'), undefined);
  assert.is(el.text(), 'c');
  assert.is(el.child('body')!.attr('xml:lang'), undefined);
  assert.ok(el.is('message', 'jabber:client'));
  assert.not.ok(el.is('message', 'jabber:server'));
  assert.not.ok(el.is('iq'));
});

test('withAttrs and withChildren copy; the original is unchanged', () => {
  const el = parseElement("<iq type='get' id='1' to='a'><ping xmlns='urn:xmpp:ping'/></iq>");
  const reply = el.withAttrs({ type: 'result', to: null, from: 'a' }).withChildren([]);
  assert.equal(reply.attrs, attrs({ type: 'result', id: '1', from: 'a' }));
  assert.is(reply.children.length, 0);
  assert.is(reply.getXmlns(), 'jabber:client');
  assert.equal(el.attrs, attrs({ type: 'get', id: '1', to: 'a' }));
  assert.is(el.children.length, 1);
  assert.is(el.withAttrs({ xmlns: 'urn:other' }).getXmlns(), 'urn:other');
});

test('built trees: namespaces follow declarations and navigation from the root', () => {
  const iq = x('iq', { xmlns: 'jabber:client' }, x('query', { xmlns: 'jabber:iq:roster' }, x('item')), x('x'));
  assert.is(iq.child('query', 'jabber:iq:roster')!.child('item', 'jabber:iq:roster')!.name, 'item');
  assert.is(iq.child('x', 'jabber:client')!.getXmlns(), 'jabber:client');
  assert.is(x('a').getXmlns(), '');
  assert.is(x('a').getXmlns('jabber:server'), 'jabber:server');
  assert.is(x('p:a', { 'xmlns:p': 'urn:p' }).getXmlns(), 'urn:p');
});

test('round trip: stanzas from the framer re-parse equal after serialize', () => {
  const source = [
    "<message to='a@b/c' from=\"d@e\" type='chat' id='&amp;1'><body xml:lang='en'> Hi &lt;3\r\n<![CDATA[<b>]]]]> </body></message>",
    "<iq type='result' id='r'><query xmlns='jabber:iq:roster' ver='v&#9;1'><item jid='x@y' name='&quot;Q&apos;'><group/></item></query></iq>",
    "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='a\tb'/><status>  spaced  </status></presence>",
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
  ];
  const run = feed(HEADER + source.join(' '));
  assert.is(run.error, null);
  for (const s of stanzas(run)) {
    const el = parseElement(s);
    const again = serialize(el);
    validateStanza(again);
    assert.equal(parseElement(again), el, s);
    assert.is(serialize(parseElement(again)), again);
  }
});

// Seeded generator for the round-trip property.
function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return (s >>> 8) % n; };
}
const NAMES = ['a', 'body', 'x-y.z_1', 'é', '漢字', 'constructor', '__proto__', 'toString', 'text', 'b\u00B7c', '\u{10000}q'];
const ATTRS = ['id', 'to', 'v', 'xml:lang', 'hasOwnProperty', '__proto__', 'ü', 'data-x'];
const PIECES = ['a', ' ', '\t', '\n', '\r', '\r\n', '&', '<', '>', '"', "'", ']]>', ']]', 'é', '😀', '\u0085', '&amp;', '0', 'true', '  '];

function str(r: (n: number) => number): string {
  let out = '';
  for (let k = r(6); k > 0; k--) out += PIECES[r(PIECES.length)];
  return out;
}

function tree(r: (n: number) => number, depth: number): XmlElement {
  const a: Record<string, string> = {};
  for (let k = r(4); k > 0; k--) a[ATTRS[r(ATTRS.length)]!] = str(r);
  const kids: XmlNode[] = [];
  for (let k = depth < 4 ? r(5) : 0; k > 0; k--) kids.push(r(2) === 0 ? str(r) : tree(r, depth + 1));
  let name = NAMES[r(NAMES.length)]!;
  if (r(5) === 0) { name = 'p:' + name; a['xmlns:p'] = 'urn:p' + r(3); }
  if (r(4) === 0) a['xmlns'] = 'urn:d' + r(3);
  return x(name, a, kids);
}

test('round trip property: serialize → framer-valid → parseElement gives the same tree', () => {
  const r = rng(20261124);
  for (let k = 0; k < 500; k++) {
    const el = tree(r, 0);
    const xml = serialize(el);
    validateStanza(xml);
    const back = parseElement(xml);
    assert.equal(back, el, xml);
    assert.is(serialize(back), xml);
  }
});

test.run();
