// `chorus check`: what it reports for a healthy setup and for each kind of problem.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runCheck } from '../../src/cli/check.ts';
import { startDns } from '../helpers/dns.ts';
import { generateSelfSigned } from '../../src/net/tls.ts';
import { AdminServer } from '../../src/runtime/admin.ts';

let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-check-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

async function check(yaml: string, o: Parameters<typeof runCheck>[2] = {}): Promise<{ code: number; lines: string[] }> {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  const lines: string[] = [];
  const code = await runCheck(file, { out: (l) => lines.push(...l.split('\n')) }, o);
  return { code, lines };
}

async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}
async function freePort(): Promise<number> {
  const { server, port } = await occupy();
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

test('a healthy setup passes, with the self-signed certificate as the only warning', async () => {
  const a = await generateSelfSigned('example.org');
  await writeFile(join(dir, 'ok.crt'), a.cert);
  await writeFile(join(dir, 'ok.key'), a.key);
  const [p1, p2] = [await freePort(), await freePort()];
  const { code, lines } = await check([
    'hosts: [example.org]',
    'data_dir: ./fresh-data',
    `listen: { address: 127.0.0.1, c2s: ${p1}, c2s_direct_tls: ${p2}, s2s: false, http: false, https: false, component: false }`,
    'tls: { example.org: { cert: ok.crt, key: ok.key } }',
  ].join('\n'));
  assert.is(code, 0, lines.join('\n'));
  assert.ok(lines.includes('ok    node: not running'));
  assert.ok(lines.some((l) => /^ok    tls example\.org: .*ok\.crt, expires \d{4}-\d\d-\d\d, names example\.org$/.test(l)), lines.join('\n'));
  assert.ok(lines.includes('warn  tls example.org: self-signed: clients will warn unless the certificate is pinned or trusted by hand'));
  assert.ok(lines.includes(`ok    listen.c2s 127.0.0.1:${p1}: free`));
  assert.ok(lines.includes(`ok    listen.c2s_direct_tls 127.0.0.1:${p2}: free`));
  assert.ok(lines.includes(`ok    data_dir ${join(dir, 'fresh-data')}: does not exist yet; will be created (mode 700)`));
  assert.is(lines.at(-1), 'check: 0 problems, 1 warning');
});

test('admins: what they may do from their clients, or that the module for it is off', async () => {
  const base = ['hosts: [example.org]', 'data_dir: ./admin-data', 'admins: [boss@example.org]', 'listen: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }'];
  const on = await check(base.join('\n'));
  assert.ok(on.lines.some((l) => l.startsWith("ok    admins: boss@example.org may run the server's admin commands from their clients (XEP-0133")), on.lines.join('\n'));
  const off = await check([...base, 'modules: { disabled: [admin_adhoc] }'].join('\n'));
  assert.ok(off.lines.includes('warn  admins: boss@example.org get no admin commands in their clients: module admin_adhoc is not enabled'), off.lines.join('\n'));
});

test('each problem is a FAIL line with advice, and the exit code is 1', async () => {
  const a = await generateSelfSigned('example.org');
  const b = await generateSelfSigned('example.org');
  await writeFile(join(dir, 'mix.crt'), a.cert);
  await writeFile(join(dir, 'mix.key'), b.key);
  await mkdir(join(dir, 'open-data'), { mode: 0o755 });
  await chmod(join(dir, 'open-data'), 0o755);
  const busy = await occupy();
  try {
    const { code, lines } = await check([
      'hosts: [example.org, other.org]',
      'data_dir: ./open-data',
      'c2s_require_encryption: false',
      `listen: { address: 127.0.0.1, c2s: ${busy.port}, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }`,
      'tls: { example.org: { cert: mix.crt, key: mix.key } }',
    ].join('\n'));
    assert.is(code, 1);
    const text = lines.join('\n');
    assert.match(text, `FAIL  tls example.org: ${join(dir, 'mix.key')} is not the private key of ${join(dir, 'mix.crt')}\n      → cert and key come from different issuances`);
    assert.match(text, 'warn  tls other.org: no certificate configured; a self-signed one will be generated at first start\n      → for clients to trust it, get one (e.g. certbot certonly -d other.org) and run chorus cert import (or set tls.other.org.cert/.key)');
    // The holder is named (here: this test's own process), never guessed (#17.2).
    assert.match(text, new RegExp(`FAIL  listen\\.c2s 127\\.0\\.0\\.1:${busy.port}: in use by \\S*node[^\\n]* \\(pid ${process.pid}\\)\\n      → stop it, or choose another port in listen\\.c2s`));
    assert.match(text, `warn  data_dir ${join(dir, 'open-data')}: too open (mode 755): other users can read password verifiers, keys and offline messages; chorus start will change it to 700\n      → chmod 700 ${join(dir, 'open-data')}`);
    assert.match(text, 'warn  c2s_require_encryption is false');
    assert.is(lines.at(-1), 'check: 2 problems, 4 warnings');
  } finally {
    await close(busy.server);
  }
});

test('a too-open data_dir and the open files under it are reported, the list capped', async () => {
  const data = join(dir, 'leaky-data');
  await mkdir(join(data, 'certs'), { recursive: true });
  await mkdir(join(data, 'old', 'deep'), { recursive: true });
  await chmod(data, 0o755);
  await chmod(join(data, 'certs'), 0o700);
  await chmod(join(data, 'old'), 0o755);
  await chmod(join(data, 'old', 'deep'), 0o711);
  for (const [file, mode] of [['certs/example.org.crt', 0o644], ['certs/example.org.key', 0o640], ['old/a', 0o604], ['old/b', 0o600],
    ['old/deep/c', 0o644], ['old/deep/d', 0o660], ['secret', 0o600]] as const) {
    await writeFile(join(data, file), 'x');
    await chmod(join(data, file), mode);
  }
  const { code, lines } = await check(`data_dir: ${data}\nlisten: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
  const text = lines.join('\n');
  assert.match(text, `warn  data_dir ${data}: too open (mode 755): other users can read password verifiers, keys and offline messages; chorus start will change it to 700\n      → chmod 700 ${data}`);
  assert.match(text, `warn  data_dir ${data}: 7 entries under it open to other users: certs/example.org.crt (644), certs/example.org.key (640), ` +
    `old (755), old/a (604), old/deep (711), and 2 more\n      → chmod -R go-rwx ${data}`);
  assert.not.match(text, /old\/b|secret/);
  assert.is(code, 0, text); // warnings: chorus start fixes the directory itself, and it then guards the files
});

test('a private data_dir with private files is ok, with its mode', async () => {
  const data = join(dir, 'tight-data');
  await mkdir(join(data, 'db'), { recursive: true, mode: 0o700 });
  await chmod(data, 0o700);
  await chmod(join(data, 'db'), 0o700);
  await writeFile(join(data, 'secret'), 'x', { mode: 0o600 });
  await chmod(join(data, 'secret'), 0o600);
  const { lines } = await check(`data_dir: ${data}\nlisten: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
  assert.ok(lines.includes(`ok    data_dir ${data}: writable, private (mode 700)`), lines.join('\n'));
  assert.ok(lines.includes(`ok    data_dir ${data}: everything under it is private`), lines.join('\n'));
});

test('a port held by another program while a node runs is named as that program; one held by the node is fine (#17.2)', async () => {
  // Another program (a Prosody, say; here this test process) holds the port while the node answers.
  const data = join(dir, 'running-data');
  await mkdir(data, { mode: 0o700 });
  const admin = new AdminServer(join(data, 'admin.sock'), new Map());
  await admin.listen();
  const busy = await occupy();
  try {
    const { code, lines } = await check(
      `data_dir: ${data}\nlisten: { address: 127.0.0.1, c2s: ${busy.port}, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
    assert.ok(lines.includes(`ok    node: running (admin socket ${join(data, 'admin.sock')} answers)`), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith(`FAIL  listen.c2s 127.0.0.1:${busy.port}: in use by `) && l.endsWith(`(pid ${process.pid})`)), lines.join('\n'));
    assert.is(code, 1);
  } finally {
    await close(busy.server);
    await admin.close();
  }
  // A real node on its own port.
  const nodeDir = join(dir, 'node');
  await mkdir(nodeDir, { mode: 0o700 });
  const port = await freePort();
  const config = join(nodeDir, 'chorus.yaml');
  await writeFile(config, `hosts: [localhost]\ndata_dir: ./data\nlisten: { address: 127.0.0.1, c2s: ${port}, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
  const node = spawn(process.execPath, [fileURLToPath(new URL('../../bin/chorus.js', import.meta.url)), 'start', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    let log = '';
    await new Promise<void>((resolve, reject) => {
      node.stderr!.on('data', (d) => { log += d; if (log.includes('chorus: serving')) resolve(); });
      node.once('exit', () => reject(new Error(`chorus start exited:\n${log}`)));
    });
    const lines: string[] = [];
    await runCheck(config, { out: (l) => lines.push(...l.split('\n')) });
    assert.ok(lines.includes(`ok    listen.c2s 127.0.0.1:${port}: in use by the running node (pid ${node.pid})`), lines.join('\n'));
    // The running node's TLS graded: its generated certificate is trusted by no one, the rest is A's.
    assert.ok(lines.some((l) => l.startsWith(`warn  tls localhost on listen.c2s ${port}: grade T (TLSv1.3, `) && l.endsWith(': certificate not trusted: self-signed certificate')), lines.join('\n'));
  } finally {
    node.kill('SIGTERM');
    await once(node, 'exit');
  }
});

test('--dns: SRV records against the listeners, each target\'s address, the fallback to the domain itself', async () => {
  // a.test: SRV for clients (STARTTLS on the right port, Direct TLS on a wrong one), none for servers
  // but an address; b.test: nothing at all.
  const dns = await startDns({
    '_xmpp-client._tcp.a.test': [{ priority: 0, weight: 5, port: 5222, target: 'xmpp.a.test' }],
    '_xmpps-client._tcp.a.test': [{ priority: 0, weight: 5, port: 443, target: 'xmpp.a.test' }],
  }, { 'xmpp.a.test': ['127.0.0.1'], 'a.test': ['192.0.2.7'] });
  try {
    const { code, lines } = await check(`hosts: [a.test, b.test]\ndata_dir: ${join(dir, 'dns-data')}\nlisten: { address: 127.0.0.1, c2s: 5222, c2s_direct_tls: 5223, s2s: 5269, http: false, https: false, component: false }\n`,
      { dns: true, dnsServers: [`127.0.0.1:${dns.port}`] });
    const text = lines.join('\n');
    assert.ok(lines.includes('ok    dns _xmpp-client._tcp.a.test → xmpp.a.test:5222 (127.0.0.1: this machine)'), text);
    assert.ok(lines.includes('warn  dns _xmpps-client._tcp.a.test → xmpp.a.test:443: this node listens on 5223'), text);
    assert.ok(lines.includes('ok    dns a.test: no SRV record for servers; they use a.test:5269 (192.0.2.7: not this machine (fine behind NAT or a proxy))'), text);
    assert.ok(lines.includes('FAIL  dns b.test: no SRV record for clients and no address: they cannot find this server'), text);
    assert.is(code, 1);
  } finally {
    dns.close();
  }
});

test('a data_dir too long for the admin socket is a problem', async () => {
  const data = join(dir, 'x'.repeat(110 - dir.length));
  await mkdir(data, { mode: 0o700 });
  const { code, lines } = await check(`data_dir: ${data}\nlisten: { address: 127.0.0.1, c2s: false, c2s_direct_tls: false, s2s: false, http: false, https: false, component: false }\n`);
  assert.is(code, 1);
  const sock = join(data, 'admin.sock');
  assert.ok(lines.includes(`FAIL  admin socket path ${sock} is ${sock.length} bytes; unix sockets allow about 103`), lines.join('\n'));
});

test('a broken config is reported problem by problem before anything else', async () => {
  const { code, lines } = await check('listen: { c2s: 0 }\ntls: { example.org: { cert: /nope.pem, key: /nope.key } }\n');
  assert.is(code, 1);
  assert.equal(lines, [
    'FAIL  config: listen.c2s: expected a port number 1-65535, got 0 (line 1)',
    'FAIL  config: tls.example.org: not one of hosts (localhost) nor a subdomain of one (line 2)',
    'FAIL  config: tls.example.org.cert: cannot read "/nope.pem": no such file (line 2)',
    'FAIL  config: tls.example.org.key: cannot read "/nope.key": no such file (line 2)',
    '',
    'check: the config has 4 problems; fix them first',
  ]);
});

test('check agrees with start: a listener start does not open is said so; a database another process holds fails (#30.8)', async () => {
  const [p1, p2, p3, p4] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const data = join(dir, 'held-data');
  const yaml = ['hosts: [example.org]', `data_dir: ${data}`, `listen: { address: 127.0.0.1, c2s: ${p1}, c2s_direct_tls: ${p2}, s2s: false, http: ${p3}, https: false, component: ${p4} }`].join('\n');
  const first = await check(yaml);
  assert.ok(first.lines.includes(`ok    listen.http 127.0.0.1:${p3}: free`), first.lines.join('\n'));
  assert.ok(first.lines.includes(`ok    listen.component 127.0.0.1:${p4}: not opened (no components configured)`), first.lines.join('\n'));
  // another process holds the database, as a node starting, or one run as another user, would
  const { openDb } = await import('../../src/storage/db.ts');
  await (await openDb(data)).close();
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const holder = spawn(process.execPath, ['--input-type=module', '-e',
    `import { Level } from 'level'; const db = new Level(${JSON.stringify(join(data, 'db'))}); await db.open(); ` +
    `process.stdout.write('held\\n'); process.stdin.on('data', () => {}); process.stdin.on('end', () => db.close().then(() => process.exit(0)));`],
  { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => { holder.stdout!.on('data', (d) => { if (String(d).includes('held')) resolve(); }); holder.once('exit', (c) => reject(new Error(`holder exited ${c}`))); });
    const { code, lines } = await check(yaml);
    assert.is(code, 1, lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith(`FAIL  node: not answering on ${join(data, 'admin.sock')}, but another process holds the database ${join(data, 'db')}: chorus start would refuse`)), lines.join('\n'));
    assert.not.ok(lines.includes('ok    node: not running'));
  } finally {
    holder.stdin!.end();
    await once(holder, 'exit');
  }
});

test.run();
