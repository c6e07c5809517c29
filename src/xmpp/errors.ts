// Stream and stanza errors (RFC 6120 §4.9 and §8.3) and IQ results: the only place Chorus builds them.
import { serialize, x } from '../xml/builder.ts';
import { XmlElement } from '../xml/element.ts';
import type { StanzaHeader } from '../xml/framer.ts';
import { NS } from '../xml/namespaces.ts';

import type { StreamErrorCondition } from '../xml/error.ts';
export type { StreamErrorCondition };

export const STREAM_ERROR_CONDITIONS: readonly StreamErrorCondition[] = [
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown',
  'improper-addressing', 'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml',
  'not-authorized', 'not-well-formed', 'policy-violation', 'remote-connection-failed', 'reset',
  'resource-constraint', 'restricted-xml', 'see-other-host', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
];

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3. */
export type StanzaErrorCondition =
  | 'bad-request' | 'conflict' | 'feature-not-implemented' | 'forbidden' | 'gone' | 'internal-server-error'
  | 'item-not-found' | 'jid-malformed' | 'not-acceptable' | 'not-allowed' | 'not-authorized'
  | 'policy-violation' | 'recipient-unavailable' | 'redirect' | 'registration-required'
  | 'remote-server-not-found' | 'remote-server-timeout' | 'resource-constraint' | 'service-unavailable'
  | 'subscription-required' | 'undefined-condition' | 'unexpected-request';

/** The error type RFC 6120 §8.3.3 gives (or shows in its example) for each condition. */
export const STANZA_ERROR_TYPES: Readonly<Record<StanzaErrorCondition, StanzaErrorType>> = {
  'bad-request': 'modify',
  'conflict': 'cancel',
  'feature-not-implemented': 'cancel',
  'forbidden': 'auth',
  'gone': 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  'redirect': 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'modify',
  'unexpected-request': 'wait',
};

export interface StreamErrorOptions {
  /** xml:lang of the text. */
  lang?: string;
  /** For see-other-host: the host (and port) to reconnect to. */
  host?: string;
  /** An application-specific condition element. */
  app?: XmlElement;
}

export function streamErrorElement(condition: StreamErrorCondition, text?: string, o: StreamErrorOptions = {}): XmlElement {
  return x('stream:error', null,
    x(condition, { xmlns: NS.STREAM_ERRORS }, condition === 'see-other-host' ? o.host : null),
    text ? x('text', { 'xmlns': NS.STREAM_ERRORS, 'xml:lang': o.lang }, text) : null,
    o.app);
}

/**
 * A stream error followed by our stream close, ready to write. Relies on our header binding the
 * 'stream' prefix (builder.streamOpen does); RFC 6120 §4.9.1.1 wants a header sent first if none was.
 */
export function streamError(condition: StreamErrorCondition, text?: string, o: StreamErrorOptions = {}): string {
  return serialize(streamErrorElement(condition, text, o)) + '</stream:stream>';
}

export interface StanzaErrorOptions {
  /** Address of the entity that generated the error. */
  by?: string;
  /** xml:lang of the text. */
  lang?: string;
  /** For gone and redirect: the new address (an XMPP URI). */
  uri?: string;
  /** Copy the original's child elements into the reply (only when the original is an element). */
  includePayload?: boolean;
  /** An application-specific condition element. */
  app?: XmlElement;
}

interface Addressing { name: string; to: string | null; from: string | null; id: string | null; type: string | null }

function addressing(s: StanzaHeader | XmlElement): Addressing {
  if (s instanceof XmlElement) {
    return { name: s.localName, to: s.attr('to') ?? null, from: s.attr('from') ?? null, id: s.attr('id') ?? null, type: s.attr('type') ?? null };
  }
  return s;
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1): same kind, type='error', to/from swapped, same id.
 * `type` null means the condition's usual type. Returns null for an error stanza, which must never be
 * answered with another error.
 */
export function stanzaErrorElement(
  original: StanzaHeader | XmlElement, type: StanzaErrorType | null, condition: StanzaErrorCondition,
  text?: string, o: StanzaErrorOptions = {},
): XmlElement | null {
  const a = addressing(original);
  if (a.type === 'error') return null;
  const withUri = condition === 'gone' || condition === 'redirect';
  const error = x('error', { type: type ?? STANZA_ERROR_TYPES[condition], by: o.by },
    x(condition, { xmlns: NS.STANZAS }, withUri ? o.uri : null),
    text ? x('text', { 'xmlns': NS.STANZAS, 'xml:lang': o.lang }, text) : null,
    o.app);
  const payload = o.includePayload && original instanceof XmlElement
    ? original.getChildren().filter((c) => !c.is('error'))
    : null;
  return x(a.name, { type: 'error', id: a.id, to: a.from, from: a.to }, payload, error);
}

export function stanzaError(
  original: StanzaHeader | XmlElement, type: StanzaErrorType | null, condition: StanzaErrorCondition,
  text?: string, o: StanzaErrorOptions = {},
): string | null {
  const el = stanzaErrorElement(original, type, condition, text, o);
  return el === null ? null : serialize(el);
}

/** The result to an IQ get/set: to/from swapped, same id. Throws on anything else (a caller bug). */
export function iqResultElement(request: StanzaHeader | XmlElement, payload?: XmlElement | null): XmlElement {
  const a = addressing(request);
  if (a.name !== 'iq' || (a.type !== 'get' && a.type !== 'set') || a.id === null) {
    throw new TypeError(`iqResult needs an iq get/set with an id, got <${a.name} type='${a.type}'>`);
  }
  return x('iq', { type: 'result', id: a.id, to: a.from, from: a.to }, payload);
}

export function iqResult(request: StanzaHeader | XmlElement, payload?: XmlElement | null): string {
  return serialize(iqResultElement(request, payload));
}
