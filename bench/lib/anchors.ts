// Debian's Prosody and ejabberd driven through bench/anchors/<server>.sh (each in its own state dir,
// loopback only), for what puts Chorus beside them: the federation bench and tests, the client matrix.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** <server>.sh with this environment (PROSODY_PORT / EJABBERD_PORT, BENCH_DOMAIN, BENCH_STATE, …):
 *  `start [N]`, `stop`, `accounts N` (Prosody); resolves with what it printed. */
export function anchorScript(server: 'prosody' | 'ejabberd', env: NodeJS.ProcessEnv): (verb: string, ...args: string[]) => Promise<string> {
  const script = fileURLToPath(new URL(`../anchors/${server}.sh`, import.meta.url));
  return (verb, ...args) => new Promise<string>((resolve, reject) => {
    const child = spawn(script, [verb, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${server}.sh ${verb}: exit ${code}: ${err}`))));
  });
}
