// A small element tree for stanza payloads, and parseElement(): one framer-validated stanza string to a
// tree via fast-xml-parser 5. fast-xml-parser is lenient (mismatched tags, bare '&', DTD entities), so it
// only ever sees strings the framer accepted, or is preceded by validateStanza() when asked.
import { XMLParser } from 'fast-xml-parser';
import { NS } from './namespaces.ts';
import { decodeAttr, decodeText } from './chars.ts';
import { XmlError } from './error.ts';
import { validateStanza } from './framer.ts';

export type XmlNode = XmlElement | string;
export type XmlAttrs = Readonly<Record<string, string>>;

const EMPTY_ATTRS: XmlAttrs = Object.freeze(Object.create(null));
const NO_CHILDREN: readonly XmlNode[] = Object.freeze([]);

export class XmlElement {
  /** Qualified name as written ('message', 'stream:features'). */
  readonly name: string;
  /** Attributes in document order, namespace declarations included; a null-prototype object. */
  readonly attrs: XmlAttrs;
  /** Elements and text in order; adjacent text is merged, CDATA becomes text. */
  readonly children: readonly XmlNode[];
  // Namespace of the element when known exactly (parsed trees); otherwise derived from attrs.
  #ns: string | undefined;
  // Default namespace in scope at the parent (set by the parser, or by the first parent that navigates here).
  #inherited: string | undefined;

  /** Trusts its input: use x() from builder.ts to build with name checks. */
  constructor(name: string, attrs?: XmlAttrs | null, children?: readonly XmlNode[] | null, ns?: string, inherited?: string) {
    this.name = name;
    this.attrs = attrs ?? EMPTY_ATTRS;
    this.children = children ?? NO_CHILDREN;
    this.#ns = ns;
    this.#inherited = inherited;
  }

  /** Name without prefix. */
  get localName(): string {
    const c = this.name.indexOf(':');
    return c === -1 ? this.name : this.name.slice(c + 1);
  }

  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /**
   * Namespace of this element. Exact for parsed trees; for built ones it comes from declarations inside
   * the tree, the default namespace passed down by parents navigated through, or `inherited`.
   */
  getXmlns(inherited?: string): string {
    if (this.#ns !== undefined) return this.#ns;
    const c = this.name.indexOf(':');
    if (c === -1) return this.innerDefault(inherited);
    const prefix = this.name.slice(0, c);
    return prefix === 'xml' ? NS.XML : this.attrs['xmlns:' + prefix] ?? '';
  }

  /** True if the local (or qualified) name matches, and the namespace when given. */
  is(name: string, xmlns?: string): boolean {
    return (this.name === name || this.localName === name) && (xmlns === undefined || this.getXmlns() === xmlns);
  }

  /** First child element with this name (and namespace, when given). */
  child(name: string, xmlns?: string): XmlElement | undefined {
    const inner = this.innerDefault();
    for (const c of this.children) {
      if (typeof c === 'string') continue;
      if (c.#inherited === undefined) c.#inherited = inner;
      if (c.is(name, xmlns)) return c;
    }
    return undefined;
  }

  /** All child elements, or those with this name (and namespace). */
  getChildren(name?: string, xmlns?: string): XmlElement[] {
    const inner = this.innerDefault();
    const out: XmlElement[] = [];
    for (const c of this.children) {
      if (typeof c === 'string') continue;
      if (c.#inherited === undefined) c.#inherited = inner;
      if (name === undefined || c.is(name, xmlns)) out.push(c);
    }
    return out;
  }

  /** Concatenated text of the direct text children. */
  text(): string {
    const ch = this.children;
    if (ch.length === 1 && typeof ch[0] === 'string') return ch[0];
    let out = '';
    for (const c of ch) if (typeof c === 'string') out += c;
    return out;
  }

  /** Text of the first matching child, undefined when there is no such child. */
  getChildText(name: string, xmlns?: string): string | undefined {
    return this.child(name, xmlns)?.text();
  }

  /** A copy with attributes changed: a string sets, null or undefined removes. */
  withAttrs(patch: Readonly<Record<string, string | null | undefined>>): XmlElement {
    const attrs: Record<string, string> = Object.assign(Object.create(null), this.attrs);
    let nsChanged = false;
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) nsChanged = true;
      if (v === null || v === undefined) delete attrs[k];
      else attrs[k] = v;
    }
    return new XmlElement(this.name, attrs, this.children, nsChanged ? undefined : this.#ns, this.#inherited);
  }

  /** A copy with other children. */
  withChildren(children: readonly XmlNode[]): XmlElement {
    return new XmlElement(this.name, this.attrs, children, this.#ns, this.#inherited);
  }

  // Default namespace in effect for this element's unprefixed children.
  private innerDefault(inherited?: string): string {
    const own = this.attrs['xmlns'];
    return own !== undefined ? own : this.#inherited ?? inherited ?? '';
  }
}

// Element and attribute names fast-xml-parser refuses or renames; '#' cannot start an XML name.
const RESERVED = new Set(['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf',
  '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);
const mark = (n: string): string => (RESERVED.has(n) ? '#' + n : n);
const unmark = (n: string): string => (n.charCodeAt(0) === 0x23 ? n.slice(1) : n);

let parser: XMLParser | null = null;
function getParser(): XMLParser {
  parser ??= new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    allowBooleanAttributes: false,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    processEntities: false, // references are decoded here, per XML rules (attribute normalisation included)
    htmlEntities: false,
    cdataPropName: '#cdata', // keeps CDATA apart from text, which still needs decoding
    commentPropName: '#comment',
    ignoreDeclaration: false,
    ignorePiTags: false,
    removeNSPrefix: false,
    jPath: false,
    maxNestedTags: 10000, // the framer enforces the real limit
    transformTagName: mark,
    transformAttributeName: mark,
  });
  return parser;
}

type FxpNode = Record<string, unknown>;

function tagOf(node: FxpNode): string {
  for (const k in node) if (k !== ':@') return k;
  throw new XmlError('not-well-formed', 'empty node');
}

const MARKUP_DECL = /<!(?!\[CDATA\[)/;
const CDATA_SECTION = /<!\[CDATA\[[\s\S]*?\]\]>/g;

export interface ParseOptions {
  /** Run the strict framer first: for strings that did not come straight from a StreamFramer. */
  validate?: boolean;
}

/**
 * Parses one stanza string. `xmlns` is the default namespace of the stream it came from (the framer's
 * header.xmlns); unqualified elements inherit it. Prefixes must be declared inside the string (the framer
 * splices in any it borrowed from the stream header).
 */
export function parseElement(xml: string, xmlns: string = NS.CLIENT, options: ParseOptions = {}): XmlElement {
  if (options.validate) validateStanza(xml, xmlns);
  else if (MARKUP_DECL.test(xml) && MARKUP_DECL.test(xml.replace(CDATA_SECTION, ''))) {
    throw new XmlError('restricted-xml', 'DTD or comment in a stanza');
  }
  // fast-xml-parser drops text outside the root silently
  if (!/^[ \t\r\n]*</.test(xml) || !/>[ \t\r\n]*$/.test(xml)) throw new XmlError('not-well-formed', 'text outside the element');
  let nodes: FxpNode[];
  try {
    nodes = getParser().parse(xml) as FxpNode[];
  } catch (e) {
    throw new XmlError('not-well-formed', `unparsable element: ${(e as Error).message}`);
  }
  let root: XmlElement | null = null;
  for (const node of nodes) {
    const tag = tagOf(node);
    if (tag === '#text') {
      if (/[^ \t\r\n]/.test(node[tag] as string)) throw new XmlError('not-well-formed', 'text outside the element');
      continue;
    }
    if (root !== null) throw new XmlError('not-well-formed', 'more than one top-level element');
    root = convert(node, tag, xmlns, null);
  }
  if (root === null) throw new XmlError('not-well-formed', 'no element');
  return root;
}

// Prefix scopes are a linked list of declarations: stanzas declare few, so lookups stay short.
interface Scope { prefix: string; uri: string; up: Scope | null }

function lookup(scope: Scope | null, prefix: string): string | undefined {
  if (prefix === 'xml') return NS.XML;
  for (let s = scope; s !== null; s = s.up) if (s.prefix === prefix) return s.uri;
  return undefined;
}

function convert(node: FxpNode, tag: string, inherited: string, scope: Scope | null): XmlElement {
  if (tag === '#comment') throw new XmlError('restricted-xml', 'comment in a stanza');
  if (tag.charCodeAt(0) === 0x3f /* ? */) throw new XmlError('restricted-xml', 'processing instruction in a stanza');
  const name = unmark(tag);
  const raw = node[':@'] as Record<string, string> | undefined;
  let attrs: XmlAttrs = EMPTY_ATTRS;
  let inner = inherited;
  if (raw !== undefined) {
    const a: Record<string, string> = Object.create(null);
    for (const k in raw) {
      const an = unmark(k);
      const v = decodeAttr(raw[k]!);
      a[an] = v;
      if (an === 'xmlns') inner = v;
      else if (an.startsWith('xmlns:')) scope = { prefix: an.slice(6), uri: v, up: scope };
    }
    attrs = a;
  }
  let ns = inner;
  const colon = name.indexOf(':');
  if (colon !== -1) {
    const uri = lookup(scope, name.slice(0, colon));
    if (uri === undefined) throw new XmlError('bad-namespace-prefix', `prefix of <${name}> is not bound`);
    ns = uri;
  }
  const kids = node[tag] as FxpNode[];
  const children: XmlNode[] = [];
  let text: string | null = null;
  for (const kid of kids) {
    const kt = tagOf(kid);
    if (kt === '#text') {
      text = (text ?? '') + decodeText(kid[kt] as string);
    } else if (kt === '#cdata') {
      const parts = kid[kt] as FxpNode[];
      for (const p of parts) text = (text ?? '') + (p['#text'] as string);
    } else {
      if (text !== null && text !== '') children.push(text);
      text = null;
      children.push(convert(kid, kt, inner, scope));
    }
  }
  if (text !== null && text !== '') children.push(text);
  return new XmlElement(name, attrs, children, ns, inherited);
}
