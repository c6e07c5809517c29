// An inbound server-to-server stream (RFC 6120 with `jabber:server`) as the second user of the stream
// engine: the same connection (src/net/connection.ts) carries it, with the same typed events and
// commands as a client stream, and this machine decides. TLS first (STARTTLS, required, or Direct
// TLS from the first byte, XEP-0368), then the peer authenticates a domain of its: by SASL EXTERNAL
// (XEP-0178) when its certificate proves that domain, else by Server Dialback (XEP-0220), its key
// checked by asking the peer's own server over our outbound link to it (actors/s2s). Once in,
// stanzas from that domain to ours are routed in. A peer's request to verify a key we gave it is
// answered here, from the node secret alone (XEP-0185).
//
//   opening ─header→ open ─starttls→ securing ─tls→ opening ─header→ open (secure: SASL, dialback, stanzas)
//   (Direct TLS: secure from the start, no starttls offered)
//   any ─end/close→ closing ─closed→ done
import { and, assign, not, setup, type EventObject } from 'xstate';
import { randomBytes } from 'node:crypto';
import { certificateNames, type ConnInfo, type PeerCertificate, type ToConn, type ToSession } from '../../src/net/c2s-protocol.ts';
import { serialize, streamOpen, x } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { streamError, type StreamErrorCondition } from '../../src/xmpp/errors.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { parseJid, tryParseJid } from '../../src/xmpp/jid.ts';
import { courier, log, self, send, sendDurable, service, suspend } from '../../src/runtime/api.ts';
import { dispatchIq } from '../../src/xmpp/iq.ts';
import type { IqRequest } from '../../src/xmpp/module.ts';
import { dialbackKeyValid } from '../../src/xmpp/dialback.ts';
import { destinationOf, linkAddress, unroutable } from '../../src/xmpp/routing.ts';
import { stanzaError } from '../../src/xmpp/errors.ts';
import { OWN_STANZA, validateStanza } from '../../src/xml/framer.ts';
import { routeStanza } from '../route.ts';
import type { FromLink, ToLink } from '../s2s/machine.ts';
import type { ToUser } from '../user/messages.ts';
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
  /** Domain pairs the peer has authenticated (by certificate or dialback), `<peer>|<ours>`: stanzas
   *  may come between them. */
  authenticated: string[];
  /** The peer's certificate, once TLS is up. */
  cert: PeerCertificate | null;
  /** Authenticated by SASL EXTERNAL: the stream was restarted and offers nothing more. */
  sasl: boolean;
  /** s2s.secure_auth: a certificate is the only proof taken; no dialback. */
  secureAuth: boolean;
  /** The peer enabled XEP-0198: the engine acknowledges what is handled (durably routed in). */
  sm: boolean;
}

/** What the listener tells each inbound server stream's actor besides its connection. */
export type S2sInInput = ConnInfo & { secureAuth?: boolean };

export type S2sInEvent = ToSession | RuntimeEvent | FromLink;

type Header = Extract<ToSession, { type: 'header' }>;
type Stanza = Extract<ToSession, { type: 'stanza' }>;

const header = (e: EventObject) => e as Header;
const stanza = (e: EventObject) => e as Stanza;
/** The domain of a JID, or null for one that is not a JID. */
const jidDomain = (s: string | null): string | null => (s ? tryParseJid(s)?.domain ?? null : null);
/** A domain-only JID's domain (a stream header's, a dialback request's), else null. */
const domainOf = (s: string | null): string | null => {
  const j = s ? tryParseJid(s) : undefined;
  return j && j.local === '' && j.resource === '' ? j.domain : null;
};

/** Our header and features: STARTTLS (required) first; over TLS, the ways a peer may authenticate:
 *  SASL EXTERNAL when its certificate proves the domain its header names (XEP-0178), dialback
 *  (unless secure_auth); after SASL, none of those. Over TLS, stream management (XEP-0198, no
 *  resumption) until the peer has enabled it. */
export function headerXml(ctx: S2sInCtx): string {
  const sm = ctx.sm ? null : x('sm', { xmlns: NS.SM }, x('optional'));
  const features = !ctx.secure ? [x('starttls', { xmlns: NS.TLS }, x('required'))]
    : ctx.sasl ? [sm]
      : [ctx.peer && certificateNames(ctx.cert, ctx.peer) ? x('mechanisms', { xmlns: NS.SASL }, x('mechanism', null, 'EXTERNAL')) : null,
        ctx.secureAuth ? null : x('dialback', { xmlns: NS.DIALBACK_FEATURE }, x('errors')), sm];
  return streamOpen({ xmlns: NS.SERVER, dialback: !ctx.secureAuth, from: ctx.host, to: ctx.peer, id: ctx.streamId }) + serialize(x('stream:features', null, features));
}

/** A stream error and the end of the stream (with our header first if we sent none). */
export function failXml(ctx: Pick<S2sInCtx, 'host'>, condition: StreamErrorCondition, text?: string, headerSent = true): string {
  return (headerSent ? '' : streamOpen({ xmlns: NS.SERVER, from: ctx.host, id: 'error' })) + streamError(condition, text);
}

const NO_CERT = 'your certificate does not prove that domain here';
const pair = (peer: string, ours: string) => `${peer}|${ours}`;
const xmpp = () => service<XmppService>('xmpp');
/** A host of accounts or a service domain (group chat) of this node: peers may stream to either. */
const ours = (domain: string) => xmpp().domains.isHost(domain) || xmpp().domains.service(domain) !== undefined;
const dbEl = (name: string, attrs: Record<string, string | undefined>, ...children: Parameters<typeof x>[2][]) => serialize(x(`db:${name}`, attrs, ...children));

/** A stanza from the peer, routed in: durably into the account's or service's actor, then counted
 *  handled; an IQ request to the server itself is answered here by the modules' host handlers
 *  (disco, ping, version, time), the actor waiting for the answer. */
function routeIn(ctx: S2sInCtx, s: Stanza): void {
  const h = s.h;
  const to = parseJid(h.to!);
  const dest = destinationOf(to, xmpp().domains);
  const done = courier();
  const handled = () => { if (s.seq > 0) done(ctx.conn, { type: 'handled', seq: s.seq } satisfies ToConn); };
  if (dest.to === 'account' || dest.to === 'service') {
    sendDurable(dest.address, { type: 'stanza', xml: s.xml, h } satisfies ToUser).then(handled, (err: Error) => log('warn', `from ${ctx.peer}: not routed to ${dest.address}: ${err.message}`));
    return;
  }
  const handler = dest.to === 'host' && h.name === 'iq' && (h.type === 'get' || h.type === 'set') ? hostIq(s.xml, h.type) : null;
  if (handler) {
    const svc = xmpp();
    const base: Omit<IqRequest, 'reply' | 'error'> = {
      host: to.domain, stanza: handler.stanza, payload: handler.payload, from: parseJid(h.from!), to, type: h.type as 'get' | 'set',
      storage: svc.storage, now: () => svc.now(),
      route: (st) => { const xml = typeof st === 'string' ? st : serialize(st); routeStanza(xml, validateStanza(xml, undefined, OWN_STANZA)); },
      log: (level, text) => log(level, `from ${ctx.peer}: ${text}`),
      operator: () => Promise.reject(new Error('not for another server')),
    };
    suspend(Promise.resolve(dispatchIq(handler.run, base, h, (xml) => routeStanza(xml, validateStanza(xml, undefined, OWN_STANZA))))
      .catch((err: Error) => log('error', `from ${ctx.peer}: a request to the server failed: ${err.stack ?? err.message}`))
      .then(handled));
    return;
  }
  const condition = unroutable(h, dest);
  const error = condition ? stanzaError(h, 'cancel', condition) : null;
  if (error) routeStanza(error, validateStanza(error, undefined, OWN_STANZA));
  handled();
}

/** The host's handler of an IQ request, if a module has one. */
function hostIq(xml: string, type: 'get' | 'set'): { run: (req: IqRequest) => unknown; stanza: XmlElement; payload: XmlElement } | null {
  const stanza = parseElement(xml);
  const payload = stanza.children.find((c): c is XmlElement => typeof c !== 'string');
  const run = payload ? xmpp().modules.iqHandler(type, 'host', payload.getXmlns()) : undefined;
  return run && payload ? { run, stanza, payload } : null;
}

const { toConn, write, fail, is } = streamCommands<S2sInCtx>(failXml);

export const s2sInMachine = setup({
  types: { context: {} as S2sInCtx, events: {} as S2sInEvent, input: {} as S2sInInput },
  guards: {
    wrongNamespace: ({ event }) => header(event).xmlns !== NS.SERVER,
    servedHost: ({ event }) => { const d = domainOf(header(event).to); return d !== null && ours(d); },
    hostChanged: ({ context, event }) => context.host !== null && domainOf(header(event).to) !== context.host,
    badVersion: ({ event }) => !/^1\.\d+$/.test(header(event).version ?? ''),
    secure: ({ context }) => context.secure,
    isStarttls: is('starttls', NS.TLS),
    isAuth: is('auth', NS.SASL),
    isSmEnable: is('enable', NS.SM),
    smOn: ({ context }) => context.sm,
    isDialback: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK,
    /** <db:result from=peer to=ours>key</db:result>: the peer asks to be authenticated. */
    isResultRequest: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK && stanza(event).h.name === 'result' && stanza(event).h.type === null,
    /** <db:verify from=peer to=ours id=…>key</db:verify>: the peer asks whether we made a key. */
    isVerifyRequest: ({ event }) => stanza(event).h.xmlns === NS.DIALBACK && stanza(event).h.name === 'verify' && stanza(event).h.type === null,
    /** A request names a domain of ours and the peer's by domain-only addresses. */
    domainsOk: ({ event }) => {
      const h = stanza(event).h;
      const to = domainOf(h.to);
      return to !== null && domainOf(h.from) !== null && ours(to);
    },
    /** Between a pair of domains the peer has authenticated. */
    allowed: ({ context, event }) => {
      const from = jidDomain(stanza(event).h.from), to = jidDomain(stanza(event).h.to);
      return from !== null && to !== null && context.authenticated.includes(pair(from, to));
    },
    anyAuthenticated: ({ context }) => context.authenticated.length > 0,
    unaddressed: ({ event }) => !stanza(event).h.to || !stanza(event).h.from,
    notForUs: ({ event }) => { const d = jidDomain(stanza(event).h.to); return d === null || !ours(d); },
    /** SASL EXTERNAL for the domain of the header (authzid empty, '=' or that domain), which the
     *  peer's certificate proves (XEP-0178 §3). */
    externalOk: ({ context, event }) => {
      const el = parseElement(stanza(event).xml);
      if (el.attr('mechanism') !== 'EXTERNAL' || !context.peer) return false;
      const text = el.text().trim();
      const authzid = text === '' || text === '=' ? context.peer : Buffer.from(text, 'base64').toString('utf8');
      return authzid === context.peer && certificateNames(context.cert, context.peer);
    },
    dialbackOff: ({ context }) => context.secureAuth,
    sasled: ({ context }) => context.sasl,
    isStanza: ({ event }) => ['message', 'presence', 'iq'].includes(stanza(event).h.name),
    verifiedValid: ({ event }) => (event as FromLink).valid,
  },
  actions: {
    toConn: ({ context }, m: ToConn) => send(context.conn, m),
    openStream: assign(({ event }) => ({ host: domainOf(header(event).to), peer: domainOf(header(event).from), streamId: randomBytes(9).toString('base64url') })),
    secured: assign({ secure: true, cert: ({ event }) => (event as Extract<ToSession, { type: 'tls' }>).peer ?? null }),
    /** The peer's domain is proven: the stream restarts (RFC 6120 §6.4.6) and is open to it. */
    saslSuccess: ({ context }) => send(context.conn, { type: 'authenticated', xml: serialize(x('success', { xmlns: NS.SASL })), jid: context.peer!, restart: true, bound: true } satisfies ToConn),
    admitSasl: assign({ sasl: true, authenticated: ({ context }) => [...context.authenticated, pair(context.peer!, context.host!)] }),
    logSasl: ({ context }) => log('info', `s2s ${context.peer} → ${context.host}: authenticated (certificate, SASL EXTERNAL)`),
    /** Ask the peer's authoritative server (over our link to it) whether it made this key. */
    askVerify: ({ context, event }) => {
      const h = stanza(event).h;
      const key = parseElement(stanza(event).xml).text();
      send(linkAddress(domainOf(h.to)!, domainOf(h.from)!), { type: 'verify', id: context.streamId, key, asker: self() } satisfies ToLink);
    },
    answerVerify: ({ event, context }) => {
      const h = stanza(event).h;
      const host = domainOf(h.to)!, peer = domainOf(h.from)!;
      const valid = dialbackKeyValid(xmpp().settings.serverSecret, peer, host, h.id ?? '', parseElement(stanza(event).xml).text());
      send(context.conn, { type: 'write', xml: dbEl('verify', { from: host, to: peer, id: h.id ?? undefined, type: valid ? 'valid' : 'invalid' }) } satisfies ToConn);
    },
    /** A dialback request answered with an error (XEP-0220 §2.4): which, and why, the transition says. */
    refuseRequest: ({ context, event }, p: { condition: 'item-not-found' | 'policy-violation'; text: string }) => {
      const h = stanza(event).h;
      send(context.conn, { type: 'write', xml: dbEl(h.name, { from: h.to ?? undefined, to: h.from ?? undefined, id: h.id ?? undefined, type: 'error' },
        x('error', { type: p.condition === 'item-not-found' ? 'cancel' : 'auth' }, x(p.condition, { xmlns: NS.STANZAS }), x('text', { xmlns: NS.STANZAS }, p.text))) } satisfies ToConn);
    },
    /** The peer's server answered our verification: the peer learns the result. */
    answerPeer: ({ context, event }) => {
      const v = event as FromLink;
      const attrs = { from: v.host, to: v.peer };
      if (v.error !== undefined) {
        send(context.conn, { type: 'write', xml: dbEl('result', { ...attrs, type: 'error' }, x('error', { type: 'cancel' }, x('remote-connection-failed', { xmlns: NS.STANZAS }), x('text', { xmlns: NS.STANZAS }, v.error))) } satisfies ToConn);
        return;
      }
      send(context.conn, { type: 'write', xml: dbEl('result', { ...attrs, type: v.valid ? 'valid' : 'invalid' }) } satisfies ToConn);
      // The engine stops timing the stream's authentication once one domain is in.
      if (v.valid && context.authenticated.length === 0) send(context.conn, { type: 'authenticated', xml: '', jid: v.peer, restart: false, bound: true } satisfies ToConn);
      if (v.valid) log('info', `s2s ${v.peer} → ${v.host}: authenticated (dialback)`);
      else log('warn', `s2s ${v.peer} → ${v.host}: its dialback key was not valid`);
    },
    admit: assign({ authenticated: ({ context, event }) => {
      const v = event as FromLink;
      return v.valid && v.error === undefined ? [...context.authenticated, pair(v.peer, v.host)] : context.authenticated;
    } }),
    routeIn: ({ context, event }) => routeIn(context, stanza(event)),
    /** XEP-0198 on a server stream: acknowledgements, no resumption (the peer sends again what was
     *  not acknowledged on its next stream). Prosody enables it before authenticating; so may anyone. */
    enableSm: assign({ sm: true }),
  },
}).createMachine({
  id: 's2sin',
  context: ({ input }) => ({ conn: input.conn, remote: input.remote, secure: input.secure, host: null, peer: null, streamId: '', authenticated: [], cert: input.peer ?? null, sasl: false, secureAuth: input.secureAuth ?? false, sm: false }),
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
          { guard: and(['isAuth', 'externalOk', not('sasled')]), target: 'opening', actions: ['saslSuccess', 'admitSasl', 'logSasl'] },
          { guard: and(['isSmEnable', not('smOn')]), actions: ['enableSm', toConn({ type: 'sm-enable', resume: false })] },
          { guard: 'isSmEnable', actions: write(serialize(x('failed', { xmlns: NS.SM }, x('unexpected-request', { xmlns: NS.STANZAS })))) },
          { guard: 'isAuth', actions: write(() => serialize(x('failure', { xmlns: NS.SASL }, x('not-authorized'), x('text', null, NO_CERT)))) },
          { guard: and(['isResultRequest', 'dialbackOff']), actions: { type: 'refuseRequest', params: { condition: 'policy-violation', text: 'this server takes certificates only (SASL EXTERNAL)' } } },
          { guard: and(['isResultRequest', 'domainsOk']), actions: 'askVerify' },
          { guard: and(['isVerifyRequest', 'domainsOk']), actions: 'answerVerify' },
          { guard: 'isDialback', actions: { type: 'refuseRequest', params: { condition: 'item-not-found', text: 'name a domain of this server and yours' } } },
          { guard: and(['isStanza', 'allowed']), actions: 'routeIn' },
          // RFC 6120 §4.9.3: a stanza between servers names both ends; its 'to' is a domain of ours.
          { guard: and(['isStanza', 'anyAuthenticated', 'unaddressed']), target: 'closing', actions: fail('improper-addressing', 'a stanza between servers has a from and a to') },
          { guard: and(['isStanza', 'anyAuthenticated', 'notForUs']), target: 'closing', actions: fail('host-unknown', ({ event }) => `this server does not serve ${jidDomain(stanza(event).h.to)}`) },
          // Stanzas before authentication (RFC 6120 §6.4.1 / §8.1.1.1), or for a pair of domains
          // the peer has not authenticated (§4.9.3.9 invalid-from).
          { guard: 'anyAuthenticated', target: 'closing', actions: fail('invalid-from', 'not a domain pair authenticated on this stream') },
          { target: 'closing', actions: fail('not-authorized') },
        ],
        verified: { actions: ['answerPeer', 'admit'] },
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
