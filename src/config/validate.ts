// Validation of the parsed YAML tree into a ChorusConfig. It never stops at the first problem: every
// bad key is collected so an operator fixes the file in one go, and each message names the key path,
// what was expected and what was found.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { defaultConfig } from './defaults.ts';
import { checkDomain, checkBareJid } from './names.ts';
import { nearest } from './near.ts';
import {
  LISTENER_NAMES, LOG_LEVELS,
  type ChorusConfig, type ComponentConfig, type LogLevel, type PortSetting, type TlsHostConfig,
} from './types.ts';

export type KeyPath = readonly (string | number)[];
export interface ConfigProblem { path: KeyPath; message: string }

export interface ValidateOptions {
  /** Directory relative paths are resolved against (the config file's directory). */
  baseDir: string;
  source?: string | null;
  /** Check that tls cert/key files exist and are readable (on by default). */
  checkFiles?: boolean;
}

export function formatPath(path: KeyPath): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : (out ? '.' : '') + part;
  return out;
}

/** How a found value is shown in a message: strings quoted, structures named. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

class Ctx {
  problems: ConfigProblem[] = [];
  constructor(readonly opts: ValidateOptions) {}
  bad(path: KeyPath, expected: string, got: unknown): void {
    this.problems.push({ path, message: `expected ${expected}, got ${describe(got)}` });
  }
  say(path: KeyPath, message: string): void {
    this.problems.push({ path, message });
  }
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A section: absent or empty means "all defaults"; unknown keys are reported with a suggestion. */
function section(ctx: Ctx, v: unknown, path: KeyPath, known: readonly string[]): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (!isMapping(v)) {
    ctx.bad(path, `a mapping with keys ${known.join(', ')}`, v);
    return {};
  }
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) ctx.say([...path, key], unknownKeyMessage(key, known));
  }
  return v;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = nearest(key, known);
  return near
    ? `unknown key; did you mean "${near}"?`
    : `unknown key (expected one of: ${known.join(', ')})`;
}

function integer(ctx: Ctx, obj: Record<string, unknown>, key: string, path: KeyPath,
  fallback: number, min: number, max: number, what = 'an integer'): number {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    ctx.bad([...path, key], `${what} ${min}-${max}`, v);
    return fallback;
  }
  return v;
}

function boolean(ctx: Ctx, obj: Record<string, unknown>, key: string, path: KeyPath, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') {
    ctx.bad([...path, key], 'true or false', v);
    return fallback;
  }
  return v;
}

function string(ctx: Ctx, obj: Record<string, unknown>, key: string, path: KeyPath, fallback: string, what = 'a string'): string {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || v.trim() === '') {
    ctx.bad([...path, key], what, v);
    return fallback;
  }
  return v;
}

/** undefined when invalid (already reported), so it is left out of port-clash checks. */
function port(ctx: Ctx, obj: Record<string, unknown>, key: string, path: KeyPath, fallback: PortSetting): PortSetting | undefined {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (v === false) return false;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    ctx.bad([...path, key], 'a port number 1-65535', v);
    return undefined;
  }
  return v;
}

function stringList(ctx: Ctx, v: unknown, path: KeyPath, what: string,
  item: (s: string, p: KeyPath) => string | null): string[] | null {
  if (!Array.isArray(v)) {
    ctx.bad(path, `a list of ${what}`, v);
    return null;
  }
  const out: string[] = [];
  const seen = new Map<string, number>();
  v.forEach((entry, i) => {
    if (typeof entry !== 'string' || entry.trim() === '') {
      ctx.bad([...path, i], what.replace(/s$/, ''), entry);
      return;
    }
    const norm = item(entry.trim(), [...path, i]);
    if (norm === null) return;
    const first = seen.get(norm);
    if (first !== undefined) {
      ctx.say([...path, i], `${JSON.stringify(norm)} is already listed at ${formatPath([...path, first])}`);
      return;
    }
    seen.set(norm, i);
    out.push(norm);
  });
  return out;
}

const TOP_KEYS = [
  'hosts', 'admins', 'data_dir', 'listen', 'tls', 'components', 's2s', 'c2s_require_encryption', 'c2s_sasl2', 'c2s_fast_token_days', 'schedulers', 'limits',
  'stream_management', 'storage', 'metrics', 'observer', 'modules', 'log_level', 'log_file',
] as const;
const MODULE_NAME = /^[a-z][a-z0-9_-]*$/;

export function validateConfig(raw: unknown, opts: ValidateOptions): { config: ChorusConfig; problems: ConfigProblem[] } {
  const ctx = new Ctx(opts);
  const config = defaultConfig(opts.baseDir);
  config.source = opts.source ?? null;
  const top = section(ctx, raw, [], TOP_KEYS);

  if (top.hosts !== undefined) {
    const hosts = stringList(ctx, top.hosts, ['hosts'], 'domains', (s, p) => {
      const r = checkDomain(s);
      if (typeof r === 'string') return r;
      ctx.bad(p, `a domain name (${r.problem})`, s);
      return null;
    });
    if (hosts && hosts.length === 0 && Array.isArray(top.hosts) && top.hosts.length === 0) {
      ctx.say(['hosts'], 'expected at least one domain, got an empty list');
    } else if (hosts && hosts.length) config.hosts = hosts;
  }

  if (top.admins !== undefined && top.admins !== null) {
    const admins = stringList(ctx, top.admins, ['admins'], 'bare JIDs (user@domain)', (s, p) => {
      const r = checkBareJid(s);
      if (typeof r === 'string') return r;
      ctx.bad(p, `a bare JID like admin@example.org (${r.problem})`, s);
      return null;
    });
    if (admins) config.admins = admins;
  }

  if (top.data_dir !== undefined) {
    const dir = string(ctx, top, 'data_dir', [], '', 'a directory path');
    // "~/" as a shell would expand it; YAML does not.
    if (dir) config.data_dir = resolve(opts.baseDir, dir.replace(/^~(?=\/|$)/, homedir()));
  }

  const listen = section(ctx, top.listen, ['listen'], ['address', ...LISTENER_NAMES]);
  const address = string(ctx, listen, 'address', ['listen'], config.listen.address, 'an IP address such as "::" or "127.0.0.1"');
  if (isIP(address) || address === 'localhost') config.listen.address = address;
  else ctx.bad(['listen', 'address'], 'an IP address such as "::" or "127.0.0.1"', address);
  const usedBy = new Map<number, string>();
  for (const name of LISTENER_NAMES) {
    const p = port(ctx, listen, name, ['listen'], config.listen[name]);
    if (p === undefined || p === false) {
      if (p === false) config.listen[name] = false;
      continue;
    }
    config.listen[name] = p;
    const other = usedBy.get(p);
    if (other) ctx.say(['listen', name], `port ${p} is also used by listen.${other}`);
    else usedBy.set(p, name);
  }
  // Direct TLS for servers is a second door to federation, which listen.s2s turns on or off.
  if (config.listen.s2s === false && config.listen.s2s_direct_tls !== false) {
    if (isMapping(top.listen) && typeof top.listen.s2s_direct_tls === 'number') ctx.say(['listen', 's2s_direct_tls'], 'needs federation on: set listen.s2s to a port as well (or s2s_direct_tls: false)');
    config.listen.s2s_direct_tls = false;
  }

  config.tls = validateTls(ctx, top.tls, config.hosts);
  config.components = validateComponents(ctx, top.components, config.hosts);
  validateS2s(ctx, top.s2s, config);

  config.c2s_require_encryption = boolean(ctx, top, 'c2s_require_encryption', [], config.c2s_require_encryption);
  config.c2s_sasl2 = boolean(ctx, top, 'c2s_sasl2', [], config.c2s_sasl2);
  config.c2s_fast_token_days = integer(ctx, top, 'c2s_fast_token_days', [], config.c2s_fast_token_days, 1, 3650, 'a number of days');
  config.schedulers = integer(ctx, top, 'schedulers', [], config.schedulers, 1, 1024, 'a number of worker threads');

  const L = config.limits;
  const limits = section(ctx, top.limits, ['limits'],
    ['max_stanza_bytes', 'bytes_per_second', 'burst_bytes', 'stanzas_per_second', 'stanza_burst', 'stanza_timeout_seconds', 'sessions_per_account', 'auth_timeout_seconds', 'bosh_inactivity_seconds', 'connections_per_ip', 'connections_per_ip_exempt', 'unauthenticated_connections', 'max_outbound_bytes', 'max_xml_depth', 'max_xml_attributes', 'login_attempts']);
  // RFC 6120 §13.12: a server must accept stanzas of at least 10000 bytes.
  L.max_stanza_bytes = integer(ctx, limits, 'max_stanza_bytes', ['limits'], L.max_stanza_bytes, 10_000, 64 * 1024 * 1024, 'a byte count');
  if (limits.bytes_per_second === false) L.bytes_per_second = false;
  else L.bytes_per_second = integer(ctx, limits, 'bytes_per_second', ['limits'], L.bytes_per_second as number, 1, 2 ** 31,
    'false (unlimited) or a byte count');
  L.burst_bytes = integer(ctx, limits, 'burst_bytes', ['limits'], L.burst_bytes, 1, 2 ** 31, 'a byte count');
  if (limits.stanzas_per_second === false) L.stanzas_per_second = false;
  else L.stanzas_per_second = integer(ctx, limits, 'stanzas_per_second', ['limits'], L.stanzas_per_second as number, 1, 1_000_000,
    'false (unlimited) or a number of stanzas');
  L.stanza_burst = integer(ctx, limits, 'stanza_burst', ['limits'], L.stanza_burst, 1, 1_000_000, 'a number of stanzas');
  L.stanza_timeout_seconds = integer(ctx, limits, 'stanza_timeout_seconds', ['limits'], L.stanza_timeout_seconds, 0, 3600, 'a number of seconds (0: no limit)');
  L.sessions_per_account = integer(ctx, limits, 'sessions_per_account', ['limits'], L.sessions_per_account, 1, 10_000);
  L.auth_timeout_seconds = integer(ctx, limits, 'auth_timeout_seconds', ['limits'], L.auth_timeout_seconds, 1, 3600, 'a number of seconds');
  L.bosh_inactivity_seconds = integer(ctx, limits, 'bosh_inactivity_seconds', ['limits'], L.bosh_inactivity_seconds, 1, 3600, 'a number of seconds');
  L.connections_per_ip = integer(ctx, limits, 'connections_per_ip', ['limits'], L.connections_per_ip, 1, 1_000_000, 'a number of connections');
  if (limits.connections_per_ip_exempt !== undefined) {
    const exempt = stringList(ctx, limits.connections_per_ip_exempt, ['limits', 'connections_per_ip_exempt'], 'IP addresses', (s, p) => {
      if (isIP(s)) return s;
      ctx.bad(p, 'an IP address like 127.0.0.1 or ::1', s);
      return null;
    });
    if (exempt) L.connections_per_ip_exempt = exempt;
  }
  L.max_xml_depth = integer(ctx, limits, 'max_xml_depth', ['limits'], L.max_xml_depth, 4, 1000, 'a nesting depth');
  L.max_xml_attributes = integer(ctx, limits, 'max_xml_attributes', ['limits'], L.max_xml_attributes, 8, 10_000, 'an attribute count');
  L.max_outbound_bytes = integer(ctx, limits, 'max_outbound_bytes', ['limits'], L.max_outbound_bytes, 65_536, 2 ** 31, 'a byte count');
  L.unauthenticated_connections = integer(ctx, limits, 'unauthenticated_connections', ['limits'], L.unauthenticated_connections, 1, 10_000_000, 'a number of connections');
  const attempts = section(ctx, limits.login_attempts, ['limits', 'login_attempts'], ['max_failures', 'window_seconds', 'address_max_failures', 'address_window_seconds']);
  L.login_attempts.max_failures = integer(ctx, attempts, 'max_failures', ['limits', 'login_attempts'], L.login_attempts.max_failures, 1, 1_000_000);
  L.login_attempts.window_seconds = integer(ctx, attempts, 'window_seconds', ['limits', 'login_attempts'], L.login_attempts.window_seconds, 1, 86_400, 'a number of seconds');
  L.login_attempts.address_max_failures = integer(ctx, attempts, 'address_max_failures', ['limits', 'login_attempts'], L.login_attempts.address_max_failures, 1, 1_000_000);
  L.login_attempts.address_window_seconds = integer(ctx, attempts, 'address_window_seconds', ['limits', 'login_attempts'], L.login_attempts.address_window_seconds, 1, 86_400, 'a number of seconds');

  const sm = section(ctx, top.stream_management, ['stream_management'], ['resume_timeout_seconds', 'max_unacked']);
  const S = config.stream_management;
  S.resume_timeout_seconds = integer(ctx, sm, 'resume_timeout_seconds', ['stream_management'], S.resume_timeout_seconds, 0, 86_400, 'a number of seconds');
  S.max_unacked = integer(ctx, sm, 'max_unacked', ['stream_management'], S.max_unacked, 1, 1_000_000, 'a stanza count');

  const st = section(ctx, top.storage, ['storage'], ['sync']);
  config.storage.sync = boolean(ctx, st, 'sync', ['storage'], config.storage.sync);
  const mt = section(ctx, top.metrics, ['metrics'], ['enabled', 'username', 'password']);
  config.metrics.enabled = boolean(ctx, mt, 'enabled', ['metrics'], config.metrics.enabled);
  config.metrics.username = string(ctx, mt, 'username', ['metrics'], config.metrics.username);
  if (mt.password !== undefined && mt.password !== null) {
    const pw = string(ctx, mt, 'password', ['metrics'], '', 'a password of at least 12 characters');
    if (pw.length < 12) ctx.say(['metrics', 'password'], 'at least 12 characters (it guards the server\'s figures from anyone who can reach the HTTP listener)');
    else config.metrics.password = pw;
  }

  const ob = section(ctx, top.observer, ['observer'], ['enabled']);
  config.observer.enabled = boolean(ctx, ob, 'enabled', ['observer'], config.observer.enabled);

  validateModules(ctx, top.modules, config);

  if (top.log_level !== undefined) {
    if (typeof top.log_level === 'string' && (LOG_LEVELS as readonly string[]).includes(top.log_level)) {
      config.log_level = top.log_level as LogLevel;
    } else ctx.bad(['log_level'], `one of ${LOG_LEVELS.join(', ')}`, top.log_level);
  }

  if (top.log_file !== undefined && top.log_file !== null) {
    const file = string(ctx, top, 'log_file', [], '', 'a file path');
    if (file) config.log_file = resolve(opts.baseDir, file.replace(/^~(?=\/|$)/, homedir()));
  }

  return { config, problems: ctx.problems };
}

function validateS2s(ctx: Ctx, v: unknown, config: ChorusConfig): void {
  const s2s = section(ctx, v, ['s2s'], ['hosts', 'connect_timeout_seconds', 'idle_timeout_seconds', 'secure_auth', 'ca_file', 'bytes_per_second', 'max_stanza_bytes']);
  const S = config.s2s;
  if (s2s.bytes_per_second === false) S.bytes_per_second = false;
  else S.bytes_per_second = integer(ctx, s2s, 'bytes_per_second', ['s2s'], S.bytes_per_second as number, 1024, 2 ** 31, 'false (unlimited) or a byte count');
  S.max_stanza_bytes = integer(ctx, s2s, 'max_stanza_bytes', ['s2s'], S.max_stanza_bytes, 10_000, 16_777_216, 'a byte count');
  S.secure_auth = boolean(ctx, s2s, 'secure_auth', ['s2s'], S.secure_auth);
  if (s2s.ca_file !== undefined && s2s.ca_file !== null) {
    const f = string(ctx, s2s, 'ca_file', ['s2s'], '', 'the path of a PEM file of CA certificates');
    const abs = f ? resolve(ctx.opts.baseDir, f) : '';
    const why = abs && ctx.opts.checkFiles !== false ? unreadable(abs) : null;
    if (why) ctx.say(['s2s', 'ca_file'], `cannot read ${JSON.stringify(abs)}: ${why}`);
    else if (abs) S.ca_file = abs;
  }
  S.connect_timeout_seconds = integer(ctx, s2s, 'connect_timeout_seconds', ['s2s'], S.connect_timeout_seconds, 1, 300, 'a number of seconds');
  S.idle_timeout_seconds = integer(ctx, s2s, 'idle_timeout_seconds', ['s2s'], S.idle_timeout_seconds, 1, 86_400, 'a number of seconds');
  const hosts = s2s.hosts;
  if (hosts === undefined || hosts === null) return;
  if (!isMapping(hosts)) { ctx.bad(['s2s', 'hosts'], "a mapping of remote domain to 'host:port'", hosts); return; }
  for (const [raw, target] of Object.entries(hosts)) {
    const path = ['s2s', 'hosts', raw];
    const d = checkDomain(raw);
    if (typeof d !== 'string') { ctx.bad(path, `a domain as the key (${d.problem})`, raw); continue; }
    const m = typeof target === 'string' ? /^(tls:\/\/)?(?:\[([^\]]+)\]|([^:\s/]+)):(\d{1,5})$/.exec(target) : null;
    const port = m ? Number(m[4]) : 0;
    if (!m || port < 1 || port > 65_535) { ctx.bad(path, "'host:port', or 'tls://host:port' for Direct TLS (an IPv6 address in brackets: '[::1]:5269')", target); continue; }
    S.hosts[d] = { host: m[2] ?? m[3]!, port, directTls: m[1] !== undefined };
  }
}

function validateComponents(ctx: Ctx, v: unknown, hosts: readonly string[]): Record<string, ComponentConfig> {
  const out: Record<string, ComponentConfig> = {};
  if (v === undefined || v === null) return out;
  if (!isMapping(v)) {
    ctx.bad(['components'], 'a mapping of component domain to { secret }', v);
    return out;
  }
  for (const [raw, entry] of Object.entries(v)) {
    const path = ['components', raw];
    const d = checkDomain(raw);
    if (typeof d !== 'string') { ctx.bad(path, `a domain as the key (${d.problem})`, raw); continue; }
    if (hosts.includes(d)) { ctx.say(path, `${d} is a host of accounts; a component serves a domain of its own (e.g. gateway.${d})`); continue; }
    if (!isMapping(entry)) { ctx.bad(path, 'a mapping with the component\'s secret', entry); continue; }
    for (const key of Object.keys(entry)) if (key !== 'secret') ctx.say([...path, key], unknownKeyMessage(key, ['secret']));
    const secret = entry.secret;
    if (typeof secret !== 'string' || secret.length < 8) { ctx.bad([...path, 'secret'], 'the shared secret, a string of at least 8 characters', secret); continue; }
    out[d] = { secret };
  }
  return out;
}

function validateTls(ctx: Ctx, v: unknown, hosts: readonly string[]): Record<string, TlsHostConfig> {
  const out: Record<string, TlsHostConfig> = {};
  if (v === undefined || v === null) return out;
  if (!isMapping(v)) {
    ctx.bad(['tls'], 'a mapping of host domain to { cert, key }', v);
    return out;
  }
  for (const [rawHost, entry] of Object.entries(v)) {
    const path = ['tls', rawHost];
    const d = checkDomain(rawHost);
    if (typeof d !== 'string') {
      ctx.bad(path, `a host domain as the key (${d.problem})`, rawHost);
      continue;
    }
    // Subdomains are allowed for components (e.g. muc.example.org next to example.org).
    if (!hosts.some((h) => d === h || d.endsWith('.' + h))) {
      ctx.say(path, `not one of hosts (${hosts.join(', ')}) nor a subdomain of one`);
    }
    if (!isMapping(entry)) {
      ctx.bad(path, 'a mapping with cert and key file paths', entry);
      continue;
    }
    for (const key of Object.keys(entry)) {
      if (key !== 'cert' && key !== 'key') ctx.say([...path, key], unknownKeyMessage(key, ['cert', 'key']));
    }
    const files: Partial<TlsHostConfig> = {};
    for (const key of ['cert', 'key'] as const) {
      const f = entry[key];
      if (f === undefined) {
        ctx.say([...path, key], `missing; expected the path of the ${key === 'cert' ? 'PEM certificate chain (e.g. fullchain.pem)' : 'PEM private key (e.g. privkey.pem)'}`);
        continue;
      }
      if (typeof f !== 'string' || f.trim() === '') {
        ctx.bad([...path, key], 'a file path', f);
        continue;
      }
      const abs = isAbsolute(f) ? f : resolve(ctx.opts.baseDir, f);
      if (ctx.opts.checkFiles !== false) {
        const why = unreadable(abs);
        if (why) {
          ctx.say([...path, key], `cannot read ${JSON.stringify(abs)}: ${why}`);
          continue;
        }
      }
      files[key] = abs;
    }
    if (files.cert && files.key) out[d] = { cert: files.cert, key: files.key };
  }
  return out;
}

function unreadable(file: string): string | null {
  try {
    accessSync(file, constants.R_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES') {
      return `permission denied for uid ${process.getuid?.() ?? '?'} (Let's Encrypt keys are readable by root only: ` +
        'copy them with a deploy hook or grant a group read access)';
    }
    return code ?? String(e);
  }
}

function validateModules(ctx: Ctx, v: unknown, config: ChorusConfig): void {
  const m = section(ctx, v, ['modules'], ['enabled', 'disabled', 'options', 'paths', 'hosts']);
  const names = (key: 'enabled' | 'disabled'): string[] | null =>
    stringList(ctx, m[key], ['modules', key], 'module names', (s, p) => {
      if (MODULE_NAME.test(s)) return s;
      ctx.bad(p, 'a module name (lowercase letters, digits, _ or -)', s);
      return null;
    });
  if (m.enabled !== undefined && m.enabled !== null) config.modules.enabled = names('enabled');
  if (m.disabled !== undefined && m.disabled !== null) config.modules.disabled = names('disabled') ?? [];
  const enabled = config.modules.enabled ?? [];
  config.modules.disabled.forEach((name, i) => {
    if (enabled.includes(name)) ctx.say(['modules', 'disabled', i], `"${name}" is also in modules.enabled; list it in one of them only`);
  });
  // Folders of the operator's own modules (Prosody's plugin_paths), relative to the config file.
  if (m.paths !== undefined && m.paths !== null) {
    config.modules.paths = stringList(ctx, m.paths, ['modules', 'paths'], 'folders', (s, p) => {
      const abs = isAbsolute(s) ? s : resolve(ctx.opts.baseDir, s);
      if (ctx.opts.checkFiles === false || (existsSync(abs) && statSync(abs).isDirectory())) return abs;
      ctx.bad(p, 'an existing folder of module files', s);
      return null;
    }) ?? [];
  }
  // Per-host options over modules.options; their values are checked against each module's specs
  // by moduleProblems (src/xmpp/modules.ts), as modules.options are.
  if (m.hosts !== undefined && m.hosts !== null) {
    if (!isMapping(m.hosts)) ctx.bad(['modules', 'hosts'], 'a mapping of host to { module: options }', m.hosts);
    else {
      const hosts: NonNullable<ChorusConfig['modules']['hosts']> = {};
      for (const [host, mods] of Object.entries(m.hosts)) {
        if (!config.hosts.includes(host)) { ctx.bad(['modules', 'hosts', host], `one of the hosts (${config.hosts.join(', ')})`, host); continue; }
        if (!isMapping(mods)) { ctx.bad(['modules', 'hosts', host], 'a mapping of module name to its options', mods); continue; }
        hosts[host] = {};
        for (const [name, opts] of Object.entries(mods)) {
          if (!MODULE_NAME.test(name)) ctx.bad(['modules', 'hosts', host, name], 'a module name as the key', name);
          else if (opts !== null && opts !== undefined && !isMapping(opts)) ctx.bad(['modules', 'hosts', host, name], 'a mapping of that module\'s options', opts);
          else hosts[host]![name] = (opts ?? {}) as Record<string, unknown>;
        }
      }
      config.modules.hosts = hosts;
    }
  }
  if (m.options === undefined || m.options === null) return;
  if (!isMapping(m.options)) {
    ctx.bad(['modules', 'options'], 'a mapping of module name to its options', m.options);
    return;
  }
  for (const [name, opts] of Object.entries(m.options)) {
    if (!MODULE_NAME.test(name)) {
      ctx.bad(['modules', 'options', name], 'a module name as the key', name);
      continue;
    }
    if (opts === null || opts === undefined) config.modules.options[name] = {};
    else if (!isMapping(opts)) ctx.bad(['modules', 'options', name], 'a mapping of that module\'s options', opts);
    else config.modules.options[name] = opts;
  }
}
