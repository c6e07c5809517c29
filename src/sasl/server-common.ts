// Pieces shared by the server mechanisms: strict decoding, fake credentials, authzid policy, throttling.
import { createHmac } from 'node:crypto';
import { Jid, tryParseJid } from '../xmpp/jid.ts';
import type { HashName, SaslServerOptions, SaslFailureStep, SaslFailureCondition } from './types.ts';

export const MAX_MESSAGE_BYTES = 8192;
export const DEFAULT_FAKE_ITERATIONS = 4096;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 text of a client message, or undefined if it is not valid UTF-8 or is too long. */
export function decodeMessage(bytes: Uint8Array, max = MAX_MESSAGE_BYTES): string | undefined {
  if (bytes.length > max) return undefined;
  try { return utf8.decode(bytes); } catch { return undefined; }
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Canonical base64 only (Buffer.from is lenient and would accept junk). */
export function strictBase64(s: string): Buffer | undefined {
  return B64.test(s) ? Buffer.from(s, 'base64') : undefined;
}

/** A stable per-user salt for accounts that do not exist, so probing them looks like a wrong password. */
export function fakeSalt(secret: string | Uint8Array, hash: HashName | 'PLAIN', username: string): Buffer {
  return createHmac('sha256', secret).update(`chorus-fake-salt\0${hash}\0${username}`).digest().subarray(0, 16);
}

/** Whether authcid may act as authzid: the `authorize` hook, else only the user's own bare JID. */
export async function authzidAllowed(o: SaslServerOptions, authcid: string, authzid: string): Promise<boolean> {
  if (o.authorize) return o.authorize(authcid, authzid);
  if (!o.domain) return false;
  const j = tryParseJid(authzid);
  if (!j || !j.isBare()) return false;
  try { return j.equals(new Jid(authcid, o.domain)); } catch { return false; }
}

/** Builds a failure step. Only credentialFailure() counts toward throttling and lock-out: a refused
 *  mechanism or binding type says nothing about whether the client knows the password. */
export function failure(condition: SaslFailureCondition, reason: string, authcid?: string): SaslFailureStep {
  const step: SaslFailureStep = { kind: 'failure', condition, reason };
  if (authcid !== undefined) step.authcid = authcid;
  return step;
}

/** A wrong password or proof: not-authorized, recorded in the throttle. */
export async function credentialFailure(o: SaslServerOptions, reason: string, authcid?: string): Promise<SaslFailureStep> {
  const step = failure('not-authorized', reason, authcid);
  step.wrongCredentials = true;
  if (o.throttle) {
    const delay = await o.throttle.recordFailure(authcid, o.address);
    if (delay > 0) step.delayMs = delay;
  }
  return step;
}

/** A throttling refusal, or undefined when the attempt may proceed. */
export async function throttled(o: SaslServerOptions, authcid: string): Promise<SaslFailureStep | undefined> {
  if (!o.throttle) return undefined;
  const d = await o.throttle.check(authcid, o.address);
  if (d.allowed) return undefined;
  return { kind: 'failure', condition: 'temporary-auth-failure', reason: 'too many failed attempts', authcid, retryAfterMs: d.retryAfterMs };
}
