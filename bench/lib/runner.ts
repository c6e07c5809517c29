// Scenarios: login, idle, chat, muc, soak. Each brings a target up, spreads its clients over the load
// workers, measures one phase (server CPU and RSS from /proc, generator CPU from this process) and
// returns a RunResult with totals and a per-second timeline.
import { performance } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { Pool, share, type Counters } from './pool.ts';
import { ProcSampler, sampleTree, machineBusyS, type TreeSample } from './proc.ts';
import { percentilesMs, type Percentiles } from './histogram.ts';
import { prepareTarget, type LiveTarget, type TargetSpec } from './target.ts';
import type { TlsMode } from './client.ts';

export type Scenario = 'login' | 'idle' | 'chat' | 'muc' | 'soak';
export const SCENARIOS: Scenario[] = ['login', 'idle', 'chat', 'muc', 'soak'];

export interface BenchOptions {
  scenario: Scenario;
  clients: number; // login, idle
  concurrency: number; // logins at a time
  pairs: number; // chat, soak
  inflight: number; // closed loop: messages in flight per sender
  rate: number; // open loop: offered msg/s in total (0 = closed loop)
  durationS: number;
  drainS: number;
  occupants: number; // muc
  senders: number; // muc
  settleS: number; // idle: wait before reading RSS
  churn: number; // soak: logins/s beside the chat load
  tls: TlsMode;
  mechanism: string;
  sasl2: boolean; // login with SASL2 + Bind 2 (XEP-0388/0386); FAST mechanisms always do
  password: string;
  workers: number;
  presence: boolean;
  loginTimeoutS: number;
  coalesce: boolean; // batch each client's stanzas into one write per tick
  padding: number; // extra body bytes
  toBare: boolean; // 1:1 messages to bare JIDs
  scramWarmup: boolean; // login: cache salted passwords before the storm, as returning clients have them
  waitQuietS: number; // before measuring: wait up to this long for other processes to leave the machine quiet
}

export const DEFAULTS: BenchOptions = {
  scenario: 'chat', clients: 2000, concurrency: 50, pairs: 200, inflight: 10, rate: 0, durationS: 20, drainS: 5,
  occupants: 50, senders: 5, settleS: 5, churn: 5, tls: 'none', mechanism: 'PLAIN', sasl2: false, password: 'pw',
  workers: Math.max(1, Math.min(4, availableParallelism())), presence: true, loginTimeoutS: 120, coalesce: false, padding: 1, toBare: false, scramWarmup: true, waitQuietS: 60,
};

export interface TimelinePoint {
  t: number; // seconds since the run started
  phase: string;
  msgPerS: number;
  loginsPerS: number;
  p50: number; // ms, this second's messages
  p99: number;
  serverRssKB: number;
  serverCpuPct: number;
  genCpuPct: number;
  /** CPU used by every other process on the machine this second (% of a core). */
  otherCpuPct?: number;
}

export interface RunResult {
  scenario: Scenario;
  target: { name: string; host: string; port: number; domain: string; version: string; pids: number[]; schedulers?: number; chorus?: boolean };
  options: BenchOptions;
  startedAt: string;
  /** PBKDF2-SHA-256-4096 per core-second just before the run (the machine's speed then). */
  speedBefore?: number;
  skipped?: string;
  error?: string;
  /** Figures of the measured phase. */
  wallS: number;
  /** The measured phase on the timeline's clock (seconds since the run started). */
  window?: { from: number; to: number };
  server: { cpuS: number; cpuPct: number; rssBeforeKB: number; rssAfterKB: number; rssPeakKB: number; measured: boolean };
  generator: { cpuS: number; cpuPct: number; rssKB: number; workers: number };
  /** CPU used by other processes on the machine during the measured phase, and the wait for quiet before it. */
  others?: { cpuPct: number; waitedS: number; cpuPctBefore: number };
  metrics: Record<string, number>;
  latency?: Percentiles; // message latency, ms
  loginLatency?: Percentiles; // connect → bound, ms
  tlsLatency?: Percentiles; // TLS handshake alone, ms
  timeline: TimelinePoint[];
  errors: string[];
}

export type ProgressFn = (p: { phase: string; done: number; total: number; note: string }) => void;

/** Accounts a scenario needs (u1..uN). */
export function accountsNeeded(o: BenchOptions): number {
  switch (o.scenario) {
    case 'login': case 'idle': return o.clients;
    case 'chat': return 2 * o.pairs;
    case 'muc': return o.occupants;
    case 'soak': return 2 * o.pairs + o.clients + 50;
  }
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runScenario(spec: TargetSpec, o: BenchOptions, progress: ProgressFn = () => {}): Promise<RunResult> {
  const startedAt = new Date().toISOString();
  const { calibration } = await import('./report.ts');
  const speedBefore = calibration(300); // the machine's speed right now (a shared VM's varies)
  progress({ phase: 'setup', done: 0, total: 1, note: `starting ${spec.name}` });
  const live = await prepareTarget(spec, accountsNeeded(o), { password: o.password, tls: o.tls !== 'none' });
  const result: RunResult = {
    scenario: o.scenario, startedAt, speedBefore, options: o, wallS: 0, errors: [], metrics: {}, timeline: [],
    target: { name: spec.name, host: live.endpoint.host, port: live.endpoint.port, domain: live.endpoint.domain, version: live.version, pids: live.pids, ...(spec.chorus ? { chorus: true, schedulers: live.schedulers } : {}) },
    server: { cpuS: 0, cpuPct: 0, rssBeforeKB: 0, rssAfterKB: 0, rssPeakKB: 0, measured: live.pids.length > 0 },
    generator: { cpuS: 0, cpuPct: 0, rssKB: 0, workers: o.workers },
  };
  const sampler = new ProcSampler(live.pids);
  const pool = Pool.start(o.workers, {
    endpoint: live.endpoint, tls: o.tls, mechanism: o.mechanism, sasl2: o.sasl2, password: o.password,
    mainTimeOrigin: performance.timeOrigin, loginTimeoutMs: o.loginTimeoutS * 1000, coalesce: o.coalesce, padding: o.padding, toBare: o.toBare,
  });
  const run = new Run(pool, sampler, result, progress);
  try {
    await sleep(500); // workers load their modules
    if (!result.target.version) result.target.version = await run.probeVersion(live).catch(() => '');
    await run.waitQuiet(o.waitQuietS);
    switch (o.scenario) {
      case 'login': await run.login(o); break;
      case 'idle': await run.idle(o); break;
      case 'chat': await run.chat(o); break;
      case 'muc': await run.muc(o); break;
      case 'soak': await run.soak(o); break;
    }
  } catch (e) {
    result.error = (e as Error).message;
  } finally {
    run.stopTimeline();
    await pool.all(() => ({ op: 'close' })).catch(() => {});
    await pool.exit();
    result.errors = pool.whole.errors;
    result.server.rssPeakKB = sampler.peakRssKB();
    await live.stop().catch((e) => result.errors.push('teardown: ' + (e as Error).message));
    result.errors.push(...(live.notes?.() ?? []));
  }
  return result;
}

class Run {
  private t0 = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private phase = 'setup';
  private lastTick = performance.now();
  private lastSample: TreeSample | null = null;
  private lastCpu = process.cpuUsage();
  private lastMachine = machineBusyS();
  private m0 = { at: 0, server: null as TreeSample | null, gen: process.cpuUsage(), machine: 0 };
  progressNote = '';

  constructor(private pool: Pool, private sampler: ProcSampler, private r: RunResult, private progress: ProgressFn) {
    this.lastSample = sampler.enabled ? sampleTree(sampler.roots) : null;
    this.timer = setInterval(() => this.tick(), 1000);
  }

  // --- timeline ---

  private tick(): void {
    const now = performance.now();
    const dt = (now - this.lastTick) / 1000;
    this.lastTick = now;
    const c = this.pool.takeInterval();
    const s = this.sampler.enabled ? this.sampler.sample() : null;
    const cpu = process.cpuUsage();
    const genCpuS = (cpu.user + cpu.system - this.lastCpu.user - this.lastCpu.system) / 1e6;
    this.lastCpu = cpu;
    const srvCpuS = s && this.lastSample ? s.cpuS - this.lastSample.cpuS : 0;
    if (s) this.lastSample = s;
    const machine = machineBusyS();
    const otherS = Math.max(0, machine - this.lastMachine - genCpuS - srvCpuS);
    this.lastMachine = machine;
    this.r.timeline.push({
      t: Math.round((now - this.t0) / 100) / 10, phase: this.phase,
      msgPerS: Math.round(c.recv / dt), loginsPerS: Math.round(c.logins / dt),
      p50: c.lat.n ? c.lat.quantile(0.5) / 1000 : 0, p99: c.lat.n ? c.lat.quantile(0.99) / 1000 : 0,
      serverRssKB: s?.rssKB ?? 0, serverCpuPct: Math.round(srvCpuS / dt * 100), genCpuPct: Math.round(genCpuS / dt * 100),
      otherCpuPct: Math.round(otherS / dt * 100),
    });
    const m = this.pool.measure;
    this.progress({ phase: this.phase, done: this.progressDone(), total: this.progressTotal, note: this.note(c, m, dt, srvCpuS) });
  }

  progressTotal = 1;
  progressDone: () => number = () => 0;

  private note(c: Counters, m: Counters, dt: number, srvCpuS: number): string {
    const parts: string[] = [];
    if (c.recv) parts.push(`${Math.round(c.recv / dt).toLocaleString('en-US')} msg/s`, `p99 ${(c.lat.quantile(0.99) / 1000).toFixed(1)} ms`);
    if (c.logins) parts.push(`${Math.round(c.logins / dt)} logins/s`);
    if (m.loginFails) parts.push(`${m.loginFails} failed`);
    if (this.sampler.enabled) parts.push(`server ${Math.round(srvCpuS / dt * 100)}% cpu`);
    return parts.join('  ');
  }

  stopTimeline(): void { if (this.timer) clearInterval(this.timer); this.timer = null; }

  private setPhase(p: string, total: number, done: () => number): void {
    this.phase = p;
    this.progressTotal = total;
    this.progressDone = done;
    this.progress({ phase: p, done: done(), total, note: '' });
  }

  /** Starts the measured phase: everything counted from here to endMeasure(). */
  private beginMeasure(): void {
    this.pool.resetMeasure();
    this.m0 = { at: performance.now(), server: this.sampler.enabled ? this.sampler.sample() : null, gen: process.cpuUsage(), machine: machineBusyS() };
  }

  private endMeasure(): Counters {
    const at = performance.now();
    const s1 = this.sampler.enabled ? this.sampler.sample() : null;
    const g1 = process.cpuUsage();
    const wallS = (at - this.m0.at) / 1000;
    this.r.wallS = round(wallS, 3);
    this.r.window = { from: round((this.m0.at - this.t0) / 1000, 1), to: round((at - this.t0) / 1000, 1) };
    if (s1 && this.m0.server) {
      this.r.server.cpuS = round(s1.cpuS - this.m0.server.cpuS, 2);
      this.r.server.cpuPct = Math.round(this.r.server.cpuS / wallS * 100);
      this.r.server.rssBeforeKB = this.m0.server.rssKB;
      this.r.server.rssAfterKB = s1.rssKB;
    }
    const genS = (g1.user + g1.system - this.m0.gen.user - this.m0.gen.system) / 1e6;
    this.r.generator.cpuS = round(genS, 2);
    this.r.generator.cpuPct = Math.round(genS / wallS * 100);
    this.r.generator.rssKB = Math.round(process.memoryUsage().rss / 1024);
    const srvS = s1 && this.m0.server ? s1.cpuS - this.m0.server.cpuS : 0;
    const otherS = Math.max(0, machineBusyS() - this.m0.machine - genS - srvS);
    this.r.others = { ...(this.r.others ?? { waitedS: 0, cpuPctBefore: 0 }), cpuPct: Math.round(otherS / wallS * 100) };
    return this.pool.measure;
  }

  /** Work per server-CPU-second; null when the server's PIDs are unknown. */
  private perCpu(n: number): number {
    return this.r.server.cpuS > 0 ? Math.round(n / this.r.server.cpuS) : 0;
  }

  /** Other processes' CPU (% of a core) over `ms`: the machine's busy time less ours and the server's. */
  private async othersPct(ms: number): Promise<number> {
    const m0 = machineBusyS(), g0 = process.cpuUsage(), s0 = this.sampler.enabled ? sampleTree(this.sampler.roots).cpuS : 0;
    const t0 = performance.now();
    await sleep(ms);
    const g1 = process.cpuUsage(), s1 = this.sampler.enabled ? sampleTree(this.sampler.roots).cpuS : 0;
    const dt = (performance.now() - t0) / 1000;
    const other = machineBusyS() - m0 - (g1.user + g1.system - g0.user - g0.system) / 1e6 - (s1 - s0);
    return Math.max(0, Math.round(other / dt * 100));
  }

  /** Waits (at most maxS) until other processes use under 25% of a core, so they do not share the run. */
  async waitQuiet(maxS: number): Promise<void> {
    const t0 = performance.now();
    let pct = await this.othersPct(1000);
    if (pct > 25 && maxS > 0) {
      this.setPhase('wait quiet', maxS, () => (performance.now() - t0) / 1000);
      while (pct > 25 && performance.now() - t0 < maxS * 1000) pct = await this.othersPct(2000);
    }
    this.r.others = { cpuPct: 0, waitedS: round((performance.now() - t0) / 1000, 1), cpuPctBefore: pct };
  }

  async probeVersion(live: LiveTarget): Promise<string> {
    const { XmppClient } = await import('./client.ts');
    const c = new XmppClient({ host: live.endpoint.host, port: live.endpoint.port, domain: live.endpoint.domain, username: 'u1', password: this.r.options.password, mechanism: 'PLAIN', resource: 'probe' });
    try {
      await c.login();
      const v = await c.iq("<query xmlns='jabber:iq:version'/>", 'get', live.endpoint.domain);
      const name = /<name>([^<]*)<\/name>/.exec(v)?.[1], ver = /<version>([^<]*)<\/version>/.exec(v)?.[1];
      return name ? `${name} ${ver ?? ''}`.trim() : '';
    } finally { await c.close(); }
  }

  /** Logs users in, `concurrency` at a time in total, spread over the workers. */
  private async loginAll(users: number[], concurrency: number, hold: boolean, presence: boolean, phase: string): Promise<{ ok: number; failed: number }> {
    const W = this.pool.size;
    const mine = (i: number) => users.filter((_, k) => k % W === i);
    const base = this.pool.whole.logins + this.pool.whole.loginFails;
    this.setPhase(phase, users.length, () => this.pool.whole.logins + this.pool.whole.loginFails - base);
    const acks = await this.pool.all((i) => {
      const u = mine(i);
      return u.length ? { op: 'login', users: u, concurrency: Math.max(1, share(concurrency, W, i)), hold, presence } : null;
    });
    const ok = acks.reduce((s, a) => s + ((a.ok as number) ?? 0), 0);
    return { ok, failed: users.length - ok };
  }

  async login(o: BenchOptions): Promise<void> {
    if (/^(SCRAM|HT-)/i.test(o.mechanism) && o.scramWarmup) {
      // Returning clients know their salted password (or, with FAST, hold a token); computing it is
      // the client's cost, not the server's, and would otherwise eat the CPU the server needs on a
      // small machine.
      const users = range(1, o.clients), W = this.pool.size;
      this.setPhase('scram warm-up', 1, () => 0);
      const acks = await this.pool.all((i) => ({ op: 'scram-warm', users: users.filter((_, k) => k % W === i), concurrency: Math.max(1, share(o.concurrency, W, i)) }));
      const failed = acks.reduce((s, a) => s + ((a.failed as number) ?? 0), 0);
      if (failed) this.r.errors.push(`SCRAM warm-up: ${failed} clients failed`);
    }
    await sleep(500);
    this.beginMeasure();
    const { ok, failed } = await this.loginAll(range(1, o.clients), o.concurrency, false, false, 'login');
    await sleep(300); // let the last closes reach the server
    const m = this.endMeasure();
    this.r.metrics = {
      logins: ok, failed, loginsPerS: round(ok / this.r.wallS, 1), loginsPerServerCpuS: this.perCpu(ok),
    };
    this.r.loginLatency = percentilesMs(m.login);
    if (m.tls.n) this.r.tlsLatency = percentilesMs(m.tls);
  }

  async idle(o: BenchOptions): Promise<void> {
    await sleep(1000);
    const genRss0 = process.memoryUsage().rss;
    this.beginMeasure();
    const { ok, failed } = await this.loginAll(range(1, o.clients), o.concurrency, true, o.presence, 'login');
    const loginS = (performance.now() - this.t0) / 1000;
    this.setPhase('hold', o.settleS, () => 0);
    await sleep(o.settleS * 1000);
    const m = this.endMeasure();
    const delta = this.r.server.rssAfterKB - this.r.server.rssBeforeKB;
    this.r.metrics = {
      sessions: ok, failed, closedUnexpectedly: m.closedUnexpectedly, kbPerSession: ok ? round(delta / ok, 1) : 0,
      serverRssDeltaKB: delta, loginsPerServerCpuS: this.perCpu(ok),
      generatorKbPerSession: ok ? round((process.memoryUsage().rss - genRss0) / 1024 / ok, 1) : 0,
      loginPhaseS: round(loginS, 1),
    };
    this.r.loginLatency = percentilesMs(m.login);
    if (m.tls.n) this.r.tlsLatency = percentilesMs(m.tls);
  }

  private pairsOf(o: BenchOptions, firstUser = 1): Array<Array<[number, number]>> {
    const W = this.pool.size;
    const per: Array<Array<[number, number]>> = Array.from({ length: W }, () => []);
    for (let p = 0; p < o.pairs; p++) per[p % W].push([firstUser + 2 * p, firstUser + 2 * p + 1]);
    return per;
  }

  /** Both members of a pair live in the same worker, so its latency is read on one clock. */
  private async loginPairs(o: BenchOptions, per: Array<Array<[number, number]>>): Promise<void> {
    const W = this.pool.size;
    const base = this.pool.whole.logins;
    this.setPhase('connect', o.pairs * 2, () => this.pool.whole.logins - base);
    const acks = await this.pool.all((i) => per[i].length ? { op: 'login', users: per[i].flat(), concurrency: Math.max(1, share(o.concurrency, W, i)), hold: true, presence: o.presence } : null);
    const failed = acks.reduce((s, a) => s + ((a.failed as number) ?? 0), 0);
    if (failed) throw new Error(`${failed} of ${o.pairs * 2} chat clients could not log in: ${this.pool.whole.errors.slice(0, 3).join('; ')}`);
  }

  /** Stops senders, then waits for what each worker should still receive. */
  private async stopAndDrain(o: BenchOptions, expectPerWorker: (sentTotal: number, i: number, sentHere: number) => number): Promise<{ sent: number; recv: number }> {
    const stopped = await this.pool.all(() => ({ op: 'stop' }));
    const sent = stopped.reduce((s, a) => s + (a.sent as number), 0);
    this.setPhase('drain', 1, () => 0);
    const drained = await this.pool.all((i) => ({ op: 'drain', expect: expectPerWorker(sent, i, stopped[i].sent as number), drainMs: o.drainS * 1000 }));
    return { sent, recv: drained.reduce((s, a) => s + (a.recv as number), 0) };
  }

  async chat(o: BenchOptions): Promise<void> {
    const per = this.pairsOf(o);
    await this.loginPairs(o, per);
    await sleep(1000);
    this.beginMeasure();
    const start = performance.now();
    this.setPhase(o.rate ? 'open loop' : 'closed loop', o.durationS, () => Math.min(o.durationS, (performance.now() - start) / 1000));
    await this.pool.all((i) => ({
      op: 'chat', pairs: per[i], mode: o.rate ? 'open' : 'closed', inflight: o.inflight,
      rate: o.rate * per[i].length / o.pairs, durationMs: o.durationS * 1000,
    }));
    await sleep(o.durationS * 1000);
    const { sent, recv } = await this.stopAndDrain(o, (_t, _i, here) => here);
    const m = this.endMeasure();
    this.r.metrics = {
      sent, delivered: recv, lost: sent - recv, msgPerS: Math.round(recv / this.r.wallS),
      msgPerServerCpuS: this.perCpu(recv), offeredPerS: o.rate,
      genCpuPerKMsg: recv ? round(this.r.generator.cpuS / recv * 1e6, 2) : 0, // ms per 1000
    };
    this.r.latency = percentilesMs(m.lat);
  }

  async muc(o: BenchOptions): Promise<void> {
    const W = this.pool.size;
    const users = range(1, o.occupants);
    const owner = (u: number) => (u - 1) % W;
    const { failed } = await this.loginAll(users, o.concurrency, true, false, 'connect');
    if (failed) throw new Error(`${failed} of ${o.occupants} occupants could not log in: ${this.pool.whole.errors.slice(0, 3).join('; ')}`);
    const probe = await this.pool.send(0, { op: 'muc-probe' });
    if (!probe.service) {
      this.r.skipped = `skipped: ${this.r.target.name} has no MUC service (${probe.reason as string})`;
      return;
    }
    const room = `bench-${Date.now().toString(36)}@${probe.service as string}`;
    this.setPhase('join', o.occupants, () => 0);
    await this.pool.send(owner(1), { op: 'muc-join', room, users: [1], size: o.occupants }); // the creator first
    await this.pool.all((i) => ({ op: 'muc-join', room, users: users.filter((u) => u !== 1 && owner(u) === i), size: o.occupants }));
    await sleep(1000);
    this.beginMeasure();
    const start = performance.now();
    this.setPhase('group chat', o.durationS, () => Math.min(o.durationS, (performance.now() - start) / 1000));
    const senders = range(1, Math.min(o.senders, o.occupants));
    await this.pool.all((i) => ({ op: 'muc', room, senders: senders.filter((u) => owner(u) === i), inflight: o.inflight, durationMs: o.durationS * 1000, occupants: o.occupants }));
    await sleep(o.durationS * 1000);
    const here = (i: number) => users.filter((u) => owner(u) === i).length;
    const { sent, recv } = await this.stopAndDrain(o, (total, i) => total * here(i));
    const m = this.endMeasure();
    this.r.metrics = {
      occupants: o.occupants, senders: senders.length, sent, deliveries: recv, expected: sent * o.occupants,
      lost: sent * o.occupants - recv, deliveriesPerS: Math.round(recv / this.r.wallS), deliveriesPerServerCpuS: this.perCpu(recv),
    };
    this.r.latency = percentilesMs(m.lat);
  }

  async soak(o: BenchOptions): Promise<void> {
    const per = this.pairsOf(o);
    await this.loginPairs(o, per);
    const idleUsers = range(2 * o.pairs + 1, o.clients);
    const churnUsers = range(2 * o.pairs + o.clients + 1, 50);
    const { failed } = await this.loginAll(idleUsers, o.concurrency, true, o.presence, 'idle sessions');
    if (failed) this.r.errors.push(`${failed} idle sessions failed to log in`);
    const W = this.pool.size;
    const rate = o.rate || 1000;
    this.beginMeasure();
    const start = performance.now();
    this.setPhase('soak', o.durationS, () => Math.min(o.durationS, (performance.now() - start) / 1000));
    await this.pool.all((i) => ({ op: 'chat', pairs: per[i], mode: 'open', inflight: 0, rate: rate * per[i].length / o.pairs, durationMs: o.durationS * 1000 }));
    await this.pool.all((i) => ({ op: 'churn', users: churnUsers.filter((_, k) => k % W === i), rate: o.churn / W, durationMs: o.durationS * 1000 }));
    await sleep(o.durationS * 1000);
    const { sent, recv } = await this.stopAndDrain(o, (_t, _i, h) => h);
    const m = this.endMeasure();
    const tl = this.r.timeline.filter((p) => p.phase === 'soak' && p.serverRssKB > 0);
    const rssFirst = tl[0]?.serverRssKB ?? 0, rssLast = tl.at(-1)?.serverRssKB ?? 0;
    this.r.metrics = {
      idleSessions: o.clients - failed, pairs: o.pairs, offeredPerS: rate, sent, delivered: recv, lost: sent - recv,
      msgPerServerCpuS: this.perCpu(recv), churnLogins: m.logins, churnFailures: m.loginFails,
      rssGrowthKBPerMin: tl.length > 1 ? Math.round((rssLast - rssFirst) / ((tl.at(-1)!.t - tl[0].t) / 60)) : 0,
    };
    this.r.latency = percentilesMs(m.lat);
    if (m.login.n) this.r.loginLatency = percentilesMs(m.login);
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
