// The user actor: one per account, started on demand by the first stanza for it. It keeps the
// account's bound sessions, sends what its clients send and routes what is addressed to the account.
// Its snapshot (sessions, small module state) is saved whenever it changes, so a crash restarts it
// where it was.
//
// A reducer (xstate's fromTransition), not a state machine: an account has no modes, every message
// is handled the same way whatever came before. `step` is the whole of it: (context, message) → the
// next context and the effects to carry out (effects.ts), as data; the logic below performs them.
// Each handler works on a copy of the context (module views replace its objects); the next context
// is kept as the old one when nothing changed (then no snapshot is written). A handler that waits
// (async hooks) suspends the actor; its outcome comes back in runtime.resumed.
import { fromTransition } from 'xstate';
import { sender, service, suspend } from '../../src/runtime/api.ts';
import type { Address } from '../../src/runtime/address.ts';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import { andThen } from '../../src/xmpp/module.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { initialUserContext, onArrived, onStarted, onBind, onClient, onDeleted, onDetached, onDown, onRedeliver, onStanza, onUnbind, routeAsUser, settled, Turn, type Patch, type Step, type UserCtx } from './core.ts';
import { perform, type UserEffect } from './effects.ts';
import type { ToUser } from './messages.ts';

export type UserEvent = ToUser | RuntimeEvent;
/** What a message comes to. A handler that failed (a module's bug, storage down) still has the
 *  effects it decided before: they are carried out (an IQ's internal-server-error among them), then
 *  the actor crashes, as an Erlang process's sends before its crash are sent. */
export interface Outcome { context: UserCtx; effects: UserEffect[]; error?: unknown }

type Handlers = { [T in UserEvent['type']]?: (t: Turn, w: UserCtx, e: Extract<UserEvent, { type: T }>, from: Address | undefined) => Step };

const handlers: Handlers = {
  bind: (t, w, e, from) => onBind(t, w, e, from),
  // 'unbound' promises the session that nothing more comes: it is said once the hooks have run.
  unbind: (t, w, e, from) => andThen(onUnbind(t, w, e.resource), (p) => { if (from) t.emit({ do: 'tell', to: from, msg: { type: 'unbound' } }); return p; }),
  stanza: (t, w, e) => onStanza(t, w, e.xml, e.h),
  client: (t, w, e) => onClient(t, w, e),
  route: (t, w, e) => routeAsUser(t, w, e.xml),
  redeliver: (t, w, e) => onRedeliver(t, w, e.xml, e.except, e.sent),
  arrived: (t, w, e) => onArrived(t, w, e.resource),
  detached: (t, w, e) => onDetached(t, w, e.resource, true),
  attached: (t, w, e) => onDetached(t, w, e.resource, false),
  delete: (t, w, e) => onDeleted(t, w, e.reply),
  // A monitor set by v1 of this kind (before a hot upgrade) has no tag: v1 kept its ref instead.
  'runtime.down': (t, w, e) => onDown(t, w, e.reason, typeof e.tag === 'number' ? e.tag : e.ref),
  // After a crash or a reload: modules reconcile their state (e.g. sessions that vanished meanwhile).
  'runtime.restored': (t, w) => onStarted(t, w),
};

/** One message, given the thread's XMPP service and who sent it: the next context and the effects, or
 *  a promise of them when a hook waits. What it does itself is in the effects; the modules' hooks
 *  do their own I/O through the context they get (storage, durable deliveries). */
export function step(env: XmppService, context: UserCtx, event: UserEvent, from?: Address): Outcome | Promise<Outcome> {
  const handler = handlers[event.type as ToUser['type']] as ((t: Turn, w: UserCtx, e: UserEvent, from: Address | undefined) => Step) | undefined;
  if (!handler) return { context, effects: [] };
  const t = new Turn(env);
  const w = { ...context };
  const outcome = (patch: Patch): Outcome => {
    t.done = true;
    const next = { ...w, ...patch };
    for (const k in next) if (next[k as keyof UserCtx] !== context[k as keyof UserCtx]) return { context: next, effects: t.fx };
    return { context, effects: t.fx };
  };
  const failed = (error: unknown): Outcome => { t.done = true; return { context, effects: t.fx, error: error ?? new Error('a hook failed') }; };
  let r: Step;
  try { r = settled(t, handler(t, w, event, from)); } catch (err) { return failed(err); }
  return r instanceof Promise ? r.then(outcome, failed) : outcome(r);
}

function carryOut(o: Outcome): UserCtx {
  perform(o.effects);
  if (o.error !== undefined) throw o.error;
  return o.context;
}

export function reduce(context: UserCtx, event: UserEvent): UserCtx {
  if (event.type === 'runtime.resumed') return carryOut(event.value as Outcome);
  const o = step(service<XmppService>('xmpp'), context, event, sender());
  if (o instanceof Promise) { suspend(o); return context; }
  return carryOut(o);
}

const logic = fromTransition(reduce, ({ input }: { input: { address: string } }) => initialUserContext(input.address));

export default defineKind({
  kind: 'user', version: 2, machine: logic, activation: 'on-demand', persist: 'always',
  input: (address) => ({ address }),
  // v2: monitors are named by tags the actor gives (it counts them); v1 named them by their refs,
  // which stay valid for the monitors v1 set (see runtime.down).
  migrate: (snap) => ({ ...snap, context: { ...(snap.context as UserCtx), tags: 0 } }),
});
