// The user actor: one per account, started on demand by the first stanza for it. It keeps the
// account's bound sessions, sends what its clients send and routes what is addressed to the account.
// Its snapshot (sessions, small module state) is saved whenever it changes, so a crash restarts it
// where it was.
//
// A reducer (xstate's fromTransition), not a state machine: an account has no modes, every message
// is handled the same way whatever came before, so (context, event) → context is the whole of it,
// with none of a machine's per-event work (a chat message passes here twice, at the sender's and at
// the recipient's). Each handler works on a copy of the context (module views replace its objects);
// the copy plus the handler's patch is the next context, kept as the old one when nothing changed
// (then no snapshot is written). A handler that waits (async hooks) suspends the actor; its patch
// comes back in runtime.resumed.
import { fromTransition } from 'xstate';
import { send, sender, suspend } from '../../src/runtime/api.ts';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import { andThen } from '../../src/xmpp/module.ts';
import { initialUserContext, onArrived, onStarted, onBind, onClient, onDeleted, onDetached, onDown, onRedeliver, onStanza, onUnbind, rememberBinder, routeAsUser, settled, type Patch, type Step, type UserCtx } from './core.ts';
import type { ToSessionFromUser, ToUser } from './messages.ts';

type Ev = ToUser | RuntimeEvent;
type Handlers = { [T in Ev['type']]?: (w: UserCtx, e: Extract<Ev, { type: T }>) => Step };

const handlers: Handlers = {
  bind: (w, e) => { rememberBinder(w, e.resource, sender()); return onBind(w, e); },
  // 'unbound' promises the session that nothing more comes: it is sent once the hooks have run.
  unbind: (w, e) => { const s = sender(); return andThen(onUnbind(w, e.resource), (p) => { if (s) send(s, { type: 'unbound' } satisfies ToSessionFromUser); return p; }); },
  stanza: (w, e) => onStanza(w, e.xml, e.h),
  client: (w, e) => onClient(w, e),
  route: (w, e) => routeAsUser(w, e.xml),
  redeliver: (w, e) => onRedeliver(w, e.xml, e.except, e.sent),
  arrived: (w, e) => onArrived(w, e.resource),
  detached: (w, e) => onDetached(w, e.resource, true),
  attached: (w, e) => onDetached(w, e.resource, false),
  delete: (w, e) => onDeleted(w, e.reply),
  'runtime.down': (w, e) => onDown(w, e.reason, e.ref),
  // After a crash or a reload: modules reconcile their state (e.g. sessions that vanished meanwhile).
  'runtime.restored': (w) => onStarted(w),
  'runtime.resumed': (_, e) => e.value as Patch,
};

export function reduce(context: UserCtx, event: Ev): UserCtx {
  const handler = handlers[event.type] as ((w: UserCtx, e: Ev) => Step) | undefined;
  if (!handler) return context;
  const w = { ...context };
  const r = settled(w, handler(w, event));
  if (r instanceof Promise) { suspend(r.then((patch) => ({ ...w, ...patch }))); return context; }
  const next = { ...w, ...r };
  for (const k in next) if (next[k as keyof UserCtx] !== context[k as keyof UserCtx]) return next;
  return context;
}

const logic = fromTransition(reduce, ({ input }: { input: { address: string } }) => initialUserContext(input.address));

export default defineKind({
  kind: 'user', version: 1, machine: logic, activation: 'on-demand', persist: 'always',
  input: (address) => ({ address }),
});
