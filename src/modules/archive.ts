// The archive store and its query (XEP-0313): entries under `<prefix>!<archive>!<id>`, ids in time
// order, a query's form and RSM paging turned into one page. Shared by an account's archive (module
// mam) and a room's (actors/room).
import { x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { xmppDateTime } from '../xmpp/delay.ts';
import { formText, readForm } from '../xmpp/forms.ts';
import { tryParseJid, type Jid } from '../xmpp/jid.ts';
import type { StanzaErrorCondition } from '../xmpp/errors.ts';
import type { Storage } from '../xmpp/module.ts';
import { keyOf, keysUnder } from '../storage/db.ts';

/** One archived message: the other party (bare; a room's own JID for a room), when, which way, and
 *  the message as it was routed. */
export interface ArchiveEntry { with: string; at: number; dir: 'in' | 'out'; xml: string }

/** One archive's keys: `<prefix>!<archive>!<id>`; with an index prefix, also its index by the other
 *  party, `<index>!<archive>!<with>!<id>`, so that one contact's messages are read without reading
 *  everyone else's (what a client paging back through one chat asks). */
export interface ArchiveKeys {
  of(archive: string): string;
  entry(archive: string, id: string): string;
  byWith?: { of(archive: string, other: string): string; entry(archive: string, other: string, id: string): string };
}
export function archiveKeys(prefix: string, index?: string): ArchiveKeys {
  return {
    of: (archive) => keysUnder(prefix, archive), entry: (archive, id) => keyOf(prefix, archive, id),
    ...(index ? { byWith: { of: (archive: string, other: string) => keysUnder(index, archive, other), entry: (archive: string, other: string, id: string) => keyOf(index, archive, other, id) } } : {}),
  };
}

type Op = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

/** The writes that archive one entry (and index it). */
export function archiveOps(keys: ArchiveKeys, archive: string, id: string, e: ArchiveEntry): Op[] {
  const ops: Op[] = [{ type: 'put', key: keys.entry(archive, id), value: e }];
  if (keys.byWith) ops.push({ type: 'put', key: keys.byWith.entry(archive, e.with, id), value: 1 });
  return ops;
}

/** Indexes every entry of an archive kept before it had an index (once per archive; idempotent). */
export async function indexArchive(storage: Storage, keys: ArchiveKeys, archive: string): Promise<void> {
  const index = keys.byWith;
  if (!index) return;
  let gt: string | undefined;
  for (;;) {
    const chunk = await storage.range<ArchiveEntry>(keys.of(archive), { ...(gt ? { gt } : {}), limit: 1000 });
    if (chunk.length) await storage.batch(chunk.map(([key, e]) => ({ type: 'put' as const, key: index.entry(archive, e.with, idOf(key)), value: 1 })));
    if (chunk.length < 1000) return;
    gt = chunk[chunk.length - 1]![0];
  }
}

/** Archive ids are time-ordered (what LevelDB sorts) and unique per thread: an archive's actor
 *  lives on one, and a restart's clock is later. 9 base-36 digits of ms, 4 of a counter. */
let counter = 0;
export function archiveId(at: number): string {
  counter = (counter + 1) % 36 ** 4;
  return idAt(at) + counter.toString(36).padStart(4, '0');
}
/** The smallest id of time `at`. */
const idAt = (at: number): string => at.toString(36).padStart(9, '0');
const idOf = (key: string): string => key.slice(key.lastIndexOf('!') + 1);

export interface Page { entries: Array<[string, ArchiveEntry]>; complete: boolean; queryid: string | undefined }
export type QueryError = { condition: StanzaErrorCondition; text: string };

function parseTime(v: string | undefined): number | null | undefined {
  if (v === undefined || v === '') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/**
 * A query (§4) on one archive: the form's filters (with, start, end, before-id, after-id, ids) and
 * RSM paging (max, after, before, flip-page). The entries come in the order to send them; `complete`
 * when the page reached the end in its direction.
 */
export async function queryArchive(storage: Storage, keys: ArchiveKeys, archive: string, q: XmlElement, limits: { defaultPage: number; maxPage: number }): Promise<Page | QueryError> {
  const form = readForm(q);
  if (form && form.formType !== undefined && form.formType !== NS.MAM) return { condition: 'bad-request', text: `unknown FORM_TYPE ${form.formType}` };
  const withText = form ? formText(form, 'with') : undefined;
  const withJid: Jid | undefined = withText ? tryParseJid(withText) : undefined;
  if (withText && !withJid) return { condition: 'bad-request', text: `'with' is not a JID: ${withText}` };
  const start = parseTime(form ? formText(form, 'start') : undefined);
  const end = parseTime(form ? formText(form, 'end') : undefined);
  if (start === null || end === null) return { condition: 'bad-request', text: 'start and end are XEP-0082 date-times' };
  const ids = form?.values.get('ids')?.filter((v) => v !== '');
  const set = q.child('set', NS.RSM);
  const maxText = set?.getChildText('max', NS.RSM);
  const max = maxText === undefined ? limits.defaultPage : Number(maxText);
  if (!Number.isInteger(max) || max < 0) return { condition: 'bad-request', text: 'RSM max is a count' };
  const page = Math.min(max, limits.maxPage);
  const afterId = set?.getChildText('after', NS.RSM) ?? (form ? formText(form, 'after-id') : undefined);
  const beforeEl = set?.child('before', NS.RSM);
  const beforeId = beforeEl !== undefined ? beforeEl.text() : form ? formText(form, 'before-id') : undefined;
  const backwards = beforeEl !== undefined; // <before/> (empty: the last page) pages from the end
  const flip = q.child('flip-page', NS.MAM) !== undefined;

  // One contact's messages come from the index when there is one: its keys end with the same ids.
  const index = withJid && keys.byWith;
  const keyOfId = index ? (id: string) => index.entry(archive, withJid.toBareString(), id) : (id: string) => keys.entry(archive, id);
  const scanned = index ? index.of(archive, withJid.toBareString()) : keys.of(archive);
  // Bounds in key space; the other filters as entries are read, in chunks.
  const bounds: { gt?: string; gte?: string; lt?: string; lte?: string } = {};
  if (start !== undefined) bounds.gte = keyOfId(idAt(start));
  if (end !== undefined) bounds.lt = keyOfId(idAt(end + 1));
  for (const [id, dir] of [[afterId, 'gt'], [beforeId || undefined, 'lt']] as const) {
    if (id === undefined) continue;
    if (!(await storage.get(keys.entry(archive, id)))) return { condition: 'item-not-found', text: `no archived message ${id}` };
    const k = keyOfId(id);
    if (dir === 'gt') { delete bounds.gte; bounds.gt = bounds.gt && bounds.gt > k ? bounds.gt : k; } else { bounds.lt = bounds.lt && bounds.lt < k ? bounds.lt : k; }
  }
  const matches = (e: ArchiveEntry, id: string): boolean =>
    (!withJid || (withJid.isBare() ? e.with === withJid.toString() : parseElement(e.xml).attr(e.dir === 'in' ? 'from' : 'to') === withJid.toString()))
    && (!ids?.length || ids.includes(id));
  const read = async (chunk: Array<[string, unknown]>): Promise<Array<[string, ArchiveEntry | undefined]>> => {
    if (!index) return chunk as Array<[string, ArchiveEntry]>;
    return Promise.all(chunk.map(async ([k]) => { const key = keys.entry(archive, idOf(k)); return [key, await storage.get<ArchiveEntry>(key)] as [string, ArchiveEntry | undefined]; }));
  };
  const found: Array<[string, ArchiveEntry]> = [];
  let more = false;
  let cursor = { ...bounds };
  // A contact's page is read in chunks of about a page (each is a read per entry); a scan in 500s.
  const size = index ? Math.max(page + 1, 20) : 500;
  for (;;) {
    const chunk = await storage.range<unknown>(scanned, { ...cursor, reverse: backwards, limit: size });
    for (const [k, e] of await read(chunk)) {
      if (!e || !matches(e, idOf(k))) continue;
      if (found.length === page) { more = true; break; }
      found.push([k, e]);
    }
    if (more || chunk.length < size) break;
    const last = chunk[chunk.length - 1]![0];
    cursor = backwards ? { ...cursor, lt: last, lte: undefined } : { ...cursor, gt: last, gte: undefined };
  }
  if (backwards) found.reverse();
  return { entries: flip ? [...found].reverse() : found, complete: !more, queryid: q.attr('queryid') };
}

/** The newest `count` entries with a body from time `from` (ms) on, oldest first: what a room gives
 *  a joiner as history (XEP-0045 §7.2.15 from the archive). Tombstones and notices have no body. */
export async function recentMessages(storage: Storage, keys: ArchiveKeys, archive: string, count: number, from?: number): Promise<ArchiveEntry[]> {
  const found: ArchiveEntry[] = [];
  const size = Math.max(count, 20);
  let cursor: { lt?: string; gte?: string } = from !== undefined ? { gte: keys.entry(archive, idAt(from)) } : {};
  while (found.length < count) {
    const chunk = await storage.range<ArchiveEntry>(keys.of(archive), { ...cursor, reverse: true, limit: size });
    for (const [, e] of chunk) if (found.length < count && e.xml.includes('<body')) found.push(e);
    if (chunk.length < size) break;
    cursor = { ...cursor, lt: chunk[chunk.length - 1]![0] };
  }
  return found.reverse();
}

/** One result (§4.2): the archived message forwarded (XEP-0297) with when it was archived. */
export function resultMessage(to: string, from: string, queryid: string | undefined, key: string, e: ArchiveEntry): XmlElement {
  return x('message', { to, from, id: `mam-${idOf(key)}` },
    x('result', { xmlns: NS.MAM, queryid, id: idOf(key) },
      x('forwarded', { xmlns: NS.FORWARD }, x('delay', { xmlns: NS.DELAY, stamp: xmppDateTime(e.at) }), parseElement(e.xml).withAttrs({ xmlns: NS.CLIENT }))));
}

/** The IQ result's <fin/> (§4.3): complete or not, and the page's first and last ids (RSM). */
export function finElement(p: Page): XmlElement {
  const first = p.entries[0], last = p.entries[p.entries.length - 1];
  const [lo, hi] = first && last && first[0] > last[0] ? [last, first] : [first, last];
  return x('fin', { xmlns: NS.MAM, complete: p.complete ? 'true' : undefined },
    x('set', { xmlns: NS.RSM }, lo ? x('first', null, idOf(lo[0])) : null, hi ? x('last', null, idOf(hi[0])) : null));
}

/** v1.1 §5: the first and last entries. */
export async function metadataElement(storage: Storage, keys: ArchiveKeys, archive: string): Promise<XmlElement> {
  const [first] = await storage.range<ArchiveEntry>(keys.of(archive), { limit: 1 });
  const [last] = await storage.range<ArchiveEntry>(keys.of(archive), { limit: 1, reverse: true });
  const point = (name: string, e: [string, ArchiveEntry] | undefined) => (e ? x(name, { id: idOf(e[0]), timestamp: xmppDateTime(e[1].at) }) : null);
  return x('metadata', { xmlns: NS.MAM }, point('start', first), point('end', last));
}

/** Removes every entry of an archive (in batches), or those older than `before` (ms), index included. */
export async function removeArchive(storage: Storage, keys: ArchiveKeys, archive: string, before?: number): Promise<void> {
  for (;;) {
    const old = await storage.range<ArchiveEntry>(keys.of(archive), { ...(before !== undefined ? { lt: keys.entry(archive, idAt(before)) } : {}), limit: 1000 });
    if (old.length) {
      await storage.batch(old.flatMap(([key, e]) => [
        { type: 'del' as const, key },
        ...(keys.byWith ? [{ type: 'del' as const, key: keys.byWith.entry(archive, e.with, idOf(key)) }] : []),
      ]));
    }
    if (old.length < 1000) return;
  }
}

/** The query form (§6.1). */
export const queryFields = [
  { var: 'with', type: 'jid-single' }, { var: 'start', type: 'text-single' }, { var: 'end', type: 'text-single' },
  { var: 'before-id', type: 'text-single' }, { var: 'after-id', type: 'text-single' }, { var: 'ids', type: 'list-multi' },
] as const;
