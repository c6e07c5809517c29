// The client stream's protocol (RFC 6120, XEP-0198, XEP-0352) as pure functions of the session's
// context and what the client sent: what the machine (machine.ts) decides with. No I/O here: what
// the server knows (its hosts, its policy, its modules' features) comes in as a StreamEnv.
import type { ChannelBindings, ConnInfo } from '../../src/net/c2s-protocol.ts';
import { createHash } from 'node:crypto';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { serialize, streamOpen, x } from '../../src/xml/builder.ts';
import { stanzaError, streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import { JidError, parseJid, prepareResourcepart } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { offeredMechanisms, type OfferContext } from '../../src/sasl/mechanisms.ts';
import { offeredHt } from '../../src/sasl/ht.ts';
import { sasl2SuccessXml } from '../../src/sasl/sasl2.ts';
import type { PreauthFeatures } from '../../src/xmpp/modules.ts';

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
  /** The mechanism of the SASL exchange in progress (for the login line), and its step count. */
  mechanism: string;
  saslSeq: number;
  /** The exchange in progress is XEP-0388's (SASL2), with what the client asked to have done with it. */
  sasl2?: Sasl2Request | null;
  /** The client tried a channel-binding type we do not offer (see MechanismOptions.bindingRefused). */
  cbRefused?: boolean;
  /** What modules kept on this stream before authentication (XEP-0445: an accepted invitation). */
  kept?: Record<string, string>;
  /** The client said it is not in use (XEP-0352 <inactive/>): what can wait, waits. */
  inactive?: boolean;
  /** XEP-0198 is enabled on this stream. */
  sm?: boolean;
  /** The bind request the user actor is answering: its id and the resource asked for. */
  bindId: string;
  bindResource: string;
  /** Leaving waits for the user actor's 'unbound' and the connection's 'drained' (see unbinding). */
  awaitUser: boolean;
  awaitConn: boolean;
}

export const initialContext = (info: ConnInfo): SessionCtx => ({
  conn: info.conn, remote: info.remote, secure: info.secure, directTls: info.directTls, cb: info.cb,
  host: info.host, streamId: '', lang: null, user: null, jid: null, saslFailures: 0, mechanism: '', saslSeq: 0,
  bindId: '', bindResource: '', awaitUser: false, awaitConn: false,
});

/** What a client's SASL2 <authenticate/> asks for besides authentication (XEP-0388, XEP-0386). */
export interface Sasl2Request {
  /** <user-agent id=…/>: a stable id of the client's installation (never shown to anyone). */
  agent: string | null;
  /** Bind 2: bind a resource now (named after `tag`), with XEP-0198 enabled inline if `sm`, starting
   *  in this XEP-0352 state if `csi`, and `inline`: what it asks of modules (serialized elements). */
  bind: { tag: string | null; sm: { resume: boolean } | null; csi?: 'active' | 'inactive'; inline?: string[] } | null;
  /** FAST (XEP-0484): a token asked for (<request-token mechanism=…/>); the token logged in with to
   *  be revoked (<fast invalidate='true'/>). */
  fast: { request: string | null; invalidate: boolean };
  /** XEP-0198 inline: take over this detached stream (then no bind). */
  resume: { previd: string; h: number } | null;
  /** What a success held back (until the resumption or the bind is done) will say: the final SASL
   *  data (base64), a new token and a failed resumption (serialized). */
  data?: string | null;
  token?: string | null;
  failed?: string | null;
  /** What modules answered the bind with, for <bound/> (XEP-0313 metadata). */
  bound?: string[];
}

/** What the server knows that a stream's decisions read: injected (machine.provide in tests). */
export interface StreamEnv {
  requireEncryption: boolean;
  /** Offer XEP-0388's SASL2 with Bind 2 (config c2s_sasl2). */
  sasl2: boolean;
  /** The namespaces the loaded modules take inside a Bind 2 request (carbons). */
  bind2Features: readonly string[];
  /** The features the loaded modules add after bind (serialized elements). */
  moduleFeatures: readonly string[];
  /** The features the loaded modules offer before authentication on a host. */
  preauthFeatures(host: string, secure: boolean): PreauthFeatures;
}

/** A transition's guard and actions may each read the stanza it is about: it is parsed once. */
let last: { xml: string; ns: string | undefined; el: XmlElement } | null = null;
export function parsed(xml: string, ns?: string): XmlElement {
  if (last?.xml === xml && last.ns === ns) return last.el;
  const el = parseElement(xml, ns);
  last = { xml, ns, el };
  return el;
}

/** The bound resource. */
export const resourceOf = (ctx: SessionCtx): string => ctx.jid!.slice(ctx.jid!.indexOf('/') + 1);
export const bareOf = (ctx: SessionCtx): string => `${ctx.user}@${ctx.host}`;

// ---- the stream header ---------------------------------------------------------------------------

export type Header = { to: string | null; version: string | null; lang: string | null; xmlns: string };

/** The domain a header asks for, or null when its 'to' is missing or no JID. */
export function hostOf(h: Header): string | null {
  try { return h.to ? parseJid(h.to).domain : null; } catch { return null; }
}

export const versionOk = (h: Header): boolean => !!h.version && /^1\.\d+$/.test(h.version);

/** Our stream header and features, for a stream at `ctx` (host and id already set). */
export function headerXml(ctx: SessionCtx, env: StreamEnv): string {
  return streamOpen({ from: ctx.host!, id: ctx.streamId, lang: ctx.lang ?? 'en', ...(ctx.jid ? { to: ctx.jid } : {}) }) + featuresXml(ctx, env);
}

/** Features differ only by these few facts: built once per combination (every login asks twice). */
const featuresMemo = new Map<string, string>();

export function featuresXml(ctx: SessionCtx, env: StreamEnv): string {
  const preauth = !ctx.user && (ctx.secure || !env.requireEncryption) ? env.preauthFeatures(ctx.host!, ctx.secure) : NONE;
  const key = `${ctx.user !== null}|${ctx.jid !== null}|${ctx.sm === true}|${ctx.secure}|${ctx.cb ? Object.keys(ctx.cb).join() : ''}|${env.requireEncryption}|${env.sasl2}|${ctx.user ? env.moduleFeatures.join('') : env.bind2Features.join() + preauth.xml}`;
  let xml = featuresMemo.get(key);
  if (xml === undefined) {
    if (featuresMemo.size > 64) featuresMemo.clear(); // a few combinations, unless modules keep changing
    featuresMemo.set(key, (xml = buildFeatures(ctx, env, preauth)));
  }
  return xml;
}

const NONE: PreauthFeatures = { elements: [], xml: '' };

function buildFeatures(ctx: SessionCtx, env: StreamEnv, preauth: PreauthFeatures): string {
  if (ctx.user) {
    // After a SASL2 success with Bind 2 the stream is bound already (no restart): no bind, and no
    // <sm/> once XEP-0198 was enabled inline.
    const own = [
      ...(ctx.jid ? [] : [x('bind', { xmlns: NS.BIND })]),
      ...(ctx.sm ? [] : [x('sm', { xmlns: NS.SM })]), x('csi', { xmlns: NS.CSI }),
    ];
    return `<stream:features>${own.map(serialize).join('')}${env.moduleFeatures.join('')}</stream:features>`;
  }
  const offer = offerOf(ctx, env);
  const mechanisms = offeredMechanisms(offer).map((m) => x('mechanism', null, m));
  return serialize(x('stream:features', null,
    !ctx.secure && x('starttls', { xmlns: NS.TLS }, env.requireEncryption && x('required')),
    (ctx.secure || !env.requireEncryption) && [
      x('mechanisms', { xmlns: NS.SASL }, mechanisms),
      // XEP-0440: which binding types the -PLUS mechanisms take on this connection.
      offer.channelBindings.length > 0 && x('sasl-channel-binding', { xmlns: NS.SASL_CB }, offer.channelBindings.map((t) => x('channel-binding', { type: t }))),
      // XEP-0388 with XEP-0386 inline: authenticate and bind (XEP-0198 enabled) in one round trip.
      env.sasl2 && x('authentication', { xmlns: NS.SASL2 }, mechanisms, x('inline', null,
        x('bind', { xmlns: NS.BIND2 }, x('inline', null, [NS.SM, NS.CSI, ...env.bind2Features].map((f) => x('feature', { var: f })))),
        x('sm', { xmlns: NS.SM }),
        // XEP-0484: tokens only over TLS (a token proof can be replayed by whoever reads it).
        ctx.secure && x('fast', { xmlns: NS.FAST }, offeredHt(offer.channelBindings).map((m) => x('mechanism', null, m))))),
      preauth.elements,
    ]));
}

export function offerOf(ctx: Pick<SessionCtx, 'secure' | 'cb'>, env: Pick<StreamEnv, 'requireEncryption'>): OfferContext {
  return {
    tls: ctx.secure,
    channelBindings: ctx.cb ? (Object.keys(ctx.cb) as Array<keyof ChannelBindings>) : [],
    allowPlainWithoutTls: !env.requireEncryption,
  };
}

/** A stream error and the end of the stream (with our header first if we sent none). */
export function failXml(ctx: Pick<SessionCtx, 'host'>, condition: StreamErrorCondition, text?: string, headerSent = true): string {
  return (headerSent ? '' : streamOpen({ from: ctx.host ?? undefined, id: 'error' })) + streamError(condition, text);
}

// ---- SASL --------------------------------------------------------------------------------------

/** A failure in the profile of the exchange (RFC 6120's, or XEP-0388's with RFC 6120's condition). */
export const saslFailureXml = (condition: string, sasl2 = false): string =>
  serialize(sasl2 ? x('failure', { xmlns: NS.SASL2 }, x(condition, { xmlns: NS.SASL })) : x('failure', { xmlns: NS.SASL }, x(condition)));

/** The namespace of the SASL exchange in progress. */
export const saslNs = (ctx: Pick<SessionCtx, 'sasl2'>): string => (ctx.sasl2 ? NS.SASL2 : NS.SASL);

/** What a SASL2 <authenticate/> asks: the mechanism, its initial response, and the rest. */
export function readAuthenticate(xml: string): { mechanism: string; payload: string; request: Sasl2Request } {
  const el = parsed(xml, NS.SASL2);
  const bind = el.child('bind', NS.BIND2);
  const sm = bind?.child('enable', NS.SM);
  const csi = bind?.getChildren().find((c) => c.getXmlns() === NS.CSI)?.localName;
  const own: readonly string[] = [NS.BIND2, NS.SM, NS.CSI];
  const inline = bind?.getChildren().filter((c) => !own.includes(c.getXmlns() ?? '')).map((c) => serialize(c)) ?? [];
  const tag = bind?.getChildText('tag', NS.BIND2)?.trim();
  const fast = el.child('fast', NS.FAST);
  const resume = el.child('resume', NS.SM);
  return {
    mechanism: el.attr('mechanism') ?? '',
    // Absent: no initial response; present and empty: an empty one (RFC 6120's "=").
    payload: el.child('initial-response', NS.SASL2) ? (el.getChildText('initial-response', NS.SASL2)?.trim() || '=') : '',
    request: {
      agent: el.child('user-agent', NS.SASL2)?.attr('id') ?? null,
      bind: bind ? {
        tag: tag || null, sm: sm ? { resume: /^(true|1)$/.test(sm.attr('resume') ?? '') } : null,
        ...(csi === 'active' || csi === 'inactive' ? { csi } : {}), ...(inline.length ? { inline } : {}),
      } : null,
      fast: { request: el.child('request-token', NS.FAST)?.attr('mechanism') ?? null, invalidate: /^(true|1)$/.test(fast?.attr('invalidate') ?? '') },
      resume: resume ? { previd: resume.attr('previd') ?? '', h: Number(resume.attr('h')) } : null,
    },
  };
}

/**
 * The resource Bind 2 gives (XEP-0386 §identifiers): the client's tag, '/', an id of our own. The id
 * is stable for one installation (a hash of its user-agent id, never the id itself), so a client
 * coming back gets its resource back and replaces its own dead session; random without one.
 */
export function bind2Resource(req: Sasl2Request, bare: string, random: () => string): string {
  let tag = '';
  try { tag = req.bind?.tag ? prepareResourcepart(req.bind.tag).slice(0, 64) : ''; } catch { /* an invalid tag is left out */ }
  const id = req.agent ? createHash('sha256').update(`${bare}\0${req.agent}\0${tag}`).digest('base64url').slice(0, 12) : random();
  return tag ? `${tag}/${id}` : id;
}

/** A new FAST token for <success/>. */
export const tokenXml = (t: { token: string; expiry: number }): string =>
  serialize(x('token', { xmlns: NS.FAST, expiry: new Date(t.expiry).toISOString().replace(/\.\d+Z$/, 'Z'), token: t.token }));

/** The <success/> of a SASL2 login that Bind 2 bound, in two halves around what <bound/> holds:
 *  the failed inline resumption before it, a new token after it (in the held request). */
export function boundSuccessXml(req: Sasl2Request, jid: string): [string, string] {
  const full = sasl2SuccessXml(req.data, jid, [...failedOf(req), `<bound xmlns="${NS.BIND2}">${(req.bound ?? []).join('')}</bound>`, ...tokenOf(req)]);
  const at = full.lastIndexOf('</bound>');
  return [full.slice(0, at), full.slice(at)];
}

/** The <success/> of a SASL2 login that did not bind (bare JID): what the held request adds. */
export const unboundSuccessXml = (req: Sasl2Request, bare: string): string => sasl2SuccessXml(req.data, bare, [...failedOf(req), ...tokenOf(req)]);

const failedOf = (req: Sasl2Request): string[] => (req.failed ? [req.failed] : []);
const tokenOf = (req: Sasl2Request): string[] => (req.token ? [req.token] : []);

/** Only wrong credentials count: a client trying mechanisms or binding types we refuse may fall back
 *  (slixmpp does). RFC 6120 §6.4.5: after this many the stream is closed. */
export const MAX_SASL_FAILURES = 5;

// ---- bind ----------------------------------------------------------------------------------------

/** What a stanza between authentication and bind asks for: a bind (with the resource to ask the user
 *  actor for), or an answer (an error; the next stanza may come), or the end of the stream. */
export type BindInput =
  | { kind: 'bind'; id: string; resource: string }
  | { kind: 'answer'; xml: string }
  | { kind: 'fail'; condition: StreamErrorCondition; text: string };

export function bindInput(xml: string, h: StanzaHeader, newResource: () => string): BindInput {
  if (h.name !== 'iq') return { kind: 'fail', condition: 'not-authorized', text: 'bind a resource first' };
  const bind = h.type === 'set' ? parsed(xml).child('bind', NS.BIND) : undefined;
  if (!bind) return { kind: 'answer', xml: stanzaError(h, 'cancel', 'not-allowed', 'bind a resource first') ?? '' };
  const asked = bind.getChildText('resource', NS.BIND);
  try {
    return { kind: 'bind', id: h.id ?? '', resource: asked ? prepareResourcepart(asked) : newResource() };
  } catch {
    return { kind: 'answer', xml: stanzaError(h, 'modify', 'bad-request', 'invalid resource') ?? '' };
  }
}

export const bindResultXml = (id: string, jid: string): string =>
  serialize(x('iq', { type: 'result', id }, x('bind', { xmlns: NS.BIND }, x('jid', null, jid))));

// ---- XEP-0198 requests -----------------------------------------------------------------------

export const smFailedXml = (condition: 'unexpected-request' | 'feature-not-implemented'): string =>
  serialize(x('failed', { xmlns: NS.SM }, x(condition, { xmlns: NS.STANZAS })));

export const wantsResume = (xml: string): boolean => /^(true|1)$/.test(parsed(xml, NS.SM).attr('resume') ?? '');

export function resumeRequest(xml: string): { previd: string; h: number } {
  const el = parsed(xml, NS.SM);
  return { previd: el.attr('previd') ?? '', h: Number(el.attr('h')) };
}

// ---- established: stanzas from the client -----------------------------------------------------

/** A client's stanza as the stream sees it (RFC 6120 §8.1): fine to route, answered with a stanza
 *  error, or the end of the stream. */
export type ClientVerdict = 'ok' | { reply: string | null } | { fail: StreamErrorCondition; text?: string };

export function clientVerdict(jid: string, h: StanzaHeader): ClientVerdict {
  if (h.xmlns !== NS.CLIENT || (h.name !== 'message' && h.name !== 'presence' && h.name !== 'iq')) {
    if (h.name === 'iq' || h.name === 'message' || h.name === 'presence') return { fail: 'invalid-namespace' };
    return { fail: 'unsupported-stanza-type', text: h.name };
  }
  // RFC 6120 §8.1.2.1: the server stamps the full JID; a client-supplied 'from' must be ours.
  if (h.from !== null && h.from !== jid) {
    let ok = false;
    try { const f = parseJid(h.from), me = parseJid(jid); ok = f.equals(me) || (f.isBare() && f.bareEquals(me)); } catch { /* not ok */ }
    if (!ok) return { fail: 'invalid-from' };
  }
  if (h.to !== null) {
    try { parseJid(h.to); } catch (err) {
      if (err instanceof JidError) return { reply: stanzaError(h, 'modify', 'jid-malformed') };
      throw err;
    }
  }
  if (h.name === 'iq' && (!h.id || !['get', 'set', 'result', 'error'].includes(h.type ?? ''))) {
    return { reply: stanzaError(h, 'modify', 'bad-request', 'an iq needs an id and a type') };
  }
  return 'ok';
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
