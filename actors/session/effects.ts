// What the session machine does and reads through the runtime: the default implementations of its
// named actions, env guards and the SASL actor (machine.ts declares them; tests provide their own).
import { callNode, courier, later, log, suspend, moveTo, release, retain, self, send, sendDurable, service } from '../../src/runtime/api.ts';
import type { Delivery, ToConn, ToSession } from '../../src/net/c2s-protocol.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import type { PreauthIq } from '../../src/xmpp/module.ts';
import { dispatchIq } from '../../src/xmpp/iq.ts';
import { stanzaError } from '../../src/xmpp/errors.ts';
import { decodeSaslPayload, selectMechanism } from '../../src/sasl/mechanisms.ts';
import { HT_MECHANISMS, HtServer, isHtMechanism } from '../../src/sasl/ht.ts';
import type { SaslServer, SaslStep } from '../../src/sasl/types.ts';
import type { FastToken } from '../../src/storage/fast-tokens.ts';
import { prepareLocalpart } from '../../src/xmpp/jid.ts';
import type { ToUser } from '../user/messages.ts';
import type { EventObject } from 'xstate';
import { bareOf, featuresXml, headerXml, hostOf, offerOf, parsed, type Header, type SessionCtx, type StreamEnv } from './stream.ts';

const xmpp = () => service<XmppService>('xmpp');

const env = (): StreamEnv => {
  const svc = xmpp();
  return {
    requireEncryption: svc.settings.requireEncryption, sasl2: svc.settings.sasl2, bind2Features: svc.modules.bind2Features, moduleFeatures: svc.modules.streamFeatures,
    preauthFeatures: (host, secure) => svc.modules.preauthFeatures(host, secure),
  };
};

export type DeliverParams = Delivery & { hold: boolean };

export const actions = {
  toConn: ({ context }: { context: SessionCtx }, m: ToConn) => send(context.conn, m),
  /** To the account's user actor (same thread by placement once bound). */
  toUser: ({ context }: { context: SessionCtx }, m: ToUser) => send(`user:${bareOf(context)}`, m),
  /** Reports an inbound stanza as handled (XEP-0198 counts it from then on); 0 is no stanza of its count. */
  handled: ({ context }: { context: SessionCtx }, p: { seq: number }) => { if (p.seq > 0) send(context.conn, { type: 'handled', seq: p.seq } satisfies ToConn); },
  writeHeader: ({ context }: { context: SessionCtx }) => send(context.conn, { type: 'write', xml: headerXml(context, env()) } satisfies ToConn),
  /** XEP-0198 resumption inside SASL2: the connection answers <success/> if it takes the stream
   *  over (with the features of a bound stream with stream management on), else says it failed. */
  resumeInline: ({ context }: { context: SessionCtx }) => {
    const req = context.sasl2!;
    const features = featuresXml({ ...context, jid: `${bareOf(context)}/-`, sm: true }, env());
    send(context.conn, { type: 'sm-resume', ...req.resume!, inline: { data: req.data ?? null, token: req.token ?? null, features } } satisfies ToConn);
  },
  /** The features of a stream that goes on without a restart (after a SASL2 success). */
  writeFeatures: ({ context }: { context: SessionCtx }) => send(context.conn, { type: 'write', xml: featuresXml(context, env()) } satisfies ToConn),
  /** The throttle's delay slows password guessing without holding the actor. */
  writeLater: ({ context }: { context: SessionCtx }, p: { xml: string; ms: number }) => {
    const c = courier();
    setTimeout(() => c(context.conn, { type: 'write', xml: p.xml } satisfies ToConn), p.ms);
  },
  logLogin: ({ context }: { context: SessionCtx }, step: Exclude<SaslStep, { kind: 'challenge' }>) => logLogin(context, step),
  /** After this message the session lives at its full JID, next to its user actor. */
  moveToJid: ({ context }: { context: SessionCtx }) => moveTo(`session:${context.jid}`),
  /** A stanza for the client: a durable one (offline mail) stays in our mailbox until the client has it. */
  deliver: ({ context }: { context: SessionCtx }, d: DeliverParams) =>
    send(context.conn, { type: 'deliver', xml: d.xml, receipt: d.receipt ?? retain(), sent: d.sent, ...(d.hold ? { hold: true } : {}) } satisfies ToConn),
  /** What this session could not deliver goes back to the user actor, which routes it again. */
  bounce: ({ context }: { context: SessionCtx }, items: readonly Delivery[]) => {
    if (!context.user || !context.host) return;
    for (const it of items) {
      const receipt = it.receipt;
      void sendDurable(`user:${bareOf(context)}`, { type: 'redeliver', xml: it.xml, except: context.jid ?? '', sent: it.sent } satisfies ToUser).then(() => {
        if (receipt) release(receipt);
      });
    }
  },
  /** Runs a module's handler of an IQ before authentication, the actor suspended meanwhile (the
   *  client's next stanzas wait in the mailbox); the answer comes back as 'runtime.resumed'. */
  preauthIq: ({ context }: { context: SessionCtx }, p: { xml: string }) => suspend(runPreauthIq(context, p.xml)),
  forgetSasl: () => { xmpp().saslExchanges.delete(self()); },
  /** Runs SASL step `n`; its outcome comes back as a 'sasl' event (a failure, if the step threw). */
  saslStep: (_: unknown, p: SaslInput & { n: number }) => {
    const reply = later();
    runSaslStep(p).then((o) => reply({ type: 'sasl', n: p.n, ...o }), (err: Error) => reply({ type: 'sasl', n: p.n, step: failure('temporary-auth-failure', err.message) }));
  },
};

export const guards = {
  /** An IQ before authentication that a loaded module takes (XEP-0077 registration). */
  preauthIqTaken: ({ context, event }: { context: SessionCtx; event: EventObject }) => {
    const s = event as Extract<ToSession, { type: 'stanza' }>;
    if (s.h.name !== 'iq' || (s.h.type !== 'get' && s.h.type !== 'set') || (s.h.to !== null && s.h.to !== context.host)) return false;
    const ns = parsed(s.xml).getChildren()[0]?.getXmlns();
    return ns !== undefined && xmpp().modules.preauthHandler(s.h.type, ns) !== undefined;
  },
  tlsRequired: () => xmpp().settings.requireEncryption,
  sasl2Offered: () => xmpp().settings.sasl2,
  /** A stream header's 'to' is a host of ours. */
  servedHost: ({ event }: { event: EventObject }) => { const host = hostOf(event as unknown as Header); return host !== null && xmpp().domains.isHost(host); },
  /** After a node restart the connection this session served is gone (it lived in the old process). */
  connGone: ({ context }: { context: SessionCtx }) => !context.conn.startsWith(`conn:${xmpp().settings.bootId}.`),
};

/** A module's answer to an IQ before authentication, and what the stream keeps after it. */
export interface PreauthOutcome { xml: string; kept: Record<string, string> }

async function runPreauthIq(ctx: SessionCtx, xml: string): Promise<PreauthOutcome> {
  const svc = xmpp();
  const stanza = parsed(xml);
  const payload = stanza.getChildren()[0]!;
  const type = stanza.attr('type') as 'get' | 'set';
  const handler = svc.modules.preauthHandler(type, payload.getXmlns() ?? '');
  const kept = { ...ctx.kept };
  let answer = '';
  if (handler) {
    const base: Omit<PreauthIq, 'reply' | 'error'> = {
      host: ctx.host!, remote: ctx.remote, secure: ctx.secure, stanza, payload, type, kept,
      keep: (k, v) => { kept[k] = v; },
      storage: svc.storage, now: () => svc.now(),
      route: () => { throw new Error('nothing is routed for a stream before it authenticates'); },
      log: (level, text) => log(level, `${ctx.remote} (not authenticated): ${text}`),
      operator: (command, args = {}) => callNode('admin', command, [args]),
    };
    try {
      await dispatchIq(handler, base, stanza, (out) => { answer = out; });
    } catch (err) {
      // Answered internal-server-error; the stream goes on (it has no state a bug could have broken).
      log('error', `a request before authentication failed: ${(err as Error).stack ?? String(err)}`);
    }
  } else {
    answer = stanzaError(stanza, 'cancel', 'service-unavailable') ?? ''; // unloaded since the guard looked
  }
  return { xml: answer, kept };
}

/** One SASL step: the first (`<auth/>`: choose the mechanism, start it) or a later (`<response/>`). */
export type SaslInput =
  | { op: 'start'; mechanism: string; payload: string; secure: boolean; cb: SessionCtx['cb']; cbRefused: boolean; host: string; remote: string; tokens?: TokenAsk }
  | { op: 'step'; payload: string; tokens?: TokenAsk };

/** FAST (XEP-0484) on a SASL2 exchange over TLS from an installation that named itself: what to do
 *  with tokens once authenticated. */
export interface TokenAsk { agent: string; host: string; request: string | null; invalidate: boolean }

/** A step's outcome, with a token issued on its success. */
export interface SaslOutcome { step: SaslStep; token?: { token: string; expiry: number } }

const failure = (condition: 'incorrect-encoding' | 'temporary-auth-failure', reason: string): SaslStep => ({ kind: 'failure', condition, reason });

/**
 * The mechanism in progress is kept by the thread (xmpp.saslExchanges, by session address), not in
 * the snapshot: a hot reload of the session kind goes on with it; a crash fails the exchange. It is
 * forgotten on the final step, or when the machine leaves authenticating.
 */
async function runSaslStep(input: SaslInput): Promise<SaslOutcome> {
  const svc = xmpp();
  const key = self();
  const finish = (step: SaslStep) => { if (step.kind !== 'challenge') svc.saslExchanges.delete(key); return step; };
  if (input.op === 'step') {
    const server = svc.saslExchanges.get(key);
    if (!server) return { step: failure('temporary-auth-failure', 'no SASL exchange in progress') };
    const data = decodeSaslPayload(input.payload);
    if (!data) return { step: finish(failure('incorrect-encoding', 'response is not base64')) };
    return withToken(svc, input.tokens, finish(await server.step(data)));
  }
  const cbData: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(input.cb ?? {})) if (v) cbData[k] = Buffer.from(v, 'base64');
  const common = { lookup: svc.lookup(input.host), serverSecret: svc.settings.serverSecret, domain: input.host, throttle: svc.throttle, address: input.remote };
  let used: FastToken | undefined;
  let server: SaslServer;
  if (isHtMechanism(input.mechanism)) {
    // FAST: a token of this installation's, only on SASL2 over TLS.
    const ask = input.tokens;
    if (!ask || !input.secure) return { step: { kind: 'failure', condition: 'invalid-mechanism', reason: 'a token login needs SASL2 over TLS and a user-agent id' } };
    const binding = HT_MECHANISMS[input.mechanism];
    server = new HtServer({
      ...common, mechanism: input.mechanism, bindingData: binding ? cbData[binding] : undefined,
      useToken: async (username, matches) => {
        let local: string;
        try { local = prepareLocalpart(username); } catch { return undefined; }
        used = await svc.fast.use(`${local}@${ask.host}`, ask.agent, input.mechanism, matches, ask.invalidate);
        return used && { token: used.token, username: local };
      },
    });
  } else {
    const sel = selectMechanism(input.mechanism, offerOf(input, svc.settings), { ...common, channelBindingData: cbData, bindingRefused: input.cbRefused });
    if (!sel.ok) return { step: { kind: 'failure', condition: sel.condition, reason: sel.condition === 'invalid-mechanism' ? 'mechanism not offered' : 'TLS first' } };
    server = sel.server;
  }
  const initial = input.payload === '' ? undefined : decodeSaslPayload(input.payload);
  if (input.payload !== '' && !initial) return { step: failure('incorrect-encoding', 'initial response is not base64') };
  svc.saslExchanges.set(key, server);
  return withToken(svc, input.tokens, finish(await server.start(initial)), used);
}

/**
 * A success with a new token when the client asked for one (<request-token/>), or when the token it
 * logged in with is past half its life (XEP-0484 rotation; the old one works until the new one is
 * used). A client logging out with its token (`invalidate`) gets none it did not ask for.
 */
async function withToken(svc: XmppService, ask: TokenAsk | undefined, step: SaslStep, used?: FastToken): Promise<SaslOutcome> {
  if (step.kind !== 'success' || !ask) return { step };
  const rotate = used && !ask.invalidate && used.expiry - svc.now() < svc.fast.lifetimeMs / 2;
  const mechanism = ask.request && isHtMechanism(ask.request) ? ask.request : rotate ? used!.mechanism : null;
  if (!mechanism) return { step };
  const t = await svc.fast.issue(`${step.authcid}@${ask.host}`, ask.agent, mechanism);
  return { step, token: { token: t.token, expiry: t.expiry } };
}

/**
 * Logins at info level, one line each in a fixed format an operator's tools can match (fail2ban:
 * `login failed: user=\S+ ip=<HOST> `). Never a password: `reason` is the mechanism's own text.
 * "login failed" is a password (or proof) that was checked and wrong, or an attempt the throttle
 * stopped; a mechanism or channel-binding type refused before any check is no failed password (a
 * client tries its -PLUS mechanisms first and falls back) and is a debug line, `login refused`, that
 * the recipe does not match. Failures are limited to 20 lines a second per scheduler; how many were
 * left out rides on the next.
 */
const failureLines = { since: 0, lines: 0, dropped: 0 };
function logLogin(ctx: SessionCtx, step: Exclude<SaslStep, { kind: 'challenge' }>): void {
  const who = `user=${step.authcid ?? '?'}@${ctx.host} ip=${ctx.remote} mechanism=${ctx.mechanism}`;
  if (step.kind === 'success') { log('info', `login: ${who}`); return; }
  if (!step.wrongCredentials && step.retryAfterMs === undefined) {
    log('debug', `login refused before any password check: ${who} condition=${step.condition} reason=${JSON.stringify(step.reason)}`);
    return;
  }
  const now = Date.now();
  if (now - failureLines.since >= 1000) { failureLines.since = now; failureLines.lines = 0; }
  if (failureLines.lines >= 20) { failureLines.dropped++; return; }
  failureLines.lines++;
  const dropped = failureLines.dropped ? ` (${failureLines.dropped} more not logged)` : '';
  failureLines.dropped = 0;
  log('info', `login failed: ${who} condition=${step.condition} reason=${JSON.stringify(step.reason)}${dropped}`);
}
