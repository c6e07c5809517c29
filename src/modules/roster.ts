// RFC 6121 §2: roster get (with versioning, §2.6), set (add/update) and remove, roster pushes to the
// resources that asked for the roster, and a per-account item limit. Runs in the user actor.
import { serialize, x } from '../xml/builder.ts';
import { tryParseJid } from '../xmpp/jid.ts';
import { defineModule, type IqRequest } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';
import {
  hasFrom, hasTo, itemElement, loadAll, loadForChange, loadVersion, newItem, rosterKeys, saveItem, sendPresenceOf,
  versionString, type ActorContext, type ItemAndVersion, type RosterItem, type Subscription,
} from './roster-store.ts';

const MODULE = 'roster';

const options = {
  max_items: { type: 'number', default: 1000, min: 1, max: 1_000_000, doc: 'Most roster items per account; an addition beyond it is refused with policy-violation' },
  max_name_length: { type: 'number', default: 1023, min: 1, max: 65535, doc: "Longest item 'name' in UTF-8 octets; longer is refused with not-acceptable" },
  max_group_length: { type: 'number', default: 1023, min: 1, max: 65535, doc: 'Longest <group/> name in UTF-8 octets; longer is refused with not-acceptable' },
} as const;

type Options = { max_items: number; max_name_length: number; max_group_length: number };

/** What the roster module gives the modules that depend on it (m.depends('roster')). */
export interface RosterApi {
  /** Most roster records per account of `host` (pending inbound requests count too: they are stored). */
  maxItems(host: string): number;
}

/** A roster IQ from one of the account's own resources, in its user actor. */
type OwnIq = IqRequest & ActorContext;

/** A roster set's item once checked: what the client may change. */
interface SetRequest { jid: string; remove: boolean; name?: string; groups: string[] }

/** Checks a roster set (RFC 6121 §2.3.3, §2.5); an error condition and text, or the request. */
export function checkSet(iq: IqRequest, o: Options): SetRequest | { error: Parameters<IqRequest['error']>[0]; text: string } {
  const items = iq.payload.getChildren('item', NS.ROSTER);
  if (items.length !== 1) return { error: 'bad-request', text: 'a roster set carries exactly one item' };
  const el = items[0]!;
  const sub = el.attr('subscription');
  if (sub !== undefined && sub !== 'remove') return { error: 'bad-request', text: "subscription may only be 'remove' in a roster set" };
  const raw = el.attr('jid');
  const jid = raw === undefined ? undefined : tryParseJid(raw);
  if (!jid) return { error: 'jid-malformed', text: 'the item has no valid jid' };
  if (!jid.isBare()) return { error: 'jid-malformed', text: 'roster items are bare JIDs' };
  const contact = jid.toString();
  if (jid.bareEquals(iq.user!.jid)) return { error: 'not-allowed', text: 'an account is not in its own roster' };
  if (sub === 'remove') return { jid: contact, remove: true, groups: [] };
  // An empty name is the same as none (RFC 6121 §2.1.2.4).
  const name = el.attr('name') || undefined;
  if (name !== undefined && Buffer.byteLength(name) > o.max_name_length) return { error: 'not-acceptable', text: 'the name is too long' };
  const groups: string[] = [];
  for (const g of el.getChildren('group', NS.ROSTER)) {
    const text = g.text();
    if (text === '') return { error: 'not-acceptable', text: 'a group has no name' };
    if (Buffer.byteLength(text) > o.max_group_length) return { error: 'not-acceptable', text: 'a group name is too long' };
    if (groups.includes(text)) return { error: 'bad-request', text: `group '${text}' appears twice` };
    groups.push(text);
  }
  return { jid: contact, remove: false, name, groups };
}

function rosterGet(iq: OwnIq, data: { items: RosterItem[]; ver: number | undefined }): void {
  const resource = iq.from.resource;
  if (resource) iq.user.setInterested(resource);
  const asked = iq.payload.attr('ver');
  // RFC 6121 §2.6.3: an empty result when the client is up to date. With no counter stored yet there is
  // nothing to compare with, so the full roster goes out.
  if (asked !== undefined && data.ver !== undefined && asked === versionString(data.ver)) {
    iq.reply();
    return;
  }
  iq.reply(x('query', { xmlns: NS.ROSTER, ver: asked === undefined ? null : versionString(data.ver) },
    data.items.filter((i) => i.listed).map(itemElement)));
}

async function rosterSet(iq: OwnIq, req: SetRequest, data: ItemAndVersion): Promise<void> {
  const { item } = data;
  if (req.remove) return rosterRemove(iq, req.jid, data);
  if (item === undefined && data.full) {
    iq.error('policy-violation', undefined, 'the roster is full');
    return;
  }
  // 'ask', 'approved' and 'subscription' from the client are ignored (RFC 6121 §2.1.2): only the
  // subscription state machine changes them.
  const after: RosterItem = { ...(item ?? newItem(req.jid)), name: req.name, groups: req.groups, listed: true };
  if (after.name === undefined) delete after.name;
  await saveItem(iq, item, after, data.ver, req.jid);
  iq.reply(); // once stored: a client that sees the result can rely on it
}

async function rosterRemove(iq: OwnIq, contact: string, data: ItemAndVersion): Promise<void> {
  const { item } = data;
  if (!item || !item.listed) {
    iq.error('item-not-found', undefined, 'no such roster item');
    return;
  }
  // RFC 6121 §2.5.2: cancel both directions, pending requests included (the same effects as the user
  // sending unsubscribe and unsubscribed, Appendix A.2.2 and A.2.4; unavailable before unsubscribed,
  // while the contact is still subscribed, §3.2.2).
  cancelSubscriptions(iq, item);
  await saveItem(iq, item, null, data.ver, contact);
  iq.reply();
}

function cancelSubscriptions(ctx: ActorContext, item: RosterItem): void {
  const self = ctx.user.jid.toBareString();
  if (hasTo(item.subscription) || item.ask) ctx.route(x('presence', { type: 'unsubscribe', from: self, to: item.jid }));
  if (hasFrom(item.subscription)) sendPresenceOf(ctx, item.jid, 'unavailable');
  if (hasFrom(item.subscription) || item.pendingIn !== null) ctx.route(x('presence', { type: 'unsubscribed', from: self, to: item.jid }));
}

export default defineModule({
  name: MODULE,
  description: 'Roster management (RFC 6121 §2) with roster versioning',
  xeps: [{ xep: 237, version: '1.3', status: 'complete', note: 'roster versioning as folded into RFC 6121 §2.6; full roster when out of date' }],
  streamFeatures: [serialize(x('ver', { xmlns: NS.ROSTER_VER }))],
  storage: ['roster', 'rosterver'],
  options,
  setup(m) {
    const optionsFor = (host: string) => m.optionsFor(host) as Options;

    m.iq('get', 'self', NS.ROSTER, async (iq) => {
      if (!forOwner(iq)) return;
      const owner = iq.user.jid.toBareString();
      const [items, ver] = await Promise.all([loadAll(iq.storage, owner), loadVersion(iq.storage, owner)]);
      rosterGet(iq, { items, ver });
    });

    m.iq('set', 'self', NS.ROSTER, async (iq) => {
      if (!forOwner(iq)) return;
      const o = optionsFor(iq.host);
      const req = checkSet(iq, o);
      if ('error' in req) { iq.error(req.error, undefined, req.text); return; }
      const data = await loadForChange(iq.storage, iq.user.jid.toBareString(), req.jid, req.remove ? null : o.max_items);
      await rosterSet(iq, req, data);
    });

    // Someone else's roster IQ addressed to this account (RFC 6121 §2.1.5: only the account's own
    // resources may see or change its roster).
    for (const type of ['get', 'set'] as const) {
      m.iq(type, 'bare', NS.ROSTER, (iq) => iq.error('forbidden'));
    }

    // A deleted account's contacts are told, as if it had removed each of them (Prosody does the
    // same); without a running node there is nobody to tell, and only the storage goes.
    m.hook('user/deleted', async (ev) => {
      const owner = ev.jid.toBareString();
      const items = await ev.storage.range<RosterItem>(rosterKeys.of(owner));
      if (ev.live) for (const [, item] of items) cancelSubscriptions(ev.live, item);
      await ev.storage.batch([...items.map(([key]) => ({ type: 'del' as const, key })), { type: 'del', key: rosterKeys.ver(owner) }]);
    });
    // XEP-0227: the roster as the account's client sees it (a pending inbound request is not carried).
    m.hook('account/export', async (ev) => {
      const items = (await ev.storage.range<RosterItem>(rosterKeys.of(ev.jid.toBareString()))).map(([, i]) => i).filter((i) => i.listed);
      if (items.length) ev.add(x('query', { xmlns: NS.ROSTER }, items.map(itemElement)));
    });
    m.hook('account/import', async (ev) => {
      const owner = ev.jid.toBareString();
      const ops = [];
      for (const el of ev.user.child('query', NS.ROSTER)?.getChildren('item') ?? []) {
        const jid = tryParseJid(el.attr('jid') ?? '');
        const subscription = el.attr('subscription') ?? 'none';
        if (!jid || jid.resource || !['none', 'to', 'from', 'both'].includes(subscription)) { ev.note(`roster item ${el.attr('jid')} skipped: not a bare JID with a subscription`); continue; }
        const contact = jid.toBareString();
        const item: RosterItem = { ...newItem(contact), name: el.attr('name') || undefined, groups: el.getChildren('group').map((g) => g.text()).filter(Boolean),
          subscription: subscription as Subscription, ask: el.attr('ask') === 'subscribe', listed: true };
        ops.push({ type: 'put' as const, key: rosterKeys.item(owner, contact), value: item });
      }
      if (ops.length) await ev.storage.batch(ops);
    });
    return { maxItems: (host) => optionsFor(host).max_items } satisfies RosterApi;
  },
});

// The core only routes the account's own IQs here; this guards a mistake there, since it would expose the roster.
function forOwner(iq: IqRequest): iq is OwnIq {
  if (iq.user && iq.from.bareEquals(iq.user.jid)) return true;
  iq.error('forbidden');
  return false;
}
