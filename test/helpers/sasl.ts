// Shared test fixtures: an in-memory credential store and exchange drivers.
import { deriveCredentials, ScramClient, ScramServer, type ScramServerOptions } from '../../src/sasl/scram.ts';
import type { HashName, SaslServer, SaslStep, StoredCredentials } from '../../src/sasl/types.ts';

export const SECRET = 'test-server-secret';

export async function makeAccount(password: string, extra: Partial<StoredCredentials> = {},
  hashes: HashName[] = ['SHA-1', 'SHA-256', 'SHA-512'], iterations = 4096): Promise<StoredCredentials> {
  const scram: StoredCredentials['scram'] = {};
  for (const h of hashes) scram[h] = await deriveCredentials(password, h, iterations);
  return { scram, ...extra };
}

/** A lookup over a map, recording what it was asked. */
export function store(accounts: Record<string, StoredCredentials>) {
  const asked: string[] = [];
  const lookup = async (u: string) => { asked.push(u); return accounts[u]; };
  return { lookup, asked };
}

export function scramServer(o: Omit<ScramServerOptions, 'serverSecret'> & { serverSecret?: string }): ScramServer {
  return new ScramServer({ serverSecret: SECRET, ...o });
}

/** Runs a whole SCRAM exchange; returns the server's last step and the client's verdict on it. */
export async function runScram(server: SaslServer, client: ScramClient): Promise<{ step: SaslStep; verified: boolean }> {
  let step = await server.start(Buffer.from(client.clientFirst()));
  if (step.kind !== 'challenge') return { step, verified: false };
  step = await server.step(Buffer.from(await client.clientFinal(step.data.toString())));
  const verified = step.kind === 'success' && !!step.data && client.verifyServerFinal(step.data.toString());
  return { step, verified };
}

export function expectFailure(step: SaslStep, condition: string, message = ''): void {
  if (step.kind !== 'failure' || step.condition !== condition) {
    throw new Error(`${message} expected failure ${condition}, got ${JSON.stringify(step)}`);
  }
}

export function b64(s: string | Uint8Array): string {
  return Buffer.from(s).toString('base64');
}

/** Fails unless the promise rejects (uvu has no async throws). */
export async function rejects(p: Promise<unknown>, message = 'expected a rejection'): Promise<void> {
  try { await p; } catch { return; }
  throw new Error(message);
}
