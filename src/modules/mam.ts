// Message Archive Management (XEP-0313, urn:xmpp:mam:2 with v1.1's ids, before-id/after-id and
// metadata) with Unique and Stable Stanza IDs (XEP-0359): every chat message an account receives or
// sends is kept in its archive, in its user actor, before it is delivered (a received one carries
// <stanza-id/> with its archive id); clients page through it with RSM (XEP-0059). Kept for
// `expiry_days` (pruned at each login), removed with the account; preferences per account.
import { x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { appendChildXml, xmppDateTime } from '../xmpp/delay.ts';
import { dataForm, formText, readForm } from '../xmpp/forms.ts';
import { tryParseJid, type Jid } from '../xmpp/jid.ts';
import { andThen, defineModule, type InboundEvent, type IqRequest, type OutboundEvent, type UserContext } from '../xmpp/module.ts';
import { keyOf, keysUnder, keys } from '../storage/db.ts';
import { loadItem } from './roster-store.ts';

const MODULE = 'mam';

export const mamKeys = {
  of: (owner: string) => keysUnder(MODULE, owner),
  entry: (owner: string, id: string) => keyOf(MODULE, owner, id),
};

/** One archived message: the other party (bare), when, which way, and the message as routed. */
export interface ArchiveEntry { with: string; at: number; dir: 'in' | 'out'; xml: string }

/** XEP-0313 §7 preferences, kept in the user actor's state (read for every message). */
interface Prefs { default: 'always' | 'never' | 'roster'; always: string[]; never: string[] }
const DEFAULT_PREFS: Prefs = { default: 'always', always: [], never: [] };
const prefsOf = (user: UserContext): Prefs => user.state<Prefs>(MODULE, () => DEFAULT_PREFS);

const options = {
  expiry_days: { type: 'number', default: 365, min: 0, max: 36_500, doc: 'Days an archived message is kept (0: for ever).' },
  max_page: { type: 'number', default: 250, min: 10, max: 10_000, doc: 'The most results one query page returns.' },
  default_page: { type: 'number', default: 50, min: 1, max: 10_000, doc: 'Results per page when a client does not say.' },
} as const;

/** Archive ids are time-ordered (what LevelDB sorts) and unique per thread: the account's actor
 *  lives on one, and a restart's clock is later. 9 base-36 digits of ms, 4 of a counter. */
let counter = 0;
export function archiveId(at: number): string {
  counter = (counter + 1) % 36 ** 4;
  return at.toString(36).padStart(9, '0') + counter.toString(36).padStart(4, '0');
}
const idAt = (at: number): string => at.toString(36).padStart(9, '0');

export default defineModule({
  name: MODULE,
  description: 'Message archives (XEP-0313) with stanza ids (XEP-0359): chat kept per account, paged by clients.',
  xeps: [
    { xep: 313, version: '1.1.1', status: 'complete', note: 'account archives; group-chat archives not yet' },
    { xep: 359, version: '0.7', status: 'complete', note: 'stanza-id on archived messages' },
    { xep: 59, version: '1.0', status: 'complete', note: 'paging of archive queries' },
  ],
  features: { account: [NS.MAM, `${NS.MAM}#extended`, NS.STANZA_ID] },
  storage: [MODULE],
  options,
  setup(m) {
    for (const target of ['bare', 'full'] as const) {
      m.hook(`message/${target}`, (ev) => archiveIn(ev), 50); // after blocking, before delivery
      m.hook(`pre-message/${target}`, (ev) => archiveOut(ev), -50); // after the vetoes
    }
    m.iq('get', 'self', NS.MAM, (iq) => {
      if (iq.payload.localName === 'metadata') return metadata(iq);
      if (iq.payload.localName === 'prefs') { iq.reply(prefsElement(prefsOf(iq.user!))); return undefined; }
      iq.reply(x('query', { xmlns: NS.MAM }, dataForm({ type: 'form', formType: NS.MAM }, [
        { var: 'with', type: 'jid-single' }, { var: 'start', type: 'text-single' }, { var: 'end', type: 'text-single' },
        { var: 'before-id', type: 'text-single' }, { var: 'after-id', type: 'text-single' }, { var: 'ids', type: 'list-multi' },
      ])));
      return undefined;
    });
    m.iq('set', 'self', NS.MAM, (iq) => {
      if (iq.payload.localName === 'prefs') { setPrefs(iq); return undefined; }
      const o = m.optionsFor(iq.host);
      return query(iq, o.default_page, o.max_page);
    });
    for (const type of ['get', 'set'] as const) m.iq(type, 'bare', NS.MAM, (iq) => { iq.error('forbidden', 'auth', 'an archive is its owner\'s only'); });
    m.hook('session/bound', (ev) => {
      const days = m.optionsFor(ev.host).expiry_days;
      return days > 0 ? prune(ev.storage, ev.user.jid.toBareString(), ev.now() - days * 86_400_000).then(() => false) : false;
    });
    m.hook('user/deleted', async (ev) => {
      const owner = ev.jid.toBareString();
      for (;;) {
        const batch = await ev.storage.range<ArchiveEntry>(mamKeys.of(owner), { limit: 1000 });
        if (batch.length === 0) break;
        await ev.storage.batch(batch.map(([key]) => ({ type: 'del' as const, key })));
      }
    });
  },
});

// ---- keeping -----------------------------------------------------------------------------------------

/** XEP-0313 §5.1.1 and XEP-0334: chat, and normal with a body; not group chat, errors, chat states
 *  alone, copies, or what asks not to be stored. */
function archivable(st: XmlElement): boolean {
  const type = st.attr('type') ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  let body = false;
  for (const c of st.getChildren()) {
    const ns = c.getXmlns();
    if (ns === NS.HINTS && (c.localName === 'no-store' || c.localName === 'no-permanent-store')) return false;
    if (ns === NS.CARBONS || ns === NS.MAM) return false;
    if (ns === NS.HINTS && c.localName === 'store') body = true;
    if (c.localName === 'body' && ns === NS.CLIENT) body = true;
    if (ns === 'urn:xmpp:receipts' || ns === 'urn:xmpp:chat-markers:0' || ns === 'urn:xmpp:message-correct:0' || ns === 'urn:xmpp:reactions:0' || ns === 'urn:xmpp:message-retract:1') body = true;
    if (ns === 'eu.siacs.conversations.axolotl' || ns === 'urn:xmpp:omemo:2') body = true; // encrypted: no <body/> inside
  }
  return body;
}

/** Whether the preferences keep messages with `other`: a promise only for the 'roster' default. */
function wanted(user: UserContext, storage: InboundEvent['storage'], other: string): boolean | Promise<boolean> {
  const p = prefsOf(user);
  if (p.never.includes(other)) return false;
  if (p.always.includes(other)) return true;
  if (p.default === 'never') return false;
  if (p.default === 'roster') return loadItem(storage, user.jid.toBareString(), other).then((item) => item?.listed === true);
  return true;
}

/** On the string, where that is sure: 'yes' for chat or normal with a body and nothing that could
 *  change the answer (hints, carbons, archive results, stanza ids), 'no' for other types, else
 *  'parse' (the tree decides). The chat path then parses nothing. */
const CAREFUL = /urn:xmpp:(?:hints|carbons|mam|sid:0)/;
function quick(xml: string, type: string | null | undefined): 'yes' | 'no' | 'parse' {
  if (type === undefined) return 'parse';
  if (type !== null && type !== 'chat' && type !== 'normal') return 'no';
  if (CAREFUL.test(xml)) return 'parse';
  return /<body[\s/>]/.test(xml) ? 'yes' : 'parse';
}

/**
 * A message for the account: archived, and stamped with its archive id (what the client pages by).
 * Any stanza-id claiming to be ours is removed first (XEP-0359 §3.1). The entry is written with the
 * handling of the message (withHandling: on disk with it or not at all), so the chat path does not
 * wait for it; only an account with no session reads whether it exists, and only a 'roster'
 * preference reads the roster.
 */
function archiveIn(ev: InboundEvent): false | Promise<false> {
  const owner = ev.user.jid.toBareString();
  const q = quick(ev.xml, ev.type);
  if (q === 'no') return false;
  let base = ev.xml;
  if (q === 'parse') {
    const st = ev.stanza;
    const ours = st.getChildren('stanza-id', NS.STANZA_ID).filter((sid) => sid.attr('by') === owner);
    if (ours.length) { ev.stanza = st.withChildren(st.children.filter((c) => !ours.includes(c as XmlElement))); }
    if (!archivable(ev.stanza)) return false;
    base = ev.xml;
  }
  const other = ev.from.toBareString();
  const keep = (): false => {
    const at = ev.now();
    const id = archiveId(at);
    const stamped = appendChildXml(base, x('stanza-id', { xmlns: NS.STANZA_ID, by: owner, id }));
    ev.storage.withHandling([{ type: 'put', key: mamKeys.entry(owner, id), value: { with: other, at, dir: 'in', xml: stamped } satisfies ArchiveEntry }]);
    ev.xml = stamped;
    return false;
  };
  const decide = (yes: boolean): false => (yes ? keep() : false);
  // An account that does not exist (no session, no record) keeps nothing.
  if (ev.user.sessions().length === 0) {
    return ev.storage.get(keys.acct(owner)).then((acct) => (acct === undefined ? false : andThen(wanted(ev.user, ev.storage, other), decide)));
  }
  return andThen(wanted(ev.user, ev.storage, other), decide);
}

/** What one of the account's clients sends: archived as sent (§4.1.4). */
function archiveOut(ev: OutboundEvent): false | Promise<false> {
  if (ev.resource === undefined) return false;
  const q = quick(ev.xml, ev.type);
  if (q === 'no' || (q === 'parse' && !archivable(ev.stanza))) return false;
  const owner = ev.user.jid.toBareString();
  const other = ev.to.toBareString();
  if (other === owner) return false; // to oneself: it arrives, and is archived, as received
  return andThen(wanted(ev.user, ev.storage, other), (yes): false => {
    if (!yes) return false;
    const at = ev.now();
    ev.storage.withHandling([{ type: 'put', key: mamKeys.entry(owner, archiveId(at)), value: { with: other, at, dir: 'out', xml: ev.xml } satisfies ArchiveEntry }]);
    return false;
  });
}

async function prune(storage: InboundEvent['storage'], owner: string, before: number): Promise<void> {
  const old = await storage.range<ArchiveEntry>(mamKeys.of(owner), { lt: mamKeys.entry(owner, idAt(before)), limit: 1000 });
  if (old.length) await storage.batch(old.map(([key]) => ({ type: 'del' as const, key })));
}

// ---- querying ------------------------------------------------------------------------------------------

const idOf = (key: string): string => key.slice(key.lastIndexOf('!') + 1);

function parseTime(v: string | undefined): number | null | undefined {
  if (v === undefined || v === '') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/**
 * A query (§4): the form's filters (with, start, end, before-id, after-id, ids) and RSM paging
 * (max, after, before, flip-page); each result a message to the asking client, then the IQ result
 * with <fin/> (complete when the page reached the end in its direction).
 */
async function query(iq: IqRequest, defaultPage: number, maxPage: number): Promise<void> {
  const owner = iq.from.toBareString();
  const q = iq.payload;
  const form = readForm(q);
  if (form && form.formType !== undefined && form.formType !== NS.MAM) { iq.error('bad-request', 'modify', `unknown FORM_TYPE ${form.formType}`); return; }
  const withText = form ? formText(form, 'with') : undefined;
  const withJid: Jid | undefined = withText ? tryParseJid(withText) : undefined;
  if (withText && !withJid) { iq.error('bad-request', 'modify', `'with' is not a JID: ${withText}`); return; }
  const start = parseTime(form ? formText(form, 'start') : undefined);
  const end = parseTime(form ? formText(form, 'end') : undefined);
  if (start === null || end === null) { iq.error('bad-request', 'modify', 'start and end are XEP-0082 date-times'); return; }
  const ids = form?.values.get('ids')?.filter((v) => v !== '');
  const set = q.child('set', NS.RSM);
  const maxText = set?.getChildText('max', NS.RSM);
  const max = maxText === undefined ? defaultPage : Number(maxText);
  if (!Number.isInteger(max) || max < 0) { iq.error('bad-request', 'modify', 'RSM max is a count'); return; }
  const page = Math.min(max, maxPage);
  const afterId = set?.getChildText('after', NS.RSM) ?? (form ? formText(form, 'after-id') : undefined);
  const beforeEl = set?.child('before', NS.RSM);
  const beforeId = beforeEl !== undefined ? beforeEl.text() : form ? formText(form, 'before-id') : undefined;
  const backwards = beforeEl !== undefined; // <before/> (empty: the last page) pages from the end
  const flip = q.child('flip-page', NS.MAM) !== undefined;

  // Bounds in key space; the other filters as entries are read, in pages of the storage.
  const prefix = mamKeys.of(owner);
  const bounds: { gt?: string; gte?: string; lt?: string; lte?: string } = {};
  if (start !== undefined) bounds.gte = mamKeys.entry(owner, idAt(start));
  if (end !== undefined) bounds.lt = mamKeys.entry(owner, idAt(end + 1));
  for (const [id, dir] of [[afterId, 'gt'], [beforeId || undefined, 'lt']] as const) {
    if (id === undefined) continue;
    if (!(await iq.storage.get(mamKeys.entry(owner, id)))) { iq.error('item-not-found', 'cancel', `no archived message ${id}`); return; }
    const k = mamKeys.entry(owner, id);
    if (dir === 'gt') { delete bounds.gte; bounds.gt = bounds.gt && bounds.gt > k ? bounds.gt : k; } else { bounds.lt = bounds.lt && bounds.lt < k ? bounds.lt : k; }
  }
  const matches = (e: ArchiveEntry, key: string): boolean =>
    (!withJid || (withJid.isBare() ? e.with === withJid.toString() : parseElement(e.xml).attr(e.dir === 'in' ? 'from' : 'to') === withJid.toString()))
    && (!ids?.length || ids.includes(idOf(key)));
  const found: Array<[string, ArchiveEntry]> = [];
  let more = false;
  let cursor = { ...bounds };
  for (;;) {
    const chunk = await iq.storage.range<ArchiveEntry>(prefix, { ...cursor, reverse: backwards, limit: 500 });
    for (const [k, e] of chunk) {
      if (!matches(e, k)) continue;
      if (found.length === page) { more = true; break; }
      found.push([k, e]);
    }
    if (more || chunk.length < 500) break;
    const last = chunk[chunk.length - 1]![0];
    cursor = backwards ? { ...cursor, lt: last, lte: undefined } : { ...cursor, gt: last, gte: undefined };
  }
  if (backwards) found.reverse();
  const ordered = flip ? [...found].reverse() : found;
  const queryid = q.attr('queryid');
  const resource = iq.from.resource;
  for (const [key, e] of ordered) {
    const msg = x('message', { to: iq.from.toString(), from: owner, id: `mam-${idOf(key)}` },
      x('result', { xmlns: NS.MAM, queryid, id: idOf(key) },
        x('forwarded', { xmlns: NS.FORWARD }, x('delay', { xmlns: NS.DELAY, stamp: xmppDateTime(e.at) }), parseElement(e.xml).withAttrs({ xmlns: NS.CLIENT }))));
    await iq.user!.deliver(resource, msg);
  }
  const first = found[0], last = found[found.length - 1];
  iq.reply(x('fin', { xmlns: NS.MAM, complete: more ? undefined : 'true' },
    x('set', { xmlns: NS.RSM },
      first ? x('first', null, idOf(first[0])) : null,
      last ? x('last', null, idOf(last[0])) : null)));
}

/** v1.1 §5: the first and last entries of the archive. */
async function metadata(iq: IqRequest): Promise<void> {
  const prefix = mamKeys.of(iq.from.toBareString());
  const [first] = await iq.storage.range<ArchiveEntry>(prefix, { limit: 1 });
  const [last] = await iq.storage.range<ArchiveEntry>(prefix, { limit: 1, reverse: true });
  const point = (name: string, e: [string, ArchiveEntry] | undefined) => (e ? x(name, { id: idOf(e[0]), timestamp: xmppDateTime(e[1].at) }) : null);
  iq.reply(x('metadata', { xmlns: NS.MAM }, point('start', first), point('end', last)));
}

function prefsElement(p: Prefs): XmlElement {
  return x('prefs', { xmlns: NS.MAM, default: p.default },
    x('always', null, p.always.map((j) => x('jid', null, j))),
    x('never', null, p.never.map((j) => x('jid', null, j))));
}

function setPrefs(iq: IqRequest): void {
  const d = iq.payload.attr('default');
  if (d !== 'always' && d !== 'never' && d !== 'roster') { iq.error('bad-request', 'modify', 'default is always, never or roster'); return; }
  const list = (name: string): string[] | null => {
    const out: string[] = [];
    for (const j of iq.payload.child(name, NS.MAM)?.getChildren('jid', NS.MAM) ?? []) {
      const jid = tryParseJid(j.text());
      if (!jid) return null;
      out.push(jid.toBareString());
    }
    return out;
  };
  const always = list('always'), never = list('never');
  if (!always || !never) { iq.error('jid-malformed', 'modify', 'a JID in the preferences is not valid'); return; }
  const p: Prefs = { default: d, always, never };
  iq.user!.setState(MODULE, p);
  iq.reply(prefsElement(p));
}
