// Private XML Storage (XEP-0049): an account keeps XML fragments on its server, one per namespace,
// that only its own clients read and write (old clients keep bookmarks and settings there).
// Bookmarks are kept once, as PEP's Bookmarks 2 node (XEP-0402); what old clients read and write as
// storage:bookmarks here is that node, converted both ways (XEP-0411), so every client sees the same.
import { serialize, x } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule } from '../xmpp/module.ts';
import { keyOf, keysUnder } from '../storage/db.ts';
import type { XmlElement } from '../xml/element.ts';
import type { PepApi } from './pep.ts';

const LEGACY = 'storage:bookmarks';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';

/** Bookmarks 2 items (id = the room's JID) as one XEP-0048 <storage/>. */
function toLegacy(items: Array<{ id: string; payload: XmlElement }>): XmlElement {
  return x('storage', { xmlns: LEGACY }, items.map(({ id, payload }) => x('conference', { jid: id, name: payload.attr('name'), autojoin: payload.attr('autojoin') },
    payload.child('nick', BOOKMARKS) ? x('nick', null, payload.getChildText('nick', BOOKMARKS)!) : null,
    payload.child('password', BOOKMARKS) ? x('password', null, payload.getChildText('password', BOOKMARKS)!) : null)));
}

/** An XEP-0048 <storage/> as Bookmarks 2 items (its URLs have no place there and are dropped). */
function fromLegacy(storage: XmlElement): Array<{ id: string; payload: XmlElement }> {
  return storage.getChildren('conference', LEGACY).filter((c) => c.attr('jid')).map((c) => ({
    id: c.attr('jid')!,
    payload: x('conference', { xmlns: BOOKMARKS, name: c.attr('name'), autojoin: c.attr('autojoin') === '1' || c.attr('autojoin') === 'true' ? 'true' : undefined },
      c.child('nick', LEGACY) ? x('nick', null, c.getChildText('nick', LEGACY)!) : null,
      c.child('password', LEGACY) ? x('password', null, c.getChildText('password', LEGACY)!) : null),
  }));
}

const MODULE = 'private';

export const privateKeys = {
  of: (bare: string) => keysUnder(MODULE, bare),
  item: (bare: string, ns: string) => keyOf(MODULE, bare, ns),
};

/** Namespaces no client may store under (§3: they are the protocol's own). */
const RESERVED = new Set<string>([NS.CLIENT, NS.SERVER, NS.PRIVATE]);

const options = {
  max_bytes: { type: 'number', default: 65_536, min: 256, max: 16_777_216, doc: 'The largest fragment an account may store under one namespace, in bytes.' },
  max_namespaces: { type: 'number', default: 100, min: 1, max: 10_000, doc: 'How many namespaces an account may store under.' },
} as const;

export default defineModule({
  name: MODULE,
  description: 'Private XML storage (XEP-0049): fragments an account keeps for its own clients, one per namespace.',
  xeps: [
    { xep: 49, version: '1.2', status: 'complete' },
    { xep: 411, version: '1.1.0', status: 'complete', note: 'storage:bookmarks here is the Bookmarks 2 PEP node, both ways' },
  ],
  features: { account: [`${BOOKMARKS}#compat`] },
  depends: ['pep'],
  storage: [MODULE],
  options,
  setup(m) {
    const pep = m.depends<PepApi>('pep');
    m.iq('get', 'self', NS.PRIVATE, async (iq) => {
      const asked = iq.payload.getChildren();
      if (asked.length !== 1) { iq.error('not-acceptable', 'modify', 'ask for exactly one namespace'); return; }
      const ns = asked[0]!.getXmlns();
      if (ns === LEGACY) { iq.reply(x('query', { xmlns: NS.PRIVATE }, toLegacy(await pep.items(iq.storage, iq.from.toBareString(), BOOKMARKS)))); return; }
      const stored = await iq.storage.get<string>(privateKeys.item(iq.from.toBareString(), ns));
      iq.reply(x('query', { xmlns: NS.PRIVATE }, stored === undefined ? asked[0]! : parseElement(stored, ns)));
    });

    m.iq('set', 'self', NS.PRIVATE, async (iq) => {
      const fragments = iq.payload.getChildren();
      if (fragments.length === 0) { iq.error('not-acceptable', 'modify', 'nothing to store'); return; }
      const bare = iq.from.toBareString();
      const o = m.optionsFor(iq.host);
      const writes: Array<{ type: 'put'; key: string; value: string }> = [];
      for (const f of fragments) {
        const ns = f.getXmlns();
        if (RESERVED.has(ns) || ns === '') { iq.error('not-acceptable', 'modify', `nothing may be stored under ${ns || 'no namespace'}`); return; }
        const xml = serialize(f);
        if (Buffer.byteLength(xml) > o.max_bytes) { iq.error('not-acceptable', 'modify', `a fragment is at most ${o.max_bytes} bytes`); return; }
        writes.push({ type: 'put', key: privateKeys.item(bare, ns), value: xml });
      }
      const known = await iq.storage.range<string>(privateKeys.of(bare), { limit: o.max_namespaces + 1 });
      const names = new Set(known.map(([k]) => k));
      for (const w of writes) names.add(w.key);
      if (names.size > o.max_namespaces) { iq.error('not-acceptable', 'modify', `at most ${o.max_namespaces} namespaces per account`); return; }
      const legacy = fragments.find((f) => f.getXmlns() === LEGACY);
      await iq.storage.batch(writes.filter((w) => w.key !== privateKeys.item(bare, LEGACY)));
      // Bookmarks go to their one place, the Bookmarks 2 node (XEP-0402 §5: whitelist, any number).
      if (legacy) await pep.replaceItems({ ...iq, user: iq.user! }, BOOKMARKS, fromLegacy(legacy), 'whitelist');
      iq.reply();
    });

    // §3: another account's private data is nobody else's business.
    for (const type of ['get', 'set'] as const) m.iq(type, 'bare', NS.PRIVATE, (iq) => { iq.error('forbidden', 'cancel', 'private data is its owner\'s only'); });

    m.hook('user/deleted', async (ev) => {
      const stored = await ev.storage.range<string>(privateKeys.of(ev.jid.toBareString()));
      if (stored.length) await ev.storage.batch(stored.map(([key]) => ({ type: 'del' as const, key })));
    });

    // XEP-0227: the fragments as stored (bookmarks are the pep module's: it exports their node).
    m.hook('account/export', async (ev) => {
      const stored = await ev.storage.range<string>(privateKeys.of(ev.jid.toBareString()));
      if (stored.length) ev.add(x('query', { xmlns: NS.PRIVATE }, stored.map(([key, xml]) => parseElement(xml, key.slice(key.lastIndexOf('!') + 1)))));
    });
    // Bookmarks another server kept in private XML go to their one place here, the Bookmarks 2 node.
    m.hook('account/import', async (ev) => {
      const bare = ev.jid.toBareString();
      const writes: Array<{ type: 'put'; key: string; value: string }> = [];
      for (const f of ev.user.child('query', NS.PRIVATE)?.getChildren() ?? []) {
        const ns = f.getXmlns();
        if (ns === LEGACY) await pep.storeItems(ev.storage, bare, BOOKMARKS, fromLegacy(f), 'whitelist');
        else if (RESERVED.has(ns) || ns === '') ev.note(`private XML under ${ns || 'no namespace'} skipped`);
        else writes.push({ type: 'put', key: privateKeys.item(bare, ns), value: serialize(f) });
      }
      if (writes.length) await ev.storage.batch(writes);
    });
  },
});
