// Loads actor kinds from their folders so they can be reloaded. `import(url + '?v=n')` never frees the
// old module (measured-facts.md), so a kind's folder is bundled by esbuild into one CommonJS function
// and evaluated with vm: when no actor holds the old definition any more, the old code is garbage.
// Imports that leave the kind's folder (the runtime API, shared src/ libraries, packages) are not
// bundled: they resolve to this thread's own, already-loaded module instances, so `self()` in a
// reloaded actor is the same function the scheduler drives.
import { build, type Plugin } from 'esbuild';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileFunction } from 'node:vm';
import type { KindDefinition } from './kind.ts';

export interface LoadedKind { def: KindDefinition; file: string; loads: number }

export class KindLoader {
  private loads = new Map<string, number>();
  private hostModules = new Map<string, unknown>();

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
    const kindDir = dirname(file);
    const externals = new Set<string>();
    const keepOutside: Plugin = {
      name: 'chorus-host-modules',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (args.kind === 'entry-point') return undefined;
          if (args.path.startsWith('.') || isAbsolute(args.path)) {
            const target = resolve(args.resolveDir, args.path);
            const rel = relative(kindDir, target);
            if (!rel.startsWith('..') && !isAbsolute(rel)) return undefined; // inside the kind: bundle it
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
      sourcemap: 'inline', logLevel: 'silent', plugins: [keepOutside],
    });
    for (const spec of externals) await this.hostModule(spec);
    const n = (this.loads.get(kind) ?? 0) + 1;
    this.loads.set(kind, n);
    const fn = compileFunction(out.outputFiles[0]!.text, ['require', 'module', 'exports'], {
      filename: `${pathToFileURL(file).href}#load${n}`,
    });
    const mod = { exports: {} as Record<string, unknown> };
    fn((spec: string) => {
      const ns = this.hostModules.get(spec);
      if (!ns) throw new Error(`actor kind ${kind}: module ${spec} was not preloaded`);
      return ns;
    }, mod, mod.exports);
    const def = (mod.exports.default ?? mod.exports) as KindDefinition;
    if (!def || def.kind !== kind || !def.machine) {
      throw new Error(`${file} must default-export defineKind({ kind: '${kind}', ... })`);
    }
    return { def, file, loads: n };
  }

  private async hostModule(spec: string): Promise<void> {
    if (this.hostModules.has(spec)) return;
    const ns = await import(isAbsolute(spec) ? pathToFileURL(spec).href : spec);
    this.hostModules.set(spec, ns);
  }
}
