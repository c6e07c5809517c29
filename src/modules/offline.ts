// XEP-0160 offline messages. A chat/normal message the core could not deliver (RFC 6121 §8.5.2.2.1: no
// available resource with non-negative priority) is stored in LevelDB under offline!<bare>!<seq> with
// a XEP-0203 <delay/> from the server added, up to `max_messages` per account (beyond that the sender
// gets service-unavailable, XEP-0160 §3 — but never for mail accepted earlier that an ending session
// hands back: that is kept over the limit). When a resource becomes available with a non-negative
// priority (RFC 6121 §8.5.2.2.1, XEP-0160 §2), the stored messages are delivered to it in order and
// deleted.
//
// Read, decide, write: each hook is async and its user actor is suspended until it settles, so no other
// stanza of the account interleaves — a message arriving during a delivery waits, and reaches the
// resource after the stored ones. The next sequence number and the count live in the actor's state
// (its snapshot, read from disk once): a message replayed after a crash is written under the same key
// again, never twice. A storage error crashes the actor; the durable message is redelivered.
import { addDelayXml } from '../xmpp/delay.ts';
import { defineModule, type Storage, type UserContext } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';
import { serialize, x } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { parsePriority } from '../xmpp/priority.ts';
import type { XmlElement } from '../xml/element.ts';
import { keyOf, keys, keysUnder } from '../storage/db.ts';

const MODULE = 'offline';

/** Its keys: offline!<bare>!<16-digit seq>, in delivery order. */
export const offlineKeys = {
  at: (bare: string, n: number) => keyOf(MODULE, bare, String(n).padStart(16, '0')),
  of: (bare: string) => keysUnder(MODULE, bare),
};
/** Runs before the presence module (priority 0) on 'presence/out', and never stops the chain. */
export const OFFLINE_PRESENCE_PRIORITY = 50;
/** Messages read and delivered per round. */
export const OFFLINE_BATCH = 100;

export type Disposition = 'store' | 'drop' | 'pass';

// Children that are not content of their own: a message with only these is not worth keeping.
const NOT_CONTENT = new Set<string>([NS.CHAT_STATES, NS.HINTS, NS.DELAY]);

/**
 * What offline storage does with an undeliverable message: 'store' it; 'drop' it silently (only chat
 * states and the like: XEP-0085 notifications are not stored for later); or 'pass' it to the core,
 * which answers per RFC 6121 §8.5.2 (error/headline dropped, groupchat bounced, no-store bounced).
 */
export function offlineDisposition(stanza: XmlElement): Disposition {
  if (!stanza.is('message')) return 'pass';
  const type = stanza.attr('type') ?? 'normal';
  if (type !== 'normal' && type !== 'chat') return 'pass';
  let content = false, storeHint = false;
  for (const c of stanza.getChildren()) {
    const ns = c.getXmlns();
    if (ns === NS.HINTS) {
      if (c.localName === 'no-store') return 'pass'; // XEP-0334 §4.3: not even for later delivery
      if (c.localName === 'store') storeHint = true;
    } else if (!NOT_CONTENT.has(ns) && !(c.localName === 'thread' && ns === NS.CLIENT) && ns !== NS.STANZA_ID) {
      content = true;
    }
  }
  return content || storeHint ? 'store' : 'drop';
}

/** Kept in the user actor's snapshot. */
interface OfflineState { next: number; count: number }

const seqOf = (key: string): number => Number(key.slice(key.lastIndexOf('!') + 1));

async function loadState(user: UserContext, storage: Storage, limit: number): Promise<OfflineState> {
  const known = user.state<OfflineState | null>(MODULE, () => null);
  if (known) return known;
  const prefix = offlineKeys.of(user.jid.toBareString());
  const last = await storage.range<unknown>(prefix, { reverse: true, limit: 1 });
  if (last.length === 0) return { next: 1, count: 0 };
  return { next: seqOf(last[0]![0]) + 1, count: (await storage.range<unknown>(prefix, { limit: Math.max(limit, 1) })).length };
}

/** A candidate for delivery (RFC 6121 §8.5.2.2.1): available with a non-negative priority. */
const candidate = (s: { presence: string | null; priority: number } | undefined): boolean => !!s && s.presence !== null && s.priority >= 0;

const options = {
  max_messages: { type: 'number', default: 1000, min: 0, max: 1_000_000, doc: 'Offline messages kept per account; beyond this the sender gets service-unavailable.' },
} as const;

export default defineModule({
  name: MODULE,
  description: 'Offline messages (XEP-0160): storage for unavailable accounts, delivery on initial presence.',
  xeps: [
    { xep: 160, version: '1.0.1', status: 'complete' },
    { xep: 203, version: '2.0', status: 'complete', note: 'delay stamps on offline messages' },
  ],
  features: { host: ['msgoffline'] },
  storage: [MODULE],
  options,
  setup(m) {
    m.hook('message/undeliverable', async (ev) => {
      const limit = m.optionsFor(ev.host).max_messages;
      const what = offlineDisposition(ev.stanza);
      if (what !== 'store') return what === 'drop';
      const bare = ev.user.jid.toBareString();
      // Only accounts that exist have offline storage (RFC 6121 §8.5.1: otherwise service-unavailable).
      if ((await ev.storage.get(keys.acct(bare))) === undefined) { ev.error('service-unavailable'); return true; }
      const st = await loadState(ev.user, ev.storage, limit);
      if (st.count >= limit) {
        // Mail a session handed back was accepted already (its sender saw it acknowledged, and may be
        // gone): it is kept over the limit. Only new mail is refused.
        if (ev.handedBack) ev.log('info', `offline storage over its limit (${limit}): kept message ${st.count + 1}, accepted earlier and handed back by a session that ended`);
        else {
          ev.error('service-unavailable', undefined, 'offline message storage is full');
          ev.user.setState(MODULE, st);
          return true;
        }
      }
      await ev.storage.put(offlineKeys.at(bare, st.next), addDelayXml(ev.xml, ev.host, ev.now(), 'Offline Storage'));
      ev.user.setState(MODULE, { next: st.next + 1, count: st.count + 1 });
      return true;
    });

    // Before the presence module records the presence: the resource is not yet a delivery candidate,
    // so nothing the core delivers live can overtake the stored messages.
    m.hook('presence/out', (ev) => {
      if (ev.stanza.attr('type') !== undefined || ev.stanza.attr('to') !== undefined) return false;
      const session = ev.user.session(ev.resource);
      if (!session || candidate(session) || parsePriority(ev.stanza) < 0) return false;
      // The state counts what is stored: when it says none, there is nothing to read and no reason to
      // suspend the actor (this runs at every login).
      const known = ev.user.state<OfflineState | null>(MODULE, () => null);
      if (known && known.count === 0) return false;
      return flush(ev.user, ev.resource, ev.storage);
    }, OFFLINE_PRESENCE_PRIORITY);

    m.hook('user/deleted', async (ev) => {
      const stored = await ev.storage.range<unknown>(offlineKeys.of(ev.jid.toBareString()));
      if (stored.length) await ev.storage.batch(stored.map(([key]) => ({ type: 'del' as const, key })));
    });

    // XEP-0227: the stored messages, oldest first, with their delay stamps.
    m.hook('account/export', async (ev) => {
      const stored = await ev.storage.range<string>(offlineKeys.of(ev.jid.toBareString()));
      // Each says its namespace: inside <offline-messages/> it would inherit XEP-0227's.
      if (stored.length) ev.add(x('offline-messages', { xmlns: NS.PIE }, stored.map(([, xml]) => { const m = parseElement(xml); return x('message', { xmlns: NS.CLIENT, ...m.attrs }, m.children); })));
    });
    // Appended after what is stored (a fresh account: from 1); a message without a delay stamp gets
    // one of the import's time, as if it had come now.
    m.hook('account/import', async (ev) => {
      const messages = ev.user.getChildren().find((c) => c.localName === 'offline-messages')?.getChildren('message') ?? [];
      if (!messages.length) return;
      const bare = ev.jid.toBareString();
      const last = await ev.storage.range<unknown>(offlineKeys.of(bare), { reverse: true, limit: 1 });
      let next = last.length ? seqOf(last[0]![0]) + 1 : 1;
      const stanza = (m: XmlElement) => x('message', { ...m.attrs, xmlns: NS.CLIENT }, m.children);
      await ev.storage.batch(messages.map((msg) => {
        const xml = serialize(stanza(msg));
        return { type: 'put' as const, key: offlineKeys.at(bare, next++), value: msg.child('delay', NS.DELAY) ? xml : addDelayXml(xml, ev.jid.domain, ev.now(), 'Offline Storage') };
      }));
    });
  },
});

/** Delivers the stored messages to `resource` in order, deleting each batch once the session has it. */
async function flush(user: UserContext, resource: string, storage: Storage): Promise<false> {
  const bare = user.jid.toBareString();
  const { next } = await loadState(user, storage, 1); // the count is about to be 0: count no further
  for (;;) {
    const batch = await storage.range<unknown>(offlineKeys.of(bare), { limit: OFFLINE_BATCH });
    if (batch.length === 0) break;
    // Deleted once the session's durable mailbox holds them: a crash in between delivers twice, never zero times.
    await Promise.all(batch.flatMap(([, xml]) => (typeof xml === 'string' ? [user.deliver(resource, xml)] : [])));
    await storage.batch(batch.map(([key]) => ({ type: 'del' as const, key })));
    if (batch.length < OFFLINE_BATCH) break;
  }
  user.setState(MODULE, { next, count: 0 });
  return false;
}
