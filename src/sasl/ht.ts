// The HT-SHA-256-* mechanisms (draft-schmaus-kitten-sasl-ht), which FAST (XEP-0484) logs in with: one
// message each way, the secret being a token the server issued. The client sends its name and
// HMAC-SHA-256(token, "Initiator" || channel-binding data); the server answers with
// HMAC-SHA-256(token, "Responder" || the same data), which tells the client it is the server that
// issued the token. -ENDP and -EXPR bind the proof to this TLS connection; -NONE does not.
import { createHmac } from 'node:crypto';
import type { ChannelBindingType, SaslServer, SaslServerOptions, SaslStep } from './types.ts';
import { credentialFailure, failure, throttled } from './server-common.ts';
import { saslprep } from './scram.ts';
import { sameProof } from '../storage/fast-tokens.ts';

export const HT_MECHANISMS = { 'HT-SHA-256-EXPR': 'tls-exporter', 'HT-SHA-256-ENDP': 'tls-server-end-point', 'HT-SHA-256-NONE': null } as const;
export type HtMechanism = keyof typeof HT_MECHANISMS;

export const isHtMechanism = (name: string): name is HtMechanism => name in HT_MECHANISMS;

/** The token mechanisms this connection can take: those binding to it first, NONE last. */
export function offeredHt(bindings: readonly ChannelBindingType[]): HtMechanism[] {
  return (Object.keys(HT_MECHANISMS) as HtMechanism[]).filter((m) => HT_MECHANISMS[m] === null || bindings.includes(HT_MECHANISMS[m]));
}

export interface HtServerOptions extends SaslServerOptions {
  mechanism: HtMechanism;
  /** This connection's data for the mechanism's binding type (none for -NONE). */
  bindingData?: Uint8Array;
  /** The token of `username`'s installation that `matches` (a proof made with it), taken as used,
   *  with the account's canonical name; undefined when there is none (wrong, expired, for another
   *  mechanism, no such account). */
  useToken(username: string, matches: (token: string) => boolean): Promise<{ token: string; username: string } | undefined>;
}

const proof = (token: string, label: 'Initiator' | 'Responder', cb: Uint8Array | undefined): Buffer =>
  createHmac('sha256', token).update(label).update(cb ?? new Uint8Array(0)).digest();

export class HtServer implements SaslServer {
  readonly mechanism: HtMechanism;
  #o: HtServerOptions;
  #done = false;

  constructor(options: HtServerOptions) {
    this.#o = options;
    this.mechanism = options.mechanism;
  }

  async start(initial?: Uint8Array): Promise<SaslStep> {
    const o = this.#o;
    if (this.#done || initial === undefined) return this.#fail('malformed-request', 'the token proof comes with <authenticate/>');
    this.#done = true;
    const nul = initial.indexOf(0);
    if (nul <= 0 || initial.length - nul - 1 !== 32) return failure('malformed-request', 'expected name NUL 32-byte proof');
    let authcid: string;
    try { authcid = saslprep(Buffer.from(initial.subarray(0, nul)).toString('utf8')); } catch { return failure('malformed-request', 'authcid fails SASLprep'); }
    if (o.mechanism !== 'HT-SHA-256-NONE' && !o.bindingData) return failure('invalid-mechanism', 'no channel binding on this connection');
    const refused = await throttled(o, authcid);
    if (refused) return refused;
    const claimed = initial.subarray(nul + 1);
    let used: { token: string; username: string } | undefined;
    try {
      used = await o.useToken(authcid, (t) => sameProof(proof(t, 'Initiator', o.bindingData), claimed));
    } catch {
      return failure('temporary-auth-failure', 'token lookup failed', authcid);
    }
    if (!used) return credentialFailure(o, 'no such token (wrong, expired or revoked)', authcid);
    return { kind: 'success', authcid: used.username, data: proof(used.token, 'Responder', o.bindingData) };
  }

  async step(): Promise<SaslStep> { return this.#fail('malformed-request', 'a token login is one message'); }

  #fail(condition: Parameters<typeof failure>[0], reason: string): SaslStep {
    this.#done = true;
    return failure(condition, reason);
  }
}
