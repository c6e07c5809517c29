// Personal Eventing Protocol (XEP-0163): every account is a publish-subscribe service of its own
// (XEP-0060), with nodes such as the OMEMO device list and bundles (XEP-0384), avatars (XEP-0084),
// nicknames and bookmarks (XEP-0402). Items are kept in storage; notifications go to the account's
// own resources and to its contacts' online resources that said, through their entity capabilities
// (XEP-0115), that they want a node's events ("<node>+notify"), when the node's access model lets them.
//
// Runs in the owner's user actor: it learns who is online from the presence it receives (contacts)
// and sends (its own resources), asks a client for its disco#info when its caps are new, and keeps
// what a caps hash means, shared by every account, under caps!<hash>.
import { createHash, randomBytes } from 'node:crypto';
import { serialize, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { dataForm, readForm, formText, type Submitted } from '../xmpp/forms.ts';
import type { Jid } from '../xmpp/jid.ts';
import { defineModule, type InboundEvent, type IqRequest, type PresenceEvent, type StanzaContext, type Storage, type UserContext } from '../xmpp/module.ts';
import { keyOf, keysUnder } from '../storage/db.ts';
import { hasFrom, hasTo, loadAll, loadItem, type RosterItem } from './roster-store.ts';

const MODULE = 'pep';
const CAPS = 'caps';
const ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';

export const pepKeys = {
  of: (owner: string) => keysUnder(MODULE, owner),
  node: (owner: string, node: string) => keyOf(MODULE, owner, node),
  caps: (hash: string) => keyOf(CAPS, hash),
};

export type Access = 'presence' | 'open' | 'roster' | 'whitelist';
const ACCESS: readonly Access[] = ['presence', 'open', 'roster', 'whitelist'];
export interface NodeConfig { access: Access; maxItems: number }
/** A node with its items, oldest first; each item is its serialized <item id='…'>payload</item>. */
interface PepNode { config: NodeConfig; items: Array<{ id: string; xml: string }> }
/** In the user actor's snapshot: the online resources (own and contacts') and their caps hash;
 *  `claims`: what resources whose disco#info did not match their hash want (trusted for them alone). */
interface PepState { online: Record<string, string>; claims?: Record<string, string[]> }

const NONE: PepState = { online: {} };
const stateOf = (user: UserContext): PepState => user.state<PepState>(MODULE, () => NONE);

/** What each caps hash asks to be notified of (its "+notify" nodes), learned once per thread and
 *  storage (what caps!<hash> holds). */
const learned = new WeakMap<Storage, Map<string, readonly string[]>>();
function known(storage: Storage): Map<string, readonly string[]> {
  let m = learned.get(storage);
  if (!m) learned.set(storage, (m = new Map()));
  return m;
}

/** The nodes an online resource wants. */
function wants(storage: Storage, st: PepState, full: string): readonly string[] | undefined {
  return st.claims?.[full] ?? known(storage).get(st.online[full] ?? '');
}

const options = {
  max_items: { type: 'number', default: 256, min: 1, max: 10_000, doc: 'The most items one node keeps.' },
  max_nodes: { type: 'number', default: 256, min: 1, max: 100_000, doc: 'The most nodes one account has.' },
  max_item_bytes: { type: 'number', default: 262_144, min: 256, max: 16_777_216, doc: 'The largest item, in bytes.' },
} as const;

const FEATURES = ['access-presence', 'access-open', 'access-roster', 'access-whitelist', 'auto-create', 'auto-subscribe', 'config-node', 'delete-nodes',
  'filtered-notifications', 'item-ids', 'last-published', 'multi-items', 'persistent-items', 'publish', 'publish-options', 'retract-items', 'retrieve-items']
  .map((f) => `${NS.PUBSUB}#${f}`);

export default defineModule({
  name: MODULE,
  description: 'Personal eventing (XEP-0163): each account a pubsub service with notifications by caps, for OMEMO, avatars and bookmarks.',
  xeps: [
    { xep: 163, version: '1.2.2', status: 'complete' },
    { xep: 60, version: '1.24', status: 'partial', note: 'what PEP needs: publish (with publish-options), items, retract, delete, configure; no explicit subscriptions' },
    { xep: 115, version: '1.6', status: 'complete', note: 'caps of online resources, verified, cached by hash' },
  ],
  features: { account: [NS.PUBSUB, ...FEATURES] },
  identities: { account: [{ category: 'pubsub', type: 'pep' }] },
  storage: [MODULE, CAPS],
  options,
  setup(m) {
    const published: Published = (event) => m.fire('pep/published', event);
    m.iq('set', 'self', NS.PUBSUB, (iq) => pubsubSet(iq, m.optionsFor(iq.host), published));
    m.iq('get', 'self', NS.PUBSUB, getItems);
    m.iq('get', 'bare', NS.PUBSUB, getItems);
    m.iq('set', 'bare', NS.PUBSUB, (iq) => iq.error('forbidden', 'auth', 'only the owner publishes to its nodes'));
    m.iq('get', 'self', NS.PUBSUB_OWNER, configureGet);
    m.iq('set', 'self', NS.PUBSUB_OWNER, (iq) => ownerSet(iq, m.optionsFor(iq.host)));
    for (const type of ['get', 'set'] as const) m.iq(type, 'bare', NS.PUBSUB_OWNER, (iq) => iq.error('forbidden', 'auth', 'only the owner manages its nodes'));

    // Who is online, and with what caps: the account's own resources (the presence they send) and its
    // contacts' (the presence it receives), before the presence module handles either.
    m.hook('presence/out', (ev) => { if (ev.stanza.attr('to') === undefined) return noted(ev, ev.from.toString()); return false; }, 200);
    for (const target of ['bare', 'full'] as const) m.hook(`presence/${target}`, (ev) => contactPresence(ev), 60);
    m.hook('session/unbound', (ev) => { forget(ev.user, ev.user.jid.bare().withResource(ev.resource).toString()); });
    // The answer of a client asked for its disco#info (below): its caps hash is learned.
    m.hook('iq/bare', (ev) => capsAnswer(ev));

    m.hook('user/deleted', async (ev) => {
      const nodes = await ev.storage.range<PepNode>(pepKeys.of(ev.jid.toBareString()));
      if (nodes.length) await ev.storage.batch(nodes.map(([key]) => ({ type: 'del' as const, key })));
    });

    // XEP-0227: each node's items (<pubsub/>) and its access model (<pubsub#owner/>'s configure form).
    m.hook('account/export', async (ev) => {
      const nodes = await ev.storage.range<PepNode>(pepKeys.of(ev.jid.toBareString()));
      if (!nodes.length) return;
      const name = (key: string) => key.slice(pepKeys.of(ev.jid.toBareString()).length);
      ev.add(x('pubsub', { xmlns: NS.PUBSUB }, nodes.map(([key, n]) => x('items', { node: name(key) }, n.items.map((i) => parseElement(i.xml, NS.PUBSUB))))));
      ev.add(x('pubsub', { xmlns: NS.PUBSUB_OWNER }, nodes.map(([key, n]) => x('configure', { node: name(key) },
        dataForm({ type: 'submit', formType: NODE_CONFIG }, [
          { var: 'pubsub#access_model', value: n.config.access }, { var: 'pubsub#max_items', value: String(n.config.maxItems) },
        ])))));
    });
    m.hook('account/import', async (ev) => {
      const owner = ev.jid.toBareString();
      const configs = new Map<string, Submitted>();
      for (const c of ev.user.child('pubsub', NS.PUBSUB_OWNER)?.getChildren('configure') ?? []) {
        const form = readForm(c);
        if (c.attr('node') && form) configs.set(c.attr('node')!, form);
      }
      for (const items of ev.user.child('pubsub', NS.PUBSUB)?.getChildren('items') ?? []) {
        const node = items.attr('node');
        if (!node) continue;
        const form = configs.get(node);
        const access = form && formText(form, 'pubsub#access_model');
        const max = Number(form && formText(form, 'pubsub#max_items'));
        const list = items.getChildren('item').map((i) => ({ id: i.attr('id') || randomBytes(9).toString('base64url'), payload: i.getChildren()[0] })).filter((i): i is { id: string; payload: XmlElement } => !!i.payload);
        await storeItems(ev.storage, owner, node, list, {
          access: ACCESS.includes(access as Access) ? access as Access : 'presence',
          maxItems: Number.isInteger(max) && max > 0 ? max : m.optionsFor(ev.jid.domain).max_items,
        });
      }
    });
    return {
      items: readItems,
      replaceItems: (ctx, node, items, access) => replaceItems(ctx, node, items, { access, maxItems: m.optionsFor(ctx.host).max_items }),
      storeItems: async (storage, owner, node, items, access) => { await storeItems(storage, owner, node, items, { access, maxItems: m.optionsFor(owner.slice(owner.lastIndexOf('@') + 1)).max_items }); },
    } satisfies PepApi;
  },
});

/** An owner's client published an item (what the server publishes for it, replaceItems, is not
 *  told: a module keeping something in step with a node would hear its own writes). */
export interface PepPublishedEvent extends StanzaContext { user: UserContext; node: string; id: string; payload: XmlElement }

// The pep module's own hook, added to the contract's list where it is defined (the core names no feature).
declare module '../xmpp/module.ts' {
  interface Hooks { 'pep/published': PepPublishedEvent }
}

/** Tells the loaded modules of a publication. */
type Published = (event: PepPublishedEvent) => boolean | Promise<boolean>;

/** What the pep module tells the modules that depend on it (private XML keeps bookmarks in step). */
export interface PepApi {
  /** A node's items, oldest first (none when the node does not exist). */
  items(storage: Storage, owner: string, node: string): Promise<Array<{ id: string; payload: XmlElement }>>;
  /** Makes a node hold exactly these items, as its owner publishing and retracting would: the
   *  node is created with `access` and the most items allowed when it does not exist; what
   *  changed is notified. */
  replaceItems(ctx: Ctx, node: string, items: Array<{ id: string; payload: XmlElement }>, access: Access): Promise<void>;
  /** The same with nobody to notify: what an import (the node stopped) writes. */
  storeItems(storage: Omit<Storage, 'withHandling'>, owner: string, node: string, items: Array<{ id: string; payload: XmlElement }>, access: Access): Promise<void>;
}

async function readItems(storage: Storage, owner: string, node: string): Promise<Array<{ id: string; payload: XmlElement }>> {
  const stored = await storage.get<PepNode>(pepKeys.node(owner, node));
  return (stored?.items ?? []).map((i) => ({ id: i.id, payload: parseElement(i.xml, NS.PUBSUB).getChildren()[0]! }));
}

/** Makes a node hold exactly these items (created with `config` when new); returns it as it was and is. */
async function storeItems(storage: Omit<Storage, 'withHandling'>, owner: string, node: string, items: Array<{ id: string; payload: XmlElement }>, config: NodeConfig): Promise<{ stored: PepNode | undefined; next: PepNode }> {
  const key = pepKeys.node(owner, node);
  const stored = await storage.get<PepNode>(key);
  const next: PepNode = { config: stored?.config ?? config, items: items.map((i) => ({ id: i.id, xml: serialize(x('item', { id: i.id }, i.payload)) })) };
  await storage.put(key, next);
  return { stored, next };
}

async function replaceItems(ctx: Ctx, node: string, items: Array<{ id: string; payload: XmlElement }>, config: NodeConfig): Promise<void> {
  const owner = ctx.user.jid.toBareString();
  const { stored, next } = await storeItems(ctx.storage, owner, node, items, config);
  const before = new Map((stored?.items ?? []).map((i) => [i.id, i.xml]));
  const changed = next.items.filter((i) => before.get(i.id) !== i.xml);
  const gone = [...before.keys()].filter((id) => !next.items.some((i) => i.id === id));
  if (changed.length) await notify(ctx, owner, node, next.config, x('items', { node }, changed.map((i) => parseElement(i.xml, NS.PUBSUB_EVENT))));
  if (gone.length) await notify(ctx, owner, node, next.config, x('items', { node }, gone.map((id) => x('retract', { id }))));
}

export type Ctx = StanzaContext & { user: UserContext };
type Limits = { max_items: number; max_nodes: number; max_item_bytes: number };

function pubsubError(iq: IqRequest, condition: Parameters<IqRequest['error']>[0], app: string, text?: string, feature?: string): void {
  iq.error(condition, undefined, text, { app: x(app, { xmlns: ERRORS, feature }) });
}

// ---- publish, retract ---------------------------------------------------------------------------------

async function pubsubSet(iq: IqRequest, o: Limits, published: Published): Promise<void> {
  const publish = iq.payload.child('publish', NS.PUBSUB);
  if (publish) return publishItem(iq, publish, iq.payload.child('publish-options', NS.PUBSUB), o, published);
  const retract = iq.payload.child('retract', NS.PUBSUB);
  if (retract) return retractItems(iq, retract);
  const op = iq.payload.getChildren()[0]?.localName ?? 'nothing';
  pubsubError(iq, 'feature-not-implemented', 'unsupported', `${op} is not offered on personal nodes (they are followed through caps)`, op);
}

function configFrom(form: Submitted | undefined, base: NodeConfig, o: Limits): NodeConfig | string {
  const c = { ...base };
  if (!form) return c;
  const access = formText(form, 'pubsub#access_model');
  if (access !== undefined) {
    if (!ACCESS.includes(access as Access)) return 'pubsub#access_model';
    c.access = access as Access;
  }
  const max = formText(form, 'pubsub#max_items');
  if (max !== undefined) {
    const n = max === 'max' ? o.max_items : Number(max);
    if (!Number.isInteger(n) || n < 1 || n > o.max_items) return 'pubsub#max_items';
    c.maxItems = n;
  }
  return c;
}

async function publishItem(iq: IqRequest, publish: XmlElement, optionsEl: XmlElement | undefined, o: Limits, published: Published): Promise<void> {
  const node = publish.attr('node');
  if (!node) { pubsubError(iq, 'bad-request', 'nodeid-required'); return; }
  const items = publish.getChildren('item', NS.PUBSUB);
  if (items.length !== 1) { pubsubError(iq, 'bad-request', items.length ? 'invalid-payload' : 'item-required', 'publish one item'); return; }
  const item = items[0]!;
  if (item.getChildren().length !== 1) { pubsubError(iq, 'bad-request', 'invalid-payload', 'an item holds one element'); return; }
  const form = optionsEl ? readForm(optionsEl) : undefined;
  if (form && form.formType !== undefined && form.formType !== PUBLISH_OPTIONS) { iq.error('bad-request', 'modify', `unknown FORM_TYPE ${form.formType}`); return; }
  const owner = iq.from.toBareString();
  const key = pepKeys.node(owner, node);
  const stored = await iq.storage.get<PepNode>(key);
  const wanted = configFrom(form, stored?.config ?? { access: 'presence', maxItems: 1 }, o);
  if (typeof wanted === 'string') { pubsubError(iq, 'conflict', 'precondition-not-met', `${wanted} has a value this service does not offer`); return; }
  // XEP-0060 §7.1.5: publish-options are preconditions on a node that exists.
  if (stored && (wanted.access !== stored.config.access || wanted.maxItems !== stored.config.maxItems)) {
    pubsubError(iq, 'conflict', 'precondition-not-met', `the node is configured otherwise (access ${stored.config.access}, max_items ${stored.config.maxItems})`); return;
  }
  if (!stored && (await iq.storage.range(pepKeys.of(owner), { limit: o.max_nodes })).length >= o.max_nodes) {
    iq.error('not-acceptable', 'cancel', `at most ${o.max_nodes} nodes per account`); return;
  }
  const id = item.attr('id') || randomBytes(9).toString('base64url');
  const xml = serialize(x('item', { id }, item.getChildren()));
  if (Buffer.byteLength(xml) > o.max_item_bytes) { pubsubError(iq, 'not-acceptable', 'payload-too-big', `an item is at most ${o.max_item_bytes} bytes`); return; }
  const next: PepNode = { config: wanted, items: [...(stored?.items ?? []).filter((i) => i.id !== id), { id, xml }].slice(-wanted.maxItems) };
  await iq.storage.put(key, next);
  iq.reply(x('pubsub', { xmlns: NS.PUBSUB }, x('publish', { node }, x('item', { id }))));
  await notify(iq as Ctx, owner, node, next.config, x('items', { node }, parseElement(xml, NS.PUBSUB_EVENT)));
  await published({ ...(iq as Ctx), user: iq.user!, node, id, payload: item.getChildren()[0]! });
}

async function retractItems(iq: IqRequest, retract: XmlElement): Promise<void> {
  const node = retract.attr('node');
  if (!node) { pubsubError(iq, 'bad-request', 'nodeid-required'); return; }
  const ids = retract.getChildren('item', NS.PUBSUB).map((i) => i.attr('id')).filter((i): i is string => !!i);
  if (ids.length === 0) { pubsubError(iq, 'bad-request', 'item-required'); return; }
  const owner = iq.from.toBareString();
  const stored = await iq.storage.get<PepNode>(pepKeys.node(owner, node));
  if (!stored) { iq.error('item-not-found', 'cancel', 'no such node'); return; }
  if (!ids.every((id) => stored.items.some((i) => i.id === id))) { iq.error('item-not-found', 'cancel', 'no such item'); return; }
  await iq.storage.put(pepKeys.node(owner, node), { ...stored, items: stored.items.filter((i) => !ids.includes(i.id)) });
  iq.reply();
  const notifyAll = retract.attr('notify') === 'true' || retract.attr('notify') === '1';
  if (notifyAll) await notify(iq as Ctx, owner, node, stored.config, x('items', { node }, ids.map((id) => x('retract', { id }))));
}

// ---- retrieving -----------------------------------------------------------------------------------

async function getItems(iq: IqRequest): Promise<void> {
  const items = iq.payload.child('items', NS.PUBSUB);
  if (!items) {
    const op = iq.payload.getChildren()[0]?.localName ?? 'nothing';
    pubsubError(iq, 'feature-not-implemented', 'unsupported', `${op} is not offered on personal nodes`, op === 'subscriptions' ? 'retrieve-subscriptions' : op);
    return;
  }
  const node = items.attr('node');
  if (!node) { pubsubError(iq, 'bad-request', 'nodeid-required'); return; }
  const owner = iq.user!.jid.toBareString();
  const stored = await iq.storage.get<PepNode>(pepKeys.node(owner, node));
  if (!stored) {
    // To its owner a node not created yet is an empty one (nodes are created by publishing): clients
    // read their own list first and publish what it lacks (profanity's OMEMO stops at an error).
    if (iq.from.toBareString() === owner) iq.reply(x('pubsub', { xmlns: NS.PUBSUB }, x('items', { node })));
    else iq.error('item-not-found', 'cancel', 'no such node');
    return;
  }
  const denied = await deniedTo(iq.storage, owner, iq.from, stored.config.access);
  if (denied) { iq.error(denied.condition, 'auth', denied.text, { app: x(denied.app, { xmlns: ERRORS }) }); return; }
  const ids = items.getChildren('item', NS.PUBSUB).map((i) => i.attr('id')).filter((i): i is string => !!i);
  let list = ids.length ? stored.items.filter((i) => ids.includes(i.id)) : stored.items;
  const max = Number(items.attr('max_items'));
  if (!ids.length && Number.isInteger(max) && max > 0) list = list.slice(-max);
  iq.reply(x('pubsub', { xmlns: NS.PUBSUB }, x('items', { node }, list.map((i) => parseElement(i.xml, NS.PUBSUB)))));
}

/** Why `who` may not see a node of `owner` (XEP-0060 §6.5.9), or null if it may. */
async function deniedTo(storage: Storage, owner: string, who: Jid, access: Access): Promise<{ condition: 'not-authorized' | 'not-allowed'; app: string; text: string } | null> {
  if (who.toBareString() === owner || access === 'open') return null;
  if (access === 'whitelist') return { condition: 'not-allowed', app: 'closed-node', text: 'the owner keeps this node to itself' };
  const item = await loadItem(storage, owner, who.toBareString());
  if (access === 'presence') return item && hasFrom(item.subscription) ? null : { condition: 'not-authorized', app: 'presence-subscription-required', text: 'for contacts that see the owner\'s presence' };
  return item && item.listed ? null : { condition: 'not-authorized', app: 'not-in-roster-group', text: 'for the owner\'s contacts' };
}

// ---- owner: configure, delete -------------------------------------------------------------------

async function configureGet(iq: IqRequest): Promise<void> {
  const node = iq.payload.child('configure', NS.PUBSUB_OWNER)?.attr('node');
  if (!node) { pubsubError(iq, 'bad-request', 'nodeid-required'); return; }
  const stored = await iq.storage.get<PepNode>(pepKeys.node(iq.from.toBareString(), node));
  if (!stored) { iq.error('item-not-found', 'cancel', 'no such node'); return; }
  iq.reply(x('pubsub', { xmlns: NS.PUBSUB_OWNER }, x('configure', { node }, dataForm({ type: 'form', formType: NODE_CONFIG }, [
    { var: 'pubsub#access_model', type: 'list-single', label: 'Who may see the items', value: stored.config.access, options: ACCESS.map((value) => ({ value })) },
    { var: 'pubsub#max_items', type: 'text-single', label: 'Items kept', value: String(stored.config.maxItems) },
    { var: 'pubsub#persist_items', type: 'boolean', label: 'Items are kept', value: true },
  ]))));
}

async function ownerSet(iq: IqRequest, o: Limits): Promise<void> {
  const owner = iq.from.toBareString();
  const del = iq.payload.child('delete', NS.PUBSUB_OWNER);
  const configure = iq.payload.child('configure', NS.PUBSUB_OWNER);
  const node = (del ?? configure)?.attr('node');
  if (!del && !configure) { pubsubError(iq, 'feature-not-implemented', 'unsupported', 'only configure and delete are offered', iq.payload.getChildren()[0]?.localName); return; }
  if (!node) { pubsubError(iq, 'bad-request', 'nodeid-required'); return; }
  const key = pepKeys.node(owner, node);
  const stored = await iq.storage.get<PepNode>(key);
  if (!stored) { iq.error('item-not-found', 'cancel', 'no such node'); return; }
  if (del) {
    await iq.storage.del(key);
    iq.reply();
    await notify(iq as Ctx, owner, node, stored.config, x('delete', { node }));
    return;
  }
  const form = readForm(configure!);
  if (!form || form.type === 'cancel') { iq.reply(); return; }
  const config = configFrom(form, stored.config, o);
  if (typeof config === 'string') { iq.error('not-acceptable', 'modify', `the value of ${config} is not offered`); return; }
  await iq.storage.put(key, { config, items: stored.items.slice(-config.maxItems) });
  iq.reply();
}

// ---- notifications ---------------------------------------------------------------------------------

/** An event of `owner`'s node to every online resource that wants it and may see it. */
async function notify(ctx: Ctx, owner: string, node: string, config: NodeConfig, event: XmlElement): Promise<void> {
  const st = stateOf(ctx.user);
  const targets = Object.keys(st.online).filter((full) => wants(ctx.storage, st, full)?.includes(node));
  if (targets.length === 0) return;
  const roster = targets.some((t) => !t.startsWith(`${owner}/`)) ? new Map((await loadAll(ctx.storage, owner)).map((i) => [i.jid, i])) : new Map<string, RosterItem>();
  for (const full of targets) if (may(owner, full, config.access, roster)) send(ctx, owner, full, event);
}

function may(owner: string, full: string, access: Access, roster: Map<string, RosterItem>): boolean {
  const bare = full.slice(0, full.indexOf('/'));
  if (bare === owner || access === 'open') return true;
  const item = roster.get(bare);
  if (access === 'presence') return !!item && hasFrom(item.subscription);
  if (access === 'roster') return !!item && item.listed;
  return false;
}

let seq = 0;
function send(ctx: Ctx, owner: string, full: string, event: XmlElement): void {
  const msg = x('message', { from: owner, to: full, type: 'headline', id: `pep-${Date.now().toString(36)}-${++seq}` }, x('event', { xmlns: NS.PUBSUB_EVENT }, event));
  const own = full.startsWith(`${owner}/`) ? full.slice(owner.length + 1) : null;
  if (own !== null) void ctx.user.deliver(own, msg);
  else ctx.route(msg);
}

/** A resource that came online wants some nodes: it gets their last items (XEP-0163 §4.3.4). */
async function lastItems(ctx: Ctx, full: string, nodes: readonly string[]): Promise<void> {
  if (nodes.length === 0) return;
  const owner = ctx.user.jid.toBareString();
  const all = await ctx.storage.range<PepNode>(pepKeys.of(owner));
  const wanted = all.filter(([k]) => nodes.some((n) => k === pepKeys.node(owner, n)));
  if (wanted.length === 0) return;
  const roster = full.startsWith(`${owner}/`) ? new Map<string, RosterItem>() : new Map((await loadAll(ctx.storage, owner)).map((i) => [i.jid, i]));
  for (const [key, n] of wanted) {
    const last = n.items[n.items.length - 1];
    const node = nodes.find((name) => key === pepKeys.node(owner, name))!;
    if (last && may(owner, full, n.config.access, roster)) send(ctx, owner, full, x('items', { node }, parseElement(last.xml, NS.PUBSUB_EVENT)));
  }
}

// ---- who is online, and what it wants ----------------------------------------------------------

/** A contact's presence (to the account): noted if it is a contact, never handled here. */
function contactPresence(ev: InboundEvent): boolean | Promise<boolean> {
  if (ev.from.resource === '' || ev.from.bareEquals(ev.user.jid)) return false;
  if (ev.stanza.attr('type') === 'unavailable') { forget(ev.user, ev.from.toString()); return false; }
  if (ev.stanza.attr('type') !== undefined) return false;
  // Only contacts: a room's occupants send caps too (their presence carries muc#user), and nobody
  // else's interest is ours to track. A presence with no caps changes nothing for one not tracked:
  // neither costs a roster read (a busy room would cost one per presence per occupant).
  const tracked = ev.from.toString() in stateOf(ev.user).online;
  if (ev.stanza.child('x', NS.MUC_USER) || (!tracked && !ev.stanza.child('c', NS.CAPS))) return false;
  return loadItem(ev.storage, ev.user.jid.toBareString(), ev.from.toBareString()).then((item) => {
    if (!item || !(hasFrom(item.subscription) || hasTo(item.subscription))) return false;
    return noted(ev, ev.from.toString());
  });
}

/** An online resource and its caps: what it wants is sent at once if the hash is known, else asked. */
function noted(ev: PresenceEvent, full: string): false | Promise<false> {
  if (ev.stanza.attr('type') === 'unavailable') { forget(ev.user, full); return false; }
  if (ev.stanza.attr('type') !== undefined) return false;
  const c = ev.stanza.child('c', NS.CAPS);
  const ver = c?.attr('ver') ?? '';
  const st = stateOf(ev.user);
  if (st.online[full] === ver) return false;
  ev.user.setState(MODULE, { ...withoutClaim(st, full), online: { ...st.online, [full]: ver } });
  if (!ver) return false;
  const memo = known(ev.storage).get(ver);
  if (memo) return lastItems(ev, full, memo).then(() => false);
  return ev.storage.get<string[]>(pepKeys.caps(ver)).then((stored) => {
    if (stored) { known(ev.storage).set(ver, stored); return lastItems(ev, full, stored).then(() => false as const); }
    // Asked from the account itself; the answer comes back to it (capsAnswer).
    ev.route(x('iq', { type: 'get', from: ev.user.jid.toBareString(), to: full, id: `pep-caps-${++seq}` },
      x('query', { xmlns: NS.DISCO_INFO, node: `${c!.attr('node') ?? ''}#${ver}` })));
    return false as const;
  });
}

function forget(user: UserContext, full: string): void {
  const st = stateOf(user);
  if (!(full in st.online)) return;
  const { [full]: _, ...online } = st.online;
  void _;
  user.setState(MODULE, { ...withoutClaim(st, full), online });
}

function withoutClaim(st: PepState, full: string): PepState {
  if (!st.claims || !(full in st.claims)) return st;
  const { [full]: _, ...claims } = st.claims;
  void _;
  return { ...st, claims };
}

/** A client's disco#info, asked because its caps were new: checked against the hash (XEP-0115 §5.4)
 *  before anyone else's resource is trusted with it, then every resource with that hash is served. */
function capsAnswer(ev: InboundEvent): boolean | Promise<boolean> {
  if (!(ev.stanza.attr('id') ?? '').startsWith('pep-caps-')) return false;
  if (ev.stanza.attr('type') !== 'result') return true;
  const q = ev.stanza.child('query', NS.DISCO_INFO);
  const ver = q?.attr('node')?.split('#').pop();
  if (!q || !ver) return true;
  const nodes = q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attr('var') ?? '').filter((v) => v.endsWith('+notify')).map((v) => v.slice(0, -'+notify'.length));
  const verified = capsHash(q) === ver;
  const full = ev.from.toString();
  const st = stateOf(ev.user);
  const served = Object.entries(st.online).filter(([j, v]) => v === ver && (verified || j === full)).map(([j]) => j);
  const done = async (): Promise<boolean> => {
    if (verified) { known(ev.storage).set(ver, nodes); await ev.storage.put(pepKeys.caps(ver), nodes); }
    else {
      ev.log('info', `${full}: its caps ${ver} do not match its disco#info; trusted for it alone`);
      if (st.online[full] === ver) ev.user.setState(MODULE, { ...st, claims: { ...st.claims, [full]: nodes } });
    }
    for (const j of served) await lastItems(ev, j, nodes);
    return true;
  };
  return done();
}

/** XEP-0115 §5.1: the verification string of a disco#info result, SHA-1, base64. */
export function capsHash(q: XmlElement): string {
  const identities = q.getChildren('identity', NS.DISCO_INFO)
    .map((i) => `${i.attr('category') ?? ''}/${i.attr('type') ?? ''}/${i.attr('xml:lang') ?? ''}/${i.attr('name') ?? ''}`).sort();
  const features = q.getChildren('feature', NS.DISCO_INFO).map((f) => f.attr('var') ?? '').sort();
  const forms = q.getChildren('x', NS.DATA_FORMS).map((f) => {
    const fields = f.getChildren('field', NS.DATA_FORMS);
    const type = fields.find((fl) => fl.attr('var') === 'FORM_TYPE')?.getChildText('value', NS.DATA_FORMS) ?? '';
    const rest = fields.filter((fl) => fl.attr('var') !== 'FORM_TYPE').sort((a, b) => ((a.attr('var') ?? '') < (b.attr('var') ?? '') ? -1 : 1))
      .map((fl) => [fl.attr('var') ?? '', ...fl.getChildren('value', NS.DATA_FORMS).map((v) => v.text()).sort()].map((s) => `${s}<`).join(''));
    return { type, text: `${type}<${rest.join('')}` };
  }).sort((a, b) => (a.type < b.type ? -1 : 1));
  const s = [...identities, ...features].map((v) => `${v}<`).join('') + forms.map((f) => f.text).join('');
  return createHash('sha1').update(s, 'utf8').digest('base64');
}
