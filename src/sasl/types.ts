// Shared SASL types: what a mechanism returns at each step, stored credentials, failure names.
import type { LoginThrottle } from './throttle.ts';

export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-512';
export const HASHES: readonly HashName[] = ['SHA-512', 'SHA-256', 'SHA-1'];

export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point';
export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = ['tls-exporter', 'tls-server-end-point'];

/** RFC 6120 §6.5 failure conditions. */
export type SaslFailureCondition =
  | 'aborted' | 'account-disabled' | 'credentials-expired' | 'encryption-required' | 'incorrect-encoding'
  | 'invalid-authzid' | 'invalid-mechanism' | 'malformed-request' | 'mechanism-too-weak' | 'not-authorized'
  | 'temporary-auth-failure';

/** One hash's SCRAM verifier (RFC 5802 §3), as bytes. */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** The same, base64 encoded, as kept in the `acct!` record. */
export interface ScramCredentialsJson {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/** What the credential lookup returns for an existing account. */
export interface StoredCredentials {
  scram: Partial<Record<HashName, ScramCredentials | ScramCredentialsJson>>;
  disabled?: boolean;
  /** Canonical account name reported as authcid (e.g. the normalised localpart); defaults to the prepared username. */
  username?: string;
}

/** Resolves a SASLprep'd username to credentials; undefined when no such account. Throwing → temporary-auth-failure. */
export type CredentialLookup = (username: string) => Promise<StoredCredentials | undefined>;

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; data?: Buffer; authcid: string; authzid?: string }
  | {
    kind: 'failure';
    condition: SaslFailureCondition;
    /** For server logs only: never send it to the peer (it may tell missing users from wrong passwords). */
    reason: string;
    /** The claimed username when known, for logging and throttling. */
    authcid?: string;
    /** Wait this long before answering the failure (throttling backoff). */
    delayMs?: number;
    /** When throttled: when another attempt may succeed. */
    retryAfterMs?: number;
    /** A password (or proof) was checked and was wrong: only this counts as a failed login. */
    wrongCredentials?: true;
    /** The client asked for a channel-binding type this connection does not offer. */
    unsupportedBinding?: true;
  };

export type SaslFailureStep = Extract<SaslStep, { kind: 'failure' }>;

/** A server-side mechanism exchange, driven one message at a time by the session. */
export interface SaslServer {
  readonly mechanism: string;
  /** The <auth/> element's initial response; undefined when it carried none. */
  start(initial?: Uint8Array): Promise<SaslStep>;
  /** A <response/>. */
  step(response: Uint8Array): Promise<SaslStep>;
}

export interface SaslServerOptions {
  lookup: CredentialLookup;
  /** Secret for fake salts of missing users; must be stable across restarts and nodes. */
  serverSecret: string | Uint8Array;
  /** Iterations reported for missing users; set it to what real accounts use. Default 4096. */
  fakeIterations?: number;
  /** Domain of this host: with no `authorize`, an authzid is accepted only if it is the user's own bare JID. */
  domain?: string;
  /** Decides whether authcid may act as authzid (already known to differ from empty). */
  authorize?: (authcid: string, authzid: string) => boolean | Promise<boolean>;
  /** Failed-attempt throttle consulted once the username is known; `address` is the peer's IP. */
  throttle?: LoginThrottle;
  address?: string;
}
