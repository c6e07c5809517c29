// XEP-0191 Blocking Command, written only on the route hooks (no core edit): the blocklist lives in
// the user actor's state, where both the inbound and the outbound hooks run. Inbound from a blocked entity: presence dropped, messages and IQ get/set answered
// service-unavailable, everything else dropped (§3.5: the user appears offline). Outbound to one: a
// client's stanza refused with not-acceptable + <blocked/> (§3.6); what the server sends for the user
// (presence broadcasts, subscription stanzas) silently not sent. Blocking sends unavailable presence
// to the blocked contacts that had the user's presence; unblocking sends current presence again.
import { x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { tryParseJid, type Jid } from '../xmpp/jid.ts';
import { defineModule, type InboundEvent, type IqRequest, type OutboundEvent, type UserContext } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';
import { hasFrom, loadAll, sendPresenceOf, type ActorContext } from './roster-store.ts';

const MODULE = 'blocking';
const ERRORS_NS = 'urn:xmpp:blocking:errors';

/** In the user actor's snapshot: the blocked JIDs (as given, normalized) and who asked for the list. */
interface BlockState { jids: string[]; interested: string[] }

/** What an account that never blocked anyone reads (never mutated: changes go through setState). */
const NONE: BlockState = { jids: [], interested: [] };
const getState = (user: UserContext): BlockState => user.state<BlockState>(MODULE, () => NONE);

/** XEP-0191 §6 (XEP-0016's order): the full JID, the bare JID, the domain with the resource, the domain. */
export function isBlocked(list: readonly string[], jid: Jid): boolean {
  if (list.length === 0) return false;
  const domain = jid.domain;
  return list.includes(jid.toString()) || list.includes(jid.toBareString())
    || (jid.resource !== '' && list.includes(`${domain}/${jid.resource}`)) || list.includes(domain);
}

/** The items of a block/unblock request, normalized; an error text for an invalid one. */
function itemsOf(payload: XmlElement): string[] | { error: string } {
  const out: string[] = [];
  for (const item of payload.getChildren('item', NS.BLOCKING)) {
    const jid = tryParseJid(item.attr('jid') ?? '');
    if (!jid) return { error: `not a valid JID: '${item.attr('jid') ?? ''}'` };
    const s = jid.toString();
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

let pushSeq = 0;

const listOf = (jids: readonly string[]) => jids.map((jid) => x('item', { jid }));

/** The new list, and the change to every interested resource (§3.3, §3.4). */
function publish(user: UserContext, st: BlockState, push: XmlElement): void {
  user.setState(MODULE, st);
  const bare = user.jid.bare();
  for (const s of user.sessions()) {
    if (st.interested.includes(s.resource)) void user.deliver(s.resource, x('iq', { type: 'set', id: `block-push-${++pushSeq}`, to: bare.withResource(s.resource).toString() }, push));
  }
}

/** Roster contacts that receive the user's presence and match `entries` (a contact or its domain). */
async function subscribersMatching(ctx: ActorContext, entries: readonly string[]): Promise<string[]> {
  if (entries.length === 0) return [];
  const items = await loadAll(ctx.storage, ctx.user.jid.toBareString());
  return items.filter((i) => hasFrom(i.subscription) && entries.some((e) => isBlocked([e], tryParseJid(i.jid)!))).map((i) => i.jid);
}

async function block(iq: IqRequest & ActorContext, maxItems: number): Promise<void> {
  const items = itemsOf(iq.payload);
  if ('error' in items) { iq.error('jid-malformed', 'modify', items.error); return; }
  if (items.length === 0) { iq.error('bad-request', 'modify', 'a block request names at least one JID'); return; }
  const st = getState(iq.user);
  const added = items.filter((j) => !st.jids.includes(j));
  if (st.jids.length + added.length > maxItems) { iq.error('resource-constraint', 'wait', `at most ${maxItems} blocked JIDs`); return; }
  // Sent while the contact is not blocked yet: afterwards the outbound check would stop it.
  for (const contact of await subscribersMatching(iq, added)) sendPresenceOf(iq, contact, 'unavailable');
  publish(iq.user, { ...st, jids: [...st.jids, ...added] }, x('block', { xmlns: NS.BLOCKING }, listOf(items)));
  iq.reply();
}

async function unblock(iq: IqRequest & ActorContext): Promise<void> {
  const items = itemsOf(iq.payload);
  if ('error' in items) { iq.error('jid-malformed', 'modify', items.error); return; }
  const st = getState(iq.user);
  // No items: unblock everyone (§3.5).
  const removed = items.length === 0 ? st.jids : st.jids.filter((j) => items.includes(j));
  const jids = st.jids.filter((j) => !removed.includes(j));
  publish(iq.user, { ...st, jids }, x('unblock', { xmlns: NS.BLOCKING }, listOf(items)));
  for (const contact of await subscribersMatching(iq, removed)) {
    if (!isBlocked(jids, tryParseJid(contact)!)) sendPresenceOf(iq, contact, 'current');
  }
  iq.reply();
}

/** §3.5: the user appears offline to a blocked entity. */
function inbound(ev: InboundEvent): boolean {
  if (!isBlocked(getState(ev.user).jids, ev.from)) return false;
  const type = ev.stanza.attr('type');
  const asks = ev.stanza.is('message') ? type !== 'error' : ev.stanza.is('iq') && (type === 'get' || type === 'set');
  if (asks) ev.error('service-unavailable', 'cancel');
  return true;
}

/** §3.6: nothing reaches a blocked entity from the user; a client is told why. */
function outbound(ev: OutboundEvent): boolean {
  if (!isBlocked(getState(ev.user).jids, ev.to)) return false;
  const type = ev.stanza.attr('type');
  const quiet = type === 'error' || type === 'result' || (ev.stanza.is('presence') && type === 'unavailable');
  if (ev.resource !== undefined && !quiet) ev.error('not-acceptable', 'cancel', undefined, { app: x('blocked', { xmlns: ERRORS_NS }) });
  return true;
}

const options = {
  max_items: { type: 'number', default: 1000, min: 1, max: 100_000, doc: 'Most blocked JIDs per account (kept in the account actor\'s state); more is refused with resource-constraint' },
} as const;

export default defineModule({
  name: MODULE,
  description: 'Blocking Command (XEP-0191): block and unblock JIDs, with pushes; blocked traffic refused both ways',
  xeps: [{ xep: 191, version: '1.3', status: 'complete' }],
  features: { host: [NS.BLOCKING] },
  options,
  depends: ['roster'],
  setup(m) {
    m.iq('get', 'self', NS.BLOCKING, (iq) => {
      const user = iq.user!;
      const st = getState(user);
      const resource = iq.from.resource;
      if (resource && !st.interested.includes(resource)) user.setState(MODULE, { ...st, interested: [...st.interested, resource] });
      iq.reply(x('blocklist', { xmlns: NS.BLOCKING }, listOf(st.jids)));
    });
    m.iq('set', 'self', NS.BLOCKING, (iq) => {
      const ev = iq as IqRequest & ActorContext;
      if (iq.payload.localName === 'block') return block(ev, m.optionsFor(ev.host).max_items);
      if (iq.payload.localName === 'unblock') return unblock(ev);
      iq.error('bad-request', 'modify', `unknown blocking request <${iq.payload.localName}/>`);
    });
    m.hook('session/unbound', (ev) => {
      const st = getState(ev.user);
      if (st.interested.includes(ev.resource)) ev.user.setState(MODULE, { ...st, interested: st.interested.filter((r) => r !== ev.resource) });
    });
    for (const kind of ['message', 'presence', 'iq'] as const) {
      for (const target of ['bare', 'full'] as const) {
        m.hook(`${kind}/${target}`, inbound, 100); // before presence, offline and delivery
        m.hook(`pre-${kind}/${target}`, outbound, 100);
      }
    }
  },
});
