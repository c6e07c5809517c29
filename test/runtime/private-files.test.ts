// Everything under data_dir is owner-only: a node started on an existing, too-open data_dir makes it
// 0700 and creates its LevelDB files, certificates, secret and admin socket private; one it cannot fix
// it refuses, naming the fix.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DataDirError, ensurePrivateDataDir } from '../../src/storage/private-files.ts';
import { tempDir } from '../helpers/runtime.ts';
import { startServer } from '../helpers/xmpp.ts';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

function everything(dir: string): Array<{ path: string; mode: number }> {
  const out: Array<{ path: string; mode: number }> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    out.push({ path, mode: st.mode & 0o777 });
    if (st.isDirectory()) out.push(...everything(path));
  }
  return out;
}

test('a node on an existing 0755 data_dir makes it 0700 and creates every file in it private', async () => {
  const parent = tempDir('chorus-perm-');
  const data = join(parent, 'data');
  mkdirSync(data);
  chmodSync(data, 0o755);
  const server = await startServer((c) => { c.data_dir = data; });
  try {
    await server.addUser('juliet'); // a SCRAM verifier written into LevelDB
    assert.is(mode(data), '700');
    assert.ok(server.logs.includes(`[warn] chorus: data_dir ${data} had mode 755, open to other users; changed it to 700`), server.logs.join('\n'));
    const all = everything(data);
    const names = all.map((e) => relative(data, e.path));
    for (const expected of ['admin.sock', 'secret', 'certs', 'certs/localhost.crt', 'certs/localhost.key', 'db', 'db/CURRENT', 'db/LOCK']) {
      assert.ok(names.includes(expected), `${expected} not among ${names.join(', ')}`);
    }
    assert.ok(names.some((n) => /^db\/\d+\.log$/.test(n)), names.join(', '));
    const open = all.filter((e) => e.mode & 0o077).map((e) => `${relative(data, e.path)} (${e.mode.toString(8)})`);
    assert.equal(open, [], `open to group/other: ${open.join(', ')}`);
  } finally {
    await server.node.stop();
    rmSync(parent, { recursive: true, force: true });
  }
});

test('a private data_dir is left alone, without a warning', () => {
  const data = tempDir('chorus-perm-');
  try {
    const logs: string[] = [];
    ensurePrivateDataDir(data, (level, text) => logs.push(`[${level}] ${text}`));
    assert.is(mode(data), '700');
    assert.equal(logs, []);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('a missing data_dir is created 0700', () => {
  const parent = tempDir('chorus-perm-');
  try {
    const data = join(parent, 'a', 'b');
    ensurePrivateDataDir(data, () => {});
    assert.is(mode(data), '700');
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('a too-open data_dir owned by someone else is refused, with the command to fix it', () => {
  const data = tempDir('chorus-perm-');
  chmodSync(data, 0o750);
  try {
    const owner = statSync(data).uid;
    let err: unknown;
    try { ensurePrivateDataDir(data, () => {}, owner + 4242); } catch (e) { err = e; }
    assert.instance(err, DataDirError);
    const msg = (err as Error).message;
    assert.match(msg, `data_dir ${data} has mode 750`);
    assert.match(msg, `it belongs to uid ${owner}, not to this process (uid ${owner + 4242})`);
    assert.match(msg, `chmod 700 ${data}`);
    assert.is(mode(data), '750'); // not touched
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test.run();
