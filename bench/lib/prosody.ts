// Debian's Prosody driven through bench/anchors/prosody.sh (its own state dir, loopback only), for
// what puts Chorus beside it: the federation bench, the client matrix and federation tests.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PROSODY_SH = fileURLToPath(new URL('../anchors/prosody.sh', import.meta.url));

/** prosody.sh with this environment (PROSODY_PORT, BENCH_DOMAIN, BENCH_STATE, …): `start [N]`,
 *  `stop`, `accounts N`; resolves with what it printed. */
export function prosodyScript(env: NodeJS.ProcessEnv): (verb: string, ...args: string[]) => Promise<string> {
  return (verb, ...args) => new Promise<string>((resolve, reject) => {
    const child = spawn(PROSODY_SH, [verb, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`prosody.sh ${verb}: exit ${code}: ${err}`))));
  });
}
