// Counts hits and reports when it has seen `expect` of them.
import { assign, setup } from 'xstate';
import { send } from '../../../src/runtime/api.ts';
import { defineKind } from '../../../src/runtime/kind.ts';

interface Ctx { hits: number; expect: number; report: string }
type Ev = { type: 'expect'; n: number; report: string } | { type: 'hit'; i: number };

const machine = setup({ types: { context: {} as Ctx, events: {} as Ev } }).createMachine({
  context: { hits: 0, expect: -1, report: '' },
  on: {
    expect: { actions: assign(({ event }) => ({ hits: 0, expect: event.n, report: event.report })) },
    hit: {
      actions: [
        assign(({ context }) => ({ hits: context.hits + 1 })),
        ({ context }) => { if (context.hits === context.expect) send(context.report, { type: 'counted', hits: context.hits }); },
      ],
    },
  },
});

export default defineKind({ kind: 'counter', version: 1, machine, activation: 'on-demand', persist: 'never' });
