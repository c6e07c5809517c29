// The contract of an actor kind: one folder under actors/ whose index.ts default-exports defineKind(...).
// A kind is data: the runtime decides where it runs, when it is persisted and how it is supervised.
import type { AnyActorLogic } from 'xstate';
import type { Address } from './address.ts';

/** What xstate's getPersistedSnapshot() returns; opaque JSON to the runtime. */
export type PersistedSnapshot = Record<string, unknown>;

export interface KindDefinition<M extends AnyActorLogic = AnyActorLogic> {
  /** Address prefix: actors of this kind are named `<kind>:<id>`. */
  kind: string;
  /** Version of the persisted state's shape; bump it and give `migrate` when the shape changes. */
  version: number;
  /** The actor's logic: a state machine, or a reducer (`fromTransition`) for an actor whose every
   *  message is handled the same way whatever came before. */
  machine: M;
  /** 'on-demand': a message to an address with no live actor starts it (a virtual actor, restored from
   *  its snapshot if it has one). 'explicit': only spawn() starts it; mail waits in its durable mailbox. */
  activation?: 'on-demand' | 'explicit';
  /** 'always': the snapshot is saved (group commit, with the handled message's removal) after every
   *  message that changed it. 'never': state is rebuilt from input on restart. */
  persist?: 'always' | 'never';
  /** With 'always': only snapshots for which this holds are saved (a stream before bind is not worth
   *  a write per step: a crash there ends the stream instead). */
  persistIf?: (snapshot: { value?: unknown; context?: unknown }) => boolean;
  /** Input for a fresh actor (not used when restoring a snapshot). */
  input?: (address: Address, spawnInput: unknown) => unknown;
  /** Turn a snapshot saved by `fromVersion` of this kind into one this version understands. */
  migrate?: (snapshot: PersistedSnapshot, fromVersion: number) => PersistedSnapshot;
  /** Name of the dynamic supervisor that adopts actors of this kind started on demand or at boot. */
  supervisor?: string;
}

export function defineKind<M extends AnyActorLogic>(def: KindDefinition<M>): KindDefinition<M> {
  if (!/^[a-z][a-z0-9_-]*$/.test(def.kind)) throw new Error(`bad actor kind name ${JSON.stringify(def.kind)}`);
  if (!Number.isInteger(def.version) || def.version < 1) throw new Error(`kind ${def.kind}: version must be a positive integer`);
  return def;
}

/** Events the runtime itself sends to machines. */
export type RuntimeEvent =
  | { type: 'runtime.down'; address: Address; ref: number; reason: string; tag?: unknown }
  | { type: 'runtime.exit'; from: Address; reason: string }
  | { type: 'runtime.restored'; reason: string }
  /** The promise a handler suspended on (api suspend()) settled with value: the same message goes on. */
  | { type: 'runtime.resumed'; value: unknown }
  /** First message of an actor that moveTo() brought here: it now exists at its new address. */
  | { type: 'runtime.moved' };
