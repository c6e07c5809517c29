// Sending a stanza a service actor made (a room's presence, a reply) where routing.ts says: durably
// into the actor of a local account or of a service domain, or the link to a remote domain. Shared by the actor kinds that are not
// an account's (the user actor routes its own stanzas, with hooks, in actors/user/core.ts).
import { log, send, sendDurable, service } from '../src/runtime/api.ts';
import { serialize } from '../src/xml/builder.ts';
import type { XmlElement } from '../src/xml/element.ts';
import { OWN_STANZA, validateStanza, type StanzaHeader } from '../src/xml/framer.ts';
import { parseJid } from '../src/xmpp/jid.ts';
import { destinationOf, linkAddress } from '../src/xmpp/routing.ts';
import type { ToLink } from './s2s/machine.ts';
import type { XmppService } from '../src/xmpp-service.ts';
import type { ToUser } from './user/messages.ts';

/** A stanza string with its header (restamp() keeps the two in step). Not `durable` only when the
 *  caller keeps a durable copy of its own. */
export function routeStanza(xml: string, h: StanzaHeader, durable = true): void {
  if (!h.to) return;
  const dest = destinationOf(parseJid(h.to), service<XmppService>('xmpp').domains);
  if (dest.to === 'account' || dest.to === 'service') {
    if (!durable) { send(dest.address, { type: 'stanza', xml, h } satisfies ToUser); return; }
    sendDurable(dest.address, { type: 'stanza', xml, h } satisfies ToUser).catch((err: Error) => log('warn', `not routed to ${dest.address}: ${err.message}`));
    return;
  }
  // Another server's domain: into the link from the sending domain (ours) to it.
  const domains = service<XmppService>('xmpp').domains;
  const local = h.from ? parseJid(h.from).domain : '';
  if (dest.to === 'remote' && service<XmppService>('xmpp').settings.federation && (domains.isHost(local) || domains.service(local))) {
    sendDurable(linkAddress(local, dest.domain), { type: 'out', xml, h } satisfies ToLink).catch((err: Error) => log('warn', `not routed to ${dest.domain}: ${err.message}`));
    return;
  }
  // The server itself: nobody to hand it to.
  log('debug', `not routed (${dest.to} ${parseJid(h.to).domain}): ${xml.slice(0, 200)}`);
}

export function routeElement(el: XmlElement): void {
  const xml = serialize(el);
  routeStanza(xml, validateStanza(xml, undefined, OWN_STANZA));
}
