// PBKDF2 for the verifiers stored at account creation, password change and import, on a piscina pool.
// Node's async pbkdf2 would run on libuv's thread pool, which every thread of the process shares and
// LevelDB (classic-level) uses for each read and write: an import of a thousand accounts would queue
// every scheduler's durable writes behind seconds of hashing. The pool leaves a core for the rest
// (one thread less than the machine has, at least one) and its threads end when idle.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';

let pool: Piscina | null = null;

export async function pooledPbkdf2(password: string, salt: Uint8Array, iterations: number, keylen: number, digest: string): Promise<Buffer> {
  pool ??= new Piscina({
    filename: new URL('./pbkdf2-worker.mjs', import.meta.url).href,
    minThreads: 0,
    maxThreads: Math.max(1, availableParallelism() - 1),
    idleTimeout: 10_000,
  });
  const key = (await pool.run({ password, salt, iterations, keylen, digest })) as Uint8Array;
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
}

/** Derivations the pool has finished in this process (tests show the work went there). */
export const pbkdf2Completed = (): number => pool?.completed ?? 0;
