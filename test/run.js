#!/usr/bin/env node
// Runs every test file in its own Node process (a test that starts a node, workers or sockets cannot
// leak into the next), two at a time, and prints one closing line: "N passed, N failed".
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts') && (!filter || filter.test(path))) files.push(path);
  }
})(join(root, 'test'));

let passed = 0, failed = 0, skipped = 0;
const broken = [];
function runOne(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const limit = setTimeout(() => { out += '\n[runner] timed out after 240 s\n'; child.kill('SIGKILL'); }, 240_000);
    child.on('close', (code) => {
      clearTimeout(limit);
      const total = sum(out, /Total:\s+(\d+)/g), ok = sum(out, /Passed:\s+(\d+)/g), skip = sum(out, /Skipped:\s+(\d+)/g);
      const bad = Math.max(total - ok - skip, code === 0 ? 0 : 1);
      passed += ok; failed += bad; skipped += skip;
      const name = relative(root, file);
      console.log(`${bad ? 'FAIL' : 'ok  '} ${name} (${ok} passed, ${bad} failed, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (bad) { broken.push(name); console.log(out.split('\n').map((l) => '    ' + l).join('\n')); }
      resolve();
    });
  });
}
function sum(text, re) { let n = 0; for (const m of text.matchAll(re)) n += Number(m[1]); return n; }

const queue = [...files];
const lanes = Math.max(1, Math.min(2, availableParallelism()));
await Promise.all(Array.from({ length: lanes }, async () => { while (queue.length) await runOne(queue.shift()); }));
if (broken.length) console.log(`\nfailed files: ${broken.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed || files.length === 0 ? 1 : 0);
