// What the roster and presence modules share: the stored roster item (RFC 6121 §2.1 plus the
// subscription sub-states of Appendix A), its XML form, and versioned writes with roster pushes.
//
// Every change is read, decide, write inside one async hook: the user actor is suspended until the
// hook settles, so two changes for one account never interleave (a `subscribe` and an inbound
// `subscribed` for the same contact cannot both start from the old state), and the stanza stays in
// the durable mailbox until the write has landed — a crash in between replays it, and every change
// is safe to replay.
import { keyOf, keysUnder } from '../storage/db.ts';

/** The roster's keys: roster!<owner>!<contact> per item, rosterver!<owner> for the version. */
export const rosterKeys = {
  item: (owner: string, contact: string) => keyOf('roster', owner, contact),
  of: (owner: string) => keysUnder('roster', owner),
  ver: (owner: string) => keyOf('rosterver', owner),
};
import { serialize, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import type { StanzaContext, Storage, UserContext } from '../xmpp/module.ts';

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  /** The contact's bare JID. */
  jid: string;
  name?: string;
  groups: string[];
  subscription: Subscription;
  /** Pending out: the user asked for the contact's presence and has no answer yet (ask='subscribe'). */
  ask: boolean;
  /** Pre-approved (RFC 6121 §3.4): the contact's next subscribe is accepted without asking the user. */
  approved: boolean;
  /** Pending in: the contact's subscribe stanza, kept whole and redelivered at each initial presence. */
  pendingIn: string | null;
  /** False for a record that only holds a pending inbound request: the client's roster does not show it. */
  listed: boolean;
}

export const hasTo = (s: Subscription): boolean => s === 'to' || s === 'both';
export const hasFrom = (s: Subscription): boolean => s === 'from' || s === 'both';

export function newItem(jid: string): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, approved: false, pendingIn: null, listed: false };
}

/** `<item/>` as the client sees it (RFC 6121 §2.1.2). */
export function itemElement(item: RosterItem): XmlElement {
  return x('item', {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask ? 'subscribe' : null,
    approved: item.approved ? 'true' : null,
  }, item.groups.map((g) => x('group', null, g)));
}

// ---- storage -------------------------------------------------------------------------------------


export async function loadItem(storage: Storage, owner: string, contact: string): Promise<RosterItem | undefined> {
  return storage.get<RosterItem>(rosterKeys.item(owner, contact));
}

export async function loadAll(storage: Storage, owner: string): Promise<RosterItem[]> {
  return (await storage.range<RosterItem>(rosterKeys.of(owner))).map(([, v]) => v);
}

/** The version counter; undefined when the roster never changed (or predates versioning). */
export async function loadVersion(storage: Storage, owner: string): Promise<number | undefined> {
  return storage.get<number>(rosterKeys.ver(owner));
}

/** True when the account already holds `max` records, so one more would exceed the limit. */
export async function isFull(storage: Storage, owner: string, max: number): Promise<boolean> {
  return (await storage.range(rosterKeys.of(owner), { limit: max })).length >= max;
}

/** One item with the version, for changes to a single contact. */
export interface ItemAndVersion { item: RosterItem | undefined; ver: number | undefined; full: boolean }

/** `maxItems` null: this change never creates a record, so the limit is not looked at. */
export async function loadForChange(storage: Storage, owner: string, contact: string, maxItems: number | null): Promise<ItemAndVersion> {
  const [item, ver] = await Promise.all([loadItem(storage, owner, contact), loadVersion(storage, owner)]);
  const full = item === undefined && maxItems !== null ? await isFull(storage, owner, maxItems) : false;
  return { item, ver, full };
}

// A counter that only grows. It starts at the clock rather than 1 so that an account deleted and created
// again can never hand out a version a client cached for the old one.
function nextVersion(ver: number | undefined, now: number): number {
  return ver === undefined ? Math.max(1, Math.floor(now)) : ver + 1;
}

export const versionString = (ver: number | undefined): string => String(ver ?? 0);

let pushSeq = 0;

/** Roster push (RFC 6121 §2.1.6) to every resource that asked for the roster. No 'from': it is the server. */
export function pushToInterested(user: UserContext, ver: number, item: XmlElement): void {
  for (const s of user.sessions()) {
    if (!s.interested) continue;
    const to = user.jid.bare().withResource(s.resource).toString();
    user.deliver(s.resource, x('iq', { type: 'set', id: `push-${ver}-${++pushSeq}`, to },
      x('query', { xmlns: NS.ROSTER, ver: String(ver) }, item)));
  }
}

export type ActorContext = StanzaContext & { user: UserContext };

/**
 * Stores one contact's new record (null = gone) and, when what the client sees changed, bumps the version
 * and pushes the item. The push goes first: a crash before the write replays the change, which pushes
 * again (harmless), whereas a write without its push would never be pushed on replay.
 */
export async function saveItem(
  ctx: ActorContext, before: RosterItem | undefined, after: RosterItem | null, ver: number | undefined, contact: string,
): Promise<void> {
  const owner = ctx.user.jid.toBareString();
  const shown = (i: RosterItem | null | undefined) => (i && i.listed ? serialize(itemElement(i)) : null);
  const beforeXml = shown(before), afterXml = shown(after);
  const ops: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }> = [];
  // an unlisted record exists only to hold a pending request
  const keep = after !== null && (after.listed || after.pendingIn !== null);
  if (keep) ops.push({ type: 'put', key: rosterKeys.item(owner, contact), value: after });
  else if (before !== undefined) ops.push({ type: 'del', key: rosterKeys.item(owner, contact) });
  if (beforeXml !== afterXml) {
    const newVer = nextVersion(ver, ctx.now());
    ops.push({ type: 'put', key: rosterKeys.ver(owner), value: newVer });
    pushToInterested(ctx.user, newVer, afterXml !== null ? itemElement(after!) : x('item', { jid: contact, subscription: 'remove' }));
  }
  if (ops.length) await ctx.storage.batch(ops);
}

// ---- presence the subscription changes send ------------------------------------------------------

/** The user's sessions that sent available presence (RFC 6121 §4.1's "available resources"). */
export function availableSessions(user: UserContext): Array<{ resource: string; presence: string }> {
  const out: Array<{ resource: string; presence: string }> = [];
  for (const s of user.sessions()) if (s.presence !== null) out.push({ resource: s.resource, presence: s.presence });
  return out;
}

/**
 * From each available resource of the user to `to`: its current presence (a new subscriber gets it at
 * once, RFC 6121 §3.1.5), or unavailable presence (a subscription from `to` ended, §3.2.2 and §3.3.3).
 */
export function sendPresenceOf(ctx: ActorContext, to: string, kind: 'current' | 'unavailable'): void {
  const bare = ctx.user.jid.bare();
  for (const s of availableSessions(ctx.user)) {
    const from = bare.withResource(s.resource).toString();
    if (kind === 'unavailable') {
      ctx.route(x('presence', { type: 'unavailable', from, to }));
      continue;
    }
    let el: XmlElement;
    try { el = parseElement(s.presence); } catch { el = x('presence'); }
    ctx.route(el.withAttrs({ from, to }));
  }
}
