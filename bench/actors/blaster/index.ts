// Sends n messages to one address as fast as the router takes them (plain or durable).
import { setup } from 'xstate';
import { send, sendDurable } from '../../../src/runtime/api.ts';
import { defineKind } from '../../../src/runtime/kind.ts';

type Ev = { type: 'blast'; to: string; n: number; durable: boolean };

const machine = setup({ types: { events: {} as Ev } }).createMachine({
  on: {
    blast: {
      actions: ({ event }) => {
        for (let i = 1; i <= event.n; i++) {
          if (event.durable) void sendDurable(event.to, { type: 'hit', i });
          else send(event.to, { type: 'hit', i });
        }
      },
    },
  },
});

export default defineKind({ kind: 'blaster', version: 1, machine, activation: 'on-demand', persist: 'never' });
