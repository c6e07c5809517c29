// An external component's stream (XEP-0114: a gateway or a bot in its own process), the third
// machine the stream engine carries. The component names its domain in the header and proves the
// shared secret (<handshake/>: SHA-1 of our stream id and the secret, in hex); the domain's actor
// (actors/external: where routing sends every stanza for the domain) then takes this stream as the
// one it delivers to, unless another is attached. What the component sends is routed from here.
//
//   opening ─header→ handshaking ─handshake→ attaching ─attached→ established ─closed→ done
import { assign, not, setup, type EventObject } from 'xstate';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConnInfo, Delivery, ToConn, ToSession } from '../../src/net/c2s-protocol.ts';
import { serialize, streamOpen, x } from '../../src/xml/builder.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { tryParseJid } from '../../src/xmpp/jid.ts';
import { streamCommands } from '../stream-commands.ts';

export interface ComponentCtx {
  conn: string;
  remote: string;
  /** The domain the component serves (from its header), and our stream id its handshake hashes. */
  domain: string | null;
  streamId: string;
}

/** The domain actor's answer to 'attach'. */
export type FromDomain = { type: 'attached' } | { type: 'attach-refused' };
export type ComponentEvent = ToSession | FromDomain | RuntimeEvent;

type Args = { context: ComponentCtx; event: EventObject };
type Inbound = Extract<ToSession, { type: 'stanza' }>;
const header = (e: EventObject) => e as Extract<ToSession, { type: 'header' }>;
const inbound = (e: EventObject) => e as Inbound;

/** What the server reads to decide (injected: tests provide their own). */
export interface ComponentEnv { secretOf(domain: string): string | undefined }

/** XEP-0114 §3: hex SHA-1 of the stream id and the secret. */
export const handshakeOf = (streamId: string, secret: string): string => createHash('sha1').update(streamId + secret).digest('hex');

export function proofOk(ctx: ComponentCtx, xml: string, env: ComponentEnv): boolean {
  const secret = env.secretOf(ctx.domain!);
  const given = /^<handshake[^>]*>\s*([0-9a-fA-F]{40})\s*<\/handshake>$/.exec(xml)?.[1]?.toLowerCase();
  if (!secret || !given) return false;
  return timingSafeEqual(Buffer.from(given), Buffer.from(handshakeOf(ctx.streamId, secret)));
}

/** Whether a stanza the component sent is from its own domain (any address in it). */
const ownFrom = (ctx: ComponentCtx, h: StanzaHeader): boolean => {
  const from = h.from ? tryParseJid(h.from) : undefined;
  return from !== undefined && from.domain === ctx.domain;
};

export const failXml = (ctx: Pick<ComponentCtx, 'domain'>, condition: StreamErrorCondition, text?: string, headerSent = true): string =>
  (headerSent ? '' : streamOpen({ xmlns: NS.COMPONENT_ACCEPT, from: ctx.domain, id: 'error', version: null })) + streamError(condition, text);

const { toConn, fail } = streamCommands<ComponentCtx>(failXml);
const handled = { type: 'handled', params: ({ event }: Args) => ({ seq: inbound(event).seq }) } as const;

export const componentMachine = setup({
  types: { context: {} as ComponentCtx, events: {} as ComponentEvent, input: {} as ConnInfo },
  guards: {
    wrongNamespace: ({ event }) => header(event).xmlns !== NS.COMPONENT_ACCEPT,
    /** A domain configured as a component's (effects.ts reads the config). */
    knownDomain: () => false,
    proofOk: () => false,
    isHandshake: ({ event }) => inbound(event).h.name === 'handshake',
    isStanza: ({ event }) => ['message', 'presence', 'iq'].includes(inbound(event).h.name),
    ownFrom: ({ context, event }) => ownFrom(context, inbound(event).h),
    addressed: ({ event }) => !!inbound(event).h.to,
  },
  actions: {
    openStream: assign(({ event }) => ({ domain: header(event).to?.toLowerCase() ?? null, streamId: randomBytes(9).toString('hex') })),
    toConn: (_: Args, _m: ToConn) => undefined,
    writeHeader: (_: Args) => undefined,
    /** Named for effects.ts: routes what the component sent; asks the domain's actor to deliver here. */
    route: (_: Args, _p: { xml: string; h: StanzaHeader }) => undefined,
    attach: (_: Args) => undefined,
    /** Deliveries the socket never took go back to the domain's actor (to the next stream, or bounced). */
    requeue: (_: Args, _p: readonly Delivery[]) => undefined,
    handled: (_: Args, _p: { seq: number }) => undefined,
  },
}).createMachine({
  id: 'component',
  context: ({ input }) => ({ conn: input.conn, remote: input.remote, domain: null, streamId: '' }),
  initial: 'opening',
  on: {
    closed: { target: '.done', actions: { type: 'requeue', params: ({ event }) => (event as Extract<ToSession, { type: 'closed' }>).unacked } },
    end: { target: '.closing', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
  },
  states: {
    opening: {
      on: {
        header: [
          { guard: 'wrongNamespace', target: 'closing', actions: fail('invalid-namespace', 'a component stream is jabber:component:accept', false) },
          { guard: not('knownDomain'), target: 'closing', actions: fail('host-unknown', ({ event }) => `no component is configured for ${header(event).to ?? '(no to)'}`, false) },
          { target: 'handshaking', actions: ['openStream', 'writeHeader'] },
        ],
        stanza: { target: 'closing', actions: fail('not-well-formed', 'no stream header', false) },
      },
    },
    handshaking: {
      on: {
        stanza: [
          { guard: 'proofOk', target: 'attaching', actions: 'attach' },
          { guard: 'isHandshake', target: 'closing', actions: fail('not-authorized', 'the handshake does not match the secret') },
          { target: 'closing', actions: fail('not-authorized', 'handshake first') },
        ],
      },
    },
    /** Asking the domain's actor to deliver to this stream (one stream per domain). */
    attaching: {
      on: {
        // Authenticated with nothing to bind: the connection stops its login timer and opens.
        attached: { target: 'established', actions: toConn(({ context }) => ({ type: 'authenticated', xml: serialize(x('handshake')), jid: context.domain!, restart: false, bound: true })) },
        'attach-refused': { target: 'closing', actions: fail('conflict', ({ context }) => `another component is connected for ${context.domain}`) },
        stanza: { target: 'closing', actions: fail('not-authorized', 'wait for the handshake\'s answer') },
      },
    },
    established: {
      on: {
        stanza: [
          { guard: not('isStanza'), target: 'closing', actions: fail('unsupported-stanza-type', ({ event }) => `${inbound(event).h.name} after the handshake`) },
          { guard: not('ownFrom'), target: 'closing', actions: fail('invalid-from', ({ context }) => `a component sends from ${context.domain} only`) },
          { guard: not('addressed'), target: 'closing', actions: fail('improper-addressing', 'a stanza needs a to') },
          { actions: [{ type: 'route', params: ({ event }) => ({ xml: inbound(event).xml, h: inbound(event).h }) }, handled] },
        ],
      },
    },
    closing: {},
    done: { type: 'final' },
  },
});
