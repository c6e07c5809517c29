// Unit tests of OTP semantics with fake children: start order, strategies, restart types, intensity.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from '../helpers/assert.ts';
import { DynamicSupervisor, Supervisor, type Child, type ChildSpec, type RestartType } from '../../src/runtime/supervisor.ts';

class Fake implements Child {
  exit: ((r: string) => void) | null = null;
  constructor(readonly id: string, readonly journal: string[]) { journal.push(`start ${id}`); }
  onExit(cb: (r: string) => void) { this.exit = cb; }
  async stop() { this.journal.push(`stop ${this.id}`); }
  crash(reason = 'boom') { this.exit!(reason); }
}

function specs(journal: string[], ids: string[], live: Map<string, Fake>, restart: RestartType = 'permanent'): ChildSpec[] {
  return ids.map((id) => ({ id, restart, start: async () => { const f = new Fake(id, journal); live.set(id, f); return f; } }));
}
const settle = () => new Promise((r) => setTimeout(r, 10));

const S = suite('supervisor');

S('starts left to right and stops right to left', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  const sup = await new Supervisor('s', specs(j, ['a', 'b', 'c'], live)).start();
  await sup.stop();
  assert.equal(j, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
});

S('a child that fails to start stops the ones already started, in reverse', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  const list = specs(j, ['a', 'b'], live);
  list.push({ id: 'bad', start: async () => { throw new Error('port in use'); } });
  await rejects(() => new Supervisor('s', list).start(), /bad failed to start: port in use/);
  assert.equal(j, ['start a', 'start b', 'stop b', 'stop a']);
});

S('one_for_one restarts only the crashed child', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  await new Supervisor('s', specs(j, ['a', 'b', 'c'], live), { strategy: 'one_for_one', intensity: 5 }).start();
  j.length = 0;
  live.get('b')!.crash();
  await settle();
  assert.equal(j, ['start b']);
});

S('one_for_all stops the others in reverse and restarts all in order', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  await new Supervisor('s', specs(j, ['a', 'b', 'c'], live), { strategy: 'one_for_all', intensity: 5 }).start();
  j.length = 0;
  live.get('b')!.crash();
  await settle();
  assert.equal(j, ['stop c', 'stop a', 'start a', 'start b', 'start c']);
});

S('a temporary sibling stopped by one_for_all or rest_for_one is not started again, and is gone (OTP)', async () => {
  for (const strategy of ['one_for_all', 'rest_for_one'] as const) {
    const j: string[] = []; const live = new Map<string, Fake>();
    const list = [...specs(j, ['a'], live), ...specs(j, ['t'], live, 'temporary'), ...specs(j, ['c'], live)];
    const sup = await new Supervisor('s', list, { strategy, intensity: 5 }).start();
    j.length = 0;
    live.get('a')!.crash();
    await settle();
    assert.equal(j, ['stop c', 'stop t', 'start a', 'start c'], strategy);
    j.length = 0;
    await sup.stop();
    assert.equal(j, ['stop c', 'stop a'], `${strategy}: t is no longer a child`);
  }
});

S('rest_for_one restarts the crashed child and those started after it', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  await new Supervisor('s', specs(j, ['a', 'b', 'c', 'd'], live), { strategy: 'rest_for_one', intensity: 5 }).start();
  j.length = 0;
  live.get('b')!.crash();
  await settle();
  assert.equal(j, ['stop d', 'stop c', 'start b', 'start c', 'start d']);
});

S('transient restarts only on abnormal exit; temporary never', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  await new Supervisor('s', [...specs(j, ['t'], live, 'transient'), ...specs(j, ['x'], live, 'temporary')], { intensity: 5 }).start();
  j.length = 0;
  live.get('t')!.crash('normal');
  live.get('x')!.crash('boom');
  await settle();
  assert.equal(j, []);
  const sup2 = await new Supervisor('s2', specs(j, ['t2'], live, 'transient'), { intensity: 5 }).start();
  live.get('t2')!.crash('boom');
  await settle();
  assert.equal(j.slice(-1), ['start t2']);
  await sup2.stop();
});

S('more than `intensity` restarts in `period` stops every child and escalates', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  const sup = await new Supervisor('s', specs(j, ['a', 'b'], live), { intensity: 2, period: 10_000 }).start();
  let escalated = '';
  sup.onExit((r) => { escalated = r; });
  for (let i = 0; i < 3; i++) { live.get('a')!.crash(); await settle(); }
  assert.is(escalated, 'reached_max_restart_intensity');
  // two restarts allowed, the third gives up: b (still running) is stopped, a is not started again
  assert.equal(j, ['start a', 'start b', 'start a', 'start a', 'stop b']);
});

S('restarts outside the period do not add up', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  const sup = await new Supervisor('s', specs(j, ['a'], live), { intensity: 1, period: 30 }).start();
  let escalated = '';
  sup.onExit((r) => { escalated = r; });
  for (let i = 0; i < 4; i++) { live.get('a')!.crash(); await new Promise((r) => setTimeout(r, 45)); }
  assert.is(escalated, '');
  assert.is(j.filter((x) => x === 'start a').length, 5);
});

S('a nested supervisor that gives up is restarted by its parent', async () => {
  const j: string[] = []; const live = new Map<string, Fake>();
  const inner = () => new Supervisor('inner', specs(j, ['w'], live), { intensity: 0 }).start();
  await new Supervisor('outer', [{ id: 'inner', type: 'supervisor', start: inner }], { intensity: 3 }).start();
  j.length = 0;
  live.get('w')!.crash();
  await settle();
  assert.equal(j, ['start w']); // w is already dead; the new inner supervisor starts it again
});

const D = suite('dynamic supervisor');

D('starts children at run time and restarts a crashed one with the same args', async () => {
  const j: string[] = []; const made: Fake[] = [];
  const sup = new DynamicSupervisor<{ n: number }>('d', { restart: 'transient', start: async (a, restart) => { const f = new Fake(`c${a.n}${restart ? '*' : ''}`, j); made.push(f); return f; } }, { intensity: 5 });
  await sup.startChild('one', { n: 1 });
  await sup.startChild('two', { n: 2 });
  await rejects(() => sup.startChild('one', { n: 1 }), /already running/);
  made[0]!.crash();
  await settle();
  assert.equal(j, ['start c1', 'start c2', 'start c1*']);
  made[1]!.crash('normal');
  await settle();
  assert.is(sup.size, 1);
  await sup.stop();
  assert.ok(j.includes('stop c1*'));
});

D('escalates when children crash too often', async () => {
  const made: Fake[] = [];
  const sup = new DynamicSupervisor<number>('d', { start: async (n) => { const f = new Fake(`c${n}`, []); made.push(f); return f; } }, { intensity: 1, period: 10_000 });
  let escalated = '';
  sup.onExit((r) => { escalated = r; });
  await sup.startChild('a', 1);
  await sup.startChild('b', 2);
  made[0]!.crash(); await settle();
  made[1]!.crash(); await settle();
  assert.is(escalated, 'reached_max_restart_intensity');
  assert.is(sup.size, 0);
});

D('a child over its own budget is left down and does not count toward escalation', async () => {
  const made = new Map<string, Fake[]>();
  const sup = new DynamicSupervisor<string>('d', { start: async (id) => { const f = new Fake(id, []); made.set(id, [...(made.get(id) ?? []), f]); return f; } },
    { intensity: 4, period: 10_000, perChild: { intensity: 2, period: 10_000 } });
  let escalated = '';
  sup.onExit((r) => { escalated = r; });
  await sup.startChild('loop', 'loop');
  for (let i = 0; i < 3; i++) { made.get('loop')!.at(-1)!.crash(); await settle(); }
  assert.is(made.get('loop')!.length, 3, 'restarted twice, then left down');
  assert.not.ok(sup.has('loop'));
  // Adopted again (an on-demand actor's next message), it keeps its window: left down at once.
  const again = new Fake('loop', []);
  sup.adopt('loop', 'loop', again);
  again.crash(); await settle();
  assert.not.ok(sup.has('loop'));
  // Two other children may still use the supervisor's budget of 4 (2 used by 'loop').
  await sup.startChild('a', 'a');
  made.get('a')!.at(-1)!.crash(); await settle();
  made.get('a')!.at(-1)!.crash(); await settle();
  assert.is(escalated, '', 'one crash loop did not escalate');
  await sup.startChild('b', 'b');
  made.get('b')!.at(-1)!.crash(); await settle();
  assert.is(escalated, 'reached_max_restart_intensity', 'failures across children still escalate');
});

S.run();
D.run();
