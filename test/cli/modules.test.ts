// The README's list of supported XEPs is the modules' own declarations, printed by `chorus modules`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('README table = chorus modules --markdown', () => {
  const generated = execFileSync(process.execPath, ['bin/chorus.js', 'modules', '--markdown'], { cwd: root, encoding: 'utf8' }).trim();
  const readme = readFileSync(`${root}/README.md`, 'utf8');
  const m = /<!-- modules:begin -->\n([\s\S]*?)\n<!-- modules:end -->/.exec(readme);
  assert.ok(m, 'README has the modules block');
  assert.is(m![1]!.trim(), generated, 'run `npx chorus modules --markdown` and paste it into the README');
  assert.match(generated, /\| 0030 \| `disco` \|/);
});

test.run();
