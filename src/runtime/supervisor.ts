// OTP supervision on the main thread. A child spec is data; a child is anything with a way to stop it
// and to hear that it ended (an actor on a scheduler, a scheduler thread, a listener, a supervisor).
// Semantics follow OTP's supervisor: restart types permanent/transient/temporary; strategies
// one_for_one, one_for_all, rest_for_one; more than `intensity` restarts within `period` ms makes the
// supervisor stop all its children and exit, which its own parent sees as a crash (escalation).
import type { ExitReason } from './protocol.ts';
import { OperatorError, rootCause } from '../operator-error.ts';

export type RestartType = 'permanent' | 'transient' | 'temporary';
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
/** Milliseconds to wait for an orderly stop before killing; 'brutal_kill' kills at once. */
export type Shutdown = number | 'brutal_kill' | 'infinity';

export interface Child {
  /** Orderly stop; after `timeoutMs` the child is killed. Resolves when it has ended. */
  stop(timeout: Shutdown): Promise<void>;
  /** Called once when the child ends on its own (crash or normal end), never for a stop() we asked for. */
  onExit(cb: (reason: ExitReason) => void): void;
}

export interface ChildSpec {
  id: string;
  start: () => Promise<Child>;
  restart?: RestartType;
  shutdown?: Shutdown;
  type?: 'worker' | 'supervisor';
}

export interface SupervisorFlags {
  strategy?: Strategy;
  /** Restarts allowed within `period` (OTP default: 1 in 5 s). */
  intensity?: number;
  period?: number;
}

export type SupervisorLog = (level: 'info' | 'warn' | 'error', text: string) => void;

/** 'moved': the actor goes on under another address (moveTo), adopted there by its kind's supervisor. */
const isNormal = (r: ExitReason) => r === 'normal' || r === 'shutdown' || r === 'moved';
const shouldRestart = (t: RestartType, r: ExitReason) => t === 'permanent' || (t === 'transient' && !isNormal(r));

interface Running { spec: ChildSpec; child: Child | null; generation: number }

/** Restart-intensity bookkeeping shared by both supervisor flavours. */
class Intensity {
  private restarts: number[] = [];
  constructor(private readonly max: number, private readonly period: number) {}
  /** Records one restart; false when that is one too many for the period. */
  allow(now = Date.now()): boolean {
    this.restarts.push(now);
    while (this.restarts.length && this.restarts[0]! <= now - this.period) this.restarts.shift();
    return this.restarts.length <= this.max;
  }
  /** No restart within the period: nothing to remember. */
  idle(now = Date.now()): boolean { return !this.restarts.length || this.restarts[this.restarts.length - 1]! <= now - this.period; }
  /** As OTP writes it: at most `max` restarts in `period`. */
  describe(): string { return `${this.max} / ${this.period / 1000} s`; }
}

/** A supervisor as an observer shows it: its flags, restarts and children (a dynamic one's counted). */
export interface SupervisorView {
  name: string;
  strategy: Strategy | 'simple_one_for_one';
  intensity: string;
  restarts: number;
  children: Array<SupervisorView | { name: string; running: boolean }>;
  /** A dynamic supervisor's children are many and come and go: how many, and how many it started. */
  dynamic?: { children: number; started: number };
}

export class Supervisor implements Child {
  private children: Running[] = [];
  private exitCb: ((reason: ExitReason) => void) | null = null;
  private intensity: Intensity;
  private strategy: Strategy;
  private stopping = false;
  private busy: Promise<void> = Promise.resolve();
  readonly counters = { restarts: 0 };

  constructor(readonly name: string, private readonly specs: ChildSpec[], flags: SupervisorFlags = {}, private readonly log: SupervisorLog = () => {}) {
    this.strategy = flags.strategy ?? 'one_for_one';
    this.intensity = new Intensity(flags.intensity ?? 1, flags.period ?? 5000);
    const ids = new Set<string>();
    for (const s of specs) {
      if (ids.has(s.id)) throw new Error(`supervisor ${name}: duplicate child id ${s.id}`);
      ids.add(s.id);
    }
  }

  /** Starts children left to right; if one fails, the started ones are stopped right to left. */
  async start(): Promise<this> {
    for (const spec of this.specs) {
      const r: Running = { spec, child: null, generation: 0 };
      this.children.push(r);
      try {
        await this.startChild(r);
      } catch (err) {
        // An operator's mistake is told once, by whoever started the tree (the CLI: one line and its fix).
        if (!(rootCause(err) instanceof OperatorError)) this.log('error', `${this.name}: child ${spec.id} failed to start: ${(err as Error).message}`);
        await this.stopFrom(0);
        this.children = [];
        throw new Error(`supervisor ${this.name}: child ${spec.id} failed to start: ${(err as Error).message}`, { cause: err });
      }
    }
    return this;
  }

  onExit(cb: (reason: ExitReason) => void): void { this.exitCb = cb; }

  /** Stops children right to left, each within its own shutdown time. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.busy;
    await this.stopFrom(0);
  }

  /** For tests and `chorus status`: id and whether it is running, in start order. */
  which(): Array<{ id: string; running: boolean; type: string; child: Child | null }> {
    return this.children.map((r) => ({ id: r.spec.id, running: r.child !== null, type: r.spec.type ?? 'worker', child: r.child }));
  }

  describe(): SupervisorView {
    return {
      name: this.name, strategy: this.strategy, intensity: this.intensity.describe(), restarts: this.counters.restarts,
      children: this.children.map((r) => (r.child instanceof Supervisor || r.child instanceof DynamicSupervisor ? r.child.describe() : { name: r.spec.id, running: r.child !== null })),
    };
  }

  private async startChild(r: Running): Promise<void> {
    const child = await r.spec.start();
    const generation = ++r.generation;
    r.child = child;
    child.onExit((reason) => {
      if (r.generation !== generation || r.child !== child) return; // a stale child of an earlier start
      r.child = null;
      this.serialize(() => this.childExited(r, reason));
    });
  }

  /** Exits and restarts are handled one at a time, like messages in a supervisor's mailbox. */
  private serialize(fn: () => Promise<void>): void {
    this.busy = this.busy.then(fn).catch((err: Error) => this.log('error', `${this.name}: ${err.message}`));
  }

  private async childExited(r: Running, reason: ExitReason): Promise<void> {
    if (this.stopping) return;
    const level = isNormal(reason) ? 'info' : 'error';
    this.log(level, `${this.name}: child ${r.spec.id} exited: ${reason}`);
    const type = r.spec.restart ?? 'permanent';
    if (!shouldRestart(type, reason)) {
      if (type === 'temporary' || isNormal(reason)) this.children = this.children.filter((c) => c !== r || type !== 'temporary');
      return;
    }
    if (!this.intensity.allow()) { await this.giveUp(); return; }
    this.counters.restarts++;
    const i = this.children.indexOf(r);
    const group = this.strategy === 'one_for_one' ? [r] : this.strategy === 'one_for_all' ? this.children : this.children.slice(i);
    // Siblings that must go too are stopped right to left, then the group starts left to right —
    // except temporary ones, which OTP never restarts: a sibling's crash ends them for good.
    for (const s of [...group].reverse()) if (s !== r && s.child) await this.stopOne(s);
    const gone = group.filter((s) => s !== r && (s.spec.restart ?? 'permanent') === 'temporary');
    if (gone.length) this.children = this.children.filter((c) => !gone.includes(c));
    for (const s of group) {
      if (gone.includes(s)) continue;
      if (s.child) continue;
      try {
        await this.startChild(s);
        this.log('info', `${this.name}: restarted ${s.spec.id}`);
      } catch (err) {
        this.log('error', `${this.name}: restart of ${s.spec.id} failed: ${(err as Error).message}`);
        // A failed restart counts against intensity; retry until the supervisor gives up.
        s.child = null;
        if (!this.intensity.allow()) { await this.giveUp(); return; }
        this.serialize(() => this.childExited(s, 'start_failed'));
        return;
      }
    }
  }

  private async giveUp(): Promise<void> {
    this.log('error', `${this.name}: restart intensity reached; shutting down and escalating`);
    this.stopping = true;
    await this.stopFrom(0);
    this.exitCb?.('reached_max_restart_intensity');
  }

  private async stopFrom(index: number): Promise<void> {
    for (let i = this.children.length - 1; i >= index; i--) {
      const r = this.children[i]!;
      if (r.child) await this.stopOne(r);
    }
  }

  private async stopOne(r: Running): Promise<void> {
    const child = r.child!;
    r.child = null;
    r.generation++;
    await child.stop(r.spec.shutdown ?? (r.spec.type === 'supervisor' ? 'infinity' : 5000));
  }
}

/** simple_one_for_one: many children made from one template, started and stopped at run time. */
export class DynamicSupervisor<Args> implements Child {
  private children = new Map<string, { child: Child; args: Args; generation: number }>();
  private exitCb: ((reason: ExitReason) => void) | null = null;
  private intensity: Intensity;
  /** Per child, when `perChild` is set: one child's crash loop is its own problem (see exited()). */
  private childIntensity = new Map<string, Intensity>();
  private readonly perChild: { intensity: number; period: number } | undefined;
  private stopping = false;
  readonly counters = { restarts: 0, started: 0 };

  constructor(
    readonly name: string,
    private readonly template: { start: (args: Args, restart: boolean) => Promise<Child>; restart?: RestartType; shutdown?: Shutdown },
    flags: { intensity?: number; period?: number; perChild?: { intensity: number; period: number } } = {},
    private readonly log: SupervisorLog = () => {},
  ) {
    this.intensity = new Intensity(flags.intensity ?? 1, flags.period ?? 5000);
    this.perChild = flags.perChild;
  }

  async startChild(id: string, args: Args): Promise<void> {
    if (this.stopping) throw new Error(`${this.name} is shutting down`);
    if (this.children.has(id)) throw new Error(`${this.name}: ${id} is already running`);
    this.watch(id, args, await this.template.start(args, false));
    this.counters.started++;
  }

  /** Takes on a child that started without us (an actor activated on demand or restored at boot). */
  adopt(id: string, args: Args, child: Child): void {
    if (this.stopping || this.children.has(id)) return;
    this.watch(id, args, child);
  }

  has(id: string): boolean { return this.children.has(id); }
  get size(): number { return this.children.size; }

  describe(): SupervisorView {
    return {
      name: this.name, strategy: 'simple_one_for_one', intensity: this.intensity.describe(), restarts: this.counters.restarts,
      children: [], dynamic: { children: this.children.size, started: this.counters.started },
    };
  }

  async terminateChild(id: string): Promise<void> {
    const c = this.children.get(id);
    if (!c) return;
    this.children.delete(id);
    await c.child.stop(this.template.shutdown ?? 5000);
  }

  onExit(cb: (reason: ExitReason) => void): void { this.exitCb = cb; }

  /** Children of a dynamic supervisor have no order: they are stopped all at once. */
  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.children.values()];
    this.children.clear();
    await Promise.all(all.map((c) => c.child.stop(this.template.shutdown ?? 5000)));
  }

  private watch(id: string, args: Args, child: Child): void {
    const generation = (this.children.get(id)?.generation ?? 0) + 1;
    this.children.set(id, { child, args, generation });
    child.onExit((reason) => void this.exited(id, generation, reason));
  }

  private async exited(id: string, generation: number, reason: ExitReason): Promise<void> {
    const c = this.children.get(id);
    if (!c || c.generation !== generation || this.stopping) return;
    this.children.delete(id);
    if (!shouldRestart(this.template.restart ?? 'transient', reason)) {
      if (!isNormal(reason)) this.log('warn', `${this.name}: ${id} exited: ${reason} (not restarted)`);
      return;
    }
    // Beyond its own budget a child is left down rather than counted against the supervisor: one
    // account's crash loop (its own traffic) must not escalate to the node. An actor activated on
    // demand comes back with its next message; the supervisor's intensity still catches failures
    // spread over many children, which mean the code or the machine is at fault.
    // The record outlives the child (re-adopted on demand, it keeps its window), so one id adds at
    // most perChild.intensity restarts per period to the supervisor's count.
    if (this.perChild) {
      if (this.childIntensity.size > 10_000) for (const [k, v] of this.childIntensity) if (v.idle()) this.childIntensity.delete(k);
      let mine = this.childIntensity.get(id);
      if (!mine) this.childIntensity.set(id, (mine = new Intensity(this.perChild.intensity, this.perChild.period)));
      if (!mine.allow()) {
        this.log('error', `${this.name}: ${id} exited: ${reason}; more than ${this.perChild.intensity} crashes in ${this.perChild.period / 1000} s: left down`);
        return;
      }
    }
    this.log('error', `${this.name}: ${id} exited: ${reason}; restarting`);
    if (!this.intensity.allow()) {
      this.log('error', `${this.name}: restart intensity reached; shutting down and escalating`);
      await this.stop();
      this.exitCb?.('reached_max_restart_intensity');
      return;
    }
    this.counters.restarts++;
    try {
      const child = await this.template.start(c.args, true);
      this.children.set(id, { child, args: c.args, generation: generation + 1 });
      child.onExit((r) => void this.exited(id, generation + 1, r));
      this.log('info', `${this.name}: restarted ${id}`);
    } catch (err) {
      this.log('error', `${this.name}: restart of ${id} failed: ${(err as Error).message}`);
    }
  }
}
