// The one decoder of a presence's <priority/>: routing (the user actor), presence and offline storage
// must agree on it, or a resource is available to one and unavailable to another.
import type { XmlElement } from '../xml/element.ts';

/** RFC 6121 §4.7.2.3: an integer in -128..127, 0 when absent. Out of range is clamped; not a number is 0. */
export function parsePriority(stanza: XmlElement): number {
  const text = stanza.getChildText('priority')?.trim();
  if (text === undefined || !/^[+-]?\d{1,12}$/.test(text)) return 0;
  return Math.min(127, Math.max(-128, Number(text)));
}
