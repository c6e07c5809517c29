// Building and writing XML: typed element construction with name checks, escaping, serialisation, and
// address stamping on stanza strings without a parse (routers do this on every message).
import { NS } from './namespaces.ts';
import { isQName } from './chars.ts';
import { XmlElement, type XmlNode } from './element.ts';
import type { StanzaHeader } from './framer.ts';

export type AttrValue = string | number | boolean | null | undefined;
export type Child = XmlNode | null | undefined | false | readonly Child[];

const nameOk = new Set<string>();

function checkName(name: string, what: string): void {
  if (nameOk.has(name)) return;
  if (!isQName(name)) throw new TypeError(`invalid XML ${what} name '${name}'`);
  if (nameOk.size < 4096) nameOk.add(name); // names are a small fixed vocabulary; cap the cache anyway
}

function pushChildren(out: XmlNode[], children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (typeof c === 'string' || c instanceof XmlElement) {
      const last = out.length - 1;
      // merge adjacent text so a built tree compares equal to its parsed form
      if (typeof c === 'string' && last >= 0 && typeof out[last] === 'string') out[last] += c;
      else if (c !== '') out.push(c);
    } else {
      pushChildren(out, c);
    }
  }
}

/**
 * Builds an element. Attributes that are null/undefined are left out, numbers and booleans are
 * stringified; null/undefined/false children are skipped and arrays are flattened.
 */
export function x(name: string, attrs?: Readonly<Record<string, AttrValue>> | null, ...children: Child[]): XmlElement {
  checkName(name, 'element');
  const a: Record<string, string> = Object.create(null);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v === null || v === undefined) continue;
      checkName(k, 'attribute');
      a[k] = typeof v === 'string' ? v : String(v);
    }
  }
  const kids: XmlNode[] = [];
  pushChildren(kids, children);
  return new XmlElement(name, a, kids);
}

// Characters XML 1.0 cannot carry at all; written as U+FFFD rather than producing a stream the peer must kill.
const TEXT_TEST = /[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const TEXT_ALL = /[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;
const ATTR_TEST = /[&<>"'\t\n\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const ATTR_ALL = /[&<>"'\t\n\r\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/g;

function entity(ch: string): string {
  switch (ch) {
    case '&': return '&amp;';
    case '<': return '&lt;';
    case '>': return '&gt;';
    case '"': return '&quot;';
    case "'": return '&apos;';
    // as references so the parser's end-of-line and attribute normalisation cannot change them
    case '\t': return '&#x9;';
    case '\n': return '&#xA;';
    case '\r': return '&#xD;';
    default: return '\uFFFD';
  }
}

/** Escapes character data: & < > and CR (kept as a reference so it survives end-of-line handling). */
export function escapeText(s: string): string {
  return TEXT_TEST.test(s) ? s.replace(TEXT_ALL, entity) : s;
}

/** Escapes an attribute value for either quote style; TAB/LF/CR become references to survive normalisation. */
export function escapeAttr(s: string): string {
  return ATTR_TEST.test(s) ? s.replace(ATTR_ALL, entity) : s;
}

/** Writes an element (or text) as XML; elements without children are self-closed. */
export function serialize(node: XmlNode): string {
  if (typeof node === 'string') return escapeText(node);
  let out = '<' + node.name;
  const attrs = node.attrs;
  for (const k in attrs) out += ' ' + k + '="' + escapeAttr(attrs[k]!) + '"';
  const ch = node.children;
  if (ch.length === 0) return out + '/>';
  out += '>';
  for (let i = 0; i < ch.length; i++) {
    const c = ch[i]!;
    out += typeof c === 'string' ? escapeText(c) : serialize(c);
  }
  return out + '</' + node.name + '>';
}

function checkHeader(xml: string, h: StanzaHeader): void {
  // cheap guard against a header that belongs to another string
  if (xml.charCodeAt(0) !== 0x3c || !xml.startsWith(h.name, h.nameEnd - h.name.length)) {
    throw new TypeError('stanza header does not describe this stanza string');
  }
}

function splice(xml: string, h: StanzaHeader, attr: 'from' | 'to', value: string): string {
  checkHeader(xml, h);
  const start = attr === 'from' ? h.fromStart : h.toStart;
  const v = attr + '="' + escapeAttr(value) + '"';
  if (start >= 0) {
    if (!xml.startsWith(attr, start)) throw new TypeError('stanza header does not describe this stanza string');
    return xml.slice(0, start) + v + xml.slice(attr === 'from' ? h.fromEnd : h.toEnd);
  }
  return xml.slice(0, h.nameEnd) + ' ' + v + xml.slice(h.nameEnd);
}

/** Sets (replaces or inserts) the top-level 'from' of a framer-produced stanza string. */
export function stampFrom(xml: string, header: StanzaHeader, from: string): string {
  return splice(xml, header, 'from', from);
}

/** Sets (replaces or inserts) the top-level 'to' of a framer-produced stanza string. */
export function stampTo(xml: string, header: StanzaHeader, to: string): string {
  return splice(xml, header, 'to', to);
}

/** One attribute change on a copy of the header: offsets after the edit point move by its length change. */
function stampOne(xml: string, h: StanzaHeader, attr: 'from' | 'to', value: string | null): string {
  const start = attr === 'from' ? h.fromStart : h.toStart;
  const end = attr === 'from' ? h.fromEnd : h.toEnd;
  if (start >= 0 && !xml.startsWith(attr, start)) throw new TypeError('stanza header does not describe this stanza string');
  if (start < 0 && value === null) return xml;
  const text = value === null ? '' : attr + '="' + escapeAttr(value) + '"';
  let at: number, cut: number, newStart: number;
  if (start < 0) { at = cut = h.nameEnd; newStart = at + 1; } // insert ' attr="…"' after the name
  else if (value === null) { at = start - 1; cut = end; newStart = -1; } // drop the separating space too
  else { at = start; cut = end; newStart = start; }
  const insert = start < 0 ? ' ' + text : text;
  const delta = insert.length - (cut - at);
  if (attr === 'from') {
    if (h.toStart > at) { h.toStart += delta; h.toEnd += delta; }
    h.from = value;
    h.fromStart = newStart;
    h.fromEnd = newStart < 0 ? -1 : newStart + text.length;
  } else {
    if (h.fromStart > at) { h.fromStart += delta; h.fromEnd += delta; }
    h.to = value;
    h.toStart = newStart;
    h.toEnd = newStart < 0 ? -1 : newStart + text.length;
  }
  return xml.slice(0, at) + insert + xml.slice(cut);
}

/**
 * Sets 'from' and/or 'to' (a string sets, null removes, undefined keeps) and returns the new string with
 * a header whose values and offsets match it, so stamps can be chained.
 */
export function restamp(
  xml: string, header: StanzaHeader, change: { from?: string | null; to?: string | null },
): { xml: string; header: StanzaHeader } {
  checkHeader(xml, header);
  const h: StanzaHeader = { ...header };
  let out = xml;
  if (change.from !== undefined) out = stampOne(out, h, 'from', change.from);
  if (change.to !== undefined) out = stampOne(out, h, 'to', change.to);
  return { xml: out, header: h };
}

export interface StreamOpenOptions {
  to?: string | null;
  from?: string | null;
  id?: string | null;
  version?: string | null;
  lang?: string | null;
  /** Content namespace; default jabber:client. */
  xmlns?: string;
  /** Prefix the XML declaration; default true. */
  declaration?: boolean;
  /** Declare the dialback prefix (`xmlns:db`, XEP-0220) on a server stream. */
  dialback?: boolean;
}

/** An element's start tag alone, for a container written piecewise around content that is already
 *  XML (a BOSH body around the engine's elements, an export a user at a time). */
export function startTag(name: string, attrs?: Readonly<Record<string, AttrValue>> | null): string {
  return serialize(x(name, attrs)).slice(0, -2) + '>';
}

/** Our stream header (the 'stream' prefix is what streamError() relies on). */
export function streamOpen(o: StreamOpenOptions = {}): string {
  let out = o.declaration === false ? '' : "<?xml version='1.0'?>";
  out += `<stream:stream xmlns="${escapeAttr(o.xmlns ?? NS.CLIENT)}" xmlns:stream="${NS.STREAMS}"`;
  if (o.dialback) out += ` xmlns:db="${NS.DIALBACK}"`;
  if (o.from != null) out += ` from="${escapeAttr(o.from)}"`;
  if (o.to != null) out += ` to="${escapeAttr(o.to)}"`;
  if (o.id != null) out += ` id="${escapeAttr(o.id)}"`;
  const version = o.version === undefined ? '1.0' : o.version;
  if (version !== null) out += ` version="${escapeAttr(version)}"`;
  if (o.lang != null) out += ` xml:lang="${escapeAttr(o.lang)}"`;
  return out + '>';
}

export function streamClose(): string {
  return '</stream:stream>';
}
