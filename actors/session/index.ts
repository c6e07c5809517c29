// The session actor: one per client stream. Its states follow the stream (RFC 6120):
//
//   opening ─header→ open ─starttls→ securing ─tls→ opening
//                     └─auth→ authenticating ─success→ opening ─header→ binding ─bind→ established
//   established ⇄ resumable (XEP-0198: socket gone, session kept)        any ─→ closing → unbinding → done
//
// It starts as `session:@<conn>` and moves to `session:<full JID>` at bind (next to its user actor).
// Its snapshot is saved on every change, so a crash restarts it here and the connection (main thread)
// replays what it had not handled: the client notices nothing.
import { assign, enqueueActions, setup } from 'xstate';
import { moveTo } from '../../src/runtime/api.ts';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import type { ConnInfo, ToSession } from '../../src/net/c2s-protocol.ts';
import type { SaslStep } from '../../src/sasl/types.ts';
import { stanzaError } from '../../src/xmpp/errors.ts';
import { x } from '../../src/xml/builder.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { ToSessionFromUser } from '../user/messages.ts';
import {
  bounce, connGone, initialContext, onArrived, onArrivedUser, onBindInput, onBound, onClientStanza, onClientState, onDeliver, onHeader, onPreAuth, onSaslInput, onSaslStep, onSmRequest,
  resourceOf, streamFail, toConn, toUser, type Next, type SessionCtx,
} from './stream.ts';

interface Ctx extends SessionCtx {
  next: Next; bindId: string; bindResource: string;
  /** Leaving waits for the user actor's 'unbound' and the connection's 'drained' (see unbinding). */
  awaitUser: boolean; awaitConn: boolean;
}

type Ev = ToSession | ToSessionFromUser | RuntimeEvent | { type: 'sasl'; step: SaslStep } | { type: 'internal.close' };

const go = (next: Next) => ({ next });
const isNext = (n: Next) => ({ context }: { context: Ctx }) => context.next === n;

/** After a step, the machine moves where the step said (`next`); every step names its target. */
const route = [
  { guard: isNext('close'), target: '#session.closing' },
  { guard: isNext('open'), target: '#session.open' },
  { guard: isNext('securing'), target: '#session.securing' },
  { guard: isNext('authenticating'), target: '#session.authenticating' },
  { guard: isNext('authenticated'), target: '#session.opening' },
  { guard: isNext('binding'), target: '#session.binding' },
  // A step that named no target is a bug: end the stream rather than hang in 'check'.
  { target: '#session.closing', actions: ({ context }: { context: Ctx }) => streamFail(context, 'internal-server-error') },
];

const machine = setup({
  types: { context: {} as Ctx, events: {} as Ev, input: {} as ConnInfo },
  guards: {
    isSm: ({ event }) => event.type === 'stanza' && event.h.xmlns === NS.SM,
    isCsi: ({ event }) => event.type === 'stanza' && event.h.xmlns === NS.CSI,
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({ ...initialContext(input), next: 'stay', bindId: '', bindResource: '', awaitUser: false, awaitConn: false }),
  initial: 'opening',
  on: {
    'runtime.restored': [
      // Restored at boot: the socket died with the old process; leave (mail goes offline).
      { guard: ({ context }) => connGone(context), target: '.unbinding' },
      // Restarted after a crash: the connection still holds what we had not handled; the user actor
      // watches us again.
      { actions: ({ context }) => { toConn(context, { type: 'replay' }); if (context.jid) onArrivedUser(context); } },
    ],
    // The socket is gone for good (or a late delivery could not be written): end the session.
    closed: { target: '.unbinding', actions: ({ context, event }) => bounce(context, event.unacked) },
    end: { target: '.closing', actions: ({ context }) => toConn(context, { type: 'close', xml: '</stream:stream>' }) },
    deliver: { actions: ({ context, event }) => bounce(context, [event]) },
    // The user actor restarted: what it was handling of ours may be lost; the connection sends
    // again what is not handled (it drops what it had taken already).
    replay: { actions: ({ context }) => toConn(context, { type: 'replay' }) },
  },
  states: {
    opening: {
      on: {
        header: {
          target: 'check',
          actions: assign(({ context, event }) => {
            const r = onHeader(context, event);
            return { ...r.patch, next: r.next === 'stay' ? (context.user ? 'binding' : 'open') : r.next };
          }),
        },
        stanza: { target: 'closing', actions: ({ context }) => streamFail(context, 'not-well-formed', 'no stream header', false) },
      },
    },
    /** A transient state that routes on the last step's outcome. */
    check: { always: route },
    open: {
      on: {
        stanza: { target: 'check', actions: assign(({ context, event }) => { const n = onPreAuth(context, event.xml, event.h); return go(n === 'stay' ? 'open' : n); }) },
      },
    },
    securing: {
      on: {
        tls: { target: 'opening', actions: assign(({ event }) => ({ secure: true, cb: event.cb, host: event.host })) },
        stanza: { target: 'closing', actions: ({ context }) => streamFail(context, 'policy-violation', 'data before TLS') },
      },
    },
    authenticating: {
      on: {
        sasl: {
          target: 'check',
          actions: assign(({ context, event }) => {
            const r = onSaslStep(context, event.step);
            return { ...r.patch, next: r.next === 'stay' ? 'authenticating' : r.next };
          }),
        },
        stanza: { target: 'check', actions: assign(({ context, event }) => { const n = onSaslInput(context, event.xml, event.h); return go(n === 'stay' ? 'authenticating' : n); }) },
      },
    },
    binding: {
      on: {
        stanza: [{ guard: 'isSm', actions: assign(({ context, event }) => onSmRequest(context, event.xml, event.h, 'authenticated')) }, {
          actions: assign(({ context, event }) => {
            const r = onBindInput(context, event.xml, event.h);
            if (event.seq > 0) toConn(context, { type: 'handled', seq: event.seq });
            return r.pending ? { bindId: r.pending.id, bindResource: r.pending.resource, next: r.next } : { next: r.next };
          }),
        }],
        'bind-ok': {
          target: 'established',
          actions: [
            assign(({ context, event }) => ({ ...onBound(context, context.bindId, event.resource) })),
            ({ context }) => moveTo(`session:${context.jid}`),
          ],
        },
        'bind-denied': {
          actions: ({ context, event }) => toConn(context, {
            type: 'bind-failed', xml: stanzaError(x('iq', { type: 'set', id: context.bindId }), 'wait', event.condition, event.text) ?? '',
          }),
        },
      },
    },
    established: {
      on: {
        stanza: [
          // Client State Indication (XEP-0352) and XEP-0198's requests: nonzas, not counted as stanzas.
          { guard: 'isCsi', actions: assign(({ context, event }) => onClientState(context, event.h.name)) },
          { guard: 'isSm', actions: assign(({ context, event }) => onSmRequest(context, event.xml, event.h, 'bound')) },
          // The hot path: no assign and no target, so the snapshot is unchanged and nothing is written.
          { actions: enqueueActions(({ context, event, enqueue }) => { if (onClientStanza(context, event.xml, event.h, event.seq) === 'close') enqueue.raise({ type: 'internal.close' }); }) },
        ],
        'internal.close': 'closing',
        deliver: { actions: ({ context, event }) => onDeliver(context, event) },
        replace: { target: 'closing', actions: ({ context }) => streamFail(context, 'conflict', 'replaced by a new login with the same resource') },
        kick: { target: 'closing', actions: ({ context, event }) => streamFail(context, event.condition, event.text) },
        detached: 'resumable',
        'runtime.moved': { actions: ({ context }) => onArrived(context) },
      },
    },
    resumable: {
      // The account counts it apart: a detached session gives way to a new login at the session limit.
      entry: ({ context }) => toUser(context, { type: 'detached', resource: resourceOf(context) }),
      on: {
        resumed: { target: 'established', actions: ({ context }) => toUser(context, { type: 'attached', resource: resourceOf(context) }) },
        deliver: { actions: ({ context, event }) => onDeliver(context, event) },
        replace: { target: 'closing', actions: ({ context }) => toConn(context, { type: 'close' }) },
        kick: { target: 'closing', actions: ({ context }) => toConn(context, { type: 'close' }) },
      },
    },
    /** Waiting for the connection's final word (what the client never got) before leaving. */
    closing: {
      on: {
        closed: { target: 'unbinding', actions: ({ context, event }) => bounce(context, event.unacked) },
      },
    },
    /**
     * Told the user actor we are gone; anything it sends meanwhile is routed again (the top-level
     * 'deliver'). Deliveries we sent the connection before it closed may still be in flight to it:
     * 'drain' goes after them on the same FIFO path, and the connection hands each back ('closed')
     * before it answers 'drained'. Only then is nothing of ours left anywhere but in routing.
     */
    unbinding: {
      entry: [
        assign(({ context }) => ({ awaitUser: !!context.jid, awaitConn: !!context.jid && !connGone(context) })),
        ({ context }) => {
          if (context.awaitUser) toUser(context, { type: 'unbind', resource: resourceOf(context) });
          if (context.awaitConn) toConn(context, { type: 'drain' });
        },
      ],
      always: { guard: ({ context }) => !context.awaitUser && !context.awaitConn, target: 'done' },
      on: {
        closed: { actions: ({ context, event }) => bounce(context, event.unacked) }, // late deliveries
        unbound: { actions: assign({ awaitUser: false }) },
        drained: { actions: assign({ awaitConn: false }) },
      },
    },
    done: { type: 'final' },
  },
});


export default defineKind({
  kind: 'session', version: 1, machine, activation: 'explicit', persist: 'always',
  input: (_address, spawnInput) => spawnInput as ConnInfo,
});
