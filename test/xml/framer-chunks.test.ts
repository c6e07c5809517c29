// Input arrives in arbitrary pieces: the framer's output must not depend on where the cuts fall, including
// cuts inside multi-byte UTF-8 sequences, references, CDATA terminators and markup keywords.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADER, feed, feedBytes, recorder, stanzas } from '../helpers/framer.ts';

// 2-, 3- and 4-byte sequences in element and attribute names, attribute values, text and CDATA
const MULTI = "<message to='jülïet@例え.jp' id='😀'><body>Grüße 𝄞 漢字 € &#x1F600;</body>" +
  "<ünïcødé xmlns='urn:x' ä='ö'/><x><![CDATA[𐐷]]]]></x></message>";
const SESSION = `<?xml version='1.0'?>${HEADER}\n${MULTI} <presence/><iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>`;

test('a multi-byte stanza split in two at every byte offset', () => {
  const input = Buffer.from(HEADER + MULTI);
  const expected = feed(input);
  assert.is(expected.error, null);
  assert.equal(stanzas(expected), [MULTI]);
  for (let k = 0; k <= input.length; k++) {
    const run = feed(input, [k]);
    assert.is(run.error, null, `cut at ${k}`);
    assert.equal(run.events, expected.events, `cut at ${k}`);
  }
});

test('every pair of cuts around each 4-byte character', () => {
  const input = Buffer.from(HEADER + MULTI);
  const expected = feed(input).events;
  const astral = [...Buffer.from(HEADER + MULTI).entries()].filter(([, b]) => b >= 0xf0).map(([k]) => k);
  assert.ok(astral.length >= 3);
  for (const at of astral) {
    for (let a = at - 1; a <= at + 4; a++) {
      for (let b = a; b <= at + 5; b++) {
        const run = feed(input, [a, b]);
        assert.is(run.error, null, `cuts ${a},${b}`);
        assert.equal(run.events, expected, `cuts ${a},${b}`);
      }
    }
  }
});

test('a whole session: every split point, and byte by byte, give the same events', () => {
  const input = Buffer.from(SESSION);
  const expected = feed(input);
  assert.is(expected.error, null);
  assert.equal(expected.events.map((e) => e.t), ['start', 'stanza', 'stanza', 'stanza', 'end']);
  for (let k = 0; k <= input.length; k++) assert.equal(feed(input, [k]).events, expected.events, `cut at ${k}`);
  assert.equal(feedBytes(input).events, expected.events);
});

test('random chunkings of a long session agree with a single write', () => {
  let seed = 12345;
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const body = Array.from({ length: 40 }, (_, k) => MULTI.replace("id='😀'", `id='${k}'`)).join('\n');
  const input = Buffer.from(HEADER + body + '</stream:stream>');
  const expected = feed(input).events;
  assert.is(expected.length, 42);
  for (let round = 0; round < 50; round++) {
    const cuts: number[] = [];
    for (let at = rand(40); at < input.length; at += 1 + rand(60)) cuts.push(at);
    assert.equal(feed(input, cuts).events, expected, `round ${round}`);
  }
});

test('UTF-8 byte order mark split across writes', () => {
  const input = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER)]);
  for (let k = 0; k <= 3; k++) assert.is(feed(input, [k]).events.length, 1, `cut at ${k}`);
});

test('invalid UTF-8 straddling a write boundary is caught at every cut', () => {
  const bad = [
    [0xe2, 0x82, 0x41], // 3-byte sequence cut short by ASCII
    [0xf0, 0x9f, 0x98], // 4-byte sequence cut short by '<'
    [0xed, 0xa0, 0x80], // encoded surrogate
    [0xc0, 0xaf], // overlong
    [0xf8, 0x88, 0x80, 0x80, 0x80], // 5-byte form
  ];
  for (const seq of bad) {
    const input = Buffer.concat([Buffer.from(HEADER + '<message><body>a'), Buffer.from(seq), Buffer.from('</body></message>')]);
    const at = Buffer.byteLength(HEADER + '<message><body>a');
    for (let k = at - 1; k <= at + seq.length + 1; k++) {
      assert.is(feed(input, [k]).error?.condition, 'unsupported-encoding', `${seq.map((b) => b.toString(16))} cut at ${k}`);
    }
  }
});

test('a UTF-8 sequence left incomplete by the last write is held, not decoded', () => {
  const { framer, events } = recorder();
  framer.writeString(HEADER);
  framer.write(Buffer.concat([Buffer.from("<m id='"), Buffer.from([0xf0, 0x9f])])); // 😀 cut in half
  assert.is(events.length, 1);
  framer.write(Buffer.concat([Buffer.from([0x98, 0x80]), Buffer.from("'/>")]));
  assert.is(events.length, 2);
  const last = events[1]!;
  assert.ok(last.t === 'stanza');
  assert.is(last.h.id, '😀');
  assert.is(last.xml, "<m id='😀'/>");
});

test('tokens cut anywhere: references, CDATA open and close, comments, XML declaration', () => {
  const good = [
    `<?xml version='1.0' encoding='utf-8'?>${HEADER}`,
    `${HEADER}<message id='&amp;&#x1F600;&#128512;'><body>&lt;&quot;&apos;&gt;&#9;</body></message>`,
    `${HEADER}<message><body><![CDATA[a]]]]]></body></message>`,
    `${HEADER}<message><body>] ]] ]]] ]]]] x</body></message>`,
  ];
  for (const input of good) {
    const buf = Buffer.from(input);
    const expected = feed(buf);
    assert.is(expected.error, null, input);
    for (let k = 0; k <= buf.length; k++) assert.equal(feed(buf, [k]).events, expected.events, `${input} @${k}`);
  }
  const bad: [string, string][] = [
    [`${HEADER}<message><body>a]]>b</body></message>`, 'not-well-formed'],
    [`${HEADER}<message><!-- x --></message>`, 'restricted-xml'],
    [`${HEADER}<message><body>&#0;</body></message>`, 'not-well-formed'],
    [`${HEADER}<message><body>&nbsp;</body></message>`, 'not-well-formed'],
    [`<?xml version='1.0' encoding='latin1'?>${HEADER}`, 'unsupported-encoding'],
    [`<!DOCTYPE x>${HEADER}`, 'restricted-xml'],
  ];
  for (const [input, condition] of bad) {
    const buf = Buffer.from(input);
    for (let k = 0; k <= buf.length; k++) assert.is(feed(buf, [k]).error?.condition, condition, `${input} @${k}`);
  }
});

test('a large stanza trickled byte by byte costs linear time', () => {
  // a quadratic framer (re-joining or re-scanning the partial stanza per write) takes tens of seconds here
  const size = 400_000;
  const input = Buffer.from(`<message to='a@b' id='x'><body>${'x'.repeat(size / 2)}</body><data a='${'y'.repeat(size / 2)}'/></message>`);
  const { framer, events } = recorder({ maxStanzaBytes: 1 << 20 });
  framer.writeString(HEADER);
  const t0 = performance.now();
  for (let k = 0; k < input.length; k++) framer.write(input.subarray(k, k + 1));
  const ms = performance.now() - t0;
  assert.is(events.length, 2);
  assert.is(events[1]!.t === 'stanza' && events[1]!.xml.length, input.length);
  assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});

test('a long element name and attribute value cut at every write still match their end tags', () => {
  const name = 'n'.repeat(3000);
  const input = Buffer.from(`${HEADER}<m><${name} v='${'v'.repeat(3000)}'>t</${name}></m>`);
  const chunked = feed(input, Array.from({ length: Math.floor(input.length / 7) }, (_, k) => (k + 1) * 7));
  assert.is(chunked.error, null);
  assert.equal(chunked.events, feed(input).events);
});

test.run();
