// What the XMPP actors of one scheduler thread share: settings, the loaded modules, storage, the
// credential lookup and the login throttle. Installed by the runtime as the 'xmpp' service; actors
// get it with service<XmppService>('xmpp').
import type { Level } from 'level';
import type { SchedulerData } from './runtime/scheduler.ts';
import { accountLookup, hasRole } from './storage/accounts.ts';
import { kvStorage } from './storage/kv.ts';
import { callAt } from './runtime/api.ts';
import { addressKey, AuthThrottle, defaultNormalize, type LoginThrottle } from './sasl/throttle.ts';
import type { CredentialLookup, SaslServer } from './sasl/types.ts';
import type { Storage, WebPorts } from './xmpp/module.ts';
import { fastTokens, type FastTokens } from './storage/fast-tokens.ts';

import type { Domains, ServiceDomain } from './xmpp/routing.ts';
import { dirname } from 'node:path';
import type { KindLoader } from './runtime/loader.ts';
import type { DurableStore } from './runtime/durable-store.ts';
import type { ModuleDefinition } from './xmpp/module.ts';
import { loadModules, moduleFiles, rawOptionsOf, type ModuleSet, type ModulesConfig } from './xmpp/modules.ts';

/** The part of the config the actors need; plain data, passed to every scheduler. */
export interface XmppSettings {
  hosts: string[];
  /** The config's admins (bare JIDs): what modules acting for admins check. */
  admins: string[];
  requireEncryption: boolean;
  /** Offer SASL2 with Bind 2 (config c2s_sasl2). */
  sasl2: boolean;
  /** How long a FAST token lives (config c2s_fast_token_days). */
  fastTokenDays: number;
  sessionsPerAccount: number;
  maxStanzaBytes: number;
  serverSecret: string;
  /** Failed logins per account and per address, each within its window (limits.login_attempts). */
  loginAttempts: { maxFailures: number; windowSeconds: number; addressMaxFailures: number; addressWindowSeconds: number };
  /** External components (XEP-0114): domain → the secret of its handshake. */
  components: Record<string, string>;
  /** Server-to-server links (listen.s2s on): stanzas for remote domains go to link actors; null:
   *  no federation, remote-server-not-found. */
  federation: { idleTimeoutMs: number; /** s2s.secure_auth: certificates only, no dialback */ secureAuth: boolean } | null;
  /** The node process's boot id (connections are `conn:<boot>.<n>`). */
  bootId: string;
  modules: ModulesConfig;
  /** The node's data directory (where modules keep files: uploads). */
  dataDir: string;
  /** The HTTP listeners' ports (false: off), for the URLs modules hand out. */
  web: WebPorts;
}

export interface XmppService {
  settings: XmppSettings;
  /** Read at each message (a module reload swaps it). */
  modules: ModuleSet;
  /** Hot reload of one feature module on this thread: its code as it is now, the same options. */
  reloadModule(name: string): Promise<{ module: string; file: string; loads: number }>;
  /** Loads a module that is not loaded (its code as it is now), or unloads one, on this thread. */
  loadModule(name: string): Promise<{ module: string; file: string; loads: number }>;
  unloadModule(name: string): Promise<{ module: string }>;
  storage: Storage;
  lookup(host: string): CredentialLookup;
  throttle: LoginThrottle;
  /** Every domain this node serves, for routing (routing.ts); a stream's 'to' must be a host. */
  domains: Domains;
  /** The clock modules read (StanzaContext.now): injected, so tests can set the time. */
  now(): number;
  /** SASL exchanges in progress, by session address: kept by the thread, so a hot reload of the
   *  session kind between two steps goes on with the mechanism's state. */
  saslExchanges: Map<string, SaslServer>;
  /** FAST tokens (XEP-0484). */
  fast: FastTokens;
}

export async function install(services: Map<string, unknown>, data: SchedulerData): Promise<void> {
  const settings = data.settings.xmpp as XmppSettings;
  const la = settings.loginAttempts;
  const bucket = (failures: number, seconds: number) => ({ capacity: failures, refillPerMinute: (failures * 60) / seconds });
  services.set(THROTTLE, new AuthThrottle({ account: bucket(la.maxFailures, la.windowSeconds), address: bucket(la.addressMaxFailures, la.addressWindowSeconds) }));
  services.set('xmpp', xmppService(settings, await loadModules(settings.hosts, settings.modules, settings.admins, settings.web, (bare, storage) => hasRole(storage, bare, 'admin')), services));
}

/** The service over this thread's `db`, `loader` and login throttle (services), with these modules. */
export function xmppService(settings: XmppSettings, modules: ModuleSet, services: Map<string, unknown>, now: () => number = Date.now): XmppService {
  const db = services.get('db') as Level<string, string>;
  const lookups = new Map<string, CredentialLookup>();
  const hosts = new Set(settings.hosts);
  const components = componentDomains(settings);
  const svc: XmppService = {
    settings, modules, storage: kvStorage(db, services.get('store') as DurableStore),
    lookup: (host) => { let l = lookups.get(host); if (!l) lookups.set(host, (l = accountLookup(db, host))); return l; },
    throttle: nodeThrottle(() => services.get(THROTTLE) as AuthThrottle),
    domains: { isHost: (domain) => hosts.has(domain), service: (domain) => svc.modules.service(domain) ?? components.get(domain) },
    now,
    saslExchanges: new Map(),
    fast: fastTokens(db, settings.fastTokenDays * 86_400_000, now),
    reloadModule: async (name) => {
      if (!svc.modules.loaded.some((d) => d.name === name)) throw new Error(`module ${name} is not loaded on this node (chorus load ${name} loads it)`);
      const { def, file, loads } = await freshModule(name);
      svc.modules = svc.modules.replacing(def, rawOptionsOf(settings.modules, name));
      return { module: name, file, loads };
    },
    loadModule: async (name) => {
      const { def, file, loads } = await freshModule(name);
      svc.modules = svc.modules.adding(def, rawOptionsOf(settings.modules, name));
      return { module: name, file, loads };
    },
    unloadModule: async (name) => {
      svc.modules = svc.modules.without(name);
      return { module: name };
    },
  };
  /** A module's code as it is on disk now, bundled fresh with the helpers beside it (the contract and
   *  libraries stay this thread's instances). */
  async function freshModule(name: string): Promise<{ def: ModuleDefinition; file: string; loads: number }> {
    const found = (await moduleFiles(settings.modules.paths)).get(name);
    if (!found) throw new Error(`no module named '${name}'`);
    const { exports, loads } = await (services.get('loader') as KindLoader).evaluate(found.file, dirname(found.file), `module ${name}`);
    const def = exports.default as ModuleDefinition | undefined;
    if (!def?.setup || def.name !== name) throw new Error(`${found.file}: its default export is no longer defineModule({ name: '${name}', ... })`);
    return { def, file: found.file, loads };
  }
  return svc;
}

/** The components' domains as service domains: every address in one is the component's stream
 *  (`external:<domain>`, one actor for the whole domain). */
function componentDomains(settings: XmppSettings): Map<string, ServiceDomain> {
  return new Map(Object.keys(settings.components ?? {}).map((domain) => [domain, {
    domain, host: settings.hosts.find((h) => domain.endsWith(`.${h}`)) ?? settings.hosts[0]!, kind: 'external', module: 'components', whole: true,
  }]));
}

/** This thread's share of the login throttle: the buckets whose home is here. */
const THROTTLE = 'login-throttle';

/**
 * The node's login throttle. Streams are placed on a thread by connection before anyone knows the
 * account, so per-thread buckets would multiply every limit by the number of schedulers: each
 * account's bucket lives on the thread of `throttle:<account>`, each address's on that of
 * `throttle:<address key>`, and every attempt is counted there.
 */
function nodeThrottle(local: () => AuthThrottle): LoginThrottle {
  const at = (key: string, method: keyof AuthThrottle, ...args: unknown[]) => callAt(`throttle:${key}`, THROTTLE, method, ...args);
  return {
    // As AuthThrottle.check, with the address's and the account's state each on its own home.
    async check(account, address) {
      const source = address === undefined ? { retryAfterMs: 0, failed: true }
        : await at(addressKey(address), 'sourceState', address) as { retryAfterMs: number; failed: boolean };
      const accountWait = source.failed && account !== undefined ? await at(defaultNormalize(account), 'accountWait', account, address) as number : 0;
      const wait = Math.max(source.retryAfterMs, accountWait);
      return { allowed: wait === 0, retryAfterMs: wait };
    },
    async recordFailure(account, address) {
      const streaks = await Promise.all([
        account === undefined ? 0 : at(defaultNormalize(account), 'accountFailure', account, address) as Promise<number>,
        address === undefined ? 0 : at(addressKey(address), 'addressFailure', address) as Promise<number>,
      ]);
      return local().delayFor(Math.max(...streaks));
    },
    async recordSuccess(account, address) {
      if (account !== undefined) await at(defaultNormalize(account), 'recordSuccess', account, address);
    },
  };
}
