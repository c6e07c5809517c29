// Loads the feature modules of src/modules/ that the config enables, validates their options and keeps
// their registrations: the hook table the session and user actors run. One ModuleSet per scheduler
// thread (installed as the 'modules' service); modules are plain objects, importing one does nothing.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { andThen, type HookName, type HookResult, type Hooks, type IqRequest, type ModuleApi, type ModuleDefinition, type OptionSpec } from './module.ts';

const MODULE_DIR = fileURLToPath(new URL('../modules/', import.meta.url));

export interface ModulesConfig { enabled: string[] | null; disabled: string[]; options: Record<string, Record<string, unknown>> }

type Entry = { module: string; priority: number; handler: (e: any) => HookResult };

export class ModuleSet {
  private hooks = new Map<string, Entry[]>();
  readonly loaded: ModuleDefinition[] = [];
  readonly hostFeatures = new Set<string>();
  readonly accountFeatures = new Set<string>();
  readonly streamFeatures: string[] = [];

  constructor(readonly hosts: string[]) {}

  add(def: ModuleDefinition, rawOptions: Record<string, unknown> = {}): void {
    const options = validateOptions(def.name, def.options ?? {}, rawOptions);
    const api: ModuleApi<any> = {
      options, hosts: this.hosts,
      hook: (name, handler, priority = 0) => this.register(def.name, name, handler as (e: any) => HookResult, priority),
      iq: (type, target, xmlns, handler) => this.register(def.name, `iq/${type}/${target}/${xmlns}`, (e: IqRequest) => andThen(handler(e), () => true), 0),
      features: () => ({ host: this.hostFeatures, account: this.accountFeatures }),
    };
    def.setup(api);
    this.loaded.push(def);
    for (const f of def.features?.host ?? []) this.hostFeatures.add(f);
    for (const f of def.features?.account ?? []) this.accountFeatures.add(f);
    this.streamFeatures.push(...(def.streamFeatures ?? []));
  }

  private register(module: string, key: string, handler: (e: any) => HookResult, priority: number): void {
    const list = this.hooks.get(key) ?? [];
    list.push({ module, priority, handler });
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


function validateOptions(module: string, specs: Record<string, OptionSpec>, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) if (!(key in specs)) throw new Error(`config error: modules.options.${module}.${key}: unknown option (known: ${Object.keys(specs).join(', ') || 'none'})`);
  for (const [key, spec] of Object.entries(specs)) {
    const v = raw[key] ?? spec.default;
    const where = `modules.options.${module}.${key}`;
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

/** Every module of src/modules/: files whose default export is a defineModule(); files without a
 *  default export are helpers of a module (e.g. its storage). */
export async function availableModules(): Promise<ModuleDefinition[]> {
  const files = readdirSync(MODULE_DIR).filter((f) => f.endsWith('.ts')).sort();
  const defs: ModuleDefinition[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(MODULE_DIR, f)).href)) as { default?: ModuleDefinition };
    if (mod.default === undefined) continue;
    if (!mod.default.setup) throw new Error(`src/modules/${f}: its default export is not a defineModule({...})`);
    defs.push(mod.default);
  }
  return defs;
}

/**
 * Every problem loadModules would stop at, all at once: names that match no module, bad module
 * options, a needed module disabled. `chorus check` and `chorus start` run it on the config before
 * anything starts, so a mistake is a config error there and not a scheduler dying.
 */
export async function moduleProblems(hosts: string[], cfg: ModulesConfig): Promise<string[]> {
  const all = await availableModules();
  const byName = new Map(all.map((d) => [d.name, d]));
  const known = [...byName.keys()].join(', ');
  const problems: string[] = [];
  const lists: Array<[string, string[]]> = [['enabled', cfg.enabled ?? []], ['disabled', cfg.disabled], ['options', Object.keys(cfg.options)]];
  for (const [list, names] of lists) {
    for (const name of names) if (!byName.has(name)) problems.push(`modules.${list}: no module named '${name}' (available: ${known})`);
  }
  for (const [name, raw] of Object.entries(cfg.options)) {
    const def = byName.get(name);
    if (!def) continue;
    try { validateOptions(name, def.options ?? {}, raw); } catch (e) { problems.push(unprefixed(e)); }
  }
  if (problems.length === 0) {
    try { await loadModules(hosts, cfg); } catch (e) { problems.push(unprefixed(e)); }
  }
  return problems;
}

const unprefixed = (e: unknown): string => String((e as Error)?.message ?? e).replace(/^config error: /, '');

/** Loads the enabled modules in dependency order. */
export async function loadModules(hosts: string[], cfg: ModulesConfig): Promise<ModuleSet> {
  const all = await availableModules();
  const byName = new Map(all.map((d) => [d.name, d]));
  for (const name of [...(cfg.enabled ?? []), ...cfg.disabled, ...Object.keys(cfg.options)]) {
    if (!byName.has(name)) throw new Error(`config error: modules: no module named '${name}' (available: ${[...byName.keys()].join(', ')})`);
  }
  const wanted = all.filter((d) => (cfg.enabled === null || cfg.enabled.includes(d.name)) && !cfg.disabled.includes(d.name));
  const set = new ModuleSet(hosts);
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
    set.add(d, cfg.options[d.name]);
    done.add(d.name);
  };
  for (const d of wanted) visit(d, []);
  return set;
}
