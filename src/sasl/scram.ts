// SCRAM (RFC 5802, RFC 7677) with channel binding (RFC 5929, RFC 9266): the math, a server
// exchange and a client. The client is shared with the load generator, so the math exists once.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprepLib from '@mongodb-js/saslprep';
import type {
  ChannelBindingType, HashName, SaslServer, SaslServerOptions, SaslStep, ScramCredentials,
  ScramCredentialsJson, StoredCredentials,
} from './types.ts';
import { CHANNEL_BINDING_TYPES } from './types.ts';
import { pooledPbkdf2 } from './pbkdf2-pool.ts';
import {
  DEFAULT_FAKE_ITERATIONS, authzidAllowed, credentialFailure, decodeMessage, failure, fakeSalt, strictBase64, throttled,
} from './server-common.ts';

export const DEFAULT_ITERATIONS = 4096;
export const SALT_BYTES = 16;

const NODE_HASH = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' } as const;
const HASH_BYTES = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 } as const;

export function isHashName(s: string): s is HashName {
  return s === 'SHA-1' || s === 'SHA-256' || s === 'SHA-512';
}

export function hashBytes(hash: HashName): number { return HASH_BYTES[hash]; }

/** SASLprep (RFC 4013) for stored strings; throws on prohibited or unassigned characters. */
export function saslprep(s: string): string {
  return saslprepLib(s);
}

/** SaltedPassword := Hi(Normalize(password), salt, i). What mobile clients cache instead of the password. */
export function saltPassword(password: string, hash: HashName, salt: Uint8Array, iterations: number): Promise<Buffer> {
  const prepared = saslprep(password);
  return new Promise((resolve, reject) =>
    pbkdf2(prepared, salt, iterations, HASH_BYTES[hash], NODE_HASH[hash], (err, key) => (err ? reject(err) : resolve(key))));
}

function hmac(hash: HashName, key: Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac(NODE_HASH[hash], key).update(data).digest();
}

function digest(hash: HashName, data: Uint8Array): Buffer {
  return createHash(NODE_HASH[hash]).update(data).digest();
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function keysFromSaltedPassword(hash: HashName, saltedPassword: Uint8Array) {
  const clientKey = hmac(hash, saltedPassword, 'Client Key');
  return { clientKey, storedKey: digest(hash, clientKey), serverKey: hmac(hash, saltedPassword, 'Server Key') };
}

/** The verifier to store for an account; a random salt unless one is given. */
export async function deriveCredentials(password: string, hash: HashName, iterations = DEFAULT_ITERATIONS,
  salt: Uint8Array = randomBytes(SALT_BYTES)): Promise<ScramCredentials> {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError('iterations must be a positive integer');
  const salted = await pooledPbkdf2(saslprep(password), salt, iterations, HASH_BYTES[hash], NODE_HASH[hash]);
  const { storedKey, serverKey } = keysFromSaltedPassword(hash, salted);
  return { salt: Buffer.from(salt), iterations, storedKey, serverKey };
}

export function credentialsToJson(c: ScramCredentials): ScramCredentialsJson {
  return { salt: c.salt.toString('base64'), iterations: c.iterations, storedKey: c.storedKey.toString('base64'), serverKey: c.serverKey.toString('base64') };
}

export function credentialsFromJson(c: ScramCredentials | ScramCredentialsJson): ScramCredentials {
  const bytes = (v: string | Uint8Array) => (typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.from(v));
  return { salt: bytes(c.salt), iterations: c.iterations, storedKey: bytes(c.storedKey), serverKey: bytes(c.serverKey) };
}

// Reads one hash's verifier from a stored record, checking its shape so corrupt data cannot pass.
export function storedVerifier(account: StoredCredentials, hash: HashName): ScramCredentials | 'corrupt' | undefined {
  const raw = account.scram?.[hash];
  if (!raw) return undefined;
  const c = credentialsFromJson(raw);
  const ok = Number.isInteger(c.iterations) && c.iterations >= 1 && c.salt.length > 0
    && c.storedKey.length === HASH_BYTES[hash] && c.serverKey.length === HASH_BYTES[hash];
  return ok ? c : 'corrupt';
}

// ---- message syntax (RFC 5802 §7) ----------------------------------------------------------------

const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const SASLNAME = /^(?:[^=,\0]|=2C|=3D)+$/;
const EXTENSION = /^[A-Za-z]=[^,]*$/;

function decodeSaslname(s: string): string | undefined {
  return SASLNAME.test(s) ? s.replace(/=2C|=3D/g, (e) => (e === '=2C' ? ',' : '=')) : undefined;
}

function encodeSaslname(s: string): string {
  return s.replace(/[=,]/g, (c) => (c === ',' ? '=2C' : '=3D'));
}

function randomNonce(): string {
  return randomBytes(18).toString('base64'); // base64 never contains ','
}

// ---- server ---------------------------------------------------------------------------------------

export interface ScramServerOptions extends SaslServerOptions {
  hash: HashName;
  /** This exchange is the -PLUS mechanism. */
  plus?: boolean;
  /** Some -PLUS mechanism was offered on this connection and the client has not shown it saw it: a
   *  client flag of 'y' then means a downgrade. selectMechanism sets it; set it yourself when
   *  constructing directly. */
  plusOffered?: boolean;
  /** Channel binding data this connection can verify, by type. */
  channelBindings?: Partial<Record<ChannelBindingType, Uint8Array>>;
  /** Server nonce source (tests pin it). */
  nonce?: () => string;
  /** What this connection advertised, for XEP-0474's `h` attribute; none = no attribute. */
  advertised?: Advertised;
}

/** The SASL mechanisms and, when XEP-0440 listed them, the channel-binding types a stream offered. */
export interface Advertised { mechanisms: readonly string[]; channelBindings?: readonly string[] }

/**
 * XEP-0474 (SSDP, 0.5.0) §5.1: the SCRAM hash of the sorted mechanisms joined by U+001E, then U+001F
 * and the sorted binding types likewise if XEP-0440 was used; base64. The client compares it with
 * what it saw: a MITM that struck -PLUS or a binding type from the features is caught, and since it
 * sits in server-first-message, the client proof signs it.
 */
export function downgradeHash(hash: HashName, a: Advertised): string {
  const octets = (l: readonly string[]) => [...l].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).join('\x1e');
  let s = octets(a.mechanisms);
  if (a.channelBindings) s += '\x1f' + octets(a.channelBindings);
  return digest(hash, Buffer.from(s, 'ascii')).toString('base64');
}

type ServerState = 'start' | 'first' | 'final' | 'done';

export class ScramServer implements SaslServer {
  readonly mechanism: string;
  #o: ScramServerOptions;
  #state: ServerState = 'start';
  #gs2Header = '';
  #cbData: Uint8Array | undefined;
  #authzid: string | undefined;
  #clientFirstBare = '';
  #serverFirst = '';
  #nonce = '';
  #username = '';
  #account: StoredCredentials | undefined;
  #creds: ScramCredentials | undefined;

  constructor(options: ScramServerOptions) {
    this.#o = options;
    this.mechanism = `SCRAM-${options.hash}${options.plus ? '-PLUS' : ''}`;
  }

  async start(initial?: Uint8Array): Promise<SaslStep> {
    if (this.#state !== 'start') return this.#fail('malformed-request', 'exchange already started');
    if (initial === undefined) {
      this.#state = 'first';
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.#clientFirst(initial);
  }

  async step(response: Uint8Array): Promise<SaslStep> {
    if (this.#state === 'first') return this.#clientFirst(response);
    if (this.#state === 'final') return this.#clientFinal(response);
    return this.#fail('malformed-request', 'unexpected response');
  }

  #fail(condition: Parameters<typeof failure>[0], reason: string, authcid?: string): SaslStep {
    this.#state = 'done';
    return failure(condition, reason, authcid);
  }

  async #clientFirst(bytes: Uint8Array): Promise<SaslStep> {
    const o = this.#o;
    const text = decodeMessage(bytes);
    if (text === undefined) return this.#fail('malformed-request', 'client-first is not UTF-8 or too long');
    const m = /^(n|y|p=([A-Za-z0-9.-]+)),(?:a=([^,]*))?,(.*)$/s.exec(text);
    if (!m) return this.#fail('malformed-request', 'bad GS2 header');
    const [, flag, cbName, rawAuthzid, bare] = m as unknown as [string, string, string | undefined, string | undefined, string];

    // Channel binding policy (RFC 5802 §6).
    if (cbName !== undefined) {
      if (!o.plus) return this.#fail('malformed-request', 'channel binding requested on a non-PLUS mechanism');
      const type = CHANNEL_BINDING_TYPES.find((t) => t === cbName);
      const data = type && o.channelBindings?.[type];
      if (!data) {
        this.#state = 'done';
        // Named in the log though nothing was checked: the operator sees whose client tried it.
        const n = /(?:^|,)n=([^,]*)/.exec(bare)?.[1];
        const who = n === undefined ? undefined : decodeSaslname(n);
        return { ...failure('not-authorized', `unsupported channel binding type ${cbName}`, who), unsupportedBinding: true };
      }
      this.#cbData = data;
    } else if (o.plus) {
      return this.#fail('malformed-request', '-PLUS mechanism without channel binding');
    } else if (flag === 'y' && o.plusOffered) {
      return this.#fail('not-authorized', 'channel binding downgrade: client saw no -PLUS mechanism but we offered one');
    }

    if (rawAuthzid !== undefined) {
      this.#authzid = decodeSaslname(rawAuthzid);
      if (this.#authzid === undefined) return this.#fail('malformed-request', 'bad authzid');
    }

    const attrs = bare.split(',');
    if (attrs[0]?.startsWith('m=')) return this.#fail('malformed-request', 'unsupported mandatory extension');
    if (!attrs[0]?.startsWith('n=') || !attrs[1]?.startsWith('r=') || !attrs.slice(2).every((a) => EXTENSION.test(a))) {
      return this.#fail('malformed-request', 'bad client-first-message-bare');
    }
    const decoded = decodeSaslname(attrs[0].slice(2));
    if (decoded === undefined) return this.#fail('malformed-request', 'bad username encoding');
    let username: string;
    try { username = saslprep(decoded); } catch { return this.#fail('malformed-request', 'username fails SASLprep'); }
    if (username === '') return this.#fail('malformed-request', 'empty username');
    const clientNonce = attrs[1].slice(2);
    if (!NONCE.test(clientNonce)) return this.#fail('malformed-request', 'bad client nonce');

    const refused = await throttled(o, username);
    if (refused) { this.#state = 'done'; return refused; }

    let account: StoredCredentials | undefined;
    try { account = await o.lookup(username); } catch {
      return this.#fail('temporary-auth-failure', 'credential lookup failed', username);
    }
    const found = account && storedVerifier(account, o.hash);
    if (found === 'corrupt') return this.#fail('temporary-auth-failure', 'stored credentials are corrupt', username);
    this.#username = username;
    this.#account = found ? account : undefined;
    // Missing user or no verifier for this hash: continue with a fake one so the failure looks alike.
    this.#creds = found ?? {
      salt: fakeSalt(o.serverSecret, o.hash, username),
      iterations: o.fakeIterations ?? DEFAULT_FAKE_ITERATIONS,
      storedKey: randomBytes(HASH_BYTES[o.hash]),
      serverKey: randomBytes(HASH_BYTES[o.hash]),
    };

    const serverNonce = (o.nonce ?? randomNonce)();
    this.#nonce = clientNonce + serverNonce;
    this.#gs2Header = text.slice(0, text.length - bare.length);
    this.#clientFirstBare = bare;
    const ssdp = this.#o.advertised ? `,h=${downgradeHash(this.#o.hash, this.#o.advertised)}` : '';
    this.#serverFirst = `r=${this.#nonce},s=${this.#creds.salt.toString('base64')},i=${this.#creds.iterations}${ssdp}`;
    this.#state = 'final';
    return { kind: 'challenge', data: Buffer.from(this.#serverFirst, 'utf8') };
  }

  async #clientFinal(bytes: Uint8Array): Promise<SaslStep> {
    const o = this.#o, hash = o.hash, user = this.#username, creds = this.#creds!;
    const text = decodeMessage(bytes);
    if (text === undefined) return this.#fail('malformed-request', 'client-final is not UTF-8 or too long', user);
    const p = text.lastIndexOf(',p=');
    if (p < 0) return this.#fail('malformed-request', 'client-final has no proof', user);
    const withoutProof = text.slice(0, p);
    const attrs = withoutProof.split(',');
    if (!attrs[0]?.startsWith('c=') || !attrs[1]?.startsWith('r=') || !attrs.slice(2).every((a) => EXTENSION.test(a))) {
      return this.#fail('malformed-request', 'bad client-final-message', user);
    }
    const cbind = strictBase64(attrs[0].slice(2));
    const proof = strictBase64(text.slice(p + 3));
    if (!cbind || !proof || proof.length !== HASH_BYTES[hash]) return this.#fail('malformed-request', 'bad base64 in client-final', user);

    const gs2 = Buffer.from(this.#gs2Header, 'utf8');
    const expected = this.#cbData ? Buffer.concat([gs2, this.#cbData]) : gs2;
    if (!sameBytes(cbind, expected)) return this.#fail('not-authorized', 'channel binding data does not match', user);
    if (attrs[1].slice(2) !== this.#nonce) return this.#fail('not-authorized', 'nonce mismatch', user);

    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xor(proof, hmac(hash, creds.storedKey, authMessage));
    const proofOk = sameBytes(digest(hash, clientKey), creds.storedKey);
    const account = this.#account;
    if (!proofOk || !account) { this.#state = 'done'; return credentialFailure(o, 'invalid credentials', user); }

    // Only now, with the password proven, may the account's state be revealed.
    const authcid = account.username ?? user;
    if (account.disabled) return this.#fail('account-disabled', 'account disabled', authcid);
    const authzid = this.#authzid;
    if (authzid !== undefined) {
      let allowed: boolean;
      try { allowed = await authzidAllowed(o, authcid, authzid); } catch {
        return this.#fail('temporary-auth-failure', 'authorization check failed', authcid);
      }
      if (!allowed) return this.#fail('invalid-authzid', `may not act as ${authzid}`, authcid);
    }
    await o.throttle?.recordSuccess(authcid, o.address);
    this.#state = 'done';
    const serverSignature = hmac(hash, creds.serverKey, authMessage);
    const step: SaslStep = { kind: 'success', data: Buffer.from(`v=${serverSignature.toString('base64')}`), authcid };
    if (authzid !== undefined) step.authzid = authzid;
    return step;
  }
}

// ---- client ---------------------------------------------------------------------------------------

/** A salted password with the parameters it was made with, as a client may cache it. */
export interface SaltedPasswordCache {
  salt: Uint8Array;
  iterations: number;
  saltedPassword: Uint8Array;
}

export interface ScramClientOptions {
  /** 'SHA-1' | 'SHA-256' | 'SHA-512' (a string so callers can pass what they parsed). */
  hash: HashName | string;
  username: string;
  /** Needed unless `cached` matches what the server sends. */
  password?: string;
  authzid?: string;
  /** Bind to the channel (use with the -PLUS mechanism). */
  channelBinding?: { type: ChannelBindingType; data: Uint8Array };
  /** Without `channelBinding`: the client could bind but the server offered no -PLUS (sends 'y'). */
  supportsChannelBinding?: boolean;
  cached?: SaltedPasswordCache;
  /** Client nonce (tests pin it); random by default. */
  nonce?: string;
  /** Refuse servers asking for more work than this (default 10 million). */
  maxIterations?: number;
  /** What the server's features listed: a server `h` (XEP-0474) that does not match fails. */
  advertised?: Advertised;
}

export class ScramClient {
  readonly hash: HashName;
  readonly mechanism: string;
  #o: ScramClientOptions;
  #nonce: string;
  #gs2Header: string;
  #bare = '';
  #expectedServerSignature: Buffer | undefined;
  #salted: SaltedPasswordCache | undefined;

  constructor(options: ScramClientOptions) {
    if (!isHashName(options.hash)) throw new Error(`unsupported SCRAM hash ${options.hash}`);
    this.hash = options.hash;
    this.#o = options;
    this.mechanism = `SCRAM-${options.hash}${options.channelBinding ? '-PLUS' : ''}`;
    this.#nonce = options.nonce ?? randomNonce();
    if (!NONCE.test(this.#nonce)) throw new Error('client nonce must be printable ASCII without ","');
    const flag = options.channelBinding ? `p=${options.channelBinding.type}` : options.supportsChannelBinding ? 'y' : 'n';
    this.#gs2Header = `${flag},${options.authzid !== undefined ? `a=${encodeSaslname(options.authzid)}` : ''},`;
  }

  /** client-first-message, GS2 header included. */
  clientFirst(): string {
    this.#bare = `n=${encodeSaslname(saslprep(this.#o.username))},r=${this.#nonce}`;
    return this.#gs2Header + this.#bare;
  }

  /** client-final-message for the server-first-message; throws if the server's message is unacceptable. */
  async clientFinal(serverFirst: string): Promise<string> {
    if (!this.#bare) throw new Error('clientFirst() must come first');
    const attrs = serverFirst.split(',');
    if (attrs[0]?.startsWith('m=')) throw new Error('SCRAM: server requires an unsupported extension');
    const [r, s, i] = attrs;
    if (!r?.startsWith('r=') || !s?.startsWith('s=') || !i?.startsWith('i=')) throw new Error('SCRAM: malformed server-first-message');
    const nonce = r.slice(2);
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length || !NONCE.test(nonce)) {
      throw new Error('SCRAM: server nonce does not extend ours');
    }
    const salt = strictBase64(s.slice(2));
    if (!salt || salt.length === 0) throw new Error('SCRAM: bad salt');
    const iterations = /^[1-9][0-9]{0,9}$/.test(i.slice(2)) ? Number(i.slice(2)) : NaN;
    if (!(iterations <= (this.#o.maxIterations ?? 10_000_000))) throw new Error('SCRAM: bad iteration count');
    const h = attrs.find((a) => a.startsWith('h='))?.slice(2);
    if (h !== undefined && this.#o.advertised && h !== downgradeHash(this.hash, this.#o.advertised)) {
      throw new Error('SCRAM: the server saw other mechanisms or channel-binding types than we did (XEP-0474): a downgrade');
    }

    const cached = this.#o.cached;
    let saltedPassword: Uint8Array;
    if (cached && cached.iterations === iterations && sameBytes(Buffer.from(cached.salt), salt)) {
      saltedPassword = cached.saltedPassword;
    } else if (this.#o.password !== undefined) {
      saltedPassword = await saltPassword(this.#o.password, this.hash, salt, iterations);
    } else {
      throw new Error('SCRAM: no password and the cached salted password does not match the server parameters');
    }
    this.#salted = { salt, iterations, saltedPassword };

    const cbData = this.#o.channelBinding?.data;
    const gs2 = Buffer.from(this.#gs2Header, 'utf8');
    const c = (cbData ? Buffer.concat([gs2, cbData]) : gs2).toString('base64');
    const withoutProof = `c=${c},r=${nonce}`;
    const authMessage = `${this.#bare},${serverFirst},${withoutProof}`;
    const { clientKey, storedKey, serverKey } = keysFromSaltedPassword(this.hash, saltedPassword);
    const proof = xor(clientKey, hmac(this.hash, storedKey, authMessage));
    this.#expectedServerSignature = hmac(this.hash, serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** True when the server-final-message proves the server knew our verifier. */
  verifyServerFinal(serverFinal: string): boolean {
    const expected = this.#expectedServerSignature;
    const m = /^v=([^,]*)(?:,|$)/.exec(serverFinal);
    const got = m && strictBase64(m[1]!);
    return !!expected && !!got && sameBytes(got, expected);
  }

  /** The salted password after clientFinal, for caching. */
  get salted(): SaltedPasswordCache | undefined { return this.#salted; }
}
