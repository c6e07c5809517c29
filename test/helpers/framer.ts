// Shared by the xml tests: drive a StreamFramer and record what it reports.
import { StreamFramer, XmlError, type FramerOptions, type StanzaHeader, type StreamHeader } from '../../src/xml/framer.ts';

export const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

export type Event =
  | { t: 'start'; h: StreamHeader }
  | { t: 'stanza'; xml: string; h: StanzaHeader }
  | { t: 'end' };

export interface Run { events: Event[]; error: XmlError | null }

export function recorder(options?: FramerOptions): { framer: StreamFramer; events: Event[] } {
  const events: Event[] = [];
  const framer = new StreamFramer({
    onStreamStart: (h) => { events.push({ t: 'start', h: { ...h, attrs: { ...h.attrs } } }); },
    onStanza: (xml, h) => { events.push({ t: 'stanza', xml, h }); },
    onStreamEnd: () => { events.push({ t: 'end' }); },
  }, options);
  return { framer, events };
}

/** Feeds `input` split at the given byte offsets; a thrown XmlError is returned, anything else rethrown. */
export function feed(input: string | Buffer, cuts: number[] = [], options?: FramerOptions): Run {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const { framer, events } = recorder(options);
  let at = 0;
  try {
    for (const cut of [...cuts, buf.length]) {
      framer.write(buf.subarray(at, cut));
      at = cut;
    }
  } catch (e) {
    if (e instanceof XmlError) return { events, error: e };
    throw e;
  }
  return { events, error: null };
}

/** Every byte written on its own. */
export function feedBytes(input: string | Buffer, options?: FramerOptions): Run {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  return feed(buf, Array.from({ length: Math.max(0, buf.length - 1) }, (_, k) => k + 1), options);
}

export function stanzas(run: Run): string[] {
  return run.events.flatMap((e) => (e.t === 'stanza' ? [e.xml] : []));
}
