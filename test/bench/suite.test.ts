// The suite's summary: medians over rounds, Chorus against the best anchor, targets in both forms,
// skipped and Chorus-only workloads, and an HTML page whose charts are well-formed SVG.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { XMLValidator } from 'fast-xml-parser';
import { suiteMarkdown, suiteHtml, suiteTargets, parseSuiteArgs, WORKLOADS, type SuiteReport, type SuiteEntry } from '../../bench/lib/suite.ts';
import { DEFAULTS, type RunResult } from '../../bench/lib/runner.ts';

function run(name: string, scenario: RunResult['scenario'], metrics: Record<string, number>, extra: Partial<RunResult> = {}): RunResult {
  return {
    scenario, options: { ...DEFAULTS, scenario }, startedAt: '2026-01-01T00:00:00Z', wallS: 20, errors: [],
    target: { name, host: '127.0.0.1', port: 5222, domain: 'bench.local', version: name === 'chorus' ? 'chorus 0.1.0' : `${name} 1.0`, pids: [1] },
    server: { cpuS: 10, cpuPct: 50, rssBeforeKB: 0, rssAfterKB: 0, rssPeakKB: 0, measured: true },
    generator: { cpuS: 1, cpuPct: 5, rssKB: 1, workers: 2 }, metrics, timeline: [], ...extra,
  };
}
const entry = (id: string, runs: RunResult[], rounds = 1): SuiteEntry => ({ id, title: WORKLOADS.find((w) => w.id === id)!.title, command: `chorus bench ${id}`, files: [`x-${id}.md`], quick: false, runs, rounds });
const lat = (p99: number) => ({ latency: { n: 100, mean: 1, p50: 1, p90: 2, p99, p999: p99 * 2, max: p99 * 3 } });

const rep: SuiteReport = {
  tool: 'chorus bench suite', command: 'chorus bench suite --target chorus --target prosody --target ejabberd', createdAt: '2026-01-01T00:00:00Z',
  machine: { cpu: 'CPU', cores: 2, memGiB: 4, os: 'Linux', node: 'v20', loadAvg: [0, 0, 0] }, targets: ['chorus', 'prosody', 'ejabberd'],
  workloads: [
    entry('chat-200x10', [
      run('chorus', 'chat', { msgPerServerCpuS: 30_000, lost: 0, msgPerS: 1 }), run('prosody', 'chat', { msgPerServerCpuS: 14_000, lost: 0, msgPerS: 1 }), run('ejabberd', 'chat', { msgPerServerCpuS: 20_000, lost: 0, msgPerS: 1 }),
      run('chorus', 'chat', { msgPerServerCpuS: 50_000, lost: 0, msgPerS: 1 }), run('prosody', 'chat', { msgPerServerCpuS: 14_000, lost: 0, msgPerS: 1 }), run('ejabberd', 'chat', { msgPerServerCpuS: 10_000, lost: 0, msgPerS: 1 }),
      run('chorus', 'chat', { msgPerServerCpuS: 40_000, lost: 0, msgPerS: 1 }), run('prosody', 'chat', { msgPerServerCpuS: 14_000, lost: 0, msgPerS: 1 }), run('ejabberd', 'chat', { msgPerServerCpuS: 19_000, lost: 0, msgPerS: 1 }),
    ], 3),
    entry('open-2000', [run('chorus', 'chat', { lost: 0 }, lat(7.5)), run('prosody', 'chat', { lost: 0 }, lat(16)), run('ejabberd', 'chat', { lost: 0 }, lat(2.3))]),
    entry('muc', [run('chorus', 'muc', {}, { skipped: 'skipped: chorus has no MUC service (none)' }), run('prosody', 'muc', { deliveriesPerServerCpuS: 27_000, lost: 0 }), run('ejabberd', 'muc', { deliveriesPerServerCpuS: 49_000, lost: 0 })]),
    entry('idle-5000', [run('chorus', 'idle', { kbPerSession: 17, failed: 0 }), run('prosody', 'idle', { kbPerSession: 36, failed: 0 }), run('ejabberd', 'idle', { kbPerSession: 370, failed: 0 })]),
    entry('cores', [
      { ...run('chorus-1s', 'chat', { msgPerS: 10_000, msgPerServerCpuS: 9_000, lost: 0 }) },
      { ...run('chorus-2s', 'chat', { msgPerS: 15_000, msgPerServerCpuS: 8_000, lost: 0 }) },
    ]),
  ],
};

test('targets from medians: chat met against the best anchor\'s median, latency not, MUC skipped, cores not met', () => {
  const t = suiteTargets(rep, 'chorus');
  const chat = t.find((x) => x.target.startsWith('Chat'))!;
  assert.equal([chat.absolute.met, chat.sameRun.met], [true, true]);
  assert.match(chat.sameRun.detail, /^2\.11× ejabberd \(19,000\)/);
  const latency = t.find((x) => x.target.startsWith('Latency'))!;
  assert.equal([latency.absolute.met, latency.sameRun.met], [false, false]);
  const muc = t.find((x) => x.target.startsWith('Group'))!;
  assert.is(muc.absolute.met, null);
  assert.match(muc.absolute.detail, /no MUC/);
  const idle = t.find((x) => x.target.startsWith('Idle'))!;
  assert.equal([idle.absolute.met, idle.sameRun.met], [true, true]);
  const cores = t.find((x) => x.target.startsWith('Cores'))!;
  assert.is(cores.absolute.met, false);
  assert.match(cores.absolute.detail, /^1\.50×/);
  assert.is(t.find((x) => x.target.startsWith('Login'))!.absolute.detail, 'not run');
});

test('the summary table has one column per target, a ratio to the best anchor, and consistent rows', () => {
  const md = suiteMarkdown(rep);
  assert.match(md, /\| Chat: 200 pairs.* \| delivered msg per server-CPU-s \| \*\*40,000\*\* \| \*\*14,000\*\* \| \*\*19,000\*\* \| 2\.11× \| 3 \|/);
  assert.match(md, /p99 latency \(ms\) \| \*\*7\.5\*\* \| \*\*16\*\* \| \*\*2\.3\*\* \| 3\.26× \(lower is better\)/);
  assert.match(md, /skipped: chorus has no MUC service/);
  assert.match(md, /2 vs 1 scheduler: 1\.50×/);
  const table = md.split('\n\n').find((b) => b.startsWith('| workload'))!.trim().split('\n');
  const cols = (r: string) => r.replace(/\\\|/g, '').split('|').length;
  for (const r of table) assert.is(cols(r), cols(table[0]), r);
});

test('the HTML summary is self-contained with well-formed charts', () => {
  const html = suiteHtml(rep);
  assert.not.match(html, /<script[^>]+src=|<link[^>]+href=/i);
  const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
  assert.ok(svgs.length >= 5, `charts: ${svgs.length}`);
  for (const s of svgs) assert.is(XMLValidator.validate(s), true);
});

test('suite arguments: defaults, workload ids, pass-through', () => {
  const o = parseSuiteArgs(['--rounds', '3', '--only', 'chat-200x10,idle-5000', '--workers', '2']);
  if (o === 'help') throw new Error('help');
  assert.equal(o.targets, ['chorus', 'prosody']);
  assert.equal(o.only, ['chat-200x10', 'idle-5000']);
  assert.equal(o.pass, ['--workers', '2']);
  assert.throws(() => parseSuiteArgs(['--only', 'nope']), /unknown workload/);
});

test.run();
