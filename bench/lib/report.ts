// Reports: JSON for machines, Markdown with the targets of targets.md marked met / not met, and a
// self-contained HTML page whose charts are inline SVG (it must open with no network).
import os from 'node:os';
import { pbkdf2Sync } from 'node:crypto';
import type { RunResult, TimelinePoint } from './runner.ts';
import type { Percentiles } from './histogram.ts';

export interface Report {
  tool: 'chorus bench';
  command: string;
  createdAt: string;
  machine: { cpu: string; cores: number; memGiB: number; os: string; node: string; loadAvg: number[]; pbkdf2PerCoreS?: number };
  scenario: string;
  rounds: number;
  runs: RunResult[];
}

export function machineInfo(calibrate = true): Report['machine'] {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    os: `${os.type()} ${os.release()}`, node: process.version, loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    pbkdf2PerCoreS: calibrate ? calibration() : undefined,
  };
}

/** A machine-speed yardstick (PBKDF2-SHA-256, 4096 iterations, one core, 0.5 s), so figures taken on
 *  different machines of the same kind can be set side by side. */
export function calibration(ms = 500): number {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) { pbkdf2Sync('pw', 'salt', 4096, 32, 'sha256'); n++; }
  return Math.round(n / ((performance.now() - t0) / 1000));
}

// --- figures shown per scenario ---

interface Figure { label: string; get(r: RunResult): number | undefined; unit?: string; better?: 'higher' | 'lower' }

const lat = (k: keyof Percentiles, which: 'latency' | 'loginLatency' | 'tlsLatency' = 'latency') =>
  (r: RunResult) => r[which]?.[k];

function figures(scenario: string): Figure[] {
  const common: Figure[] = [
    { label: 'server CPU (s)', get: (r) => r.server.measured ? r.server.cpuS : undefined },
    { label: 'server CPU (% of a core)', get: (r) => r.server.measured ? r.server.cpuPct : undefined },
    { label: 'server RSS before → after (MB)', get: () => undefined },
    { label: 'generator CPU (% of a core)', get: (r) => r.generator.cpuPct },
    { label: 'other processes\' CPU (% of a core)', get: (r) => r.others?.cpuPct },
    { label: 'wall time measured (s)', get: (r) => r.wallS },
  ];
  const m = (k: string) => (r: RunResult) => r.metrics[k];
  const latency: Figure[] = (['p50', 'p99', 'p999', 'max'] as const).map((q) => (
    { label: `latency ${q === 'p999' ? 'p99.9' : q} (ms)`, get: lat(q), better: 'lower' as const }));
  switch (scenario) {
    case 'chat': return [
      { label: 'delivered msg per server-CPU-s', get: m('msgPerServerCpuS'), better: 'higher' },
      { label: 'delivered msg/s (wall)', get: m('msgPerS'), better: 'higher' },
      { label: 'sent', get: m('sent') }, { label: 'delivered', get: m('delivered') },
      { label: 'lost', get: m('lost'), better: 'lower' },
      ...latency,
      { label: 'generator CPU ms per 1000 msg', get: m('genCpuPerKMsg') },
      ...common,
    ];
    case 'muc': return [
      { label: 'deliveries per server-CPU-s', get: m('deliveriesPerServerCpuS'), better: 'higher' },
      { label: 'deliveries/s (wall)', get: m('deliveriesPerS'), better: 'higher' },
      { label: 'occupants', get: m('occupants') }, { label: 'senders', get: m('senders') },
      { label: 'messages sent', get: m('sent') }, { label: 'deliveries', get: m('deliveries') },
      { label: 'lost deliveries', get: m('lost'), better: 'lower' },
      ...latency,
      ...common,
    ];
    case 'login': return [
      { label: 'logins per server-CPU-s', get: m('loginsPerServerCpuS'), better: 'higher' },
      { label: 'logins/s (wall)', get: m('loginsPerS'), better: 'higher' },
      { label: 'logins', get: m('logins') }, { label: 'failed', get: m('failed'), better: 'lower' },
      { label: 'login p50 (ms)', get: lat('p50', 'loginLatency'), better: 'lower' },
      { label: 'login p99 (ms)', get: lat('p99', 'loginLatency'), better: 'lower' },
      { label: 'login max (ms)', get: lat('max', 'loginLatency'), better: 'lower' },
      { label: 'TLS handshake p50 (ms)', get: lat('p50', 'tlsLatency'), better: 'lower' },
      { label: 'TLS handshake p99 (ms)', get: lat('p99', 'tlsLatency'), better: 'lower' },
      ...common,
    ];
    case 'idle': return [
      { label: 'server RSS per session (KB)', get: m('kbPerSession'), better: 'lower' },
      { label: 'sessions held', get: m('sessions') }, { label: 'failed', get: m('failed'), better: 'lower' },
      { label: 'dropped while idle', get: m('closedUnexpectedly'), better: 'lower' },
      { label: 'server RSS growth (MB)', get: (r) => round1(r.metrics.serverRssDeltaKB / 1024) },
      { label: 'logins per server-CPU-s', get: m('loginsPerServerCpuS'), better: 'higher' },
      { label: 'generator RSS per session (KB)', get: m('generatorKbPerSession') },
      { label: 'login p99 (ms)', get: lat('p99', 'loginLatency'), better: 'lower' },
      ...common,
    ];
    default: return [
      { label: 'delivered msg per server-CPU-s', get: m('msgPerServerCpuS'), better: 'higher' },
      { label: 'offered msg/s', get: m('offeredPerS') }, { label: 'lost', get: m('lost'), better: 'lower' },
      { label: 'latency p50 (ms)', get: lat('p50'), better: 'lower' },
      { label: 'latency p99 (ms)', get: lat('p99'), better: 'lower' },
      { label: 'latency max (ms)', get: lat('max'), better: 'lower' },
      { label: 'idle sessions', get: m('idleSessions') },
      { label: 'churn logins', get: m('churnLogins') }, { label: 'churn failures', get: m('churnFailures'), better: 'lower' },
      { label: 'server RSS growth (KB/min)', get: m('rssGrowthKBPerMin'), better: 'lower' },
      ...common,
    ];
  }
}

// --- targets (targets.md) ---

export interface TargetCheck { name: string; met: boolean | null; detail: string }

/** The targets of targets.md that this run speaks to, each met / not met (null = not applicable). */
export function checkTargets(r: RunResult, peers: RunResult[] = []): TargetCheck[] {
  const o = r.options, m = r.metrics, out: TargetCheck[] = [];
  if (r.skipped || r.error) return out;
  const measured = r.server.measured;
  const fmt = (n: number | undefined) => n === undefined ? '–' : n.toLocaleString('en-US');
  if (r.scenario === 'chat' && !o.rate) {
    out.push({ name: 'Chat: ≥ 13,000 delivered msg per server-CPU-s, 0 lost', met: measured ? m.msgPerServerCpuS >= 13000 && m.lost === 0 : null,
      detail: `${fmt(m.msgPerServerCpuS)} msg/CPU-s, ${fmt(m.lost)} lost` });
  }
  if (r.scenario === 'chat' && o.rate) {
    const p99 = r.latency?.p99 ?? Infinity;
    const ej = peers.find((p) => p !== r && isAnchor(p, 'ejabberd') && p.scenario === 'chat' && p.options.rate === o.rate && !p.error);
    const note = o.rate === 2000 && o.pairs === 200 ? '' : ` (target is for 2000 msg/s over 200 pairs; this run: ${o.rate} over ${o.pairs})`;
    out.push({ name: 'Latency: p99 ≤ 5 ms at 2000 msg/s offered (200 pairs), below ejabberd when it is in the same run',
      met: p99 <= 5 && (!ej || p99 < (ej.latency?.p99 ?? Infinity)) && m.lost === 0,
      detail: `p99 ${p99} ms, ${fmt(m.lost)} lost${ej ? `; ejabberd p99 ${ej.latency?.p99} ms` : ''}${note}` });
  }
  if (r.scenario === 'muc') {
    out.push({ name: 'Group chat: ≥ 35,000 deliveries per server-CPU-s, 0 lost', met: measured ? m.deliveriesPerServerCpuS >= 35000 && m.lost === 0 : null,
      detail: `${fmt(m.deliveriesPerServerCpuS)} deliveries/CPU-s, ${fmt(m.lost)} lost` });
  }
  if (r.scenario === 'login') {
    const scram = /^SCRAM/i.test(o.mechanism);
    const need = o.tls === 'none' ? 600 : 380;
    out.push({ name: `Login: ≥ ${need} SCRAM logins per server-CPU-s${o.tls === 'none' ? ' without TLS' : ' with STARTTLS'}${o.tls === 'direct' ? ' (this run: Direct TLS)' : ''}`,
      met: scram && measured ? m.loginsPerServerCpuS >= need && m.failed === 0 : null,
      detail: scram ? `${fmt(m.loginsPerServerCpuS)} logins/CPU-s (${o.mechanism}${o.tls === 'none' ? '' : ', ' + o.tls})` : `${o.mechanism} run (the target is for SCRAM); ${fmt(m.loginsPerServerCpuS)} logins/CPU-s` });
  }
  if (r.scenario === 'idle') {
    out.push({ name: 'Idle memory: ≤ 18 KB server RSS per plain-TCP session', met: o.tls === 'none' && measured ? m.kbPerSession <= 18 && m.failed === 0 : null,
      detail: `${fmt(m.kbPerSession)} KB/session${o.tls === 'none' ? '' : ` (${o.tls}: reported apart, the target is for plain TCP)`}` });
  }
  out.push(...relativeTargets(r, peers));
  out.push(...coresTarget(r, peers));
  return out;
}

/** "Throughput with 2 schedulers ≥ 1.6× that with 1": a Chorus run with more schedulers against the
 *  1-scheduler Chorus runs of the same report (same scenario and load), medians over rounds. */
function coresTarget(r: RunResult, peers: RunResult[]): TargetCheck[] {
  if (!r.target.chorus || !r.target.schedulers || r.target.schedulers < 2 || !['chat', 'muc'].includes(r.scenario)) return [];
  const o = r.options;
  const comparable = (p: RunResult) => p.target.chorus && !p.error && !p.skipped && p.scenario === r.scenario && p.options.rate === o.rate
    && p.options.pairs === o.pairs && p.options.inflight === o.inflight && p.options.tls === o.tls;
  const ones = peers.filter((p) => comparable(p) && p.target.schedulers === 1);
  if (!ones.length) return [];
  const mine = peers.filter((p) => comparable(p) && p.target.name === r.target.name);
  const k = r.scenario === 'chat' ? 'msgPerS' : 'deliveriesPerS', kc = r.scenario === 'chat' ? 'msgPerServerCpuS' : 'deliveriesPerServerCpuS';
  const med = (rs: RunResult[], key: string) => median(rs.map((p) => p.metrics[key]))!;
  const a = med(mine, k), b = med(ones, k);
  const lost = mine.some((p) => p.metrics.lost);
  return [{
    name: `Cores: throughput with ${r.target.schedulers} schedulers ≥ 1.6× that with 1`,
    met: o.rate ? null : a >= 1.6 * b && !lost,
    detail: `${(a / b).toFixed(2)}× (${Math.round(a).toLocaleString('en-US')} vs ${Math.round(b).toLocaleString('en-US')} msg/s wall; per server-CPU-s ${(med(mine, kc) / med(ones, kc)).toFixed(2)}×)${o.rate ? '; open loop: throughput is the offered rate' : ''}`,
  }];
}

const ANCHOR_NAMES = ['prosody', 'ejabberd', 'jabberd2'];
function anchorOf(r: RunResult): string | undefined {
  const id = `${r.target.name} ${r.target.version}`.toLowerCase();
  return ANCHOR_NAMES.slice().reverse().find((a) => a === 'jabberd2' ? id.includes(a) : id.includes(a) && !id.includes('jabberd2'));
}
function isAnchor(r: RunResult, which?: string): boolean {
  const a = anchorOf(r);
  return which ? a === which : a !== undefined;
}

/**
 * The targets restated against the anchors measured in the same invocation (same machine, same
 * load generator): the absolute numbers of targets.md were derived from anchor figures taken with
 * another generator on a slower machine, so the relative form is the one that carries over.
 */
function relativeTargets(r: RunResult, peers: RunResult[]): TargetCheck[] {
  if (isAnchor(r) || !r.server.measured) return [];
  const same = peers.filter((p) => p !== r && isAnchor(p) && p.scenario === r.scenario && !p.error && !p.skipped && p.server.measured
    && p.options.rate === r.options.rate && p.options.tls === r.options.tls && p.options.mechanism === r.options.mechanism);
  if (!same.length) return [];
  const m = r.metrics, out: TargetCheck[] = [];
  // Each anchor's median over its rounds, then the best anchor (the most demanding comparison).
  const anchorMedians = (k: string, among = same): number[] => {
    const by = new Map<string, number[]>();
    for (const p of among) { const a = anchorOf(p)!; const x = p.metrics[k]; if (Number.isFinite(x)) by.set(a, [...(by.get(a) ?? []), x]); }
    return [...by.values()].map((xs) => median(xs)!).filter((x) => x !== undefined);
  };
  const best = (k: string, pick: (xs: number[]) => number = (xs) => Math.max(...xs)) => {
    const xs = anchorMedians(k);
    return xs.length ? pick(xs) : undefined;
  };
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  if (r.scenario === 'chat' && !r.options.rate) {
    const b = best('msgPerServerCpuS');
    if (b) out.push({ name: 'Chat, same run: ≥ 2× the best anchor\'s msg per server-CPU-s, 0 lost', met: m.msgPerServerCpuS >= 2 * b && m.lost === 0, detail: `${ratio(m.msgPerServerCpuS, b)} the best anchor (${b.toLocaleString('en-US')})` });
  }
  const ej = same.filter((p) => isAnchor(p, 'ejabberd'));
  if (r.scenario === 'muc' && ej.length) {
    const b = Math.max(...anchorMedians('deliveriesPerServerCpuS', ej));
    out.push({ name: 'Group chat, same run: ≥ 2× ejabberd\'s deliveries per server-CPU-s, 0 lost', met: m.deliveriesPerServerCpuS >= 2 * b && m.lost === 0, detail: `${ratio(m.deliveriesPerServerCpuS, b)} ejabberd (${b.toLocaleString('en-US')})` });
  }
  if (r.scenario === 'login' && ej.length && /^SCRAM/i.test(r.options.mechanism)) {
    const b = Math.max(...anchorMedians('loginsPerServerCpuS', ej));
    out.push({ name: 'Login, same run: ≥ 2× ejabberd\'s SCRAM logins per server-CPU-s', met: m.loginsPerServerCpuS >= 2 * b && m.failed === 0, detail: `${ratio(m.loginsPerServerCpuS, b)} ejabberd (${b})` });
  }
  const pr = same.filter((p) => isAnchor(p, 'prosody'));
  if (r.scenario === 'idle' && pr.length && r.options.tls === 'none') {
    const b = Math.min(...anchorMedians('kbPerSession', pr));
    out.push({ name: 'Idle memory, same run: ≤ ½ Prosody\'s RSS per session', met: m.kbPerSession <= b / 2 && m.failed === 0, detail: `${ratio(m.kbPerSession, b)} Prosody (${b} KB)` });
  }
  return out;
}

// --- anchors measured for targets.md, to check the tool against ---

interface Anchor { label: string; prosody: string; ejabberd: string }

export function anchorsFor(r: RunResult): Anchor[] {
  const o = r.options;
  switch (r.scenario) {
    case 'chat':
      if (o.rate) return [{ label: 'open loop 2000 msg/s over 200 pairs: p99', prosody: '~660–690 ms (saturated ~2,000 msg/s)', ejabberd: '~6–7.5 ms' }];
      if (o.inflight === 1) return [{ label: '50 pairs, 1 in flight: p99', prosody: '~85 ms', ejabberd: '~60–73 ms' }];
      return [
        { label: '200 pairs, 10 in flight: msg per server-CPU-s', prosody: '~4,100', ejabberd: '~6,400' },
        { label: '200 pairs, 10 in flight: msg/s (wall)', prosody: '~3,800', ejabberd: '~9,700' },
      ];
    case 'muc': return [{ label: '50 occupants, 5 senders, 5 in flight: deliveries per server-CPU-s', prosody: '~6,200', ejabberd: '~17,500' }];
    case 'login':
      if (/^SCRAM/i.test(o.mechanism)) {
        return o.tls === 'none'
          ? [{ label: 'SCRAM-SHA-1 (client caches salted password): logins per server-CPU-s', prosody: '~106–126', ejabberd: '~295–324' }]
          : [{ label: 'SCRAM-SHA-1 + STARTTLS: logins per server-CPU-s', prosody: '~81–89', ejabberd: '~191' }];
      }
      return [{ label: '2000 clients, 50 at a time, PLAIN: logins per server-CPU-s', prosody: '~87 (PBKDF2 10000)', ejabberd: '~48 (SCRAM 4096)' }];
    case 'idle': return [{ label: '5000 sessions: RSS per session', prosody: '~36.5 KB', ejabberd: '~70–375 KB' }];
    default: return [];
  }
}

// --- Markdown ---

function round1(x: number | undefined): number | undefined { return x === undefined || Number.isNaN(x) ? undefined : Math.round(x * 10) / 10; }

export function median(xs: number[]): number | undefined {
  const v = xs.filter((x) => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function fmtNum(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '–';
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  return String(Math.round(x * 100) / 100);
}

/** Runs grouped by target name, in first-seen order. */
export function byTarget(runs: RunResult[]): Map<string, RunResult[]> {
  const g = new Map<string, RunResult[]>();
  for (const r of runs) { const l = g.get(r.target.name); if (l) l.push(r); else g.set(r.target.name, [r]); }
  return g;
}

export function mdCell(s: string): string { return s.replace(/\|/g, '\\|').replace(/\n/g, ' '); }

function describeOptions(r: RunResult): string {
  const o = r.options;
  const tls = o.tls === 'none' ? 'plain TCP' : o.tls === 'starttls' ? 'STARTTLS' : 'Direct TLS';
  switch (r.scenario) {
    case 'login': return `${o.clients} clients, ${o.concurrency} at a time, ${o.mechanism}, ${tls}`;
    case 'idle': return `${o.clients} sessions held (${o.presence ? 'with' : 'without'} initial presence), ${o.concurrency} logins at a time, ${o.mechanism}, ${tls}`;
    case 'chat': return `${o.pairs} pairs, ${o.rate ? `open loop at ${o.rate} msg/s offered` : `closed loop, ${o.inflight} in flight per sender (both members of a pair send)`}, ${o.durationS} s, drain ${o.drainS} s, ${tls}`;
    case 'muc': return `one room, ${o.occupants} occupants, ${o.senders} senders, ${o.inflight} in flight each, ${o.durationS} s, ${tls}`;
    default: return `${o.durationS} s: ${o.pairs} chat pairs open loop at ${o.rate || 1000} msg/s, ${o.clients} idle sessions, ${o.churn} logins/s churn, ${tls}`;
  }
}

/** Warnings when the load generator, or the machine as a whole, may have limited a run. */
export function saturation(r: RunResult, cores: number): string[] {
  if (r.error || r.skipped || r.wallS <= 0) return [];
  const out: string[] = [];
  const g = r.generator;
  if (g.cpuPct > 80 * g.workers) out.push(`the load generator used ${g.cpuPct}% of a core over ${g.workers} threads: it may have been the bottleneck (try --workers)`);
  if (r.others && r.others.cpuPct > 25) out.push(`other processes used ${r.others.cpuPct}% of a core during the measured phase (${r.others.cpuPct + r.server.cpuPct + g.cpuPct}% with server and generator, of ${cores * 100}%): figures may be disturbed`);
  if (r.server.measured && r.server.cpuPct + g.cpuPct > 90 * cores) {
    out.push(`server (${r.server.cpuPct}%) and generator (${g.cpuPct}%) together used the whole machine (${cores} cores): wall-clock rates are machine-bound; compare per server-CPU-second`);
  }
  return out;
}

export function toMarkdown(rep: Report): string {
  const L: string[] = [];
  const groups = byTarget(rep.runs);
  const names = [...groups.keys()];
  const first = rep.runs[0];
  L.push(`# chorus bench: ${rep.scenario}`, '');
  L.push(`- When: ${rep.createdAt}`);
  L.push(`- Command: \`${rep.command}\``);
  L.push(`- Machine: ${rep.machine.cpu}, ${rep.machine.cores} cores, ${rep.machine.memGiB} GiB, ${rep.machine.os}, Node ${rep.machine.node}, load average before ${rep.machine.loadAvg.join(' / ')}${rep.machine.pbkdf2PerCoreS ? `, speed yardstick ${rep.machine.pbkdf2PerCoreS} PBKDF2-SHA-256-4096/core-s` : ''}`);
  if (first) L.push(`- Load: ${describeOptions(first)}; ${first.generator.workers} load worker threads`);
  for (const [name, rs] of groups) {
    const t = rs[0].target;
    L.push(`- Target **${name}**: ${t.version || 'version unknown'} at ${t.host}:${t.port}, domain ${t.domain}, server PIDs ${t.pids.join(', ') || 'not given (no server-side figures)'}`);
  }
  if (rep.rounds > 1) L.push(`- ${rep.rounds} rounds, targets alternating; figures are medians over rounds`);
  L.push('');
  for (const r of rep.runs) {
    if (r.skipped) L.push(`> **${r.target.name}**: ${r.skipped}`, '');
    if (r.error) L.push(`> **${r.target.name}**: run failed: ${mdCell(r.error)}`, '');
    for (const w of saturation(r, rep.machine.cores)) L.push(`> **${r.target.name}**: ${w}`, '');
  }
  const figs = figures(rep.scenario);
  const ok = (rs: RunResult[]) => rs.filter((r) => !r.skipped && !r.error);
  const ratio = names.length === 2;
  L.push('## Results', '');
  L.push(`| figure | ${names.map(mdCell).join(' | ')} |${ratio ? ` ${mdCell(names[1])} / ${mdCell(names[0])} |` : ''}`);
  L.push(`|---|${names.map(() => '---:').join('|')}|${ratio ? '---:|' : ''}`);
  for (const f of figs) {
    let vals: Array<number | undefined>;
    if (f.label.startsWith('server RSS before')) {
      const cells = names.map((n) => {
        const rs = ok(groups.get(n)!);
        const b = median(rs.map((r) => r.server.rssBeforeKB)), a = median(rs.map((r) => r.server.rssAfterKB));
        return rs.length && rs[0].server.measured ? `${fmtNum(round1((b ?? 0) / 1024))} → ${fmtNum(round1((a ?? 0) / 1024))}` : '–';
      });
      L.push(`| ${f.label} | ${cells.join(' | ')} |${ratio ? ' |' : ''}`);
      continue;
    }
    vals = names.map((n) => median(ok(groups.get(n)!).map(f.get).filter((x): x is number => x !== undefined)));
    if (vals.every((v) => v === undefined)) continue;
    const rat = ratio && vals[0] && vals[1] !== undefined ? ` ${(vals[1]! / vals[0]!).toFixed(2)}× |` : ratio ? ' – |' : '';
    L.push(`| ${f.label} | ${vals.map(fmtNum).join(' | ')} |${rat}`);
  }
  L.push('');
  const checks = names.map((n) => ok(groups.get(n)!).map((r) => checkTargets(r, rep.runs)));
  const targetNames = [...new Set(checks.flat(2).map((c) => c.name))];
  if (targetNames.length) {
    L.push('## Targets (shared/notes/targets.md)', '');
    L.push(`| target | ${names.map(mdCell).join(' | ')} |`);
    L.push(`|---|${names.map(() => '---').join('|')}|`);
    for (const tn of targetNames) {
      const cells = checks.map((perRun) => {
        const cs = perRun.flat().filter((c) => c.name === tn);
        if (!cs.length) return '–';
        const mark = (c: TargetCheck) => c.met === null ? 'n/a' : c.met ? '**met**' : '**not met**';
        return cs.map((c) => `${mark(c)}: ${mdCell(c.detail)}`).join('<br>');
      });
      L.push(`| ${mdCell(tn)} | ${cells.join(' | ')} |`);
    }
    L.push('');
  }
  const anchors = first ? anchorsFor(first) : [];
  if (anchors.length) {
    L.push('## Anchor figures (targets.md: measured on this kind of machine)', '');
    L.push('| figure | Prosody | ejabberd |', '|---|---|---|');
    for (const a of anchors) L.push(`| ${mdCell(a.label)} | ${a.prosody} | ${a.ejabberd} |`);
    L.push('');
  }
  if (rep.rounds > 1) {
    L.push('## Rounds', '', `| round | target | ${mdCell(figs[0].label)} | server CPU s | lost / failed | other processes' CPU % | machine speed before the run |`, '|---:|---|---:|---:|---:|---:|---:|');
    rep.runs.forEach((r, i) => {
      const key = figs[0].get(r);
      L.push(`| ${Math.floor(i / names.length) + 1} | ${mdCell(r.target.name)} | ${fmtNum(key)} | ${fmtNum(r.server.cpuS)} | ${fmtNum(r.metrics.lost ?? r.metrics.failed)} | ${fmtNum(r.others?.cpuPct)} | ${fmtNum(r.speedBefore)} |`);
    });
    L.push('');
  }
  const speeds = rep.runs.map((r) => r.speedBefore).filter((x): x is number => !!x);
  if (speeds.length > 1 && Math.max(...speeds) > 1.25 * Math.min(...speeds)) {
    L.push(`> The machine's speed changed during this report: the yardstick (PBKDF2-SHA-256-4096 per core-second, measured before each run) went from ${Math.min(...speeds)} to ${Math.max(...speeds)}. Figures per CPU-second move with it; compare targets within a round (they ran next to each other).`, '');
  }
  const errs = rep.runs.flatMap((r) => r.errors.map((e) => `${r.target.name}: ${e}`));
  if (errs.length) { L.push('## Errors seen (first few)', ''); for (const e of errs.slice(0, 10)) L.push(`- ${mdCell(e)}`); L.push(''); }
  L.push(`Work per server-CPU-second divides by the server's own user+system CPU (all threads and child processes, from /proc) during the measured phase, so it stays comparable when the load generator shares the machine; wall-clock rates do not.`);
  return L.join('\n') + '\n';
}

// --- HTML with inline SVG ---

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function niceStep(range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

export interface Series { name: string; color: string; points: Array<[number, number]>; band?: { from: number; to: number } }

/** A line chart as an SVG string: axes, gridlines, legend. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], w = 640, h = 260): string {
  const pad = { l: 64, r: 16, t: 28, b: 40 };
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax0 = Math.max(0, ...all.map((p) => p[1]));
  const step = niceStep(yMax0 || 1, 5);
  const yMax = Math.max(step, Math.ceil(yMax0 / step) * step);
  const xStep = niceStep(xMax, 8);
  const X = (x: number) => pad.l + (x / xMax) * (w - pad.l - pad.r);
  const Y = (y: number) => h - pad.b - (y / yMax) * (h - pad.t - pad.b);
  const o: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">`];
  o.push(`<text x="${w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (let y = 0; y <= yMax + 1e-9; y += step) {
    o.push(`<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${pad.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${esc(fmtNum(y))}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    o.push(`<text x="${X(x).toFixed(1)}" y="${h - pad.b + 14}" text-anchor="middle" font-size="11">${esc(fmtNum(x))}</text>`);
  }
  o.push(`<line x1="${pad.l}" x2="${pad.l}" y1="${pad.t}" y2="${h - pad.b}" stroke="#333"/>`);
  o.push(`<line x1="${pad.l}" x2="${w - pad.r}" y1="${h - pad.b}" y2="${h - pad.b}" stroke="#333"/>`);
  o.push(`<text x="${(pad.l + w - pad.r) / 2}" y="${h - 6}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`);
  o.push(`<text x="14" y="${(pad.t + h - pad.b) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(pad.t + h - pad.b) / 2})">${esc(yLabel)}</text>`);
  for (const s of series) {
    // The measured phase, lightly shaded in the series' colour.
    if (s.band) o.push(`<rect x="${X(s.band.from).toFixed(1)}" y="${pad.t}" width="${Math.max(0, X(s.band.to) - X(s.band.from)).toFixed(1)}" height="${h - pad.t - pad.b}" fill="${s.color}" fill-opacity="0.07"/>`);
  }
  series.forEach((s, i) => {
    if (s.points.length) {
      const d = s.points.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
      o.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`);
    }
    o.push(`<rect x="${pad.l + 8 + i * 150}" y="${pad.t + 2}" width="10" height="10" fill="${s.color}"/><text x="${pad.l + 22 + i * 150}" y="${pad.t + 11}" font-size="11">${esc(s.name)}</text>`);
  });
  o.push('</svg>');
  return o.join('');
}

/** Grouped bars (one group per label, one bar per series) as an SVG string. */
export function barChart(title: string, yLabel: string, labels: string[], series: Array<{ name: string; color: string; values: number[] }>, w = 640, h = 260): string {
  const pad = { l: 64, r: 16, t: 28, b: 40 };
  // 18% headroom: the legend sits at the top and must not cover the tallest bar's label.
  const yMax0 = 1.18 * Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite)));
  const step = niceStep(yMax0 || 1, 5);
  const yMax = Math.max(step, Math.ceil(yMax0 / step) * step);
  const Y = (y: number) => h - pad.b - (y / yMax) * (h - pad.t - pad.b);
  const gw = (w - pad.l - pad.r) / Math.max(1, labels.length);
  const bw = Math.min(40, (gw - 12) / Math.max(1, series.length));
  const o: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">`];
  o.push(`<text x="${w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`);
  for (let y = 0; y <= yMax + 1e-9; y += step) {
    o.push(`<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#ddd"/>`);
    o.push(`<text x="${pad.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${esc(fmtNum(y))}</text>`);
  }
  labels.forEach((lab, g) => {
    const x0 = pad.l + g * gw + (gw - bw * series.length) / 2;
    series.forEach((s, i) => {
      const v = s.values[g];
      if (!Number.isFinite(v)) return;
      const x = x0 + i * bw;
      o.push(`<rect x="${x.toFixed(1)}" y="${Y(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(Y(0) - Y(v)).toFixed(1)}" fill="${s.color}"><title>${esc(`${s.name} ${lab}: ${fmtNum(v)}`)}</title></rect>`);
      o.push(`<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${(Y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${esc(fmtNum(v))}</text>`);
    });
    o.push(`<text x="${(pad.l + g * gw + gw / 2).toFixed(1)}" y="${h - pad.b + 14}" text-anchor="middle" font-size="11">${esc(lab)}</text>`);
  });
  o.push(`<line x1="${pad.l}" x2="${w - pad.r}" y1="${h - pad.b}" y2="${h - pad.b}" stroke="#333"/>`);
  o.push(`<text x="14" y="${(pad.t + h - pad.b) / 2}" text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(pad.t + h - pad.b) / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => o.push(`<rect x="${pad.l + 8 + i * 150}" y="${pad.t + 2}" width="10" height="10" fill="${s.color}"/><text x="${pad.l + 22 + i * 150}" y="${pad.t + 11}" font-size="11">${esc(s.name)}</text>`));
  o.push('</svg>');
  return o.join('');
}

/** Markdown (our own output: tables, lists, headings, quotes, inline code/bold) to HTML. */
export function mdToHtml(md: string): string {
  const inline = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>').replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>').replace(/&lt;br&gt;/g, '<br>');
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith('| ')) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i].startsWith('|')) {
        rows.push(lines[i].slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|')));
        i++;
      }
      i--;
      const [head, , ...body] = rows;
      out.push('<table><thead><tr>' + head.map((c) => `<th>${inline(c)}</th>`).join('') + '</tr></thead><tbody>' +
        body.map((r) => '<tr>' + r.map((c) => `<td>${inline(c)}</td>`).join('') + '</tr>').join('') + '</tbody></table>');
    } else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('# ')) out.push(`<h1>${inline(l.slice(2))}</h1>`);
    else if (l.startsWith('- ')) {
      const items: string[] = [];
      while (i < lines.length && lines[i].startsWith('- ')) { items.push(`<li>${inline(lines[i].slice(2))}</li>`); i++; }
      i--;
      out.push(`<ul>${items.join('')}</ul>`);
    } else if (l.startsWith('> ')) out.push(`<blockquote>${inline(l.slice(2))}</blockquote>`);
    else if (l.trim()) out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}

export function toHtml(rep: Report, markdown = toMarkdown(rep)): string {
  const runs = rep.runs.filter((r) => !r.skipped && !r.error);
  const label = (r: RunResult, i: number) => rep.rounds > 1 ? `${r.target.name} #${Math.floor(i / byTarget(rep.runs).size) + 1}` : r.target.name;
  const colorOf = new Map([...byTarget(rep.runs).keys()].map((n, i) => [n, COLORS[i % COLORS.length]]));
  const series = (pick: (p: TimelinePoint) => number, filter: (p: TimelinePoint) => boolean = () => true): Series[] =>
    runs.map((r, i) => ({ name: label(r, rep.runs.indexOf(r)), color: colorOf.get(r.target.name) ?? COLORS[i % COLORS.length], points: r.timeline.filter(filter).map((p) => [p.t, pick(p)] as [number, number]), band: r.window }));
  const charts: string[] = [];
  const isLogin = rep.scenario === 'login' || rep.scenario === 'idle';
  charts.push(isLogin
    ? lineChart('Logins over time', 'seconds', 'logins/s', series((p) => p.loginsPerS))
    : lineChart('Throughput over time (delivered)', 'seconds', 'messages/s', series((p) => p.msgPerS)));
  if (!isLogin) charts.push(lineChart('Latency p99 per second', 'seconds', 'ms', series((p) => p.p99, (p) => p.msgPerS > 0)));
  const pct = (which: 'latency' | 'loginLatency') => runs.some((r) => r[which]) ? barChart(
    which === 'latency' ? 'Message latency percentiles (whole measured phase)' : 'Login latency percentiles', 'ms', ['p50', 'p90', 'p99', 'p99.9', 'max'],
    runs.map((r, i) => { const q = r[which]; return { name: label(r, rep.runs.indexOf(r)), color: colorOf.get(r.target.name) ?? COLORS[i % COLORS.length], values: q ? [q.p50, q.p90, q.p99, q.p999, q.max] : [] }; })) : '';
  charts.push(pct(isLogin ? 'loginLatency' : 'latency'));
  if (runs.some((r) => r.server.measured)) {
    charts.push(lineChart('Server memory (RSS, process tree)', 'seconds', 'MB', series((p) => Math.round(p.serverRssKB / 102.4) / 10, (p) => p.serverRssKB > 0)));
    charts.push(lineChart('Server CPU', 'seconds', '% of one core', series((p) => p.serverCpuPct)));
  }
  charts.push(lineChart('Load generator CPU', 'seconds', '% of one core', series((p) => p.genCpuPct)));
  if (runs.some((r) => r.timeline.some((p) => p.otherCpuPct !== undefined))) charts.push(lineChart('Other processes\' CPU (not server, not generator)', 'seconds', '% of one core', series((p) => p.otherCpuPct ?? 0)));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chorus bench: ${esc(rep.scenario)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}code{background:#f3f3f3;padding:1px 4px;word-break:break-all}
blockquote{border-left:4px solid #e0a000;margin:8px 0;padding:4px 12px;background:#fff8e0}
.charts svg{display:block;margin:12px 0;max-width:100%;height:auto;background:#fff;border:1px solid #eee}
</style></head><body>
${mdToHtml(markdown)}
<h2>Charts</h2>
<p>Shaded: the measured phase of each run (before it: connecting; after it: closing).</p>
<div class="charts">${charts.filter(Boolean).join('\n')}</div>
<script type="application/json" id="data">${JSON.stringify(rep).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
