// What the component stream's machine does through the runtime: its named actions and the guards
// that read the config (machine.ts declares them; tests provide their own).
import { log, release, self, send, sendDurable, service } from '../../src/runtime/api.ts';
import type { Delivery, ToConn } from '../../src/net/c2s-protocol.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { streamOpen } from '../../src/xml/builder.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { validateStanza, OWN_STANZA, type StanzaHeader } from '../../src/xml/framer.ts';
import { stanzaError } from '../../src/xmpp/errors.ts';
import { parseJid } from '../../src/xmpp/jid.ts';
import { destinationOf, unroutable } from '../../src/xmpp/routing.ts';
import { routeStanza } from '../route.ts';
import type { EventObject } from 'xstate';
import { proofOk, type ComponentCtx } from './machine.ts';
import type { ToExternal } from '../external/machine.ts';

const xmpp = () => service<XmppService>('xmpp');
const env = { secretOf: (domain: string) => xmpp().settings.components[domain] };
type Args = { context: ComponentCtx; event: EventObject };
const domainActor = (ctx: ComponentCtx) => `external:${ctx.domain}`;

export const guards = {
  knownDomain: ({ event }: Args) => {
    const to = (event as { to?: string | null }).to?.toLowerCase();
    return !!to && env.secretOf(to) !== undefined;
  },
  proofOk: ({ context, event }: Args) => proofOk(context, (event as unknown as { xml: string }).xml, env),
};

export const actions = {
  toConn: ({ context }: Args, m: ToConn) => send(context.conn, m),
  writeHeader: ({ context }: Args) => send(context.conn, { type: 'write', xml: streamOpen({ xmlns: NS.COMPONENT_ACCEPT, from: context.domain, id: context.streamId, version: null }) } satisfies ToConn),
  attach: ({ context }: Args) => send(domainActor(context), { type: 'attach', conn: context.conn, stream: self() } satisfies ToExternal),
  /** Into a local account's or service's durable mailbox; anything else is answered as routing.ts says. */
  route: ({ context }: Args, p: { xml: string; h: StanzaHeader }) => {
    const dest = destinationOf(parseJid(p.h.to!), xmpp().domains);
    if (dest.to === 'account' || dest.to === 'service') { routeStanza(p.xml, p.h); return; }
    const condition = unroutable(p.h, dest);
    const error = condition ? stanzaError(p.h, 'cancel', condition) : null;
    if (error) send(context.conn, { type: 'deliver', xml: error } satisfies ToConn);
  },
  handled: ({ context }: Args, p: { seq: number }) => { if (p.seq > 0) send(context.conn, { type: 'handled', seq: p.seq } satisfies ToConn); },
  requeue: ({ context }: Args, items: readonly Delivery[]) => {
    if (!context.domain) return;
    for (const it of items) {
      const receipt = it.receipt;
      sendDurable(domainActor(context), { type: 'stanza', xml: it.xml, h: validateStanza(it.xml, undefined, OWN_STANZA) } satisfies ToExternal)
        .then(() => { if (receipt) release(receipt); }, (err: Error) => log('warn', `${context.domain}: a delivery not handed back: ${err.message}`));
    }
  },
};
