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

test('a reload whose code does not typecheck is refused with the compiler\'s error, and the old code runs on (#17.1)', async () => {
  const { writeFileSync, readFileSync, symlinkSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  // A project around the temp actors folder, as the repository is around actors/.
  const project = dirname(actors);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ extends: join(process.cwd(), 'tsconfig.json'), include: ['actors'], exclude: [] }));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module' }));
  symlinkSync(join(process.cwd(), 'node_modules'), join(project, 'node_modules'));
  writeKindVersion(actors, 'tally', 'tally.v1.ts');
  const file = join(actors, 'tally', 'index.ts');
  // A misspelt identifier: esbuild would bundle it, the compiler refuses it (TS2552).
  writeFileSync(file, readFileSync(file, 'utf8').replace('send(event.to, {', 'sned(event.to, {'));
  let error = '';
  try { await node.runtime.reload('tally'); } catch (err) { error = (err as Error).message; }
  assert.match(error, /reload of tally refused: its code does not typecheck/, `${error}\n${node.logs.join("\n")}`);
  assert.match(error, /actors\/tally\/index\.ts\(\d+,\d+\): error TS\d+: Cannot find name 'sned'/);
  assert.ok(node.logs.some((l) => /reload: typecheck of tally: [1-9]\d* errors? in \d+ ms/.test(l)), node.logs.join("\n"));
  const box = node.inbox('conn:reload3');
  node.runtime.send('tally:1', { type: 'report', to: 'conn:reload3' });
  assert.ok((await box.next()).code >= 1, 'the running code still answers');
});

test('a crash in loaded actor code is logged with the source file and line, not the bundle position (#17.1)', async () => {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(actors, 'thrower'), { recursive: true });
  writeFileSync(join(actors, 'thrower', 'fail.ts'), ['// a helper in a second file of the kind', 'export function fail(): never {', "  throw new Error('thrown on line 3 of fail.ts');", '}', ''].join('\n'));
  writeFileSync(join(actors, 'thrower', 'index.ts'), [
    "import { setup } from 'xstate';",
    `import { defineKind } from '${join(process.cwd(), 'src/runtime/kind.ts')}';`,
    "import { fail } from './fail.ts';",
    "const machine = setup({}).createMachine({ on: { go: { actions: () => fail() } } });",
    "export default defineKind({ kind: 'thrower', version: 1, machine, activation: 'on-demand', persist: 'never' });",
    '',
  ].join('\n'));
  node.runtime.send('thrower:1', { type: 'go' });
  const { until } = await import('../helpers/runtime.ts');
  await until(() => node.logs.some((l) => l.includes('thrown on line 3')), 10_000, 'the crash to be logged');
  const entry = node.logs.find((l) => l.includes('thrown on line 3'))!;
  assert.match(entry, /thrower\/fail\.ts:3:\d+/);
  assert.not.match(entry, /#load\d+:/);
});

test.run();
