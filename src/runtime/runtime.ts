// The main thread's half of the runtime: it starts the scheduler threads and wires them into a full
// mesh of message ports, replaces a thread that dies, hosts main-thread endpoints (the connections
// that own sockets), and is where supervisors live: every actor exit is reported here.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { Level } from 'level';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { MAIN_THREAD, kindOf, placeAddress, type Address, type ThreadId } from './address.ts';
import { DurableSender } from './durable-sender.ts';
import type { Control, Envelope, ExitReason, ReloadResult, SchedulerStats } from './protocol.ts';
import { KindLoader } from './loader.ts';
import { Router } from './router.ts';
import { typeErrors } from './typecheck.ts';
import type { SchedulerData } from './scheduler.ts';
import { DynamicSupervisor, type Child, type Shutdown, type Supervisor, type SupervisorLog, type SupervisorView } from './supervisor.ts';

export interface RuntimeOptions {
  dataDir: string;
  schedulers: number;
  actorDirs: string[];
  serviceModules?: string[];
  settings?: Record<string, unknown>;
  /** Young-generation size of each scheduler's heap, MB (default 8). */
  youngGenerationMb?: number;
  /** fsync every group commit (survives power loss); off, a commit survives a process kill. */
  sync?: boolean;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', text: string) => void;
}

export type EndpointHandler = (message: unknown, from: Address | undefined) => void;

const SCHEDULER_BOOT = new URL('./scheduler-boot.mjs', import.meta.url);
const SCHEDULER_ENTRY = new URL('./scheduler.ts', import.meta.url).href;
/** How many abnormal exits the crash log keeps. */
const CRASH_LOG = 100;

export class Runtime {
  readonly db: Level<string, string>;
  readonly router: Router;
  readonly durable: DurableSender;
  readonly started = Date.now();
  readonly log: (level: 'debug' | 'info' | 'warn' | 'error', text: string) => void;
  private workers = new Map<ThreadId, Worker>();
  /** Threads started before: starting one again is a replacement (counted as a restart). */
  private everStarted = new Set<ThreadId>();
  private endpoints = new Map<Address, EndpointHandler>();
  private asks = 0;
  private mainServices = new Map<string, Record<string, (...args: any[]) => unknown>>();
  private exitWatchers = new Map<Address, (reason: ExitReason) => void>();
  /** Main-thread monitors by ref, with where the watched actor is now (it follows moves). */
  private downWatchers = new Map<number, { target: Address; cb: (reason: ExitReason, movedTo?: Address) => void }>();
  /** Requests to scheduler threads waiting for their answer, with the thread asked: one that dies
   *  fails its requests (what it had been posted died with it), so no caller waits forever. */
  private replies = new Map<number, { thread: ThreadId; resolve: (c: Control) => void; reject: (e: Error) => void }>();
  private readyWaiters = new Map<ThreadId, () => void>();
  private replyCounter = 0;
  private refCounter = 0;
  /** Kind -> the dynamic supervisor that adopts its actors (from supervisors/tree.ts). */
  private kindSupervisors = new Map<string, DynamicSupervisor<ActorArgs>>();
  private defaultSupervisor: DynamicSupervisor<ActorArgs> | null = null;
  private stopping = false;
  readonly counters = { schedulerRestarts: 0, actorExits: 0, actorCrashes: 0 };
  /** The last CRASH_LOG abnormal exits, newest last: what the observer's crash log shows. */
  readonly crashLog: Array<{ at: number; address: Address; kind: string; reason: string }> = [];

  constructor(readonly o: RuntimeOptions) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    this.db = new Level<string, string>(join(o.dataDir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    this.log = o.log ?? ((level, text) => { if (level !== 'debug') console.error(`[${level}] ${text}`); });
    this.router = new Router(MAIN_THREAD, o.schedulers, {
      deliver: (env) => this.deliver(env),
      control: (c, from) => this.control(c, from),
    });
    this.durable = new DurableSender(MAIN_THREAD, (env) => this.router.send(env));
  }

  async open(): Promise<void> { await this.db.open({ multithreading: true }); }

  // ---- scheduler threads --------------------------------------------------------------------

  /** A supervisor child for scheduler thread `thread` (1-based); restarting it replaces the thread. */
  schedulerChild(thread: ThreadId): () => Promise<Child> {
    return async () => {
      if (this.everStarted.has(thread)) this.counters.schedulerRestarts++;
      const worker = await this.spawnScheduler(thread, true);
      this.everStarted.add(thread);
      let exitCb: ((r: ExitReason) => void) | null = null;
      let stopping = false;
      worker.once('exit', (code) => {
        this.workers.delete(thread);
        if (stopping) return;
        this.threadDied(thread, code);
        exitCb?.(`scheduler thread exited with code ${code}`);
      });
      return {
        onExit: (cb) => { exitCb = cb; },
        stop: async (timeout: Shutdown) => {
          stopping = true;
          const done = new Promise<void>((r) => worker.once('exit', () => r()));
          if (timeout !== 'brutal_kill') {
            const ms = timeout === 'infinity' ? 60_000 : timeout;
            await Promise.race([this.request(thread, (reply) => ({ c: 'shutdown', reply })), sleep(ms)]);
          }
          this.router.markDown(thread);
          await worker.terminate();
          await done;
        },
      };
    };
  }

  private async spawnScheduler(thread: ThreadId, restore: boolean): Promise<Worker> {
    // A fresh channel to main and to every live scheduler; live ones get their end as a 'peer' control.
    const peers: Array<[ThreadId, MessagePort]> = [];
    const toMain = new MessageChannel();
    peers.push([MAIN_THREAD, toMain.port2]);
    for (const other of this.workers.keys()) {
      if (other === thread) continue;
      const ch = new MessageChannel();
      peers.push([other, ch.port2]);
      this.router.sendControl(other, { c: 'peer', thread, port: ch.port1 });
    }
    const data: SchedulerData = {
      entry: SCHEDULER_ENTRY, thread, schedulers: this.o.schedulers, dbPath: join(this.o.dataDir, 'db'),
      sync: this.o.sync ?? false, actorDirs: this.o.actorDirs, serviceModules: this.o.serviceModules ?? [],
      settings: this.o.settings ?? {}, peers, restore,
    };
    // A small young generation: many small, long-lived actors gain little from a big nursery, and
    // each thread's nursery is resident memory (bytes per idle session).
    const worker = new Worker(SCHEDULER_BOOT, {
      workerData: data, transferList: peers.map(([, p]) => p) as never, name: `scheduler-${thread}`,
      resourceLimits: { maxYoungGenerationSizeMb: this.o.youngGenerationMb ?? 8 },
    });
    worker.on('error', (err) => this.log('error', `scheduler ${thread} died: ${err.stack ?? err.message}`));
    this.workers.set(thread, worker);
    const ready = new Promise<void>((resolve) => this.readyWaiters.set(thread, resolve));
    this.router.addPeer(thread, toMain.port1);
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => worker.once('exit', (code) => reject(new Error(`scheduler ${thread} exited during start (code ${code})`)))),
    ]);
    return worker;
  }

  /** A dead thread's durable mail is resent to its replacement; its actors count as crashed. */
  private threadDied(thread: ThreadId, code: number): void {
    this.log('error', `scheduler thread ${thread} died (exit code ${code}); replacing it`);
    this.router.markDown(thread);
    for (const other of this.workers.keys()) this.router.sendControl(other, { c: 'thread-down', thread });
    this.durable.resendTo(thread, (a) => this.router.place(a));
    // As a node going down does to OTP's monitors: every actor watched there is down with it.
    for (const [ref, w] of [...this.downWatchers]) {
      if (placeAddress(w.target, this.o.schedulers) !== thread) continue;
      this.downWatchers.delete(ref);
      this.callOut(`monitor ${ref}`, () => w.cb('scheduler-died'));
    }
    for (const [reply, r] of this.replies) {
      if (r.thread === thread) { this.replies.delete(reply); r.reject(new Error(`scheduler thread ${thread} died before answering`)); }
    }
    for (const [address, cb] of [...this.exitWatchers]) {
      if (placeAddress(address, this.o.schedulers) === thread) { this.exitWatchers.delete(address); cb('scheduler-died'); }
    }
  }

  threadIds(): ThreadId[] { return [...this.workers.keys()].sort((a, b) => a - b); }
  worker(thread: ThreadId): Worker | undefined { return this.workers.get(thread); }

  // ---- actors -------------------------------------------------------------------------------

  /** A dynamic supervisor for actors of the given kinds (simple_one_for_one over addresses). */
  actorSupervisor(name: string, kinds: string[] | 'default', flags: { restart?: 'permanent' | 'transient' | 'temporary'; intensity?: number; period?: number; perChild?: { intensity: number; period: number }; shutdown?: Shutdown }, log: SupervisorLog): DynamicSupervisor<ActorArgs> {
    const sup = new DynamicSupervisor<ActorArgs>(name, {
      restart: flags.restart ?? 'transient',
      shutdown: flags.shutdown ?? 5000,
      start: (args, restart) => this.startActor(args.address, args.input, restart),
    }, flags, log);
    if (kinds === 'default') this.defaultSupervisor = sup;
    else for (const k of kinds) this.kindSupervisors.set(k, sup);
    return sup;
  }

  private supervisorFor(address: Address): DynamicSupervisor<ActorArgs> {
    const sup = this.kindSupervisors.get(kindOf(address)) ?? this.defaultSupervisor;
    if (!sup) throw new Error(`no supervisor for actors of kind ${kindOf(address)}`);
    return sup;
  }

  /** Starts an actor under its kind's supervisor. */
  spawn(address: Address, input?: unknown): Promise<void> {
    return this.supervisorFor(address).startChild(address, { address, input });
  }

  private async startActor(address: Address, input: unknown, restore: boolean): Promise<Child> {
    // Watched before it starts: an actor that ends at once reports its exit in the same batch as
    // the spawn reply, and an exit nobody heard would keep it in its supervisor forever.
    const child = this.actorChild(address);
    const c = await this.request(this.router.place(address), (reply) => ({ c: 'spawn', address, restore, input, reply }));
    if (c.c === 'spawned' && c.error) { this.exitWatchers.delete(address); throw new Error(c.error); }
    return child;
  }

  private actorChild(address: Address): Child {
    let exitCb: ((r: ExitReason) => void) | null = null;
    let early: ExitReason | null = null; // exited before its supervisor was listening
    let stopped: (() => void) | null = null;
    this.exitWatchers.set(address, (reason) => {
      if (stopped) { stopped(); return; }
      if (exitCb) exitCb(reason);
      else early = reason;
    });
    return {
      onExit: (cb) => { exitCb = cb; if (early !== null) { const r = early; early = null; queueMicrotask(() => cb(r)); } },
      stop: (timeout) => new Promise<void>((resolve) => {
        if (!this.exitWatchers.has(address)) { resolve(); return; }
        stopped = resolve;
        const brutal = timeout === 'brutal_kill';
        this.router.controlFor(address, { c: 'kill', address, reason: brutal ? 'kill' : 'shutdown' });
        if (!brutal && timeout !== 'infinity') {
          setTimeout(() => this.router.controlFor(address, { c: 'kill', address, reason: 'kill' }), timeout).unref();
        }
      }),
    };
  }

  send(to: Address, message: unknown, from?: Address): void { this.router.send({ t: to, f: from, m: message }); }
  sendDurable(to: Address, message: unknown, from?: Address): Promise<void> { return this.durable.send(to, from, message); }

  /** exit(Address, Reason) from outside, as Erlang's exit/2 ('kill' cannot be trapped or ignored). */
  async kill(address: Address, reason: ExitReason = 'kill'): Promise<boolean> {
    const c = await this.request(this.router.place(address), (reply) => ({ c: 'kill', address, reason, reply }));
    return !(c.c === 'spawned' && c.error);
  }

  /** Main-thread endpoints (connections) receive messages sent to their address. */
  registerEndpoint(address: Address, handler: EndpointHandler): void {
    if (placeAddress(address, this.o.schedulers) !== MAIN_THREAD) throw new Error(`${address} is not a main-thread address`);
    this.endpoints.set(address, handler);
  }
  unregisterEndpoint(address: Address): void { this.endpoints.delete(address); }

  /** A service of the main thread's (the node's operator commands), which actors reach with
   *  callNode: what only the thread holding every socket and supervisor can do. */
  provide(name: string, impl: Record<string, (...args: any[]) => unknown>): void { this.mainServices.set(name, impl); }
  /** What was provided under `name` (the admin commands, for the observer's buttons). */
  service(name: string): Record<string, (...args: any[]) => unknown> | undefined { return this.mainServices.get(name); }

  private root: Supervisor | null = null;
  /** The supervision tree's root, once started (startRuntime sets it). */
  setRoot(root: Supervisor): void { this.root = root; }
  /** The supervision tree as it stands, for the observer. */
  tree(): SupervisorView | null { return this.root?.describe() ?? null; }

  /**
   * Sends an actor `message` with a `reply` address added, durably (a node that stops first delivers
   * it at its next start), and resolves with the first message sent back there: an operator's
   * question to an actor, gen_server:call from outside the actors.
   */
  ask(address: Address, message: Record<string, unknown>, timeoutMs = 60_000): Promise<unknown> {
    const reply = `node:ask-${++this.asks}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.unregisterEndpoint(reply); reject(new NoAnswer(`${address} did not answer within ${timeoutMs / 1000} s`)); }, timeoutMs);
      this.registerEndpoint(reply, (m) => { clearTimeout(timer); this.unregisterEndpoint(reply); resolve(m); });
      this.sendDurable(address, { ...message, reply }, reply).catch((e: Error) => { clearTimeout(timer); this.unregisterEndpoint(reply); reject(e); });
    });
  }

  /** Monitor an actor from the main thread: cb runs once with the reason it ended — and, before
   *  that, with 'moved' and the new address each time the actor moves (the monitor follows it). */
  monitor(target: Address, cb: (reason: ExitReason, movedTo?: Address) => void): number {
    const ref = ++this.refCounter;
    this.downWatchers.set(ref, { target, cb });
    this.router.controlFor(target, { c: 'monitor', target, watcher: 'node:main', ref });
    return ref;
  }
  demonitor(target: Address, ref: number): void {
    this.downWatchers.delete(ref);
    this.router.controlFor(target, { c: 'demonitor', target, ref });
  }

  // ---- operations ---------------------------------------------------------------------------

  async stats(withActors = false, kind?: string, gc = false): Promise<SchedulerStats[]> {
    // A thread that dies meanwhile is left out of this answer (its replacement is in the next one).
    const all = await Promise.all(this.threadIds().map((t) => this.request(t, (reply) => ({ c: 'stats', reply, withActors, kind, gc })).catch(() => null)));
    return all.flatMap((c) => (c ? [(c as Extract<Control, { c: 'stats-reply' }>).stats] : []));
  }

  /** Hot reload: the compiler checks the kind's code, then every scheduler loads it and moves its
   *  live actors over. Code that does not typecheck is refused and the old code keeps running. */
  async reload(kind: string): Promise<ReloadResult[]> {
    const file = new KindLoader(this.o.actorDirs).locate(kind);
    if (file) {
      const started = performance.now();
      const errors = await typeErrors(dirname(file));
      const ms = Math.round(performance.now() - started);
      if (errors === null) this.log('info', `reload: ${kind} not typechecked (no tsconfig.json above it, or TypeScript is not installed)`);
      else this.log('info', `reload: typecheck of ${kind}: ${errors.length} error${errors.length === 1 ? '' : 's'} in ${ms} ms`);
      if (errors?.length) throw new Error(`reload of ${kind} refused: its code does not typecheck:\n${errors.join('\n')}`);
    }
    const threads = this.threadIds();
    const all = await Promise.all(threads.map((t) => this.request(t, (reply) => ({ c: 'reload', kind, reply }))));
    // One result per scheduler thread: each hosts its own copy of the kind's code.
    return all.map((c, i) => {
      const r = c as Extract<Control, { c: 'reloaded' }>;
      if (r.error) throw new Error(`reload of ${kind} failed: ${r.error}`);
      return { scheduler: threads[i]!, ...r.result! };
    });
  }

  /** A method of a shared service on every scheduler thread (e.g. a feature module's reload). */
  async callServices(service: string, method: string, args: unknown[]): Promise<unknown[]> {
    return Promise.all(this.threadIds().map(async (t) => {
      const c = await this.request(t, (reply) => ({ c: 'call', service, method, args, reply }));
      if (c.c === 'call-reply' && c.error !== undefined) throw new Error(c.error);
      return c.c === 'call-reply' ? c.value : undefined;
    }));
  }

  supervisors(): Array<{ name: string; children: number; restarts: number }> {
    const seen = new Set<DynamicSupervisor<ActorArgs>>([...this.kindSupervisors.values(), ...(this.defaultSupervisor ? [this.defaultSupervisor] : [])]);
    return [...seen].map((s) => ({ name: s.name, children: s.size, restarts: s.counters.restarts }));
  }

  get isStopping(): boolean { return this.stopping; }
  markStopping(): void { this.stopping = true; }

  async close(): Promise<void> {
    this.router.close();
    await this.db.close();
  }

  request(thread: ThreadId, make: (reply: number) => Control): Promise<Control> {
    const reply = ++this.replyCounter;
    return new Promise((resolve, reject) => { this.replies.set(reply, { thread, resolve, reject }); this.router.sendControl(thread, make(reply)); });
  }

  // ---- RouterSink ---------------------------------------------------------------------------

  /** Main-thread callbacks (endpoints, monitors) guard themselves; this is the last resort, because
   *  an error escaping here would reach the event loop of the thread that holds every socket. */
  private callOut(what: string, fn: () => void): void {
    try { fn(); } catch (err) { this.log('error', `main: ${what}: ${(err as Error)?.stack ?? String(err)}`); }
  }

  private deliver(env: Envelope): void {
    const h = this.endpoints.get(env.t);
    if (h) this.callOut(env.t, () => h(env.m, env.f));
    if (env.d !== undefined && env.s !== undefined) {
      // Main-thread endpoints are not durable; confirm so the sender does not wait forever.
      this.router.sendControl(env.s, { c: 'confirm', token: env.d, error: h ? undefined : `no endpoint ${env.t}` });
    }
  }

  private control(c: Control, fromThread: ThreadId): void {
    switch (c.c) {
      case 'ready': this.readyWaiters.get(c.thread)?.(); this.readyWaiters.delete(c.thread); break;
      case 'confirm': this.durable.confirmed(c.token, c.error); break;
      case 'exited': {
        this.counters.actorExits++;
        const normal = c.reason === 'normal' || c.reason === 'shutdown' || c.reason === 'moved';
        if (!normal) {
          this.counters.actorCrashes++;
          this.crashLog.push({ at: Date.now(), address: c.address, kind: c.kind, reason: String(c.reason) });
          if (this.crashLog.length > CRASH_LOG) this.crashLog.shift();
        }
        const cb = this.exitWatchers.get(c.address);
        this.exitWatchers.delete(c.address);
        if (cb) this.callOut(`exit of ${c.address}`, () => cb(c.reason));
        else if (!normal) this.router.controlFor(c.address, { c: 'forget', address: c.address });
        break;
      }
      case 'activated': {
        if (this.exitWatchers.has(c.address) || this.stopping) break;
        const sup = this.kindSupervisors.get(c.kind) ?? this.defaultSupervisor;
        if (sup && !sup.has(c.address)) sup.adopt(c.address, { address: c.address }, this.actorChild(c.address));
        break;
      }
      case 'down': {
        const w = this.downWatchers.get(c.ref);
        this.downWatchers.delete(c.ref);
        if (w) this.callOut(`monitor ${c.ref}`, () => w.cb(c.reason));
        break;
      }
      case 'moved': {
        const w = this.downWatchers.get(c.ref);
        if (w) { w.target = c.address; this.callOut(`monitor ${c.ref}`, () => w.cb('moved', c.address)); }
        break;
      }
      case 'log': this.log(c.level, c.text); break;
      case 'call': {
        const answer = (value: unknown, error?: string) => this.router.sendControl(fromThread, { c: 'call-reply', reply: c.reply, value, error });
        const f = this.mainServices.get(c.service)?.[c.method];
        if (!f) { answer(undefined, `no method ${c.service}.${c.method} on the main thread`); break; }
        // The service's own errors go back to the caller, never up this thread's event loop.
        Promise.resolve().then(() => f(...c.args)).then((v) => answer(v), (err: Error) => answer(undefined, err?.message ?? String(err)));
        break;
      }
      case 'spawned': case 'reloaded': case 'stats-reply': case 'shutdown-done': case 'call-reply':
        this.replies.get(c.reply)?.resolve(c);
        this.replies.delete(c.reply);
        break;
      case 'spawn': {
        // An actor asked for a spawn: it goes through the kind's supervisor like any other.
        const reply = c.reply;
        const answer = (error?: string) => reply !== undefined && this.router.sendControl(fromThread, { c: 'spawned', reply, error });
        this.spawn(c.address, c.input).then(() => answer(), (err: Error) => answer(err.message));
        break;
      }
      default: this.log('warn', `main: unexpected control ${c.c}`);
    }
  }
}

/** Runtime.ask's question went unanswered in its time (the message itself stays durable). */
export class NoAnswer extends Error {}

export interface ActorArgs { address: Address; input?: unknown }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
