// RFC 6121 §3 and §4 in the user actor: the presence subscription state machine on both sides
// (Appendix A's tables, pre-approval §3.4, pending inbound requests kept until answered) and presence
// itself: initial presence with probes, broadcast to subscribers and to the account's own resources,
// answers to probes, directed presence, and unavailable presence when a resource goes away.
import { serialize, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { delayElement, withDelay } from '../xmpp/delay.ts';
import { stanzaErrorElement } from '../xmpp/errors.ts';
import type { Jid } from '../xmpp/jid.ts';
import { andThen, defineModule, type PresenceEvent, type SessionEvent, type UserContext } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';
import { parsePriority } from '../xmpp/priority.ts';
import type { RosterApi } from './roster.ts';
import {
  availableSessions, hasFrom, hasTo, loadAll, loadForChange, loadItem, newItem, saveItem,
  sendPresenceOf, type ActorContext, type ItemAndVersion, type RosterItem, type Subscription,
} from './roster-store.ts';

const MODULE = 'presence';

/** Per resource: whether it sent available presence, and where it sent directed available presence. */
interface ResourceState { on: boolean; directed: string[] }
/**
 * Kept in the user actor's snapshot: small, and it survives a restart so stale resources get cleaned up.
 * `lastUnavailable` is the account's last unavailable presence and when it was sent, for probes (§4.3.2).
 */
interface PresenceState { res: Record<string, ResourceState>; lastUnavailable: { xml: string; at: number } | null }

/** Cap on tracked directed-presence recipients per resource (the state lives in the actor snapshot). */
const MAX_DIRECTED = 500;

const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);
type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

function getState(user: UserContext): PresenceState {
  return user.state<PresenceState>(MODULE, () => ({ res: {}, lastUnavailable: null }));
}

const addTo = (s: Subscription): Subscription => (s === 'from' ? 'both' : s === 'none' ? 'to' : s);
const dropTo = (s: Subscription): Subscription => (s === 'both' ? 'from' : s === 'to' ? 'none' : s);
const addFrom = (s: Subscription): Subscription => (s === 'to' ? 'both' : s === 'none' ? 'from' : s);
const dropFrom = (s: Subscription): Subscription => (s === 'both' ? 'to' : s === 'from' ? 'none' : s);

const fullOf = (user: UserContext, resource: string): string => user.jid.bare().withResource(resource).toString();

function deliverToAvailable(user: UserContext, stanza: XmlElement | string): void {
  for (const s of availableSessions(user)) user.deliver(s.resource, stanza);
}

function parseStored(xml: string): XmlElement {
  try { return parseElement(xml); } catch { return x('presence'); }
}

// ---- outbound: what the user's client sent -------------------------------------------------------
// Handlers that read the roster are async (the user actor waits for them); the others stay synchronous.

type Outbound = PresenceEvent & { resource: string };

function outbound(ev: Outbound, maxItems: number): void | Promise<void> {
  const user = ev.user;
  const type = ev.stanza.attr('type');
  const hasTarget = ev.stanza.attr('to') !== undefined;
  const full = fullOf(user, ev.resource);
  if (type === undefined || type === 'unavailable') {
    return hasTarget ? directed(ev, full, type === undefined) : broadcast(ev, full, type === undefined);
  }
  if (SUBSCRIPTION_TYPES.has(type)) {
    if (!hasTarget) { ev.error('bad-request', undefined, 'a subscription request needs a to'); return; }
    const contact = ev.to.bare();
    // An account is implicitly subscribed to itself (RFC 6121 §4.2.2); there is no state to change.
    if (contact.bareEquals(user.jid)) return;
    return outboundSubscription(ev, type as SubscriptionType, contact.toString(), maxItems);
  }
  if (type === 'probe' || type === 'error') {
    if (hasTarget) ev.route(ev.stanza.withAttrs({ from: full, to: ev.to.toString() }));
    return;
  }
  ev.error('bad-request', undefined, `unknown presence type '${type}'`);
}

/** Presence with no 'to': initial or subsequent available presence (§4.2, §4.4) or unavailable (§4.5). */
async function broadcast(ev: Outbound, full: string, available: boolean): Promise<void> {
  const el = ev.stanza.withAttrs({ from: full, to: null });
  // Nothing to undo for a resource that never sent presence.
  if (!available && !getState(ev.user).res[ev.resource]) return;
  const items = await loadAll(ev.storage, ev.user.jid.toBareString());
  if (available) goAvailable(ev, ev.resource, el, parsePriority(ev.stanza), items);
  else goUnavailable(ev, ev.resource, el, items, true);
}

function goAvailable(ctx: ActorContext, resource: string, el: XmlElement, priority: number, items: RosterItem[]): void {
  const user = ctx.user;
  const st = getState(user);
  const prev = st.res[resource];
  const initial = !prev?.on;
  user.setPresence(resource, serialize(el), priority);
  st.res[resource] = { on: true, directed: prev?.directed ?? [] };
  user.setState(MODULE, st);
  const full = el.attr('from')!;
  // §4.2.2 / §4.4.2: to every contact subscribed to the user ...
  for (const item of items) if (hasFrom(item.subscription)) ctx.route(el.withAttrs({ to: item.jid }));
  // ... and to all of the user's available resources, the sender included (implicit self-subscription).
  for (const s of user.sessions()) {
    if (s.resource === resource || s.presence !== null) user.deliver(s.resource, el.withAttrs({ to: fullOf(user, s.resource) }));
  }
  if (!initial) return;
  // §4.2.2: probe the contacts the user is subscribed to; their servers answer to this full JID.
  for (const item of items) if (hasTo(item.subscription)) ctx.route(x('presence', { type: 'probe', from: full, to: item.jid }));
  for (const s of availableSessions(user)) {
    if (s.resource !== resource) user.deliver(resource, parseStored(s.presence).withAttrs({ from: fullOf(user, s.resource), to: full }));
  }
  // §3.1.3: subscription requests not yet answered are delivered each time the user becomes available.
  for (const item of items) if (item.pendingIn !== null) user.deliver(resource, item.pendingIn);
}

/**
 * A resource's unavailable presence (sent by it, or made up when its stream ended): to the contacts that
 * had its presence and to whoever got its directed presence (§4.5.2, §4.6.3), then forget the resource.
 */
function goUnavailable(ctx: ActorContext, resource: string, el: XmlElement, items: RosterItem[], fromClient: boolean): void {
  const user = ctx.user;
  const st = getState(user);
  const r = st.res[resource];
  if (!r) return;
  const subscribers = new Set(r.on ? items.filter((i) => hasFrom(i.subscription)).map((i) => i.jid) : []);
  for (const jid of subscribers) ctx.route(el.withAttrs({ to: jid }));
  for (const d of r.directed) {
    const slash = d.indexOf('/');
    if (!subscribers.has(slash === -1 ? d : d.slice(0, slash))) ctx.route(el.withAttrs({ to: d }));
  }
  if (r.on) {
    for (const s of user.sessions()) {
      if (s.presence === null || (s.resource === resource && !fromClient)) continue;
      user.deliver(s.resource, el.withAttrs({ to: fullOf(user, s.resource) }));
    }
    if (fromClient && user.session(resource)) user.setPresence(resource, null, 0);
    st.lastUnavailable = { xml: serialize(el), at: ctx.now() };
  }
  delete st.res[resource];
  user.setState(MODULE, st);
}

/** Presence with a 'to' (§4.6): routed as is, and remembered so unavailable reaches the recipient too. */
function directed(ev: Outbound, full: string, available: boolean): void {
  const target = ev.to.toString();
  const stanza = ev.stanza.withAttrs({ from: full, to: target });
  ev.route(stanza);
  if (ev.to.bareEquals(ev.user.jid)) return; // to the user's own JID: nothing to track
  const st = getState(ev.user);
  const r = st.res[ev.resource] ?? { on: false, directed: [] };
  if (!available) r.directed = r.directed.filter((d) => d !== target);
  else if (!r.directed.includes(target)) {
    if (r.directed.length < MAX_DIRECTED) r.directed.push(target);
    else ev.log('warn', `${full}: more than ${MAX_DIRECTED} directed presence recipients; ${target} will not get unavailable`);
  }
  if (!r.on && r.directed.length === 0) delete st.res[ev.resource];
  else st.res[ev.resource] = r;
  ev.user.setState(MODULE, st);
}

/** Resources that left without their unavailable presence (a stream that ended, or a crash). */
async function cleanUp(ev: ActorContext, resources: string[]): Promise<void> {
  const stale = resources.filter((r) => getState(ev.user).res[r]);
  if (stale.length === 0) return;
  const items = await loadAll(ev.storage, ev.user.jid.toBareString());
  for (const r of stale) goUnavailable(ev, r, x('presence', { type: 'unavailable', from: fullOf(ev.user, r) }), items, false);
}

// ---- subscriptions: the tables of RFC 6121 Appendix A -------------------------------------------

async function outboundSubscription(ev: Outbound, type: SubscriptionType, contact: string, maxItems: number): Promise<void> {
  const owner = ev.user.jid.toBareString();
  // §3.1.2: subscription stanzas go out from the bare JID, to the bare JID.
  const stanza = ev.stanza.withAttrs({ from: owner, to: contact });
  // only subscribe and subscribed (a pre-approval) can add an item
  const d = await loadForChange(ev.storage, owner, contact, type === 'subscribe' || type === 'subscribed' ? maxItems : null);
  switch (type) {
    case 'subscribe': return outSubscribe(ev, ev.resource, stanza, contact, d);
    case 'unsubscribe': return outUnsubscribe(ev, stanza, contact, d);
    case 'subscribed': return outSubscribed(ev, ev.resource, stanza, contact, d);
    case 'unsubscribed': return outUnsubscribed(ev, stanza, contact, d);
  }
}

function rosterFull(ctx: ActorContext, resource: string, stanza: XmlElement): void {
  const err = stanzaErrorElement(stanza, null, 'policy-violation', 'the roster is full');
  if (err) ctx.user.deliver(resource, err.withAttrs({ to: fullOf(ctx.user, resource) }));
}

// A.2.1: always routed; None/From (+ Pending In) gain Pending Out.
function outSubscribe(ctx: ActorContext, resource: string, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  if (!cur && d.full) { rosterFull(ctx, resource, stanza); return; }
  ctx.route(stanza);
  if (cur && (hasTo(cur.subscription) || cur.ask)) return;
  return saveItem(ctx, cur, { ...(cur ?? newItem(contact)), ask: true, listed: true }, d.ver, contact);
}

// A.2.2: always routed; To and Pending Out are cancelled.
function outUnsubscribe(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  ctx.route(stanza);
  if (!cur || !(hasTo(cur.subscription) || cur.ask)) return;
  return saveItem(ctx, cur, { ...cur, subscription: dropTo(cur.subscription), ask: false }, d.ver, contact);
}

// A.2.3: approves a pending request (routed), else records a pre-approval (§3.4, not routed).
function outSubscribed(ctx: ActorContext, resource: string, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  const sub = cur?.subscription ?? 'none';
  if (hasFrom(sub)) return;
  if (cur && cur.pendingIn !== null) {
    ctx.route(stanza);
    const after: RosterItem = { ...cur, subscription: addFrom(sub), pendingIn: null, approved: false, listed: true };
    sendPresenceOf(ctx, contact, 'current'); // §3.1.5: the new subscriber gets current presence at once
    return saveItem(ctx, cur, after, d.ver, contact);
  }
  if (cur?.approved) return;
  if (!cur && d.full) { rosterFull(ctx, resource, stanza); return; }
  return saveItem(ctx, cur, { ...(cur ?? newItem(contact)), approved: true, listed: true }, d.ver, contact);
}

// A.2.4: denies a pending request or cancels From (routed); otherwise only cancels a pre-approval.
function outUnsubscribed(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  if (!cur) return;
  if (hasFrom(cur.subscription) || cur.pendingIn !== null) {
    // §3.2.2: unavailable goes out while the contact is still subscribed, so before 'unsubscribed'
    if (hasFrom(cur.subscription)) sendPresenceOf(ctx, contact, 'unavailable');
    ctx.route(stanza);
    const after: RosterItem = { ...cur, subscription: dropFrom(cur.subscription), pendingIn: null, approved: false };
    return saveItem(ctx, cur, after, d.ver, contact);
  }
  if (cur.approved) return saveItem(ctx, cur, { ...cur, approved: false }, d.ver, contact);
}

// ---- inbound: what arrives for this user --------------------------------------------------------

function inbound(ev: PresenceEvent, maxItems: number): void | Promise<void> {
  const type = ev.stanza.attr('type');
  if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
    return ev.from.bareEquals(ev.user.jid) ? undefined : inboundSubscription(ev, type as SubscriptionType, maxItems);
  }
  if (type === 'probe') return answerProbe(ev, ev.from, ev.stanza.attr('id'));
  if (type === undefined || type === 'unavailable' || type === 'error') {
    // §8.5.3: to a full JID, that session only, if it exists; §8.5.2: to the bare JID, every
    // available resource. Nothing is kept for an account that is offline.
    if (!ev.to.isBare()) { if (ev.user.session(ev.to.resource)) ev.user.deliver(ev.to.resource, ev.xml); return; }
    deliverToAvailable(ev.user, ev.xml);
  }
}

async function inboundSubscription(ev: PresenceEvent, type: SubscriptionType, maxItems: number): Promise<void> {
  const owner = ev.user.jid.toBareString();
  const contact = ev.from.toBareString();
  const stanza = ev.stanza.withAttrs({ from: contact, to: owner });
  const d = await loadForChange(ev.storage, owner, contact, type === 'subscribe' ? maxItems : null);
  switch (type) {
    case 'subscribe': return inSubscribe(ev, stanza, contact, d);
    case 'unsubscribe': return inUnsubscribe(ev, stanza, contact, d);
    case 'subscribed': return inSubscribed(ev, stanza, contact, d);
    case 'unsubscribed': return inUnsubscribed(ev, stanza, contact, d);
  }
}

/**
 * §4.3.2: to a subscriber, the last presence of each available resource, or when there is none the last
 * unavailable presence with a delay stamp of when it was sent (a bare unavailable if there never was
 * one); to anyone else, 'unsubscribed'. Replies the server makes up carry the probe's id.
 */
async function answerProbe(ctx: ActorContext, prober: Jid, id: string | undefined): Promise<void> {
  const user = ctx.user;
  const item = await loadItem(ctx.storage, user.jid.toBareString(), prober.toBareString());
  const self = user.jid.toBareString();
  const to = prober.toString();
  const isSelf = prober.bareEquals(user.jid);
  if (!isSelf && !(item && hasFrom(item.subscription))) {
    ctx.route(x('presence', { type: 'unsubscribed', id, from: self, to: prober.toBareString() }));
    return;
  }
  const avail = availableSessions(user).filter((s) => !(isSelf && s.resource === prober.resource));
  for (const s of avail) ctx.route(parseStored(s.presence).withAttrs({ from: fullOf(user, s.resource), to }));
  if (avail.length > 0) return;
  const last = getState(user).lastUnavailable;
  ctx.route(last !== null
    ? withDelay(parseStored(last.xml).withAttrs({ to }), delayElement(self, last.at))
    : x('presence', { type: 'unavailable', id, from: self, to }));
}

// A.3.1: None/To gain Pending In and the request is delivered (and kept); From/Both get an automatic
// 'subscribed'; a pre-approval accepts on the user's behalf (§3.4).
function inSubscribe(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  const sub = cur?.subscription ?? 'none';
  const self = ctx.user.jid.toBareString();
  if (hasFrom(sub)) {
    ctx.route(x('presence', { type: 'subscribed', from: self, to: contact }));
    sendPresenceOf(ctx, contact, 'current');
    return;
  }
  if (cur?.approved) {
    const after: RosterItem = { ...cur, subscription: addFrom(sub), approved: false, pendingIn: null, listed: true };
    const write = saveItem(ctx, cur, after, d.ver, contact);
    ctx.route(x('presence', { type: 'subscribed', from: self, to: contact }));
    sendPresenceOf(ctx, contact, 'current');
    return write;
  }
  if (cur && cur.pendingIn !== null) return;
  if (!cur && d.full) {
    const err = stanzaErrorElement(stanza, null, 'policy-violation', 'the roster is full');
    if (err) ctx.route(err);
    return;
  }
  const write = saveItem(ctx, cur, { ...(cur ?? newItem(contact)), pendingIn: serialize(stanza) }, d.ver, contact);
  deliverToAvailable(ctx.user, stanza);
  return write;
}

// A.3.2: From and Pending In end; delivered, and the contact gets unavailable presence from the user's
// resources (§3.3.3). No 'unsubscribed' goes back (RFC 3921's table had one): arriving after the
// contact subscribed again, it would cancel that new request on the contact's side.
function inUnsubscribe(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  if (!cur || !(hasFrom(cur.subscription) || cur.pendingIn !== null)) return;
  const write = saveItem(ctx, cur, { ...cur, subscription: dropFrom(cur.subscription), pendingIn: null }, d.ver, contact);
  deliverToAvailable(ctx.user, stanza);
  if (hasFrom(cur.subscription)) sendPresenceOf(ctx, contact, 'unavailable');
  return write;
}

// A.3.3: only an outstanding request (Pending Out without To) becomes To.
function inSubscribed(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  if (!cur || !cur.ask || hasTo(cur.subscription)) return;
  const write = saveItem(ctx, cur, { ...cur, subscription: addTo(cur.subscription), ask: false }, d.ver, contact);
  deliverToAvailable(ctx.user, stanza);
  return write;
}

// A.3.4: To and Pending Out end.
function inUnsubscribed(ctx: ActorContext, stanza: XmlElement, contact: string, d: ItemAndVersion): Promise<void> | void {
  const cur = d.item;
  if (!cur || !(cur.ask || hasTo(cur.subscription))) return;
  const write = saveItem(ctx, cur, { ...cur, subscription: dropTo(cur.subscription), ask: false }, d.ver, contact);
  deliverToAvailable(ctx.user, stanza);
  return write;
}

export default defineModule({
  name: MODULE,
  description: 'Presence subscriptions and broadcast (RFC 6121 §3, §4) with subscription pre-approval',
  depends: ['roster'],
  streamFeatures: [serialize(x('sub', { xmlns: NS.PRE_APPROVAL }))],
  setup(m) {
    const roster = m.depends<RosterApi>('roster');
    const maxItems = (host: string) => roster.maxItems(host);
    m.hook('presence/out', (ev) => andThen(outbound(ev, maxItems(ev.host)), () => true));
    for (const target of ['bare', 'full'] as const) m.hook(`presence/${target}`, (ev) => andThen(inbound(ev, maxItems(ev.host)), () => true));
    m.hook('session/unbound', (ev: SessionEvent) => cleanUp(ev, [ev.resource]));
    // A resource still in the state when it binds again belongs to a stream that ended without an
    // unbound (a crash): its contacts still think it is online.
    m.hook('session/bound', (ev: SessionEvent) => cleanUp(ev, [ev.resource]));
    m.hook('user/started', (ev) => {
      const live = new Set(ev.user.sessions().map((s) => s.resource));
      return cleanUp(ev, Object.keys(getState(ev.user).res).filter((r) => !live.has(r)));
    });
    return {
      lastUnavailable: (user) => getState(user).lastUnavailable,
      subscribed: async (ctx, contact) => { const item = await loadItem(ctx.storage, ctx.user.jid.toBareString(), contact); return !!item && hasFrom(item.subscription); },
      approve: (ctx, contact) => onBehalf(ctx, 'subscribed', contact, maxItems(ctx.host)),
      ask: (ctx, contact) => onBehalf(ctx, 'subscribe', contact, maxItems(ctx.host)),
    } satisfies PresenceApi;
  },
});

/** What the presence module tells the modules that depend on it. */
export interface PresenceApi {
  /** The account's last unavailable presence and when (ms), or null if it never went offline here. */
  lastUnavailable(user: UserContext): { xml: string; at: number } | null;
  /** Whether `contact` (bare) is subscribed to the account's presence (RFC 6121 'from' or 'both'). */
  subscribed(ctx: ActorContext, contact: string): Promise<boolean>;
  /** The account approves `contact`'s subscription, as its client does with 'subscribed': the
   *  pending request, or else the next one (a pre-approval, §3.4). */
  approve(ctx: ActorContext, contact: string): Promise<void>;
  /** The account asks for `contact`'s presence, as its client does with 'subscribe'. */
  ask(ctx: ActorContext, contact: string): Promise<void>;
}

/** A subscription stanza the server sends for the account (no client of it did), with the roster
 *  changes of Appendix A.2 as for one of its clients'. */
async function onBehalf(ctx: ActorContext, type: 'subscribe' | 'subscribed', contact: string, maxItems: number): Promise<void> {
  const owner = ctx.user.jid.toBareString();
  const d = await loadForChange(ctx.storage, owner, contact, maxItems);
  const stanza = x('presence', { type, from: owner, to: contact });
  await (type === 'subscribe' ? outSubscribe(ctx, '', stanza, contact, d) : outSubscribed(ctx, '', stanza, contact, d));
}
