// Hot reload of an actor kind while messages stream to it: order and count intact, state migrated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { writeKindVersion } from '../helpers/reload.ts';
import { startTestNode, tempDir, type TestNode } from '../helpers/runtime.ts';

let node: TestNode;
const actors = join(tempDir('chorus-kinds-'), 'actors');
test.before(async () => {
  writeKindVersion(actors, 'tally', 'tally.v1.ts');
  node = await startTestNode({ actorDirs: [actors] });
});
test.after(async () => { await node.cleanup(); });

test('reload under a stream of messages: every actor moves to v2 with its state, nothing lost or reordered', async () => {
  const ACTORS = 200, PER = 300;
  const box = node.inbox('conn:reload');
  let sent = 0;
  // Stream in slices so the reload lands in the middle of the traffic.
  const stream = (async () => {
    for (let n = 1; n <= PER; n++) {
      for (let a = 0; a < ACTORS; a++) node.runtime.send(`tally:${a}`, { type: 'n', n });
      sent++;
      await new Promise((r) => setTimeout(r, 3)); // ~1 s of traffic
    }
  })();
  while (sent < PER / 3) await new Promise((r) => setImmediate(r));
  writeKindVersion(actors, 'tally', 'tally.v2.ts');
  const results = await node.runtime.reload('tally');
  const atReload = sent;
  await stream;
  assert.ok(atReload < PER, `reload happened mid-stream (at ${atReload}/${PER})`);
  assert.is(results.reduce((s, r) => s + r.actors, 0) > 0, true);
  assert.ok(results.every((r) => r.version === 2));
  for (let a = 0; a < ACTORS; a++) node.runtime.send(`tally:${a}`, { type: 'report', to: 'conn:reload' });
  for (let a = 0; a < ACTORS; a++) {
    const r = await box.next((m) => m.address === `tally:${a}`);
    assert.is(r.code, 2, `tally:${a} runs v2`);
    assert.is(r.count, PER, `tally:${a} saw all ${PER}`);
    assert.is(r.gaps, 0, `tally:${a} in order`);
  }
});

test('a reload whose new code does not compile fails clearly and keeps the old code running', async () => {
  const box = node.inbox('conn:reload2');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(actors, 'tally', 'index.ts'), 'export default {{ broken');
  let error = '';
  try { await node.runtime.reload('tally'); } catch (err) { error = (err as Error).message; }
  assert.match(error, /reload of tally failed/);
  node.runtime.send('tally:0', { type: 'report', to: 'conn:reload2' });
  assert.is((await box.next()).code, 2);
});

test.run();
