// The client stream's machine: every protocol decision of a session (RFC 6120 stream, STARTTLS, SASL,
// bind, XEP-0198 enable/resume, XEP-0352), written the xstate way: named guards, pure assigns, effects
// as named actions (a SASL step too: its outcome comes back as an event, through the mailbox). The connection (main thread) carries out the
// commands the actions send it (ToConn) and turns what it reads into events (ToSession).
//
//   opening ─header→ open ─starttls→ securing ─tls→ opening
//                     └─iq a module takes (XEP-0077)→ asking ─resumed→ open
//                     └─auth→ authenticating (working ⇄ waiting) ─success→ opening ─header→ binding ─bind-ok→ established
//                     └─authenticate (SASL2) → authenticating ─success→ bindingInline ─bind-ok→ established (no restart)
//   established ⇄ resumable (XEP-0198: socket gone, session kept)        any ─→ closing → unbinding → done
//
// The implementations in effects.ts go through the runtime; tests run transition() on this machine and
// read the actions it returns, or provide their own (machine.provide).
import { and, assign, enqueueActions, not, or, setup, type EventObject } from 'xstate';
import { randomBytes } from 'node:crypto';
import type { ConnInfo, Delivery, ToSession } from '../../src/net/c2s-protocol.ts';
import { restamp, serialize, x } from '../../src/xml/builder.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { stanzaError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import { encodeSaslPayload } from '../../src/sasl/mechanisms.ts';
import { sasl2SuccessXml } from '../../src/sasl/sasl2.ts';
import type { SaslStep } from '../../src/sasl/types.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import type { ToSessionFromUser, ToUser } from '../user/messages.ts';
import { streamCommands } from '../stream-commands.ts';
import { actions, guards, type DeliverParams, type PreauthOutcome, type SaslInput, type TokenAsk } from './effects.ts';
import {
  bind2Resource, bindInput, bindResultXml, canWait, clientVerdict, failXml, hostOf, initialContext, MAX_SASL_FAILURES, parsed, readAuthenticate, resourceOf, resumeRequest,
  boundSuccessXml, saslFailureXml, saslNs, tokenXml, unboundSuccessXml, smFailedXml, versionOk, wantsResume, type SessionCtx,
} from './stream.ts';

export type SessionEvent = ToSession | ToSessionFromUser | RuntimeEvent
  /** The outcome of SASL step `n` (the saslStep effect's answer), with a FAST token it issued. */
  | { type: 'sasl'; n: number; step: SaslStep; token?: { token: string; expiry: number } };

type Stanza = Extract<ToSession, { type: 'stanza' }>;
/** Any transition's arguments (the helpers below read the event they know they get). */
type Args = { context: SessionCtx; event: EventObject };
type Failure = Extract<SaslStep, { kind: 'failure' }>;

const stanza = (e: EventObject): Stanza => e as Stanza;
const header = (e: EventObject) => e as Extract<ToSession, { type: 'header' }>;
const preauthOut = (e: EventObject): PreauthOutcome => (e as Extract<RuntimeEvent, { type: 'runtime.resumed' }>).value as PreauthOutcome;
const saslOut = (e: EventObject): SaslStep => (e as Extract<SessionEvent, { type: 'sasl' }>).step;
/** A wrong password counts towards closing the stream; a refused mechanism or binding type does not. */
const failuresAfter = (ctx: SessionCtx, s: Failure) => ctx.saslFailures + (s.wrongCredentials ? 1 : 0);

// ---- effect helpers: the named actions with their parameters ------------------------------------

const { toConn, write, fail, is } = streamCommands<SessionCtx>(failXml);
const toUser = (params: ToUser | ((a: Args) => ToUser)) => ({ type: 'toUser', params } as const);
/** Before bind, stanzas come one at a time: this one is done, send the next. */
const next = toConn({ type: 'next' });
const handled = { type: 'handled', params: ({ event }: Args) => ({ seq: stanza(event).seq }) } as const;
const smFailed = (condition: 'unexpected-request' | 'feature-not-implemented') => write(smFailedXml(condition));
/** A SASL failure in the profile of the exchange. */
const saslFailure = (condition: (a: Args) => string) => ({ context, event }: Args) => saslFailureXml(condition({ context, event }), !!context.sasl2);
const successOf = (e: EventObject) => saslOut(e) as Extract<SaslStep, { kind: 'success' }>;
/** A FAST token the success brought, for <success/>. */
const newToken = (e: EventObject): string[] => { const t = (e as Extract<SessionEvent, { type: 'sasl' }>).token; return t ? [tokenXml(t)] : []; };
/** Ask the user actor for the resource chosen (conflicts and the session limit are its to decide). */
const bindRequest = toUser(({ context }) => {
  const bind = context.sasl2?.bind;
  return { type: 'bind', resource: context.bindResource, session: `session:${context.user}@${context.host}/${context.bindResource}`, ...(bind ? { bind2: { inline: bind.inline ?? [] } } : {}) };
});
/** SASL2 succeeded and its <success/> waits (for a resumption or a bind): the stream goes on, no restart. */
const authenticatedHeld = toConn(({ context }) => ({ type: 'authenticated', xml: '', jid: `${context.user}@${context.host}`, restart: false }));
const logLogin = { type: 'logLogin', params: ({ event }: Args) => saslOut(event) as Exclude<SaslStep, { kind: 'challenge' }> } as const;
const bounce = (items: (a: Args) => readonly Delivery[]) => ({ type: 'bounce', params: items } as const);
const deliver = { type: 'deliver', params: ({ context, event }: Args): DeliverParams => {
  const d = event as Extract<ToSessionFromUser, { type: 'deliver' }>;
  return { xml: d.xml, receipt: d.receipt, sent: d.sent, hold: context.inactive === true && canWait(d.xml) };
} } as const;

export const sessionMachine = setup({
  types: { context: {} as SessionCtx, events: {} as SessionEvent, input: {} as ConnInfo },
  guards: {
    ...guards,
    // the stream header
    wrongNamespace: ({ event }) => header(event).xmlns !== NS.CLIENT,
    hostChanged: ({ context, event }) => !!context.user && hostOf(header(event)) !== context.host,
    badVersion: ({ event }) => !versionOk(header(event)),
    authenticated: ({ context }) => context.user !== null,
    secure: ({ context }) => context.secure,
    // what came in
    isStarttls: is('starttls', NS.TLS),
    isAuth: is('auth', NS.SASL),
    isAuthenticate: is('authenticate', NS.SASL2),
    // Within an exchange, its own profile's elements (RFC 6120's or XEP-0388's).
    isAbort: ({ context, event }) => stanza(event).h.name === 'abort' && stanza(event).h.xmlns === saslNs(context),
    isResponse: ({ context, event }) => stanza(event).h.name === 'response' && stanza(event).h.xmlns === saslNs(context),
    isSasl: ({ event }) => stanza(event).h.xmlns === NS.SASL || stanza(event).h.xmlns === NS.SASL2,
    sasl2: ({ context }) => !!context.sasl2,
    bindsInline: ({ context }) => !!context.sasl2?.bind,
    smInline: ({ context }) => !!context.sasl2?.bind?.sm,
    resumesInline: ({ context }) => !!context.sasl2?.resume,
    isClientNs: ({ event }) => stanza(event).h.xmlns === NS.CLIENT,
    isIq: ({ event }) => stanza(event).h.name === 'iq',
    isSm: ({ event }) => stanza(event).h.xmlns === NS.SM,
    isSmEnable: is('enable', NS.SM),
    isSmResume: is('resume', NS.SM),
    smOn: ({ context }) => context.sm === true,
    isCsi: ({ event }) => stanza(event).h.xmlns === NS.CSI,
    isActive: is('active', NS.CSI),
    isInactive: is('inactive', NS.CSI),
    isBindRequest: ({ event }) => bindInput(stanza(event).xml, stanza(event).h, () => '-').kind === 'bind',
    /** A client's stanza the stream lets through (the hot path: one guard). */
    acceptable: ({ context, event }) => clientVerdict(context.jid!, stanza(event).h) === 'ok',
    refused: ({ context, event }) => { const v = clientVerdict(context.jid!, stanza(event).h); return v !== 'ok' && 'fail' in v; },
    // SASL outcomes
    currentStep: ({ context, event }) => (event as Extract<SessionEvent, { type: 'sasl' }>).n === context.saslSeq,
    saslChallenge: ({ event }) => saslOut(event).kind === 'challenge',
    saslSuccess: ({ event }) => saslOut(event).kind === 'success',
    saslTooMany: ({ context, event }) => { const s = saslOut(event); return s.kind === 'failure' && failuresAfter(context, s) >= MAX_SASL_FAILURES; },
    saslDelayed: ({ event }) => { const s = saslOut(event); return s.kind === 'failure' && !!s.delayMs; },
    waitingForUser: ({ context }) => context.awaitUser,
    leftEverything: ({ context }) => !context.awaitUser && !context.awaitConn,
    bound: ({ context }) => context.jid !== null,
  },
  actions: {
    ...actions,
    openStream: assign(({ event }) => ({ host: hostOf(header(event)), streamId: randomBytes(9).toString('base64url'), lang: header(event).lang ?? 'en' })),
    secured: assign(({ event }) => { const e = event as Extract<ToSession, { type: 'tls' }>; return { secure: true, cb: e.cb, host: e.host }; }),
    chooseMechanism: assign(({ event }) => ({ mechanism: parsed(stanza(event).xml, NS.SASL).attr('mechanism') ?? '', sasl2: null })),
    startSasl2: assign(({ event }) => { const a = readAuthenticate(stanza(event).xml); return { mechanism: a.mechanism, sasl2: a.request }; }),
    /** The final SASL data waits in the <success/> that Bind 2's outcome completes. */
    keepSuccessData: assign(({ context, event }) => ({ sasl2: { ...context.sasl2!, data: successOf(event).data ? encodeSaslPayload(successOf(event).data) : null, token: newToken(event)[0] ?? null } })),
    keepFailed: assign(({ context, event }) => ({ sasl2: { ...context.sasl2!, failed: (event as Extract<ToSession, { type: 'resume-failed' }>).xml } })),
    askBind2: assign(({ context }) => ({ bindId: '', bindResource: bind2Resource(context.sasl2!, `${context.user}@${context.host}`, () => randomBytes(9).toString('base64url')) })),
    nextSaslStep: assign(({ context }) => ({ saslSeq: context.saslSeq + 1 })),
    /** Authenticated: what modules kept before authentication (an invitation) is done with. */
    authenticate: assign(({ event }) => ({ user: (saslOut(event) as Extract<SaslStep, { kind: 'success' }>).authcid, kept: undefined })),
    keepPreauth: assign(({ event }) => ({ kept: preauthOut(event).kept })),
    countFailure: assign(({ context, event }) => {
      const s = saslOut(event) as Failure;
      return { saslFailures: failuresAfter(context, s), ...(s.unsupportedBinding ? { cbRefused: true } : {}) };
    }),
    askBind: assign(({ event }) => {
      const b = bindInput(stanza(event).xml, stanza(event).h, () => randomBytes(6).toString('base64url')) as Extract<ReturnType<typeof bindInput>, { kind: 'bind' }>;
      return { bindId: b.id, bindResource: b.resource };
    }),
    bind: assign(({ context, event }) => ({ jid: `${context.user}@${context.host}/${(event as Extract<ToSessionFromUser, { type: 'bind-ok' }>).resource}` })),
    enableSm: assign({ sm: true }),
    /** Bind 2 may start the session in a XEP-0352 state. */
    inlineCsi: assign(({ context }) => ({ inactive: context.sasl2?.bind?.csi === 'inactive' })),
    /** Said and done: nothing of the login (its new token above all) stays in the snapshot. */
    forgetSasl2: assign({ sasl2: null }),
    /** What modules answered the Bind 2 login with goes in its <bound/>. */
    keepBound: assign(({ context, event }) => ({ sasl2: { ...context.sasl2!, bound: (event as Extract<ToSessionFromUser, { type: 'bind-ok' }>).bound ?? [] } })),
    beActive: assign({ inactive: false }),
    beInactive: assign({ inactive: true }),
    userLeft: assign({ awaitUser: false }),
    connDrained: assign({ awaitConn: false }),
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => initialContext(input),
  initial: 'opening',
  on: {
    'runtime.restored': [
      // Restored at boot: the socket died with the old process; leave (mail goes offline).
      { guard: 'connGone', target: '.unbinding' },
      // Restarted after a crash: the connection still holds what we had not handled; the user actor
      // watches us again.
      { guard: 'bound', actions: [toConn({ type: 'replay' }), toUser(({ context }) => ({ type: 'arrived', resource: resourceOf(context) }))] },
      { actions: toConn({ type: 'replay' }) },
    ],
    // The socket is gone for good (or a late delivery could not be written): end the session.
    closed: { target: '.unbinding', actions: bounce(({ event }) => (event as Extract<ToSession, { type: 'closed' }>).unacked) },
    end: { target: '.closing', actions: toConn({ type: 'close', xml: '</stream:stream>' }) },
    deliver: { actions: bounce(({ event }) => [event as unknown as Delivery]) },
    // The user actor restarted: what it was handling of ours may be lost; the connection sends
    // again what is not handled (it drops what it had taken already).
    replay: { actions: toConn({ type: 'replay' }) },
  },
  states: {
    opening: {
      on: {
        header: [
          { guard: 'wrongNamespace', target: 'closing', actions: fail('invalid-namespace', undefined, false) },
          { guard: not('servedHost'), target: 'closing', actions: fail('host-unknown', ({ event }) => `this server does not serve ${header(event).to ?? '(no to)'}`, false) },
          { guard: 'hostChanged', target: 'closing', actions: fail('host-unknown', 'the stream changed host', false) },
          { guard: 'badVersion', target: 'closing', actions: fail('unsupported-version', 'version 1.0 is required', false) },
          { guard: 'authenticated', target: 'binding', actions: ['openStream', 'writeHeader'] },
          { target: 'open', actions: ['openStream', 'writeHeader'] },
        ],
        stanza: { target: 'closing', actions: fail('not-well-formed', 'no stream header', false) },
      },
    },
    open: {
      on: {
        stanza: [
          { guard: and(['isStarttls', 'secure']), target: 'closing', actions: fail('policy-violation', 'TLS is already on') },
          { guard: 'isStarttls', target: 'securing', actions: toConn({ type: 'starttls', xml: serialize(x('proceed', { xmlns: NS.TLS })) }) },
          // RFC 6120 §5.3.1: with TLS required, anything but STARTTLS first is a policy violation.
          { guard: and([not('secure'), 'tlsRequired']), target: 'closing', actions: fail('policy-violation', 'STARTTLS is required') },
          { guard: 'isAuth', target: 'authenticating', actions: 'chooseMechanism' },
          { guard: and(['isAuthenticate', 'sasl2Offered']), target: 'authenticating', actions: 'startSasl2' },
          // What a module takes before authentication (XEP-0077 registration); other stanzas: RFC 6120 §6.4.1 / §7.1.
          { guard: 'preauthIqTaken', target: 'asking', actions: { type: 'preauthIq', params: ({ event }: Args) => ({ xml: stanza(event).xml }) } },
          { guard: 'isClientNs', target: 'closing', actions: fail('not-authorized') },
          { guard: or(['isSmEnable', 'isSmResume']), actions: smFailed('unexpected-request') },
          { guard: 'isSm', actions: smFailed('feature-not-implemented') },
          { target: 'closing', actions: fail('unsupported-stanza-type', ({ event }) => `${stanza(event).h.name} in ${stanza(event).h.xmlns}`) },
        ],
      },
    },
    /** A module answers an IQ before authentication, the actor suspended (what comes next waits). */
    asking: {
      on: {
        'runtime.resumed': { target: 'open', actions: ['keepPreauth', write(({ event }) => preauthOut(event).xml)] },
      },
    },
    securing: {
      on: {
        tls: { target: 'opening', actions: 'secured' },
        stanza: { target: 'closing', actions: fail('policy-violation', 'data before TLS') },
      },
    },
    authenticating: {
      initial: 'working',
      exit: 'forgetSasl',
      states: {
        /** A step runs (the first from <auth/>, the others from <response/>). */
        working: {
          // The step is an effect; its outcome comes back as a 'sasl' event (numbered: an outcome of
          // an exchange since aborted is not this one's).
          entry: ['nextSaslStep', { type: 'saslStep', params: ({ context, event }: Args) => ({ n: context.saslSeq, ...saslInput(context, stanza(event)) }) }],
          on: {
            sasl: [
              { guard: not('currentStep') },
              { guard: 'saslChallenge', target: 'waiting', actions: write(({ context, event }) => serialize(x('challenge', { xmlns: saslNs(context) }, encodeSaslPayload((saslOut(event) as Extract<SaslStep, { kind: 'challenge' }>).data)))) },
              // XEP-0198 inline: the connection tries to take the old stream over; if it cannot, Bind 2 goes on.
              {
                guard: and(['saslSuccess', 'resumesInline']), target: '#session.resumingInline',
                actions: [logLogin, 'authenticate', 'keepSuccessData', authenticatedHeld, 'resumeInline'],
              },
              // XEP-0386: bind before answering; the stream goes on without a restart.
              {
                guard: and(['saslSuccess', 'bindsInline']), target: '#session.bindingInline',
                actions: [logLogin, 'authenticate', 'keepSuccessData', 'askBind2', authenticatedHeld, bindRequest],
              },
              {
                guard: and(['saslSuccess', 'sasl2']), target: '#session.binding',
                actions: [logLogin, 'authenticate', toConn(({ context, event }) => {
                  const data = successOf(event).data;
                  return { type: 'authenticated', xml: sasl2SuccessXml(data ? encodeSaslPayload(data) : null, `${context.user}@${context.host}`, newToken(event)), jid: `${context.user}@${context.host}`, restart: false };
                }), 'writeFeatures', 'forgetSasl2'],
              },
              {
                guard: 'saslSuccess', target: '#session.opening',
                actions: [logLogin, 'authenticate', toConn(({ context, event }) => {
                  const s = saslOut(event) as Extract<SaslStep, { kind: 'success' }>;
                  return { type: 'authenticated', xml: serialize(x('success', { xmlns: NS.SASL }, s.data ? encodeSaslPayload(s.data) : null)), jid: `${context.user}@${context.host}`, restart: true };
                })],
              },
              // RFC 6120 §6.4.5: closed after this many; the last failure is still answered, before the stream error.
              { guard: 'saslTooMany', target: '#session.closing', actions: [logLogin, 'countFailure', toConn(({ context, event }) => ({ type: 'close', xml: saslFailureXml((saslOut(event) as Failure).condition, !!context.sasl2) + failXml(context, 'policy-violation', 'too many failed authentication attempts') }))] },
              { guard: 'saslDelayed', target: '#session.open', actions: [logLogin, 'countFailure', { type: 'writeLater', params: ({ context, event }: Args) => { const s = saslOut(event) as Failure; return { xml: saslFailureXml(s.condition, !!context.sasl2), ms: s.delayMs! }; } }] },
              { target: '#session.open', actions: [logLogin, 'countFailure', write(saslFailure(({ event }) => (saslOut(event) as Failure).condition))] },
            ],
            stanza: [
              { guard: 'isAbort', target: '#session.open', actions: write(saslFailure(() => 'aborted')) },
              { guard: 'isSasl', target: '#session.closing', actions: fail('policy-violation', 'SASL step out of turn') },
              { target: '#session.closing', actions: fail('not-authorized') },
            ],
          },
        },
        /** The client's turn: a <response/> to our challenge. */
        waiting: {
          on: {
            stanza: [
              { guard: 'isResponse', target: 'working' },
              { guard: 'isAbort', target: '#session.open', actions: write(saslFailure(() => 'aborted')) },
              { guard: 'isSasl', target: '#session.closing', actions: fail('policy-violation', ({ event }) => `${stanza(event).h.name} during SASL`) },
              { target: '#session.closing', actions: fail('not-authorized') },
            ],
          },
        },
      },
    },
    /** Authenticated, not bound: the connection sends one stanza at a time until 'bound'. */
    binding: {
      on: {
        stanza: [
          // Tried by the connection, which sends the next stanza if it fails (on success the stream is another's).
          { guard: 'isSmResume', actions: toConn(({ event }) => ({ type: 'sm-resume', ...resumeRequest(stanza(event).xml) })) },
          { guard: 'isSmEnable', actions: [smFailed('unexpected-request'), next] },
          { guard: 'isSm', actions: [smFailed('feature-not-implemented'), next] },
          { guard: not('isIq'), target: 'closing', actions: fail('not-authorized', 'bind a resource first') },
          // The user actor decides conflicts and the session limit.
          { guard: 'isBindRequest', actions: ['askBind', bindRequest, handled] },
          { actions: [write(({ event }) => (bindInput(stanza(event).xml, stanza(event).h, () => '-') as { xml: string }).xml), next, handled] },
        ],
        'bind-ok': { target: 'established', actions: ['bind', write(({ context }) => bindResultXml(context.bindId, context.jid!)), 'moveToJid'] },
        'bind-denied': {
          actions: toConn(({ context, event }) => {
            const e = event as Extract<ToSessionFromUser, { type: 'bind-denied' }>;
            return { type: 'bind-failed', xml: stanzaError({ name: 'iq', type: 'set', id: context.bindId, to: null, from: null } as StanzaHeader, 'wait', e.condition, e.text) ?? '' };
          }),
        },
      },
    },
    /** SASL2 succeeded and the connection tries the resumption asked inline: if it takes the old
     *  stream over, it answers <success/> there and this session ends ('closed'). */
    resumingInline: {
      on: {
        'resume-failed': [
          {
            guard: 'bindsInline', target: 'bindingInline',
            actions: ['keepFailed', 'askBind2', bindRequest],
          },
          { target: 'binding', actions: ['keepFailed', write(({ context }) => unboundSuccessXml(context.sasl2!, `${context.user}@${context.host}`)), 'writeFeatures', 'forgetSasl2'] },
        ],
        stanza: { target: 'closing', actions: fail('policy-violation', 'nothing may be sent before the authentication outcome') },
      },
    },
    /** SASL2 succeeded and Bind 2 asked the user actor for a resource: <success/> answers both. */
    bindingInline: {
      on: {
        'bind-ok': [
          {
            // XEP-0198 enabled inline: the connection writes its <enabled/> inside <bound/>.
            guard: 'smInline', target: 'established',
            actions: ['bind', 'keepBound', 'inlineCsi', 'enableSm', toConn(({ context }) => ({ type: 'sm-enable', resume: context.sasl2!.bind!.sm!.resume, wrap: boundSuccessXml(context.sasl2!, context.jid!) })), 'writeFeatures', 'forgetSasl2', 'moveToJid'],
          },
          { target: 'established', actions: ['bind', 'keepBound', 'inlineCsi', write(({ context }) => boundSuccessXml(context.sasl2!, context.jid!).join('')), 'writeFeatures', 'forgetSasl2', 'moveToJid'] },
        ],
        // Refused (the session limit): authenticated all the same, and told to bind the usual way.
        'bind-denied': { target: 'binding', actions: [write(({ context }) => unboundSuccessXml(context.sasl2!, `${context.user}@${context.host}`)), 'writeFeatures', 'forgetSasl2'] },
        // XEP-0388: nothing but the exchange's own elements until its outcome.
        stanza: { target: 'closing', actions: fail('policy-violation', 'nothing may be sent before the authentication outcome') },
      },
    },
    established: {
      on: {
        stanza: [
          // The hot path: no assign, so the snapshot is unchanged and nothing is written.
          { guard: 'acceptable', actions: toUser(({ context, event }) => {
            const s = stanza(event);
            const { xml, header: h } = restamp(s.xml, s.h, { from: context.jid! });
            return { type: 'client', xml, h, resource: resourceOf(context), conn: context.conn, seq: s.seq, done: s.done ?? 0 };
          }) },
          // Client State Indication (XEP-0352) and XEP-0198's requests: nonzas, not counted as stanzas.
          { guard: 'isActive', actions: ['beActive', toConn({ type: 'flush' })] },
          { guard: 'isInactive', actions: 'beInactive' },
          { guard: 'isCsi' },
          { guard: and(['isSmEnable', not('smOn')]), actions: ['enableSm', toConn(({ event }) => ({ type: 'sm-enable', resume: wantsResume(stanza(event).xml) }))] },
          { guard: or(['isSmEnable', 'isSmResume']), actions: smFailed('unexpected-request') },
          { guard: 'isSm', actions: smFailed('feature-not-implemented') },
          { guard: 'refused', target: 'closing', actions: toConn(({ context, event }) => {
            const v = clientVerdict(context.jid!, stanza(event).h) as { fail: StreamErrorCondition; text?: string };
            return { type: 'close', xml: failXml(context, v.fail, v.text) };
          }) },
          { actions: [toConn(({ context, event }) => ({ type: 'deliver', xml: (clientVerdict(context.jid!, stanza(event).h) as { reply: string | null }).reply ?? '' })), handled] },
        ],
        deliver: { actions: deliver },
        replace: { target: 'closing', actions: fail('conflict', 'replaced by a new login with the same resource') },
        kick: { target: 'closing', actions: fail('not-authorized', ({ event }) => (event as Extract<ToSessionFromUser, { type: 'kick' }>).text) },
        detached: 'resumable',
      },
    },
    resumable: {
      // The account counts it apart: a detached session gives way to a new login at the session limit.
      entry: toUser(({ context }) => ({ type: 'detached', resource: resourceOf(context) })),
      on: {
        resumed: { target: 'established', actions: toUser(({ context }) => ({ type: 'attached', resource: resourceOf(context) })) },
        deliver: { actions: deliver },
        replace: { target: 'closing', actions: toConn({ type: 'close' }) },
        kick: { target: 'closing', actions: toConn({ type: 'close' }) },
      },
    },
    /** Waiting for the connection's final word (what the client never got) before leaving. */
    closing: {
      on: {
        closed: { target: 'unbinding', actions: bounce(({ event }) => (event as Extract<ToSession, { type: 'closed' }>).unacked) },
      },
    },
    /**
     * Told the user actor we are gone; anything it sends meanwhile is routed again (the top-level
     * 'deliver'). Deliveries we sent the connection before it closed may still be in flight to it:
     * 'drain' goes after them on the same FIFO path, and the connection hands each back ('closed')
     * before it answers 'drained'. Only then is nothing of ours left anywhere but in routing.
     */
    unbinding: {
      entry: enqueueActions(({ context, enqueue, check }) => {
        if (!context.jid) return;
        enqueue.assign({ awaitUser: true });
        enqueue(toUser({ type: 'unbind', resource: resourceOf(context) }));
        if (check('connGone')) return;
        enqueue.assign({ awaitConn: true });
        enqueue(toConn({ type: 'drain' }));
      }),
      always: { guard: 'leftEverything', target: 'done' },
      on: {
        closed: { actions: bounce(({ event }) => (event as Extract<ToSession, { type: 'closed' }>).unacked) }, // late deliveries
        unbound: { actions: 'userLeft' },
        drained: { actions: 'connDrained' },
      },
    },
    done: { type: 'final' },
  },
});

/** FAST's part of a step: on SASL2 over TLS, from an installation that named itself. */
function tokenAsk(ctx: SessionCtx): TokenAsk | undefined {
  const r = ctx.sasl2;
  return r?.agent && ctx.secure ? { agent: r.agent, host: ctx.host!, request: r.fast.request, invalidate: r.fast.invalidate } : undefined;
}

/** The input of a SASL step from the stanza that starts it. */
function saslInput(ctx: SessionCtx, s: Stanza): SaslInput {
  const text = parsed(s.xml, NS.SASL).text();
  const ask = tokenAsk(ctx);
  const tokens = ask ? { tokens: ask } : {};
  if (s.h.name === 'response') return { op: 'step', payload: text, ...tokens };
  if (s.h.name === 'authenticate') return { op: 'start', mechanism: ctx.mechanism, payload: readAuthenticate(s.xml).payload, secure: ctx.secure, cb: ctx.cb, cbRefused: ctx.cbRefused === true, host: ctx.host!, remote: ctx.remote, ...tokens };
  return { op: 'start', mechanism: ctx.mechanism, payload: text, secure: ctx.secure, cb: ctx.cb, cbRefused: ctx.cbRefused === true, host: ctx.host!, remote: ctx.remote };
}
