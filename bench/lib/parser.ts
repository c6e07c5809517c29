// A small incremental framer for the load generator's side of an XMPP stream. It trusts the server
// (this is a benchmark client, not a security boundary): it only finds the stream header and the
// top-level stanza boundaries, resuming its scan where the last chunk ended so a byte is looked at once.
import { StringDecoder } from 'node:string_decoder';

export interface FramerEvents {
  onHeader(header: string): void;
  onStanza(stanza: string): void;
  onEnd(): void;
}

const GT = 62, SLASH = 47, BANG = 33, QMARK = 63, DQ = 34, SQ = 39;

export class Framer {
  private decoder = new StringDecoder('utf8');
  private buf = '';
  private pos = 0; // next unscanned index in buf
  private start = -1; // index of the current top-level stanza's '<', -1 between stanzas
  private depth = 0;
  private headerSeen = false;
  private gen = 0; // bumped by reset() so a scan interrupted by a handler stops

  constructor(private ev: FramerEvents) {}

  /** Forget everything (after STARTTLS or SASL success the stream restarts). */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.buf = '';
    this.pos = 0;
    this.start = -1;
    this.depth = 0;
    this.headerSeen = false;
    this.gen++;
  }

  push(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (this.start < 0 && this.pos >= this.buf.length) { this.buf = text; this.pos = 0; }
    else this.buf += text;
    this.scan();
  }

  private scan(): void {
    const b = this.buf;
    const n = b.length;
    const gen = this.gen;
    let i = this.pos;
    while (i < n) {
      const lt = b.indexOf('<', i);
      if (lt < 0) { i = n; break; }
      if (lt + 1 >= n) { i = lt; break; } // need the next char
      const c = b.charCodeAt(lt + 1);
      if (c === QMARK) { // <?xml ...?> before the header
        const e = b.indexOf('?>', lt + 2);
        if (e < 0) { i = lt; break; }
        i = e + 2;
        continue;
      }
      if (c === BANG) { // CDATA inside a stanza (comments are not allowed on a stream)
        const e = b.indexOf(']]>', lt + 2);
        if (e < 0) { i = lt; break; }
        i = e + 3;
        continue;
      }
      const gt = tagEnd(b, lt + 1);
      if (gt < 0) { i = lt; break; }
      if (c === SLASH) {
        i = gt + 1;
        if (this.depth === 0) { // </stream:stream>
          this.ev.onEnd();
          if (this.gen !== gen) return;
          continue;
        }
        this.depth--;
        if (this.depth === 0) {
          this.emit(i);
          if (this.gen !== gen) return;
        }
        continue;
      }
      if (!this.headerSeen) {
        this.headerSeen = true;
        i = gt + 1;
        this.ev.onHeader(b.slice(lt, i));
        if (this.gen !== gen) return;
        continue;
      }
      if (this.depth === 0) this.start = lt;
      i = gt + 1;
      if (b.charCodeAt(gt - 1) === SLASH) {
        if (this.depth === 0) {
          this.emit(i);
          if (this.gen !== gen) return;
        }
      } else {
        this.depth++;
      }
    }
    this.pos = i;
    this.compact();
  }

  private emit(end: number): void {
    const s = this.buf.slice(this.start, end);
    this.start = -1;
    this.ev.onStanza(s);
  }

  // Drop what has been consumed so the buffer does not grow with the stream.
  private compact(): void {
    const keep = this.start >= 0 ? this.start : this.pos;
    if (keep === 0) return;
    this.buf = this.buf.slice(keep);
    this.pos -= keep;
    if (this.start >= 0) this.start = 0;
  }
}

/** Index of the '>' closing the tag whose name starts at `from`, skipping quoted attribute values. */
function tagEnd(b: string, from: number): number {
  const n = b.length;
  for (let i = from; i < n; i++) {
    const c = b.charCodeAt(i);
    if (c === GT) return i;
    if (c === DQ || c === SQ) {
      const q = b.indexOf(c === DQ ? '"' : "'", i + 1);
      if (q < 0) return -1;
      i = q;
    }
  }
  return -1;
}

/** Local name of a stanza's top-level element ('stream:features' -> 'features'). */
export function stanzaName(s: string): string {
  let e = 1;
  const n = s.length;
  while (e < n) {
    const c = s.charCodeAt(e);
    if (c === 32 || c === GT || c === SLASH || c === 9 || c === 10 || c === 13) break;
    e++;
  }
  const q = s.slice(1, e);
  const colon = q.indexOf(':');
  return colon < 0 ? q : q.slice(colon + 1);
}

/** Value of an attribute on the first tag of `s` (the stanza's own tag unless `from` says otherwise). */
export function attr(s: string, name: string, from = 0): string | undefined {
  const end = tagEnd(s, from + 1);
  const tag = end < 0 ? s.slice(from) : s.slice(from, end);
  let i = 0;
  for (;;) {
    i = tag.indexOf(name + '=', i);
    if (i < 0) return undefined;
    const before = tag.charCodeAt(i - 1);
    if (before === 32 || before === 9 || before === 10 || before === 13) {
      const q = tag.charAt(i + name.length + 1);
      const close = tag.indexOf(q, i + name.length + 2);
      if (close < 0) return undefined;
      return unescapeXml(tag.slice(i + name.length + 2, close));
    }
    i += name.length;
  }
}

/** Text of the first `<name ...>text</name>` child anywhere in `s`, unescaped; undefined if absent. */
export function childText(s: string, name: string): string | undefined {
  let i = 0;
  for (;;) {
    i = s.indexOf('<' + name, i);
    if (i < 0) return undefined;
    const c = s.charCodeAt(i + name.length + 1);
    if (c === GT || c === 32 || c === SLASH || c === 9 || c === 10 || c === 13) break;
    i += name.length + 1;
  }
  const gt = tagEnd(s, i + 1);
  if (gt < 0) return undefined;
  if (s.charCodeAt(gt - 1) === SLASH) return '';
  const close = s.indexOf('</' + name, gt);
  if (close < 0) return undefined;
  return unescapeXml(s.slice(gt + 1, close));
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;');
}

export function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
    e === 'amp' ? '&' : e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'quot' ? '"' : e === 'apos' ? "'"
      : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));
}
