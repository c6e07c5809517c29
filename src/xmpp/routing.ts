// Where a stanza goes: the one routing decision (RFC 6120 §10, RFC 6121 §8), as Prosody's
// core/stanza_router is one place. An address maps to exactly one destination; what happens to a
// stanza that a destination cannot take is decided here too, per stanza kind, so nothing is dropped
// without the RFC saying so. Pure: the actors carry out what it says.
import type { StanzaHeader } from '../xml/framer.ts';
import type { StanzaErrorCondition } from './errors.ts';
import type { Jid } from './jid.ts';

/** A domain this node serves that is not an account host (group chat, upload, pubsub): its
 *  addresses are actors of `kind` (`<kind>:<bare JID>`; the domain itself `<kind>:<domain>`). */
export interface ServiceDomain {
  domain: string; host: string; kind: string; module: string; name?: string; settings?: Record<string, unknown>;
  /** One actor for every address of the domain (`<kind>:<domain>`): an external component's stream. */
  whole?: boolean;
}

/** The domains of this node: its account hosts and the service domains its modules declare. */
export interface Domains {
  isHost(domain: string): boolean;
  service(domain: string): ServiceDomain | undefined;
}

export type Destination =
  /** A local account, bare or full: its user actor decides among the resources (RFC 6121 §8.5). */
  | { to: 'account'; address: string }
  /** The server itself (a host's domain, with or without a resource: RFC 6120 §10.3, §10.5). */
  | { to: 'host'; domain: string }
  /** An entity of a service domain hosted here. */
  | { to: 'service'; address: string; service: ServiceDomain }
  /** Another server's domain: the link from the sender's domain to it carries it (when federating). */
  | { to: 'remote'; domain: string };

/** The outbound link actor from a domain of ours to a remote one (actors/s2s). */
export const linkAddress = (local: string, remote: string): string => `s2s:${local}|${remote}`;

export function destinationOf(to: Jid, domains: Domains): Destination {
  if (domains.isHost(to.domain)) {
    return to.local === '' ? { to: 'host', domain: to.domain } : { to: 'account', address: `user:${to.toBareString()}` };
  }
  const service = domains.service(to.domain);
  if (service) return { to: 'service', address: `${service.kind}:${service.whole ? service.domain : to.toBareString()}`, service };
  return { to: 'remote', domain: to.domain };
}

/** Nothing answers an error, nor an IQ result (RFC 6120 §8.3.1, §8.2.3). */
export const answerable = (h: Pick<StanzaHeader, 'name' | 'type'>): boolean =>
  h.type !== 'error' && !(h.name === 'iq' && h.type === 'result');

/**
 * The error a stanza gets where its destination cannot take it, or null for none. A remote domain
 * with no route to it: remote-server-not-found (RFC 6120 §10.4.3). The server itself, with no
 * handler: a message or IQ request is service-unavailable (§10.3, RFC 6121 §8.5.1 for the host's
 * bare JID); presence to the server is nobody's business but its hooks' and is dropped.
 */
export function unroutable(h: Pick<StanzaHeader, 'name' | 'type'>, dest: Destination): StanzaErrorCondition | null {
  if (!answerable(h)) return null;
  switch (dest.to) {
    case 'remote': return 'remote-server-not-found';
    case 'host': return h.name === 'presence' ? null : h.name === 'iq' && h.type !== 'get' && h.type !== 'set' ? null : 'service-unavailable';
    default: return 'service-unavailable';
  }
}
