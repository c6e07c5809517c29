// `chorus bench suite`: every workload of shared/notes/targets.md against the given targets in one
// command (Chorus, started by the bench, and the anchors by default), each workload saved as its own
// report, plus one summary: a table of the key figures (medians over rounds), every target marked met
// / not met both in absolute terms and against the anchors measured in the same run, and charts.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { nextOption, parseArgs, runBench, UsageError, type CliOptions } from './cli.ts';
import { parseTarget, pinRef } from './target.ts';
import { barChart, COLORS, fmtNum, machineInfo, mdCell, mdToHtml, median, type Report } from './report.ts';
import type { RunResult } from './runner.ts';

export interface Workload {
  id: string;
  title: string;
  /** The title when --quick shortens the run. */
  quickTitle?: string;
  /** `chorus bench` arguments (scenario first), without targets. */
  args: string[];
  quickArgs?: string[];
  /** Runs per target: the suite's --rounds unless this caps it. */
  maxRounds?: number;
  /** Chorus with 1 vs 2 schedulers instead of the suite's targets. */
  cores?: boolean;
  figures: SuiteFigure[];
}

export interface SuiteFigure { label: string; get(r: RunResult): number | undefined; better: 'higher' | 'lower' | 'none'; key?: boolean }

const m = (k: string) => (r: RunResult) => r.metrics[k];
const p99 = (r: RunResult) => r.latency?.p99;
const lost = { label: 'lost', get: m('lost'), better: 'lower' } as const;

export const WORKLOADS: Workload[] = [
  {
    id: 'chat-200x10', quickTitle: 'Chat: 200 pairs, 10 in flight per sender, 5 s (quick)', title: 'Chat: 200 pairs, 10 in flight per sender, 20 s', args: ['chat', '-p', '200', '-w', '10', '-d', '20'], quickArgs: ['chat', '-p', '200', '-w', '10', '-d', '5'],
    figures: [
      { label: 'delivered msg per server-CPU-s', get: m('msgPerServerCpuS'), better: 'higher', key: true },
      { label: 'delivered msg/s (wall)', get: m('msgPerS'), better: 'higher' },
      { label: 'p99 latency (ms)', get: p99, better: 'lower' }, lost,
    ],
  },
  {
    id: 'chat-50x1', quickTitle: 'Chat: 50 pairs, 1 in flight, 5 s (quick)', title: 'Chat: 50 pairs, 1 in flight, 20 s', args: ['chat', '-p', '50', '-w', '1', '-d', '20'], quickArgs: ['chat', '-p', '50', '-w', '1', '-d', '5'],
    figures: [
      { label: 'p99 latency (ms)', get: p99, better: 'lower', key: true },
      { label: 'p50 latency (ms)', get: (r) => r.latency?.p50, better: 'lower' },
      { label: 'delivered msg per server-CPU-s', get: m('msgPerServerCpuS'), better: 'higher' }, lost,
    ],
  },
  {
    id: 'open-2000', quickTitle: 'Chat open loop: 2000 msg/s offered over 200 pairs, 5 s (quick)', title: 'Chat open loop: 2000 msg/s offered over 200 pairs, 20 s', args: ['chat', '-p', '200', '-r', '2000', '-d', '20'], quickArgs: ['chat', '-p', '200', '-r', '2000', '-d', '5'],
    figures: [
      { label: 'p99 latency (ms)', get: p99, better: 'lower', key: true },
      { label: 'p99.9 latency (ms)', get: (r) => r.latency?.p999, better: 'lower' },
      { label: 'server CPU (% of a core)', get: (r) => r.server.measured ? r.server.cpuPct : undefined, better: 'lower' }, lost,
    ],
  },
  {
    id: 'login-plain', quickTitle: 'Login storm: 500 clients, 50 at a time, PLAIN (quick)', title: 'Login storm: 2000 clients, 50 at a time, PLAIN', args: ['login', '-c', '2000', '-k', '50', '--mech', 'PLAIN'], quickArgs: ['login', '-c', '500', '-k', '50', '--mech', 'PLAIN'],
    figures: [{ label: 'logins per server-CPU-s', get: m('loginsPerServerCpuS'), better: 'higher', key: true }, { label: 'failed', get: m('failed'), better: 'lower' }],
  },
  {
    id: 'login-scram', quickTitle: 'Login storm: 500 clients, SCRAM-SHA-1, salted password cached (quick)', title: 'Login storm: SCRAM-SHA-1, salted password cached by the client', args: ['login', '-c', '2000', '-k', '50', '--mech', 'SCRAM-SHA-1'], quickArgs: ['login', '-c', '500', '-k', '50', '--mech', 'SCRAM-SHA-1'],
    figures: [{ label: 'logins per server-CPU-s', get: m('loginsPerServerCpuS'), better: 'higher', key: true }, { label: 'login p99 (ms)', get: (r) => r.loginLatency?.p99, better: 'lower' }, { label: 'failed', get: m('failed'), better: 'lower' }],
  },
  {
    id: 'login-scram-starttls', quickTitle: 'Login storm: 500 clients, SCRAM-SHA-1 + STARTTLS (quick)', title: 'Login storm: SCRAM-SHA-1 + STARTTLS (ECDSA P-256)', args: ['login', '-c', '2000', '-k', '50', '--mech', 'SCRAM-SHA-1', '--tls', 'starttls'], quickArgs: ['login', '-c', '500', '-k', '50', '--mech', 'SCRAM-SHA-1', '--tls', 'starttls'],
    figures: [{ label: 'logins per server-CPU-s', get: m('loginsPerServerCpuS'), better: 'higher', key: true }, { label: 'TLS handshake p50 (ms)', get: (r) => r.tlsLatency?.p50, better: 'lower' }, { label: 'failed', get: m('failed'), better: 'lower' }],
  },
  {
    id: 'idle-5000', quickTitle: 'Idle: 1000 sessions with initial presence (quick)', title: 'Idle: 5000 sessions with initial presence', args: ['idle', '-c', '5000'], quickArgs: ['idle', '-c', '1000'], maxRounds: 2,
    figures: [{ label: 'server RSS per session (KB)', get: m('kbPerSession'), better: 'lower', key: true }, { label: 'failed', get: m('failed'), better: 'lower' }],
  },
  {
    id: 'muc', quickTitle: 'Group chat: 50 occupants, 5 senders, 5 in flight, 5 s (quick)', title: 'Group chat: 50 occupants, 5 senders, 5 in flight, 20 s', args: ['muc', '-d', '20'], quickArgs: ['muc', '-d', '5'], maxRounds: 1,
    figures: [{ label: 'deliveries per server-CPU-s', get: m('deliveriesPerServerCpuS'), better: 'higher', key: true }, { label: 'lost deliveries', get: m('lost'), better: 'lower' }],
  },
  {
    id: 'soak', quickTitle: 'Soak 15 s: 100 pairs at 1000 msg/s + 1000 idle + 5 logins/s (quick)', title: 'Soak 60 s: 100 pairs at 1000 msg/s + 1000 idle + 5 logins/s', args: ['soak', '-p', '100', '-r', '1000', '-c', '1000', '--churn', '5', '-d', '60'], quickArgs: ['soak', '-p', '100', '-r', '1000', '-c', '1000', '--churn', '5', '-d', '15'], maxRounds: 1,
    figures: [
      { label: 'p99 latency (ms)', get: p99, better: 'lower', key: true },
      { label: 'server RSS growth (KB/min)', get: m('rssGrowthKBPerMin'), better: 'lower' }, lost,
      { label: 'churn failures', get: m('churnFailures'), better: 'lower' },
    ],
  },
  {
    id: 'cores', quickTitle: 'Cores: Chorus with 1 vs 2 schedulers, chat 200 pairs × 10 in flight, 5 s (quick)', title: 'Cores: Chorus with 1 vs 2 schedulers, chat 200 pairs × 10 in flight, 20 s', args: ['chat', '-p', '200', '-w', '10', '-d', '20'], quickArgs: ['chat', '-p', '200', '-w', '10', '-d', '5'], cores: true,
    figures: [
      { label: 'delivered msg/s (wall)', get: m('msgPerS'), better: 'higher', key: true },
      { label: 'delivered msg per server-CPU-s', get: m('msgPerServerCpuS'), better: 'higher' },
      { label: 'server CPU (% of a core)', get: (r) => r.server.measured ? r.server.cpuPct : undefined, better: 'none' }, lost,
    ],
  },
];

export interface SuiteEntry { id: string; title: string; command: string; files: string[]; quick: boolean; runs: RunResult[]; rounds: number }
export interface SuiteReport {
  tool: 'chorus bench suite';
  command: string;
  createdAt: string;
  machine: Report['machine'];
  targets: string[];
  workloads: SuiteEntry[];
}

export const SUITE_USAGE = `usage: chorus bench suite [--target SPEC]… [options]

Runs every workload of shared/notes/targets.md against the targets (default: chorus, started by the
bench, and prosody), alternating targets within each workload, and writes one report per workload plus
a summary (<time>-suite-….md/.html/.json: one table, targets met / not met, charts).

  --target SPEC      as for other scenarios (repeatable)                 [chorus, prosody]
  --rounds N         runs per target per workload (idle ≤ 2, muc and soak 1); medians     [1]
  --only IDS         comma-separated workload ids to run
  --skip IDS         comma-separated workload ids to leave out
  --quick            shorter runs (5 s of load, 500 logins, 1000 idle sessions) to try it out
  --out DIR, --workers N, --wait-quiet S     passed on to every workload

Workloads: ${WORKLOADS.map((w) => w.id).join(', ')}
(cores runs only when a Chorus target is given: chorus schedulers=1 vs schedulers=2.)`;

interface SuiteOptions { targets: string[]; rounds: number; only: string[] | null; skip: string[]; quick: boolean; pass: string[]; out: string | null }

export function parseSuiteArgs(argv: string[]): SuiteOptions | 'help' {
  const o: SuiteOptions = { targets: [], rounds: 1, only: null, skip: [], quick: false, pass: [], out: null };
  const a = [...argv];
  const ids = (v: string | undefined) => {
    const list = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    for (const id of list) if (!WORKLOADS.some((w) => w.id === id)) throw new UsageError(`unknown workload '${id}' (${WORKLOADS.map((w) => w.id).join(', ')})`);
    return list;
  };
  while (a.length) {
    const { key: k, value: val } = nextOption(a);
    switch (k) {
      case '--target': case '-t': o.targets.push(val() ?? ''); break;
      case '--rounds': { const n = Number(val()); if (!Number.isInteger(n) || n < 1) throw new UsageError('--rounds needs a number ≥ 1'); o.rounds = n; break; }
      case '--only': o.only = ids(val()); break;
      case '--skip': o.skip = ids(val()); break;
      case '--quick': o.quick = true; break;
      case '--out': o.out = val() ?? null; o.pass.push('--out', o.out ?? ''); break;
      case '--workers': case '--wait-quiet': o.pass.push(k, val() ?? ''); break;
      case '-h': case '--help': return 'help';
      default: throw new UsageError(`unknown suite option ${k}`);
    }
  }
  if (!o.targets.length) o.targets = ['chorus', 'prosody'];
  for (const t of o.targets) parseTarget(t); // fail early on a bad spec
  return o;
}

function stamp(d: Date): string { return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15); }
const quote = (w: string) => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;

/** Runs the suite; returns the summary and where it was written. */
export async function runSuite(o: SuiteOptions, command: string, outDefault: string): Promise<{ summary: SuiteReport; files: string[] }> {
  const createdAt = new Date();
  o = { ...o, targets: o.targets.map(pinRef) };
  const chorusTargets = o.targets.filter((t) => parseTarget(t).chorus);
  const summary: SuiteReport = { tool: 'chorus bench suite', command, createdAt: createdAt.toISOString(), machine: machineInfo(), targets: o.targets.map((t) => parseTarget(t).name), workloads: [] };
  for (const w of WORKLOADS) {
    if (o.only && !o.only.includes(w.id)) continue;
    if (o.skip.includes(w.id)) continue;
    const targets = w.cores ? (chorusTargets.length ? [1, 2].map((n) => `${chorusTargets[0]} schedulers=${n} name=chorus-${n}s`) : []) : o.targets;
    if (!targets.length) continue;
    const rounds = Math.min(o.rounds, w.maxRounds ?? o.rounds);
    const argv = [...(o.quick && w.quickArgs ? w.quickArgs : w.args), ...targets.flatMap((t) => ['--target', t]), ...(targets.length === 2 ? ['--compare'] : []),
      '--rounds', String(rounds), '--label', w.id, ...o.pass];
    const cmd = ['chorus', 'bench', ...argv].map(quote).join(' ');
    process.stderr.write(`\n== ${w.id}: ${cmd}\n`);
    const c = parseArgs(argv) as CliOptions;
    const { report, files } = await runBench(c, cmd);
    summary.workloads.push({ id: w.id, title: o.quick && w.quickTitle ? w.quickTitle : w.title, command: cmd, files: files.map((f) => relative(o.out ?? outDefault, f)), quick: o.quick, rounds, runs: report.runs.map(stripTimeline) });
  }
  const out = o.out ?? outDefault;
  await mkdir(out, { recursive: true });
  const base = join(out, [stamp(createdAt), 'suite', ...(o.quick ? ['quick'] : []), ...summary.targets.map((t) => t.replace(/[^\w.-]+/g, '-'))].join('-'));
  const md = suiteMarkdown(summary);
  await writeFile(base + '.json', JSON.stringify(summary, null, 1) + '\n');
  await writeFile(base + '.md', md);
  await writeFile(base + '.html', suiteHtml(summary, md));
  return { summary, files: [base + '.json', base + '.md', base + '.html'] };
}

function stripTimeline(r: RunResult): RunResult { return { ...r, timeline: [] }; }

/** Re-renders a saved summary's Markdown and HTML. */
export async function rerenderSuite(file: string, rep: SuiteReport): Promise<void> {
  const md = suiteMarkdown(rep);
  const base = file.replace(/\.json$/, '');
  await writeFile(base + '.md', md);
  await writeFile(base + '.html', suiteHtml(rep, md));
}

// --- summary ---

const ANCHORS = ['prosody', 'ejabberd', 'jabberd2'];
function anchorName(r: RunResult): string | undefined {
  const id = `${r.target.name} ${r.target.version}`.toLowerCase();
  if (id.includes('jabberd2')) return 'jabberd2';
  return ANCHORS.find((a) => id.includes(a));
}

/** Median of a figure over a target's good runs in one workload. */
function med(e: SuiteEntry | undefined, name: string, get: (r: RunResult) => number | undefined): number | undefined {
  if (!e) return undefined;
  return median(e.runs.filter((r) => r.target.name === name && !r.error && !r.skipped).map(get).filter((x): x is number => x !== undefined));
}

function targetNames(e: SuiteEntry): string[] { return [...new Set(e.runs.map((r) => r.target.name))]; }
function anchorsIn(e: SuiteEntry): Array<{ name: string; anchor: string }> {
  const seen = new Map<string, string>();
  for (const r of e.runs) { const a = anchorName(r); if (a && !seen.has(r.target.name)) seen.set(r.target.name, a); }
  return [...seen].map(([name, anchor]) => ({ name, anchor }));
}
function statusOf(e: SuiteEntry, name: string): string | undefined {
  const rs = e.runs.filter((r) => r.target.name === name);
  if (rs.length && rs.every((r) => r.skipped)) return rs[0].skipped!.replace(/^skipped: /, 'skipped: ');
  if (rs.length && rs.every((r) => r.error)) return `failed: ${rs[0].error}`;
  return undefined;
}

export interface SuiteTarget { target: string; subject: string; absolute: { met: boolean | null; detail: string }; sameRun: { met: boolean | null; detail: string } }

const fmt = (x: number | undefined, unit = '') => x === undefined ? '–' : `${fmtNum(x)}${unit}`;
const ratioTxt = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

/** The targets of targets.md for one non-anchor target (normally Chorus), from the suite's medians. */
export function suiteTargets(rep: SuiteReport, subject: string): SuiteTarget[] {
  const w = (id: string) => rep.workloads.find((e) => e.id === id);
  const out: SuiteTarget[] = [];
  const na = (detail: string) => ({ met: null, detail });
  const anchorMed = (e: SuiteEntry | undefined, get: (r: RunResult) => number | undefined, which?: string) =>
    e ? anchorsIn(e).filter((a) => !which || a.anchor === which).map((a) => ({ ...a, v: med(e, a.name, get) })).filter((a): a is { name: string; anchor: string; v: number } => a.v !== undefined) : [];
  const notRun = (e: SuiteEntry | undefined) => !e ? 'not run' : statusOf(e, subject) ?? (targetNames(e).includes(subject) ? undefined : 'not run');

  { // chat
    const e = w('chat-200x10'), bad = notRun(e);
    const v = med(e, subject, m('msgPerServerCpuS')), l = med(e, subject, m('lost'));
    const as = anchorMed(e, m('msgPerServerCpuS')), best = as.sort((a, b) => b.v - a.v)[0];
    out.push({ target: 'Chat: ≥ 2× the best anchor\'s delivered msg per server-CPU-s (≥ 13,000), 0 lost', subject,
      absolute: bad ? na(bad) : { met: v! >= 13000 && l === 0, detail: `${fmt(v)} msg/CPU-s, ${fmt(l)} lost` },
      sameRun: bad || !best ? na(bad ?? 'no anchor in the run') : { met: v! >= 2 * best.v && l === 0, detail: `${ratioTxt(v!, best.v)} ${best.name} (${fmt(best.v)})` } });
  }
  { // muc
    const e = w('muc'), bad = notRun(e);
    const v = med(e, subject, m('deliveriesPerServerCpuS')), l = med(e, subject, m('lost'));
    const ej = anchorMed(e, m('deliveriesPerServerCpuS'), 'ejabberd')[0];
    out.push({ target: 'Group chat: ≥ 2× ejabberd\'s deliveries per server-CPU-s (≥ 35,000), 0 lost', subject,
      absolute: bad ? na(bad) : { met: v! >= 35000 && l === 0, detail: `${fmt(v)} deliveries/CPU-s, ${fmt(l)} lost` },
      sameRun: bad || !ej ? na(bad ?? 'ejabberd not in the run') : { met: v! >= 2 * ej.v && l === 0, detail: `${ratioTxt(v!, ej.v)} ejabberd (${fmt(ej.v)})` } });
  }
  for (const [id, need, label] of [['login-scram', 600, 'without TLS'], ['login-scram-starttls', 380, 'with STARTTLS']] as const) {
    const e = w(id), bad = notRun(e);
    const v = med(e, subject, m('loginsPerServerCpuS')), f = med(e, subject, m('failed'));
    const ej = anchorMed(e, m('loginsPerServerCpuS'), 'ejabberd')[0];
    out.push({ target: `Login: ≥ 2× ejabberd's SCRAM logins per server-CPU-s ${label} (≥ ${need})`, subject,
      absolute: bad ? na(bad) : { met: v! >= need && f === 0, detail: `${fmt(v)} logins/CPU-s, ${fmt(f)} failed` },
      sameRun: bad || !ej ? na(bad ?? 'ejabberd not in the run') : { met: v! >= 2 * ej.v && f === 0, detail: `${ratioTxt(v!, ej.v)} ejabberd (${fmt(ej.v)})` } });
  }
  { // idle
    const e = w('idle-5000'), bad = notRun(e);
    const v = med(e, subject, m('kbPerSession')), f = med(e, subject, m('failed'));
    const pr = anchorMed(e, m('kbPerSession'), 'prosody')[0];
    out.push({ target: 'Idle memory: ≤ ½ Prosody\'s server RSS per plain-TCP session (≤ 18 KB)', subject,
      absolute: bad ? na(bad) : { met: v! <= 18 && f === 0, detail: `${fmt(v)} KB/session, ${fmt(f)} failed` },
      sameRun: bad || !pr ? na(bad ?? 'Prosody not in the run') : { met: v! <= pr.v / 2 && f === 0, detail: `${ratioTxt(v!, pr.v)} Prosody (${fmt(pr.v)} KB)` } });
  }
  { // latency
    const e = w('open-2000'), bad = notRun(e);
    const v = med(e, subject, p99), l = med(e, subject, m('lost'));
    const ej = anchorMed(e, p99, 'ejabberd')[0];
    out.push({ target: 'Latency: p99 ≤ 5 ms at 2000 msg/s offered over 200 pairs, below ejabberd\'s', subject,
      absolute: bad ? na(bad) : { met: v! <= 5 && l === 0, detail: `p99 ${fmt(v, ' ms')}, ${fmt(l)} lost` },
      sameRun: bad || !ej ? na(bad ?? 'ejabberd not in the run') : { met: v! < ej.v && l === 0, detail: `${ratioTxt(v!, ej.v)} ejabberd's p99 (${fmt(ej.v, ' ms')})` } });
  }
  { // cores
    const e = w('cores');
    const one = e ? med(e, 'chorus-1s', m('msgPerS')) : undefined, two = e ? med(e, 'chorus-2s', m('msgPerS')) : undefined;
    const lost2 = e ? med(e, 'chorus-2s', m('lost')) : undefined;
    const c1 = e ? med(e, 'chorus-1s', m('msgPerServerCpuS')) : undefined, c2 = e ? med(e, 'chorus-2s', m('msgPerServerCpuS')) : undefined;
    const applies = subject.startsWith('chorus') && one !== undefined && two !== undefined;
    out.push({ target: 'Cores: throughput with 2 schedulers ≥ 1.6× that with 1', subject,
      absolute: applies ? { met: two! >= 1.6 * one! && lost2 === 0, detail: `${ratioTxt(two!, one!)} (${fmt(two)} vs ${fmt(one)} msg/s; per server-CPU-s ${ratioTxt(c2!, c1!)})` } : na(subject.startsWith('chorus') ? 'not run' : 'Chorus only'),
      sameRun: na('(a Chorus-only target)') });
  }
  out.push({ target: 'Durability: kill -9 under load loses 0 acknowledged stanzas', subject, absolute: na('not a `chorus bench` scenario'), sameRun: na('') });
  return out;
}

const mark = (met: boolean | null) => met === null ? 'n/a' : met ? '**met**' : '**not met**';

export function suiteMarkdown(rep: SuiteReport): string {
  const L: string[] = [];
  const quick = rep.workloads.some((e) => e.quick);
  L.push(`# chorus bench suite${quick ? ' (quick)' : ''}`, '');
  L.push(`- When: ${rep.createdAt}`);
  L.push(`- Command: \`${rep.command}\``);
  const mc = rep.machine;
  L.push(`- Machine: ${mc.cpu}, ${mc.cores} cores, ${mc.memGiB} GiB, ${mc.os}, Node ${mc.node}${mc.pbkdf2PerCoreS ? `, speed yardstick ${mc.pbkdf2PerCoreS} PBKDF2-SHA-256-4096/core-s` : ''}`);
  const versions = new Map<string, string>();
  for (const e of rep.workloads) for (const r of e.runs) if (r.target.version && !versions.has(r.target.name)) versions.set(r.target.name, r.target.version);
  L.push(`- Targets: ${[...versions].map(([n, v]) => `**${n}** (${v})`).join(', ')}`);
  if (quick) L.push('- **Quick mode**: shorter runs than targets.md asks for; read the figures as a smoke test');
  L.push('');
  const names = rep.targets;
  const anchorCols = new Set(rep.workloads.flatMap((e) => anchorsIn(e).map((a) => a.name)));
  const subjects = names.filter((n) => !anchorCols.has(n));
  const showRatio = subjects.length >= 1 && anchorCols.size >= 1;
  L.push('## Results (medians over rounds)', '');
  L.push(`| workload | figure | ${names.map(mdCell).join(' | ')} |${showRatio ? ` ${mdCell(subjects[0])} vs best anchor |` : ''} rounds |`);
  L.push(`|---|---|${names.map(() => '---:').join('|')}|${showRatio ? '---:|' : ''}---:|`);
  for (const e of rep.workloads) {
    const wl = WORKLOADS.find((x) => x.id === e.id)!;
    const cols = wl.cores ? targetNames(e) : names;
    for (const f of wl.figures) {
      const cells = names.map((n, i) => {
        const name = wl.cores ? cols[i] : n;
        if (name === undefined) return '';
        const st = statusOf(e, name);
        if (st) return f.key ? mdCell(st.length > 60 ? st.slice(0, 57) + '…' : st) : '–';
        const v = med(e, name, f.get);
        return `${f.key ? '**' : ''}${fmt(v)}${f.key ? '**' : ''}${wl.cores && f.key ? ` (${name})` : ''}`;
      });
      let rcell = '';
      if (showRatio) {
        if (wl.cores) {
          const a = med(e, 'chorus-2s', f.get), b = med(e, 'chorus-1s', f.get);
          rcell = f.better !== 'none' && a !== undefined && b ? ` 2 vs 1 scheduler: ${ratioTxt(a, b)} |` : ' |';
        } else {
          const s = med(e, subjects[0], f.get);
          const as = anchorsIn(e).map((a) => med(e, a.name, f.get)).filter((x): x is number => x !== undefined);
          const best = f.better === 'higher' ? Math.max(...as) : Math.min(...as);
          rcell = s !== undefined && as.length && f.better !== 'none' && best > 0 && !/lost|failed|failures/.test(f.label)
            ? ` ${ratioTxt(s, best)}${f.better === 'lower' ? ' (lower is better)' : ''} |` : ' |';
        }
      }
      L.push(`| ${f.key ? mdCell(e.title) : ''} | ${mdCell(f.label)} | ${cells.join(' | ')} |${rcell} ${f.key ? e.rounds : ''} |`);
    }
  }
  L.push('');
  for (const s of subjects) {
    L.push(`## Targets of targets.md for ${s}`, '');
    L.push('| target | absolute (targets.md numbers) | same run (relative to the anchors measured here) |', '|---|---|---|');
    for (const t of suiteTargets(rep, s)) L.push(`| ${mdCell(t.target)} | ${mark(t.absolute.met)}: ${mdCell(t.absolute.detail)} | ${t.sameRun.detail || t.sameRun.met !== null ? `${mark(t.sameRun.met)}: ${mdCell(t.sameRun.detail)}` : 'n/a'} |`);
    L.push('');
  }
  const speedRows = rep.workloads.map((e) => ({ id: e.id, xs: e.runs.map((r) => r.speedBefore).filter((x): x is number => !!x) })).filter((x) => x.xs.length);
  if (speedRows.length) {
    L.push('## Machine speed', '', 'PBKDF2-SHA-256-4096 per core-second, measured just before each run: on a shared VM it drifts, and every per-CPU-second figure drifts with it. Targets ran alternately within each workload, so compare them within a workload.', '');
    L.push('| workload | min | max |', '|---|---:|---:|');
    for (const x of speedRows) L.push(`| ${x.id} | ${Math.min(...x.xs)} | ${Math.max(...x.xs)} |`);
    L.push('');
  }
  const warn = rep.workloads.flatMap((e) => e.runs.filter((r) => (r.others?.cpuPct ?? 0) > 25).map((r) => `${e.id} / ${r.target.name}: other processes used ${r.others!.cpuPct}% of a core`));
  if (warn.length) { L.push('## Runs shared with other processes', ''); for (const x of warn) L.push(`- ${mdCell(x)}`); L.push(''); }
  const errs = rep.workloads.flatMap((e) => e.runs.flatMap((r) => r.errors.map((x) => `${e.id} / ${r.target.name}: ${x}`)));
  if (errs.length) { L.push('## Errors and server warnings seen (first 15)', ''); for (const x of errs.slice(0, 15)) L.push(`- ${mdCell(x.slice(0, 400))}`); L.push(''); }
  L.push('## Commands and reports', '');
  for (const e of rep.workloads) L.push(`- ${e.id}: \`${e.command}\` → ${e.files.filter((f) => f.endsWith('.md')).map((f) => `\`${f}\``).join(', ')}`);
  L.push('');
  L.push('Work per server-CPU-second divides by the server\'s own user+system CPU (all threads and child processes, from /proc) during the measured phase, so it stays comparable when the load generator shares the machine; wall-clock rates do not.');
  return L.join('\n') + '\n';
}

export function suiteHtml(rep: SuiteReport, md = suiteMarkdown(rep)): string {
  const names = rep.targets;
  const color = new Map(names.map((n, i) => [n, COLORS[i % COLORS.length]]));
  const charts: string[] = [];
  // One chart across workloads: each target's key figure relative to the best anchor (1 = as good as it).
  const rel: Array<{ label: string; vals: Map<string, number> }> = [];
  for (const e of rep.workloads) {
    const wl = WORKLOADS.find((x) => x.id === e.id)!;
    const key = wl.figures.find((f) => f.key)!;
    if (wl.cores) continue;
    const as = anchorsIn(e).map((a) => med(e, a.name, key.get)).filter((x): x is number => x !== undefined && x > 0);
    if (!as.length) continue;
    const best = key.better === 'higher' ? Math.max(...as) : Math.min(...as);
    const vals = new Map<string, number>();
    for (const n of names) { const v = med(e, n, key.get); if (v !== undefined && v > 0) vals.set(n, Math.round((key.better === 'higher' ? v / best : best / v) * 100) / 100); }
    rel.push({ label: e.id, vals });
  }
  if (rel.length) {
    charts.push(barChart('Key figure relative to the best anchor (1 = as good; higher is better)', '× best anchor', rel.map((x) => x.label),
      names.map((n) => ({ name: n, color: color.get(n)!, values: rel.map((x) => x.vals.get(n) ?? NaN) })), Math.max(640, rel.length * 110)));
  }
  for (const e of rep.workloads) {
    const wl = WORKLOADS.find((x) => x.id === e.id)!;
    const key = wl.figures.find((f) => f.key)!;
    const cols = targetNames(e);
    charts.push(barChart(`${e.title}: ${key.label}`, key.label, [e.id], cols.map((n, i) => ({ name: n, color: color.get(n) ?? COLORS[(names.length + i) % COLORS.length], values: [med(e, n, key.get) ?? NaN] })), 640, 220));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chorus bench suite</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 12px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child,td:nth-child(2){text-align:left}code{background:#f3f3f3;padding:1px 4px;word-break:break-all}
blockquote{border-left:4px solid #e0a000;margin:8px 0;padding:4px 12px;background:#fff8e0}
.charts svg{display:block;margin:12px 0;max-width:100%;height:auto;background:#fff;border:1px solid #eee}
</style></head><body>
${mdToHtml(md)}
<h2>Charts</h2>
<div class="charts">${charts.join('\n')}</div>
<script type="application/json" id="data">${JSON.stringify(rep).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}

/** `chorus bench suite …` entry: returns the exit code. */
export async function suiteCommand(argv: string[], outDefault: string): Promise<number> {
  let o: SuiteOptions | 'help';
  try { o = parseSuiteArgs(argv); } catch (e) {
    process.stderr.write(`chorus bench suite: ${(e as Error).message}\n\n${SUITE_USAGE}\n`);
    return 2;
  }
  if (o === 'help') { process.stdout.write(SUITE_USAGE + '\n'); return 0; }
  const command = ['chorus', 'bench', 'suite', ...argv].map(quote).join(' ');
  try {
    const { summary, files } = await runSuite(o, command, outDefault);
    process.stdout.write(suiteMarkdown(summary));
    for (const f of files) process.stderr.write(`wrote ${relative(process.cwd(), f) || f}\n`);
    return summary.workloads.some((e) => e.runs.some((r) => r.error)) ? 1 : 0;
  } catch (e) {
    process.stderr.write(`chorus bench suite: ${process.env.CHORUS_DEBUG ? (e as Error).stack : (e as Error).message}\n`);
    return 1;
  }
}

export async function isSuiteFile(file: string): Promise<SuiteReport | null> {
  const j = JSON.parse(await readFile(file, 'utf8')) as { tool?: string };
  return j.tool === 'chorus bench suite' ? j as SuiteReport : null;
}

