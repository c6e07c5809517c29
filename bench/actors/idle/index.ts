// An idle actor shaped like a small session (a few states, a little context): for bytes per actor,
// spawn rate and hot-reload time.
import { assign, setup } from 'xstate';
import { send } from '../../../src/runtime/api.ts';
import { defineKind } from '../../../src/runtime/kind.ts';

interface Ctx { jid: string; resource: string; priority: number; seen: number; version: number }
type Ev = { type: 'touch' } | { type: 'bind'; jid: string } | { type: 'close' } | { type: 'report'; to: string };

const machine = setup({ types: { context: {} as Ctx, events: {} as Ev } }).createMachine({
  context: { jid: '', resource: '', priority: 0, seen: 0, version: 1 },
  initial: 'opened',
  states: {
    opened: { on: { bind: { target: 'bound', actions: assign(({ event }) => ({ jid: event.jid })) } } },
    bound: { on: { touch: { target: 'active' } } },
    active: { on: { close: 'closed' } },
    closed: { type: 'final' },
  },
  on: {
    touch: { actions: assign(({ context }) => ({ seen: context.seen + 1 })) },
    report: { actions: ({ context, event }) => send(event.to, { type: 'report', version: context.version }) },
  },
});

export default defineKind({ kind: 'idle', version: 1, machine, activation: 'on-demand', persist: 'never' });
