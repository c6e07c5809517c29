// The actor of an external component's domain, `external:<domain>` (machine.ts): activated by the
// first stanza for the domain or the first component that connects for it.
import { defineKind } from '../../src/runtime/kind.ts';
import { externalMachine } from './machine.ts';

export default defineKind({
  kind: 'external', version: 1, machine: externalMachine, activation: 'on-demand', persist: 'always',
  input: (address) => ({ domain: address.slice('external:'.length) }),
});
