// Strict XMPP stream framer: socket bytes in; the stream header, each top-level stanza as its exact source
// string plus a flat routing header, and the stream close out. It enforces XML 1.0 well-formedness, XML
// namespaces and RFC 6120 §11.1 restricted XML without building trees (element.ts parses a stanza only
// when its payload is needed). The scanner is resumable at any UTF-16 unit and the scanned part of an
// unfinished stanza is moved to an append-only prefix that is never indexed, so a stanza trickled in byte
// by byte costs linear time; multi-unit lookahead is used only for bounded tokens (references, '<!'
// keywords, ']]>').
import { isUtf8 } from 'node:buffer';
import { NS } from './namespaces.ts';
import { escapeAttr } from './builder.ts';
import { XmlError } from './error.ts';
import {
  ASCII, MAX_REF, NAME_CHAR, NAME_START, decodeAttr, isWideNameChar, isWideNameStart, isXmlChar, utf8Length,
} from './chars.ts';

export { XmlError };

/** Flat record describing a top-level element; cheap to post between threads. */
export interface StanzaHeader {
  /** Local name: 'message', 'presence', 'iq', or e.g. 'features', 'auth', 'r'. */
  name: string;
  /** Resolved namespace; an unqualified stanza inherits the stream's default (e.g. 'jabber:client'). */
  xmlns: string;
  to: string | null;
  from: string | null;
  type: string | null;
  id: string | null;
  /** xml:lang on this element only (the stream's xml:lang applies when null). */
  lang: string | null;
  /** UTF-16 offset just past the element name in the stanza string (where an attribute can be inserted). */
  nameEnd: number;
  /** Offsets of the whole `to='…'` attribute (name to closing quote, end exclusive), or -1. */
  toStart: number;
  toEnd: number;
  /** Offsets of the whole `from='…'` attribute, or -1. */
  fromStart: number;
  fromEnd: number;
}

export interface StreamHeader {
  /** Qualified name as sent, normally 'stream:stream'. */
  name: string;
  /** The default (content) namespace declared on the header, '' when none. */
  xmlns: string;
  to: string | null;
  from: string | null;
  id: string | null;
  version: string | null;
  lang: string | null;
  /** Every attribute as sent (values decoded), namespace declarations included. */
  attrs: Record<string, string>;
  /** Whether an XML declaration preceded the header. */
  declaration: boolean;
}

export interface FramerHandler {
  onStreamStart(header: StreamHeader): void;
  onStanza(xml: string, header: StanzaHeader): void;
  onStreamEnd(): void;
}

export interface FramerOptions {
  /** UTF-8 bytes of one top-level element; default 262144. */
  maxStanzaBytes?: number;
  /** Element nesting, the stanza itself being depth 1; default 32. */
  maxDepth?: number;
  /** Attributes (namespace declarations included) on one element; default 64. */
  maxAttributes?: number;
  /** UTF-8 bytes of XML declaration plus stream header; default 4096. */
  maxHeaderBytes?: number;
  /** Default namespaces accepted on the stream header (null: any); default jabber:client and jabber:server. */
  contentNamespaces?: readonly string[] | null;
  /** Headerless mode for lone stanzas (validation, RFC 7395 WebSocket frames): top-level elements only. */
  fragment?: { xmlns?: string; prefixes?: Readonly<Record<string, string>> };
}

export interface ResetOptions {
  /** Keep input received but not yet consumed (pipelined after a pause) as the start of the new stream. */
  keepPending?: boolean;
}

// scanner states
const PROLOG_START = 0, DECL = 1, PROLOG = 2, BETWEEN = 3, LT = 4, BANG = 5, START_NAME = 6, TAG_SPACE = 7,
  ATTR_NAME = 8, ATTR_EQ = 9, ATTR_QUOTE = 10, ATTR_VALUE = 11, TAG_SLASH = 12, END_NAME = 13, END_WS = 14,
  TEXT = 15, CDATA = 16, AFTER_CLOSE = 17;

// attribute flags
const F_AMP = 1, F_WS = 2, F_XMLNS = 4, F_PREFIXED = 8;

const CDATA_OPEN = '<![CDATA[';
const DTD_KEYWORDS = new Set(['DOCTYPE', 'ENTITY', 'ELEMENT', 'ATTLIST', 'NOTATION']);
const ENCODING_RE = /[ \t\r\n]encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')/;
const DECL_RE = /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.0"|'1\.0')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"[A-Za-z][A-Za-z0-9._-]*"|'[A-Za-z][A-Za-z0-9._-]*'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*\?>$/;

function nwf(message: string): XmlError {
  return new XmlError('not-well-formed', message);
}

function clip(s: string): string {
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}

function badChar(c: number): XmlError {
  return nwf(`character U+${c.toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`);
}

function isQNameShape(name: string, colon: number): boolean {
  return colon === -1 || (colon > 0 && colon < name.length - 1 && name.indexOf(':', colon + 1) === -1);
}

/**
 * Length of the entity or character reference starting at s[i] === '&', 0 when more input is needed.
 * Only the five predefined entities and references to XML Chars are accepted.
 */
function refLength(s: string, i: number, len: number): number {
  let j = i + 1;
  if (j >= len) return 0;
  let c = s.charCodeAt(j);
  if (c === 0x23 /* # */) {
    if (++j >= len) return 0;
    const hex = s.charCodeAt(j) === 0x78; /* x */
    if (hex) j++;
    const first = j;
    let cp = 0;
    for (; ; j++) {
      if (j >= len) {
        if (j - i > MAX_REF) throw nwf('character reference too long');
        return 0;
      }
      c = s.charCodeAt(j);
      if (c === 0x3b /* ; */) break;
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (hex && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) d = (c | 0x20) - 0x57;
      else throw nwf('malformed character reference');
      cp = cp * (hex ? 16 : 10) + d;
      if (cp > 0x10ffff || j - i > MAX_REF) throw nwf('character reference out of range');
    }
    if (j === first) throw nwf('empty character reference');
    if (!isXmlChar(cp)) throw nwf(`character reference &${s.slice(i + 1, j)}; is not an XML Char`);
    return j - i + 1;
  }
  for (; j < len && j - i <= 5; j++) {
    c = s.charCodeAt(j);
    if (c === 0x3b) {
      const name = s.slice(i + 1, j);
      if (name === 'lt' || name === 'gt' || name === 'amp' || name === 'quot' || name === 'apos') return j - i + 1;
      throw nwf(`undefined entity &${name};`);
    }
    if (c < 0x61 || c > 0x7a) break; // the five names are lowercase ASCII
  }
  if (j >= len && j - i <= 5) return 0;
  throw nwf('undefined entity or bare &');
}

/** Bytes at the end of buf[start, n) that begin a UTF-8 sequence the chunk does not complete. */
function incompleteTail(buf: Uint8Array, start: number, n: number): number {
  const max = Math.min(3, n - start);
  for (let k = 1; k <= max; k++) {
    const b = buf[n - k]!;
    if ((b & 0xc0) === 0x80) continue;
    if (b < 0xc2 || b > 0xf4) return 0; // ASCII, or a byte no sequence starts with: validate it now
    return seqLength(b) > k ? k : 0;
  }
  return 0;
}

function seqLength(lead: number): number {
  return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
}

/** Offset of the first byte that does not start a valid UTF-8 sequence (error path only). */
function validUtf8Prefix(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let need: number, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f; }
    else return i;
    if (i + need >= n) return i;
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return n;
}

function encodingError(): XmlError {
  return new XmlError('unsupported-encoding', 'input is not valid UTF-8');
}

/**
 * One per connection; write() each socket read, events arrive synchronously. For a restart, pause() in the
 * callback of <starttls/> or SASL <success/>, then reset() (STARTTLS: pending plaintext is dropped) or
 * reset({ keepPending: true }) (SASL: a pipelined new header is kept), then resume().
 */
export class StreamFramer {
  private readonly handler: FramerHandler;
  private readonly maxStanzaBytes: number;
  private readonly maxDepth: number;
  private readonly maxAttrs: number;
  private readonly maxHeaderBytes: number;
  private readonly contentNs: readonly string[] | null;
  private readonly fragment: FramerOptions['fragment'] | null;

  // input not yet consumed, and the scan position in it
  private s = '';
  private i = 0;
  private state = PROLOG_START;
  private epoch = 0;
  private paused = false;
  private failure: XmlError | null = null;
  private pendingFailure: XmlError | null = null;
  private carry = new Uint8Array(4);
  private carryLen = 0;

  // the region being read (stream header, stanza or closing tag) and its UTF-8 size so far; regionStart
  // is an index into s, negative when the region's scanned beginning has moved to `pre`
  private inRegion = false;
  private regionStart = 0;
  private pre = '';
  private regionBytes = 0;
  private counted = 0;

  private open = false;
  private closed = false;
  private streamName = '';
  private sawDecl = false;

  // open elements inside the current stanza
  private depth = 0;
  private stack: string[] = [];
  private marks: number[] = [];

  // the tag being read; attribute positions are relative to regionStart (4 numbers per attribute)
  private tok = 0;
  private tagName = '';
  private tagColon = -1;
  private ws = false;
  private quote = 0;
  private flags = 0;
  private nAttrs = 0;
  private tagFlags = 0;
  private attrNames: string[] = [];
  private attrVals: string[] = []; // raw values, captured for namespace declarations and top-level tags
  private attrPos: number[] = [];
  private partial = ''; // scanned part of a name or attribute value cut at a write boundary
  private attrStart = 0;
  private endName = '';

  // namespace bindings: prefix ('' = default) → uri and declaring depth (0 = stream header, -1 = built in)
  private nsUri = new Map<string, string>();
  private nsDepth = new Map<string, number>();
  private undoPrefix: string[] = [];
  private undoUri: (string | undefined)[] = [];
  private undoDepth: (number | undefined)[] = [];
  private inherited: string[] | null = null;
  private hdr: StanzaHeader | null = null;

  constructor(handler: FramerHandler, options: FramerOptions = {}) {
    this.handler = handler;
    this.maxStanzaBytes = options.maxStanzaBytes ?? 262144;
    this.maxDepth = options.maxDepth ?? 32;
    this.maxAttrs = options.maxAttributes ?? 64;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 4096;
    this.contentNs = options.contentNamespaces === undefined ? [NS.CLIENT, NS.SERVER] : options.contentNamespaces;
    this.fragment = options.fragment ?? null;
    this.initStream();
  }

  /** True between pause() and resume(): input is buffered, not scanned. */
  get isPaused(): boolean {
    return this.paused;
  }

  /** True after the stream header (always in fragment mode) until the stream closes or resets. */
  get isOpen(): boolean {
    return this.open && !this.closed;
  }

  /** Part of an element (the header, a stanza) has come and its end not yet. */
  get midElement(): boolean {
    return this.inRegion;
  }

  /** UTF-16 units held: a partial stanza, or input received while paused. */
  get buffered(): number {
    return this.s.length;
  }

  /** Feeds raw socket bytes. Throws XmlError on the first violation; the framer then stays failed. */
  write(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    let text = '';
    let bad: XmlError | null = null;
    let start = 0;
    const n = chunk.length;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carryLen > 0) {
      const need = seqLength(this.carry[0]!);
      while (this.carryLen < need && start < n && (buf[start]! & 0xc0) === 0x80) this.carry[this.carryLen++] = buf[start++]!;
      if (this.carryLen < need && start === n) return;
      const got = this.carryLen;
      this.carryLen = 0;
      const seq = Buffer.from(this.carry.buffer, 0, got);
      if (got === need && isUtf8(seq)) text = seq.toString('utf8');
      else bad = encodingError(); // a sequence cut short by a non-continuation byte, or overlong etc.
    }
    if (bad === null && start < n) {
      const tail = incompleteTail(buf, start, n);
      const end = n - tail;
      const body = start === 0 && end === n ? buf : buf.subarray(start, end);
      if (isUtf8(body)) {
        text += body.toString('utf8');
        for (let k = 0; k < tail; k++) this.carry[k] = buf[end + k]!;
        this.carryLen = tail;
      } else {
        text += body.toString('utf8', 0, validUtf8Prefix(body));
        bad = encodingError();
      }
    }
    this.feed(text, bad);
  }

  /** Feeds already-decoded text (WebSocket text frames, tests, stored stanzas). */
  writeString(text: string): void {
    if (this.failure) throw this.failure;
    this.feed(text, null);
  }

  /** From inside a callback: stop after the current event and hold further input until resume(). */
  pause(): void {
    this.paused = true;
  }

  /** Scans held input (may emit events or throw), then continues normally. Not for use inside a callback. */
  resume(): void {
    this.paused = false;
    if (this.failure) throw this.failure;
    this.process();
  }

  /**
   * Expects a new stream header (after STARTTLS or SASL success). Held input is dropped unless
   * keepPending: plaintext that followed <starttls/> must never reach the new stream. Pause state is kept.
   */
  reset(options: ResetOptions = {}): void {
    this.epoch++;
    const keep = options.keepPending === true;
    this.s = keep ? this.s.slice(this.i) : '';
    if (!keep) {
      this.carryLen = 0;
      this.pendingFailure = null;
    }
    this.failure = null;
    this.initStream();
  }

  private initStream(): void {
    this.i = 0;
    this.inRegion = false;
    this.regionStart = 0;
    this.pre = '';
    this.partial = '';
    this.regionBytes = 0;
    this.counted = 0;
    this.closed = false;
    this.sawDecl = false;
    this.streamName = '';
    this.depth = 0;
    this.stack.length = 0;
    this.marks.length = 0;
    this.nAttrs = 0;
    this.hdr = null;
    this.inherited = null;
    this.undoPrefix.length = this.undoUri.length = this.undoDepth.length = 0;
    this.nsUri.clear();
    this.nsDepth.clear();
    this.nsUri.set('xml', NS.XML);
    this.nsDepth.set('xml', -1);
    const f = this.fragment;
    if (f) {
      this.open = true;
      this.state = BETWEEN;
      this.nsUri.set('', f.xmlns ?? '');
      this.nsDepth.set('', 0);
      for (const [p, uri] of Object.entries(f.prefixes ?? {})) {
        this.nsUri.set(p, uri);
        this.nsDepth.set(p, 0);
      }
    } else {
      this.open = false;
      this.state = PROLOG_START;
    }
  }

  private feed(text: string, bad: XmlError | null): void {
    if (text.length > 0) this.s = this.s.length === 0 ? text : this.s + text;
    if (bad) this.pendingFailure = bad;
    if (this.paused) {
      // a peer that keeps sending while we wait (e.g. during async auth) must not grow memory unbounded
      if (this.s.length - this.i > this.maxStanzaBytes) {
        throw (this.failure = new XmlError('policy-violation', 'too much input while the stream is paused'));
      }
      return;
    }
    this.process();
  }

  private process(): void {
    try {
      // a callback that reset the framer leaves kept input to scan, unless it also paused
      while (this.run() && !this.paused) { /* rescan */ }
      this.settle();
    } catch (e) {
      if (e instanceof XmlError) this.failure = e;
      throw e;
    }
    if (this.pendingFailure && !this.paused) throw (this.failure = this.pendingFailure);
  }

  /** Counts the bytes of an unfinished region, enforces its limit and drops consumed input. */
  private settle(): void {
    const s = this.s, len = s.length, i = this.i;
    let keep = i;
    if (this.inRegion) {
      this.regionBytes += utf8Length(s, Math.max(this.counted, this.regionStart, 0), len);
      this.counted = len;
      this.checkLimit(this.regionBytes);
      if (!this.open) {
        keep = this.regionStart; // a header is small (maxHeaderBytes): keep it whole
      } else if (!this.paused) {
        const st = this.state;
        if (st === START_NAME || st === ATTR_NAME || st === END_NAME || st === ATTR_VALUE) {
          this.partial += s.slice(this.tok, i);
          this.tok = i;
        }
        this.pre += s.slice(Math.max(this.regionStart, 0), i);
      } else {
        keep = Math.max(this.regionStart, 0);
      }
    }
    if (keep > 0) {
      this.s = keep >= len ? '' : s.slice(keep);
      this.i -= keep;
      this.tok -= keep;
      this.counted = Math.max(0, this.counted - keep);
      this.regionStart -= keep;
    }
  }

  private checkLimit(bytes: number): void {
    if (this.open) {
      if (bytes > this.maxStanzaBytes) {
        throw new XmlError('policy-violation', `stanza larger than ${this.maxStanzaBytes} bytes`);
      }
    } else if (bytes > this.maxHeaderBytes) {
      throw new XmlError('policy-violation', `stream header larger than ${this.maxHeaderBytes} bytes`);
    }
  }

  /** Exact size check of the region ending at `end`, skipped when even 3 bytes per unit fits. */
  private checkRegion(end: number): void {
    const from = Math.max(this.counted, this.regionStart, 0);
    const limit = this.open ? this.maxStanzaBytes : this.maxHeaderBytes;
    if (this.regionBytes + (end - from) * 3 <= limit) return;
    this.checkLimit(this.regionBytes + utf8Length(this.s, from, end));
  }

  private beginRegion(i: number): void {
    this.inRegion = true;
    this.regionStart = i;
    this.pre = '';
    this.regionBytes = 0;
    this.counted = i;
  }

  /** Scans as far as the input allows; true when a callback reset the framer. */
  private run(): boolean {
    const epoch = this.epoch;
    const s = this.s;
    const len = s.length;
    let i = this.i;
    let state = this.state;
    let c = 0;
    main: while (i < len) {
      switch (state) {
        case BETWEEN: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c !== 0x3c) throw new XmlError('bad-format', 'character data between stanzas');
          this.beginRegion(i);
          state = LT;
          continue;
        }
        case LT: {
          if (i + 1 >= len) break main;
          c = s.charCodeAt(i + 1);
          if (c === 0x2f /* / */) {
            if (this.depth === 0 && (!this.open || this.fragment)) throw nwf('end tag without a start tag');
            i += 2;
            this.tok = i;
            state = END_NAME;
            continue;
          }
          if (c === 0x21 /* ! */) { state = BANG; continue; }
          if (c === 0x3f /* ? */) throw new XmlError('restricted-xml', 'processing instructions are not allowed');
          if (c < 128 ? (ASCII[c]! & NAME_START) === 0 : !isWideNameStart(c)) throw nwf('invalid element name');
          this.tok = i + 1;
          i += 2;
          state = START_NAME;
          continue;
        }
        case START_NAME: {
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c < 128 ? (ASCII[c]! & NAME_CHAR) === 0 : !isWideNameChar(c)) break;
          }
          if (i === len) break main;
          const name = this.takePartial(s.slice(this.tok, i));
          const colon = name.indexOf(':');
          if (!isQNameShape(name, colon)) throw nwf(`'${clip(name)}' is not a valid qualified name`);
          this.tagName = name;
          this.tagColon = colon;
          this.nAttrs = 0;
          this.tagFlags = 0;
          this.ws = false;
          state = TAG_SPACE;
          continue;
        }
        case TAG_SPACE: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            this.ws = true;
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c === 0x3e /* > */) {
            state = this.endStartTag(i, false);
            i++;
            if (this.epoch !== epoch) return true;
            if (this.paused) break main;
            continue;
          }
          if (c === 0x2f /* / */) { i++; state = TAG_SLASH; continue; }
          if (c < 128 ? (ASCII[c]! & NAME_START) === 0 : !isWideNameStart(c)) {
            throw nwf(`unexpected '${String.fromCharCode(c)}' in tag <${clip(this.tagName)}>`);
          }
          if (!this.ws) throw nwf('attributes must be separated by whitespace');
          this.tok = i;
          this.attrStart = i - this.regionStart;
          i++;
          state = ATTR_NAME;
          continue;
        }
        case ATTR_NAME: {
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c < 128 ? (ASCII[c]! & NAME_CHAR) === 0 : !isWideNameChar(c)) break;
          }
          if (i === len) break main;
          this.addAttr(this.takePartial(s.slice(this.tok, i)));
          state = ATTR_EQ;
          continue;
        }
        case ATTR_EQ: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c !== 0x3d /* = */) throw nwf(`attribute '${clip(this.attrNames[this.nAttrs - 1]!)}' has no value`);
          i++;
          state = ATTR_QUOTE;
          continue;
        }
        case ATTR_QUOTE: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c !== 0x22 && c !== 0x27) throw nwf('attribute values must be quoted');
          this.quote = c;
          this.flags = 0;
          i++;
          this.tok = i;
          this.attrPos[(this.nAttrs - 1) * 4 + 1] = i - this.regionStart;
          state = ATTR_VALUE;
          continue;
        }
        case ATTR_VALUE: {
          const q = this.quote;
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c > 0x3c) {
              if (c >= 0xfffe) throw badChar(c);
              continue;
            }
            if (c === q) break;
            if (c === 0x26 /* & */) {
              const r = refLength(s, i, len);
              if (r === 0) break main;
              this.flags |= F_AMP;
              i += r - 1;
            } else if (c === 0x3c) {
              throw nwf("'<' in an attribute value");
            } else if (c < 0x20) {
              if (c === 0x09 || c === 0x0a || c === 0x0d) this.flags |= F_WS;
              else throw badChar(c);
            }
          }
          if (i === len) break main;
          const k = this.nAttrs - 1, p = k * 4;
          this.attrPos[p + 2] = i - this.regionStart;
          this.attrPos[p + 3]! |= this.flags;
          this.tagFlags |= this.attrPos[p + 3]!;
          // values read after the tag ends are captured now: the input they sit in may be gone by then
          if ((this.attrPos[p + 3]! & F_XMLNS) !== 0 || this.depth === 0) {
            this.attrVals[k] = this.takePartial(s.slice(this.tok, i));
          } else {
            this.partial = '';
          }
          i++;
          this.ws = false;
          state = TAG_SPACE;
          continue;
        }
        case TAG_SLASH: {
          if (s.charCodeAt(i) !== 0x3e) throw nwf("expected '>' after '/'");
          state = this.endStartTag(i, true);
          i++;
          if (this.epoch !== epoch) return true;
          if (this.paused) break main;
          continue;
        }
        case END_NAME: {
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c < 128 ? (ASCII[c]! & NAME_CHAR) === 0 : !isWideNameChar(c)) break;
          }
          if (i === len) break main;
          this.endName = this.takePartial(s.slice(this.tok, i));
          if (this.endName === '') throw nwf('malformed end tag');
          state = END_WS;
          continue;
        }
        case END_WS: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c !== 0x3e) throw nwf('malformed end tag');
          state = this.endEndTag(i);
          i++;
          if (this.epoch !== epoch) return true;
          if (this.paused) break main;
          continue;
        }
        case TEXT: {
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c > 0x5d) {
              if (c >= 0xfffe) throw badChar(c);
              continue;
            }
            if (c === 0x3c) break;
            if (c >= 0x20) {
              if (c === 0x26) {
                const r = refLength(s, i, len);
                if (r === 0) break main;
                i += r - 1;
              } else if (c === 0x5d /* ] */) {
                if (i + 1 < len && s.charCodeAt(i + 1) !== 0x5d) continue;
                if (i + 2 >= len) break main;
                if (s.charCodeAt(i + 2) === 0x3e) throw nwf("']]>' is not allowed in text");
              }
              continue;
            }
            if (c !== 0x09 && c !== 0x0a && c !== 0x0d) throw badChar(c);
          }
          if (i === len) break main;
          state = LT;
          continue;
        }
        case CDATA: {
          for (; i < len; i++) {
            c = s.charCodeAt(i);
            if (c === 0x5d) {
              if (i + 1 < len && s.charCodeAt(i + 1) !== 0x5d) continue;
              if (i + 2 >= len) break main;
              if (s.charCodeAt(i + 2) === 0x3e) break;
            } else if (c < 0x20) {
              if (c !== 0x09 && c !== 0x0a && c !== 0x0d) throw badChar(c);
            } else if (c >= 0xfffe) {
              throw badChar(c);
            }
          }
          if (i === len) break main;
          i += 3;
          state = TEXT;
          continue;
        }
        case BANG: {
          if (i + 2 >= len) break main;
          c = s.charCodeAt(i + 2);
          if (c === 0x2d /* - */) {
            if (i + 3 >= len) break main;
            if (s.charCodeAt(i + 3) === 0x2d) throw new XmlError('restricted-xml', 'comments are not allowed');
            throw nwf('malformed comment');
          }
          if (c === 0x5b /* [ */) {
            const avail = Math.min(len - i, CDATA_OPEN.length);
            if (!s.startsWith(CDATA_OPEN.slice(0, avail), i)) throw nwf('malformed CDATA section');
            if (avail < CDATA_OPEN.length) break main;
            if (this.depth === 0) {
              throw new XmlError(this.open ? 'bad-format' : 'not-well-formed', 'CDATA section outside a stanza');
            }
            i += CDATA_OPEN.length;
            state = CDATA;
            continue;
          }
          if (c >= 0x41 && c <= 0x5a) {
            let j = i + 2;
            while (j < len && j - i < 11 && (c = s.charCodeAt(j)) >= 0x41 && c <= 0x5a) j++;
            if (j === len && j - i < 11) break main;
            const word = s.slice(i + 2, j);
            if (DTD_KEYWORDS.has(word)) throw new XmlError('restricted-xml', `<!${word}> (DTD) is not allowed`);
          }
          throw nwf("malformed '<!' markup");
        }
        case PROLOG_START: {
          if (!this.inRegion) this.beginRegion(i);
          c = s.charCodeAt(i);
          if (c === 0xfeff && i === this.regionStart) { i++; continue; } // UTF-8 byte order mark
          if (c === 0 || (i + 1 < len && s.charCodeAt(i + 1) === 0)) {
            throw new XmlError('unsupported-encoding', 'UTF-16 or UTF-32 input; only UTF-8 is supported');
          }
          if (c !== 0x3c) { state = PROLOG; continue; }
          const avail = len - i;
          if (avail < 6) {
            if ('<?xml'.startsWith(s.slice(i))) break main;
            state = PROLOG;
            continue;
          }
          if (s.startsWith('<?xml', i)) {
            const w = s.charCodeAt(i + 5);
            if (w === 0x20 || w === 0x0a || w === 0x0d || w === 0x09) {
              this.tok = i;
              i += 5;
              this.sawDecl = true;
              state = DECL;
              continue;
            }
          }
          state = PROLOG;
          continue;
        }
        case DECL: {
          const end = s.indexOf('?>', Math.max(this.tok + 5, i - 1));
          if (end === -1) { i = len; break main; }
          this.checkDecl(s.slice(this.tok, end + 2));
          i = end + 2;
          state = PROLOG;
          continue;
        }
        case PROLOG: {
          if (!this.inRegion) this.beginRegion(i);
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          if (c !== 0x3c) throw nwf('expected a stream header');
          state = LT;
          continue;
        }
        case AFTER_CLOSE: {
          c = s.charCodeAt(i);
          while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
            if (++i === len) break main;
            c = s.charCodeAt(i);
          }
          throw nwf('data after the stream was closed');
        }
        default:
          throw new Error(`framer in unknown state ${state}`);
      }
    }
    this.i = i;
    this.state = state;
    return false;
  }

  /** Joins a token's piece from an earlier write with its rest. */
  private takePartial(rest: string): string {
    if (this.partial === '') return rest;
    const whole = this.partial + rest;
    this.partial = '';
    return whole;
  }

  private checkDecl(decl: string): void {
    const enc = ENCODING_RE.exec(decl);
    const name = enc ? (enc[1] ?? enc[2])! : 'UTF-8';
    if (name.toLowerCase() !== 'utf-8') throw new XmlError('unsupported-encoding', `encoding '${clip(name)}' is not UTF-8`);
    if (!DECL_RE.test(decl)) throw nwf('malformed XML declaration (version must be 1.0)');
  }

  private addAttr(name: string): void {
    const colon = name.indexOf(':');
    if (!isQNameShape(name, colon)) throw nwf(`'${clip(name)}' is not a valid attribute name`);
    const n = this.nAttrs;
    if (n >= this.maxAttrs) throw new XmlError('policy-violation', `more than ${this.maxAttrs} attributes on one element`);
    const names = this.attrNames;
    for (let k = 0; k < n; k++) if (names[k] === name) throw nwf(`duplicate attribute '${clip(name)}'`);
    let f = 0;
    if (colon === -1) {
      if (name === 'xmlns') f = F_XMLNS;
    } else {
      f = colon === 5 && name.startsWith('xmlns') ? F_XMLNS : F_PREFIXED;
    }
    names[n] = name;
    const p = n * 4;
    this.attrPos[p] = this.attrStart;
    this.attrPos[p + 3] = f;
    this.nAttrs = n + 1;
  }

  private attrValue(k: number): string {
    const raw = this.attrVals[k]!;
    return (this.attrPos[k * 4 + 3]! & (F_AMP | F_WS)) === 0 ? raw : decodeAttr(raw);
  }

  private endStartTag(gt: number, selfClosing: boolean): number {
    if (!this.open) return this.endStreamHeader(gt, selfClosing);
    const d = this.depth + 1;
    if (d > this.maxDepth) throw new XmlError('policy-violation', `elements nested deeper than ${this.maxDepth}`);
    const mark = this.undoPrefix.length;
    if (this.tagFlags & F_XMLNS) this.declareAll(d);
    const qn = this.tagName;
    let ns = '';
    if (this.tagColon > 0) ns = this.resolve(qn.slice(0, this.tagColon), true);
    else if (d === 1) ns = this.nsUri.get('') ?? '';
    if (this.tagFlags & F_PREFIXED) this.checkPrefixedAttrs(true);
    if (d === 1) this.hdr = this.stanzaHeader(qn, ns);
    if (selfClosing) {
      this.undo(mark);
      return d === 1 ? this.emitStanza(gt + 1) : TEXT;
    }
    this.stack[this.depth] = qn;
    this.marks[this.depth] = mark;
    this.depth = d;
    return TEXT;
  }

  private endEndTag(gt: number): number {
    const name = this.endName;
    if (this.depth === 0) {
      const qn = this.streamName;
      if (name !== qn) throw nwf(`end tag </${clip(name)}> does not close <${qn}>`);
      this.inRegion = false;
      this.pre = '';
      this.closed = true;
      this.i = gt + 1;
      this.state = AFTER_CLOSE;
      this.handler.onStreamEnd();
      return AFTER_CLOSE;
    }
    const qn = this.stack[this.depth - 1]!;
    if (name !== qn) throw nwf(`end tag </${clip(name)}> does not match <${clip(qn)}>`);
    this.depth--;
    this.undo(this.marks[this.depth]!);
    return this.depth === 0 ? this.emitStanza(gt + 1) : TEXT;
  }

  private emitStanza(end: number): number {
    this.checkRegion(end);
    let xml = this.regionStart < 0 ? this.pre + this.s.slice(0, end) : this.s.slice(this.regionStart, end);
    const h = this.hdr!;
    if (this.inherited !== null) {
      xml = this.spliceInherited(xml, h, this.inherited);
      this.inherited = null;
    }
    this.hdr = null;
    this.inRegion = false;
    this.pre = '';
    this.i = end;
    this.state = BETWEEN;
    this.handler.onStanza(xml, h);
    return BETWEEN;
  }

  /** Copies declarations of stream-level prefixes the stanza uses into its start tag, so it stands alone. */
  private spliceInherited(xml: string, h: StanzaHeader, prefixes: string[]): string {
    let decls = '';
    for (const p of prefixes) decls += ` xmlns:${p}="${escapeAttr(this.nsUri.get(p)!)}"`;
    const at = h.nameEnd, d = decls.length;
    if (h.toStart > at) { h.toStart += d; h.toEnd += d; }
    if (h.fromStart > at) { h.fromStart += d; h.fromEnd += d; }
    return xml.slice(0, at) + decls + xml.slice(at);
  }

  private endStreamHeader(gt: number, selfClosing: boolean): number {
    if (this.tagFlags & F_XMLNS) this.declareAll(0);
    const qn = this.tagName, colon = this.tagColon;
    const ns = colon > 0 ? this.resolve(qn.slice(0, colon), false) : this.nsUri.get('') ?? '';
    const local = colon > 0 ? qn.slice(colon + 1) : qn;
    if (local !== 'stream' || ns !== NS.STREAMS) {
      throw new XmlError('invalid-namespace', `the root element must be <stream> in ${NS.STREAMS}`);
    }
    if (this.tagFlags & F_PREFIXED) this.checkPrefixedAttrs(false);
    const content = this.nsUri.get('') ?? '';
    if (content !== '' && (colon > 0 || content !== NS.STREAMS)) {
      if (content === NS.STREAMS || (this.contentNs !== null && !this.contentNs.includes(content))) {
        throw new XmlError('invalid-namespace', `unsupported content namespace '${clip(content)}'`);
      }
    }
    if (selfClosing) throw new XmlError('bad-format', 'the stream header cannot be an empty element');
    this.checkRegion(gt + 1);
    const attrs: Record<string, string> = Object.create(null);
    for (let k = 0; k < this.nAttrs; k++) attrs[this.attrNames[k]!] = this.attrValue(k);
    const header: StreamHeader = {
      name: qn,
      xmlns: content === NS.STREAMS ? '' : content,
      to: attrs['to'] ?? null,
      from: attrs['from'] ?? null,
      id: attrs['id'] ?? null,
      version: attrs['version'] ?? null,
      lang: attrs['xml:lang'] ?? null,
      attrs,
      declaration: this.sawDecl,
    };
    this.open = true;
    this.streamName = qn;
    this.inRegion = false;
    this.i = gt + 1;
    this.state = BETWEEN;
    this.handler.onStreamStart(header);
    return BETWEEN;
  }

  private stanzaHeader(qn: string, ns: string): StanzaHeader {
    const h: StanzaHeader = {
      name: this.tagColon > 0 ? qn.slice(this.tagColon + 1) : qn,
      xmlns: ns,
      to: null,
      from: null,
      type: null,
      id: null,
      lang: null,
      nameEnd: 1 + qn.length,
      toStart: -1,
      toEnd: -1,
      fromStart: -1,
      fromEnd: -1,
    };
    const names = this.attrNames, pos = this.attrPos;
    for (let k = 0; k < this.nAttrs; k++) {
      switch (names[k]) {
        case 'to':
          h.to = this.attrValue(k);
          h.toStart = pos[k * 4]!;
          h.toEnd = pos[k * 4 + 2]! + 1;
          break;
        case 'from':
          h.from = this.attrValue(k);
          h.fromStart = pos[k * 4]!;
          h.fromEnd = pos[k * 4 + 2]! + 1;
          break;
        case 'type': h.type = this.attrValue(k); break;
        case 'id': h.id = this.attrValue(k); break;
        case 'xml:lang': h.lang = this.attrValue(k); break;
      }
    }
    return h;
  }

  private declareAll(d: number): void {
    for (let k = 0; k < this.nAttrs; k++) {
      if ((this.attrPos[k * 4 + 3]! & F_XMLNS) === 0) continue;
      const name = this.attrNames[k]!;
      this.declare(name.length === 5 ? '' : name.slice(6), this.attrValue(k), d);
    }
  }

  private declare(prefix: string, uri: string, d: number): void {
    if (prefix === '') {
      if (uri === NS.XML || uri === NS.XMLNS) throw nwf(`'${uri}' cannot be the default namespace`);
    } else {
      if (prefix === 'xmlns') throw nwf('the xmlns prefix cannot be declared');
      if (prefix === 'xml') {
        if (uri !== NS.XML) throw nwf('the xml prefix cannot be rebound');
        return;
      }
      if (uri === '') throw nwf(`prefix '${clip(prefix)}' cannot be undeclared in XML 1.0`);
      if (uri === NS.XML || uri === NS.XMLNS) throw nwf(`'${uri}' cannot be bound to another prefix`);
    }
    this.undoPrefix.push(prefix);
    this.undoUri.push(this.nsUri.get(prefix));
    this.undoDepth.push(this.nsDepth.get(prefix));
    this.nsUri.set(prefix, uri);
    this.nsDepth.set(prefix, d);
  }

  private undo(mark: number): void {
    const prefixes = this.undoPrefix;
    while (prefixes.length > mark) {
      const p = prefixes.pop()!, uri = this.undoUri.pop(), d = this.undoDepth.pop();
      if (uri === undefined) {
        this.nsUri.delete(p);
        this.nsDepth.delete(p);
      } else {
        this.nsUri.set(p, uri);
        this.nsDepth.set(p, d!);
      }
    }
  }

  /** Namespace bound to a prefix; inside a stanza, notes prefixes it borrows from the stream header. */
  private resolve(prefix: string, inStanza: boolean): string {
    if (prefix === 'xmlns') throw nwf('the xmlns prefix cannot qualify an element or attribute');
    const uri = this.nsUri.get(prefix);
    if (uri === undefined) throw new XmlError('bad-namespace-prefix', `namespace prefix '${clip(prefix)}' is not bound`);
    if (inStanza && this.nsDepth.get(prefix) === 0) {
      if (this.inherited === null) this.inherited = [prefix];
      else if (!this.inherited.includes(prefix)) this.inherited.push(prefix);
    }
    return uri;
  }

  /** Binds prefixed attributes and rejects two that expand to the same {namespace}local name. */
  private checkPrefixedAttrs(inStanza: boolean): void {
    let seen: string[] | null = null;
    for (let k = 0; k < this.nAttrs; k++) {
      if ((this.attrPos[k * 4 + 3]! & F_PREFIXED) === 0) continue;
      const name = this.attrNames[k]!, colon = name.indexOf(':');
      const key = this.resolve(name.slice(0, colon), inStanza) + ' ' + name.slice(colon + 1);
      if (seen === null) seen = [key];
      else if (seen.includes(key)) throw nwf(`attribute '${clip(name)}' duplicates another in the same namespace`);
      else seen.push(key);
    }
  }
}

/** For re-reading what the server built or already accepted: the header only matters, and a client's
 *  size limit is not the server's (a full roster result may well exceed max_stanza_bytes). */
export const OWN_STANZA = { maxStanzaBytes: Number.MAX_SAFE_INTEGER } as const;

/**
 * Checks that `xml` is exactly one well-formed element under the same rules as a stream, and returns its
 * header. For stanzas from storage or other untrusted strings before parseElement().
 */
export function validateStanza(
  xml: string, xmlns: string = NS.CLIENT, options: Omit<FramerOptions, 'fragment'> = {},
): StanzaHeader {
  const found: StanzaHeader[] = [];
  const framer = new StreamFramer({
    onStreamStart() { /* fragment mode has no header */ },
    onStanza(_xml, header) { found.push(header); },
    onStreamEnd() { /* fragment mode has no close */ },
  }, { ...options, fragment: { xmlns } });
  framer.writeString(xml);
  if (found.length !== 1 || framer.buffered !== 0) {
    throw nwf(found.length === 0 ? 'no complete element' : 'more than one top-level element');
  }
  return found[0]!;
}
