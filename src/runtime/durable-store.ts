// Durable mailboxes and actor snapshots in LevelDB, written by group commit: every write asked for in
// one tick goes into one batch. A durable message is confirmed to its sender only after its batch is
// written; its removal rides in a later batch together with the receiver's new snapshot, so "handled"
// (state changed + message gone) is atomic. Only the owner thread of an address writes its keys.
import type { Level } from 'level';
import type { Address } from './address.ts';
import type { PersistedSnapshot } from './kind.ts';
import { keys, mailboxSeq, PREFIX } from '../storage/db.ts';

type Db = Level<string, string>;
type Batch = ReturnType<Db['batch']>;

export interface StoredMessage { seq: string; from?: Address; message: unknown; attempts: number }
export interface StoredSnapshot { kind: string; version: number; snapshot: PersistedSnapshot; savedAt: number }


export class DurableStore {
  /** This tick's writes, straight into a chained batch: LevelDB's array form costs 2-4× the CPU per
   *  operation (each op is cloned, validated and encoded in JS before the native call; measured with
   *  200 puts and 200 deletes of mailbox records per batch: 10.5 s vs 2.5-4.4 s for 400,000). */
  private batch: Batch | null = null;
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
    this.pending().put(keys.mbox(address, seq), JSON.stringify(rec));
    return seq;
  }

  /** Rewrites a message's record, e.g. to count a delivery attempt that crashed its receiver. */
  updateMessage(address: Address, rec: StoredMessage): void {
    this.pending().put(keys.mbox(address, rec.seq), JSON.stringify(rec));
  }

  removeMessage(address: Address, seq: string): void {
    this.pending().del(keys.mbox(address, seq));
  }

  /** Other records an actor writes as it handles a message (a module's archive entry), in this
   *  tick's batch: on disk together with the message's removal and the actor's new snapshot, so
   *  with the handling or not at all, and at no cost of its own. Values are strings (JSON). */
  alsoWrite(ops: ReadonlyArray<{ type: 'put'; key: string; value: string } | { type: 'del'; key: string }>): void {
    const b = this.pending();
    for (const op of ops) { if (op.type === 'put') b.put(op.key, op.value); else b.del(op.key); }
  }

  /** Coalesced: only the last snapshot of an address per batch is written. null deletes it. */
  saveSnapshot(address: Address, snap: StoredSnapshot | null): void {
    if (snap) this.known.add(address);
    this.snapshots.set(keys.snap(address), snap && JSON.stringify(snap));
    this.schedule();
  }

  /** Calls back once everything asked for so far is written (or the write failed). */
  whenFlushed(cb: (err?: Error) => void): void {
    if (!this.scheduled && this.batch === null && this.snapshots.size === 0) {
      if (this.writing) this.writing.then(() => cb(), cb);
      else cb();
      return;
    }
    this.waiters.push(cb);
  }

  /** Nothing asked for is unwritten. */
  get idle(): boolean { return !this.scheduled && this.batch === null && this.snapshots.size === 0 && this.writing === null; }

  flushed(): Promise<void> {
    return new Promise((resolve, reject) => this.whenFlushed((err) => (err ? reject(err) : resolve())));
  }

  /** A message that keeps crashing its receiver leaves the mailbox but is kept for an operator. */
  deadLetter(address: Address, rec: StoredMessage): void {
    this.pending().del(keys.mbox(address, rec.seq)).put(keys.dead(address, rec.seq), JSON.stringify(rec));
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

  /** The batch this tick's writes go into; the commit is scheduled with the first. */
  private pending(): Batch {
    this.schedule();
    return (this.batch ??= this.db.batch());
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.commit());
  }

  private async commit(): Promise<void> {
    if (this.writing) await this.writing; // batches are written one after another, in order
    this.scheduled = false;
    const waiters = this.waiters;
    const snapshots = this.snapshots;
    const batch = snapshots.size > 0 ? (this.batch ?? this.db.batch()) : this.batch;
    for (const [key, value] of snapshots) if (value === null) batch!.del(key); else batch!.put(key, value);
    this.batch = null;
    this.waiters = [];
    this.snapshots = new Map();
    if (batch === null) { for (const w of waiters) w(); return; }
    const n = batch.length;
    this.writing = batch.write({ sync: this.sync }).then(
      () => { this.counters.batches++; this.counters.ops += n; for (const w of waiters) w(); },
      (err: Error) => { for (const w of waiters) w(err); },
    ).finally(() => { this.writing = null; });
    await this.writing;
  }
}
