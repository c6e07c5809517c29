// The stream of an external component (XEP-0114), `component:@<conn>`: one per connection on the
// component listener (loopback), its decisions in machine.ts. Nothing of it is persisted: a stream
// that crashes ends, its domain's actor stops delivering to it, and the component connects again.
import { defineKind } from '../../src/runtime/kind.ts';
import type { ConnInfo } from '../../src/net/c2s-protocol.ts';
import { componentMachine } from './machine.ts';
import { actions, guards } from './effects.ts';

export default defineKind({
  kind: 'component', version: 1, machine: componentMachine.provide({ actions, guards }), activation: 'explicit', persist: 'never',
  input: (_address, spawnInput) => spawnInput as ConnInfo,
});
