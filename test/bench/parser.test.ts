// The bench client's incremental framer and its stanza accessors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Framer, attr, childText, stanzaName, escapeXml, unescapeXml } from '../../bench/lib/parser.ts';

function collect() {
  const ev: string[] = [];
  const f = new Framer({
    onHeader: (h) => ev.push('H:' + h),
    onStanza: (s) => ev.push('S:' + s),
    onEnd: () => ev.push('END'),
  });
  return { f, ev };
}

const STREAM = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='x' id='a>b' version='1.0'>`;
const STANZAS = [
  `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
  `<message from='a@x/r' to="b@x/r" type='chat' id='1'><body>héllo → 🎉 &amp; &lt;tag&gt;</body></message>`,
  `<presence/>`,
  `<iq type='result' id='q' x="a/>b"><query xmlns='q'><item jid='c'/><item jid='d'></item></query></iq>`,
  `<message><body><![CDATA[<not a tag>]]></body></message>`,
];
const WHOLE = STREAM + STANZAS.join('') + '</stream:stream>';

test('frames a whole stream in one chunk', () => {
  const { f, ev } = collect();
  f.push(Buffer.from(WHOLE));
  assert.equal(ev[0], 'H:' + STREAM.slice(STREAM.indexOf('<stream:stream')));
  assert.equal(ev.slice(1, -1), STANZAS.map((s) => 'S:' + s));
  assert.equal(ev.at(-1), 'END');
});

test('frames identically when fed one byte at a time (UTF-8 split across chunks)', () => {
  const { f, ev } = collect();
  const bytes = Buffer.from(WHOLE);
  for (let i = 0; i < bytes.length; i++) f.push(bytes.subarray(i, i + 1));
  assert.equal(ev.slice(1, -1), STANZAS.map((s) => 'S:' + s));
  assert.equal(ev.at(-1), 'END');
});

test('frames identically at every two-way split point', () => {
  const bytes = Buffer.from(WHOLE);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const { f, ev } = collect();
    f.push(bytes.subarray(0, cut));
    f.push(bytes.subarray(cut));
    assert.is(ev.length, STANZAS.length + 2, `cut at ${cut}`);
  }
});

test('reset() from a handler restarts the stream (after STARTTLS / SASL success)', () => {
  const ev: string[] = [];
  const f: Framer = new Framer({
    onHeader: () => ev.push('H'),
    onStanza: (s) => { ev.push(stanzaName(s)); if (stanzaName(s) === 'success') f.reset(); },
    onEnd: () => ev.push('END'),
  });
  f.push(STREAM + `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`);
  f.push(STREAM + `<stream:features/>`);
  assert.equal(ev, ['H', 'success', 'H', 'features']);
});

test('stanzaName drops the prefix', () => {
  assert.is(stanzaName('<stream:features/>'), 'features');
  assert.is(stanzaName('<message to="x">'), 'message');
  assert.is(stanzaName('<iq/>'), 'iq');
});

test('attr reads the top-level tag only, either quote, unescaped', () => {
  const s = `<iq type='result' id="a&amp;b" to='x'><query type='inner'/></iq>`;
  assert.is(attr(s, 'type'), 'result');
  assert.is(attr(s, 'id'), 'a&b');
  assert.is(attr(s, 'from'), undefined);
  assert.is(attr(`<x xtype='no' type='yes'/>`, 'type'), 'yes');
});

test('childText finds a child by name, not by prefix of a longer name', () => {
  const s = `<message><bodyx>no</bodyx><body xml:lang='en'>1 2.5 &amp;</body><empty/></message>`;
  assert.is(childText(s, 'body'), '1 2.5 &');
  assert.is(childText(s, 'empty'), '');
  assert.is(childText(s, 'missing'), undefined);
});

test('escape and unescape round-trip, numeric references decoded', () => {
  const raw = `<a href="x">'&'</a>`;
  assert.is(unescapeXml(escapeXml(raw)), raw);
  assert.is(unescapeXml('&#65;&#x42;&#x1F389;'), 'AB🎉');
});

test.run();
