// Durable mailboxes and actor snapshots in LevelDB, written by group commit: every write asked for in
// one tick goes into one batch. A durable message is confirmed to its sender only after its batch is
// written; its removal rides in a later batch together with the receiver's new snapshot, so "handled"
// (state changed + message gone) is atomic. Only the owner thread of an address writes its keys.
import type { Level } from 'level';
import type { Address } from './address.ts';
import type { PersistedSnapshot } from './kind.ts';
import { keys, mailboxSeq, PREFIX } from '../storage/db.ts';

type Db = Level<string, string>;
type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export interface StoredMessage { seq: string; from?: Address; message: unknown; attempts: number }
export interface StoredSnapshot { kind: string; version: number; snapshot: PersistedSnapshot; savedAt: number }


export class DurableStore {
  private ops: Op[] = [];
  private snapshots = new Map<string, string | null>();
  private waiters: Array<(err?: Error) => void> = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private lastSeq = 0;
  /** Addresses of this thread that may have keys (boot scan + every write since): a brand-new actor's
   *  start skips two disk reads. Only the owner thread writes an address's keys, so this is exact
   *  enough — it may over-approximate, never miss. */
  private known = new Set<Address>();
  /** Batches and ops written, for benchmarks and `chorus status`. */
  readonly counters = { batches: 0, ops: 0 };

  constructor(private readonly db: Db, private readonly sync = false) {}

  /** Seqs are clock-based so a replacement thread (or a restarted node) keeps appending after older keys. */
  nextSeq(): string {
    this.lastSeq = Math.max(this.lastSeq + 1, Date.now() * 1000);
    return mailboxSeq(this.lastSeq);
  }

  appendMessage(address: Address, from: Address | undefined, message: unknown, seq = this.nextSeq()): string {
    this.known.add(address);
    const rec: StoredMessage = { seq, from, message, attempts: 0 };
    this.ops.push({ type: 'put', key: keys.mbox(address, seq), value: JSON.stringify(rec) });
    this.schedule();
    return seq;
  }

  /** Rewrites a message's record, e.g. to count a delivery attempt that crashed its receiver. */
  updateMessage(address: Address, rec: StoredMessage): void {
    this.ops.push({ type: 'put', key: keys.mbox(address, rec.seq), value: JSON.stringify(rec) });
    this.schedule();
  }

  removeMessage(address: Address, seq: string): void {
    this.ops.push({ type: 'del', key: keys.mbox(address, seq) });
    this.schedule();
  }

  /** Coalesced: only the last snapshot of an address per batch is written. null deletes it. */
  saveSnapshot(address: Address, snap: StoredSnapshot | null): void {
    if (snap) this.known.add(address);
    this.snapshots.set(keys.snap(address), snap && JSON.stringify(snap));
    this.schedule();
  }

  /** Calls back once everything asked for so far is written (or the write failed). */
  whenFlushed(cb: (err?: Error) => void): void {
    if (!this.scheduled && this.ops.length === 0 && this.snapshots.size === 0) {
      if (this.writing) this.writing.then(() => cb(), cb);
      else cb();
      return;
    }
    this.waiters.push(cb);
  }

  flushed(): Promise<void> {
    return new Promise((resolve, reject) => this.whenFlushed((err) => (err ? reject(err) : resolve())));
  }

  /** A message that keeps crashing its receiver leaves the mailbox but is kept for an operator. */
  deadLetter(address: Address, rec: StoredMessage): void {
    this.ops.push({ type: 'del', key: keys.mbox(address, rec.seq) });
    this.ops.push({ type: 'put', key: keys.dead(address, rec.seq), value: JSON.stringify(rec) });
    this.schedule();
  }

  /** Reads see every write asked for before them: a restart right after a crash or a kill must not
   *  read the snapshot (or the mailbox) from before a batch still being committed. */
  async loadMailbox(address: Address): Promise<StoredMessage[]> {
    if (!this.known.has(address)) return [];
    await this.flushed();
    const prefix = keys.mboxOf(address);
    const out: StoredMessage[] = [];
    for await (const value of this.db.values({ gte: prefix, lt: prefix + '\xff' })) out.push(JSON.parse(value));
    for (const m of out) this.lastSeq = Math.max(this.lastSeq, Number(m.seq));
    return out;
  }

  async loadSnapshot(address: Address): Promise<StoredSnapshot | undefined> {
    if (!this.known.has(address)) return undefined;
    await this.flushed();
    const v = await this.db.get(keys.snap(address));
    return v === undefined ? undefined : JSON.parse(v);
  }

  /** Addresses with a snapshot or durable mail, among those `mine` accepts: what a thread restores at
   *  boot. Must run once before the thread starts actors (it fills the known-address set). */
  async scanOwned(mine: (address: Address) => boolean): Promise<Set<Address>> {
    const found = this.known;
    for await (const key of this.db.keys({ gte: PREFIX.mbox, lt: `${PREFIX.mbox}\xff` })) {
      const a = keys.addressOf(key);
      if (mine(a)) found.add(a);
    }
    for await (const key of this.db.keys({ gte: PREFIX.snap, lt: `${PREFIX.snap}\xff` })) {
      const a = keys.addressOf(key);
      if (mine(a)) found.add(a);
    }
    return found;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.commit());
  }

  private async commit(): Promise<void> {
    if (this.writing) await this.writing; // batches are written one after another, in order
    this.scheduled = false;
    const ops = this.ops;
    const waiters = this.waiters;
    for (const [key, value] of this.snapshots) ops.push(value === null ? { type: 'del', key } : { type: 'put', key, value });
    this.ops = [];
    this.waiters = [];
    this.snapshots = new Map();
    if (ops.length === 0) { for (const w of waiters) w(); return; }
    this.writing = this.db.batch(ops, { sync: this.sync }).then(
      () => { this.counters.batches++; this.counters.ops += ops.length; for (const w of waiters) w(); },
      (err: Error) => { for (const w of waiters) w(err); },
    ).finally(() => { this.writing = null; });
    await this.writing;
  }
}
