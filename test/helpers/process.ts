// Child processes for tests: one run to its end, with what it printed.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface Run { code: number | null; out: string; err: string }

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHORUS_BIN = join(ROOT, 'bin/chorus.js');

export function run(cmd: string, args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.on('error', () => undefined); // a child that exits before reading its input
    child.stdin.end(o.input ?? '');
  });
}

/** The `chorus` command with these arguments, from the repository root unless `cwd` says. */
export const chorusCli = (args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> =>
  run(process.execPath, [CHORUS_BIN, ...args], { cwd: ROOT, ...o });

/** A config file `<dir>/<name>.yaml` for the CLI to act on `dataDir` (host localhost, no listener of
 *  its own: a test's node, or none, uses that data_dir). */
export async function cliConfig(dir: string, name: string, dataDir: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `hosts: [localhost]\ndata_dir: ${dataDir}\nlisten: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
  return file;
}

/** A slixmpp scenario script (test/clients/*_slixmpp.py) run to its end: the one JSON line it prints
 *  last, what it saw; fails with its stderr's tail if it says it met an error. */
export async function scenario(script: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await run('/usr/bin/python3', [script, ...args]);
  const out = JSON.parse(r.out.trim().split('\n').pop() || '{}') as Record<string, unknown>;
  if (out.error !== undefined || r.out.trim() === '') throw new Error(`${JSON.stringify(out)} (exit ${r.code})\n${r.err.slice(-2000)}`);
  return out;
}
