// The user actor's work: one account's sessions, routing of stanzas addressed to it (RFC 6121 §8.5),
// and the hooks that modules (roster, presence, offline, ...) run on. Functions over the context and
// a Turn: what they decide to do is emitted as data (effects.ts), carried out by the host once the
// step is done. Modules' hooks run within the step, through the context they are given (storage,
// route, deliver). A hook may be async: then the step is a promise of its patch and the actor is
// suspended on it.
import { callNode, log, sendDurable } from '../../src/runtime/api.ts';
import type { Address } from '../../src/runtime/address.ts';
import { andThen, type StanzaKind } from '../../src/xmpp/module.ts';
import { inboundEvent, runInbound, runOutbound } from '../../src/xmpp/router.ts';
import { destinationOf, linkAddress, unroutable, type Destination } from '../../src/xmpp/routing.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { OWN_STANZA, validateStanza } from '../../src/xml/framer.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { serialize } from '../../src/xml/builder.ts';
import { stanzaError, type StanzaErrorCondition, type StanzaErrorOptions, type StanzaErrorType } from '../../src/xmpp/errors.ts';
import { parseJid, type Jid } from '../../src/xmpp/jid.ts';
import { parsePriority } from '../../src/xmpp/priority.ts';
import type { InboundEvent, SessionInfo, StanzaContext, UserContext } from '../../src/xmpp/module.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { dispatchIq } from '../../src/xmpp/iq.ts';
import type { ToSessionFromUser, ToUser } from './messages.ts';
import type { ClientSeq, UserEffect } from './effects.ts';

export interface UserCtx {
  jid: string;
  sessions: Record<string, SessionInfo>;
  /** Module state (small; big data lives in storage). */
  mods: Record<string, unknown>;
  /** Binds waiting for a replaced session to end: resource -> the new session's address. */
  pendingBinds: Record<string, string>;
  /** The current monitor of each session (resource -> its tag): a 'down' with another tag is stale
   *  (a replaced session at the same address). */
  watch: Record<string, number>;
  /** A replaced session's monitor tag -> the resource whose new bind waits for it to exit. */
  replacing: Record<string, string>;
  /** The last monitor tag given. */
  tags: number;
  /** The `sent` stamps of fanned-out messages one copy of which was routed again (the latest 64):
   *  the other copies, handed back later, are not. */
  rerouted: number[];
}

export const initialUserContext = (address: string): UserCtx => ({ jid: address.slice('user:'.length), sessions: {}, mods: {}, pendingBinds: {}, watch: {}, replacing: {}, tags: 0, rerouted: [] });

/** The context changes of one message. */
export type Patch = Partial<UserCtx>;
/** A patch now, or once the async hooks it ran have settled. */
export type Step = Patch | Promise<Patch>;

/** One message's work besides the context: the thread's XMPP service it reads, the effects it
 *  decided (in order), and the route chains modules started (their outbound hooks may wait). */
export class Turn {
  readonly fx: UserEffect[] = [];
  chains: Array<Promise<unknown>> | null = null;
  done = false;
  constructor(readonly env: XmppService) {}
  emit(e: UserEffect): void {
    if (this.done) throw new Error('a user actor effect after its message was handled');
    this.fx.push(e);
  }
}

/** A monitor of a session, under a tag of its own. */
function watchTag(t: Turn, ctx: UserCtx, address: Address, tags = ctx.tags): number {
  t.emit({ do: 'watch', address, tag: tags + 1 });
  return tags + 1;
}

// ---- sessions -----------------------------------------------------------------------------------

/** `binder`: who asked (the session under its pre-bind name), answered when the bind is decided. */
export function onBind(t: Turn, ctx: UserCtx, m: Extract<ToUser, { type: 'bind' }>, binder: Address | undefined): Step {
  if (binder) pendingReplies.set(`${ctx.jid}/${m.resource}`, { binder, ...(m.bind2 ? { bind2: m.bind2.inline } : {}) });
  const svc = t.env;
  const existing = ctx.sessions[m.resource];
  if (existing) {
    // Conflict: the new login wins (RFC 6120 §7.7.2.2). It is bound once the old actor has really
    // exited: both live at the same address.
    t.emit({ do: 'tell', to: existing.address, msg: { type: 'replace' } });
    const tag = watchTag(t, ctx, existing.address);
    const { [m.resource]: _, ...watch } = ctx.watch;
    void _;
    return { pendingBinds: { ...ctx.pendingBinds, [m.resource]: m.session }, watch, replacing: { ...ctx.replacing, [tag]: m.resource }, tags: tag };
  }
  if (Object.keys(ctx.sessions).length >= svc.settings.sessionsPerAccount) {
    // A session waiting for a resumption is not a device in use: the oldest gives way (what it holds
    // is handed back and routed again, nothing lost), so a client that reconnects without resuming
    // is not locked out. Only when every session is live is the login refused.
    const oldest = Object.values(ctx.sessions).filter((s) => s.detached !== undefined).sort((a, b) => a.detached! - b.detached!)[0];
    if (oldest) {
      t.emit({ do: 'log', level: 'info', text: `${oldest.resource}, detached since ${new Date(oldest.detached!).toISOString()}, ended for a new login (at most ${svc.settings.sessionsPerAccount} sessions per account)` });
      t.emit({ do: 'tell', to: oldest.address, msg: { type: 'replace' } });
      return bindNow(t, ctx, m.resource, m.session);
    }
    const asked = pendingReplies.get(`${ctx.jid}/${m.resource}`)?.binder;
    pendingReplies.delete(`${ctx.jid}/${m.resource}`);
    if (asked) t.emit({ do: 'tell', to: asked, msg: { type: 'bind-denied', condition: 'resource-constraint', text: `at most ${svc.settings.sessionsPerAccount} sessions per account` } });
    return {};
  }
  return bindNow(t, ctx, m.resource, m.session);
}

function bindNow(t: Turn, ctx: UserCtx, resource: string, address: string): Step {
  const info: SessionInfo = { resource, address, presence: null, priority: 0, since: 0, interested: false };
  const sessions = { ...ctx.sessions, [resource]: info };
  const { [resource]: _, ...pendingBinds } = ctx.pendingBinds;
  void _;
  const next = { ...ctx, sessions, pendingBinds };
  // The bound hooks run first: the session hears of its bind once the account knows it.
  const asked = pendingReplies.get(`${ctx.jid}/${resource}`)?.bind2;
  const bound: string[] = [];
  const bind2 = asked ? { bind2: { inline: asked.map((xml) => parseElement(xml)), answer: (el: XmlElement) => { bound.push(serialize(el)); } } } : {};
  return andThen(t.env.modules.run('session/bound', { ...stanzaContext(t, next), user: userContext(t, next), resource, ...bind2 }), () => {
    const tag = sendBindOk(t, next, resource, bound);
    return { sessions: next.sessions, pendingBinds, mods: next.mods, ...(tag === undefined ? {} : { watch: { ...ctx.watch, [resource]: tag }, tags: tag }) };
  });
}

/** The session asked under its pre-bind name; `bind-ok` reaches it there. It is watched from now on:
 *  the monitor follows it when it moves to its full JID. */
function sendBindOk(t: Turn, ctx: UserCtx, resource: string, bound: string[]): number | undefined {
  const waiting = pendingReplies.get(`${ctx.jid}/${resource}`)?.binder;
  if (!waiting) return undefined;
  pendingReplies.delete(`${ctx.jid}/${resource}`);
  t.emit({ do: 'tell', to: waiting, msg: { type: 'bind-ok', resource, ...(bound.length ? { bound } : {}) } });
  return watchTag(t, ctx, waiting); // after the answer, on the same path: the session has not moved yet
}

/** Who asked to bind (their pre-bind address) and, at a Bind 2 login, what its request asked of the
 *  modules, until answered; not persisted (a crash fails the bind). */
const pendingReplies = new Map<string, { binder: string; bind2?: string[] }>();

/** A session ended. A login waiting for this resource (a conflict) is bound now. */
export function onUnbind(t: Turn, ctx: UserCtx, resource: string): Step {
  const s = ctx.sessions[resource];
  if (!s) return {};
  taken.delete(s.address);
  return andThen(t.env.modules.run('session/unbound', { ...stanzaContext(t, ctx), user: userContext(t, ctx), resource }), () => {
    const { [resource]: _, ...sessions } = ctx.sessions;
    void _;
    const { [resource]: _w, ...watch } = ctx.watch;
    void _w;
    return { sessions, watch, mods: ctx.mods };
  });
}

export function onArrived(t: Turn, ctx: UserCtx, resource: string): Patch {
  const s = ctx.sessions[resource];
  if (!s) return {};
  const tag = watchTag(t, ctx, s.address);
  return { watch: { ...ctx.watch, [resource]: tag }, tags: tag };
}

export function onStarted(t: Turn, ctx: UserCtx): Step {
  const user = userContext(t, ctx);
  return andThen(t.env.modules.run('user/started', { ...stanzaContext(t, ctx), user }), () => {
    // Monitors do not survive a restart: watch every session again. A client stanza this actor was
    // handling when it crashed is lost with the crash: the connections send again what is unhandled.
    let tags = ctx.tags;
    const watch = Object.fromEntries(user.sessions().map((s) => [s.resource, (tags = watchTag(t, ctx, s.address, tags))]));
    for (const s of user.sessions()) t.emit({ do: 'tell', to: s.address, msg: { type: 'replay' } });
    return { ...kept(ctx), watch, replacing: {}, tags };
  });
}

/** A session's connection dropped (it waits for a resumption) or came back. */
export function onDetached(t: Turn, ctx: UserCtx, resource: string, detached: boolean): Patch {
  const s = ctx.sessions[resource];
  if (!s || (s.detached !== undefined) === detached) return {};
  t.emit({ do: 'log', level: 'info', text: `${resource} ${detached ? 'detached, waiting for a resumption' : 'resumed'}` });
  const { detached: _, ...attached } = s;
  void _;
  return { sessions: { ...ctx.sessions, [resource]: detached ? { ...s, detached: Date.now() } : attached } };
}

/** A watched session ended: a replaced one completes a pending bind; a vanished one is dropped. */
export function onDown(t: Turn, ctx: UserCtx, reason: string, tag: number): Step {
  const replaced = ctx.replacing[tag];
  if (replaced !== undefined) {
    // The replaced session is gone: its address is free for the new one.
    const { [tag]: _, ...replacing } = ctx.replacing;
    void _;
    return andThen(ctx.sessions[replaced] ? onUnbind(t, ctx, replaced) : {}, (gone) => {
      const c = { ...ctx, ...gone, replacing };
      const pending = c.pendingBinds[replaced];
      return pending ? andThen(bindNow(t, c, replaced, pending), (bound) => ({ ...gone, replacing, ...bound })) : { ...gone, replacing };
    });
  }
  const resource = Object.keys(ctx.watch).find((r) => ctx.watch[r] === tag);
  // The ref names the session, wherever it was when it went (a crash before its move included).
  if (!resource || !ctx.sessions[resource]) return {};
  if (reason !== 'normal' && reason !== 'shutdown' && reason !== 'noproc') {
    // A crash: its supervisor restarts it under the same address and it says 'arrived' again. If
    // it never comes back (its supervisor gave up), the check below finds it gone.
    t.emit({ do: 'timer', name: `recheck:${resource}`, ms: 5000, msg: { type: 'arrived', resource } });
    return {};
  }
  return onUnbind(t, ctx, resource);
}

/** The account was deleted: the modules remove what they stored (telling contacts while the
 *  sessions are still here), the sessions are closed, and the actor ends — its snapshot with it. */
export function onDeleted(t: Turn, ctx: UserCtx, reply: string): Step {
  const user = userContext(t, ctx);
  const live = { ...stanzaContext(t, ctx), user };
  return andThen(t.env.modules.run('user/deleted', { jid: user.jid, storage: live.storage, dataDir: t.env.settings.dataDir, log: live.log, live }), () => {
    for (const s of user.sessions()) t.emit({ do: 'tell', to: s.address, msg: { type: 'kick', condition: 'not-authorized', text: 'account deleted' } });
    t.emit({ do: 'deleted', to: reply });
    t.emit({ do: 'exit' });
    return {};
  });
}

// ---- routing ------------------------------------------------------------------------------------

/** A stanza addressed to this account (RFC 6121 §8.5). */
export function onStanza(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader): Step {
  // Everything routed here was stamped by the server; anything else is a bug upstream: drop it.
  if (!h.to || !h.from) return {};
  const to = parseJid(h.to);
  const from = parseJid(h.from);
  if (h.name === 'message') return routeMessage(t, ctx, xml, h, to, from);
  if (h.name === 'presence') {
    // The presence module delivers (or keeps) presence; without it, every available resource gets it.
    return inbound(t, ctx, xml, h, to, from, (x) => { for (const s of available(ctx)) deliver(t, s, x, false); return {}; });
  }
  return inbound(t, ctx, xml, h, to, from, (x) => {
    if (to.resource) {
      const s = ctx.sessions[to.resource];
      if (s) { deliver(t, s, x, true); return {}; }
      if (h.type === 'get' || h.type === 'set') bounceError(t, ctx, h, 'cancel', 'service-unavailable');
      return {};
    }
    return h.type === 'get' || h.type === 'set' ? runIq(t, ctx, x, h, from, to, 'bare') : {};
  });
}

/** The recipient's `<kind>/<bare|full>` hooks, then `core` with the stanza (rewritten or not) unless
 *  one handled it. Events (a full parse) are built only when a module listens: the chat hot path. */
function inbound(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, to: Jid, from: Jid, core: (xml: string) => Step): Step {
  return andThen(runInbound(t.env.modules, h.name as StanzaKind, () => scope(t, ctx), xml, from, to, errorTo(t, ctx, h), h.type),
    (o) => (o.stopped ? kept(ctx) : andThen(core(o.xml ?? xml), (p) => ({ ...kept(ctx), ...p }))));
}

/** `handedBack`: a message accepted earlier that a session which ended gave back (onRedeliver). */
function routeMessage(t: Turn, ctx: UserCtx, xml0: string, h: StanzaHeader, to: Jid, from: Jid, handedBack = false): Step {
  return inbound(t, ctx, xml0, h, to, from, (xml) => deliverMessage(t, ctx, xml, h, to, from, handedBack));
}

function deliverMessage(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, to: Jid, from: Jid, handedBack: boolean): Step {
  const type = h.type ?? 'normal';
  const svc = t.env;
  const event = () => inboundEvent(scope(t, ctx), xml, from, to, errorTo(t, ctx, h));
  const delivered = (resources: string[]): Step => {
    if (!svc.modules.has('message/delivered')) return {};
    const ev = Object.assign(event(), { resources });
    return andThen(svc.modules.run('message/delivered', ev), () => kept(ctx));
  };
  if (to.resource) {
    const s = ctx.sessions[to.resource];
    if (s) { deliver(t, s, xml, true); return delivered([s.resource]); }
    // §8.5.3.2.1: no such resource — chat/normal as if to the bare JID; groupchat errors; others drop.
    if (type === 'groupchat') { bounceError(t, ctx, h, 'cancel', 'service-unavailable'); return {}; }
    if (type === 'headline' || type === 'error') return {};
  }
  if (type === 'error') return {};
  if (type === 'groupchat') { bounceError(t, ctx, h, 'cancel', 'service-unavailable'); return {}; }
  const candidates = available(ctx).filter((s) => s.priority >= 0);
  if (candidates.length === 0) {
    if (type === 'headline') return {};
    const ev = Object.assign(event(), { handedBack });
    return andThen(svc.modules.run('message/undeliverable', ev), (handled) => {
      if (!handled) bounceError(t, ctx, h, 'cancel', 'service-unavailable');
      return kept(ctx);
    });
  }
  // chat/normal go to the highest priority (all of them on a tie); headline to every non-negative one.
  const top = Math.max(...candidates.map((s) => s.priority));
  const targets = type === 'headline' ? candidates : candidates.filter((s) => s.priority === top);
  // Copies to several resources carry when they were sent: one handed back later is not routed again
  // while another resource has it (onRedeliver).
  const sent = targets.length > 1 ? fanOutStamp() : undefined;
  targets.forEach((s, i) => deliver(t, s, xml, i === 0, sent));
  return delivered(targets.map((s) => s.resource));
}

let lastStamp = 0;
/** A time (ms) that also names the fan-out: unique on this thread, where the account's actor runs. */
function fanOutStamp(): number {
  lastStamp = Math.max(Date.now(), lastStamp + 0.001);
  return lastStamp;
}

function available(ctx: UserCtx): SessionInfo[] {
  return Object.values(ctx.sessions).filter((s) => s.presence !== null);
}

/** To one session. The durable copy of the message being handled stays in LevelDB (retained) until
 *  that client has it: acknowledged (XEP-0198) or written. */
function deliver(t: Turn, s: SessionInfo, xml: string, durable: boolean, sent?: number): void {
  t.emit({ do: 'deliver', to: s.address, xml, durable, sent });
}

/** An error back to the sender of `h` (never for an error: RFC 6120 §8.3.1). */
function bounceError(t: Turn, ctx: UserCtx, h: StanzaHeader, type: StanzaErrorType | null, condition: StanzaErrorCondition, text?: string, o?: StanzaErrorOptions): void {
  const err = stanzaError(h, type, condition, text, o);
  if (err) routeOut(t, ctx, err);
}

const errorTo = (t: Turn, ctx: UserCtx, h: StanzaHeader): InboundEvent['error'] => (condition, type, text, o) => bounceError(t, ctx, h, type ?? null, condition, text, o);

// ---- outbound: what this account sends --------------------------------------------------------------

/** Inbound stanzas taken from each session's connection, for this thread's life: the connection
 *  replays what it has not seen handled (a session, this actor or a thread restarted), and some of
 *  it may have been taken already (its handling under way). Replays and stanzas still on their way
 *  arrive in any order, so the seqs taken are kept exactly, down to the connection's watermark
 *  (`done`: it has seen every seq up to it handled, and replays none of them). A stanza that crashed
 *  us counts as taken, so it is not replayed into another crash. Keyed by session address; a new
 *  connection there starts afresh. */
const taken = new Map<string, { conn: string; done: number; seqs: Set<number> }>();

function alreadyTaken(address: string, conn: string, seq: number, done: number): boolean {
  if (seq <= 0) return false;
  let t = taken.get(address);
  if (t === undefined || t.conn !== conn) taken.set(address, (t = { conn, done, seqs: new Set() }));
  if (done > t.done) {
    t.done = done;
    for (const s of t.seqs) if (s <= done) t.seqs.delete(s);
  }
  if (seq <= t.done || t.seqs.has(seq)) return true;
  t.seqs.add(seq);
  return false;
}

/** The client stanza to count handled once its effects are durable (XEP-0198); none for the server's. */
type Done = ClientSeq | undefined;

function handled(t: Turn, done: Done): void {
  if (done) t.emit({ do: 'handled', client: done });
}

/**
 * A stanza one of this account's clients sent (its session stamped its full JID): the sender's
 * outbound hooks (`pre-<kind>/<target>`, which see every session and may wait on storage), then
 * routing. It counts as handled once its effects are durable: in the recipient's durable mailbox,
 * or done here.
 */
export function onClient(t: Turn, ctx: UserCtx, m: Extract<ToUser, { type: 'client' }>): Step {
  const s = ctx.sessions[m.resource];
  const done: Done = m.seq > 0 ? { conn: m.conn, seq: m.seq } : undefined;
  const finish = (p: Patch): Patch => { handled(t, done); return p; };
  if (!s) return finish({}); // the session is gone: nothing of its stanzas is wanted any more
  if (alreadyTaken(s.address, m.conn, m.seq, m.done)) return {};
  const h = m.h;
  const from = parseJid(h.from!);
  // Presence with no 'to' is the session's own (broadcast, RFC 6121 §4.2-4.5): its hooks run per
  // recipient as the presence module routes the copies.
  if (h.name === 'presence' && !h.to) return andThen(presenceOut(t, ctx, m.xml, h, from, m.resource), finish);
  const to = h.to ? parseJid(h.to) : from.bare();
  const out = runOutbound(t.env.modules, h.name as StanzaKind, () => scope(t, ctx), m.xml, from, to, errorTo(t, ctx, h), m.resource, h.type);
  return andThen(out, (o) => {
    if (o.stopped) return finish({});
    const r = o.xml === null ? { xml: m.xml, h, to } : readHeader(t, o.xml);
    if (!r) return finish({});
    return fromClient(t, ctx, r.xml, r.h, from, r.to, m.resource, done);
  });
}

function fromClient(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, from: Jid, to: Jid, resource: string, done: Done): Step {
  const finish = (p: Patch): Patch => { handled(t, done); return p; };
  // Directed and subscription presence: the presence module routes it (and remembers it).
  if (h.name === 'presence') return andThen(presenceOut(t, ctx, xml, h, from, resource), finish);
  // IQs to the account itself (roster, blocking, ...) are answered here (RFC 6121 §8.5.1 / RFC 6120 §10.3.3).
  if (h.name === 'iq' && (h.type === 'get' || h.type === 'set') && to.isBare() && to.bareEquals(from)) {
    return andThen(runIq(t, ctx, xml, h.to ? h : { ...h, to: to.toString() }, from, to, 'self'), finish);
  }
  return routeFrom(t, ctx, xml, h, from, to, done);
}

/** Presence one of our sessions sent, to the `presence/out` hooks (the presence module broadcasts
 *  it, or routes it directed). Without one, the session's availability is still recorded (routing
 *  depends on it) and directed presence still goes out. */
function presenceOut(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, from: Jid, resource: string): Step {
  const to = h.to ? parseJid(h.to) : from.bare();
  const user = userContext(t, ctx);
  return andThen(t.env.modules.run('presence/out', { ...stanzaContext(t, ctx), stanza: parseElement(xml), xml, from, to, user, resource, error: errorTo(t, ctx, h) }), (routed): Step => {
    if (routed) return {};
    if (h.to) return routeFrom(t, ctx, xml, h, from, to, undefined);
    user.setPresence(resource, h.type === 'unavailable' ? null : xml, parsePriority(parseElement(xml)));
    return {};
  });
}

/**
 * Sends a stanza of this account's (from a client, or the server on its behalf) where routing.ts
 * says: a local account's or a service's durable mailbox, the server itself (its `<kind>/host`
 * hooks and IQ handlers, run here), or the link to a remote domain (none without federation:
 * answered as the RFC says).
 */
function routeFrom(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, from: Jid, to: Jid, done: Done): Step {
  const dest = destinationOf(to, t.env.domains);
  switch (dest.to) {
    // Into the receiver's durable mailbox: it is the receiver's from then on.
    case 'account': case 'service': t.emit({ do: 'durable', to: dest.address, xml, h, then: done }); return {};
    case 'host': return andThen(toHost(t, ctx, xml, h, from, to, dest), (p) => { handled(t, done); return p; });
    case 'remote': {
      // Into the link from this account's domain to the remote one: it is the link's from then on.
      if (t.env.settings.federation) { t.emit({ do: 'durable', to: linkAddress(from.domain, dest.domain), xml, h, then: done, link: true }); return {}; }
      const condition = unroutable(h, dest);
      if (condition) bounceError(t, ctx, h, 'cancel', condition);
      handled(t, done);
      return {};
    }
  }
}

/** A stanza for the server itself: IQ requests to the host's handlers, the rest to `<kind>/host`. */
function toHost(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, from: Jid, to: Jid, dest: Destination): Step {
  if (h.name === 'iq' && (h.type === 'get' || h.type === 'set')) return runIq(t, ctx, xml, h, from, to, 'host');
  return inbound(t, ctx, xml, h, to, from, () => {
    const condition = unroutable(h, dest);
    if (condition) bounceError(t, ctx, h, 'cancel', condition);
    return {};
  });
}

/** Sends a stanza the server made (a reply, an error, a module's stanza) onward, with no hooks. A
 *  reply to one of this account's own sessions goes to it directly. */
function routeOut(t: Turn, ctx: UserCtx, xml: string): void {
  const r = readHeader(t, xml);
  if (!r) return;
  const own = r.to.resource !== '' && r.to.toBareString() === ctx.jid ? ctx.sessions[r.to.resource] : undefined;
  if (own) { deliver(t, own, r.xml, false); return; }
  // Elsewhere as any stanza the server makes goes (an answer to the server itself or to a remote
  // domain has nobody to take it: nobody waits for it, and an error is never answered).
  t.emit({ do: 'route', xml: r.xml, h: r.h });
}

/**
 * A stanza a module sends from this actor. On the account's behalf ('from' is its JID) it passes the
 * outbound hooks first, as its clients' stanzas do: a presence broadcast reaches a contact only if
 * the contact's pre-presence hooks let it. Nobody is answered when a hook vetoes: the server sent it.
 */
export function routeAsUser(t: Turn, ctx: UserCtx, xml: string): Step {
  const step = routeOnBehalf(t, ctx, xml);
  // Its outbound hooks may wait: the message is done when they are (see settled).
  if (step instanceof Promise) (t.chains ??= []).push(step);
  return step;
}

/** A handler's step, done once every route chain it started has settled too. */
export function settled(t: Turn, step: Step): Step {
  if (!(step instanceof Promise) && !t.chains?.length) return step; // the chat path: nothing waits
  return andThen(step, (patch) => {
    if (!t.chains?.length) return patch;
    const wait = t.chains.splice(0);
    return Promise.all(wait).then(() => settled(t, patch));
  });
}

function routeOnBehalf(t: Turn, ctx: UserCtx, xml: string): Step {
  const r = readHeader(t, xml);
  if (!r) return {};
  let from: Jid | null = null;
  try { from = r.h.from ? parseJid(r.h.from) : null; } catch { /* not ours to hook */ }
  if (!from || !from.bareEquals(parseJid(ctx.jid))) { routeOut(t, ctx, xml); return {}; }
  const sender = from;
  return andThen(runOutbound(t.env.modules, r.h.name as StanzaKind, () => scope(t, ctx), xml, sender, r.to, () => undefined, undefined, r.h.type), (o) => {
    if (o.stopped) return {};
    if (o.xml === null) return routeFrom(t, ctx, xml, r.h, sender, r.to, undefined);
    routeOut(t, ctx, o.xml);
    return {};
  });
}

function readHeader(t: Turn, xml: string): { xml: string; h: StanzaHeader; to: Jid } | null {
  let h: StanzaHeader;
  try { h = validateStanza(xml, undefined, OWN_STANZA); } catch (err) {
    t.emit({ do: 'log', level: 'error', text: `not routed, a stanza that does not parse: ${(err as Error).message}: ${xml.slice(0, 200)}` });
    return null;
  }
  if (!h.to) return null;
  try { return { xml, h, to: parseJid(h.to) }; } catch { return null; }
}

function runIq(t: Turn, ctx: UserCtx, xml: string, h: StanzaHeader, from: Jid, to: Jid, target: 'self' | 'bare' | 'host'): Step {
  const svc = t.env;
  const stanza = parseElement(xml);
  const payload = stanza.children.find((c): c is XmlElement => typeof c !== 'string');
  if (!payload) { bounceError(t, ctx, h, 'modify', 'bad-request', 'empty iq'); return {}; }
  const ns = payload.getXmlns();
  // IQs to one's own account fall back to the server's handler (ping, disco, version with no 'to').
  const handler = svc.modules.iqHandler(h.type!, target, ns) ?? (target === 'self' ? svc.modules.iqHandler(h.type!, 'host', ns) : undefined);
  if (!handler) { bounceError(t, ctx, h, 'cancel', 'service-unavailable'); return {}; }
  const user = userContext(t, ctx);
  return andThen(dispatchIq(handler, { ...stanzaContext(t, ctx), stanza, payload, from, to, type: h.type as 'get' | 'set', user }, h, (reply) => routeOut(t, ctx, reply)),
    () => kept(ctx));
}

/** A stanza a closing session could not deliver: to another resource, or offline. */
export function onRedeliver(t: Turn, ctx: UserCtx, xml: string, except: string, sent?: number): Step {
  let h: StanzaHeader;
  let from: Jid;
  try {
    h = validateStanza(xml, undefined, OWN_STANZA);
    from = parseJid(h.from ?? ctx.jid);
  } catch (err) {
    t.emit({ do: 'log', level: 'warn', text: `undeliverable stanza dropped: ${(err as Error).message}` });
    return {};
  }
  // An error nobody received is not answered or kept (RFC 6120 §8.3.1); nor are non-messages.
  if (h.name !== 'message' || h.type === 'error') return {};
  const exceptRes = except.includes('/') ? except.slice(except.indexOf('/') + 1) : '';
  const { [exceptRes]: leaving, ...others } = ctx.sessions;
  // The handing-back session holds no copy from now on: were another handed back too, that one
  // must not count on this one.
  const keep = (p: Patch): Patch => (leaving ? { ...p, sessions: { ...(p.sessions ?? ctx.sessions), [exceptRes]: { ...leaving, since: 0 } } } : p);
  if (sent !== undefined) {
    // Copies of one message reached several resources: routed again once at most, and not while
    // another resource has it (as each resource ends, its unbind may overtake its hand-back).
    const holder = Object.values(others).find((s) => s.presence !== null && s.priority >= 0 && s.since > 0 && s.since <= sent);
    if (holder || (ctx.rerouted ?? []).includes(sent)) {
      t.emit({ do: 'log', level: 'info', text: `a copy of a message that ${exceptRes} never got is not routed again: ${holder ? `${holder.resource} has it` : 'another copy was'}` });
      return keep({});
    }
    const rerouted = [...(ctx.rerouted ?? []), sent].slice(-64);
    return andThen(routeMessage(t, { ...ctx, sessions: others }, xml, h, parseJid(ctx.jid), from, true), (p) => keep({ ...p, rerouted }));
  }
  return andThen(routeMessage(t, { ...ctx, sessions: others }, xml, h, parseJid(ctx.jid), from, true), keep);
}

/** What module views changed in `ctx` (they replace its sessions and mods objects, never mutate
 *  them): a patch that is no change, so no snapshot write, when they changed nothing. */
const kept = (ctx: UserCtx): Patch => ({ sessions: ctx.sessions, mods: ctx.mods });

// ---- module views ---------------------------------------------------------------------------------

/** The view's StanzaContext as a plain object, for events built by spreading it. */
function stanzaContext(t: Turn, ctx: UserCtx): StanzaContext {
  const v = new UserView(t, ctx);
  return { host: v.host, storage: v.storage, now: () => v.now(), route: (s) => v.route(s), log: (level, text) => v.log(level, text), operator: (c, a) => v.operator(c, a) };
}

/** A mutable view over the context for one message; the machine assigns what it changed. A class:
 *  one allocation per message on the chat path, not a dozen closures. It is the route events' base
 *  too (what a handler can do, and the account), so a hook costs one object more: its event. */
class UserView implements UserContext, StanzaContext {
  #jid: Jid | undefined;
  constructor(private readonly t: Turn, private readonly ctx: UserCtx) {}
  get user(): UserContext { return this; }
  get host(): string { return this.ctx.jid.slice(this.ctx.jid.indexOf('@') + 1); } // always local@domain
  get storage(): StanzaContext['storage'] { return this.t.env.storage; }
  now(): number { return this.t.env.now(); }
  route(s: XmlElement | string): void { routeAsUser(this.t, this.ctx, typeof s === 'string' ? s : serialize(s)); }
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void { log(level, `${this.ctx.jid}: ${text}`); } // the node's log, at its level
  operator(command: string, args: Record<string, unknown> = {}): Promise<unknown> { return callNode('admin', command, [args]); }
  get jid(): Jid { return (this.#jid ??= parseJid(this.ctx.jid)); }
  sessions(): SessionInfo[] { return Object.values(this.ctx.sessions); }
  session(r: string): SessionInfo | undefined { return this.ctx.sessions[r]; }
  deliver(r: string, stanza: XmlElement | string): Promise<void> {
    const s = this.ctx.sessions[r];
    if (!s) return Promise.resolve();
    const sent = sendDurable(s.address, { type: 'deliver', xml: typeof stanza === 'string' ? stanza : serialize(stanza) } satisfies ToSessionFromUser);
    // Modules that do not wait for a delivery must not leave a rejection unhandled.
    sent.catch((err: Error) => log('error', `delivery to ${s.address} failed: ${err.message}`));
    return sent;
  }
  // Reading stores nothing (a first read would otherwise cost a snapshot write): setState does.
  state<T>(module: string, init: () => T): T { return (module in this.ctx.mods ? this.ctx.mods[module] : init()) as T; }
  setState<T>(module: string, value: T): void { this.ctx.mods = { ...this.ctx.mods, [module]: value }; }
  setPresence(r: string, presence: string | null, priority: number): void {
    update(this.ctx, r, (s) => ({ ...s, presence, priority, since: presence === null ? 0 : s.presence === null || !s.since ? Date.now() : s.since }));
  }
  setInterested(r: string): void { update(this.ctx, r, (s) => ({ ...s, interested: true })); }
}

const userContext = (t: Turn, ctx: UserCtx): UserContext => new UserView(t, ctx);
/** What a route event is built on: the handler's context and the account, in one object. */
const scope = (t: Turn, ctx: UserCtx): StanzaContext & { user: UserContext } => new UserView(t, ctx);

function update(ctx: UserCtx, r: string, f: (s: SessionInfo) => SessionInfo): void {
  const s = ctx.sessions[r];
  if (s) ctx.sessions = { ...ctx.sessions, [r]: f(s) };
}
