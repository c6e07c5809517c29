// Messages between the bench's main thread and its load workers. Flat records only (cheap to clone).
import type { SparseHistogram } from './histogram.ts';
import type { TlsMode } from './client.ts';

export interface Endpoint {
  host: string;
  port: number;
  tlsPort?: number;
  domain: string;
}

export interface WorkerInit {
  index: number;
  endpoint: Endpoint;
  tls: TlsMode;
  mechanism: string;
  /** Log in with XEP-0388 SASL2 and Bind 2 (always for HT-* FAST mechanisms). */
  sasl2: boolean;
  password: string;
  mainTimeOrigin: number;
  loginTimeoutMs: number;
  coalesce: boolean;
  /** Extra body bytes per message (the timestamp part is ~25). */
  padding: number;
  /** Address 1:1 messages to the bare JID (routing by presence/priority) instead of the full JID. */
  toBare: boolean;
}

export type Command =
  | { op: 'login'; users: number[]; concurrency: number; hold: boolean; presence: boolean; tag?: string }
  | { op: 'scram-warm'; users: number[]; concurrency: number }
  | { op: 'chat'; pairs: Array<[number, number]>; mode: 'closed' | 'open'; inflight: number; rate: number; durationMs: number }
  | { op: 'churn'; users: number[]; rate: number; durationMs: number }
  | { op: 'stop' }
  | { op: 'drain'; expect: number; drainMs: number }
  | { op: 'muc-probe' }
  /** `size`: the room's occupants in all; its creator configures it to allow that many. */
  | { op: 'muc-join'; room: string; users: number[]; size: number }
  | { op: 'muc'; room: string; senders: number[]; inflight: number; durationMs: number; occupants: number }
  | { op: 'close' };

export interface Ack {
  type: 'ack';
  op: string;
  seq: number;
  ok: boolean;
  error?: string;
  data?: Record<string, unknown>;
}

export interface StatsReport {
  type: 'stats';
  index: number;
  sent: number;
  recv: number;
  logins: number;
  loginFails: number;
  closedUnexpectedly: number;
  lat: SparseHistogram; // message latency, µs
  login: SparseHistogram; // connect → bound, µs
  tls: SparseHistogram; // TLS handshake alone, µs
  errors: string[];
}

export type WorkerMessage = Ack | StatsReport;
