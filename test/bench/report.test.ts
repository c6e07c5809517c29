// Report generation (Markdown tables, self-contained HTML with SVG charts), the latency histogram
// and the bench's argument parsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XMLValidator } from 'fast-xml-parser';
import { toMarkdown, toHtml, checkTargets, lineChart, saturation, type Report } from '../../bench/lib/report.ts';
import { Histogram, percentilesMs } from '../../bench/lib/histogram.ts';
import { DEFAULTS, type RunResult, type BenchOptions } from '../../bench/lib/runner.ts';
import { parseArgs, UsageError, type CliOptions } from '../../bench/lib/cli.ts';
import { parseTarget, shellWords } from '../../bench/lib/target.ts';

function run(name: string, scenario: RunResult['scenario'], metrics: Record<string, number>, opts: Partial<BenchOptions> = {}): RunResult {
  const h = new Histogram();
  for (let i = 1; i <= 1000; i++) h.record(i * 10);
  return {
    scenario, options: { ...DEFAULTS, scenario, ...opts }, startedAt: '2026-01-01T00:00:00Z', wallS: 20, errors: [],
    target: { name, host: '127.0.0.1', port: 5222, domain: 'bench.local', version: name + ' 1.0 <&>', pids: [42] },
    server: { cpuS: 10, cpuPct: 50, rssBeforeKB: 10_000, rssAfterKB: 20_000, rssPeakKB: 21_000, measured: true },
    generator: { cpuS: 2, cpuPct: 10, rssKB: 50_000, workers: 2 },
    metrics, latency: percentilesMs(h),
    timeline: Array.from({ length: 20 }, (_, t) => ({ t, phase: 'closed loop', msgPerS: 1000 + t, loginsPerS: 0, p50: 1, p99: 5 + t, serverRssKB: 10_000 + t * 100, serverCpuPct: 50, genCpuPct: 10 })),
  };
}

function report(runs: RunResult[], scenario = runs[0].scenario): Report {
  return {
    tool: 'chorus bench', command: "chorus bench chat --target 'a|b'", createdAt: '2026-01-01T00:00:00Z', scenario, rounds: 1, runs,
    machine: { cpu: 'Test CPU', cores: 2, memGiB: 4, os: 'Linux', node: 'v20', loadAvg: [0, 0, 0] },
  };
}

const chatA = run('prosody', 'chat', { sent: 100, delivered: 100, lost: 0, msgPerS: 5, msgPerServerCpuS: 14_000, genCpuPerKMsg: 1 });
const chatB = run('ejabberd', 'chat', { sent: 100, delivered: 98, lost: 2, msgPerS: 5, msgPerServerCpuS: 20_000, genCpuPerKMsg: 1 });

test('Markdown tables have a consistent column count and a ratio column for two targets', () => {
  const md = toMarkdown(report([chatA, chatB]));
  const tables = md.split('\n\n').filter((b) => b.startsWith('|'));
  assert.ok(tables.length >= 2);
  for (const t of tables) {
    const rows = t.trim().split('\n');
    const cols = (r: string) => r.replace(/\\\|/g, '').split('|').length;
    for (const r of rows) assert.is(cols(r), cols(rows[0]), `row: ${r}`);
    assert.match(rows[1], /^\|(-{3}:?\|)+(-{3}:?\|)*$|^\|---\|/);
  }
  assert.match(md, /\| delivered msg per server-CPU-s \| 14,000 \| 20,000 \| 1\.43× \|/);
  assert.match(md, /Command: `chorus bench chat --target 'a\|b'`/);
});

test('targets are marked met / not met', () => {
  const md = toMarkdown(report([chatA, chatB]));
  assert.match(md, /\*\*met\*\*: 14,000 msg\/CPU-s, 0 lost/);
  assert.match(md, /\*\*not met\*\*: 20,000 msg\/CPU-s, 2 lost/);
  const idle = checkTargets(run('x', 'idle', { kbPerSession: 17, failed: 0 }))[0];
  assert.is(idle.met, true);
  const login = checkTargets(run('x', 'login', { loginsPerServerCpuS: 700, failed: 0 }, { mechanism: 'PLAIN' }))[0];
  assert.is(login.met, null, 'PLAIN runs do not speak to the SCRAM target');
  const scram = checkTargets(run('x', 'login', { loginsPerServerCpuS: 400, failed: 0 }, { mechanism: 'SCRAM-SHA-1', tls: 'starttls' }))[0];
  assert.is(scram.met, true);
  const open = checkTargets(run('x', 'chat', { lost: 0 }, { rate: 2000 }))[0];
  assert.is(open.met, false, 'p99 of the fake run is above 5 ms');
});

test('a non-anchor target is also checked against the anchors of the same run', () => {
  const chorus = run('chorus', 'chat', { sent: 100, delivered: 100, lost: 0, msgPerS: 5, msgPerServerCpuS: 50_000 });
  const checks = checkTargets(chorus, [chatA, chatB, chorus]);
  const rel = checks.find((c) => c.name.startsWith('Chat, same run'))!;
  assert.is(rel.met, true);
  assert.match(rel.detail, /2\.50× the best anchor \(20,000\)/);
  assert.not.ok(checkTargets(chatA, [chatA, chatB]).some((c) => c.name.includes('same run')), 'anchors are not held to it');
  const md = toMarkdown(report([chatA, chatB, chorus]));
  assert.match(md, /Chat, same run: ≥ 2× the best anchor's msg per server-CPU-s, 0 lost \| – \| – \| \*\*met\*\*/);
});

test('same-run targets use each anchor\'s median over rounds', () => {
  const ej = [20_000, 30_000, 10_000].map((x) => run('ejabberd', 'chat', { lost: 0, msgPerServerCpuS: x }));
  const chorus = run('chorus', 'chat', { sent: 100, delivered: 100, lost: 0, msgPerS: 5, msgPerServerCpuS: 41_000 });
  const rel = checkTargets(chorus, [...ej, chorus]).find((c) => c.name.startsWith('Chat, same run'))!;
  assert.is(rel.met, true);
  assert.match(rel.detail, /2\.05× the best anchor \(20,000\)/);
});

test('cores: Chorus with 2 schedulers against Chorus with 1 in the same report', () => {
  const one = { ...run('chorus-1s', 'chat', { lost: 0, msgPerS: 10_000, msgPerServerCpuS: 9_000 }) };
  one.target = { ...one.target, chorus: true, schedulers: 1 };
  const two = { ...run('chorus-2s', 'chat', { lost: 0, msgPerS: 17_000, msgPerServerCpuS: 9_500 }) };
  two.target = { ...two.target, chorus: true, schedulers: 2 };
  const c = checkTargets(two, [one, two]).find((x) => x.name.startsWith('Cores'))!;
  assert.is(c.met, true);
  assert.match(c.detail, /^1\.70× \(17,000 vs 10,000 msg\/s wall; per server-CPU-s 1\.06×\)/);
  assert.not.ok(checkTargets(one, [one, two]).some((x) => x.name.startsWith('Cores')));
  assert.equal(['chorus-1s', 'chorus-2s', 'x'], ['chorus schedulers=1', 'chorus schedulers=2', 'chorus schedulers=2 name=x'].map((s) => parseTarget(s).name));
});

test('other processes\' CPU during a run is shown and flagged', () => {
  const r = run('x', 'chat', { sent: 1, delivered: 1, lost: 0, msgPerServerCpuS: 1 });
  r.others = { cpuPct: 60, waitedS: 0, cpuPctBefore: 0 };
  assert.match(saturation(r, 2)[0], /other processes used 60%/);
  assert.match(toMarkdown(report([r])), /\| other processes' CPU \(% of a core\) \| 60 \|/);
});

test('a busy generator or a saturated machine is flagged', () => {
  const r = run('x', 'chat', { sent: 1, delivered: 1, lost: 0, msgPerServerCpuS: 1 });
  assert.equal(saturation(r, 2), []);
  r.generator = { ...r.generator, cpuPct: 170, workers: 2 };
  const w = saturation(r, 2);
  assert.is(w.length, 2);
  assert.match(toMarkdown(report([r])), /may have been the bottleneck/);
});

test('a skipped run is reported with its reason', () => {
  const r = run('jabberd2', 'muc', {});
  r.skipped = 'skipped: jabberd2 has no MUC service';
  const md = toMarkdown(report([r]));
  assert.match(md, /> \*\*jabberd2\*\*: skipped: jabberd2 has no MUC service/);
});

test('HTML is self-contained, escaped, and its SVG charts are well-formed XML', () => {
  const html = toHtml(report([chatA, chatB]));
  assert.ok(html.startsWith('<!doctype html>'));
  assert.not.match(html, /<script[^>]+src=|<link[^>]+href=|@import|url\(/i, 'no external resources');
  assert.not.match(html, /prosody 1\.0 <&>/, 'versions are escaped');
  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.ok(svgs.length >= 4, `charts: ${svgs.length}`);
  for (const s of svgs) assert.is(XMLValidator.validate(s), true);
  const tables = (html.match(/<table>/g) ?? []).length;
  assert.is(tables, (html.match(/<\/table>/g) ?? []).length);
  const data = /<script type="application\/json" id="data">([\s\S]*?)<\/script>/.exec(html)!;
  assert.is((JSON.parse(data[1]) as Report).runs.length, 2);
});

test('a chart with no points still draws', () => {
  const svg = lineChart('empty', 'x', 'y', [{ name: 'a', color: '#000', points: [] }]);
  assert.is(XMLValidator.validate(svg), true);
});

test('histogram percentiles are within a bucket of the truth and merge', () => {
  const a = new Histogram(), b = new Histogram();
  for (let i = 1; i <= 5000; i++) a.record(i);
  for (let i = 5001; i <= 10000; i++) b.record(i);
  a.merge(Histogram.from(b.toSparse()));
  assert.is(a.n, 10000);
  const near = (v: number, want: number) => assert.ok(Math.abs(v - want) / want < 0.04, `${v} vs ${want}`);
  near(a.quantile(0.5), 5000);
  near(a.quantile(0.99), 9900);
  assert.is(a.quantile(1), 10000);
  assert.is(a.max, 10000);
  assert.is(new Histogram().quantile(0.5), 0);
  assert.is(percentilesMs(a).p50 > 4.8, true);
});

test('parseArgs: scenario defaults, options, presets and compare', () => {
  const c = parseArgs(['chat', '--target', 'prosody', '--target', 'ejabberd', '--compare', '-p', '50', '-w', '1', '--duration=5']) as CliOptions;
  assert.is(c.bench.pairs, 50);
  assert.is(c.bench.inflight, 1);
  assert.is(c.bench.durationS, 5);
  assert.is(c.compare, true);
  assert.equal(c.targets.map((t) => [t.name, t.port]), [['prosody', 15222], ['ejabberd', 25222]]);
  const idle = parseArgs(['idle', '--target', '127.0.0.1:5222/example.org']) as CliOptions;
  assert.is(idle.bench.clients, 5000);
  assert.is(idle.targets[0].domain, 'example.org');
  const muc = parseArgs(['muc', '-t', 'prosody']) as CliOptions;
  assert.is(muc.bench.inflight, 5);
  assert.is(parseArgs(['--help']), 'help');
  assert.throws(() => parseArgs(['nope']), (e: unknown) => e instanceof UsageError);
  assert.throws(() => parseArgs(['chat', '--compare', '--target', 'prosody']), /exactly two/);
  assert.throws(() => parseArgs(['chat', '--tls', 'maybe']), (e: unknown) => e instanceof UsageError);
});

test('target specs: key=value words with quotes, loopback only by default', () => {
  const t = parseTarget(`name=x port=5222 domain=d.local pids=1,2 setup="run.sh start {n}"`);
  assert.equal([t.name, t.port, t.domain, t.pids, t.setup], ['x', 5222, 'd.local', [1, 2], 'run.sh start {n}']);
  assert.equal(shellWords(`a='b c' d=""`), ['a=b c', 'd=']);
  assert.is(parseTarget('prosody port=15300').port, 15300);
  assert.throws(() => parseTarget('10.0.0.5:5222'), /not loopback/);
  assert.throws(() => parseTarget('name=x'), /no port/);
});

test.run();
