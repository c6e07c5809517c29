// Loads the feature modules of src/modules/ that the config enables, validates their options and keeps
// their registrations: the hook table the session and user actors run. One ModuleSet per scheduler
// thread (installed as the 'modules' service); modules are plain objects, importing one does nothing.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { prepareDomainpart } from './jid.ts';
import { nearest } from '../config/near.ts';
import type { ServiceDomain } from './routing.ts';
import { andThen, type AdminRoleLookup, type CommandDefinition, type HookName, type HookResult, type Hooks, type Identity, type IqRequest, type ModuleApi, type ModuleDefinition, type OptionSpec, type PreauthFeaturesEvent, type PreauthIq, type WebPorts } from './module.ts';
import type { XmlElement } from '../xml/element.ts';
import { serialize } from '../xml/builder.ts';

const MODULE_DIR = fileURLToPath(new URL('../modules/', import.meta.url));

export interface ModulesConfig {
  /** null = every module that is on by default; a list = exactly these. */
  enabled: string[] | null;
  disabled: string[];
  /** Per-module options, keyed by module name; each module validates its own map. */
  options: Record<string, Record<string, unknown>>;
  /** More folders of module files, after src/modules/ (Prosody's plugin_paths). */
  paths?: string[];
  /** Per-host options over `options` (Prosody's options under a VirtualHost): host → module → options. */
  hosts?: Record<string, Record<string, Record<string, unknown>>>;
}

/** A module's options as given: the global map and each host's overrides. */
export interface RawOptions { global?: Record<string, unknown>; hosts?: Record<string, Record<string, unknown>> }

/** What the config says of one module's options. */
export function rawOptionsOf(cfg: ModulesConfig, module: string): RawOptions {
  const hosts: Record<string, Record<string, unknown>> = {};
  for (const [host, mods] of Object.entries(cfg.hosts ?? {})) if (mods[module]) hosts[host] = mods[module]!;
  return { global: cfg.options[module], hosts };
}

type Entry = { module: string; priority: number; handler: (e: any) => HookResult };

export interface PreauthFeatures { elements: readonly XmlElement[]; xml: string }

export class ModuleSet {
  private hooks = new Map<string, Entry[]>();
  /** What each module's setup returned, for its dependents. */
  private apis = new Map<string, object>();
  readonly loaded: ModuleDefinition[] = [];
  // Shared by a set and those that replace it: modules read them through features() at request time.
  readonly hostFeatures: Set<string>;
  readonly accountFeatures: Set<string>;
  readonly streamFeatures: string[];
  /** The namespaces modules take inside a Bind 2 request (XEP-0386). */
  readonly bind2Features: string[];
  readonly identities: { host: Identity[]; account: Identity[] };
  /** The service domains the loaded modules declare, by domain (routing.ts's Domains reads them). */
  private services = new Map<string, ServiceDomain>();
  /** What each module declared, per host, from that host's options at its setup. */
  private declared = new Map<string, ServiceDomain[]>();
  /** The storage prefixes of the loaded modules: prefix → module. */
  private prefixes = new Map<string, string>();
  /** The ad-hoc commands each module offers, by module. */
  private commandsOf = new Map<string, CommandDefinition[]>();
  /** The newest complete set of this lineage: what fire() and commands() read at request time, as
   *  a hook run on the actor's current set would. */
  private readonly head: { set: ModuleSet };
  /** The config's admins (bare JIDs). */
  readonly admins: ReadonlySet<string>;

  /** The node's HTTP listeners, for the URLs modules hand out. */
  readonly web: WebPorts | null;
  /** Whether an account was given the admin role (stored with the account: the storage layer knows
   *  where); null where the set is loaded without accounts (the CLI's listings). */
  private readonly adminRole: AdminRoleLookup | null;

  constructor(readonly hosts: string[], from?: ModuleSet, admins: readonly string[] = [], web: WebPorts | null = null, adminRole: AdminRoleLookup | null = null) {
    this.head = from?.head ?? { set: this };
    this.admins = from?.admins ?? new Set(admins);
    this.web = from ? from.web : web;
    this.adminRole = from ? from.adminRole : adminRole;
    this.hostFeatures = from?.hostFeatures ?? new Set();
    this.accountFeatures = from?.accountFeatures ?? new Set();
    this.streamFeatures = from?.streamFeatures ?? [];
    this.bind2Features = from?.bind2Features ?? [];
    this.identities = from?.identities ?? { host: [], account: [] };
  }

  /**
   * A new set with `def` in place of the loaded module of its name (a hot reload): that module's
   * hooks replaced, the others' kept. A new set, not a change to this one: a hook chain running on
   * this set (an actor suspended in it) finishes on the code it started with.
   */
  replacing(def: ModuleDefinition, rawOptions: RawOptions = {}): ModuleSet {
    const i = this.loaded.findIndex((d) => d.name === def.name);
    if (i < 0) throw new Error(`module ${def.name} is not loaded`);
    for (const dep of def.depends ?? []) if (!this.loaded.some((d) => d.name === dep)) throw new Error(`module ${def.name} now needs ${dep}, which is not loaded`);
    const next = this.copyWithout(def.name);
    next.setUp(def, rawOptions);
    next.loaded.splice(i, 0, def); // its place in load order, for the features
    return next.redeclared();
  }

  /** A new set with one more module (loaded on a running node); what it depends on must be loaded. */
  adding(def: ModuleDefinition, rawOptions: RawOptions = {}): ModuleSet {
    if (this.loaded.some((d) => d.name === def.name)) throw new Error(`module ${def.name} is already loaded (chorus reload ${def.name} loads its new code)`);
    for (const dep of def.depends ?? []) if (!this.loaded.some((d) => d.name === dep)) throw new Error(`module ${def.name} needs ${dep}: load ${dep} first`);
    const next = this.copyWithout(null);
    next.setUp(def, rawOptions);
    next.loaded.push(def);
    return next.redeclared();
  }

  /** A new set without the module: its hooks, features and API gone. Refused while another needs it. */
  without(name: string): ModuleSet {
    if (!this.loaded.some((d) => d.name === name)) throw new Error(`module ${name} is not loaded`);
    const needing = this.loaded.filter((d) => d.depends?.includes(name)).map((d) => d.name);
    if (needing.length) throw new Error(`module ${name} is needed by ${needing.join(', ')}: unload ${needing.length > 1 ? 'them' : 'it'} first`);
    return this.copyWithout(name).redeclared();
  }

  /** This set's registrations less one module's (or none). The feature sets are shared, so they are
   *  recomputed (redeclared) only once the new set is complete: a failed setup leaves them as they were. */
  private copyWithout(name: string | null): ModuleSet {
    const next = new ModuleSet(this.hosts, this);
    next.apis = new Map([...this.apis].filter(([n]) => n !== name));
    next.declared = new Map([...this.declared].filter(([n]) => n !== name));
    next.commandsOf = new Map([...this.commandsOf].filter(([n]) => n !== name));
    for (const [key, list] of this.hooks) {
      const kept = list.filter((e) => e.module !== name);
      if (kept.length) next.hooks.set(key, kept);
    }
    next.loaded.push(...this.loaded.filter((d) => d.name !== name));
    return next;
  }

  /** The disco and stream features as the loaded modules declare them, in load order. */
  private redeclared(): this {
    this.hostFeatures.clear(); this.accountFeatures.clear(); this.streamFeatures.length = 0; this.bind2Features.length = 0;
    this.identities.host.length = 0; this.identities.account.length = 0;
    this.services = new Map();
    this.prefixes = new Map();
    for (const d of this.loaded) this.declare(d);
    this.head.set = this;
    return this;
  }

  private declare(def: ModuleDefinition): void {
    for (const f of def.features?.host ?? []) this.hostFeatures.add(f);
    for (const f of def.features?.account ?? []) this.accountFeatures.add(f);
    this.streamFeatures.push(...(def.streamFeatures ?? []));
    this.bind2Features.push(...(def.bind2 ?? []));
    this.identities.host.push(...(def.identities?.host ?? []));
    this.identities.account.push(...(def.identities?.account ?? []));
    for (const p of def.storage ?? []) {
      const owner = this.prefixes.get(p);
      if (owner) throw new Error(`modules ${owner} and ${def.name} both keep their data under ${p}!`);
      this.prefixes.set(p, def.name);
    }
    for (const s of this.declared.get(def.name) ?? []) {
      const taken = this.services.get(s.domain);
      if (taken) throw new Error(`config error: modules: ${s.domain} is served by both ${taken.module} and ${s.module}`);
      this.services.set(s.domain, s);
    }
  }

  /** The service domain `domain` is, if a loaded module serves it. */
  service(domain: string): ServiceDomain | undefined { return this.services.get(domain); }
  /** The service domains of one host. */
  servicesOf(host: string): ServiceDomain[] { return [...this.services.values()].filter((sd) => sd.host === host); }

  add(def: ModuleDefinition, rawOptions: RawOptions = {}): void {
    this.setUp(def, rawOptions);
    this.loaded.push(def);
    this.declare(def);
  }

  /** Validates the options and runs the module's setup against this set (its hooks land here). */
  private setUp(def: ModuleDefinition, raw: RawOptions): void {
    const options = validateOptions(def.name, def.options ?? {}, raw.global ?? {});
    const perHost = new Map(Object.entries(raw.hosts ?? {}).map(([host, o]) => [host, validateOptions(def.name, def.options ?? {}, { ...raw.global, ...o }, `modules.hosts.${host}.${def.name}`)]));
    const api: ModuleApi<any> = {
      options, hosts: this.hosts,
      optionsFor: (host: string) => perHost.get(host) ?? options,
      hook: (name, handler, priority = 0) => this.register(def.name, name, handler as (e: any) => HookResult, priority),
      iq: (type, target, xmlns, handler) => this.register(def.name, `iq/${type}/${target}/${xmlns}`, (e: IqRequest) => andThen(handler(e), () => true), 0),
      preauth: (type, xmlns, handler) => this.register(def.name, `preauth/${type}/${xmlns}`, (e: PreauthIq) => andThen(handler(e), () => true), 0),
      features: () => ({ host: this.hostFeatures, account: this.accountFeatures }),
      identities: () => this.identities,
      services: (host: string) => this.servicesOf(host),
      command: (c) => {
        const taken = [...this.commandsOf].find(([, list]) => list.some((o) => o.node === c.node));
        if (taken && taken[0] !== def.name) throw new Error(`modules ${taken[0]} and ${def.name} both offer the command ${c.node}`);
        this.commandsOf.set(def.name, [...(this.commandsOf.get(def.name) ?? []).filter((o) => o.node !== c.node), c]);
      },
      commands: () => [...this.head.set.commandsOf.values()].flat(),
      fire: (name, event) => this.head.set.run(name, event),
      admins: this.admins,
      isAdmin: async (bare, storage) => this.admins.has(bare) || (this.adminRole !== null && await this.adminRole(bare, storage)),
      web: this.web,
      depends: <T>(name: string): T => {
        if (!def.depends?.includes(name)) throw new Error(`module ${def.name} uses ${name} without naming it in depends`);
        const dep = this.apis.get(name);
        if (!dep) throw new Error(`module ${def.name} needs ${name}, which is not loaded yet`);
        return dep as T;
      },
    };
    this.apis.set(def.name, def.setup(api) ?? {});
    if (def.services) this.declared.set(def.name, this.hosts.flatMap((host) => def.services!(host, api.optionsFor(host) as never, this.admins).map((sd) => {
      if (this.hosts.includes(sd.domain)) throw new Error(`config error: modules: ${def.name} would serve ${sd.domain}, which is a host of accounts`);
      if (!/^[a-z][a-z0-9_-]*$/.test(sd.kind)) throw new Error(`module ${def.name}: bad actor kind ${JSON.stringify(sd.kind)} for ${sd.domain}`);
      return { domain: prepareDomainpart(sd.domain), host, kind: sd.kind, module: def.name, ...(sd.name ? { name: sd.name } : {}), ...(sd.settings ? { settings: sd.settings } : {}), ...(sd.whole ? { whole: true } : {}) };
    })));
  }

  private register(module: string, key: string, handler: (e: any) => HookResult, priority: number): void {
    // A new array each time: a chain already running keeps iterating the one it started on.
    const list = [...(this.hooks.get(key) ?? []), { module, priority, handler }];
    list.sort((a, b) => b.priority - a.priority);
    this.hooks.set(key, list);
  }

  /** Runs a hook's handlers by priority until one returns (or resolves to) true; true if one did.
   *  Synchronous while every handler is: a promise only once a handler returns one. */
  run<K extends HookName>(name: K, event: Hooks[K]): boolean | Promise<boolean> {
    const list = this.hooks.get(name);
    return list ? runFrom(list, 0, event) : false;
  }

  /** The IQ handler for `<type>/<target>/<xmlns>`, if a module registered one. */
  iqHandler(type: string, target: string, xmlns: string): ((e: IqRequest) => HookResult) | undefined {
    return this.hooks.get(`iq/${type}/${target}/${xmlns}`)?.[0]?.handler;
  }

  /** The handler of an IQ before authentication for `<type>/<xmlns>`, if a module registered one. */
  preauthHandler(type: string, xmlns: string): ((e: PreauthIq) => HookResult) | undefined {
    return this.hooks.get(`preauth/${type}/${xmlns}`)?.[0]?.handler;
  }

  /** The stream features the loaded modules offer before authentication on `host`, and their XML
   *  as a key: asked at every stream header, answered once per set (they depend on the host, TLS
   *  and the options, which a new set brings). */
  preauthFeatures(host: string, secure: boolean): PreauthFeatures {
    const key = `${host}|${secure}`;
    let f = this.preauthMemo.get(key);
    if (!f) {
      const event: PreauthFeaturesEvent = { host, secure, features: [] };
      void this.run('stream/pre-auth-features', event);
      this.preauthMemo.set(key, (f = { elements: event.features, xml: event.features.map(serialize).join('') }));
    }
    return f;
  }
  private preauthMemo = new Map<string, PreauthFeatures>();

  has(name: string): boolean { return this.hooks.has(name); }

}

function runFrom(list: Entry[], from: number, event: unknown): boolean | Promise<boolean> {
  for (let i = from; i < list.length; i++) {
    const r = list[i]!.handler(event);
    if (r === true) return true;
    if (r instanceof Promise) return r.then((v) => (v === true ? true : runFrom(list, i + 1, event)));
  }
  return false;
}


function validateOptions(module: string, specs: Record<string, OptionSpec>, raw: Record<string, unknown>, at = `modules.options.${module}`): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) if (!(key in specs)) throw new Error(`config error: ${at}.${key}: unknown option (known: ${Object.keys(specs).join(', ') || 'none'})`);
  for (const [key, spec] of Object.entries(specs)) {
    const v = raw[key] ?? spec.default;
    const where = `${at}.${key}`;
    switch (spec.type) {
      case 'number':
        if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`config error: ${where}: expected a number, got ${JSON.stringify(v)}`);
        if (spec.min !== undefined && v < spec.min) throw new Error(`config error: ${where}: must be at least ${spec.min}, got ${v}`);
        if (spec.max !== undefined && v > spec.max) throw new Error(`config error: ${where}: must be at most ${spec.max}, got ${v}`);
        break;
      case 'boolean': if (typeof v !== 'boolean') throw new Error(`config error: ${where}: expected true or false, got ${JSON.stringify(v)}`); break;
      case 'string':
        if (typeof v !== 'string') throw new Error(`config error: ${where}: expected a string, got ${JSON.stringify(v)}`);
        if (spec.enum && !spec.enum.includes(v)) throw new Error(`config error: ${where}: expected one of ${spec.enum.join(', ')}, got ${JSON.stringify(v)}`);
        break;
      case 'strings': if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`config error: ${where}: expected a list of strings`); break;
    }
    out[key] = v;
  }
  return out;
}

/** The files of every module: src/modules/ and then `paths`, by module name (the first wins). */
export async function moduleFiles(paths: readonly string[] = []): Promise<Map<string, { file: string; def: ModuleDefinition }>> {
  const out = new Map<string, { file: string; def: ModuleDefinition }>();
  for (const dir of [MODULE_DIR, ...paths]) {
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()) {
      const file = join(dir, f);
      const mod = (await import(pathToFileURL(file).href)) as { default?: ModuleDefinition };
      if (mod.default === undefined) continue; // a helper of a module (e.g. its storage)
      if (!mod.default.setup) throw new Error(`${file}: its default export is not a defineModule({...})`);
      if (!out.has(mod.default.name)) out.set(mod.default.name, { file, def: mod.default });
    }
  }
  return out;
}

/** Every module: files whose default export is a defineModule(). */
export async function availableModules(paths: readonly string[] = []): Promise<ModuleDefinition[]> {
  return [...(await moduleFiles(paths)).values()].map((m) => m.def);
}

/**
 * Every problem loadModules would stop at, all at once: names that match no module, bad module
 * options, a needed module disabled. `chorus check` and `chorus start` run it on the config before
 * anything starts, so a mistake is a config error there and not a scheduler dying.
 */
export async function moduleProblems(hosts: string[], cfg: ModulesConfig): Promise<string[]> {
  const all = await availableModules(cfg.paths);
  const byName = new Map(all.map((d) => [d.name, d]));
  const known = [...byName.keys()].join(', ');
  const unknown = (name: string) => { const near = nearest(name, byName.keys()); return near ? `did you mean '${near}'?` : `available: ${known}`; };
  const problems: string[] = [];
  const lists: Array<[string, string[]]> = [['enabled', cfg.enabled ?? []], ['disabled', cfg.disabled], ['options', Object.keys(cfg.options)]];
  for (const [list, names] of lists) {
    for (const name of names) if (!byName.has(name)) problems.push(`modules.${list}: no module named '${name}' (${unknown(name)})`);
  }
  for (const [name, raw] of Object.entries(cfg.options)) {
    const def = byName.get(name);
    if (!def) continue;
    try { validateOptions(name, def.options ?? {}, raw); } catch (e) { problems.push(unprefixed(e)); }
  }
  for (const [host, mods] of Object.entries(cfg.hosts ?? {})) {
    if (!hosts.includes(host)) problems.push(`modules.hosts.${host}: not one of the hosts (${hosts.join(', ')})`);
    for (const [name, raw] of Object.entries(mods)) {
      const def = byName.get(name);
      if (!def) { problems.push(`modules.hosts.${host}: no module named '${name}' (${unknown(name)})`); continue; }
      try { validateOptions(name, def.options ?? {}, { ...cfg.options[name], ...raw }, `modules.hosts.${host}.${name}`); } catch (e) { problems.push(unprefixed(e)); }
    }
  }
  if (problems.length === 0) {
    try { await loadModules(hosts, cfg); } catch (e) { problems.push(unprefixed(e)); }
  }
  return problems;
}

const unprefixed = (e: unknown): string => String((e as Error)?.message ?? e).replace(/^config error: /, '');

/** Loads the enabled modules in dependency order. */
export async function loadModules(hosts: string[], cfg: ModulesConfig, admins: readonly string[] = [], web: WebPorts | null = null, adminRole: AdminRoleLookup | null = null): Promise<ModuleSet> {
  const all = await availableModules(cfg.paths);
  const byName = new Map(all.map((d) => [d.name, d]));
  for (const name of [...(cfg.enabled ?? []), ...cfg.disabled, ...Object.keys(cfg.options)]) {
    if (!byName.has(name)) throw new Error(`config error: modules: no module named '${name}' (available: ${[...byName.keys()].join(', ')})`);
  }
  const wanted = all.filter((d) => (cfg.enabled === null || cfg.enabled.includes(d.name)) && !cfg.disabled.includes(d.name));
  const set = new ModuleSet(hosts, undefined, admins, web, adminRole);
  const done = new Set<string>();
  const visit = (d: ModuleDefinition, path: string[]) => {
    if (done.has(d.name)) return;
    if (path.includes(d.name)) throw new Error(`modules: dependency cycle ${[...path, d.name].join(' -> ')}`);
    for (const dep of d.depends ?? []) {
      const dd = byName.get(dep);
      if (!dd) throw new Error(`module ${d.name} depends on unknown module ${dep}`);
      if (cfg.disabled.includes(dep)) throw new Error(`config error: modules: ${d.name} needs ${dep}, which is disabled`);
      visit(dd, [...path, d.name]);
    }
    set.add(d, rawOptionsOf(cfg, d.name));
    done.add(d.name);
  };
  for (const d of wanted) visit(d, []);
  return set;
}
