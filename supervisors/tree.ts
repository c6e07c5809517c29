// The node's whole supervision tree, in one place (as ejabberd_sup.erl is):
//
//   chorus                    rest_for_one   3 restarts / 60 s, then the node stops
//   ├── schedulers            one_for_one    5 / 30 s    scheduler-1 … scheduler-N (worker threads)
//   ├── users                 dynamic        50 / 10 s   user:<bare JID>        (transient)
//   ├── rooms                 dynamic        50 / 10 s   room:<room JID>        (transient)
//   ├── sessions              dynamic        100 / 10 s  session:@<conn>, session:<full JID> (transient)
//   ├── s2s                   dynamic        50 / 10 s   s2s:<local>|<remote>   outbound server links (transient)
//   ├── actors                dynamic        50 / 10 s   every other kind (s2sin, component, external, service kinds) (transient)
//   (each dynamic child: 5 restarts / 10 s of its own, then it is left down and not counted)
//   └── listeners             one_for_one    5 / 30 s    c2s, c2s_direct_tls, s2s, s2s_out (the dialer), component (the admin socket is outside the tree)
//
// rest_for_one: if the schedulers supervisor gives up, everything after it restarts with it; a
// listener that gives up takes nothing else down.
import type { Runtime } from '../src/runtime/runtime.ts';
import { Supervisor, type ChildSpec, type SupervisorLog } from '../src/runtime/supervisor.ts';

/** One actor's own restart budget: a crash loop of one account or room stays its own. */
const PER_CHILD = { intensity: 5, period: 10_000 };

export function nodeTree(rt: Runtime, listeners: ChildSpec[], log: SupervisorLog): Supervisor {
  const schedulers: ChildSpec[] = Array.from({ length: rt.o.schedulers }, (_, i) => ({
    id: `scheduler-${i + 1}`, start: rt.schedulerChild(i + 1), restart: 'permanent', shutdown: 10_000,
  }));
  const actors = (name: string, kinds: string[] | 'default', intensity: number): ChildSpec => ({
    id: name, type: 'supervisor', restart: 'permanent', shutdown: 'infinity',
    start: async () => rt.actorSupervisor(name, kinds, { restart: 'transient', intensity, period: 10_000, perChild: PER_CHILD }, log),
  });
  return new Supervisor('chorus', [
    { id: 'schedulers', type: 'supervisor', shutdown: 'infinity', start: () => new Supervisor('schedulers', schedulers, { strategy: 'one_for_one', intensity: 5, period: 30_000 }, log).start() },
    actors('users', ['user'], 50),
    actors('rooms', ['room'], 50),
    actors('sessions', ['session'], 100),
    actors('s2s', ['s2s'], 50),
    actors('actors', 'default', 50),
    { id: 'listeners', type: 'supervisor', shutdown: 'infinity', start: () => new Supervisor('listeners', listeners, { strategy: 'one_for_one', intensity: 5, period: 30_000 }, log).start() },
  ], { strategy: 'rest_for_one', intensity: 3, period: 60_000 }, log);
}
