// Loads actor kinds from their folders so they can be reloaded. `import(url + '?v=n')` never frees the
// old module (measured-facts.md), so a kind's folder is bundled by esbuild into one CommonJS function
// and evaluated with vm: when no actor holds the old definition any more, the old code is garbage.
// Imports that leave the kind's folder (the runtime API, shared src/ libraries, packages) are not
// bundled: they resolve to this thread's own, already-loaded module instances, so `self()` in a
// reloaded actor is the same function the scheduler drives.
import { originalPositionFor, TraceMap } from '@jridgewell/trace-mapping';
import { build, type Plugin } from 'esbuild';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileFunction } from 'node:vm';
import type { KindDefinition } from './kind.ts';

export interface LoadedKind { def: KindDefinition; file: string; loads: number }

export class KindLoader {
  private loads = new Map<string, number>();
  private hostModules = new Map<string, unknown>();
  /** Source maps of loaded bundles by their vm filename (Node maps no stack of vm-compiled code).
   *  One per load: a reload replaces the kind's entry, so old maps do not pile up. */
  private maps = new Map<string, { name: string; map: TraceMap }>();

  constructor(private readonly dirs: string[]) {}

  /** Where a kind's entry file lives: the first actors dir that has `<kind>/index.ts`. */
  locate(kind: string): string | undefined {
    for (const dir of this.dirs) {
      const file = join(dir, kind, 'index.ts');
      if (existsSync(file)) return file;
    }
    return undefined;
  }

  async load(kind: string): Promise<LoadedKind> {
    const file = this.locate(kind);
    if (!file) throw new Error(`no actor kind '${kind}' (looked for ${kind}/index.ts in ${this.dirs.join(', ')})`);
    const { exports, loads } = await this.evaluate(file, dirname(file), kind);
    const def = (exports.default ?? exports) as KindDefinition;
    if (!def || def.kind !== kind || !def.machine) {
      throw new Error(`${file} must default-export defineKind({ kind: '${kind}', ... })`);
    }
    return { def, file, loads };
  }

  /**
   * Fresh code of `file`: what it imports from inside `ownDir` is bundled with it, everything else is
   * this thread's loaded instance. Also for code that is not an actor kind (feature modules);
   * `name` keys its load count and source map.
   */
  async evaluate(file: string, ownDir: string, name: string): Promise<{ exports: Record<string, unknown>; loads: number }> {
    const externals = new Set<string>();
    const keepOutside: Plugin = {
      name: 'chorus-host-modules',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === 'entry-point') return undefined;
          if (args.path.startsWith('.') || isAbsolute(args.path)) {
            const target = resolve(args.resolveDir, args.path);
            const rel = relative(ownDir, target);
            if (!rel.startsWith('..') && !isAbsolute(rel)) return undefined; // inside: bundle it
            externals.add(target);
            return { path: target, external: true };
          }
          externals.add(args.path); // a package or node: builtin
          return { path: args.path, external: true };
        });
      },
    };
    const out = await build({
      entryPoints: [file], bundle: true, write: false, format: 'cjs', platform: 'node', target: 'node20',
      sourcemap: 'external', sourcesContent: false, outfile: `${file}.bundle.js`, logLevel: 'silent', plugins: [keepOutside],
      // CommonJS has no import.meta: the entry's URL stands in (files beside it resolve the same).
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(file).href) },
    });
    for (const spec of externals) await this.hostModule(spec);
    const n = (this.loads.get(name) ?? 0) + 1;
    this.loads.set(name, n);
    const code = out.outputFiles.find((f) => f.path.endsWith('.js'))!;
    const map = out.outputFiles.find((f) => f.path.endsWith('.map'));
    const filename = `${pathToFileURL(file).href}#load${n}`;
    const fn = compileFunction(code.text, ['require', 'module', 'exports'], { filename });
    for (const [loaded, m] of this.maps) if (m.name === name) this.maps.delete(loaded);
    if (map) this.maps.set(filename, { name, map: new TraceMap(map.text, code.path) });
    const mod = { exports: {} as Record<string, unknown> };
    fn((spec: string) => {
      const ns = this.hostModules.get(spec);
      if (!ns) throw new Error(`${name}: module ${spec} was not preloaded`);
      return ns;
    }, mod, mod.exports);
    return { exports: mod.exports, loads: n };
  }

  /** A stack trace with the positions in loaded bundles replaced by the source files' lines. */
  mapStack(stack: string): string {
    return stack.replace(/(file:\/\/[^\s()]+#load\d+):(\d+):(\d+)/g, (whole, name: string, line: string, col: string) => {
      const m = this.maps.get(name);
      if (!m) return whole;
      const p = originalPositionFor(m.map, { line: Number(line), column: Number(col) - 1 });
      if (p.source === null || p.line === null) return whole;
      const source = p.source.startsWith('file:') ? p.source : pathToFileURL(resolve(dirname(fileURLToPath(name.replace(/#load\d+$/, ''))), p.source)).href;
      return `${source}:${p.line}:${(p.column ?? 0) + 1}`;
    });
  }

  private async hostModule(spec: string): Promise<void> {
    if (this.hostModules.has(spec)) return;
    const ns = await import(isAbsolute(spec) ? pathToFileURL(spec).href : spec);
    this.hostModules.set(spec, ns);
  }
}
