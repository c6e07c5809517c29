// Message Archive Management (XEP-0313, urn:xmpp:mam:2 with v1.1's ids, before-id/after-id and
// metadata) with Unique and Stable Stanza IDs (XEP-0359): every chat message an account receives or
// sends is kept in its archive, in its user actor, before it is delivered (a received one carries
// <stanza-id/> with its archive id); clients page through it with RSM (XEP-0059). Kept for
// `expiry_days` (pruned at each login), removed with the account; preferences per account.
import { serialize, x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { appendChildXml } from '../xmpp/delay.ts';
import { dataForm } from '../xmpp/forms.ts';
import { tryParseJid } from '../xmpp/jid.ts';
import { andThen, defineModule, type InboundEvent, type IqRequest, type OutboundEvent, type UserContext } from '../xmpp/module.ts';
import { keys } from '../storage/db.ts';
import { archiveId, archiveKeys, archiveOps, finElement, indexArchive, metadataElement, queryArchive, queryFields, removeArchive, resultMessage, type ArchiveEntry } from './archive.ts';
import { loadItem } from './roster-store.ts';

const MODULE = 'mam';
/** XEP-0227's container of an account's archive. */
const PIE_MAM = `${NS.PIE}#mam`;

/** The archive, and its index by contact (`mamwith!<owner>!<contact>!<id>`). */
const INDEX = 'mamwith';
export const mamKeys = archiveKeys(MODULE, INDEX);

/** XEP-0313 §7 preferences, kept in the user actor's state (read for every message). */
interface Prefs { default: 'always' | 'never' | 'roster'; always: string[]; never: string[] }
const DEFAULT_PREFS: Prefs = { default: 'always', always: [], never: [] };
/** In the user actor's state: the preferences, when the archive was last pruned, and whether its
 *  index by contact is complete (an archive kept before the index existed is indexed at its first query). */
interface MamState { prefs: Prefs; prunedAt: number; indexed?: true }
const NONE: MamState = { prefs: DEFAULT_PREFS, prunedAt: 0 };
const stateOf = (user: UserContext): MamState => user.state<MamState>(MODULE, () => NONE);
const prefsOf = (user: UserContext): Prefs => stateOf(user).prefs;
/** Expiry runs at a login at most once a day, from the day after the first: a login does not pay
 *  for a range read every time. */
const PRUNE_EVERY_MS = 86_400_000;

const options = {
  expiry_days: { type: 'number', default: 365, min: 0, max: 36_500, doc: 'Days an archived message is kept (0: for ever).' },
  max_page: { type: 'number', default: 250, min: 10, max: 10_000, doc: 'The most results one query page returns.' },
  default_page: { type: 'number', default: 50, min: 1, max: 10_000, doc: 'Results per page when a client does not say.' },
} as const;

export default defineModule({
  name: MODULE,
  description: 'Message archives (XEP-0313) with stanza ids (XEP-0359): chat kept per account, paged by clients.',
  xeps: [
    { xep: 313, version: '1.1.1', status: 'complete', note: 'account archives (rooms keep theirs: module muc)' },
    { xep: 359, version: '0.7', status: 'complete', note: 'stanza-id on archived messages' },
    { xep: 59, version: '1.0', status: 'complete', note: 'paging of archive queries' },
  ],
  features: { account: [NS.MAM, `${NS.MAM}#extended`, NS.STANZA_ID] },
  storage: [MODULE, INDEX],
  options,
  setup(m) {
    for (const target of ['bare', 'full'] as const) {
      m.hook(`message/${target}`, (ev) => archiveIn(ev), 50); // after blocking, before delivery
      m.hook(`pre-message/${target}`, (ev) => archiveOut(ev), -50); // after the vetoes
    }
    m.iq('get', 'self', NS.MAM, (iq) => {
      if (iq.payload.localName === 'metadata') return metadata(iq);
      if (iq.payload.localName === 'prefs') { iq.reply(prefsElement(prefsOf(iq.user!))); return undefined; }
      iq.reply(x('query', { xmlns: NS.MAM }, dataForm({ type: 'form', formType: NS.MAM }, [...queryFields])));
      return undefined;
    });
    m.iq('set', 'self', NS.MAM, (iq) => {
      if (iq.payload.localName === 'prefs') { setPrefs(iq); return undefined; }
      const o = m.optionsFor(iq.host);
      return query(iq, o.default_page, o.max_page);
    });
    for (const type of ['get', 'set'] as const) m.iq(type, 'bare', NS.MAM, (iq) => { iq.error('forbidden', 'auth', 'an archive is its owner\'s only'); });
    // XEP-0386: a Bind 2 login learns where its archive starts and ends, to catch up from there.
    m.hook('session/bound', (ev) => ev.bind2 && metadataElement(ev.storage, mamKeys, ev.user.jid.toBareString()).then((el) => { ev.bind2!.answer(el); return false; }));
    m.hook('session/bound', (ev) => {
      const days = m.optionsFor(ev.host).expiry_days;
      const st = stateOf(ev.user);
      if (days <= 0 || ev.now() - st.prunedAt < PRUNE_EVERY_MS) return false;
      // The first login only starts the clock: a login costs no archive read until a day later.
      if (st.prunedAt === 0) { ev.user.setState(MODULE, { ...st, prunedAt: ev.now() }); return false; }
      const at = ev.now();
      return removeArchive(ev.storage, mamKeys, ev.user.jid.toBareString(), at - days * 86_400_000).then(() => {
        ev.user.setState(MODULE, { ...stateOf(ev.user), prunedAt: at });
        return false;
      });
    });
    m.hook('user/deleted', (ev) => removeArchive(ev.storage, mamKeys, ev.jid.toBareString()));

    // XEP-0227: the archive as <archive xmlns='urn:xmpp:pie:0#mam'/> of MAM results, oldest first.
    m.hook('account/export', async (ev) => {
      const owner = ev.jid.toBareString();
      const results: XmlElement[] = [];
      let gt: string | undefined;
      for (;;) {
        const chunk = await ev.storage.range<ArchiveEntry>(mamKeys.of(owner), { ...(gt ? { gt } : {}), limit: 1000 });
        for (const [key, e] of chunk) results.push(resultMessage(owner, owner, undefined, key, e).child('result', NS.MAM)!);
        if (chunk.length < 1000) break;
        gt = chunk[chunk.length - 1]![0];
      }
      if (results.length) ev.add(x('archive', { xmlns: PIE_MAM }, results));
    });
    // Each archived again at its time, with an id of ours (a client's next sync fetches them anew);
    // a message without a stamp is archived as of the import.
    m.hook('account/import', async (ev) => {
      const results = ev.user.child('archive', PIE_MAM)?.getChildren('result', NS.MAM) ?? [];
      if (!results.length) return;
      const owner = ev.jid.toBareString();
      const ops: Parameters<typeof ev.storage.batch>[0] = [];
      for (const r of results) {
        const fwd = r.child('forwarded', NS.FORWARD);
        const msg = fwd?.getChildren().find((c) => c.localName === 'message');
        const from = tryParseJid(msg?.attr('from') ?? ''), to = tryParseJid(msg?.attr('to') ?? '');
        if (!msg || !from || !to) { ev.note(`an archived message without a message, or its from and to (id ${r.attr('id') ?? '?'}): skipped`); continue; }
        const stamp = Date.parse(fwd!.child('delay', NS.DELAY)?.attr('stamp') ?? '');
        const at = Number.isNaN(stamp) ? ev.now() : stamp;
        const out = from.toBareString() === owner;
        const { xmlns: _, ...attrs } = msg.attrs;
        void _;
        ops.push(...archiveOps(mamKeys, owner, archiveId(at), { with: (out ? to : from).toBareString(), at, dir: out ? 'out' : 'in', xml: serialize(x('message', attrs, msg.children)) }));
      }
      for (let i = 0; i < ops.length; i += 1000) await ev.storage.batch(ops.slice(i, i + 1000));
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
    ev.storage.withHandling(archiveOps(mamKeys, owner, id, { with: other, at, dir: 'in', xml: stamped }));
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
    ev.storage.withHandling(archiveOps(mamKeys, owner, archiveId(at), { with: other, at, dir: 'out', xml: ev.xml }));
    return false;
  });
}

// ---- querying ------------------------------------------------------------------------------------------

/** A query of the account's own archive: the results to the asking client, then <fin/>. */
async function query(iq: IqRequest, defaultPage: number, maxPage: number): Promise<void> {
  const owner = iq.from.toBareString();
  if (!stateOf(iq.user!).indexed) {
    await indexArchive(iq.storage, mamKeys, owner);
    iq.user!.setState(MODULE, { ...stateOf(iq.user!), indexed: true });
  }
  const page = await queryArchive(iq.storage, mamKeys, owner, iq.payload, { defaultPage, maxPage });
  if ('condition' in page) { iq.error(page.condition, undefined, page.text); return; }
  for (const [key, e] of page.entries) await iq.user!.deliver(iq.from.resource, resultMessage(iq.from.toString(), owner, page.queryid, key, e));
  iq.reply(finElement(page));
}

async function metadata(iq: IqRequest): Promise<void> {
  iq.reply(await metadataElement(iq.storage, mamKeys, iq.from.toBareString()));
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
  iq.user!.setState(MODULE, { ...stateOf(iq.user!), prefs: p });
  iq.reply(prefsElement(p));
}
