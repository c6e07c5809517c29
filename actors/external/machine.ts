// The actor of an external component's domain (XEP-0114), `external:<domain>`: where routing sends
// every stanza for the domain (routing.ts: one actor for the whole domain). It knows the component
// stream attached to it (actors/component) and delivers there, one stream at a time; with none
// attached, a message or IQ request is answered service-unavailable, as for a server whose
// gateway is down. Its snapshot is the attachment: after a crash it watches the stream again.
//
//   detached ─attach→ attached ─down→ detached
import { assign, setup, type EventObject } from 'xstate';
import { log, monitor, retain, send } from '../../src/runtime/api.ts';
import type { ToConn } from '../../src/net/c2s-protocol.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { stanzaError } from '../../src/xmpp/errors.ts';
import { answerable } from '../../src/xmpp/routing.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { routeStanza } from '../route.ts';
import { validateStanza, OWN_STANZA } from '../../src/xml/framer.ts';

export interface ExternalCtx { domain: string; conn: string | null; stream: string | null }

export type ToExternal =
  /** A component stream that passed its handshake asks to be the one delivered to. */
  | { type: 'attach'; conn: string; stream: string }
  /** A stanza for the domain (routed, durable). */
  | { type: 'stanza'; xml: string; h: StanzaHeader };

type Args = { context: ExternalCtx; event: EventObject };
const attach = (e: EventObject) => e as Extract<ToExternal, { type: 'attach' }>;
const routed = (e: EventObject) => e as Extract<ToExternal, { type: 'stanza' }>;
const STREAM = 'stream';

export const externalMachine = setup({
  types: { context: {} as ExternalCtx, events: {} as ToExternal | RuntimeEvent, input: {} as { domain: string } },
  guards: {
    isStream: ({ event }) => (event as { tag?: unknown }).tag === STREAM,
  },
  actions: {
    take: assign(({ event }) => ({ conn: attach(event).conn, stream: attach(event).stream })),
    drop: assign({ conn: null, stream: null }),
    watch: ({ context }: Args) => { monitor(context.stream!, STREAM); },
    welcome: ({ event }: Args) => send(attach(event).stream, { type: 'attached' }),
    refuse: ({ event }: Args) => send(attach(event).stream, { type: 'attach-refused' }),
    /** Durable to the end: released once the socket has taken it. */
    deliver: ({ context, event }: Args) => send(context.conn!, { type: 'deliver', xml: routed(event).xml, receipt: retain() } satisfies ToConn),
    bounce: ({ context, event }: Args) => {
      const h = routed(event).h;
      if (!answerable(h) || h.name === 'presence') return;
      const error = stanzaError(h, 'cancel', 'service-unavailable', `the component ${context.domain} is not connected`);
      if (error) routeStanza(error, validateStanza(error, undefined, OWN_STANZA));
    },
    logDetached: ({ context }: Args) => log('info', `component ${context.domain} detached`),
  },
}).createMachine({
  id: 'external',
  context: ({ input }) => ({ domain: input.domain, conn: null, stream: null }),
  initial: 'detached',
  states: {
    detached: {
      on: {
        attach: { target: 'attached', actions: ['take', 'watch', 'welcome'] },
        stanza: { actions: 'bounce' },
      },
    },
    attached: {
      on: {
        // After a crash or a node restart: watch the stream again (a gone one is 'down' at once).
        'runtime.restored': { actions: 'watch' },
        attach: { actions: 'refuse' },
        stanza: { actions: 'deliver' },
        'runtime.down': { guard: 'isStream', target: 'detached', actions: ['drop', 'logDetached'] },
      },
    },
  },
});

