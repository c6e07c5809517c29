// Ping-pong pairs: the throughput workload for 1 vs 2 schedulers.
import { assign, setup } from 'xstate';
import { send, sender } from '../../../src/runtime/api.ts';
import { defineKind } from '../../../src/runtime/kind.ts';

interface Ctx { got: number; rounds: number; peer: string; report: string }
type Ev =
  | { type: 'start'; peer: string; rounds: number; window: number; report: string }
  | { type: 'ping' } | { type: 'pong' };

const machine = setup({ types: { context: {} as Ctx, events: {} as Ev } }).createMachine({
  context: { got: 0, rounds: 0, peer: '', report: '' },
  on: {
    start: {
      actions: [
        assign(({ event }) => ({ got: 0, rounds: event.rounds, peer: event.peer, report: event.report })),
        ({ event }) => { for (let i = 0; i < event.window; i++) send(event.peer, { type: 'ping' }); },
      ],
    },
    ping: { actions: () => send(sender()!, { type: 'pong' }) },
    pong: {
      actions: [
        assign(({ context }) => ({ got: context.got + 1 })),
        ({ context }) => {
          if (context.got < context.rounds) send(context.peer, { type: 'ping' });
          else if (context.got === context.rounds) send(context.report, { type: 'done' });
        },
      ],
    },
  },
});

export default defineKind({ kind: 'pp', version: 1, machine, activation: 'on-demand', persist: 'never' });
