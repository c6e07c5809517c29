// XMPP addresses (RFC 7622): parsing, PRECIS normalisation (RFC 8264/8265) and comparison.
// Parts are stored normalised, so equality is plain string equality. Absent parts are '' (a present
// part can never be empty, so '' is unambiguous).
import { domainToASCII, domainToUnicode } from 'node:url';
import { isIPv4, isIPv6 } from 'node:net';

export type JidPart = 'localpart' | 'domainpart' | 'resourcepart';

/** A malformed address; callers answer it with the `jid-malformed` stanza/stream error. */
export class JidError extends Error {
  readonly condition = 'jid-malformed' as const;
  constructor(readonly part: JidPart, reason: string) {
    super(`${part}: ${reason}`);
    this.name = 'JidError';
  }
}

const MAX_PART_BYTES = 1023;
// Lets this module build a Jid from parts already normalised; not exported, so no one else can.
const PREPARED: unique symbol = Symbol('prepared');

export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  #str: string | undefined;

  /** Normalises each part; throws JidError. Pass '' for an absent localpart or resourcepart. */
  constructor(local: string, domain: string, resource = '', prepared?: typeof PREPARED) {
    const skip = prepared === PREPARED;
    this.local = skip || local === '' ? local : prepareLocalpart(local);
    this.domain = skip ? domain : prepareDomainpart(domain);
    this.resource = skip || resource === '' ? resource : prepareResourcepart(resource);
  }

  static parse(s: string): Jid { return parseJid(s); }

  isBare(): boolean { return this.resource === ''; }

  bare(): Jid { return this.resource === '' ? this : trusted(this.local, this.domain, ''); }

  withResource(resource: string): Jid {
    return trusted(this.local, this.domain, resource === '' ? '' : prepareResourcepart(resource));
  }

  toBareString(): string { return this.local === '' ? this.domain : `${this.local}@${this.domain}`; }

  toString(): string {
    return (this.#str ??= this.resource === '' ? this.toBareString() : `${this.toBareString()}/${this.resource}`);
  }

  toJSON(): string { return this.toString(); }

  equals(other: Jid | null | undefined): boolean {
    return !!other && other.domain === this.domain && other.local === this.local && other.resource === this.resource;
  }

  bareEquals(other: Jid | null | undefined): boolean {
    return !!other && other.domain === this.domain && other.local === this.local;
  }
}

function trusted(local: string, domain: string, resource: string): Jid {
  return new Jid(local, domain, resource, PREPARED);
}

/** Recently parsed addresses (a Jid is immutable): a chat message names the same few JIDs at every
 *  hop, and normalising a domain (IDNA, length checks) is the dearest part of a parse. Bounded: when
 *  full it starts over. Malformed input is not kept (it throws every time). */
const parsed = new Map<string, Jid>();
const PARSED_MAX = 10_000;

/** Parses and normalises per RFC 7622 §3.1; throws JidError. */
export function parseJid(s: string): Jid {
  let jid = parsed.get(s);
  if (jid === undefined) {
    jid = parseFresh(s);
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(s, jid);
  }
  return jid;
}

function parseFresh(s: string): Jid {
  // Split order is normative: resource from the first '/', then local up to the first '@' before it.
  const slash = s.indexOf('/');
  const head = slash === -1 ? s : s.slice(0, slash);
  const at = head.indexOf('@');
  let local = '';
  if (at !== -1) {
    local = head.slice(0, at);
    if (local === '') throw new JidError('localpart', 'empty');
  }
  let resource = '';
  if (slash !== -1) {
    resource = s.slice(slash + 1);
    if (resource === '') throw new JidError('resourcepart', 'empty');
  }
  return trusted(
    local === '' ? '' : prepareLocalpart(local),
    prepareDomainpart(at === -1 ? head : head.slice(at + 1)),
    resource === '' ? '' : prepareResourcepart(resource),
  );
}

/** parseJid that returns undefined instead of throwing. */
export function tryParseJid(s: string): Jid | undefined {
  try { return parseJid(s); } catch (e) { if (e instanceof JidError) return undefined; throw e; }
}

// ---- parts --------------------------------------------------------------------------------------

// ASCII fast paths: everything printable is PVALID in both PRECIS classes, so only the localpart
// exclusions "&'/:<>@ (RFC 7622 §3.3.1) and space need rejecting.
const ASCII_LOCAL = /^[\x21\x23-\x25\x28-\x2e\x30-\x39\x3b\x3d\x3f-\x7e]+$/;
const ASCII_RESOURCE = /^[\x20-\x7e]+$/;
const UPPER = /[A-Z]/;

/** UsernameCaseMapped (RFC 8265 §3.3) plus the RFC 7622 localpart exclusions. */
export function prepareLocalpart(s: string): string {
  if (s.length <= MAX_PART_BYTES && ASCII_LOCAL.test(s)) return UPPER.test(s) ? s.toLowerCase() : s;
  if (s === '') throw new JidError('localpart', 'empty');
  if (s.length > MAX_PART_BYTES * 4) throw new JidError('localpart', 'too long');
  const out = stabilise(s, usernameMap, 'localpart');
  if (out === '') throw new JidError('localpart', 'empty after normalisation');
  checkClass(out, false, 'localpart');
  if (/["&'/:<>@]/.test(out)) throw new JidError('localpart', 'contains a character excluded by RFC 7622');
  checkBidi(out, 'localpart');
  checkLength(out, 'localpart');
  return out;
}

/** OpaqueString (RFC 8265 §4.2). */
export function prepareResourcepart(s: string): string {
  if (s.length <= MAX_PART_BYTES && ASCII_RESOURCE.test(s)) return s;
  if (s === '') throw new JidError('resourcepart', 'empty');
  if (s.length > MAX_PART_BYTES * 4) throw new JidError('resourcepart', 'too long');
  const out = stabilise(s, opaqueMap, 'resourcepart');
  if (out === '') throw new JidError('resourcepart', 'empty after normalisation');
  checkClass(out, true, 'resourcepart');
  checkLength(out, 'resourcepart');
  return out;
}

const ASCII_DOMAIN = /^[a-z0-9.-]+$/;

/** RFC 7622 §3.2: IDNA2008 U-labels (A-labels converted), lowercased, one trailing dot removed; or an IP literal. */
export function prepareDomainpart(s: string): string {
  if (s === '') throw new JidError('domainpart', 'empty');
  if (s.length > MAX_PART_BYTES * 4) throw new JidError('domainpart', 'too long');
  let d = s;
  if (!ASCII_DOMAIN.test(d)) {
    if (d.startsWith('[')) return prepareIpv6(d);
    if (UPPER.test(d) && /^[A-Za-z0-9.-]+$/.test(d)) d = d.toLowerCase();
  }
  if (ASCII_DOMAIN.test(d) && !d.includes('xn--')) {
    if (d.endsWith('.')) d = d.slice(0, -1);
    checkAsciiDomain(d, d);
    checkLength(d, 'domainpart');
    return d;
  }
  // The WHATWG host parser behind domainToASCII percent-decodes and drops tabs and what follows a
  // backslash, so raw ASCII outside LDH and dots must be refused before it sees the string.
  if (/[^A-Za-z0-9.\-\u0080-\u{10ffff}]/u.test(d)) throw new JidError('domainpart', 'character not allowed in a domain name');
  // IDNA path: UTS 46 mapping (case, width, ideographic dots) then back to U-labels.
  const ascii0 = domainToASCII(d);
  if (ascii0 === '') throw new JidError('domainpart', 'not a valid domain name');
  const ascii = ascii0.endsWith('.') ? ascii0.slice(0, -1) : ascii0;
  checkAsciiDomain(ascii, s);
  const uni = domainToUnicode(ascii);
  // A-labels must be canonical: converting back must reproduce them exactly.
  if (uni === '' || domainToASCII(uni) !== ascii) throw new JidError('domainpart', 'invalid A-label');
  for (const label of uni.split('.')) if (!/^[\x00-\x7f]*$/.test(label)) checkULabel(label);
  checkLength(uni, 'domainpart');
  return uni;
}

function checkAsciiDomain(d: string, original: string): void {
  if (d === '') throw new JidError('domainpart', 'empty');
  const labels = d.split('.');
  // An all-numeric final label is an IPv4 address: accept only dotted-quad, not URL-style '127.1'.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    if (isIPv4(d) && (original === d || original === d + '.')) return;
    throw new JidError('domainpart', 'invalid IPv4 address');
  }
  for (const label of labels) {
    if (label === '') throw new JidError('domainpart', 'empty label');
    if (label.length > 63) throw new JidError('domainpart', 'label longer than 63 octets');
    if (!/^[a-z0-9-]+$/.test(label)) throw new JidError('domainpart', 'label is not letters, digits and hyphens');
    if (label.startsWith('-') || label.endsWith('-')) throw new JidError('domainpart', 'label starts or ends with a hyphen');
    // Reserved LDH labels ("??--") other than A-labels are not allowed in IDNA2008.
    if (label[2] === '-' && label[3] === '-' && !label.startsWith('xn--')) throw new JidError('domainpart', 'reserved label');
  }
}

// IDNA2008 (RFC 5892) is close to PRECIS IdentifierClass minus the ASCII symbols; WHATWG/UTS 46 is
// more permissive (emoji, symbols), so re-check each non-ASCII label.
function checkULabel(label: string): void {
  for (const ch of label) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if (!/[a-z0-9-]/.test(ch)) throw new JidError('domainpart', 'invalid character in U-label');
      continue;
    }
    const p = precisProperty(cp, ch);
    if (p === 'FREE' || p === 'DISALLOWED') throw new JidError('domainpart', `U+${hex(cp)} is not allowed by IDNA2008`);
  }
  checkContext(label, 'domainpart');
}

function prepareIpv6(s: string): string {
  const inner = s.endsWith(']') ? s.slice(1, -1) : '';
  if (!isIPv6(inner) || inner.includes('%')) throw new JidError('domainpart', 'invalid IPv6 literal');
  return new URL(`http://${s}/`).hostname; // canonical text form, e.g. [0:0::1] → [::1]
}

// ---- PRECIS ----------------------------------------------------------------------------------------

// RFC 8264 §7: reapply the rules until the output is stable; give up after three extra rounds.
function stabilise(s: string, f: (s: string) => string, part: JidPart): string {
  let cur = f(s);
  for (let i = 0; i < 3; i++) {
    const next = f(cur);
    if (next === cur) return cur;
    cur = next;
  }
  throw new JidError(part, 'normalisation does not stabilise');
}

// Fullwidth/halfwidth forms (<wide>/<narrow> decompositions) sit in U+3000 and U+FF01–U+FFEE;
// NFKC of one such code point is exactly its width mapping.
const WIDE_NARROW = /[\u3000\uff01-\uffee]/gu;

// RFC 8265 §3.3.3: width map, case map (toLowerCase), NFC.
function usernameMap(s: string): string {
  return s.replace(WIDE_NARROW, (c) => c.normalize('NFKC')).toLowerCase().normalize('NFC');
}

// RFC 8265 §4.2.3: non-ASCII spaces → U+0020, NFC.
function opaqueMap(s: string): string {
  return s.replace(/[^\P{Zs} ]/gu, ' ').normalize('NFC');
}

type PrecisProperty = 'PVALID' | 'FREE' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED';

const EXC_PVALID = new Set([0xdf, 0x3c2, 0x6fd, 0x6fe, 0xf0b, 0x3007]);
const EXC_CONTEXTO = new Set([0xb7, 0x375, 0x5f3, 0x5f4, 0x30fb]);
const EXC_DISALLOWED = new Set([0x640, 0x7fa, 0x302e, 0x302f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035, 0x303b]);
const UNASSIGNED = /^\p{Cn}$/u;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const CONTROL = /^\p{Cc}$/u;
const LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
const FREE_CLASSES = /^[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]$/u;

// The derivation of RFC 8264 §8, in its order. 'FREE' = ID_DIS or FREE_PVAL.
function precisProperty(cp: number, ch: string): PrecisProperty {
  if (EXC_PVALID.has(cp)) return 'PVALID';
  if (EXC_CONTEXTO.has(cp) || (cp >= 0x660 && cp <= 0x669) || (cp >= 0x6f0 && cp <= 0x6f9)) return 'CONTEXTO';
  if (EXC_DISALLOWED.has(cp)) return 'DISALLOWED';
  if (UNASSIGNED.test(ch)) return 'DISALLOWED';
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID';
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXTJ';
  if (isOldHangulJamo(cp)) return 'DISALLOWED';
  if (IGNORABLE.test(ch) || CONTROL.test(ch)) return 'DISALLOWED';
  if (ch.normalize('NFKC') !== ch) return 'FREE'; // HasCompat
  if (LETTER_DIGITS.test(ch)) return 'PVALID';
  if (FREE_CLASSES.test(ch)) return 'FREE';
  return 'DISALLOWED'; // Cf, Co, Cs, Zl, Zp
}

// Hangul_Syllable_Type L, V, T (no \p{} for it in JS).
function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) || (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb);
}

function checkClass(s: string, freeform: boolean, part: JidPart): void {
  let needsContext = false;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x21 && cp <= 0x7e) continue;
    if (cp === 0x20 && freeform) continue;
    const p = precisProperty(cp, ch);
    if (p === 'PVALID' || (p === 'FREE' && freeform)) continue;
    if (p === 'CONTEXTJ' || p === 'CONTEXTO') { needsContext = true; continue; }
    throw new JidError(part, `U+${hex(cp)} is not allowed`);
  }
  if (needsContext) checkContext(s, part);
}

// Contextual rules of RFC 5892 Appendix A.
function checkContext(s: string, part: JidPart): void {
  const cps = Array.from(s, (c) => c.codePointAt(0)!);
  const bad = (cp: number) => { throw new JidError(part, `U+${hex(cp)} is not allowed in this context`); };
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    const before = i > 0 ? String.fromCodePoint(cps[i - 1]!) : '';
    const after = i + 1 < cps.length ? String.fromCodePoint(cps[i + 1]!) : '';
    if (cp === 0x200c || cp === 0x200d) {
      // Only the virama rule; ZWNJ's joining-type rule needs data JS does not expose, so it is rejected.
      if (!isVirama(before)) bad(cp);
    } else if (cp === 0xb7) {
      if (before !== 'l' || after !== 'l') bad(cp);
    } else if (cp === 0x375) {
      if (!/^\p{Script=Greek}$/u.test(after)) bad(cp);
    } else if (cp === 0x5f3 || cp === 0x5f4) {
      if (!/^\p{Script=Hebrew}$/u.test(before)) bad(cp);
    } else if (cp === 0x30fb) {
      if (!/[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u.test(s.replace(/\u30fb/g, ''))) bad(cp);
    } else if (cp >= 0x660 && cp <= 0x669) {
      if (cps.some((c) => c >= 0x6f0 && c <= 0x6f9)) bad(cp);
    } else if (cp >= 0x6f0 && cp <= 0x6f9) {
      if (cps.some((c) => c >= 0x660 && c <= 0x669)) bad(cp);
    }
  }
}

// Canonical_Combining_Class = 9, probed through canonical reordering against marks of class 8
// (U+3099) and 10 (U+05B0): a virama sorts after the first and before the second.
function isVirama(ch: string): boolean {
  if (ch === '' || ch === '\u3099' || ch === '\u05b0') return false;
  return ('a' + ch + '\u3099').normalize('NFD') === 'a\u3099' + ch && ('a\u05b0' + ch).normalize('NFD') === 'a' + ch + '\u05b0';
}

// Bidi Rule (RFC 5893 §2), approximated with scripts since JS has no Bidi_Class property:
// R/AL = letters of right-to-left scripts, AN = Arabic-Indic digits, L = other letters and digits.
const RTL = /^[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Mende_Kikakui}\p{Script=Imperial_Aramaic}\p{Script=Phoenician}\p{Script=Kharoshthi}\p{Script=Avestan}]$/u;
const LETTERISH = /^[\p{L}\p{Mc}\p{Nd}\p{Nl}]$/u;
const NSM = /^[\p{Mn}\p{Me}]$/u;
const AN = /^[\u0660-\u0669\u066b\u066c]$/u;
const EN = /^[0-9\u06f0-\u06f9]$/u;

function checkBidi(s: string, part: JidPart): void {
  const chars = Array.from(s);
  const isRtl = (c: string) => LETTERISH.test(c) && RTL.test(c) && !AN.test(c) && !EN.test(c);
  if (!chars.some((c) => isRtl(c) || AN.test(c))) return; // rule applies only to RTL strings
  const fail = (why: string) => { throw new JidError(part, `violates the Bidi Rule: ${why}`); };
  if (!isRtl(chars[0]!)) fail('must start with a right-to-left letter');
  let hasEn = false, hasAn = false;
  for (const c of chars) {
    if (EN.test(c)) hasEn = true;
    else if (AN.test(c)) hasAn = true;
    else if (LETTERISH.test(c) && !isRtl(c)) fail('left-to-right character in a right-to-left string');
  }
  if (hasEn && hasAn) fail('mixes European and Arabic-Indic digits');
  let end = chars.length - 1;
  while (end > 0 && NSM.test(chars[end]!)) end--;
  const last = chars[end]!;
  if (!isRtl(last) && !EN.test(last) && !AN.test(last)) fail('must end with a right-to-left letter or a digit');
}

function checkLength(s: string, part: JidPart): void {
  if (Buffer.byteLength(s, 'utf8') > MAX_PART_BYTES) throw new JidError(part, `longer than ${MAX_PART_BYTES} octets`);
}

function hex(cp: number): string { return cp.toString(16).toUpperCase().padStart(4, '0'); }
