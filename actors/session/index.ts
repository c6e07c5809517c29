// The session actor: one per client stream, its decisions in the stream's machine (machine.ts). It
// starts as `session:@<conn>` and moves to `session:<full JID>` at bind (next to its user actor).
// Once bound, its snapshot is saved on every change, so a crash restarts it here and the connection
// (main thread) replays what it had not handled: the client notices nothing. Before bind a login
// writes nothing (a crash there ends the stream: the client logs in again).
import { defineKind, type PersistedSnapshot } from '../../src/runtime/kind.ts';
import type { ConnInfo } from '../../src/net/c2s-protocol.ts';
import { sessionMachine } from './machine.ts';
import type { SessionCtx } from './stream.ts';

/** v1 (before the machine had named guards and actions): SASL was one state, and `next` and
 *  `bindResource` were kept in the context. */
function fromV1(snap: PersistedSnapshot): PersistedSnapshot {
  const { next: _, ...context } = snap.context as Record<string, unknown>;
  void _;
  const value = snap.value === 'authenticating' ? { authenticating: 'waiting' } : snap.value === 'check' ? 'open' : snap.value;
  return { ...snap, value, context: { mechanism: '', bindResource: context.bindResource ?? '', ...context } };
}

export default defineKind({
  kind: 'session', version: 2, machine: sessionMachine, activation: 'explicit', persist: 'always',
  persistIf: (snap) => (snap.context as SessionCtx).jid !== null,
  input: (_address, spawnInput) => spawnInput as ConnInfo,
  migrate: (snap, from) => {
    if (from !== 1) throw new Error(`session: cannot migrate from v${from}`);
    return fromV1(snap);
  },
});
