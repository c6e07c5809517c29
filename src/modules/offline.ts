// XEP-0160 offline messages. A chat/normal message the core could not deliver (RFC 6121 §8.5.2.2.1: no
// available resource with non-negative priority) is stored in LevelDB under offline!<bare>!<seq> with
// a XEP-0203 <delay/> from the server added, up to `max_messages` per account (beyond that the sender
// gets service-unavailable, XEP-0160 §3). When a session sends its initial available presence with a
// non-negative priority (RFC 6121 §8.5.2.2.1, XEP-0160 §2), the stored messages are delivered to that
// resource in order and deleted.
//
// Everything runs in the user actor. Storage calls are async and go through one promise chain per
// account, so they happen in the order their hooks ran; whatever needs the actor again (delivering,
// answering the sender, releasing the kept durable message) comes back as a later('offline') message.
// Sequence numbers and the stored count are read from LevelDB when an account's chain starts, never
// from the actor's snapshot, so a restart cannot reuse a key.
//
// Ordering: a message stored while a delivery runs gets a later key; after each batch is delivered
// the module reads again until nothing new is left, so it reaches the same resource right after the
// older ones. The presence module records the presence only after its own async work, so until this
// module sees the resource available the delivery stays open: a message stored meanwhile is delivered
// to that resource too instead of waiting for the next login. A message the core delivers live once
// the presence is recorded can arrive before stored ones still being read; they carry delay stamps.
import { stanzaError } from '../xmpp/errors.ts';
import { addDelayXml } from '../xmpp/delay.ts';
import { defineModule, type Hooks, type Storage, type UserContext } from '../xmpp/module.ts';
import { NS } from '../xmpp/namespaces.ts';
import type { XmlElement } from '../xml/element.ts';
import { keys } from '../storage/db.ts';

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

/** The `<priority/>` of a presence (RFC 6121 §4.7.2.3), 0 when absent or not an integer. */
function priorityOf(stanza: XmlElement): number {
  const t = stanza.getChildText('priority')?.trim();
  return t !== undefined && /^[+-]?\d{1,3}$/.test(t) ? Number(t) : 0;
}

const seqOf = (key: string): number => Number(key.slice(key.lastIndexOf('!') + 1));

type Later =
  | { op: 'stored'; bare: string; keep: number; bounce: string | null; error: string | null }
  | { op: 'batch'; bare: string; flush: number; items: Array<[string, unknown]>; full: boolean; error: string | null }
  | { op: 'log'; level: 'warn' | 'error'; text: string };

/** One account's offline work on this thread; dropped when idle. */
interface Account {
  bare: string;
  storage: Storage;
  post: (data: Later) => void;
  chain: Promise<void>;
  /** Steps queued or running. */
  steps: number;
  /** Next sequence number and number of stored messages (capped at the limit), once read. */
  next: number | undefined;
  count: number | undefined;
  /** The account exists (checked once, on the first message to store). */
  exists?: boolean;
  /** The delivery under way, if any: reading (a read is queued or its batch not yet delivered) or,
   *  between batches, waiting for the presence module to record the resource as available. */
  flush: { id: number; resource: string; cancelled: boolean; reading: boolean } | null;
  /** Stores queued after the current flush's last read: they need another round. */
  storedSinceRead: number;
  /** Durable stanzas kept until their write is done (the release runs in the actor). */
  keeps: Map<number, () => void>;
}

const options = {
  max_messages: { type: 'number', default: 1000, min: 0, max: 1_000_000, doc: 'Offline messages kept per account; beyond this the sender gets service-unavailable.' },
} as const;

export default defineModule({
  name: 'offline',
  description: 'Offline messages (XEP-0160): storage for unavailable accounts, delivery on initial presence.',
  xeps: [
    { xep: 160, version: '1.0.1', status: 'complete' },
    { xep: 203, version: '2.0', status: 'complete', note: 'delay stamps on offline messages' },
  ],
  features: { host: ['msgoffline'] },
  options,
  setup(m) {
    const limit = m.options.max_messages;
    const accounts = new Map<string, Account>();
    let ids = 0;

    const account = (ev: { user: UserContext; storage: Storage; later(module: string): (data: unknown) => void }): Account => {
      const bare = ev.user.jid.toBareString();
      let a = accounts.get(bare);
      if (!a) {
        a = { bare, storage: ev.storage, post: () => {}, chain: Promise.resolve(), steps: 0, next: undefined, count: undefined, flush: null, storedSinceRead: 0, keeps: new Map() };
        accounts.set(bare, a);
      }
      a.storage = ev.storage;
      a.post = ev.later('offline'); // the newest: a restarted actor gets its own
      return a;
    };

    const dropIfIdle = (a: Account): void => {
      if (a.steps === 0 && a.flush === null && a.keeps.size === 0 && accounts.get(a.bare) === a) accounts.delete(a.bare);
    };

    const enqueue = (a: Account, step: () => Promise<void>): void => {
      a.steps++;
      a.chain = a.chain.then(step).catch((err: unknown) => {
        a.next = a.count = undefined; // re-read on next use
        a.post({ op: 'log', level: 'error', text: `offline: ${a.bare}: ${(err as Error)?.message ?? err}` });
      }).finally(() => { a.steps--; dropIfIdle(a); });
    };

    const load = async (a: Account): Promise<void> => {
      if (a.next !== undefined && a.count !== undefined) return;
      const prefix = keys.offlineOf(a.bare);
      const last = await a.storage.range<unknown>(prefix, { reverse: true, limit: 1 });
      a.next = last.length ? seqOf(last[0]![0]) + 1 : 1;
      a.count = last.length ? (await a.storage.range<unknown>(prefix, { limit: Math.max(limit, 1) })).length : 0;
    };

    const store = async (a: Account, xml: string, keep: number, full: string | null, failed: string | null, noAccount: string | null): Promise<void> => {
      let bounce: string | null = null, error: string | null = null;
      try {
        await load(a);
        // Only accounts that exist have offline storage (RFC 6121 §8.5.1: otherwise service-unavailable).
        if (!a.exists && (a.exists = (await a.storage.get(keys.acct(a.bare))) !== undefined) === false) bounce = noAccount;
        else if (a.count! >= limit) bounce = full;
        else {
          const key = keys.offline(a.bare, a.next!);
          a.next!++;
          await a.storage.put(key, xml);
          a.count!++;
        }
      } catch (err) {
        a.next = a.count = undefined;
        error = `offline: storing for ${a.bare} failed: ${(err as Error)?.message ?? err}`;
        bounce = failed;
      }
      a.post({ op: 'stored', bare: a.bare, keep, bounce, error });
    };

    const read = async (a: Account, flush: number): Promise<void> => {
      let items: Array<[string, unknown]> = [], error: string | null = null;
      try { items = await a.storage.range<unknown>(keys.offlineOf(a.bare), { limit: OFFLINE_BATCH }); }
      catch (err) { error = `offline: reading for ${a.bare} failed: ${(err as Error)?.message ?? err}`; }
      a.post({ op: 'batch', bare: a.bare, flush, items, full: items.length === OFFLINE_BATCH, error });
    };

    const remove = async (a: Account, done: string[]): Promise<void> => {
      try {
        await a.storage.batch(done.map((key) => ({ type: 'del' as const, key })));
        if (a.count !== undefined) a.count = Math.max(0, a.count - done.length);
      } catch (err) {
        // Delivered but still stored: stop this delivery instead of delivering them again and again.
        a.flush = null;
        a.next = a.count = undefined;
        a.post({ op: 'log', level: 'error', text: `offline: deleting delivered messages of ${a.bare} failed: ${(err as Error)?.message ?? err}` });
      }
    };

    const startFlush = (a: Account, resource: string): void => {
      const id = ++ids;
      a.flush = { id, resource, cancelled: false, reading: true };
      a.storedSinceRead = 0;
      enqueue(a, () => read(a, id));
    };

    const cancelFlush = (bare: string, resource: string): void => {
      const a = accounts.get(bare);
      if (a?.flush?.resource !== resource) return;
      if (a.flush.reading) a.flush.cancelled = true; // its batch handler ends it
      else { a.flush = null; dropIfIdle(a); }
    };

    /** Ends a waiting delivery once its resource is available (the core then delivers by itself). */
    const settleFlush = (a: Account, user: UserContext): void => {
      const f = a.flush;
      if (f && !f.reading && user.session(f.resource)?.presence != null) { a.flush = null; dropIfIdle(a); }
    };

    m.hook('message/undeliverable', (ev) => {
      const what = offlineDisposition(ev.stanza);
      if (what !== 'store') return what === 'drop';
      const a = account(ev);
      const keep = ++ids;
      a.keeps.set(keep, ev.keep());
      const xml = addDelayXml(ev.xml, ev.host, ev.now(), 'Offline Storage');
      const full = stanzaError(ev.stanza, null, 'service-unavailable', 'offline message storage is full');
      const failed = stanzaError(ev.stanza, null, 'internal-server-error');
      const noAccount = stanzaError(ev.stanza, null, 'service-unavailable');
      enqueue(a, () => store(a, xml, keep, full, failed, noAccount));
      const f = a.flush;
      if (f?.reading) a.storedSinceRead++;
      else if (f) {
        if (!f.cancelled && ev.user.session(f.resource)?.presence === null) {
          // The resource that took the stored messages is not recorded as available yet: it takes this one too.
          f.reading = true;
          a.storedSinceRead = 0;
          enqueue(a, () => read(a, f.id));
        } else a.flush = null; // gone, or recorded and still not a candidate: the core knows better
      }
      return true;
    });

    m.hook('presence/out', (ev: Hooks['presence/out']) => {
      const type = ev.stanza.attr('type');
      const bare = ev.user.jid.toBareString();
      if (type === 'unavailable') { cancelFlush(bare, ev.resource); return false; }
      // Initial presence: available, broadcast (no 'to'), before the presence module records it.
      if (type !== undefined || ev.stanza.attr('to') !== undefined) return false;
      const session = ev.user.session(ev.resource);
      const priority = priorityOf(ev.stanza);
      if (priority < 0) cancelFlush(bare, ev.resource); // it takes no messages any more
      const known = accounts.get(bare);
      if (known) settleFlush(known, ev.user);
      if (!session || session.presence !== null || priority < 0) return false;
      const a = account(ev);
      const f = a.flush;
      // One delivery at a time: another resource's (still live) delivery gets everything.
      if (f && !f.cancelled && ev.user.session(f.resource)) return false;
      startFlush(a, ev.resource);
      return false;
    }, OFFLINE_PRESENCE_PRIORITY);

    m.hook('session/unbound', (ev) => { cancelFlush(ev.user.jid.toBareString(), ev.resource); return false; });

    // After a restart the old actor's kept stanzas are redelivered by the runtime, and its delivery
    // messages are lost: forget both.
    m.hook('user/started', (ev) => {
      const a = accounts.get(ev.user.jid.toBareString());
      if (a) { a.keeps.clear(); a.flush = null; dropIfIdle(a); }
      return false;
    });

    m.onLater((data: Later, ctx) => {
      if (data.op === 'log') { ctx.log(data.level, data.text); return; }
      const a = accounts.get(data.bare);
      if (data.op === 'stored') {
        if (data.bounce) ctx.route(data.bounce);
        if (data.error) ctx.log('error', data.error);
        const release = a?.keeps.get(data.keep);
        if (a && release) { a.keeps.delete(data.keep); release(); dropIfIdle(a); }
        return;
      }
      // op 'batch'
      const user = ctx.user;
      if (!a || !a.flush || a.flush.id !== data.flush || !user) return; // stale: a newer delivery or a restart
      const f = a.flush;
      if (data.error) ctx.log('error', data.error);
      if (data.error || f.cancelled || !user.session(f.resource)) { a.flush = null; dropIfIdle(a); return; }
      for (const [, xml] of data.items) if (typeof xml === 'string') user.deliver(f.resource, xml);
      if (data.items.length) { const done = data.items.map(([k]) => k); enqueue(a, () => remove(a, done)); }
      if (data.full || a.storedSinceRead > 0) { a.storedSinceRead = 0; enqueue(a, () => read(a, f.id)); return; }
      f.reading = false;
      settleFlush(a, user);
    });
  },
});
