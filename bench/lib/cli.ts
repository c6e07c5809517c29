// `chorus bench <scenario> [options]`: parses options, runs the scenario against one or more targets
// (alternating for --compare), shows progress on a terminal and writes JSON, Markdown and HTML.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULTS, SCENARIOS, runScenario, type BenchOptions, type ProgressFn, type RunResult, type Scenario } from './runner.ts';
import { parseTarget, type TargetSpec } from './target.ts';
import { machineInfo, toHtml, toMarkdown, type Report } from './report.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const USAGE = `usage: chorus bench <login|idle|chat|muc|soak> [options]
       chorus bench suite [--target SPEC]… [--rounds N] [--quick]   (every workload of targets.md,
                        one summary table + charts; see chorus bench suite --help)
       chorus bench report FILE.json…   (re-render Markdown and HTML from saved results)
       chorus bench runtime [--quick] [--only messages,schedulers,actors,reload]   (actor runtime micro-benchmarks)
       chorus bench xml-framer          (stream framer throughput)

Targets (repeat --target for several; default: chorus, started by the bench itself)
  --target SPEC        chorus | prosody | ejabberd | HOST:PORT[/DOMAIN] | key=value words:
                       name= host= port= tlsport= domain= pids=1,2 pidfile= setup="cmd {n}"
                       teardown="cmd" accounts="cmd {n}" schedulers=N sync=true disable=mam,carbons   (e.g. "prosody port=15300")
                       chorus only: ref=REV (run that git revision, not the working tree),
                       root=DIR (another checkout), nodeargs="--cpu-prof …" (server node flags)
  --compare            exactly two targets, run alternately; prints ratios (second / first)
  --rounds N           runs per target (alternating), figures are medians           [1]

Load
  -c, --clients N      login/idle: clients; soak: idle sessions    [login 2000, idle 5000, soak 1000]
  -k, --concurrency K  logins at a time                                                   [50]
  -p, --pairs P        chat/soak: client pairs                                           [200]
  -w, --inflight W     closed loop: messages in flight per sender          [chat 10, muc 5]
  -r, --rate R         chat: open loop at R msg/s offered in total (0 = closed loop); soak [1000]
  -d, --duration S     seconds of load                                                    [20]
  --drain S            wait this long for in-flight messages before counting them lost     [5]
  --occupants R        muc: room occupants                                                [50]
  --senders S          muc: occupants that send                                            [5]
  --settle S           idle: seconds to hold before reading the server's RSS               [5]
  --churn L            soak: logins per second beside the chat load                        [5]
  --tls MODE           none | starttls | direct                                         [none]
  --mech MECH          PLAIN | SCRAM-SHA-1 | SCRAM-SHA-256 | SCRAM-SHA-512             [PLAIN]
                       | HT-SHA-256-NONE: FAST (XEP-0484) with a token each client got in the
                       warm-up (a SASL2 PLAIN login asking for one); needs --tls
  --sasl2              log in with SASL2 and Bind 2 (XEP-0388/0386): one round trip fewer, no restart
  --password PW        password of every account u1..uN                                   [pw]
  --workers N          load generator threads                           [min(4, cores)]
  --no-presence        do not send initial presence after login
  --body N             pad each message body with N bytes (the stamp itself is ~25)          [1]
  --no-scram-warmup    login: do not cache salted passwords before a SCRAM storm (by default
                       the bench fetches each salt first, as a returning client knows it)
  --to-bare            chat: address the peer's bare JID (routing by presence) not its full JID
  --wait-quiet S       before measuring, wait up to S s until other processes use < 25% of a
                       core (their CPU during the run is reported either way)               [60]
  --coalesce           batch each client's stanzas into one write per tick (default: one write
                       per stanza, like an interactive client and like the anchors' generator)

Output
  --out DIR            where results go                                      [bench/results]
  --label NAME         added to the result file names
  --no-save            print only
  --json               print the JSON report to stdout instead of Markdown
  -h, --help

Accounts are u1..uN with one password; a target's setup/accounts command gets N as {n}.
Server CPU and RSS come from /proc for the target's PIDs (all threads and child processes).`;

export interface CliOptions {
  bench: BenchOptions;
  targets: TargetSpec[];
  compare: boolean;
  rounds: number;
  out: string;
  label: string;
  save: boolean;
  json: boolean;
}

export class UsageError extends Error {}

/** The next option of `a` (taken off it) and its value: from `--key=value`, or the next word. */
export function nextOption(a: string[]): { key: string; value: () => string | undefined } {
  const word = a.shift()!;
  const eq = word.indexOf('=');
  if (word.startsWith('--') && eq > 0) return { key: word.slice(0, eq), value: () => word.slice(eq + 1) };
  return { key: word, value: () => a.shift() };
}

/** Parses argv (after `bench`). */
export function parseArgs(argv: string[]): CliOptions | 'help' {
  const a = [...argv];
  const scenario = a.shift();
  if (!scenario || scenario === '-h' || scenario === '--help' || scenario === 'help') return 'help';
  if (!SCENARIOS.includes(scenario as Scenario)) throw new UsageError(`unknown scenario '${scenario}' (one of ${SCENARIOS.join(', ')})`);
  const b: BenchOptions = { ...DEFAULTS, scenario: scenario as Scenario };
  const given = new Set<string>();
  const targets: string[] = [];
  const o: Omit<CliOptions, 'bench' | 'targets'> = { compare: false, rounds: 1, out: join(ROOT, 'bench/results'), label: '', save: true, json: false };
  const int = (name: string, v: string | undefined, min = 0): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new UsageError(`${name} needs a number ≥ ${min}`);
    return n;
  };
  while (a.length) {
    const { key: k, value: val } = nextOption(a);
    given.add(k);
    switch (k) {
      case '--target': case '-t': targets.push(val() ?? ''); break;
      case '--compare': o.compare = true; break;
      case '--rounds': o.rounds = int(k, val(), 1); break;
      case '-c': case '--clients': b.clients = int(k, val(), 1); given.add('clients'); break;
      case '-k': case '--concurrency': b.concurrency = int(k, val(), 1); break;
      case '-p': case '--pairs': b.pairs = int(k, val(), 1); break;
      case '-w': case '--inflight': b.inflight = int(k, val(), 1); given.add('inflight'); break;
      case '-r': case '--rate': b.rate = int(k, val(), 0); break;
      case '-d': case '--duration': b.durationS = int(k, val(), 1); break;
      case '--drain': b.drainS = int(k, val(), 0); break;
      case '--occupants': b.occupants = int(k, val(), 1); break;
      case '--senders': b.senders = int(k, val(), 1); break;
      case '--settle': b.settleS = int(k, val(), 0); break;
      case '--churn': b.churn = int(k, val(), 0); break;
      case '--tls': {
        const m = val();
        if (m !== 'none' && m !== 'starttls' && m !== 'direct') throw new UsageError('--tls is none, starttls or direct');
        b.tls = m; break;
      }
      case '--mech': b.mechanism = (val() ?? '').toUpperCase(); if (!/^(PLAIN|SCRAM-SHA-(1|256|512)|HT-SHA-256-NONE)$/.test(b.mechanism)) throw new UsageError('--mech is PLAIN, SCRAM-SHA-1/256/512 or HT-SHA-256-NONE (FAST)'); break;
      case '--sasl2': b.sasl2 = true; break;
      case '--password': b.password = val() ?? ''; break;
      case '--workers': b.workers = int(k, val(), 1); break;
      case '--no-presence': b.presence = false; break;
      case '--coalesce': b.coalesce = true; break;
      case '--body': b.padding = int(k, val(), 1); break;
      case '--to-bare': b.toBare = true; break;
      case '--no-scram-warmup': b.scramWarmup = false; break;
      case '--wait-quiet': b.waitQuietS = int(k, val(), 0); break;
      case '--login-timeout': b.loginTimeoutS = int(k, val(), 1); break;
      case '--out': o.out = val() ?? o.out; break;
      case '--label': o.label = (val() ?? '').replace(/[^\w.-]+/g, '-'); break;
      case '--no-save': o.save = false; break;
      case '--json': o.json = true; break;
      case '-h': case '--help': return 'help';
      default: throw new UsageError(`unknown option ${k}`);
    }
  }
  // Scenario-dependent defaults, where the user did not say.
  if (!given.has('clients')) b.clients = b.scenario === 'idle' ? 5000 : b.scenario === 'soak' ? 1000 : 2000;
  if (!given.has('inflight') && b.scenario === 'muc') b.inflight = 5;
  if (b.scenario === 'soak' && !b.rate) b.rate = 1000;
  const specs = (targets.length ? targets : ['chorus']).map((t) => parseTarget(t));
  if (o.compare && specs.length !== 2) throw new UsageError('--compare needs exactly two --target options');
  const names = new Set<string>();
  for (const s of specs) { if (names.has(s.name)) s.name += '-' + (names.size + 1); names.add(s.name); }
  return { bench: b, targets: specs, ...o };
}

// --- progress ---

function progressPrinter(label: string): ProgressFn & { done(): void } {
  const tty = process.stderr.isTTY;
  let lastPhase = '';
  const fn = ((p) => {
    if (tty) {
      const width = 24;
      const frac = p.total > 0 ? Math.max(0, Math.min(1, p.done / p.total)) : 0;
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      const line = `[${label}] ${p.phase.padEnd(11)} ${bar} ${Math.round(p.done)}/${Math.round(p.total)}  ${p.note}`;
      process.stderr.write('\r\x1b[2K' + line.slice(0, (process.stderr.columns || 120) - 1));
    } else if (p.phase !== lastPhase) {
      process.stderr.write(`[${label}] ${p.phase}\n`);
    }
    lastPhase = p.phase;
  }) as ProgressFn & { done(): void };
  fn.done = () => { if (tty) process.stderr.write('\r\x1b[2K'); };
  return fn;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export async function runBench(c: CliOptions, command: string): Promise<{ report: Report; files: string[] }> {
  const createdAt = new Date();
  const machine = machineInfo();
  const runs: RunResult[] = [];
  for (let round = 0; round < c.rounds; round++) {
    for (const t of c.targets) {
      const p = progressPrinter(`${c.bench.scenario} ${t.name}${c.rounds > 1 ? ` #${round + 1}` : ''}`);
      const r = await runScenario(t, c.bench, p);
      p.done();
      runs.push(r);
      const status = r.error ? `failed: ${r.error}` : r.skipped ? r.skipped : 'done';
      process.stderr.write(`[${c.bench.scenario} ${t.name}] ${status}\n`);
    }
  }
  const report: Report = { tool: 'chorus bench', command, createdAt: createdAt.toISOString(), machine, scenario: c.bench.scenario, rounds: c.rounds, runs };
  const files: string[] = [];
  if (c.save) {
    await mkdir(c.out, { recursive: true });
    const base = join(c.out, [stamp(createdAt), c.bench.scenario, c.label, ...c.targets.map((t) => t.name.replace(/[^\w.-]+/g, '-'))].filter(Boolean).join('-'));
    const md = toMarkdown(report);
    await writeFile(base + '.json', JSON.stringify(report, null, 1) + '\n');
    await writeFile(base + '.md', md);
    await writeFile(base + '.html', toHtml(report, md));
    files.push(base + '.json', base + '.md', base + '.html');
  }
  return { report, files };
}

/** `chorus bench report FILE.json…`: re-renders Markdown and HTML beside each saved JSON report. */
async function rerender(files: string[]): Promise<number> {
  if (!files.length) { process.stderr.write('usage: chorus bench report FILE.json…\n'); return 2; }
  const { isSuiteFile, rerenderSuite } = await import('./suite.ts');
  for (const f of files) {
    const suite = await isSuiteFile(f);
    if (suite) { await rerenderSuite(f, suite); process.stderr.write(`wrote ${f.replace(/\.json$/, '')}.md, .html\n`); continue; }
    const rep = JSON.parse(await readFile(f, 'utf8')) as Report;
    const md = toMarkdown(rep);
    const base = f.replace(/\.json$/, '');
    await writeFile(base + '.md', md);
    await writeFile(base + '.html', toHtml(rep, md));
    process.stderr.write(`wrote ${base}.md, ${base}.html\n`);
  }
  return 0;
}

/** Entry for the chorus CLI: returns the exit code. */
export async function benchCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'report') return rerender(argv.slice(1));
  // The runtime and framer micro-benchmarks are scripts in bench/: run them the same way.
  if (argv[0] === 'runtime' || argv[0] === 'xml-framer') return runScript(join(ROOT, `bench/${argv[0]}.bench.ts`), argv.slice(1));
  if (argv[0] === 'suite') return (await import('./suite.ts')).suiteCommand(argv.slice(1), join(ROOT, 'bench/results'));
  let c: CliOptions | 'help';
  try { c = parseArgs(argv); } catch (e) {
    process.stderr.write(`chorus bench: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (c === 'help') { process.stdout.write(USAGE + '\n'); return 0; }
  const command = ['chorus', 'bench', ...argv].map((w) => /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  try {
    const { report, files } = await runBench(c, command);
    if (c.json) process.stdout.write(JSON.stringify(report, null, 1) + '\n');
    else process.stdout.write(toMarkdown(report));
    for (const f of files) process.stderr.write(`wrote ${relative(process.cwd(), f) || f}\n`);
    return report.runs.some((r) => r.error) ? 1 : 0;
  } catch (e) {
    process.stderr.write(`chorus bench: ${process.env.CHORUS_DEBUG ? (e as Error).stack : (e as Error).message ?? e}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Not a top-level await: suite.ts imports this module, which must finish evaluating first.
  void benchCommand(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}

function runScript(file: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
