// The shipped chorus.example.yaml, as a new admin uses it: `chorus check` and `chorus start` accept
// it (only its certificate paths, data_dir and ports substituted), and a client gets a stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSelfSigned } from '../../src/net/tls.ts';
import { freePort } from '../helpers/xmpp.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/chorus.js', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

test('chorus.example.yaml: check says 0 problems, start serves it, a bad module name fails both alike', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-example-'));
  try {
    const { cert, key } = await generateSelfSigned('example.org');
    await writeFile(join(dir, 'fullchain.pem'), cert);
    await writeFile(join(dir, 'privkey.pem'), key, { mode: 0o600 });
    const port = await freePort();
    const text = (await readFile(join(root, 'chorus.example.yaml'), 'utf8'))
      .replace('/etc/letsencrypt/live/example.org/fullchain.pem', join(dir, 'fullchain.pem'))
      .replace('/etc/letsencrypt/live/example.org/privkey.pem', join(dir, 'privkey.pem'))
      .replace('address: "::"', 'address: 127.0.0.1')
      .replace(/c2s: 5222/, `c2s: ${port}`)
      .replace(/c2s_direct_tls: 5223/, `c2s_direct_tls: ${await freePort()}`)
      .replace(/s2s: 5269/, `s2s: ${await freePort()}`)
      .replace(/s2s_direct_tls: 5270/, `s2s_direct_tls: ${await freePort()}`)
      .replace(/component: 5347/, `component: ${await freePort()}`)
      .replace(/http: 5280/, `http: ${await freePort()}`)
      .replace(/https: 5281/, `https: ${await freePort()}`)
      .replace(/schedulers: 4/, 'schedulers: 2');
    const config = join(dir, 'chorus.yaml');
    await writeFile(config, text);

    const check = await run(['check', '--config', config]);
    assert.match(check.out, /check: 0 problems/, check.out);

    const node = spawn(process.execPath, ['bin/chorus.js', 'start', '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    try {
      const exited = once(node, 'exit').then(() => { throw new Error(`chorus start exited:\n${log}`); });
      const serving = new Promise<string>((resolve) => {
        node.stderr.on('data', (d) => { log += d; if (log.includes('chorus: serving')) resolve(log); });
      }).then(async () => {
        const s = connect(port, '127.0.0.1');
        await once(s, 'connect');
        s.write(`<?xml version='1.0'?><stream:stream to='example.org' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
        const [data] = await once(s, 'data');
        s.destroy();
        return String(data);
      });
      const header = await Promise.race([serving, exited]);
      assert.match(log, /chorus: serving example\.org on c2s 127\.0\.0\.1:\d+, direct TLS 127\.0\.0\.1:\d+, s2s 127\.0\.0\.1:\d+ and Direct TLS :\d+ \(federation by certificate or dialback\), http 127\.0\.0\.1:\d+, https 127\.0\.0\.1:\d+, components 127\.0\.0\.1:\d+ \(irc\.example\.org\)/);
      assert.match(header, /from=["']example\.org["']/);
      assert.match(header, /<starttls/);
    } finally {
      node.kill('SIGTERM');
      await once(node, 'exit');
    }

    await writeFile(config, text.replace('    - version', '    - frobnicate'));
    const bad = await run(['check', '--config', config]);
    assert.is(bad.code, 1);
    assert.match(bad.out, /modules\.disabled: no module named 'frobnicate'/);
    const start = await run(['start', '--config', config]);
    assert.is(start.code, 1);
    assert.match(start.out, /modules\.disabled: no module named 'frobnicate'/);
    assert.not.match(start.out, /scheduler \d+ died/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ordinary mistakes at start: one line naming the problem and its fix, no stack trace (#18.5)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-mistake-'));
  const holder = createServer();
  try {
    const port = await freePort();
    await new Promise<void>((r) => holder.listen(port, '127.0.0.1', () => r()));
    const config = join(dir, 'chorus.yaml');
    const base = `hosts: [localhost]\ndata_dir: ./data\n`;
    await writeFile(config, `${base}listen: { address: 127.0.0.1, c2s: ${port}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false }\n`);
    const taken = await run(['start', '--config', config]);
    assert.is(taken.code, 1);
    assert.match(taken.out, /chorus: listen\.c2s: port \d+ on 127\.0\.0\.1 is already in use\nchorus: fix: /);
    assert.not.match(taken.out, /\n\s+at /, 'no stack trace');
    assert.not.match(taken.out, /internal error/);

    const other = await generateSelfSigned('localhost');
    const mine = await generateSelfSigned('localhost');
    await writeFile(join(dir, 'cert.pem'), other.cert);
    await writeFile(join(dir, 'key.pem'), mine.key, { mode: 0o600 });
    await writeFile(config, `${base}listen: { address: 127.0.0.1, c2s: ${await freePort()}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false }\ntls: { localhost: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }\n`);
    const mismatch = await run(['start', '--config', config]);
    assert.is(mismatch.code, 1);
    assert.match(mismatch.out, /chorus: tls\.localhost: .*private key.*\nchorus: fix: the key must be the one/);
    assert.not.match(mismatch.out, /\n\s+at /, 'no stack trace');
  } finally {
    holder.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('certificates at start and reload: what chorus check fails is refused with its fix and exit 1, what it warns of is warned about (#18.3, #30.3)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-certs-'));
  const certFile = join(dir, 'fullchain.pem'), keyFile = join(dir, 'privkey.pem');
  const put = async (p: { cert: string; key: string }, key = p.key) => { await writeFile(certFile, p.cert); await writeFile(keyFile, key, { mode: 0o600 }); };
  const config = join(dir, 'chorus.yaml');
  await writeFile(config, `hosts: [localhost]\ndata_dir: ./data\nlisten: { address: 127.0.0.1, c2s: ${await freePort()}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false }\n` +
    `tls: { localhost: { cert: ${certFile}, key: ${keyFile} } }\n`);
  await put(await generateSelfSigned('other.example'));
  const wrongName = await run(['start', '--config', config]);
  assert.is(wrongName.code, 1, wrongName.out);
  assert.match(wrongName.out, /chorus: tls\.localhost: does not cover localhost \(names: other\.example\)\nchorus: fix: use a certificate issued for localhost/);
  await put(await generateSelfSigned('localhost', { days: -1 / 48 }));
  const expired = await run(['start', '--config', config]);
  assert.is(expired.code, 1, expired.out);
  assert.match(expired.out, /chorus: tls\.localhost: expired on \S+\nchorus: fix: renew it/);

  await put(await generateSelfSigned('localhost'));
  const node = spawn(process.execPath, ['bin/chorus.js', 'start', '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      node.stderr.on('data', (d) => { log += d; if (log.includes('chorus: serving')) resolve(); });
      node.once('exit', () => reject(new Error(`chorus start exited:\n${log}`)));
    });
    assert.match(log, /\[warn\] tls\.localhost: self-signed/);

    await put(await generateSelfSigned('localhost'), (await generateSelfSigned('localhost')).key);
    const bad = await run(['reload', '--config', config]);
    assert.is(bad.code, 1, bad.out);
    assert.match(bad.out, /chorus: tls\.localhost: not reloaded: .*private key/);

    await put(await generateSelfSigned('localhost', { days: -1 / 48 }));
    const old = await run(['reload', '--config', config]);
    assert.is(old.code, 1, old.out);
    assert.match(old.out, /chorus: tls\.localhost: not reloaded: .*expired on/);

    await put(await generateSelfSigned('localhost'));
    const good = await run(['reload', '--config', config]);
    assert.is(good.code, 0, good.out);
    assert.match(good.out, /warning: tls\.localhost: self-signed/);
    assert.match(log, /\[error\] reload: tls\.localhost: .*still serving the previous certificate/);
    assert.not.match(log, /tls\.localhost: tls\.localhost:/, 'the host named once (#30.9)');
  } finally {
    node.kill('SIGTERM');
    await once(node, 'exit');
    assert.match(log, /\[info\] node stopping\n[\s\S]*\[info\] node stopped\n/, 'the log says when the node has stopped (#30.9)');
    await rm(dir, { recursive: true, force: true });
  }
});

test('log_file: the log goes to the file, and chorus reload reopens it after logrotate moved it (#30.11)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'chorus-logfile-'));
  const config = join(dir, 'chorus.yaml');
  await writeFile(config, `hosts: [localhost]\ndata_dir: ./data\nlog_file: ./chorus.log\nlisten: { address: 127.0.0.1, c2s: ${await freePort()}, c2s_direct_tls: ${await freePort()}, s2s: false, http: false, https: false }\n`);
  const node = spawn(process.execPath, ['bin/chorus.js', 'start', '--config', config], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const logFile = join(dir, 'chorus.log');
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  const until = async (f: string, re: RegExp) => { for (let i = 0; i < 300 && !re.test(await read(f)); i++) await new Promise((r) => setTimeout(r, 50)); return read(f); };
  try {
    assert.match(await until(logFile, /chorus: serving localhost/), /\[info\] chorus: serving localhost/);
    if (process.getuid?.() === 0) assert.match(await read(logFile), /\[warn\] chorus: running as root: .*deploy\/chorus\.service/);
    await rename(logFile, `${logFile}.1`); // what logrotate does
    const r = await run(['reload', '--config', config]);
    assert.is(r.code, 0, r.out);
    assert.match(await until(logFile, /\[info\] reload: /), /\[info\] reload: all kinds/);
    assert.not.match(await read(`${logFile}.1`), /reload: /);
  } finally {
    node.kill('SIGTERM');
    await once(node, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
