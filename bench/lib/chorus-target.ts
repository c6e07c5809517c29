// A Chorus node booted for a benchmark, and the child-process entry that runs it. The bench's main
// process spawns this file (see spawnChorusTarget in target.ts) so the server's CPU and RSS, read from
// /proc, are its own and not the load generator's. This is the one place that knows how to configure
// Chorus for a benchmark: loopback only, accounts u1..uN imported (SCRAM keys only), rate limits and
// login-failure limits off, encryption optional unless asked. Adjust here if startNode changes shape.
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ChorusConfig } from '../../src/config/index.ts';

type ConfigMod = typeof import('../../src/config/index.ts');
type NodeMod = typeof import('../../src/node.ts');
type AccountsMod = typeof import('../../src/storage/accounts.ts');
type DbMod = typeof import('../../src/storage/db.ts');

/** The server's modules, from this checkout or from another one (`root`, e.g. a pinned commit). */
async function serverModules(root?: string): Promise<{ config: ConfigMod; node: NodeMod; accounts: AccountsMod; db: DbMod }> {
  const base = root ? pathToFileURL(join(root, 'src') + '/').href : new URL('../../src/', import.meta.url).href;
  const load = <T>(path: string) => import(new URL(path, base).href) as Promise<T>;
  const [config, node, accounts, db] = await Promise.all([load<ConfigMod>('config/index.ts'), load<NodeMod>('node.ts'), load<AccountsMod>('storage/accounts.ts'), load<DbMod>('storage/db.ts')]);
  return { config, node, accounts, db };
}

export interface ChorusTargetOptions {
  port: number;
  tlsPort?: number;
  domain: string;
  accounts: number;
  password: string;
  dataDir: string;
  tls: boolean;
  schedulers?: number;
  /** limits.sessions_per_account when more than 10 (the fuzzer logs one account in hundreds of times). */
  sessionsPerAccount?: number;
  /** storage.sync for the node under test. */
  sync?: boolean;
  /** Feature modules turned off (modules.disabled). */
  disable?: string[];
  /** A folder where imported account databases are kept by (count, password, iterations) and copied
   *  from on the next start: importing 5000 accounts costs 15000 PBKDF2 runs. */
  cacheDir?: string;
  iterations?: number;
  logLevel?: ChorusConfig['log_level'];
  /** A Chorus checkout to run instead of this one (its src/node.ts etc.). */
  root?: string;
  /** The address to listen on (127.0.0.1). */
  address?: string;
  /** Federation (bench/s2s.bench.ts): the s2s port, and where the peer domains are. */
  s2s?: { port: number; hosts: Record<string, { host: string; port: number }> };
}

/** The bench config: what `chorus bench` measures. */
export function benchConfig(opts: ChorusTargetOptions, defaultConfig: ConfigMod['defaultConfig']): ChorusConfig {
  const config = defaultConfig(opts.dataDir);
  config.hosts = [opts.domain];
  config.data_dir = opts.dataDir;
  config.listen = {
    address: opts.address ?? '127.0.0.1', c2s: opts.port, c2s_direct_tls: opts.tls && opts.tlsPort ? opts.tlsPort : false,
    s2s: false, s2s_direct_tls: false, http: false, https: false, component: false,
  };
  if (opts.s2s) {
    config.listen.s2s = opts.s2s.port;
    config.s2s = { ...config.s2s, hosts: opts.s2s.hosts, bytes_per_second: false };
  }
  // Plain TCP benchmarks need it off; STARTTLS is still offered (a self-signed certificate is made at start).
  config.c2s_require_encryption = false;
  if (opts.schedulers) config.schedulers = opts.schedulers;
  if (opts.sync) config.storage = { ...config.storage, sync: true };
  if (opts.disable?.length) config.modules = { ...config.modules, disabled: [...config.modules.disabled, ...opts.disable] };
  config.limits = {
    ...config.limits,
    bytes_per_second: false,
    stanzas_per_second: false,
    // a login storm logs every account in; a soak's churn reconnects the same accounts
    sessions_per_account: Math.max(config.limits.sessions_per_account, 10, opts.sessionsPerAccount ?? 0),
    login_attempts: { max_failures: 1e9, window_seconds: 1, address_max_failures: 1e9, address_window_seconds: 1 },
  };
  // Rooms as big as the bench asks for (a room's creator still sets its own size); a pinned revision
  // from before group chat has no such module to give options to.
  if (existsSync(join(opts.root ?? fileURLToPath(new URL('../..', import.meta.url)), 'src/modules/muc.ts'))) {
    config.modules = { ...config.modules, options: { ...config.modules.options, muc: { ...config.modules.options.muc, max_occupants: 100_000 } } };
  }
  config.log_level = opts.logLevel ?? 'warn';
  return config;
}

async function provisionAccounts(opts: ChorusTargetOptions, mods: { accounts: AccountsMod; db: DbMod }): Promise<void> {
  const iterations = opts.iterations ?? mods.accounts.DEFAULT_ITERATIONS;
  const importInto = async (dataDir: string) => {
    const db = await mods.db.openDb(dataDir);
    try {
      const accounts = Array.from({ length: opts.accounts }, (_, i) => ({ jid: `u${i + 1}@${opts.domain}`, password: opts.password }));
      const r = await mods.accounts.importAccounts(db, accounts, { hosts: [opts.domain], iterations });
      if (r.failed.length) throw new Error(`importing bench accounts failed: ${r.failed[0]!.error}`);
    } finally { await db.close(); }
  };
  if (!opts.cacheDir) return importInto(opts.dataDir);
  // Keyed by the code that writes account records too, so another checkout never reads a stale format.
  const src = (f: string) => { try { return readFileSync(join(opts.root ?? fileURLToPath(new URL('../../', import.meta.url)), f)); } catch { return ''; } };
  const key = createHash('sha256').update(`${opts.domain}\0${opts.password}\0${iterations}\0`).update(src('src/storage/accounts.ts')).update(src('src/storage/db.ts')).digest('hex').slice(0, 12);
  const cached = join(opts.cacheDir, `accounts-${opts.accounts}-${key}`);
  if (!existsSync(join(cached, 'db'))) {
    const tmp = `${cached}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await importInto(tmp);
    await mkdir(opts.cacheDir, { recursive: true });
    await rename(tmp, cached).catch(async () => { await rm(tmp, { recursive: true, force: true }); });
  }
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  await cp(join(cached, 'db'), join(opts.dataDir, 'db'), { recursive: true });
}

/** Imports the accounts, then starts the node. Runs in the child process (or in a test). */
export async function startChorusTarget(opts: ChorusTargetOptions, log?: (level: string, text: string) => void): Promise<{ stop(): Promise<void>; schedulers: number }> {
  const mods = await serverModules(opts.root);
  await provisionAccounts(opts, mods);
  const config = benchConfig(opts, mods.config.defaultConfig);
  const node = await mods.node.startNode(config, log ? { log } : {});
  return { stop: () => node.stop(), schedulers: config.schedulers };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as ChorusTargetOptions;
  try {
    const node = await startChorusTarget(opts);
    process.stdout.write(`CHORUS_READY PIDS=${process.pid} SCHEDULERS=${node.schedulers}\n`);
    let stopping = false;
    const stop = async () => {
      if (stopping) return;
      stopping = true;
      await node.stop().catch((e: Error) => process.stderr.write(`bench: node.stop failed: ${e.message}\n`));
      process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  } catch (e) {
    process.stderr.write(((e as Error).stack ?? (e as Error).message) + '\n');
    process.exit(1);
  }
}
