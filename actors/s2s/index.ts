// The outbound server-to-server link actor, `s2s:<local domain>|<remote domain>` (machine.ts):
// activated by the first stanza routed to the remote domain (or the first dialback verification an
// inbound stream asks of it). Its snapshot keeps the stanzas waiting for the link, so a crash or a
// restart sends them once the link is up again.
import { defineKind } from '../../src/runtime/kind.ts';
import { linkMachine } from './machine.ts';

export default defineKind({
  kind: 's2s', version: 1, machine: linkMachine, activation: 'on-demand', persist: 'always',
  input: (address) => {
    const [local, remote] = address.slice('s2s:'.length).split('|');
    return { local: local!, remote: remote! };
  },
});
