// Everything that crosses a thread boundary is one of these flat records: structured clone of flat
// objects is ~5x cheaper than of parsed trees (measured-facts.md), so actor messages stay flat too.
import type { MessagePort } from 'node:worker_threads';
import type { Address, ThreadId } from './address.ts';

export type ExitReason = 'normal' | 'shutdown' | 'moved' | 'kill' | string;

/** An actor message in flight. `d` marks a durable send (the sender's token), `q` a durable delivery. */
export interface Envelope {
  t: Address;          // to
  f?: Address;         // from
  m: unknown;          // the message (flat, structured-cloneable)
  d?: number;          // durable: token the owner thread confirms back to thread `s`
  s?: ThreadId;        // sender thread (for durable confirmations)
}

/** Control records between threads; batched with envelopes in one postMessage per tick. */
export type Control =
  | { c: 'confirm'; token: number; error?: string }
  | { c: 'release'; address: Address; seq: string }
  | { c: 'monitor'; target: Address; watcher: Address; ref: number }
  | { c: 'demonitor'; target: Address; ref: number }
  | { c: 'link'; target: Address; other: Address }
  | { c: 'unlink'; target: Address; other: Address }
  | { c: 'down'; to: Address; target: Address; ref: number; reason: ExitReason }
  /** A monitored actor moved (moveTo) and now runs at `address`: the monitor `ref` follows it. */
  | { c: 'moved'; to: Address; target: Address; ref: number; address: Address }
  | { c: 'exit-signal'; to: Address; from: Address; reason: ExitReason }
  | { c: 'spawn'; address: Address; restore: boolean; input?: unknown; reply?: number; snapshot?: Record<string, unknown>; adopt?: boolean;
      /** A move: the monitors of the actor at `from` come along. */
      from?: Address; monitors?: Array<[number, Address]> }
  | { c: 'spawned'; reply: number; error?: string }
  | { c: 'kill'; address: Address; reason: ExitReason; reply?: number }
  | { c: 'forget'; address: Address }
  | { c: 'exited'; address: Address; reason: ExitReason; kind: string }
  | { c: 'activated'; address: Address; kind: string }
  | { c: 'reload'; kind: string; reply: number }
  | { c: 'reloaded'; reply: number; result?: ReloadResult; error?: string }
  | { c: 'stats'; reply: number; withActors?: boolean; kind?: string; gc?: boolean }
  | { c: 'stats-reply'; reply: number; stats: SchedulerStats }
  | { c: 'peer'; thread: ThreadId; port: MessagePort }
  | { c: 'thread-down'; thread: ThreadId }
  | { c: 'ready'; thread: ThreadId }
  | { c: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; text: string }
  /** A method of a shared service on its home thread (callAt): state keyed by something other than an actor. */
  | { c: 'call'; service: string; method: string; args: unknown[]; reply: number }
  | { c: 'call-reply'; reply: number; value?: unknown; error?: string }
  | { c: 'shutdown'; reply: number }
  | { c: 'shutdown-done'; reply: number };

export type Packet = Envelope | Control;
export const isControl = (p: Packet): p is Control => (p as Control).c !== undefined;

export interface ReloadResult { kind: string; version: number; actors: number; ms: number; scheduler?: number }

export interface ActorInfo { address: Address; kind: string; queue: number; durable: number; handled: number; status: string }
export interface SchedulerStats {
  thread: ThreadId;
  actors: number;
  byKind: Record<string, number>;
  mailboxDepth: number;
  /** Of those, durable messages (kept in LevelDB until handled). */
  durableQueued: number;
  maxMailbox: { address: Address; depth: number } | null;
  handled: number;
  crashes: number;
  /** LevelDB batches the thread wrote (group commit: one per tick with writes) and their operations. */
  durableWrites: { batches: number; ops: number };
  heapUsed: number;
  /** How late the thread's event loop ran timers since the previous stats request (ms). */
  eventLoopLagMs: { p99: number; max: number };
  kinds: Record<string, { version: number; loads: number }>;
  list?: ActorInfo[];
}
