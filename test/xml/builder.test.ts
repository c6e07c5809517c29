import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  escapeAttr, escapeText, restamp, serialize, stampFrom, stampTo, streamClose, streamOpen, x,
} from '../../src/xml/builder.ts';
import { parseElement } from '../../src/xml/element.ts';
import { validateStanza, type StanzaHeader } from '../../src/xml/framer.ts';
import { HEADER, feed, recorder, stanzas } from '../helpers/framer.ts';

test('escapeText: markup characters, CR as a reference, unencodable characters replaced', () => {
  assert.is(escapeText('a<b>c&d]]>e'), 'a&lt;b&gt;c&amp;d]]&gt;e');
  assert.is(escapeText('l1\r\nl2\tq"\''), 'l1&#xD;\nl2\tq"\'');
  assert.is(escapeText('\x00\x08\x0B\x0C\x1F\uFFFE\uFFFF'), '\uFFFD'.repeat(7));
  const plain = 'plain text é 😀';
  assert.is(escapeText(plain), plain);
});

test('escapeAttr: both quotes and whitespace as references so normalisation cannot change them', () => {
  assert.is(escapeAttr(`<&>"'`), '&lt;&amp;&gt;&quot;&apos;');
  assert.is(escapeAttr('a\tb\nc\rd'), 'a&#x9;b&#xA;c&#xD;d');
  assert.is(escapeAttr('\x01'), '\uFFFD');
  assert.is(escapeAttr('juliet@example.com/balcony'), 'juliet@example.com/balcony');
});

test('x(): attribute values are stringified, null/undefined dropped; children flattened', () => {
  const el = x('iq', { type: 'get', id: 7, ok: true, no: false, gone: undefined, nil: null },
    null, undefined, false, ['a', ['b', x('q')]], '', 'c');
  assert.equal(Object.keys(el.attrs), ['type', 'id', 'ok', 'no']);
  assert.is(el.attr('id'), '7');
  assert.is(el.attr('no'), 'false');
  assert.equal(el.children.map((c) => (typeof c === 'string' ? c : c.name)), ['ab', 'q', 'c']);
});

test('x(): invalid element and attribute names are refused', () => {
  for (const name of ['', '1a', 'a b', 'a:b:c', ':a', 'a:', '<a', 'a>', 'a/b', 'a\uFEFF', 'a\u1680b']) {
    assert.throws(() => x(name), (e: unknown) => e instanceof TypeError, JSON.stringify(name));
  }
  for (const name of ['x y', '1', 'a"b', "a='b'"]) {
    assert.throws(() => x('a', { [name]: 'v' }), (e: unknown) => e instanceof TypeError, name);
  }
  assert.is(x('é-1.ok', { 'xml:lang': 'en', 'data-x': 'y' }).name, 'é-1.ok');
});

test('serialize: self-closing when empty, nested, escaped, double-quoted', () => {
  const el = x('message', { to: 'a@b', id: `"'<&>` }, x('body', null, 'Hi <there> & ]]> bye'), x('active', { xmlns: 'http://jabber.org/protocol/chatstates' }));
  const xml = serialize(el);
  assert.is(xml, `<message to="a@b" id="&quot;&apos;&lt;&amp;&gt;"><body>Hi &lt;there&gt; &amp; ]]&gt; bye</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`);
  assert.is(validateStanza(xml).id, `"'<&>`);
  assert.is(serialize('a<b'), 'a&lt;b');
  assert.is(serialize(x('a', null, '')), '<a/>');
});

test('serialize with unencodable characters still yields XML the framer accepts', () => {
  const xml = serialize(x('a', { v: 'x\x00y' }, 'p\x07q\uFFFF'));
  assert.is(validateStanza(xml).name, 'a');
  assert.is(parseElement(xml).text(), 'p\uFFFDq\uFFFD');
});

function frame(xml: string): { xml: string; h: StanzaHeader } {
  const run = feed(HEADER + xml);
  assert.is(run.error, null);
  const e = run.events[1]!;
  if (e.t !== 'stanza') throw new Error('no stanza');
  return { xml: e.xml, h: e.h };
}

test('stampFrom replaces an existing from (either quote style) and inserts a missing one', () => {
  for (const src of ["<message from='x@y/z' to='a@b'><body/></message>", '<message to="a@b" from="x@y/z"/>', "<message to='a@b'/>", '<message/>']) {
    const { xml, h } = frame(src);
    const out = stampFrom(xml, h, 'romeo@example.net/o&"<');
    const h2 = validateStanza(out);
    assert.is(h2.from, 'romeo@example.net/o&"<', out);
    assert.is(h2.to, h.to);
    assert.is(out.slice(h2.fromStart, h2.fromEnd), 'from="romeo@example.net/o&amp;&quot;&lt;"');
  }
});

test('stampTo replaces and inserts', () => {
  for (const src of ["<iq to='old' id='1' type='get'/>", "<iq id='1' type='get'/>"]) {
    const { xml, h } = frame(src);
    assert.is(validateStanza(stampTo(xml, h, 'new@host')).to, 'new@host');
  }
});

test('stamping with a header of another string is refused', () => {
  const a = frame("<message from='x'/>");
  const b = frame("<presence from='averylongaddress@example.com'/>");
  assert.throws(() => stampFrom(b.xml, a.h, 'z'), (e: unknown) => e instanceof TypeError);
  assert.throws(() => stampFrom(a.xml.replace('from', 'frum'), a.h, 'z'), (e: unknown) => e instanceof TypeError);
});

test('restamp: set, insert and remove, with a header that matches the new string and can be chained', () => {
  const srcs = ["<message to='a@b' from='c@d' id='1'/>", "<message from='c@d' to='a@b'><x/></message>", "<message id='1'/>", "<message to='a@b'/>"];
  const changes = [{ from: 'n@f' }, { to: 'n@t' }, { from: 'n@f', to: 'n@t' }, { from: null }, { to: null }, { from: null, to: 'n@t' }, { from: 'n@f', to: null }, {}];
  for (const src of srcs) {
    for (const change of changes) {
      const { xml, h } = frame(src);
      const r = restamp(xml, h, change);
      const fresh = validateStanza(r.xml);
      assert.equal(r.header, fresh, `${src} ${JSON.stringify(change)} → ${r.xml}`);
      const again = restamp(r.xml, r.header, { from: 'z@z', to: 'y@y' });
      assert.equal(again.header, validateStanza(again.xml));
      assert.is(h.from, src.includes('from') ? 'c@d' : null); // the input header is not modified
    }
  }
});

test('streamOpen/streamClose make a stream our framer accepts', () => {
  const { framer, events } = recorder();
  framer.writeString(streamOpen({ from: 'example.com', to: 'a&b', id: 'i1', lang: 'en' }) + '<presence/>' + streamClose());
  assert.equal(events.map((e) => e.t), ['start', 'stanza', 'end']);
  const start = events[0]!;
  if (start.t !== 'start') throw new Error('no start');
  assert.equal([start.h.from, start.h.to, start.h.id, start.h.version, start.h.lang, start.h.xmlns, start.h.declaration],
    ['example.com', 'a&b', 'i1', '1.0', 'en', 'jabber:client', true]);
  const s2s = streamOpen({ xmlns: 'jabber:server', version: null, declaration: false });
  assert.not.ok(s2s.includes('version'));
  assert.ok(s2s.startsWith('<stream:stream'));
  assert.is(stanzas(feed(s2s + '<db:x xmlns:db="jabber:server:dialback"/>')).length, 1);
});

test.run();
