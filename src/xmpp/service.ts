// What the XMPP actors of one scheduler thread share: settings, the loaded modules, storage, the
// credential lookup and the login throttle. Installed by the runtime as the 'xmpp' service; actors
// get it with service<XmppService>('xmpp').
import type { ClassicLevel } from 'classic-level';
import type { SchedulerData } from '../runtime/scheduler.ts';
import { accountLookup } from '../storage/accounts.ts';
import { kvStorage } from '../storage/kv.ts';
import { AuthThrottle } from '../sasl/throttle.ts';
import type { CredentialLookup } from '../sasl/types.ts';
import type { Storage } from './module.ts';
import { loadModules, type ModuleSet, type ModulesConfig } from './modules.ts';

/** The part of the config the actors need; plain data, passed to every scheduler. */
export interface XmppSettings {
  hosts: string[];
  requireEncryption: boolean;
  sessionsPerAccount: number;
  maxStanzaBytes: number;
  serverSecret: string;
  loginAttempts: { maxFailures: number; windowSeconds: number };
  /** The node process's boot id (connections are `conn:<boot>.<n>`). */
  bootId: string;
  modules: ModulesConfig;
}

export interface XmppService {
  settings: XmppSettings;
  modules: ModuleSet;
  storage: Storage;
  lookup(host: string): CredentialLookup;
  throttle: AuthThrottle;
  isLocal(domain: string): boolean;
}

export async function install(services: Map<string, unknown>, data: SchedulerData): Promise<void> {
  const settings = data.settings.xmpp as XmppSettings;
  const db = services.get('db') as ClassicLevel<string, string>;
  const modules = await loadModules(settings.hosts, settings.modules);
  const lookups = new Map<string, CredentialLookup>();
  const hosts = new Set(settings.hosts);
  const svc: XmppService = {
    settings, modules, storage: kvStorage(db),
    lookup: (host) => { let l = lookups.get(host); if (!l) lookups.set(host, (l = accountLookup(db, host))); return l; },
    throttle: new AuthThrottle({ account: { capacity: settings.loginAttempts.maxFailures, refillPerMinute: (settings.loginAttempts.maxFailures * 60) / settings.loginAttempts.windowSeconds } }),
    isLocal: (domain) => hosts.has(domain),
  };
  services.set('xmpp', svc);
}
