// The actor host of one scheduler thread: mailboxes, the run loop, durable delivery, exits, monitors,
// links, timers and hot reload. Each actor handles one message at a time, in order; the run loop gives
// every ready actor at most BUDGET messages per turn and yields to I/O after SLICE_MS, so one busy
// actor cannot starve the others on its thread.
//
// A handler may suspend its actor on a promise (the runtime API's suspend()): until it settles the
// actor takes no other message, the durable message being handled stays in LevelDB, and no snapshot
// is written; then the machine gets `runtime.resumed` with the value, as part of the same message. A
// rejection (or EFFECT_TIMEOUT_MS without settling) crashes the actor and the message is redelivered
// to its restart. The runtime API works across the handler's awaits: each message is a Frame, found
// through AsyncLocalStorage (Prosody's util.async runner and OTP's process dictionary, in one).
import { AsyncLocalStorage } from 'node:async_hooks';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createActor, type AnyActor } from 'xstate';
import { MAIN_THREAD, kindOf, type Address, type ThreadId } from './address.ts';
import { setThreadApi, type ActorContextApi, type Receipt } from './api.ts';
import { Deque } from './deque.ts';
import type { DurableStore, StoredMessage } from './durable-store.ts';
import type { KindDefinition } from './kind.ts';
import type { KindLoader } from './loader.ts';
import type { ActorInfo, Control, Envelope, ExitReason, ReloadResult, SchedulerStats } from './protocol.ts';
import type { Router, RouterSink } from './router.ts';
import { DurableSender } from './durable-sender.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A full collection before measuring heap per actor (benchmarks), without --expose-gc on the node. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const BUDGET = 64;
const SLICE_MS = 4;
/** A durable message that crashed its receiver this many times is set aside as a dead letter. */
const MAX_ATTEMPTS = 3;

interface Item {
  from?: Address; msg: unknown; seq?: string; rec?: StoredMessage;
  /** A `runtime.resumed` item: the message it continues (what a crash redelivers) and whether the
   *  handler retained it before suspending. */
  origin?: Item; retained?: boolean;
  /** An invoked child's report (xstate's done/error events): dropped if the child is gone by then. */
  child?: AnyActor;
}

/** One message being handled, from its handler's first line to its last await. */
interface Frame {
  rec: ActorRecord;
  item: Item;
  /** The handler called retain(): the durable message outlives the handler. */
  retained: boolean;
  /** False once the message is done: a late callback of the handler may not act for the actor. */
  open: boolean;
  suspended: Promise<unknown> | null;
}

const frames = new AsyncLocalStorage<Frame>();
type Relay = (source: AnyActor | undefined, target: AnyActor, event: unknown) => void;

/** An effect that has not settled after this long crashes its actor (OTP's call timeout, generously). */
export const EFFECT_TIMEOUT_MS = 30_000;

type Status = 'starting' | 'running' | 'crashed' | 'stopped' | 'moved';

/** How long a moved actor's old address keeps forwarding (its correspondents switch within ms). */
const MOVED_ALIAS_MS = 5_000;

interface ActorRecord {
  address: Address;
  kind: string;
  def: KindDefinition | null;
  actor: AnyActor | null;
  status: Status;
  queue: Deque<Item>;
  inRun: boolean;
  handled: number;
  lastSaved: unknown;
  lastActive: number;
  // Created on first use: most actors never monitor, link or set a timer (bytes per idle actor).
  monitors: Map<number, Address> | null;
  links: Set<Address> | null;
  trap: boolean;
  timers: Map<string, NodeJS.Timeout> | null;
  exitRequested: ExitReason | null;
  spawnInput: unknown;
  /** Durable messages loaded from disk at (re)start: later arrivals with these seqs are duplicates. */
  seen: Set<string> | null;
  /** Whether this record's durable mail has been read from disk (once per thread life). */
  mailboxLoaded: boolean;
  starting: Promise<void> | null;
  persistRequested: boolean;
  moveTo: Address | null;
  /** A snapshot to start from instead of storage (an actor moved here from another address). */
  handoff: Record<string, unknown> | null;
  watching: Map<number, { target: Address; tag?: unknown }> | null;
  /** The message whose handler is suspended on a promise; the mailbox waits meanwhile. */
  waiting: Frame | null;
}

export interface HostOptions {
  thread: ThreadId;
  store: DurableStore;
  loader: KindLoader;
  services: Map<string, unknown>;
  log: (level: 'debug' | 'info' | 'warn' | 'error', text: string) => void;
}

export class ActorHost implements RouterSink {
  private records = new Map<Address, ActorRecord>();
  /** Messages that hand on a retained durable message (sendRetained), by receipt, until released:
   *  sent again if their receiver's thread dies. */
  private forwards = new Map<string, Envelope>();
  /** Plain mail for actors this thread has not started yet while it restores its own (a replacement
   *  thread gets mail at once): kept until it knows which addresses it restores, so those get it. */
  private bootMail: Envelope[] | null = null;
  /** While restoring: releases of messages not loaded yet (see released()). */
  private releasedEarly: Set<string> | null = null;
  private kinds = new Map<string, { def: KindDefinition; loads: number }>();
  private kindLoading = new Map<string, Promise<KindDefinition>>();
  private runQueue = new Deque<ActorRecord>();
  private drainScheduled = false;
  private refCounter = 0;
  private replyCounter = 0;
  private replies = new Map<number, (c: Control) => void>();
  private handledTotal = 0;
  private crashes = 0;
  readonly durable: DurableSender;
  router!: Router;

  /** The thread's event-loop delay, sampled by Node (its timer does not keep the thread alive). */
  private readonly lag = (() => { const h = monitorEventLoopDelay({ resolution: 20 }); h.enable(); return h; })();

  constructor(private readonly o: HostOptions) {
    this.durable = new DurableSender(o.thread, (env) => this.router.send(env));
  }

  attach(router: Router): void { this.router = router; setThreadApi(this.api); }

  // ---- RouterSink -----------------------------------------------------------------------------

  deliver(env: Envelope): void {
    const moved = this.records.get(env.t);
    if (moved?.status === 'moved') { this.router.send({ ...env, t: moved.moveTo! }); return; }
    if (env.d !== undefined) { this.acceptDurable(env); return; }
    const rec = moved ?? this.activateOnDemand(env.t);
    if (!rec && this.bootMail) { this.bootMail.push(env); return; }
    if (!rec) return; // Erlang semantics: mail to a process that is not there is dropped
    this.enqueue(rec, { from: env.f, msg: env.m });
  }

  control(c: Control, fromThread: ThreadId): void {
    switch (c.c) {
      case 'confirm': this.durable.confirmed(c.token, c.error); break;
      case 'release': this.released(c.address, c.seq); break;
      case 'monitor': {
        // One that crashed and waits for its supervisor's restart is watched on: the watcher hears of
        // its next end, or of noproc if it is not restarted (forget). A user actor restarting just
        // then would otherwise take a session that is coming back for one that is gone.
        const rec = this.live(c.target) ?? (this.records.get(c.target)?.status === 'crashed' ? this.records.get(c.target) : undefined);
        if (rec) (rec.monitors ??= new Map()).set(c.ref, c.watcher);
        else this.router.controlFor(c.watcher, { c: 'down', to: c.watcher, target: c.target, ref: c.ref, reason: 'noproc' });
        break;
      }
      case 'demonitor': this.records.get(c.target)?.monitors?.delete(c.ref); break;
      case 'link': {
        const rec = this.live(c.target);
        if (rec) (rec.links ??= new Set()).add(c.other);
        else this.router.controlFor(c.other, { c: 'exit-signal', to: c.other, from: c.target, reason: 'noproc' });
        break;
      }
      case 'unlink': this.records.get(c.target)?.links?.delete(c.other); break;
      case 'down': {
        const rec = this.live(c.to);
        const w = rec?.watching?.get(c.ref);
        if (!rec || !w) break; // gone, or demonitored meanwhile
        rec.watching!.delete(c.ref);
        this.enqueue(rec, { msg: { type: 'runtime.down', address: c.target, ref: c.ref, reason: c.reason, ...(w.tag === undefined ? {} : { tag: w.tag }) } });
        break;
      }
      case 'moved': {
        // Demonitoring goes to where the actor is now; the machine is not told (its 'down' names it).
        const w = this.live(c.to)?.watching?.get(c.ref);
        if (w) w.target = c.address;
        break;
      }
      case 'exit-signal': this.exitSignal(c.to, c.from, c.reason); break;
      case 'spawn':
        if (c.snapshot) {
          const rec = this.records.get(c.address) ?? this.newRecord(c.address, c.input);
          rec.handoff = c.snapshot;
          if (c.monitors?.length) { rec.monitors ??= new Map(); for (const [ref, watcher] of c.monitors) rec.monitors.set(ref, watcher); }
          this.records.set(c.address, rec);
        }
        this.start(c.address, c.restore, c.input, c.restore ? 'restart' : 'spawn').then(
          () => {
            // The watchers of a moved actor learn its new address once it runs there.
            for (const [ref, watcher] of c.monitors ?? []) this.router.controlFor(watcher, { c: 'moved', to: watcher, target: c.from!, ref, address: c.address });
            if (c.adopt) this.router.sendControl(MAIN_THREAD, { c: 'activated', address: c.address, kind: kindOf(c.address) });
            if (c.reply !== undefined) this.router.sendControl(fromThread, { c: 'spawned', reply: c.reply });
          },
          (err: Error) => c.reply !== undefined && this.router.sendControl(fromThread, { c: 'spawned', reply: c.reply, error: err.message }),
        );
        break;
      case 'call':
        this.callLocal(c.service, c.method, c.args).then(
          (value) => this.router.sendControl(fromThread, { c: 'call-reply', reply: c.reply, value }),
          (err: Error) => this.router.sendControl(fromThread, { c: 'call-reply', reply: c.reply, error: err?.message ?? String(err) }),
        );
        break;
      case 'spawned': case 'reloaded': case 'stats-reply': case 'shutdown-done': case 'call-reply':
        this.replies.get(c.reply)?.(c);
        this.replies.delete(c.reply);
        break;
      case 'kill': {
        // A record that waits for its restore (mail kept for it) has no actor to kill yet.
        const live = this.live(c.address);
        const rec = live && (live.status === 'running' || live.starting !== null) ? live : undefined;
        if (rec) this.terminate(rec, c.reason);
        if (c.reply !== undefined) this.router.sendControl(fromThread, { c: 'spawned', reply: c.reply, error: rec ? undefined : 'noproc' });
        break;
      }
      case 'forget': this.forget(c.address); break;
      case 'reload':
        this.reload(c.kind).then(
          (result) => this.router.sendControl(fromThread, { c: 'reloaded', reply: c.reply, result }),
          (err: Error) => this.router.sendControl(fromThread, { c: 'reloaded', reply: c.reply, error: err.message }),
        );
        break;
      case 'stats':
        if (c.gc) fullGc();
        this.router.sendControl(fromThread, { c: 'stats-reply', reply: c.reply, stats: this.stats(c.withActors, c.kind) });
        break;
      case 'thread-down':
        this.router.markDown(c.thread);
        this.durable.resendTo(c.thread, (a) => this.router.place(a));
        for (const env of this.forwards.values()) if (this.router.place(env.t) === c.thread) this.durable.plain(env);
        break;
      default: this.o.log('warn', `scheduler ${this.o.thread}: unexpected control ${c.c}`);
    }
  }

  /**
   * A retained durable message is done with. On a replacement thread its holder's release may come
   * after the message was loaded from disk again (or before, while the thread restores): it is taken
   * out of the queue, or kept from loading, so it is not handed out twice.
   */
  private released(address: Address, seq: string): void {
    const key = `${address}\0${seq}`;
    this.o.store.removeMessage(address, seq);
    this.forwards.delete(key);
    const rec = this.records.get(address);
    if (rec?.mailboxLoaded) {
      if (!rec.seen?.has(seq)) return;
      const kept = [...rec.queue].filter((it) => it.seq !== seq);
      rec.queue.clear();
      for (const it of kept) rec.queue.push(it);
    } else if (this.releasedEarly) this.releasedEarly.add(key);
  }

  // ---- starting actors ------------------------------------------------------------------------

  /** Starts (or restarts from its snapshot) the actor at `address` on this thread. Concurrent asks
   *  (a supervisor's restart racing an activation or a boot restore) share one start. */
  start(address: Address, restore: boolean, input: unknown, reason: string): Promise<void> {
    let rec = this.records.get(address);
    if (rec?.starting) return rec.starting;
    if (rec?.status === 'running') return restore ? Promise.resolve() : Promise.reject(new Error(`already running: ${address}`));
    if (!rec) { rec = this.newRecord(address, input); this.records.set(address, rec); }
    const r = rec;
    r.starting = this.doStart(r, restore, reason).finally(() => { r.starting = null; });
    return r.starting;
  }

  private async doStart(rec: ActorRecord, restore: boolean, reason: string): Promise<void> {
    const address = rec.address;
    rec.status = 'starting';
    try {
      const def = await this.kind(rec.kind);
      const handoff = rec.handoff;
      rec.handoff = null;
      const saved = handoff ? { version: def.version, snapshot: handoff }
        : restore || def.activation === 'on-demand' ? await this.o.store.loadSnapshot(address) : undefined;
      if (!rec.mailboxLoaded) { await this.loadDurable(rec); rec.mailboxLoaded = true; }
      if (rec.status !== 'starting') return; // killed while loading
      rec.def = def;
      let snapshot = saved?.snapshot;
      if (saved && saved.version !== def.version) {
        if (!def.migrate) throw new Error(`${address}: snapshot v${saved.version} needs migrate() to v${def.version}`);
        snapshot = def.migrate(saved.snapshot, saved.version);
      }
      rec.actor = this.createMachineActor(rec, def, snapshot);
      rec.status = 'running';
      if (handoff) {
        if (persists(def, rec.actor.getSnapshot())) this.saveSnapshot(rec, rec.actor.getSnapshot());
        this.enqueueFront(rec, { msg: { type: 'runtime.moved' } });
      }
      else if (snapshot) this.enqueueFront(rec, { msg: { type: 'runtime.restored', reason } });
      const killed = rec.exitRequested;
      rec.exitRequested = null;
      if (killed) this.terminate(rec, killed);
      else this.schedule(rec);
    } catch (err) {
      if (this.records.get(address) === rec) this.records.delete(address);
      throw err;
    }
  }

  private newRecord(address: Address, spawnInput: unknown): ActorRecord {
    return {
      address, kind: kindOf(address), def: null, actor: null, status: 'starting', queue: new Deque(), inRun: false,
      handled: 0, lastSaved: undefined, lastActive: Date.now(), monitors: null, links: null, trap: false,
      timers: null, exitRequested: null, spawnInput, seen: null, mailboxLoaded: false, starting: null, persistRequested: false, moveTo: null, handoff: null, watching: null,
      waiting: null,
    };
  }

  private createMachineActor(rec: ActorRecord, def: KindDefinition, snapshot: unknown): AnyActor {
    const opts = snapshot
      ? { snapshot: snapshot as never }
      : { input: def.input ? def.input(rec.address, rec.spawnInput) : rec.spawnInput };
    const actor = createActor(def.machine, opts as never);
    // Without an error listener xstate rethrows on a timer, which would take the whole thread down.
    actor.subscribe({ error: () => undefined });
    // What an invoked child (a fromPromise step) reports to the machine goes through the mailbox like
    // any other message: handled in turn, in a frame (the runtime API works in its actions), persisted.
    // Only for machines that name actors in setup({ actors }): every other one keeps xstate's own
    // relay, on the path of every message.
    if (Object.keys((def.machine as { implementations?: { actors?: object } }).implementations?.actors ?? {}).length > 0) {
      const system = (actor as unknown as { system: { _relay: Relay } }).system;
      const relay = system._relay;
      system._relay = (source, target, event) => {
        if (target === actor && source !== undefined && source !== actor) this.enqueue(rec, { from: rec.address, msg: event, child: source });
        else relay(source, target, event);
      };
    }
    this.inFrame(rec, { msg: null }, () => actor.start());
    rec.lastSaved = snapshot ? actor.getSnapshot() : undefined;
    return actor;
  }

  /** Durable mail from disk goes first, in seq order; anything already queued in memory follows. */
  private async loadDurable(rec: ActorRecord): Promise<void> {
    const early = this.releasedEarly;
    const stored = (await this.o.store.loadMailbox(rec.address)).filter((m) => !early?.has(`${rec.address}\0${m.seq}`));
    if (stored.length === 0) return;
    const queued = [...rec.queue];
    rec.queue.clear();
    rec.seen = new Set(stored.map((m) => m.seq));
    for (const m of stored) rec.queue.push({ from: m.from, msg: m.message, seq: m.seq, rec: m });
    for (const it of queued) if (!it.seq || !rec.seen.has(it.seq)) rec.queue.push(it);
  }

  private activateOnDemand(address: Address): ActorRecord | undefined {
    const def = this.kinds.get(kindOf(address))?.def;
    // A kind not yet loaded here might be on-demand: load it, then decide (mail waits in the record).
    if (def && def.activation !== 'on-demand') return undefined;
    const rec = this.newRecord(address, undefined);
    this.records.set(address, rec);
    void this.kind(rec.kind).then((d) => {
      if (d.activation !== 'on-demand') {
        if (this.records.get(address) === rec && rec.status === 'starting' && !rec.actor) this.records.delete(address);
        return;
      }
      return this.start(address, true, undefined, 'activated').then(() => {
        this.router.sendControl(MAIN_THREAD, { c: 'activated', address, kind: rec.kind });
      });
    }).catch((err: Error) => this.o.log('error', `activation of ${address} failed: ${err.message}`));
    return rec;
  }

  private kind(kind: string): Promise<KindDefinition> {
    const k = this.kinds.get(kind);
    if (k) return Promise.resolve(k.def);
    let p = this.kindLoading.get(kind);
    if (!p) {
      p = this.o.loader.load(kind).then((l) => { this.kinds.set(kind, { def: l.def, loads: l.loads }); return l.def; });
      p.finally(() => this.kindLoading.delete(kind)).catch(() => undefined);
      this.kindLoading.set(kind, p);
    }
    return p;
  }

  // ---- durable delivery -----------------------------------------------------------------------

  private acceptDurable(env: Envelope): void {
    const seq = this.o.store.appendMessage(env.t, env.f, env.m);
    this.o.store.whenFlushed((err) => {
      // Queued before it is confirmed: what its sender sends next to this address comes after it.
      if (!err) this.accepted(env, seq);
      if (env.s !== undefined) this.router.sendControl(env.s, { c: 'confirm', token: env.d!, error: err?.message });
    });
  }

  private accepted(env: Envelope, seq: string): void {
    const item: Item = { from: env.f, msg: env.m, seq, rec: { seq, from: env.f, message: env.m, attempts: 0 } };
    const rec = this.records.get(env.t);
    if (rec) { if (!rec.seen?.has(seq)) this.enqueue(rec, item); return; }
    // Not running: on-demand kinds start (and read this message from disk); explicit kinds keep it
    // in LevelDB until they are spawned.
    this.activateOnDemand(env.t);
  }

  // ---- the run loop -------------------------------------------------------------------------------

  private enqueue(rec: ActorRecord, item: Item): void {
    rec.queue.push(item);
    if (rec.status === 'running') this.schedule(rec);
  }

  private enqueueFront(rec: ActorRecord, item: Item): void { rec.queue.unshift(item); }

  private schedule(rec: ActorRecord): void {
    if (rec.inRun || rec.waiting || rec.queue.length === 0) return;
    rec.inRun = true;
    this.runQueue.push(rec);
    if (!this.drainScheduled) { this.drainScheduled = true; setImmediate(this.drain); }
  }

  private drain = (): void => {
    this.drainScheduled = false;
    const deadline = performance.now() + SLICE_MS;
    let rec: ActorRecord | undefined;
    while ((rec = this.runQueue.shift())) {
      rec.inRun = false;
      for (let n = 0; n < BUDGET && rec.status === 'running' && !rec.waiting && rec.queue.length > 0; n++) this.handle(rec, rec.queue.shift()!);
      if (rec.status === 'running') this.schedule(rec);
      if (performance.now() > deadline) break;
    }
    if (this.runQueue.length > 0 && !this.drainScheduled) { this.drainScheduled = true; setImmediate(this.drain); }
  };

  private handle(rec: ActorRecord, item: Item): void {
    const actor = rec.actor!;
    // A child stopped since it reported (its state was left): its report is stale.
    if (item.child && actor.getSnapshot().children[item.child.id] !== item.child) return;
    let error: unknown;
    let frame: Frame;
    try {
      frame = this.inFrame(rec, item, () => actor.send(item.msg as never));
    } catch (err) {
      error = err;
      frame = (err as { frame?: Frame }).frame!;
    }
    const snap = actor.getSnapshot();
    if (error === undefined && snap.status === 'error') error = snap.error;
    if (error !== undefined) { frame.open = false; this.crash(rec, reasonOf(error), item, error); return; }
    if (frame.suspended) { this.suspend(rec, frame); return; }
    frame.open = false;
    rec.handled++;
    this.handledTotal++;
    rec.lastActive = Date.now();
    if (item.seq && !frame.retained) this.o.store.removeMessage(rec.address, item.seq);
    if ((rec.persistRequested || (changedSince(snap, rec.lastSaved) && persists(rec.def!, snap))) && snap.status === 'active') this.saveSnapshot(rec, snap);
    rec.persistRequested = false;
    if (snap.status === 'done') { this.stop(rec, 'normal'); return; }
    if (rec.moveTo) { this.move(rec); return; }
    if (rec.exitRequested) this.exitRequested(rec);
  }

  /** Runs f as the actor handling item; the frame comes back (attached to an error f throws). */
  private inFrame(rec: ActorRecord, item: Item, f: () => void): Frame {
    const frame: Frame = { rec, item, retained: item.retained ?? false, open: true, suspended: null };
    try {
      frames.run(frame, f);
    } catch (err) {
      throw Object.assign(err instanceof Error ? err : new Error(String(err)), { frame });
    }
    return frame;
  }

  /** The handler suspended: nothing more of this actor runs until its promise settles. */
  private suspend(rec: ActorRecord, frame: Frame): void {
    rec.waiting = frame;
    const promise = frame.suspended!;
    frame.suspended = null;
    const settle = (error: unknown, value?: unknown) => {
      clearTimeout(timer);
      if (rec.waiting !== frame) return; // the actor ended meanwhile (killed, shut down)
      rec.waiting = null;
      frame.open = false;
      const origin = frame.item.origin ?? frame.item;
      if (error !== undefined) { this.crash(rec, reasonOf(error), origin, error); return; }
      this.enqueueFront(rec, { from: origin.from, msg: { type: 'runtime.resumed', value }, seq: origin.seq, rec: origin.rec, origin, retained: frame.retained });
      this.schedule(rec);
    };
    const timer = setTimeout(() => settle(new Error(`effect did not settle within ${EFFECT_TIMEOUT_MS} ms`)), EFFECT_TIMEOUT_MS);
    promise.then((v) => settle(undefined, v), (e: unknown) => settle(e ?? new Error('effect rejected')));
  }

  private saveSnapshot(rec: ActorRecord, snap: unknown): void {
    rec.lastSaved = snap;
    this.o.store.saveSnapshot(rec.address, {
      kind: rec.kind, version: rec.def!.version, snapshot: rec.actor!.getPersistedSnapshot() as Record<string, unknown>, savedAt: Date.now(),
    });
  }

  /** The actor goes on at rec.moveTo with its snapshot; this address forwards for MOVED_ALIAS_MS. The
   *  spawn and the forwarded mail travel the same port, so the new record exists before its mail. */
  private move(rec: ActorRecord): void {
    const to = rec.moveTo!;
    const snapshot = rec.actor!.getPersistedSnapshot() as Record<string, unknown>;
    const monitors = rec.monitors ? [...rec.monitors] : undefined;
    rec.monitors = null;
    this.router.controlFor(to, { c: 'spawn', address: to, restore: false, snapshot, adopt: true, from: rec.address, monitors });
    rec.actor!.stop();
    rec.actor = null;
    rec.status = 'moved';
    for (const item of rec.queue) this.router.send({ t: to, f: item.from, m: item.msg });
    rec.queue.clear();
    if (rec.timers) for (const t of rec.timers.values()) clearTimeout(t);
    rec.timers = null;
    this.o.store.saveSnapshot(rec.address, null);
    // The old name ends with reason 'moved' (normal to supervisors and links); its monitors went
    // along and their watchers hear of the new address once the actor runs there.
    this.notifyExit(rec, 'moved');
    setTimeout(() => { if (this.records.get(rec.address) === rec) this.records.delete(rec.address); }, MOVED_ALIAS_MS).unref();
  }

  // ---- exits --------------------------------------------------------------------------------

  private exitRequested(rec: ActorRecord): void {
    const reason = rec.exitRequested!;
    rec.exitRequested = null;
    if (reason === 'normal' || reason === 'shutdown') this.stop(rec, reason);
    else this.crash(rec, reason);
  }

  /** An orderly end: the snapshot goes (the actor finished), durable mail not yet handled stays. */
  private stop(rec: ActorRecord, reason: ExitReason): void {
    this.halt(rec, 'stopped');
    if (reason === 'normal') this.o.store.saveSnapshot(rec.address, null);
    this.records.delete(rec.address);
    this.notifyExit(rec, reason);
    // Mail that came while it ended starts an on-demand actor again, as it would have a moment later:
    // durable mail from the store, the rest carried over (never dropped for arriving as it ended).
    if (rec.queue.length > 0 && rec.def?.activation === 'on-demand') {
      const next = this.newRecord(rec.address, undefined);
      for (const item of rec.queue) if (!item.seq) next.queue.push(item);
      this.records.set(rec.address, next);
      void this.start(rec.address, true, undefined, 'pending-mail').catch((e: Error) => this.o.log('error', e.message));
    }
  }

  /** An abnormal end. The record (and its queue) stays until the supervisor restarts or forgets it. */
  private crash(rec: ActorRecord, reason: ExitReason, crashed?: Item, error?: unknown): void {
    this.crashes++;
    const item = crashed?.origin ?? crashed;
    this.halt(rec, 'crashed', item);
    if (item?.seq && item.rec) {
      item.rec.attempts++;
      if (item.rec.attempts >= MAX_ATTEMPTS) {
        this.o.log('error', `${rec.address}: durable message ${item.seq} crashed it ${item.rec.attempts} times; moved to dead letters`);
        this.o.store.deadLetter(rec.address, item.rec);
      } else {
        this.o.store.updateMessage(rec.address, item.rec);
        rec.queue.unshift(item);
      }
    }
    const where = error instanceof Error && error.stack ? `\n${this.o.loader.mapStack(error.stack).split('\n').slice(1, 4).join('\n')}` : '';
    this.o.log('error', `actor ${rec.address} crashed: ${reason}${where}`);
    this.notifyExit(rec, reason);
  }

  /** Ends the machine. A durable message suspended in its handler (and not the one that crashed it)
   *  goes back to the head of the queue, for the restart. */
  private halt(rec: ActorRecord, status: Status, crashed?: Item): void {
    const w = rec.waiting;
    if (w) {
      rec.waiting = null;
      w.open = false;
      const origin = w.item.origin ?? w.item;
      if (origin !== crashed && origin.seq) rec.queue.unshift(origin);
    }
    rec.status = status;
    if (rec.timers) for (const t of rec.timers.values()) clearTimeout(t);
    rec.timers = null;
    rec.actor?.stop();
    rec.actor = null;
  }

  /** Like Erlang's exit(Pid, Reason) from outside: between two of the target's messages. */
  private terminate(rec: ActorRecord, reason: ExitReason): void {
    if (frames.getStore()?.rec === rec && !rec.waiting) { rec.exitRequested = reason; return; }
    // Killed while it starts: once started, as a crash, so the mail that waits in its record (a
    // replacement thread's, say) stays for the restart.
    if (rec.status === 'starting') { rec.exitRequested = reason; return; }
    if (reason === 'normal' || reason === 'shutdown') this.stop(rec, reason);
    else this.crash(rec, reason);
  }

  private notifyExit(rec: ActorRecord, reason: ExitReason): void {
    if (rec.monitors) for (const [ref, watcher] of rec.monitors) this.router.controlFor(watcher, { c: 'down', to: watcher, target: rec.address, ref, reason });
    rec.monitors = null;
    if (rec.links) for (const other of rec.links) this.router.controlFor(other, { c: 'exit-signal', to: other, from: rec.address, reason });
    rec.links = null;
    this.router.sendControl(MAIN_THREAD, { c: 'exited', address: rec.address, reason, kind: rec.kind });
  }

  private exitSignal(to: Address, from: Address, reason: ExitReason): void {
    const rec = this.live(to);
    if (!rec) return;
    rec.links?.delete(from);
    if (rec.trap) this.enqueue(rec, { msg: { type: 'runtime.exit', from, reason } });
    else if (reason !== 'normal' && reason !== 'moved') this.terminate(rec, reason);
  }

  private forget(address: Address): void {
    const rec = this.records.get(address);
    if (!rec || rec.status !== 'crashed') return;
    this.records.delete(address);
    if (rec.monitors) for (const [ref, watcher] of rec.monitors) this.router.controlFor(watcher, { c: 'down', to: watcher, target: address, ref, reason: 'noproc' });
  }

  private live(address: Address): ActorRecord | undefined {
    const rec = this.records.get(address);
    return rec && (rec.status === 'running' || rec.status === 'starting') ? rec : undefined;
  }

  // ---- hot reload ---------------------------------------------------------------------------

  /** Loads the kind's new code and moves every live actor of it over, each between two of its messages. */
  async reload(kind: string): Promise<ReloadResult> {
    const t0 = performance.now();
    const loaded = await this.o.loader.load(kind);
    const old = this.kinds.get(kind)?.def;
    this.kinds.set(kind, { def: loaded.def, loads: loaded.loads });
    let moved = 0;
    const batch: ActorRecord[] = [];
    for (const rec of this.records.values()) if (rec.kind === kind && rec.status === 'running') batch.push(rec);
    for (let i = 0; i < batch.length; i++) {
      const rec = batch[i]!;
      if (rec.status === 'running' && rec.def !== loaded.def) { this.migrate(rec, loaded.def); moved++; }
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r)); // let other mail through meanwhile
    }
    if (old && old.version !== loaded.def.version) this.o.log('info', `kind ${kind}: v${old.version} -> v${loaded.def.version}`);
    return { kind, version: loaded.def.version, actors: moved, ms: Math.round(performance.now() - t0) };
  }

  private migrate(rec: ActorRecord, def: KindDefinition): void {
    const from = rec.def!;
    let snapshot = rec.actor!.getPersistedSnapshot() as Record<string, unknown>;
    if (from.version !== def.version) {
      if (!def.migrate) throw new Error(`kind ${def.kind} v${def.version} has no migrate() from v${from.version}`);
      snapshot = def.migrate(snapshot, from.version);
    }
    rec.actor!.stop();
    rec.def = def;
    rec.actor = this.createMachineActor(rec, def, snapshot);
    if (persists(def, rec.actor.getSnapshot())) this.saveSnapshot(rec, rec.actor.getSnapshot());
  }

  // ---- observability ------------------------------------------------------------------------

  /** No message is queued, being handled or suspended, no actor is starting and nothing sent durably
   *  or stored is unconfirmed: what was set in motion has finished (timers aside). */
  idle(): boolean {
    if (this.runQueue.length > 0 || this.drainScheduled || this.kindLoading.size > 0 || this.durable.inFlight > 0 || !this.o.store.idle) return false;
    for (const rec of this.records.values()) if (rec.status === 'starting' || rec.waiting || (rec.status === 'running' && rec.queue.length > 0)) return false;
    return true;
  }

  stats(withActors = false, kind?: string): SchedulerStats {
    const byKind: Record<string, number> = {};
    let depth = 0, durableQueued = 0;
    let max: SchedulerStats['maxMailbox'] = null;
    const list: ActorInfo[] = [];
    let actors = 0;
    for (const rec of this.records.values()) {
      if (rec.status === 'moved') continue; // a forwarding name, not an actor
      actors++;
      byKind[rec.kind] = (byKind[rec.kind] ?? 0) + 1;
      depth += rec.queue.length;
      let durable = 0;
      for (const i of rec.queue) if (i.seq) durable++;
      durableQueued += durable;
      if (!max || rec.queue.length > max.depth) max = { address: rec.address, depth: rec.queue.length };
      if (withActors && (!kind || rec.kind === kind)) {
        list.push({ address: rec.address, kind: rec.kind, queue: rec.queue.length, durable, handled: rec.handled, status: rec.status });
      }
    }
    const kinds: SchedulerStats['kinds'] = {};
    for (const [k, v] of this.kinds) kinds[k] = { version: v.def.version, loads: v.loads };
    return {
      thread: this.o.thread, actors, byKind, mailboxDepth: depth, durableQueued, maxMailbox: max,
      handled: this.handledTotal, crashes: this.crashes, heapUsed: process.memoryUsage().heapUsed, kinds,
      durableWrites: { ...this.o.store.counters },
      eventLoopLagMs: this.lagSinceAsked(),
      list: withActors ? list : undefined,
    };
  }

  private lagSinceAsked(): { p99: number; max: number } {
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const r = { p99: ms(this.lag.percentile(99)), max: ms(this.lag.max) };
    this.lag.reset();
    return r;
  }

  /** Starts, at boot or on a replacement thread, every owned actor that has a snapshot or durable mail. */
  async restoreOwned(start = true): Promise<number> {
    this.bootMail = [];
    this.releasedEarly = new Set();
    const owned = start ? await this.o.store.scanOwned((a) => this.router.place(a) === this.o.thread) : new Set<Address>();
    // Every actor to restore has its record (mail waits there) before the mail that came meanwhile is handed out.
    const restoring = [...owned].filter((a) => !this.records.has(a));
    for (const address of restoring) this.records.set(address, this.newRecord(address, undefined));
    const mail = this.bootMail;
    this.bootMail = null;
    for (const env of mail) this.deliver(env);
    let n = 0;
    for (const address of restoring) {
      if (this.records.get(address)?.status !== 'starting') continue;
      try {
        await this.start(address, true, undefined, 'boot');
        this.router.sendControl(MAIN_THREAD, { c: 'activated', address, kind: kindOf(address) });
        n++;
      } catch (err) {
        this.o.log('error', `could not restore ${address}: ${(err as Error).message}`);
      }
    }
    this.releasedEarly = null;
    return n;
  }

  /** Orderly shutdown of every actor, in reverse start order is the supervisors' job; this is the floor. */
  async shutdown(): Promise<void> {
    for (const rec of [...this.records.values()]) {
      if (rec.status === 'running') {
        // A suspended actor's state is half a message: its last snapshot stays and the message replays.
        if (rec.def && rec.actor && !rec.waiting && persists(rec.def, rec.actor.getSnapshot())) this.saveSnapshot(rec, rec.actor.getSnapshot());
        this.halt(rec, 'stopped');
      }
    }
    this.records.clear();
    await this.o.store.flushed();
  }

  private async callLocal(service: string, method: string, args: unknown[]): Promise<unknown> {
    const s = this.o.services.get(service) as Record<string, unknown> | undefined;
    const f = s?.[method];
    if (typeof f !== 'function') throw new Error(`no method ${service}.${method} on scheduler ${this.o.thread}`);
    return f.apply(s, args);
  }

  private callAt(home: Address, service: string, method: string, args: unknown[], timeoutMs = 5_000): Promise<unknown> {
    const at = this.router.place(home);
    if (at === this.o.thread) return this.callLocal(service, method, args);
    const reply = ++this.replyCounter;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.replies.delete(reply); reject(new Error(`${service}.${method} on ${at === MAIN_THREAD ? 'the main thread' : `scheduler ${at}`}: no answer in ${timeoutMs / 1000} s`)); }, timeoutMs);
      this.replies.set(reply, (c) => {
        clearTimeout(timer);
        if (c.c === 'call-reply' && c.error !== undefined) reject(new Error(c.error));
        else resolve(c.c === 'call-reply' ? c.value : undefined);
      });
      this.router.sendControl(at, { c: 'call', service, method, args, reply });
    });
  }

  request(thread: ThreadId, make: (reply: number) => Control): Promise<Control> {
    const reply = ++this.replyCounter;
    return new Promise((resolve) => { this.replies.set(reply, resolve); this.router.sendControl(thread, make(reply)); });
  }

  // ---- the API actors see -------------------------------------------------------------------

  private readonly api: ActorContextApi = {
    self: () => this.cur().address,
    sender: () => this.frame()?.item.from,
    send: (to, message) => this.durable.plain({ t: to, f: this.frame()?.rec.address, m: message }),
    sendDurable: (to, message) => this.durable.send(to, this.frame()?.rec.address, message),
    spawn: (address, input) => this.request(MAIN_THREAD, (reply) => ({ c: 'spawn', address, restore: false, input, reply }))
      .then((c) => { if (c.c === 'spawned' && c.error) throw new Error(c.error); }),
    monitor: (target, tag) => {
      const ref = this.o.thread * 2 ** 32 + ++this.refCounter;
      const me = this.cur();
      (me.watching ??= new Map()).set(ref, tag === undefined ? { target } : { target, tag });
      this.router.controlFor(target, { c: 'monitor', target, watcher: me.address, ref });
      return ref;
    },
    demonitor: (ref) => {
      const me = this.cur();
      const target = me.watching?.get(ref)?.target;
      if (target === undefined) return;
      me.watching!.delete(ref);
      this.router.controlFor(target, { c: 'demonitor', target, ref });
    },
    link: (other) => { const me = this.cur(); (me.links ??= new Set()).add(other); this.router.controlFor(other, { c: 'link', target: other, other: me.address }); },
    unlink: (other) => { const me = this.cur(); me.links?.delete(other); this.router.controlFor(other, { c: 'unlink', target: other, other: me.address }); },
    trapExits: (on) => { this.cur().trap = on; },
    exit: (reason) => { this.cur().exitRequested = reason; },
    kill: (target, reason) => this.router.controlFor(target, { c: 'kill', address: target, reason }),
    startTimer: (name, ms, message) => {
      const rec = this.cur();
      const timers = (rec.timers ??= new Map());
      const old = timers.get(name);
      if (old) clearTimeout(old);
      timers.set(name, setTimeout(() => {
        rec.timers?.delete(name);
        if (rec.status === 'running' || rec.status === 'starting') this.enqueue(rec, { from: rec.address, msg: message });
      }, ms));
    },
    cancelTimer: (name) => {
      const rec = this.cur();
      const t = rec.timers?.get(name);
      if (t) { clearTimeout(t); rec.timers!.delete(name); }
    },
    messageId: () => this.frame()?.item.seq,
    retain: (): Receipt | undefined => {
      const f = this.frame();
      if (!f?.item.seq) return undefined;
      f.retained = true;
      return { address: f.rec.address, seq: f.item.seq };
    },
    suspend: (promise) => {
      const f = this.frame();
      if (!f) throw new Error('suspend() used outside of a handler');
      if (f.suspended) throw new Error('suspend() called twice for one message');
      f.suspended = promise;
    },
    inHandler: () => this.frame() !== undefined,
    release: (receipt) => this.router.controlFor(receipt.address, { c: 'release', address: receipt.address, seq: receipt.seq }),
    sendRetained: (to, message, receipt) => {
      const env: Envelope = { t: to, f: this.frame()?.rec.address, m: message };
      this.forwards.set(`${receipt.address}\0${receipt.seq}`, env);
      this.durable.plain(env);
    },
    persistNow: () => { this.cur().persistRequested = true; },
    later: () => {
      const rec = this.cur();
      const to = rec.address;
      return (message: unknown) => {
        if (rec.status === 'running' || rec.status === 'starting') this.enqueue(rec, { from: to, msg: message });
        else this.router.send({ t: to, f: to, m: message }); // restarted or moved meanwhile: by name
      };
    },
    courier: () => {
      const from = this.cur().address;
      return (to, message) => this.durable.plain({ t: to, f: from, m: message });
    },
    moveTo: (address) => {
      const rec = this.cur();
      if (kindOf(address) !== rec.kind) throw new Error(`moveTo: ${address} is not a ${rec.kind} address`);
      rec.moveTo = address;
    },
    log: (level, text) => this.o.log(level, `${this.frame()?.rec.address ?? '?'}: ${text}`),
    callAt: (home, service, method, args, timeoutMs) => this.callAt(home, service, method, args, timeoutMs),
    service: <T>(name: string): T => {
      const s = this.o.services.get(name);
      if (s === undefined) throw new Error(`no service '${name}' on this scheduler`);
      return s as T;
    },
  };

  /** The message being handled here, synchronously or after one of its handler's awaits. */
  private frame(): Frame | undefined {
    const f = frames.getStore();
    return f?.open ? f : undefined;
  }

  private cur(): ActorRecord {
    const f = this.frame();
    if (!f) throw new Error('actor API used outside of a handler (or after its message was handled)');
    return f.rec;
  }
}

const persists = (def: KindDefinition, snap: { value?: unknown; context?: unknown }): boolean =>
  def.persist === 'always' && (!def.persistIf || def.persistIf(snap));

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Whether a snapshot differs from the one last saved. A machine keeps its snapshot object when a
 *  message changes nothing; a reducer (fromTransition) makes a new snapshot per message and keeps
 *  its context object instead. */
function changedSince(snap: { context?: unknown; machine?: unknown }, last: unknown): boolean {
  if (snap === last) return false;
  return snap.machine !== undefined || last === undefined || snap.context !== (last as { context?: unknown }).context;
}
