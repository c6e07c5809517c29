// Why the load generator has its own client: per-stanza cost of its framer (+ reading the body's
// timestamp) and string building, against @xmpp/client's parser (@xmpp/xml on ltx, element trees)
// and element serialisation. Run: node --import tsx bench/lib/microbench.ts
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Framer } from './parser.ts';

const N = 200_000;
const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='bench.local' version='1.0'>`;
const stanza = (i: number) => `<message from='u${i % 400}@bench.local/bench' to='u${(i + 1) % 400}@bench.local/bench' type='chat' id='m${i}'><body>${i} ${(1.7e12 + i).toFixed(3)} x</body></message>`;

function chunks(size: number): Buffer[] {
  const all = Buffer.from(HEADER + Array.from({ length: N }, (_, i) => stanza(i)).join(''));
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.subarray(i, i + size));
  return out;
}

function time(label: string, fn: () => number): { label: string; usPerStanza: number } {
  fn(); // warm up
  const t0 = performance.now();
  const n = fn();
  const us = ((performance.now() - t0) * 1000) / n;
  return { label, usPerStanza: Math.round(us * 1000) / 1000 };
}

export async function microbench(): Promise<Array<{ label: string; usPerStanza: number }>> {
  type XmppXml = { Parser: new () => { on(ev: string, f: (el: any) => void): void; write(s: string): void }; xml: (...a: any[]) => { toString(): string } };
  const mod = '@xmpp/xml';
  const { Parser, xml } = (await import(mod)) as XmppXml;
  const results = [];
  for (const size of [1460, 65536]) {
    const data = chunks(size);
    results.push(time(`bench framer + body stamp, ${size} B reads`, () => {
      let n = 0, sum = 0;
      const f = new Framer({
        onHeader() {},
        onStanza(s) {
          const b = s.indexOf('<body>');
          const body = s.slice(b + 6, s.indexOf('</body>', b));
          const sp = body.indexOf(' ');
          sum += +body.slice(sp + 1, body.indexOf(' ', sp + 1));
          n++;
        },
        onEnd() {},
      });
      for (const c of data) f.push(c);
      return sum > 0 ? n : 0;
    }));
    results.push(time(`@xmpp/xml parser + getChildText('body'), ${size} B reads`, () => {
      let n = 0, sum = 0;
      const p = new Parser();
      p.on('element', (el) => { const body = el.getChildText('body') as string; sum += +body.split(' ')[1]; n++; });
      for (const c of data) p.write(c.toString());
      return sum > 0 ? n : 0;
    }));
  }
  results.push(time('bench: template string per message', () => {
    let len = 0;
    for (let i = 0; i < N; i++) len += `<message to='u${i}@bench.local/bench' type='chat' id='m${i}'><body>${i} ${(1.7e12 + i).toFixed(3)} x</body></message>`.length;
    return len > 0 ? N : 0;
  }));
  results.push(time('@xmpp/xml: xml() element + toString per message', () => {
    let len = 0;
    for (let i = 0; i < N; i++) len += xml('message', { to: `u${i}@bench.local/bench`, type: 'chat', id: `m${i}` }, xml('body', {}, `${i} ${(1.7e12 + i).toFixed(3)} x`)).toString().length;
    return len > 0 ? N : 0;
  }));
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await microbench()) console.log(`${r.usPerStanza.toFixed(3).padStart(8)} µs/stanza  ${r.label}`);
}
