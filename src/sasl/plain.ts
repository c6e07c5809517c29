// PLAIN (RFC 4616), verified against the stored SCRAM verifier: no plaintext password is ever stored.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { HashName, SaslServer, SaslServerOptions, SaslStep, ScramCredentials } from './types.ts';
import { hashBytes, keysFromSaltedPassword, saltPassword, saslprep, storedVerifier } from './scram.ts';
import { DEFAULT_FAKE_ITERATIONS, authzidAllowed, decodeMessage, credentialFailure, failure, fakeSalt, throttled } from './server-common.ts';

export interface PlainServerOptions extends SaslServerOptions {
  /** Which stored verifier to check against, first present wins. Default SHA-256, SHA-512, SHA-1. */
  hashPreference?: readonly HashName[];
}

const DEFAULT_PREFERENCE: readonly HashName[] = ['SHA-256', 'SHA-512', 'SHA-1'];

export class PlainServer implements SaslServer {
  readonly mechanism = 'PLAIN';
  #o: PlainServerOptions;
  #state: 'start' | 'wait' | 'done' = 'start';

  constructor(options: PlainServerOptions) { this.#o = options; }

  async start(initial?: Uint8Array): Promise<SaslStep> {
    if (this.#state !== 'start') return this.#fail('malformed-request', 'exchange already started');
    if (initial === undefined) {
      this.#state = 'wait';
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.#verify(initial);
  }

  async step(response: Uint8Array): Promise<SaslStep> {
    if (this.#state !== 'wait') return this.#fail('malformed-request', 'unexpected response');
    return this.#verify(response);
  }

  #fail(condition: Parameters<typeof failure>[0], reason: string, authcid?: string): SaslStep {
    this.#state = 'done';
    return failure(condition, reason, authcid);
  }

  async #verify(bytes: Uint8Array): Promise<SaslStep> {
    const o = this.#o;
    const text = decodeMessage(bytes);
    const parts = text?.split('\0');
    if (!parts || parts.length !== 3) return this.#fail('malformed-request', 'PLAIN message needs exactly two NULs');
    const [authzid, rawAuthcid, password] = parts as [string, string, string];
    if (rawAuthcid === '' || password === '') return this.#fail('malformed-request', 'empty authcid or password');
    let authcid: string;
    try { authcid = saslprep(rawAuthcid); } catch { return this.#fail('malformed-request', 'authcid fails SASLprep'); }
    if (authcid === '') return this.#fail('malformed-request', 'empty authcid');

    const refused = await throttled(o, authcid);
    if (refused) { this.#state = 'done'; return refused; }

    let account;
    try { account = await o.lookup(authcid); } catch {
      return this.#fail('temporary-auth-failure', 'credential lookup failed', authcid);
    }
    let hash: HashName = 'SHA-256';
    let creds: ScramCredentials | undefined;
    for (const h of o.hashPreference ?? DEFAULT_PREFERENCE) {
      const v = account && storedVerifier(account, h);
      if (v === 'corrupt') return this.#fail('temporary-auth-failure', 'stored credentials are corrupt', authcid);
      if (v) { hash = h; creds = v; break; }
    }
    // Missing user: still pay for one PBKDF2 run so timing does not tell.
    const c = creds ?? {
      salt: fakeSalt(o.serverSecret, 'PLAIN', authcid),
      iterations: o.fakeIterations ?? DEFAULT_FAKE_ITERATIONS,
      storedKey: randomBytes(hashBytes(hash)),
      serverKey: Buffer.alloc(0),
    };
    let match = false;
    try {
      const { storedKey } = keysFromSaltedPassword(hash, await saltPassword(password, hash, c.salt, c.iterations));
      match = timingSafeEqual(storedKey, c.storedKey);
    } catch { /* a password failing SASLprep cannot match */ }
    if (!match || !creds || !account) { this.#state = 'done'; return credentialFailure(this.#o, 'invalid credentials', authcid); }

    const name = account.username ?? authcid;
    if (account.disabled) return this.#fail('account-disabled', 'account disabled', name);
    if (authzid !== '') {
      let allowed: boolean;
      try { allowed = await authzidAllowed(o, name, authzid); } catch {
        return this.#fail('temporary-auth-failure', 'authorization check failed', name);
      }
      if (!allowed) return this.#fail('invalid-authzid', `may not act as ${authzid}`, name);
    }
    await o.throttle?.recordSuccess(name, o.address);
    this.#state = 'done';
    return authzid === '' ? { kind: 'success', authcid: name } : { kind: 'success', authcid: name, authzid };
  }
}

/** The PLAIN client message: [authzid] NUL authcid NUL password. */
export function plainMessage(authcid: string, password: string, authzid = ''): Buffer {
  return Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8');
}
