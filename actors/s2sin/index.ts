// The inbound server-to-server stream actor: one per connection on the s2s listener, `s2sin:@<conn>`,
// its decisions in machine.ts. Nothing of it is persisted: an unauthenticated stream that crashes
// ends, and the peer connects again.
import { defineKind } from '../../src/runtime/kind.ts';
import { s2sInMachine, type S2sInInput } from './machine.ts';

export default defineKind({
  kind: 's2sin', version: 1, machine: s2sInMachine, activation: 'explicit', persist: 'never',
  input: (_address, spawnInput) => spawnInput as S2sInInput,
});
