// Framer throughput on one core: stanzas/s for ~250 B and ~3 KB stanzas, fed as 64 KiB socket-sized reads
// and as one write per stanza; then the tree builder (parseElement, fast-xml-parser behind the framer)
// on the same stanzas, for the decision in docs/ARCHITECTURE.md ("One XML grammar").
// Run: node --import tsx bench/xml-framer.bench.ts
import { parseElement } from '../src/xml/element.ts';
import { StreamFramer } from '../src/xml/framer.ts';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

function small(n: number): string {
  const head = `<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='m${n}' xml:lang='en'><body>`;
  const tail = `</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`;
  const text = 'Art thou not Romeo, and a Montague? Neither, fair saint, if either thee dislike. ';
  return head + text.repeat(3).slice(0, 250 - head.length - tail.length) + tail; // exactly 250 B
}

function large(n: number): string {
  let items = '';
  for (let k = 0; k < 12; k++) {
    items += `<field var='field-${k}' type='text-single' label='Field &amp; label ${k}'><value>value ${k} &lt;with&gt; some text, caf\u00e9 \u2603</value></field>`;
  }
  const body = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(14);
  const s = `<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='m${n}'>` +
    `<body>${body}</body><x xmlns='jabber:x:data' type='form'>${items}</x>` +
    `<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='font-weight:bold'>Hi <em>there</em></p></body></html></message>`;
  return s;
}

function bench(label: string, make: (n: number) => string, perStanzaWrites: boolean): void {
  const N = 2000;
  const stanzas = Array.from({ length: N }, (_, n) => make(n));
  const bytes = Buffer.byteLength(stanzas[0]!);
  const all = Buffer.from(stanzas.join(''));
  const singles = stanzas.map((s) => Buffer.from(s));
  const chunks: Buffer[] = [];
  for (let o = 0; o < all.length; o += 65536) chunks.push(all.subarray(o, o + 65536));
  let count = 0;
  const handler = { onStreamStart() {}, onStanza() { count++; }, onStreamEnd() {} };
  const run = (): void => {
    const f = new StreamFramer(handler);
    f.writeString(HEADER);
    if (perStanzaWrites) for (const b of singles) f.write(b);
    else for (const b of chunks) f.write(b);
  };
  for (let w = 0; w < 20; w++) run(); // warm up the JIT
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    count = 0;
    const t0 = process.hrtime.bigint();
    let rounds = 0;
    while (process.hrtime.bigint() - t0 < 300_000_000n) { run(); rounds++; }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(count / secs);
  }
  rates.sort((a, b) => a - b);
  const median = rates[2]!;
  const mode = perStanzaWrites ? 'one write per stanza' : '64 KiB reads';
  console.log(`${label.padEnd(6)} (${bytes} B, ${mode.padEnd(20)}): ${Math.round(median).toLocaleString('en')} stanzas/s, ${(median * bytes / 1e6).toFixed(0)} MB/s`);
}

bench('250 B', small, false);
bench('250 B', small, true);
bench('3 KB', large, false);
bench('3 KB', large, true);

/** Median trees per second, over the same stanzas the framer had. */
function trees(label: string, make: (n: number) => string): void {
  const stanzas = Array.from({ length: 2000 }, (_, n) => make(n));
  const bytes = Buffer.byteLength(stanzas[0]!);
  for (let w = 0; w < 5; w++) for (const s of stanzas) parseElement(s);
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    let count = 0;
    const t0 = process.hrtime.bigint();
    while (process.hrtime.bigint() - t0 < 300_000_000n) { for (const s of stanzas) parseElement(s); count += stanzas.length; }
    rates.push(count / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  rates.sort((a, b) => a - b);
  console.log(`${label.padEnd(6)} (${bytes} B, parseElement to a tree): ${Math.round(rates[2]!).toLocaleString('en')} stanzas/s`);
}

trees('250 B', small);
trees('3 KB', large);

