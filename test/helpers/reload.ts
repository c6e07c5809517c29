// Writes a version of a test kind into a temp actors folder, as an operator editing code on disk would.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNTIME = fileURLToPath(new URL('../../src/runtime', import.meta.url));

export function writeKindVersion(actorsDir: string, kind: string, fixture: string): void {
  const src = readFileSync(fileURLToPath(new URL(`../fixtures/reload/${fixture}`, import.meta.url)), 'utf8');
  mkdirSync(join(actorsDir, kind), { recursive: true });
  writeFileSync(join(actorsDir, kind, 'index.ts'), src.replaceAll('__RUNTIME__', RUNTIME));
}
