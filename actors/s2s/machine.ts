// An outbound server-to-server link, `s2s:<local domain>|<remote domain>` (RFC 6120 with
// `jabber:server`): where routing sends every stanza from a domain of ours to a remote one. It asks
// the main thread's dialer (src/net/dialer.ts) for a connection, then drives the stream the stream
// engine carries: our header, STARTTLS as the client (required), then our certificate as proof
// (SASL EXTERNAL, XEP-0178) where the peer offers it, else Server Dialback (XEP-0220) with a key
// only we can recompute (XEP-0185); with s2s.secure_auth, only to a peer whose certificate proves it.
// Until the peer says the key is valid, stanzas wait here: each is a durable message kept (retained)
// until the peer has acknowledged it (XEP-0198, where the peer offers it; else until the socket has
// taken it), so a crash, a lost connection or a kill -9 loses none; what was sent but not
// acknowledged goes again on the next connection. A link that cannot be set up bounces them (RFC
// 6120 §10.4.3).
// It also carries the dialback verifications our inbound streams ask of this peer.
//
//   idle ─out→ connecting ─connected→ opening ─features→ securing ─proceed→ tls ─tls→ opening
//        (secure) ─features→ sasl ─success→ opening (restarted) ─features→ up
//                          └─(no EXTERNAL, or failure)→ authenticating ─db:result valid→ up
//   (peer offers XEP-0198: … → enabling ─enabled/failed→ up)
//   connected over Direct TLS: secure from the start, no STARTTLS
//   up ─idle timer→ closing ─closed→ finished (the actor ends; the next stanza starts it again)
//   connecting ─dial-failed→ backoff ─retry→ connecting … (attempts spent: bounce the queue) → finished
import { and, assign, not, setup, type EventObject } from 'xstate';
import { cancelTimer, log, messageId, release, retain, self, send, sender, service, startTimer } from '../../src/runtime/api.ts';
import type { Receipt } from '../../src/runtime/api.ts';
import { certificateNames, type Delivery, type PeerCertificate, type ToConn, type ToSession } from '../../src/net/c2s-protocol.ts';
import { DIALER, type FromDialer, type ToDialer } from '../../src/net/dialer.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { serialize, streamOpen, x } from '../../src/xml/builder.ts';
import { parseElement } from '../../src/xml/element.ts';
import { OWN_STANZA, validateStanza, type StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { answerable } from '../../src/xmpp/routing.ts';
import { stanzaError, streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import { dialbackKey } from '../../src/xmpp/dialback.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { routeStanza } from '../route.ts';
import { streamCommands } from '../stream-commands.ts';

/** A stanza waiting for the link: its durable message is kept until the socket takes it. */
export interface Queued { xml: string; receipt?: Receipt }
/** A dialback verification one of our inbound streams asked (XEP-0220 §2.1.3): sent once we can. */
export interface Verify { id: string; key: string; asker: string; sent: boolean }

export interface LinkCtx {
  local: string;
  remote: string;
  conn: string | null;
  secure: boolean;
  /** The connection was TLS from the first byte (XEP-0368), not STARTTLS. */
  directTls: boolean;
  /** The peer's stream id (its header's): our dialback key is made over it. */
  streamId: string | null;
  dialback: boolean;
  /** The peer's certificate once TLS is up; SASL EXTERNAL tried or done on this connection. */
  cert: PeerCertificate | null;
  sasl: 'no' | 'tried' | 'done';
  /** XEP-0198 on this connection: offered by the peer, then on once it answered <enabled/> (each
   *  stanza's durable message is then kept until the peer acknowledges it, not until written). */
  sm: 'no' | 'offered' | 'on';
  queue: Queued[];
  verifies: Verify[];
  /** Failed tries since the link was last up. */
  attempts: number;
}

export type ToLink =
  /** A stanza for the remote domain, routed here durably. */
  | { type: 'out'; xml: string; h: StanzaHeader }
  /** The operator asks how the link is (chorus s2s): the answer goes to `reply`. */
  | { type: 'operator'; command: 'info'; reply: string }
  /** An inbound stream of ours was given dialback key `key` on its stream `id` by this peer: ask the
   *  peer's authoritative side whether it made it. */
  | { type: 'verify'; id: string; key: string; asker: string };

/** The answer to a 'verify', to its asker: for the peer's domain and ours, on its stream `id`;
 *  `error` when the peer's server could not be asked. */
export type FromLink = { type: 'verified'; id: string; host: string; peer: string; valid: boolean; error?: string };

export type LinkEvent = ToLink | ToSession | FromDialer | RuntimeEvent | { type: 'retry' } | { type: 'idle' };

/** Waits before a new try after the first, second… failure; then the queue is bounced. */
export const BACKOFF_MS = [1000, 5000];

type Stanza = Extract<ToSession, { type: 'stanza' }>;
const stanza = (e: EventObject) => e as Stanza;
const settings = () => service<XmppService>('xmpp').settings;

export function failXml(_ctx: LinkCtx, condition: StreamErrorCondition, text?: string): string {
  return streamError(condition, text);
}
const { toConn, write, fail, is } = streamCommands<LinkCtx>(failXml);

/** A stanza of ours as the server namespace has it: the client namespace is not said on s2s. */
export function serverStanza(xml: string): string {
  const end = xml.indexOf('>');
  const head = xml.slice(0, end);
  const i = head.search(/\sxmlns=(["'])jabber:client\1/);
  return i < 0 ? xml : head.slice(0, i) + head.slice(i + 'xmlns="jabber:client"'.length + 1) + xml.slice(end);
}

/** Tells each waiting stanza's sender that the remote server cannot be reached; the messages go. */
function bounce(ctx: LinkCtx, why: string): void {
  for (const q of ctx.queue) {
    const h = validateStanza(q.xml, undefined, OWN_STANZA);
    if (answerable(h)) {
      const error = stanzaError(h, 'cancel', 'remote-server-not-found', `${ctx.remote}: ${why}`);
      if (error) routeStanza(error, validateStanza(error, undefined, OWN_STANZA));
    }
    if (q.receipt) release(q.receipt);
  }
}

function tellAskers(ctx: LinkCtx, valid: boolean, error?: string): void {
  for (const v of ctx.verifies) send(v.asker, { type: 'verified', id: v.id, host: ctx.local, peer: ctx.remote, valid, error } satisfies FromLink);
}

const unproven = (ctx: LinkCtx) => `your certificate does not prove ${ctx.remote} (${ctx.cert?.error ?? `names: ${ctx.cert?.names.join(', ') || 'none'}`})`;

function features(e: EventObject): { starttls: boolean; dialback: boolean; external: boolean; sm: boolean } {
  const el = parseElement(stanza(e).xml);
  return {
    starttls: el.child('starttls', NS.TLS) !== undefined, dialback: el.child('dialback', NS.DIALBACK_FEATURE) !== undefined, sm: el.child('sm', NS.SM) !== undefined,
    external: el.child('mechanisms', NS.SASL)?.getChildren('mechanism').some((m) => m.text() === 'EXTERNAL') === true,
  };
}

export const linkMachine = setup({
  types: { context: {} as LinkCtx, events: {} as LinkEvent, input: {} as { local: string; remote: string } },
  guards: {
    /** From the connection this link uses now (a late event of an earlier one is not). */
    current: ({ context }) => context.conn !== null && sender() === context.conn,
    hasWork: ({ context }) => context.queue.length > 0 || context.verifies.length > 0,
    triesLeft: ({ context }) => context.attempts < BACKOFF_MS.length,
    serverNs: ({ event }) => (event as Extract<ToSession, { type: 'header' }>).xmlns === NS.SERVER,
    isFeatures: is('features', NS.STREAMS),
    offersTls: ({ event }) => features(event).starttls,
    offersDialback: ({ context, event }) => context.dialback || features(event).dialback,
    offersExternal: ({ context, event }) => context.sasl === 'no' && features(event).external,
    saslDone: ({ context }) => context.sasl === 'done',
    offersSm: ({ event }) => features(event).sm,
    smOffered: ({ context }) => context.sm === 'offered',
    isEnabled: is('enabled', NS.SM),
    isSmFailed: is('failed', NS.SM),
    /** The peer's certificate proves its domain (RFC 6125). */
    peerProven: ({ context }) => certificateNames(context.cert, context.remote),
    /** s2s.secure_auth: no link to a peer whose certificate does not prove it. */
    secureAuth: () => settings().federation?.secureAuth === true,
    isSuccess: is('success', NS.SASL),
    handedBack: ({ event }) => (event as Extract<ToSession, { type: 'closed' }>).unacked.length > 0,
    dialbackWasOffered: ({ context }) => context.dialback,
    secure: ({ context }) => context.secure,
    isProceed: is('proceed', NS.TLS),
    isResult: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK && stanza(event).h.name === 'result',
    resultValid: ({ event }) => stanza(event).h.type === 'valid',
    isVerifyAnswer: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK && stanza(event).h.name === 'verify',
  },
  actions: {
    toConn: ({ context }, m: ToConn) => { if (context.conn) send(context.conn, m); },
    dial: ({ context }) => send(DIALER, { type: 'dial', link: `s2s:${context.local}|${context.remote}`, local: context.local, remote: context.remote } satisfies ToDialer),
    /** Durable to the end: kept until written (or bounced). */
    retain: () => { retain(); },
    /** After a restart of the node its mailbox comes again: what the snapshot's queue has already
     *  is not taken twice. */
    enqueue: assign({ queue: ({ context, event }) => {
      const seq = messageId();
      if (seq !== undefined && context.queue.some((q) => q.receipt?.seq === seq)) return context.queue;
      return [...context.queue, { xml: serverStanza((event as Extract<ToLink, { type: 'out' }>).xml), receipt: seq === undefined ? undefined : { address: self(), seq } }];
    } }),
    deliver: ({ context, event }) => {
      send(context.conn!, { type: 'deliver', xml: serverStanza((event as Extract<ToLink, { type: 'out' }>).xml), receipt: retain() } satisfies ToConn);
      startTimer('idle', settings().federation!.idleTimeoutMs, { type: 'idle' });
    },
    writeQueue: ({ context }) => {
      for (const q of context.queue) send(context.conn!, { type: 'deliver', xml: q.xml, receipt: q.receipt } satisfies ToConn);
      startTimer('idle', settings().federation!.idleTimeoutMs, { type: 'idle' });
    },
    clearQueue: assign({ queue: [] }),
    /** What the connection never wrote comes back: first in line again. */
    requeue: assign({ queue: ({ context, event }) => [...(event as Extract<ToSession, { type: 'closed' }>).unacked.map((d: Delivery) => ({ xml: d.xml, receipt: d.receipt })), ...context.queue] }),
    addVerify: assign({ verifies: ({ context, event }) => {
      const v = event as Extract<ToLink, { type: 'verify' }>;
      return [...context.verifies, { id: v.id, key: v.key, asker: v.asker, sent: false }];
    } }),
    writeVerifies: ({ context }) => {
      for (const v of context.verifies) if (!v.sent) send(context.conn!, { type: 'write', xml: serialize(x('db:verify', { from: context.local, to: context.remote, id: v.id }, v.key)) } satisfies ToConn);
    },
    markSent: assign({ verifies: ({ context }) => context.verifies.map((v) => ({ ...v, sent: true })) }),
    tellAsker: ({ context, event }) => {
      const h = stanza(event).h;
      for (const v of context.verifies) if (v.id === h.id) send(v.asker, { type: 'verified', id: v.id, host: context.local, peer: context.remote, valid: h.type === 'valid' } satisfies FromLink);
    },
    dropVerify: assign({ verifies: ({ context, event }) => context.verifies.filter((v) => v.id !== stanza(event).h.id) }),
    /** A Direct TLS connection (XEP-0368) comes secure, with the peer's certificate. */
    takeConn: assign(({ event }) => {
      const c = event as Extract<ToSession, { type: 'connected' }>;
      return { conn: c.conn, secure: c.directTls, directTls: c.directTls, streamId: null, dialback: false, cert: c.peer ?? null, sasl: 'no' as const, sm: 'no' as const };
    }),
    /** The features that decide how we authenticate say whether the peer takes XEP-0198. */
    noteSm: assign({ sm: ({ event }) => (features(event).sm ? 'offered' as const : 'no' as const) }),
    smOn: assign({ sm: 'on' as const }),
    smRefused: assign({ sm: 'no' as const }),
    dropConn: assign({ conn: null, secure: false, directTls: false, streamId: null, sm: 'no' as const }),
    header: assign(({ event }) => {
      const h = event as Extract<ToSession, { type: 'header' }>;
      return { streamId: h.id ?? null, dialback: h.db === true };
    }),
    writeHeader: ({ context }) => send(context.conn!, { type: 'write', xml: streamOpen({ xmlns: NS.SERVER, dialback: true, from: context.local, to: context.remote }) } satisfies ToConn),
    secured: assign({ secure: true, cert: ({ event }) => (event as Extract<ToSession, { type: 'tls' }>).peer ?? null }),
    /** XEP-0178: our certificate as proof, for our domain. */
    writeAuth: ({ context }) => send(context.conn!, { type: 'write', xml: serialize(x('auth', { xmlns: NS.SASL, mechanism: 'EXTERNAL' }, Buffer.from(context.local).toString('base64'))) } satisfies ToConn),
    saslTried: assign({ sasl: 'tried' as const }),
    /** Remember that the peer offered dialback too (for after a SASL failure). */
    dialbackOffered: assign({ dialback: ({ context, event }) => context.dialback || features(event).dialback }),
    saslOk: assign({ sasl: 'done' as const }),
    /** After SASL the stream starts again (RFC 6120 §6.4.6): our new header; the engine reads a new one. */
    restart: ({ context }) => send(context.conn!, { type: 'authenticated', xml: streamOpen({ xmlns: NS.SERVER, dialback: true, from: context.local, to: context.remote }), jid: context.remote, restart: true, bound: true } satisfies ToConn),
    sendResult: ({ context }) => send(context.conn!, {
      type: 'write', xml: serialize(x('db:result', { from: context.local, to: context.remote }, dialbackKey(settings().serverSecret, context.remote, context.local, context.streamId ?? ''))),
    } satisfies ToConn),
    /** Up: the engine stops timing the stream's authentication. */
    authenticated: ({ context }) => send(context.conn!, { type: 'authenticated', xml: '', jid: context.remote, restart: false, bound: true } satisfies ToConn),
    upNow: assign({ attempts: 0 }),
    freshTries: assign({ attempts: 0 }),
    failed: assign({ attempts: ({ context }) => context.attempts + 1 }),
    wait: ({ context }) => startTimer('retry', BACKOFF_MS[context.attempts - 1] ?? 1000, { type: 'retry' }),
    bounceQueue: ({ context, event }) => {
      const why = (event as { reason?: string }).reason ?? 'the link could not be set up';
      log('info', `s2s ${context.local} → ${context.remote}: given up (${why}); ${context.queue.length} stanzas bounced`);
      bounce(context, why);
      tellAskers(context, false, why);
    },
    clearAll: assign({ queue: [], verifies: [], attempts: 0 }),
    /** Verifications sent on a connection that is gone are asked again on the next. */
    unsend: assign({ verifies: ({ context }) => context.verifies.map((v) => ({ ...v, sent: false })) }),
    stopIdle: () => cancelTimer('idle'),
    writeEnable: ({ context }) => send(context.conn!, { type: 'write', xml: serialize(x('enable', { xmlns: NS.SM })) } satisfies ToConn),
    /** Acknowledgements are on: the engine keeps each delivery until the peer counts it. */
    engineSm: ({ context }) => send(context.conn!, { type: 'sm-enabled' } satisfies ToConn),
    logUp: ({ context }) => log('info', `s2s ${context.local} → ${context.remote}: up (${context.sasl === 'done' ? 'certificate, SASL EXTERNAL' : 'dialback'}${context.directTls ? ', Direct TLS' : ''})`),
    /** For chorus s2s: where the link is, what waits, how the peer proved itself. */
    answerOperator: ({ context, event, self: me }) => {
      const state = me.getSnapshot().value as string;
      send((event as Extract<ToLink, { type: 'operator' }>).reply, { ok: true, result: {
        link: `${context.local} → ${context.remote}`, state, queued: context.queue.length, verifying: context.verifies.length, failedTries: context.attempts,
        transport: context.conn === null ? null : context.directTls ? 'Direct TLS' : context.secure ? 'STARTTLS' : 'TCP',
        authenticated: state === 'up' ? (context.sasl === 'done' ? 'certificate (SASL EXTERNAL)' : 'dialback') : null,
        acknowledgements: context.sm === 'on' ? 'XEP-0198' : null,
        peerCertificate: context.cert ? (certificateNames(context.cert, context.remote) ? 'proves the domain' : context.cert.error ?? `names ${context.cert.names.join(', ')}`) : null,
      } });
    },
    logIdle: ({ context }) => log('info', `s2s ${context.local} → ${context.remote}: idle, closing (it opens again for the next stanza)`),
    logUnproven: ({ context }) => log('warn', `s2s ${context.local} → ${context.remote}: no link (secure_auth): ${unproven(context)}`),
    logRefused: ({ context, event }) => log('warn', `s2s ${context.local} → ${context.remote}: refused our dialback key (${stanza(event).xml.slice(0, 300)})`),
  },
}).createMachine({
  id: 's2s',
  context: ({ input }) => ({ local: input.local, remote: input.remote, conn: null, secure: false, directTls: false, streamId: null, dialback: false, cert: null, sasl: 'no', sm: 'no', queue: [], verifies: [], attempts: 0 }),
  initial: 'idle',
  on: {
    // Restarted after a crash or with its node: its connection ended with it (the engine closes an
    // outbound stream whose actor crashed and hands back what it had not written). A new life gets
    // its tries afresh: tries spent before a node restart would otherwise bounce what waits at once.
    'runtime.restored': { target: '.restarting', actions: ['dropConn', 'freshTries'] },
    closed: [
      { guard: 'current', target: '.ended', actions: ['requeue', 'dropConn', 'unsend', 'stopIdle'] },
      { actions: 'requeue' },
    ],
    end: { guard: 'current', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
    operator: { actions: 'answerOperator' },
  },
  states: {
    idle: {
      on: {
        out: { target: 'connecting', actions: ['retain', 'enqueue', 'dial'] },
        // What the connection of an earlier life of this link never wrote (it crashed or was killed).
        closed: { guard: 'handedBack', target: 'connecting', actions: ['requeue', 'dial'] },
        verify: { target: 'connecting', actions: ['addVerify', 'dial'] },
      },
    },
    restarting: { always: [{ guard: 'hasWork', target: 'connecting', actions: 'dial' }, { target: 'finished' }] },
    /** The socket is gone: again if there is more to send (counted as a failure unless it was up). */
    ended: { always: [{ guard: and(['hasWork', 'triesLeft']), target: 'backoff' }, { guard: 'hasWork', target: 'finished', actions: ['bounceQueue', 'clearAll'] }, { target: 'finished' }] },
    connecting: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        connected: { target: 'opening', actions: ['takeConn', 'writeHeader'] },
        'dial-failed': [
          { guard: 'triesLeft', target: 'backoff' },
          { target: 'finished', actions: ['bounceQueue', 'clearAll'] },
        ],
      },
    },
    backoff: {
      entry: ['failed', 'wait'],
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        retry: { target: 'connecting', actions: 'dial' },
      },
    },
    opening: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        header: [
          { guard: not('current'), actions: [] },
          { guard: not('serverNs'), target: 'closing', actions: fail('invalid-namespace', 'a server stream is jabber:server') },
          { actions: 'header' },
        ],
        stanza: [
          { guard: not('current'), actions: [] },
          { guard: and(['isFeatures', not('secure'), 'offersTls']), target: 'securing', actions: write(serialize(x('starttls', { xmlns: NS.TLS }))) },
          // RFC 6120 §5.3.1: TLS is required between servers here.
          { guard: and(['isFeatures', not('secure')]), target: 'closing', actions: fail('policy-violation', 'TLS is required') },
          { guard: and(['isFeatures', 'saslDone', 'offersSm']), target: 'enabling', actions: ['noteSm', 'upNow', 'writeVerifies', 'markSent'] },
          { guard: and(['isFeatures', 'saslDone']), target: 'up', actions: ['noteSm', 'upNow', 'writeVerifies', 'markSent'] },
          { guard: and(['isFeatures', 'secureAuth', not('peerProven')]), target: 'closing', actions: ['logUnproven', fail('policy-violation', ({ context }) => unproven(context))] },
          // A certificate first (XEP-0178), dialback if the peer does not take it (or offers only that).
          { guard: and(['isFeatures', 'offersExternal']), target: 'sasl', actions: ['noteSm', 'dialbackOffered', 'saslTried', 'writeAuth'] },
          { guard: and(['isFeatures', 'offersDialback']), target: 'authenticating', actions: ['noteSm', 'writeVerifies', 'markSent', 'sendResult'] },
          { guard: 'isFeatures', target: 'closing', actions: fail('unsupported-feature', 'nothing here to authenticate with that we both know') },
          { guard: 'isVerifyAnswer', actions: ['tellAsker', 'dropVerify'] },
        ],
      },
    },
    securing: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        stanza: [
          { guard: not('current'), actions: [] },
          { guard: 'isProceed', target: 'tls', actions: toConn(({ context }) => ({ type: 'starttls', xml: '', servername: context.remote, local: context.local })) },
          { target: 'closing', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
        ],
      },
    },
    tls: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        tls: { guard: 'current', target: 'opening', actions: ['secured', 'writeHeader'] },
      },
    },
    /** SASL EXTERNAL asked; on failure dialback, if the peer offered it. */
    sasl: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
        stanza: [
          { guard: not('current'), actions: [] },
          { guard: 'isSuccess', target: 'opening', actions: ['saslOk', 'restart'] },
          { guard: 'dialbackWasOffered', target: 'authenticating', actions: ['writeVerifies', 'markSent', 'sendResult'] },
          { target: 'closing', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
        ],
      },
    },
    authenticating: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: ['addVerify', 'writeVerifies', 'markSent'] },
        stanza: [
          { guard: not('current'), actions: [] },
          { guard: and(['isResult', 'resultValid', 'smOffered']), target: 'enabling', actions: ['authenticated', 'upNow'] },
          { guard: and(['isResult', 'resultValid']), target: 'up', actions: ['authenticated', 'upNow'] },
          { guard: 'isResult', target: 'closing', actions: ['logRefused', toConn({ type: 'close', xml: '</stream:stream>' })] },
          { guard: 'isVerifyAnswer', actions: ['tellAsker', 'dropVerify'] },
        ],
      },
    },
    /** Authenticated; our <enable/> (XEP-0198) is out. What waits is held until the answer, so that
     *  every stanza the peer counts is one the engine keeps. */
    enabling: {
      entry: 'writeEnable',
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: ['addVerify', 'writeVerifies', 'markSent'] },
        stanza: [
          { guard: not('current'), actions: [] },
          { guard: 'isEnabled', target: 'up', actions: ['smOn', 'engineSm'] },
          { guard: 'isSmFailed', target: 'up', actions: 'smRefused' },
          { guard: 'isVerifyAnswer', actions: ['tellAsker', 'dropVerify'] },
        ],
      },
    },
    up: {
      entry: ['writeQueue', 'clearQueue', 'logUp'],
      on: {
        out: { actions: 'deliver' },
        verify: { actions: ['addVerify', 'writeVerifies', 'markSent'] },
        stanza: { guard: and(['current', 'isVerifyAnswer']), actions: ['tellAsker', 'dropVerify'] },
        idle: { target: 'closing', actions: ['logIdle', toConn({ type: 'close', xml: '</stream:stream>' })] },
      },
    },
    /** Nothing to send and no connection: the actor ends (and its snapshot with it); the next
     *  stanza for the domain starts it again. */
    finished: { type: 'final' },
    /** Waiting for the connection's 'closed'. */
    closing: {
      on: {
        out: { actions: ['retain', 'enqueue'] },
        verify: { actions: 'addVerify' },
      },
    },
  },
});
