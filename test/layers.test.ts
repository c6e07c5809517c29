// The layers, as docs/ARCHITECTURE.md names them, kept by reading every import: a change that
// makes a lower layer reach up fails here with the file and the import.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) out.push(...files(path));
    else if (/\.(ts|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

/** Repository-relative targets of a file's relative imports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => relative(root, resolve(join(root, dirname(file)), s)));
}

/** Every import from `layer` into one of `forbidden`, as "file -> target". */
function violations(layer: string, forbidden: string[]): string[] {
  const out: string[] = [];
  for (const f of files(layer)) {
    for (const target of importsOf(f)) if (forbidden.some((p) => target === p || target.startsWith(p + '/'))) out.push(`${f} -> ${target}`);
  }
  return out;
}

test('src/xml (the framer, trees, builders) imports nothing above it', () => {
  assert.equal(violations('src/xml', ['src/xmpp', 'src/modules', 'src/runtime', 'src/net', 'src/storage', 'actors', 'supervisors']), []);
});

test('src/xmpp is the protocol library: no runtime, sockets, storage engine or actors', () => {
  assert.equal(violations('src/xmpp', ['src/runtime', 'src/net', 'src/storage', 'actors', 'supervisors', 'src/cli']), []);
});

test('the runtime knows no application: no XMPP, no sockets, no actor kinds, and the tree is passed in', () => {
  assert.equal(violations('src/runtime', ['src/xmpp', 'src/xml', 'src/modules', 'src/net', 'src/sasl', 'actors', 'supervisors']), []);
});

test('feature modules use the module contract, not the actors or the runtime', () => {
  assert.equal(violations('src/modules', ['src/runtime', 'src/net', 'actors', 'supervisors', 'src/cli']), []);
});

test('the SASL mechanisms are a library over the protocol one: no runtime, sockets or actors', () => {
  assert.equal(violations('src/sasl', ['src/runtime', 'src/net', 'src/modules', 'actors', 'supervisors']), []);
});

test('storage and accounts name no feature: modules remove their own data (user/deleted)', () => {
  assert.equal(violations('src/storage', ['src/modules', 'src/runtime', 'src/net', 'actors', 'supervisors', 'src/cli']), []);
});

test.run();
