// The user actor: one per account, started on demand by the first stanza for it. It keeps the
// account's bound sessions and routes what is addressed to the account. Its snapshot (sessions,
// small module state) is saved whenever it changes, so a crash restarts it where it was.
import { enqueueActions, setup } from 'xstate';
import { send, sender, suspend } from '../../src/runtime/api.ts';
import { defineKind } from '../../src/runtime/kind.ts';
import type { RuntimeEvent } from '../../src/runtime/kind.ts';
import { andThen } from '../../src/xmpp/module.ts';
import { initialUserContext, onArrived, onStarted, onBind, onClient, onDeleted, onDown, onRedeliver, onStanza, onUnbind, rememberBinder, routeAsUser, settled, type Patch, type Step, type UserCtx } from './core.ts';
import type { ToSessionFromUser, ToUser } from './messages.ts';

type Ev = ToUser | RuntimeEvent;

/** Handlers work on a copy of the context (module views mutate it); the copy plus patch is the new
 *  context — assigned only if a value changed, since a new context means a snapshot write. A step
 *  that is still running (async hooks) suspends the actor; its patch comes back in runtime.resumed. */
const step = <E extends Ev>(f: (w: UserCtx, e: E) => Step) => enqueueActions<UserCtx, E, undefined, Ev, never, never, never, never, never>(({ context, event, enqueue }) => {
  const w = { ...context };
  const r = settled(w, f(w, event));
  if (r instanceof Promise) { suspend(r.then((patch) => ({ ...w, ...patch }))); return; }
  const next = { ...w, ...r };
  if ((Object.keys(next) as Array<keyof UserCtx>).some((k) => next[k] !== context[k])) enqueue.assign(next);
});

const machine = setup({
  types: { context: {} as UserCtx, events: {} as Ev, input: {} as { address: string } },
}).createMachine({
  id: 'user',
  context: ({ input }) => initialUserContext(input.address),
  on: {
    bind: { actions: step((w, e) => { rememberBinder(w, e.resource, sender()); return onBind(w, e); }) },
    // 'unbound' promises the session that nothing more comes: it is sent once the hooks have run.
    unbind: { actions: step((w, e) => { const s = sender(); return andThen(onUnbind(w, e.resource), (p) => { if (s) send(s, { type: 'unbound' } satisfies ToSessionFromUser); return p; }); }) },
    stanza: { actions: step((w, e) => onStanza(w, e.xml, e.h)) },
    client: { actions: step((w, e) => onClient(w, e)) },
    route: { actions: step((w, e) => routeAsUser(w, e.xml)) },
    redeliver: { actions: step((w, e) => onRedeliver(w, e.xml, e.except, e.sent)) },
    arrived: { actions: step((w, e) => onArrived(w, e.resource)) },
    delete: { actions: step((w, e) => onDeleted(w, e.reply)) },
    'runtime.down': { actions: step((w, e) => onDown(w, e.address, e.reason, e.ref)) },
    // After a crash or a reload: modules reconcile their state (e.g. sessions that vanished meanwhile).
    'runtime.restored': { actions: step((w) => onStarted(w)) },
    'runtime.resumed': { actions: step((_, e) => e.value as Patch) },
  },
});

export default defineKind({
  kind: 'user', version: 1, machine, activation: 'on-demand', persist: 'always',
  input: (address) => ({ address }),
});
