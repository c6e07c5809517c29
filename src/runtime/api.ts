// The API an actor's machine uses from its actions, Erlang style: the scheduler knows which actor's
// message is being handled (xstate runs actions synchronously inside send; a suspended handler's
// awaits carry it along), so `self()` and `send()` need no plumbing through context — and a machine
// stays plain, persistable data.
import type { Address } from './address.ts';
import type { ExitReason } from './protocol.ts';

export interface SendOptions { durable?: boolean }
/** Handle of a durable message an actor keeps past its handler (see retain()). */
export interface Receipt { address: Address; seq: string }

export interface ActorContextApi {
  self(): Address;
  sender(): Address | undefined;
  send(to: Address, message: unknown): void;
  sendDurable(to: Address, message: unknown): Promise<void>;
  spawn(address: Address, input?: unknown): Promise<void>;
  /** `tag` comes back in its `runtime.down`: a watcher whose state is data names its monitors itself. */
  monitor(target: Address, tag?: unknown): number;
  demonitor(ref: number): void;
  link(other: Address): void;
  unlink(other: Address): void;
  trapExits(on: boolean): void;
  exit(reason: ExitReason): void;
  kill(target: Address, reason: ExitReason): void;
  startTimer(name: string, ms: number, message: unknown): void;
  cancelTimer(name: string): void;
  retain(): Receipt | undefined;
  suspend(promise: Promise<unknown>): void;
  /** True while a message is being handled here (synchronously or after one of its awaits). */
  inHandler(): boolean;
  messageId(): string | undefined;
  release(receipt: Receipt): void;
  sendRetained(to: Address, message: unknown, receipt: Receipt): void;
  persistNow(): void;
  later(): (message: unknown) => void;
  courier(): (to: Address, message: unknown) => void;
  moveTo(address: Address): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  /** Shared services of this thread (db, config, ...), installed by the node. */
  service<T>(name: string): T;
  callAt(home: Address, service: string, method: string, args: unknown[], timeoutMs?: number): Promise<unknown>;
}

/** This thread's host; it knows which actor's message is being handled (across awaits too). */
let thread: ActorContextApi | null = null;
export function setThreadApi(api: ActorContextApi): void { thread = api; }

function ctx(): ActorContextApi {
  if (!thread?.inHandler()) throw new Error('actor API used outside of an actor handling a message');
  return thread;
}

export const self = (): Address => ctx().self();
export const sender = (): Address | undefined => ctx().sender();
/** Fire-and-forget, like Erlang's `!`: lost if the receiver's thread dies before handling it. */
export const send = (to: Address, message: unknown): void => ctx().send(to, message);
/** Resolves once the message is in LevelDB; it stays there until the receiver has handled it. */
export const sendDurable = (to: Address, message: unknown): Promise<void> => ctx().sendDurable(to, message);
export const spawn = (address: Address, input?: unknown): Promise<void> => ctx().spawn(address, input);
export const monitor = (target: Address, tag?: unknown): number => ctx().monitor(target, tag);
export const demonitor = (ref: number): void => ctx().demonitor(ref);
export const link = (other: Address): void => ctx().link(other);
export const unlink = (other: Address): void => ctx().unlink(other);
export const trapExits = (on: boolean): void => ctx().trapExits(on);
/** Ends this actor after the current message; any reason but 'normal'/'shutdown' counts as a crash. */
export const exit = (reason: ExitReason = 'normal'): void => ctx().exit(reason);
export const kill = (target: Address, reason: ExitReason = 'kill'): void => ctx().kill(target, reason);
/** Runtime timers survive a hot reload; after a crash restart the machine gets 'runtime.restored' to re-arm. */
export const startTimer = (name: string, ms: number, message: unknown): void => ctx().startTimer(name, ms, message);
export const cancelTimer = (name: string): void => ctx().cancelTimer(name);
/** The id of the durable message being handled (stable across redeliveries: receivers drop
 *  duplicates by it); undefined for a plain message. */
export const messageId = (): string | undefined => ctx().messageId();
/** Keep the durable message being handled in LevelDB after the handler returns, until release(). */
export const retain = (): Receipt | undefined => ctx().retain();
/** Works outside a handler too (a promise callback): it only names the message. */
export const release = (receipt: Receipt): void => (thread ?? ctx()).release(receipt);
/** Sends `message`, which hands on the retained durable message of `receipt` (retain()), plainly;
 *  should `to`'s thread die before the receipt is released, it is sent again to its replacement,
 *  whose receiver drops it by the receipt if it had it. (A plain message to a thread that dies is
 *  lost with it; this one is on disk, and its holder would wait for it forever.) */
export const sendRetained = (to: Address, message: unknown, receipt: Receipt): void => ctx().sendRetained(to, message, receipt);
/** Suspends this actor until the promise settles (see host.ts): its mailbox waits, the durable
 *  message stays, and the machine then gets `{ type: 'runtime.resumed', value }`. A rejection
 *  crashes the actor, and a durable message is redelivered to its restart. Once per message. */
export const suspend = (promise: Promise<unknown>): void => ctx().suspend(promise);
export const persistNow = (): void => ctx().persistNow();
/** Calls `method` of service `service` on the thread where an actor named `home` would live, so that
 *  state kept per key in a service (the login throttle) meets in one place whichever thread asks.
 *  Works outside a handler; rejects after 5 s without an answer (a thread that died). */
export const callAt = (home: Address, service: string, method: string, ...args: unknown[]): Promise<unknown> => {
  if (!thread) throw new Error('callAt used off a scheduler thread');
  return thread.callAt(home, service, method, args);
};
/** Calls `method` of a main-thread service (Runtime.provide), e.g. the node's operator commands;
 *  rejects with the service's error, or after `timeoutMs` without an answer. */
export const callNode = (service: string, method: string, args: unknown[], timeoutMs = 60_000): Promise<unknown> => {
  if (!thread) throw new Error('callNode used off a scheduler thread');
  return thread.callAt('node:services', service, method, args, timeoutMs);
};
/** A function that sends a message to this actor later, from a promise callback or a timer: async work
 *  comes back as a message, so the actor still handles one message at a time. */
export const later = (): ((message: unknown) => void) => ctx().later();
/** After this message, the actor continues under a new address (same kind), with its state; mail to
 *  the old address is forwarded for a while. A stream becomes `session:<full JID>` at bind this way. */
/** A send function for use outside a handler (a promise callback), sending as this actor. */
export const courier = (): ((to: Address, message: unknown) => void) => ctx().courier();
export const moveTo = (address: Address): void => ctx().moveTo(address);
/** Works outside a handler too (a promise callback, a timer): the line then names no actor. */
export const log = (level: 'debug' | 'info' | 'warn' | 'error', text: string): void => (thread ?? ctx()).log(level, text);
export const service = <T>(name: string): T => ctx().service<T>(name);
