// Transcript tests: parties logged in over real sockets, "alice sends …", "bob receives …", each
// stanza compared as an XML tree (names, namespaces, attributes and children; whitespace-only text
// ignored), never by regex. An attribute expected as '*' must be there with any value.
import * as assert from 'uvu/assert';
import { StreamFramer } from '../../src/xml/framer.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { serialize } from '../../src/xml/builder.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { rawLogin, type RawClient } from './xmpp.ts';

/** Where two trees differ (a path and what), or null if `actual` matches `expected`. */
export function treeDiff(actual: XmlElement, expected: XmlElement, path = ''): string | null {
  const here = `${path}/${expected.name}`;
  if (actual.name !== expected.name) return `${here}: got <${actual.name}>`;
  if (actual.getXmlns() !== expected.getXmlns()) return `${here}: namespace ${actual.getXmlns()}, expected ${expected.getXmlns()}`;
  const own = (e: XmlElement) => Object.entries(e.attrs).filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:'));
  const got = new Map(own(actual));
  for (const [k, v] of own(expected)) {
    if (!got.has(k)) return `${here}: no attribute ${k}`;
    if (v !== '*' && got.get(k) !== v) return `${here}: ${k}="${got.get(k)}", expected "${v}"`;
    got.delete(k);
  }
  if (got.size) return `${here}: unexpected attributes ${[...got.keys()].join(', ')}`;
  const kids = (e: XmlElement) => e.children.filter((c) => typeof c !== 'string' || c.trim() !== '');
  const a = kids(actual), b = kids(expected);
  if (a.length !== b.length) return `${here}: ${a.length} children, expected ${b.length}`;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (typeof y === 'string') { if (x !== y) return `${here}: text ${JSON.stringify(x)}, expected ${JSON.stringify(y)}`; continue; }
    if (typeof x === 'string') return `${here}: text where <${y.name}> was expected`;
    const d = treeDiff(x, y, here);
    if (d) return d;
  }
  return null;
}

export interface Party {
  name: string;
  /** The bound full JID. */
  jid: string;
  sends(xml: string): void;
  /** The next stanza this party receives is `expected` (compared as trees); returns it. */
  receives(expected: string, ms?: number): Promise<XmlElement>;
  /**
   * Nothing but what is still expected arrives before the answer to an IQ sent now to `to` (an
   * IQ takes the same path as a stanza sent before it, so it comes after anything that stanza caused).
   */
  sync(to: string): Promise<void>;
  /** The next stanza, whatever it is (for flows whose stanzas carry values only the server knows). */
  next(ms?: number): Promise<XmlElement>;
  close(): void;
}

let syncs = 0;

/** Logs `local` in over a raw socket (PLAIN, so the node must allow it without TLS) as `resource`. */
export async function party(port: number, local: string, resource: string): Promise<Party> {
  const c: RawClient = await rawLogin(port, local, resource);
  const inbox: XmlElement[] = [];
  const waiting: Array<(e: XmlElement) => void> = [];
  const framer = new StreamFramer({
    onStreamStart: () => undefined,
    onStanza: (xml) => { const e = parseElement(xml); const w = waiting.shift(); if (w) w(e); else inbox.push(e); },
    onStreamEnd: () => undefined,
  });
  framer.write(Buffer.from(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`));
  // What came after the bind result in the same read, then every later read.
  const seen = c.received;
  const bound = seen.indexOf('</iq>', seen.indexOf('id="bind1"')) + '</iq>'.length;
  framer.write(Buffer.from(seen.slice(bound)));
  c.socket.on('data', (d: string) => framer.write(Buffer.from(d)));
  const jid = `${local}@localhost/${resource}`;
  const next = (ms: number) => new Promise<XmlElement>((resolve, reject) => {
    const e = inbox.shift();
    if (e) { resolve(e); return; }
    const t = setTimeout(() => { waiting.splice(waiting.indexOf(got), 1); reject(new Error(`${jid}: nothing received in ${ms} ms`)); }, ms);
    const got = (x: XmlElement) => { clearTimeout(t); resolve(x); };
    waiting.push(got);
  });
  const self: Party = {
    name: local, jid,
    sends: (xml) => c.send(xml),
    async receives(expected, ms = 5000) {
      const want = parseElement(expected);
      const got = await next(ms);
      const d = treeDiff(got, want);
      if (d) assert.unreachable(`${jid} received ${serialize(got)}\nexpected ${expected}\n${d}`);
      return got;
    },
    async sync(to) {
      const id = `sync-${++syncs}`;
      c.send(`<iq type='get' to='${to}' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
      const got = await next(5000);
      if (got.attr('id') !== id) assert.unreachable(`${jid} received ${serialize(got)} before the answer to its sync IQ to ${to}`);
    },
    next: (ms = 5000) => next(ms),
    close: () => c.close(),
  };
  return self;
}
