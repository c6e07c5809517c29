// The .cpuprofile summary: self time per function from samples and time deltas, idle left out of "busy".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { summarise, profileMarkdown, type CpuProfile } from '../../bench/lib/profile.ts';

const cf = (functionName: string, url = '') => ({ functionName, url, lineNumber: 9, columnNumber: 0 });
const profile: CpuProfile = {
  startTime: 0, endTime: 10_000,
  nodes: [
    { id: 1, callFrame: cf('(root)'), children: [2, 3, 4] },
    { id: 2, callFrame: cf('(idle)') },
    { id: 3, callFrame: cf('route', 'file:///x/src/xmpp/route.ts'), children: [5] },
    { id: 4, callFrame: cf('(garbage collector)') },
    { id: 5, callFrame: cf('write', 'node:net') },
  ],
  // deltas[i+1] is the time spent in samples[i]
  samples: [3, 3, 5, 2, 4, 3],
  timeDeltas: [0, 1000, 1000, 2000, 4000, 500, 1000],
};

test('self time per function and file; idle is not busy', () => {
  const s = summarise(profile);
  assert.is(s.totalMs, 9.5);
  assert.is(s.busyMs, 5.5);
  assert.equal(s.functions.map((f) => [f.name, f.ms]), [['(idle)', 4], ['route', 3], ['write', 2], ['(garbage collector)', 0.5]]);
  assert.match(s.functions[1].where, /x\/src\/xmpp\/route\.ts:10$/);
  const md = profileMarkdown([{ name: 'a', summary: s }, { name: 'b', summary: s }]);
  assert.match(md, /## All threads/);
  assert.match(md, /\| 6 \| 54\.5% \| `route` \|/);
  assert.not.match(md, /`\(idle\)`/);
});

test.run();
