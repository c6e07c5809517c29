// XEP-0203 Delayed Delivery stamps and XEP-0082 date-times: one place for every module that hands out
// a stanza later than it was sent (offline storage now; MAM and MUC history later).
import { serialize, x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';

/**
 * XEP-0082 DateTime in UTC, `CCYY-MM-DDThh:mm:ss.sssZ`. Milliseconds are kept (XEP-0082 allows
 * fractional seconds) so that several stanzas stored within one second still sort by their stamps.
 */
export function xmppDateTime(date: Date | number): string {
  const d = typeof date === 'number' ? new Date(date) : date;
  if (Number.isNaN(d.getTime())) throw new RangeError('xmppDateTime: invalid date');
  return d.toISOString();
}

/** XEP-0082 time zone offset (`+hh:mm` / `-hh:mm`) of the process's local time zone at `date`. */
export function xmppTzo(date: Date | number): string {
  const d = typeof date === 'number' ? new Date(date) : date;
  const east = -d.getTimezoneOffset(); // minutes east of UTC
  const abs = Math.abs(east);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${east < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** `<delay xmlns='urn:xmpp:delay' from='…' stamp='…'>reason</delay>` (XEP-0203 §3). */
export function delayElement(from: string, date: Date | number, reason?: string): XmlElement {
  return x('delay', { xmlns: NS.DELAY, from, stamp: xmppDateTime(date) }, reason || null);
}

/** A copy of `stanza` with `delay` appended as its last child. */
export function withDelay(stanza: XmlElement, delay: XmlElement): XmlElement {
  return stanza.withChildren([...stanza.children, delay]);
}

/**
 * Appends a child element to a well-formed stanza string (one from the framer or from serialize())
 * without parsing it: before the root's end tag, or by opening a self-closed root.
 */
export function appendChildXml(stanza: string, child: XmlElement | string): string {
  const add = typeof child === 'string' ? child : serialize(child);
  const end = stanza.trimEnd();
  if (end.endsWith('/>')) {
    // A root with children ends with its end tag, so a trailing '/>' can only close the root itself.
    const m = /^<([^\s/>]+)/.exec(end);
    if (!m) throw new TypeError('appendChildXml: not an element string');
    return `${end.slice(0, -2)}>${add}</${m[1]}>`;
  }
  const close = end.lastIndexOf('</');
  if (close <= 0 || !end.endsWith('>')) throw new TypeError('appendChildXml: not an element string');
  return end.slice(0, close) + add + end.slice(close);
}

/** The stanza string with a XEP-0203 `<delay/>` from `from` stamped `date` added. */
export function addDelayXml(stanza: string, from: string, date: Date | number, reason?: string): string {
  return appendChildXml(stanza, delayElement(from, date, reason));
}
