// Before a hot reload swaps code in, the compiler checks it: esbuild (which bundles the kind) only
// strips types, so a misspelt name would load fine and crash the first actor that runs it. The
// compiler runs in a child process (the main thread holds every socket and must not stall), on the
// project of the nearest tsconfig.json above the kind; only errors in the kind's own files refuse
// the reload. No tsconfig, or no TypeScript installed: nothing to check with, the reload goes on.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';

function nearestTsconfig(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'tsconfig.json'))) return join(d, 'tsconfig.json');
    if (dirname(d) === d) return undefined;
  }
}

/** The compiler's errors in files under `kindDir`, one string each (with its continuation lines);
 *  null when there is nothing to check with. */
export async function typeErrors(kindDir: string): Promise<string[] | null> {
  const config = nearestTsconfig(kindDir);
  if (!config) return null;
  let tsc: string;
  try { tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc'); } catch { return null; }
  const cwd = dirname(config);
  const output = await new Promise<string>((done) => {
    execFile(process.execPath, [tsc, '--noEmit', '--pretty', 'false', '-p', config], { cwd, maxBuffer: 64 << 20 }, (_err, stdout) => done(String(stdout)));
  });
  const errors: string[] = [];
  let keep = false;
  for (const line of output.split('\n')) {
    const m = /^(.+?)\(\d+,\d+\): error /.exec(line);
    if (m) {
      const rel = relative(kindDir, resolve(cwd, m[1]!));
      keep = !rel.startsWith('..') && !isAbsolute(rel);
      if (keep) errors.push(line);
    } else if (keep && line.startsWith(' ')) {
      errors[errors.length - 1] += `\n${line}`;
    }
  }
  return errors;
}
