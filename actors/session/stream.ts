// The session's protocol work as plain functions of (context, input) → effects + context patch; the
// machine (index.ts) decides which run in which state. Effects go out through the runtime API.
import { randomBytes } from 'node:crypto';
import { courier, later, log, release, retain, self, send, sendDurable, service } from '../../src/runtime/api.ts';
import type { ChannelBindings, ConnInfo, Delivery, ToConn } from '../../src/net/c2s-protocol.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { restamp, serialize, streamOpen, x } from '../../src/xml/builder.ts';
import { stanzaError, streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import { JidError, parseJid, prepareResourcepart } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { offeredMechanisms, selectMechanism, decodeSaslPayload, encodeSaslPayload } from '../../src/sasl/mechanisms.ts';
import type { SaslServer, SaslStep } from '../../src/sasl/types.ts';
import type { ToUser } from '../user/messages.ts';

export interface SessionCtx {
  conn: string;
  remote: string;
  secure: boolean;
  directTls: boolean;
  cb: ChannelBindings | null;
  host: string | null;
  streamId: string;
  lang: string | null;
  /** Authenticated localpart; the bare JID is user@host. */
  user: string | null;
  jid: string | null;
  saslFailures: number;
  /** The client tried a channel-binding type we do not offer (see MechanismOptions.bindingRefused). */
  cbRefused?: boolean;
  /** The client said it is not in use (XEP-0352 <inactive/>): what can wait, waits. */
  inactive?: boolean;
  /** XEP-0198 is enabled on this stream. */
  sm?: boolean;
}

export const initialContext = (info: ConnInfo): SessionCtx => ({
  conn: info.conn, remote: info.remote, secure: info.secure, directTls: info.directTls, cb: info.cb,
  host: info.host, streamId: '', lang: null, user: null, jid: null, saslFailures: 0,
});

const xmpp = () => service<XmppService>('xmpp');
export const toConn = (ctx: SessionCtx, m: ToConn) => send(ctx.conn, m);
/** To the account's user actor (same thread by placement once bound). */
export const toUser = (ctx: SessionCtx, m: ToUser) => send(`user:${ctx.user}@${ctx.host}`, m);
/** The bound resource. */
export const resourceOf = (ctx: SessionCtx): string => ctx.jid!.slice(ctx.jid!.indexOf('/') + 1);
const write = (ctx: SessionCtx, xml: string) => toConn(ctx, { type: 'write', xml });

/** SASL exchanges in progress; not in the snapshot (a crash or reload mid-exchange fails it). */
const saslServers = new Map<string, SaslServer>();

export type Next = 'open' | 'securing' | 'authenticating' | 'authenticated' | 'binding' | 'close' | 'stay';

/** Ends the stream: stream error (with our header if none was sent) and close. */
export function streamFail(ctx: SessionCtx, condition: StreamErrorCondition, text?: string, headerSent = true): Next {
  toConn(ctx, { type: 'close', xml: (headerSent ? '' : streamOpen({ from: ctx.host ?? undefined, id: 'error' })) + streamError(condition, text) });
  return 'close';
}

// ---- stream header and features -------------------------------------------------------------------

export function onHeader(ctx: SessionCtx, h: { to: string | null; version: string | null; lang: string | null; xmlns: string }): { patch: Partial<SessionCtx>; next: Next } {
  const svc = xmpp();
  const streamId = randomBytes(9).toString('base64url');
  if (h.xmlns !== NS.CLIENT) return { patch: {}, next: streamFail(ctx, 'invalid-namespace', undefined, false) };
  let host: string | null = null;
  try { host = h.to ? parseJid(h.to).domain : null; } catch { /* answered below */ }
  if (!host || !svc.domains.isHost(host)) return { patch: {}, next: streamFail(ctx, 'host-unknown', `this server does not serve ${h.to ?? '(no to)'}`, false) };
  if (ctx.host && ctx.host !== host && ctx.user) return { patch: {}, next: streamFail(ctx, 'host-unknown', 'the stream changed host', false) };
  if (!h.version || !/^1\.\d+$/.test(h.version)) return { patch: {}, next: streamFail(ctx, 'unsupported-version', 'version 1.0 is required', false) };
  const lang = h.lang ?? 'en';
  const open = streamOpen({ from: host, id: streamId, lang, ...(ctx.jid ? { to: ctx.jid } : {}) });
  const patch: Partial<SessionCtx> = { host, streamId, lang };
  const c = { ...ctx, ...patch };
  write(c, open + features(c));
  return { patch, next: 'stay' };
}

function features(ctx: SessionCtx): string {
  const svc = xmpp();
  const parts: string[] = [];
  if (!ctx.user) {
    if (!ctx.secure) parts.push(`<starttls xmlns="${NS.TLS}">${svc.settings.requireEncryption ? '<required/>' : ''}</starttls>`);
    if (ctx.secure || !svc.settings.requireEncryption) {
      const offer = offerContext(ctx);
      const mechs = offeredMechanisms(offer);
      parts.push(`<mechanisms xmlns="${NS.SASL}">${mechs.map((m) => `<mechanism>${m}</mechanism>`).join('')}</mechanisms>`);
      // XEP-0440: which binding types the -PLUS mechanisms take on this connection.
      if (offer.channelBindings.length) parts.push(`<sasl-channel-binding xmlns="${NS.SASL_CB}">${offer.channelBindings.map((t) => `<channel-binding type="${t}"/>`).join('')}</sasl-channel-binding>`);
    }
  } else {
    parts.push(`<bind xmlns="${NS.BIND}"/>`, `<session xmlns="${NS.SESSION}"><optional/></session>`, `<sm xmlns="${NS.SM}"/>`, `<csi xmlns="${NS.CSI}"/>`);
    parts.push(...svc.modules.streamFeatures);
  }
  return `<stream:features>${parts.join('')}</stream:features>`;
}

function offerContext(ctx: SessionCtx) {
  const svc = xmpp();
  return {
    tls: ctx.secure,
    channelBindings: ctx.cb ? (Object.keys(ctx.cb) as Array<keyof ChannelBindings>) : [],
    allowPlainWithoutTls: !svc.settings.requireEncryption,
  };
}

// ---- pre-auth: STARTTLS and SASL ---------------------------------------------------------------------

export function onPreAuth(ctx: SessionCtx, xml: string, h: StanzaHeader): Next {
  const svc = xmpp();
  if (h.name === 'starttls' && h.xmlns === NS.TLS) {
    if (ctx.secure) return streamFail(ctx, 'policy-violation', 'TLS is already on');
    toConn(ctx, { type: 'starttls', xml: `<proceed xmlns="${NS.TLS}"/>` });
    return 'securing';
  }
  if (!ctx.secure && svc.settings.requireEncryption) {
    // RFC 6120 §5.3.1: with TLS required, anything but STARTTLS first is a policy violation.
    return streamFail(ctx, 'policy-violation', 'STARTTLS is required');
  }
  if (h.xmlns === NS.SASL && h.name === 'auth') return startSasl(ctx, parseElement(xml, NS.SASL));
  if (h.xmlns === NS.CLIENT) {
    // Stanzas before authentication: RFC 6120 §6.4.1 / §7.1.
    return streamFail(ctx, 'not-authorized');
  }
  if (h.xmlns === NS.SM) { onSmRequest(ctx, xml, h, 'unauthenticated'); return 'stay'; }
  return streamFail(ctx, 'unsupported-stanza-type', `${h.name} in ${h.xmlns}`);
}

function startSasl(ctx: SessionCtx, auth: XmlElement): Next {
  const svc = xmpp();
  const mechanism = auth.attr('mechanism') ?? '';
  const cbData: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(ctx.cb ?? {})) if (v) cbData[k] = Buffer.from(v, 'base64');
  const sel = selectMechanism(mechanism, offerContext(ctx), {
    lookup: svc.lookup(ctx.host!), serverSecret: svc.settings.serverSecret, domain: ctx.host!,
    throttle: svc.throttle, address: ctx.remote, channelBindingData: cbData, bindingRefused: ctx.cbRefused === true,
  });
  if (!sel.ok) {
    logLogin(ctx, mechanism, { kind: 'failure', condition: sel.condition, reason: sel.condition === 'invalid-mechanism' ? 'mechanism not offered' : 'TLS first' });
    write(ctx, saslFailure(sel.condition));
    return 'stay';
  }
  const text = auth.text();
  const initial = text === '' ? undefined : decodeSaslPayload(text);
  if (text !== '' && !initial) { write(ctx, saslFailure('incorrect-encoding')); return 'stay'; }
  saslServers.set(self(), sel.server);
  const reply = later();
  sel.server.start(initial).then((step) => reply({ type: 'sasl', step }), (err: Error) => reply({ type: 'sasl', step: { kind: 'failure', condition: 'temporary-auth-failure', reason: err.message } }));
  return 'authenticating';
}

export function onSaslInput(ctx: SessionCtx, xml: string, h: StanzaHeader): Next {
  const server = saslServers.get(self());
  if (h.xmlns !== NS.SASL) return streamFail(ctx, 'not-authorized');
  if (h.name === 'abort' || !server) {
    saslServers.delete(self());
    write(ctx, saslFailure(h.name === 'abort' ? 'aborted' : 'temporary-auth-failure'));
    return 'open';
  }
  if (h.name !== 'response') return streamFail(ctx, 'policy-violation', `${h.name} during SASL`);
  const data = decodeSaslPayload(parseElement(xml, NS.SASL).text());
  if (!data) { saslServers.delete(self()); write(ctx, saslFailure('incorrect-encoding')); return 'open'; }
  const reply = later();
  server.step(data).then((step) => reply({ type: 'sasl', step }), (err: Error) => reply({ type: 'sasl', step: { kind: 'failure', condition: 'temporary-auth-failure', reason: err.message } }));
  return 'stay';
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
function logLogin(ctx: SessionCtx, mechanism: string, step: Extract<SaslStep, { kind: 'success' | 'failure' }>): void {
  const who = `user=${step.authcid ?? '?'}@${ctx.host} ip=${ctx.remote} mechanism=${mechanism}`;
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

export function onSaslStep(ctx: SessionCtx, step: SaslStep): { patch: Partial<SessionCtx>; next: Next } {
  if (step.kind === 'challenge') { write(ctx, `<challenge xmlns="${NS.SASL}">${encodeSaslPayload(step.data)}</challenge>`); return { patch: {}, next: 'stay' }; }
  logLogin(ctx, saslServers.get(self())?.mechanism ?? '?', step);
  saslServers.delete(self());
  if (step.kind === 'success') {
    const user = step.authcid;
    const jid = `${user}@${ctx.host}`;
    toConn(ctx, { type: 'authenticated', xml: `<success xmlns="${NS.SASL}">${step.data ? encodeSaslPayload(step.data) : ''}</success>`, jid });
    return { patch: { user }, next: 'authenticated' };
  }
  // Only wrong credentials count towards closing the stream: a client that tries mechanisms or
  // channel-binding types we refuse must still be able to fall back (slixmpp does).
  const failures = ctx.saslFailures + (step.wrongCredentials ? 1 : 0);
  const patch: Partial<SessionCtx> = { saslFailures: failures, ...(step.unsupportedBinding ? { cbRefused: true } : {}) };
  // RFC 6120 §6.4.5: the server may close after a configurable number of retries; the last failure
  // is still answered, right before the stream error.
  if (failures >= 5) {
    toConn(ctx, { type: 'close', xml: saslFailure(step.condition) + streamError('policy-violation', 'too many failed authentication attempts') });
    return { patch, next: 'close' };
  }
  // The throttle's delay slows password guessing without holding the actor.
  if (step.delayMs) setTimeout(courierWrite(ctx, saslFailure(step.condition)), step.delayMs);
  else write(ctx, saslFailure(step.condition));
  return { patch, next: 'open' };
}

function courierWrite(ctx: SessionCtx, xml: string): () => void {
  const c = courier();
  return () => c(ctx.conn, { type: 'write', xml } satisfies ToConn);
}

function saslFailure(condition: string): string {
  return `<failure xmlns="${NS.SASL}"><${condition}/></failure>`;
}

// ---- bind -------------------------------------------------------------------------------------

/** The bind IQ: asks the user actor for the resource (it resolves conflicts and session limits).
 *  Anything else before bind is answered, and the connection sends the next stanza. */
export function onBindInput(ctx: SessionCtx, xml: string, h: StanzaHeader): { next: Next; pending?: { id: string; resource: string } } {
  if (h.name !== 'iq') return { next: streamFail(ctx, 'not-authorized', 'bind a resource first') };
  const iq = parseElement(xml);
  const bind = iq.child('bind', NS.BIND);
  if (h.type !== 'set' || !bind) {
    write(ctx, stanzaError(h, 'cancel', 'not-allowed', 'bind a resource first') ?? '');
    toConn(ctx, { type: 'next' });
    return { next: 'stay' };
  }
  const asked = bind.getChildText('resource', NS.BIND);
  let resource: string;
  try {
    resource = asked ? prepareResourcepart(asked) : randomBytes(6).toString('base64url');
  } catch {
    write(ctx, stanzaError(h, 'modify', 'bad-request', 'invalid resource') ?? '');
    toConn(ctx, { type: 'next' });
    return { next: 'stay' };
  }
  const bare = `${ctx.user}@${ctx.host}`;
  send(`user:${bare}`, { type: 'bind', resource, session: `session:${bare}/${resource}` } satisfies ToUser);
  return { next: 'stay', pending: { id: h.id ?? '', resource } };
}

export function onBound(ctx: SessionCtx, id: string, resource: string): Partial<SessionCtx> {
  const jid = `${ctx.user}@${ctx.host}/${resource}`;
  write(ctx, serialize(x('iq', { type: 'result', id }, x('bind', { xmlns: NS.BIND }, x('jid', null, jid)))));
  return { jid };
}

// ---- XEP-0198 requests -------------------------------------------------------------------------

/** Where a stream is for XEP-0198: <resume/> belongs after authentication and before bind, <enable/>
 *  after bind, once. */
export type SmStage = 'unauthenticated' | 'authenticated' | 'bound';

/**
 * <enable/> and <resume/> (and anything else of XEP-0198 but the acks, which the connection counts):
 * allowed or refused by where the stream is; what is allowed the connection carries out (it keeps the
 * counters and the queue, and the streams waiting to be resumed).
 */
export function onSmRequest(ctx: SessionCtx, xml: string, h: StanzaHeader, stage: SmStage): Partial<SessionCtx> {
  const failed = (condition: 'unexpected-request' | 'feature-not-implemented') =>
    write(ctx, serialize(x('failed', { xmlns: NS.SM }, x(condition, { xmlns: NS.STANZAS }))));
  let patch: Partial<SessionCtx> = {};
  if (h.name === 'enable') {
    if (stage !== 'bound' || ctx.sm) failed('unexpected-request');
    else {
      toConn(ctx, { type: 'sm-enable', resume: /^(true|1)$/.test(parseElement(xml, NS.SM).attr('resume') ?? '') });
      patch = { sm: true };
    }
  } else if (h.name === 'resume') {
    // Tried by the connection, which sends the next stanza if it fails (on success the stream is another's).
    if (stage === 'authenticated') {
      const el = parseElement(xml, NS.SM);
      toConn(ctx, { type: 'sm-resume', previd: el.attr('previd') ?? '', h: Number(el.attr('h')) });
      return {};
    }
    failed('unexpected-request');
  } else {
    failed('feature-not-implemented');
  }
  // Before bind the connection sends the next stanza once this one is answered.
  if (stage === 'authenticated') toConn(ctx, { type: 'next' });
  return patch;
}

/** First message at the new address: now the connection and the user actor may talk to us here. */
export function onArrived(ctx: SessionCtx): void {
  toConn(ctx, { type: 'bound', address: self() });
  onArrivedUser(ctx);
}

export function onArrivedUser(ctx: SessionCtx): void {
  toUser(ctx, { type: 'arrived', resource: resourceOf(ctx) });
}

// ---- established: stanzas from the client ---------------------------------------------------

/** Reports an inbound stanza as handled to the connection (XEP-0198 counts it from then on). */
function handled(ctx: SessionCtx, seq: number): void {
  if (seq > 0) toConn(ctx, { type: 'handled', seq });
}

/**
 * A client's stanza: the stream's own checks (RFC 6120 §8.1: namespace, a 'from' that is ours, a
 * well-formed 'to', an IQ's id and type), then stamped with the full JID and handed to the
 * account's user actor (same thread), which runs the outbound hooks and routes it. The session
 * decides no route.
 */
export function onClientStanza(ctx: SessionCtx, xml0: string, h0: StanzaHeader, seq: number): Next {
  if (h0.xmlns !== NS.CLIENT || (h0.name !== 'message' && h0.name !== 'presence' && h0.name !== 'iq')) {
    if (h0.name === 'iq' || h0.name === 'message' || h0.name === 'presence') return streamFail(ctx, 'invalid-namespace');
    return streamFail(ctx, 'unsupported-stanza-type', h0.name);
  }
  // RFC 6120 §8.1.2.1: the server stamps the full JID; a client-supplied 'from' must be ours.
  if (h0.from !== null && h0.from !== ctx.jid) {
    let ok = false;
    try { const f = parseJid(h0.from), me = parseJid(ctx.jid!); ok = f.equals(me) || (f.isBare() && f.bareEquals(me)); } catch { /* not ok */ }
    if (!ok) return streamFail(ctx, 'invalid-from');
  }
  if (h0.to !== null) {
    try { parseJid(h0.to); } catch (err) {
      if (err instanceof JidError) { reply(ctx, stanzaError(h0, 'modify', 'jid-malformed')); handled(ctx, seq); return 'stay'; }
      throw err;
    }
  }
  if (h0.name === 'iq' && (!h0.id || !['get', 'set', 'result', 'error'].includes(h0.type ?? ''))) {
    reply(ctx, stanzaError(h0, 'modify', 'bad-request', 'an iq needs an id and a type'));
    handled(ctx, seq);
    return 'stay';
  }
  const { xml, header: h } = restamp(xml0, h0, { from: ctx.jid! });
  toUser(ctx, { type: 'client', xml, h, resource: resourceOf(ctx), conn: ctx.conn, seq });
  return 'stay';
}

function reply(ctx: SessionCtx, xml: string | null): void {
  if (xml) toConn(ctx, { type: 'deliver', xml });
}

/** A stanza for the client (from its user actor): the receipt is released once the client has it.
 *  While the client is inactive (XEP-0352), what can wait is held by the connection. */
export function onDeliver(ctx: SessionCtx, d: Delivery): void {
  // A durable delivery (offline mail) is kept in our mailbox until the client has it.
  const m: ToConn = { type: 'deliver', xml: d.xml, receipt: d.receipt ?? retain(), sent: d.sent };
  if (ctx.inactive && canWait(d.xml)) m.hold = true;
  toConn(ctx, m);
}

/** `<active/>` or `<inactive/>` (XEP-0352): becoming active writes what was held. */
export function onClientState(ctx: SessionCtx, name: string): Partial<SessionCtx> {
  if (name === 'active') { toConn(ctx, { type: 'flush' }); return { inactive: false }; }
  if (name === 'inactive') return { inactive: true };
  return {};
}

const ENCRYPTED = ['eu.siacs.conversations.axolotl', 'urn:xmpp:omemo:2', 'urn:xmpp:openpgp:0', 'urn:xmpp:eme:0'];
const CALLS = ['urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1'];

/**
 * Whether a stanza may wait while its client is inactive: presence updates, chat states, receipts,
 * markers, PEP events and headlines may; what a person would want now may not: a message with a
 * body or a subject (directly or in a carbon), an encrypted one, an invitation, a call, an error,
 * a subscription request, any IQ.
 */
export function canWait(xml: string): boolean {
  const st = parseElement(xml);
  if (st.name === 'iq') return false;
  const type = st.attr('type');
  if (st.name === 'presence') return type === undefined || type === 'unavailable' || type === 'error';
  if (type === 'error') return false;
  if (type === 'headline') return true;
  if (st.child('sent', NS.CARBONS)) return false;
  const m = st.child('received', NS.CARBONS)?.child('forwarded', NS.FORWARD)?.child('message') ?? st;
  if (m.child('body') || m.child('subject')) return false;
  for (const c of m.children) {
    if (typeof c === 'string') continue;
    const ns = c.getXmlns();
    if (ENCRYPTED.includes(ns ?? '') || CALLS.includes(ns ?? '') || ns === NS.CONFERENCE) return false;
    if (ns === NS.MUC_USER && c.child('invite', NS.MUC_USER)) return false;
  }
  return true;
}

/** After a node restart the connection this session served is gone (it lived in the old process). */
export function connGone(ctx: SessionCtx): boolean {
  return !ctx.conn.startsWith(`conn:${xmpp().settings.bootId}.`);
}

/** What this session could not deliver goes back to the user actor, which routes it again. */
export function bounce(ctx: SessionCtx, items: readonly Delivery[]): void {
  if (!ctx.user || !ctx.host) return;
  const bare = `${ctx.user}@${ctx.host}`;
  for (const it of items) {
    const receipt = it.receipt;
    sendDurable(`user:${bare}`, { type: 'redeliver', xml: it.xml, except: ctx.jid ?? '', sent: it.sent } satisfies ToUser).then(() => {
      if (receipt) release(receipt);
    });
  }
}
