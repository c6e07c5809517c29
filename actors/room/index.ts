// The room actor: one per group-chat room (`room:<room JID>`), and one for each service domain
// (`room:conference.example.org`). Started by its first stanza; its snapshot (configuration,
// affiliations, occupants, subject; history too when the room keeps no archive) is saved after every change, so a crash or a kill
// restarts it with everyone still in the room, and a persistent room that emptied sleeps on disk
// until its next stanza. A reducer, as the user actor is: a room has no modes.
import { fromTransition } from 'xstate';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { onOperator, onStanza, type RoomOperatorRequest } from './room.ts';
import { initialRoom, type RoomCtx } from './state.ts';

type Ev = { type: 'stanza'; xml: string; h: StanzaHeader } | RoomOperatorRequest | RuntimeEvent;

export function reduce(ctx: RoomCtx, ev: Ev): RoomCtx {
  if (ev.type === 'stanza') return onStanza(ctx, ev.xml, ev.h);
  if (ev.type === 'operator') return onOperator(ctx, ev);
  // A handler that waited on storage (suspend) may end with the room's next state.
  if (ev.type === 'runtime.resumed') return isRoom(ev.value) ? ev.value : ctx;
  return ctx;
}

const isRoom = (v: unknown): v is RoomCtx => typeof v === 'object' && v !== null && 'occupants' in v && 'jid' in v;

export default defineKind({
  kind: 'room', version: 1, activation: 'on-demand', persist: 'always',
  machine: fromTransition(reduce, ({ input }: { input: { address: string } }) => initialRoom(input.address)),
  input: (address) => ({ address }),
});
