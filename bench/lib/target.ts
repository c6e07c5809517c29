// Targets: a Chorus the bench starts itself (in a child process, so its CPU and RSS are its own), or
// any XMPP server by host/port/domain, optionally (re)started per run by a setup command — the
// Prosody and ejabberd anchors are presets of that.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdir, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import type { Endpoint } from './protocol.ts';
import type { ChorusTargetOptions } from './chorus-target.ts';

export interface TargetSpec {
  name: string;
  host: string;
  port: number;
  tlsPort?: number;
  domain: string;
  pids: number[];
  pidfile?: string;
  /** Shell command run before each run; `{n}` = accounts needed. Its KEY=VALUE output lines
   *  (PIDS, PORT, TLS_PORT, DOMAIN, VERSION) fill in the rest. */
  setup?: string;
  teardown?: string;
  /** Shell command that creates accounts u1..u{n} with the bench password; run once before the run. */
  accounts?: string;
  chorus?: boolean;
  schedulers?: number;
  /** Chorus only: `storage.sync` (fsync every group commit). */
  sync?: boolean;
  /** Chorus only: feature modules turned off (modules.disabled), e.g. mam,carbons. */
  disable?: string[];
  /** Chorus only: extra node flags for the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p". */
  nodeArgs?: string;
  /** Chorus only: run this git revision of the server (exported once into the bench state dir), not
   *  the working tree, so edits made while a long comparison runs do not change what it measures. */
  ref?: string;
  /** Chorus only: run the server from another checkout. */
  root?: string;
  version?: string;
}

export interface LiveTarget {
  spec: TargetSpec;
  endpoint: Endpoint;
  pids: number[];
  version: string;
  stop(): Promise<void>;
  /** Anything the server said or did that the report should show (warnings, an exit mid-run). */
  notes?(): string[];
  /** Chorus: the number of scheduler threads it runs. */
  schedulers?: number;
  /** The server's own log, when the bench holds it. */
  log?(): string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const PRESETS: Record<string, Partial<TargetSpec>> = {
  prosody: {
    name: 'prosody', host: '127.0.0.1', port: 15222, tlsPort: 15223, domain: 'bench.local',
    setup: `${join(ROOT, 'bench/anchors/prosody.sh')} start {n}`, teardown: `${join(ROOT, 'bench/anchors/prosody.sh')} stop`,
  },
  ejabberd: {
    name: 'ejabberd', host: '127.0.0.1', port: 25222, tlsPort: 25223, domain: 'bench.local',
    setup: `${join(ROOT, 'bench/anchors/ejabberd.sh')} start {n}`, teardown: `${join(ROOT, 'bench/anchors/ejabberd.sh')} stop`,
  },
  chorus: { name: 'chorus', host: '127.0.0.1', port: 35222, tlsPort: 35223, domain: 'bench.local', chorus: true },
};

/** Splits `a=1 b="x y" c='z'` respecting quotes. */
export function shellWords(s: string): string[] {
  const out: string[] = [];
  let cur = '', quote = '', any = false;
  for (const ch of s) {
    if (quote) { if (ch === quote) quote = ''; else cur += ch; continue; }
    if (ch === '"' || ch === "'") { quote = ch; any = true; continue; }
    if (ch === ' ' || ch === '\t') { if (any || cur) out.push(cur); cur = ''; any = false; continue; }
    cur += ch;
  }
  if (quote) throw new Error(`unterminated quote in: ${s}`);
  if (any || cur) out.push(cur);
  return out;
}

/**
 * A target spec: a preset (`prosody`, `ejabberd`, `chorus`), `host:port[/domain]`, or key=value words
 * (`name= host= port= tlsport= domain= pids=1,2 pidfile= setup= teardown= accounts= schedulers=`),
 * which may follow a preset to override it: `prosody port=15300`.
 */
export function parseTarget(text: string): TargetSpec {
  const words = shellWords(text.trim());
  let t: Partial<TargetSpec> = { host: '127.0.0.1', domain: 'localhost', pids: [] };
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) {
      if (PRESETS[w]) { t = { ...t, ...PRESETS[w] }; continue; }
      const m = /^([^:/\s]+):(\d+)(?:\/(.+))?$/.exec(w);
      if (!m) throw new Error(`bad target word '${w}': expected a preset (${Object.keys(PRESETS).join(', ')}), host:port[/domain] or key=value`);
      t.host = m[1]; t.port = +m[2];
      if (m[3]) t.domain = m[3];
      continue;
    }
    const k = w.slice(0, eq).toLowerCase(), v = w.slice(eq + 1);
    switch (k) {
      case 'name': t.name = v; break;
      case 'host': t.host = v; break;
      case 'port': t.port = num(k, v); break;
      case 'tlsport': case 'tls_port': t.tlsPort = num(k, v); break;
      case 'domain': t.domain = v; break;
      case 'pids': case 'pid': t.pids = [...(t.pids ?? []), ...v.split(/[,+]/).filter(Boolean).map((p) => num(k, p))]; break;
      case 'pidfile': t.pidfile = v; break;
      case 'setup': t.setup = v; break;
      case 'teardown': t.teardown = v; break;
      case 'accounts': t.accounts = v; break;
      case 'schedulers': t.schedulers = num(k, v); break;
      case 'sync': t.sync = v === 'true' || v === '1'; break;
      case 'disable': t.disable = v.split(',').filter(Boolean); break;
      case 'version': t.version = v; break;
      case 'nodeargs': case 'node_args': t.nodeArgs = v; break;
      case 'ref': t.ref = v; break;
      case 'root': t.root = v; break;
      default: throw new Error(`unknown target key '${k}'`);
    }
  }
  if (!t.port) throw new Error(`target '${text}' has no port`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(t.host!) && !t.host!.startsWith('127.')) {
    // The bench sends load; keep it on this machine unless the user clearly means otherwise.
    if (!process.env.CHORUS_BENCH_ALLOW_REMOTE) throw new Error(`target host ${t.host} is not loopback; set CHORUS_BENCH_ALLOW_REMOTE=1 to allow`);
  }
  // `chorus schedulers=1` and `chorus schedulers=2` side by side get names that say which is which.
  if (t.chorus && t.schedulers && !words.some((w) => /^name=/i.test(w))) t.name = `chorus-${t.schedulers}s`;
  if (t.chorus && t.sync && !words.some((w) => /^name=/i.test(w))) t.name = `${t.name ?? 'chorus'}-sync`;
  if (t.chorus && t.disable?.length && !words.some((w) => /^name=/i.test(w))) t.name = `${t.name ?? 'chorus'}-no-${t.disable.join('-')}`;
  t.name ??= `${t.host}:${t.port}`;
  return t as TargetSpec;
}

function num(k: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`target key ${k}: '${v}' is not a number`);
  return n;
}

function sh(cmd: string, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    execFile('/bin/sh', ['-c', cmd], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`command failed: ${cmd}\n${stderr || err.message}`));
      else res(stdout);
    });
  });
}

function keyValues(out: string): Record<string, string> {
  const kv: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv[m[1]] = m[2];
  }
  return kv;
}

/** Brings a target up for one run (fresh server when it has a setup command). */
export async function prepareTarget(spec: TargetSpec, accountsNeeded: number, opts: { password: string; tls: boolean }): Promise<LiveTarget> {
  if (spec.chorus) return spawnChorusTarget(spec, accountsNeeded, opts);
  let { host, port, tlsPort, domain } = spec;
  let pids = [...spec.pids];
  let version = spec.version ?? '';
  if (spec.setup) {
    const kv = keyValues(await sh(spec.setup.replaceAll('{n}', String(accountsNeeded)), 30 * 60_000));
    if (kv.PIDS) pids = kv.PIDS.split(/[ ,]+/).filter(Boolean).map(Number);
    if (kv.PORT) port = +kv.PORT;
    if (kv.TLS_PORT) tlsPort = +kv.TLS_PORT;
    if (kv.DOMAIN) domain = kv.DOMAIN;
    if (kv.VERSION) version ||= kv.VERSION;
  }
  if (spec.pidfile) pids.push(...readFileSync(spec.pidfile, 'utf8').split(/\s+/).filter(Boolean).map(Number));
  if (spec.accounts) await sh(spec.accounts.replaceAll('{n}', String(accountsNeeded)), 30 * 60_000);
  return {
    spec, endpoint: { host, port, tlsPort, domain }, pids, version,
    async stop() { if (spec.teardown) await sh(spec.teardown, 60_000); },
  };
}

// --- Chorus ---

/** Where the bench keeps state between runs (the anchors' servers, Chorus's cached account DBs). */
export function benchStateDir(): string {
  return process.env.BENCH_STATE || join(tmpdir(), `chorus-bench-${process.getuid?.() ?? 0}`);
}

/** `port` if nothing listens on it on 127.0.0.1, else a free port the system picks. */
function portOrFree(port: number): Promise<number> {
  const tryListen = (p: number) => new Promise<number | null>((res) => {
    const srv = createServer();
    srv.once('error', () => res(null));
    srv.listen(p, '127.0.0.1', () => { const got = (srv.address() as { port: number }).port; srv.close(() => res(got)); });
  });
  return tryListen(port).then((p) => p ?? tryListen(0)).then((p) => p ?? port);
}

function git(args: string[], cwd = ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A target spec with its `ref=` resolved to a commit, so every run of a long comparison measures the
 *  same code even if the branch moves meanwhile. */
export function pinRef(text: string): string {
  const spec = parseTarget(text);
  if (!spec.chorus || !spec.ref) return text;
  return `${text} ref=${git(['rev-parse', '--verify', `${spec.ref}^{commit}`])}`;
}

/** Which Chorus code a target runs: a checkout dir (undefined = this one) and a label with its commit. */
export async function chorusSource(spec: Pick<TargetSpec, 'ref' | 'root'>): Promise<{ root?: string; label: string }> {
  if (spec.ref) {
    const sha = git(['rev-parse', '--verify', `${spec.ref}^{commit}`]);
    const dir = join(benchStateDir(), 'chorus-src', sha);
    if (!existsSync(join(dir, 'src', 'node.ts'))) {
      const tmp = `${dir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      execFileSync('/bin/sh', ['-c', `git archive ${sha} | tar -x -C '${tmp}'`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      await symlink(join(ROOT, 'node_modules'), join(tmp, 'node_modules'));
      await rename(tmp, dir).catch(() => rm(tmp, { recursive: true, force: true }));
    }
    return { root: dir, label: `@${sha.slice(0, 7)}` };
  }
  const dir = spec.root ? resolve(spec.root) : ROOT;
  let label = '';
  try {
    const sha = git(['rev-parse', '--short', 'HEAD'], dir);
    const dirty = git(['status', '--porcelain', '--', 'src', 'actors', 'supervisors', 'package.json'], dir).split('\n').filter((l) => l && !/ src\/bench\//.test(l));
    label = `@${sha}${dirty.length ? ` + uncommitted changes in ${dirty.length} files` : ''}`;
  } catch { /* not a git checkout */ }
  return { root: spec.root ? dir : undefined, label };
}

/**
 * Starts Chorus in a child process (bench/lib/chorus-target.ts): its CPU and RSS are then its own.
 * The child's stderr (the node's warn/error log) is kept; lines of it, and an exit during the run,
 * come back in `notes()` for the report.
 */
async function spawnChorusTarget(spec: TargetSpec, accounts: number, opts: { password: string; tls: boolean }): Promise<LiveTarget> {
  const source = await chorusSource(spec);
  // Another bench (or anything) may hold the preset ports: then take free ones.
  const port = await portOrFree(spec.port), tlsPort = spec.tlsPort ? await portOrFree(spec.tlsPort) : undefined;
  const dataDir = await mkdtemp(join(tmpdir(), 'chorus-bench-'));
  const entry = fileURLToPath(new URL('./chorus-target.ts', import.meta.url));
  const args = JSON.stringify({
    port, tlsPort, domain: spec.domain, accounts, password: opts.password, dataDir, tls: opts.tls,
    schedulers: spec.schedulers, sync: spec.sync, disable: spec.disable, cacheDir: join(benchStateDir(), 'chorus'), root: source.root,
  } satisfies ChorusTargetOptions);
  const nodeArgs = shellWords(spec.nodeArgs ?? process.env.CHORUS_BENCH_NODE_ARGS ?? '');
  const child = spawn(process.execPath, [...nodeArgs, '--import', import.meta.resolve('tsx'), entry, args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: source.root ?? ROOT });
  let out = '', log = '', ready = false;
  let exited: string | null = null;
  child.stderr.on('data', (d) => { if (log.length < 4 << 20) log += d; if (!ready) out += d; });
  child.on('exit', (code, signal) => { exited = signal ? `signal ${signal}` : `code ${code}`; });
  ready = await new Promise<boolean>((res) => {
    child.stdout.on('data', (d) => { out += d; if (/CHORUS_READY.*\n/.test(out)) res(true); });
    child.on('exit', () => res(false));
    setTimeout(() => res(false), 10 * 60_000).unref();
  });
  if (!ready) {
    child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw new Error('Chorus target did not start:\n' + out.trim());
  }
  const schedulers = Number(/SCHEDULERS=(\d+)/.exec(out)?.[1]) || undefined;
  let stopping = false;
  const exitedBeforeStop = () => (stopping ? null : exited);
  const pkg = JSON.parse(readFileSync(join(source.root ?? ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    spec, endpoint: { host: '127.0.0.1', port, tlsPort, domain: spec.domain }, pids: [child.pid!],
    version: `chorus ${pkg.version} ${source.label} (${schedulers ?? '?'} schedulers)`.replace(/  +/g, ' '), schedulers,
    async stop() {
      stopping = true;
      if (exited === null) {
        child.kill('SIGTERM');
        await new Promise<void>((res) => {
          const t = setTimeout(() => { child.kill('SIGKILL'); res(); }, 20_000);
          child.on('exit', () => { clearTimeout(t); res(); });
          if (child.exitCode !== null || child.signalCode !== null) { clearTimeout(t); res(); }
        });
      }
      await rm(dataDir, { recursive: true, force: true });
    },
    notes() {
      // Running as root says something of the machine the bench runs on, nothing of the run.
      const lines = log.split('\n').filter((l) => /\[(error|warn)\]|Error|error:/i.test(l) && !l.includes('chorus: running as root'));
      const notes: string[] = [];
      const died = exitedBeforeStop();
      if (died) notes.push(`chorus: the server process exited during the run (${died})`);
      if (lines.length) notes.push(`chorus log: ${lines.length} warn/error lines, first: ${lines.slice(0, 5).map((l) => l.slice(0, 300)).join(' | ')}`);
      return notes;
    },
    log: () => log,
  };
}
