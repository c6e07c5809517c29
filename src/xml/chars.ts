// Character classes and reference decoding shared by the framer and the element parser (XML 1.0 5th ed.).
import { XmlError } from './error.ts';

export const NAME_START = 1;
export const NAME_CHAR = 2;
export const WS = 4;

/** ASCII class table: NAME_START | NAME_CHAR | WS bits. */
export const ASCII = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z_:]/.test(ch)) ASCII[c] |= NAME_START | NAME_CHAR;
  if (/[0-9.\-]/.test(ch)) ASCII[c] |= NAME_CHAR;
}
ASCII[0x20] = ASCII[0x09] = ASCII[0x0a] = ASCII[0x0d] = WS;

/**
 * NameStartChar above ASCII, on UTF-16 units: a high surrogate D800–DB7F starts U+10000–U+EFFFF.
 * Deliberately stricter than XML: U+1680 and U+FEFF are refused because JavaScript's \s matches them and
 * fast-xml-parser would split a name there, silently changing the element.
 */
export function isWideNameStart(c: number): boolean {
  return (c >= 0xc0 && c <= 0xd6) || (c >= 0xd8 && c <= 0xf6) || (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) || (c >= 0x37f && c <= 0x1fff && c !== 0x1680) || c === 0x200c || c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) || (c >= 0x2c00 && c <= 0x2fef) || (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xf900 && c <= 0xfdcf) || (c >= 0xfdf0 && c <= 0xfffd && c !== 0xfeff) || (c >= 0xd800 && c <= 0xdb7f);
}

/** NameChar above ASCII (a low surrogate only ever follows an accepted high one). */
export function isWideNameChar(c: number): boolean {
  return isWideNameStart(c) || c === 0xb7 || (c >= 0x300 && c <= 0x36f) || c === 0x203f || c === 0x2040 ||
    (c >= 0xdc00 && c <= 0xdfff);
}

export function isNameStartCode(c: number): boolean {
  return c < 128 ? (ASCII[c]! & NAME_START) !== 0 : isWideNameStart(c);
}

export function isNameCode(c: number): boolean {
  return c < 128 ? (ASCII[c]! & NAME_CHAR) !== 0 : isWideNameChar(c);
}

/** XML Char production, on code points. */
export function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** A Name (not checked for namespace rules). */
export function isName(s: string): boolean {
  if (s.length === 0 || !isNameStartCode(s.charCodeAt(0))) return false;
  for (let i = 1; i < s.length; i++) if (!isNameCode(s.charCodeAt(i))) return false;
  return true;
}

/** A QName: a Name with at most one colon, not first or last. */
export function isQName(s: string): boolean {
  if (!isName(s)) return false;
  const c = s.indexOf(':');
  return c === -1 || (c > 0 && c < s.length - 1 && s.indexOf(':', c + 1) === -1);
}

const PREDEFINED: Record<string, string> = Object.assign(Object.create(null), { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" });
// Longest legal reference we accept: "&#x" + 6 hex digits + ";" plus generous leading zeros.
export const MAX_REF = 24;

/** Decodes the five predefined entities and numeric references; anything else is not well-formed. */
export function decodeRefs(s: string): string {
  let amp = s.indexOf('&');
  if (amp === -1) return s;
  let out = '';
  let last = 0;
  while (amp !== -1) {
    const semi = s.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > MAX_REF) throw new XmlError('not-well-formed', 'bare & or unterminated reference');
    out += s.slice(last, amp) + refValue(s.slice(amp + 1, semi));
    last = semi + 1;
    amp = s.indexOf('&', last);
  }
  return out + s.slice(last);
}

function refValue(body: string): string {
  if (body.charCodeAt(0) === 0x23 /* # */) {
    const hex = body.charCodeAt(1) === 0x78; /* x */
    const digits = body.slice(hex ? 2 : 1);
    if (digits.length === 0 || !(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) {
      throw new XmlError('not-well-formed', `malformed character reference &${body};`);
    }
    const cp = parseInt(digits, hex ? 16 : 10);
    if (!isXmlChar(cp)) throw new XmlError('not-well-formed', `character reference &${body}; is not an XML Char`);
    return String.fromCodePoint(cp);
  }
  const v = PREDEFINED[body];
  if (v === undefined) {
    throw new XmlError('not-well-formed', `undefined entity &${body};`);
  }
  return v;
}

/** Attribute-value normalisation (XML §3.3.3, CDATA type): literal TAB/LF/CR become spaces, then references. */
export function decodeAttr(raw: string): string {
  let v = raw;
  if (/[\t\n\r]/.test(v)) v = v.replace(/\r\n|[\t\n\r]/g, ' ');
  return v.indexOf('&') === -1 ? v : decodeRefs(v);
}

/** Text content: CRLF/CR become LF (XML §2.11), then references. */
export function decodeText(raw: string): string {
  const v = raw.indexOf('\r') === -1 ? raw : raw.replace(/\r\n?/g, '\n');
  return v.indexOf('&') === -1 ? v : decodeRefs(v);
}

/** UTF-8 length of s[from, to) without allocating. */
export function utf8Length(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : (c & 0xf800) === 0xd800 ? 2 : 3; // each half of a pair counts 2
  }
  return n;
}
