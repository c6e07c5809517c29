// A Chorus node from its config: the actor runtime with the XMPP actor kinds (actors/), the XMPP
// service on every scheduler (src/xmpp-service.ts), the listeners and the admin commands.
import { randomBytes } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChorusConfig } from './config/index.ts';
import { accountAdminHandlers } from './cli/accounts.ts';
import { createTlsContexts, type TlsContexts } from './net/tls.ts';
import { streamListener } from './net/listener.ts';
import { s2sDialer } from './net/dialer.ts';
import { NS } from './xml/namespaces.ts';
import { ConnectionCensus } from './net/census.ts';
import { BOOT, type ConnectionOptions } from './net/connection.ts';
import { startRuntime, type RunningRuntime } from './runtime/node.ts';
import { nodeTree } from '../supervisors/tree.ts';
import { NoAnswer, type Runtime } from './runtime/runtime.ts';
import { typeErrors } from './runtime/typecheck.ts';
import { loadModules, moduleFiles } from './xmpp/modules.ts';
import { httpApp, httpListener, httpTasks } from './net/http.ts';
import { webSocketEndpoint } from './net/websocket.ts';
import { boshEndpoint } from './net/bosh.ts';
import { observerEndpoint } from './net/observer.ts';
import { backupDb } from './storage/backup.ts';
import { upgradeStorage } from './storage/format.ts';
import { openDb } from './storage/db.ts';
import { exportServer } from './cli/migrate.ts';
import { metricsEndpoint } from './net/metrics.ts';
import { socketServices } from './net/socket-services.ts';
import { kvStorage } from './storage/kv.ts';
import { ensurePrivateDataDir, usePrivateUmask } from './storage/private-files.ts';
import { isLockedError } from './storage/db.ts';
import { OperatorError } from './operator-error.ts';
import type { ChildSpec } from './runtime/supervisor.ts';
import type { XmppSettings } from './xmpp-service.ts';

const ACTORS = fileURLToPath(new URL('../actors', import.meta.url));
const XMPP_SERVICE = new URL('./xmpp-service.ts', import.meta.url).href;

export interface ChorusNode extends RunningRuntime { config: ChorusConfig; tls: TlsContexts | null }

const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

export async function startNode(config: ChorusConfig, opts: { log?: (level: string, text: string) => void } = {}): Promise<ChorusNode> {
  // Before anything is created: data_dir holds verifiers, offline messages and keys, so every file,
  // LevelDB directory, certificate and socket Chorus makes is owner-only (umask 077).
  usePrivateUmask();
  const max = LEVELS.indexOf(config.log_level);
  const sink = logSink(config.log_file);
  const log = opts.log ?? ((level: string, text: string) => {
    if (LEVELS.indexOf(level) <= max) sink.write(`${new Date().toISOString()} [${level}] ${text}\n`);
  });
  if (process.getuid?.() === 0) {
    log('warn', 'chorus: running as root: a bug, or a key stolen from it, would own the whole machine; run it as a user of its own ' +
      '(deploy/chorus.service and "Run it as a service" in the README)');
  }
  ensurePrivateDataDir(config.data_dir, log);
  // Before the runtime opens it: a database of another format is refused or brought up to date.
  const db = await openDb(config.data_dir).catch(lockedDatabase(config));
  try { await upgradeStorage(db, (text) => log('info', text)); } finally { await db.close(); }
  const tls = await createTlsContexts(config, { log: (line) => log('info', line), warn: (line) => log('warn', line) });
  const settings: XmppSettings = {
    hosts: config.hosts,
    admins: config.admins,
    requireEncryption: config.c2s_require_encryption,
    sasl2: config.c2s_sasl2,
    fastTokenDays: config.c2s_fast_token_days,
    components: Object.fromEntries(Object.entries(config.components).map(([d, c]) => [d, c.secret])),
    sessionsPerAccount: config.limits.sessions_per_account,
    maxStanzaBytes: config.limits.max_stanza_bytes,
    serverSecret: serverSecret(config.data_dir),
    loginAttempts: {
      maxFailures: config.limits.login_attempts.max_failures, windowSeconds: config.limits.login_attempts.window_seconds,
      addressMaxFailures: config.limits.login_attempts.address_max_failures, addressWindowSeconds: config.limits.login_attempts.address_window_seconds,
    },
    modules: config.modules,
    federation: config.listen.s2s !== false ? { idleTimeoutMs: config.s2s.idle_timeout_seconds * 1000, secureAuth: config.s2s.secure_auth } : null,
    bootId: BOOT,
    dataDir: config.data_dir,
    web: { http: config.listen.http, https: config.listen.https },
  };
  const conn: ConnectionOptions = {
    maxStanzaBytes: config.limits.max_stanza_bytes,
    bytesPerSecond: config.limits.bytes_per_second || 0,
    burstBytes: config.limits.burst_bytes,
    stanzasPerSecond: config.limits.stanzas_per_second || 0,
    stanzaBurst: config.limits.stanza_burst,
    stanzaTimeoutMs: config.limits.stanza_timeout_seconds * 1000,
    authTimeoutMs: config.limits.auth_timeout_seconds * 1000,
    resumeTimeoutMs: config.stream_management.resume_timeout_seconds * 1000,
    maxUnacked: config.stream_management.max_unacked,
    maxOutboundBytes: config.limits.max_outbound_bytes,
    maxDepth: config.limits.max_xml_depth,
    maxAttributes: config.limits.max_xml_attributes,
    tls,
    census: new ConnectionCensus({ perAddress: config.limits.connections_per_ip, unauthenticated: config.limits.unauthenticated_connections, exempt: config.limits.connections_per_ip_exempt }),
    log,
  };
  // This thread runs the loaded modules' HTTP routes (file sharing's /upload/) and TCP services (the
  // SOCKS5 proxy): the modules are loaded here too, for their declarations.
  const modules = await loadModules(config.hosts, config.modules, config.admins, settings.web);
  if (config.listen.https !== false) {
    // Clients reach service domains (upload.<host>) over HTTPS by name: a host with a real
    // certificate that does not cover them has file sharing that fails in every client.
    for (const sd of config.hosts.flatMap((h) => modules.servicesOf(h))) {
      if (tls.certificateFor(sd.host)?.selfSigned === false && !tls.contextFor(sd.domain)) {
        log('warn', `tls: no certificate covers ${sd.domain} (module ${sd.module}): clients will refuse it over HTTPS; get one that names it too (certbot: -d ${sd.host} -d ${sd.domain}) and add it to tls`);
      }
    }
  }
  const node = await startRuntime({
    tree: nodeTree,
    dataDir: config.data_dir,
    schedulers: config.schedulers,
    sync: config.storage.sync,
    // An operator's module folder may bring the actor kinds its service domains need (actors/<kind>/).
    actorDirs: [ACTORS, ...(config.modules.paths ?? []).map((p) => join(p, 'actors')).filter((d) => existsSync(d))],
    serviceModules: [XMPP_SERVICE],
    settings: { xmpp: settings },
    log,
    listeners: (rt) => {
      const specs: ChildSpec[] = [];
      if (config.listen.c2s !== false) specs.push(streamListener('c2s', rt, config.listen.c2s, config.listen.address, false, tls, conn));
      if (config.listen.c2s_direct_tls !== false) specs.push(streamListener('c2s_direct_tls', rt, config.listen.c2s_direct_tls, config.listen.address, true, tls, conn));
      // Server streams through the same engine, decided by their own machine (actors/s2sin).
      if (config.listen.s2s !== false) {
        // Both directions show our certificate and read the peer's against the system's CAs and ours.
        const verifyPeers = { ca: [...rootCertificates, ...(config.s2s.ca_file ? [readFileSync(config.s2s.ca_file, 'utf8')] : [])] };
        const rate = config.s2s.bytes_per_second || 0;
        // A server link carries many users' stanzas: its byte rate is its limit, not a client's stanza rate.
        const s2s = { ...conn, verifyPeers, bytesPerSecond: rate, burstBytes: 4 * rate, stanzasPerSecond: 0, maxStanzaBytes: config.s2s.max_stanza_bytes };
        const inbound = { ...s2s, kind: 's2sin', actorInput: { secureAuth: config.s2s.secure_auth } };
        specs.push(streamListener('s2s', rt, config.listen.s2s, config.listen.address, false, tls, inbound));
        if (config.listen.s2s_direct_tls !== false) specs.push(streamListener('s2s_direct_tls', rt, config.listen.s2s_direct_tls, config.listen.address, true, tls, inbound));
        specs.push(s2sDialer(rt, config.s2s, s2s));
      }
      if (config.listen.http !== false || config.listen.https !== false) {
        const metrics = config.metrics.enabled ? metricsEndpoint(rt, conn.census, config.metrics) : null;
        const observer = config.observer.enabled ? observerEndpoint(rt, { hosts: config.hosts, admins: config.admins, serverSecret: settings.serverSecret, census: conn.census, log }) : null;
        const app = httpApp(modules, { storage: kvStorage(rt.db), dataDir: config.data_dir, secret: settings.serverSecret, now: Date.now, log }, { metrics, observer });
        const web = { ws: webSocketEndpoint(rt, conn, config.c2s_require_encryption), bosh: boshEndpoint(rt, conn, { requireEncryption: config.c2s_require_encryption, inactivitySeconds: config.limits.bosh_inactivity_seconds }) };
        if (config.listen.http !== false) specs.push(httpListener('http', config.listen.http, config.listen.address, null, app, log, web));
        if (config.listen.https !== false) specs.push(httpListener('https', config.listen.https, config.listen.address, tls, app, log, web));
        specs.push(httpTasks(app));
      }
      specs.push(...socketServices(rt, modules, log));
      // XEP-0114's handshake is a hash over plain TCP: components connect on loopback only.
      if (config.listen.component !== false && Object.keys(config.components).length) {
        specs.push(streamListener('component', rt, config.listen.component, '127.0.0.1', false, null, { ...conn, kind: 'component', stanzasPerSecond: 0, contentNamespaces: [NS.COMPONENT_ACCEPT] }));
      }
      return specs;
    },
    adminCommands: (rt, builtin) => new Map([
      ...accountAdminHandlers(rt.db, { hosts: config.hosts, cleanUp: (bare) => deleteInUserActor(rt, bare) }),
      // Certificates are re-read on every reload: open connections keep theirs, new ones get the new.
      ['reload', async (args: Record<string, unknown>) => {
        if (!args.kind) sink.reopen(); // after logrotate moved the file
        const module = typeof args.kind === 'string' ? (await moduleFiles(config.modules.paths)).get(args.kind) : undefined;
        if (module) return { modules: await moduleChange(rt, 'reload', module.def.name, module.file) };
        const certificates = args.kind ? undefined : await tls.reload();
        // The errors name their host already (tls.<host>: …).
        for (const f of certificates?.failed ?? []) log('error', `reload: ${f.error.startsWith(`tls.${f.host}:`) ? f.error : `tls.${f.host}: ${f.error}`}; still serving the previous certificate`);
        for (const w of certificates?.warnings ?? []) log('warn', `reload: tls.${w.host}: ${w.warning}`);
        const kinds = await builtin.get('reload')!(args);
        log('info', `reload: ${args.kind ? `kind ${String(args.kind)}` : 'all kinds'}${certificates ? `, certificates of ${certificates.reloaded.join(', ') || 'no host'}` : ''}`);
        return { certificates, kinds };
      }],
      ['load', async (args: Record<string, unknown>) => {
        const name = String(args.module ?? '');
        const all = await moduleFiles(config.modules.paths);
        const module = all.get(name);
        if (!module) throw new Error(`no module named '${name}' (available: ${[...all.keys()].join(', ')})`);
        return { modules: await moduleChange(rt, 'load', name, module.file) };
      }],
      ['unload', async (args: Record<string, unknown>) => ({ modules: await moduleChange(rt, 'unload', String(args.module ?? '')) })],
      // XEP-0227 of every account, read while the node runs (src/cli/migrate.ts).
      ['export', async (args: Record<string, unknown>) => {
        if (typeof args.file !== 'string' || !isAbsolute(args.file)) throw new Error('export needs an absolute file');
        return exportServer(rt.db, config.hosts, modules, args.file);
      }],
      // A consistent copy of the database while the node runs (src/storage/backup.ts).
      ['backup', async (args: Record<string, unknown>) => {
        if (typeof args.dir !== 'string' || !isAbsolute(args.dir)) throw new Error('backup needs an absolute dir');
        return backupDb(rt.db, config.data_dir, args.dir);
      }],
      // Each live outbound link says how it is (actors/s2s).
      ['s2s', async () => {
        const links = (await rt.stats(true, 's2s')).flatMap((st) => (st.list ?? []).map((a) => a.address));
        return Promise.all(links.map(async (address) => {
          const a = await rt.ask(address, { type: 'operator', command: 'info' }).catch((e: Error) => ({ ok: false, error: e.message })) as { ok: boolean; result?: unknown; error?: string };
          return a.ok ? a.result : { link: address, error: a.error };
        }));
      }],
    ]),
    onFatal: () => { process.exitCode = 1; },
  }).catch(lockedDatabase(config));
  log('info', `chorus: serving ${config.hosts.join(', ')} on ${describe(config)}; data in ${config.data_dir}`);
  return { ...node, config, tls };
}

/** Two nodes on one data_dir: the second finds LevelDB's lock taken, and says so with the fix. */
const lockedDatabase = (config: ChorusConfig) => (e: unknown): never => {
  if (isLockedError(e)) throw new OperatorError(`data_dir ${config.data_dir}: its database is in use by another process`,
    'is a node already running with this data_dir (chorus status)? Stop it first, or give this node a data_dir of its own');
  throw e;
};

/** A feature module loaded, reloaded or unloaded on every scheduler; new code only once the compiler
 *  has passed it, as for kinds. The checks that can refuse (dependencies) see the same set on every
 *  thread, so all of them agree. */
async function moduleChange(rt: Runtime, verb: 'load' | 'reload' | 'unload', name: string, file?: string): Promise<unknown[]> {
  if (file) {
    const errors = await typeErrors(dirname(file));
    if (errors?.length) throw new Error(`${verb} of module ${name} refused: its code does not typecheck:\n${errors.join('\n')}`);
  }
  // One result per scheduler thread, each with its own module set.
  const out = (await rt.callServices('xmpp', `${verb}Module`, [name])).map((r, i) => ({ scheduler: i + 1, ...(r as object) }));
  rt.log('info', `${verb}: module ${name}${file ? ` (${file})` : ''}`);
  return out;
}

/** A deleted account's user actor removes its data and closes its sessions; resolves when it has.
 *  The message is durable: a node that stops first does it at the next start. */
async function deleteInUserActor(rt: Runtime, bare: string): Promise<void> {
  try {
    await rt.ask(`user:${bare}`, { type: 'delete' });
  } catch (e) {
    throw e instanceof NoAnswer ? new Error('the account is deleted, but its data was not removed within 60 s (the node retries it)') : e;
  }
}

function describe(c: ChorusConfig): string {
  const l = c.listen;
  const components = Object.keys(c.components);
  const open = [l.c2s !== false && `c2s ${l.address}:${l.c2s}`, l.c2s_direct_tls !== false && `direct TLS ${l.address}:${l.c2s_direct_tls}`,
    l.s2s !== false && `s2s ${l.address}:${l.s2s}${l.s2s_direct_tls !== false ? ` and Direct TLS :${l.s2s_direct_tls}` : ''} (federation ${c.s2s.secure_auth ? 'by certificate only' : 'by certificate or dialback'})`,
    l.http !== false && `http ${l.address}:${l.http}`, l.https !== false && `https ${l.address}:${l.https}`,
    l.component !== false && components.length > 0 && `components 127.0.0.1:${l.component} (${components.join(', ')})`].filter(Boolean).join(', ');
  return l.component !== false && components.length === 0 ? `${open}; closed: component ${l.component} (no components configured)` : open;
}

/** Where log lines go: stderr, or a file appended to that `reopen` opens anew (logrotate's move). */
function logSink(file: string | null): { write(line: string): void; reopen(): void } {
  if (!file) return { write: (line) => { process.stderr.write(line); }, reopen: () => undefined };
  const open = () => {
    try { return openSync(file, 'a', 0o600); } catch (e) {
      throw new OperatorError(`log_file ${file}: cannot open it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        `create its folder, writable by the node's user, or set log_file elsewhere (or null for stderr)`);
    }
  };
  let fd = open();
  return {
    // Synchronous: a line is in the file before the event it tells of goes on, even if we crash next.
    write: (line) => { writeSync(fd, line); },
    reopen: () => { const old = fd; fd = open(); closeSync(old); },
  };
}

/** A per-node secret (fake SCRAM salts for unknown users must not change between restarts). */
function serverSecret(dataDir: string): string {
  const file = join(dataDir, 'secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}
