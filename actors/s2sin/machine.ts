// An inbound server-to-server stream (RFC 6120 with `jabber:server`) as the second user of the stream
// engine: the same connection (src/net/connection.ts) carries it, with the same typed events and
// commands as a client stream, and this machine decides. It takes the stream as far as its
// authentication: TLS first (required), then SASL EXTERNAL (XEP-0178) and dialback (XEP-0220) are
// offered. Authenticating a peer, and everything after, is federation's (not built yet): until then
// an attempt is refused, as a server that cannot verify the peer refuses it.
//
//   opening ─header→ open ─starttls→ securing ─tls→ opening ─header→ open (secure: EXTERNAL, dialback)
//   any ─end/close→ closing ─closed→ done
import { and, assign, not, setup, type EventObject } from 'xstate';
import { randomBytes } from 'node:crypto';
import type { ConnInfo, ToConn, ToSession } from '../../src/net/c2s-protocol.ts';
import { serialize, streamOpen, x } from '../../src/xml/builder.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { JidError, parseJid } from '../../src/xmpp/jid.ts';
import { send, service } from '../../src/runtime/api.ts';
import { streamCommands } from '../stream-commands.ts';
import type { XmppService } from '../../src/xmpp-service.ts';

export interface S2sInCtx {
  conn: string;
  remote: string;
  secure: boolean;
  /** Our domain the peer asked for (the header's 'to'), and the peer's (its 'from', if it said). */
  host: string | null;
  peer: string | null;
  streamId: string;
}

export type S2sInEvent = ToSession | RuntimeEvent;

type Header = Extract<ToSession, { type: 'header' }>;
type Stanza = Extract<ToSession, { type: 'stanza' }>;

const header = (e: EventObject) => e as Header;
const stanza = (e: EventObject) => e as Stanza;
const domainOf = (s: string | null): string | null => {
  if (!s) return null;
  try { const j = parseJid(s); return j.local === '' && j.resource === '' ? j.domain : null; } catch (e) { if (e instanceof JidError) return null; throw e; }
};

/** Our header and features: STARTTLS (required) first; over TLS, the ways a peer may authenticate. */
export function headerXml(ctx: S2sInCtx): string {
  const features = ctx.secure
    ? [x('mechanisms', { xmlns: NS.SASL }, x('mechanism', null, 'EXTERNAL')), x('dialback', { xmlns: NS.DIALBACK_FEATURE }, x('errors'))]
    : [x('starttls', { xmlns: NS.TLS }, x('required'))];
  return streamOpen({ xmlns: NS.SERVER, dialback: true, from: ctx.host, to: ctx.peer, id: ctx.streamId }) + serialize(x('stream:features', null, features));
}

/** A stream error and the end of the stream (with our header first if we sent none). */
export function failXml(ctx: Pick<S2sInCtx, 'host'>, condition: StreamErrorCondition, text?: string, headerSent = true): string {
  return (headerSent ? '' : streamOpen({ xmlns: NS.SERVER, from: ctx.host, id: 'error' })) + streamError(condition, text);
}

const NOT_YET = 'this server does not federate yet';

const { toConn, write, fail, is } = streamCommands<S2sInCtx>(failXml);

export const s2sInMachine = setup({
  types: { context: {} as S2sInCtx, events: {} as S2sInEvent, input: {} as ConnInfo },
  guards: {
    wrongNamespace: ({ event }) => header(event).xmlns !== NS.SERVER,
    servedHost: ({ event }) => { const d = domainOf(header(event).to); return d !== null && service<XmppService>('xmpp').domains.isHost(d); },
    hostChanged: ({ context, event }) => context.host !== null && domainOf(header(event).to) !== context.host,
    badVersion: ({ event }) => !/^1\.\d+$/.test(header(event).version ?? ''),
    secure: ({ context }) => context.secure,
    isStarttls: is('starttls', NS.TLS),
    isAuth: is('auth', NS.SASL),
    isDialback: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK,
  },
  actions: {
    toConn: ({ context }, m: ToConn) => send(context.conn, m),
    openStream: assign(({ event }) => ({ host: domainOf(header(event).to), peer: domainOf(header(event).from), streamId: randomBytes(9).toString('base64url') })),
    secured: assign({ secure: true }),
  },
}).createMachine({
  id: 's2sin',
  context: ({ input }) => ({ conn: input.conn, remote: input.remote, secure: input.secure, host: null, peer: null, streamId: '' }),
  initial: 'opening',
  on: {
    closed: '.done',
    end: { target: '.closing', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
  },
  states: {
    opening: {
      on: {
        header: [
          { guard: 'wrongNamespace', target: 'closing', actions: fail('invalid-namespace', 'a server stream is jabber:server', false) },
          { guard: not('servedHost'), target: 'closing', actions: fail('host-unknown', ({ event }) => `this server does not serve ${header(event).to ?? '(no to)'}`, false) },
          { guard: 'hostChanged', target: 'closing', actions: fail('host-unknown', 'the stream changed host', false) },
          { guard: 'badVersion', target: 'closing', actions: fail('unsupported-version', 'version 1.0 is required', false) },
          { target: 'open', actions: ['openStream', write(({ context }) => headerXml(context))] },
        ],
        stanza: { target: 'closing', actions: fail('not-well-formed', 'no stream header', false) },
      },
    },
    open: {
      on: {
        stanza: [
          { guard: and(['isStarttls', 'secure']), target: 'closing', actions: fail('policy-violation', 'TLS is already on') },
          { guard: 'isStarttls', target: 'securing', actions: toConn({ type: 'starttls', xml: serialize(x('proceed', { xmlns: NS.TLS })) }) },
          // RFC 6120 §5.3.1: TLS is required between servers here.
          { guard: not('secure'), target: 'closing', actions: fail('policy-violation', 'STARTTLS is required') },
          // Offered, and refused until federation can verify a peer (RFC 6120 §6.4.5, XEP-0220 §2.4).
          { guard: 'isAuth', actions: write(() => serialize(x('failure', { xmlns: NS.SASL }, x('not-authorized'), x('text', null, NOT_YET)))) },
          {
            guard: 'isDialback',
            actions: write(({ context, event }) => {
              const s = stanza(event);
              return serialize(x(`db:${s.h.name}`, { type: 'error', from: context.host, to: s.h.from, id: s.h.id },
                x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS.STANZAS }), x('text', { xmlns: NS.STANZAS }, NOT_YET))));
            }),
          },
          // Stanzas before authentication (RFC 6120 §6.4.1 / §8.1.1.1).
          { target: 'closing', actions: fail('not-authorized') },
        ],
      },
    },
    securing: {
      on: {
        tls: { target: 'opening', actions: 'secured' },
        stanza: { target: 'closing', actions: fail('policy-violation', 'data before TLS') },
      },
    },
    /** Waiting for the connection's final word before ending. */
    closing: {},
    done: { type: 'final' },
  },
});
