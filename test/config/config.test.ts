import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, defaultConfig, loadConfig, parseConfig, type ChorusConfig } from '../../src/config/index.ts';

let dir = '';
test.before(async () => { dir = await mkdtemp(join(tmpdir(), 'chorus-config-')); });
test.after(async () => { await rm(dir, { recursive: true, force: true }); });

async function write(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

async function problems(text: string): Promise<string[]> {
  const file = await write(`c${Math.random().toString(36).slice(2)}.yaml`, text);
  try {
    await loadConfig(file);
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message.split('\n');
  }
  throw new Error('expected a ConfigError');
}

test('no file: defaults, data_dir relative to the cwd, listening on loopback only', async () => {
  const c = await loadConfig();
  assert.equal(c.source, null);
  assert.equal(c.hosts, ['localhost']);
  assert.equal(c.data_dir, resolve(process.cwd(), 'data'));
  assert.equal(c.listen, { address: '127.0.0.1', c2s: 5222, c2s_direct_tls: 5223, s2s: 5269, s2s_direct_tls: 5270, http: 5280, https: 5281, component: 5347 });
  assert.is(c.c2s_require_encryption, true);
  assert.is(c.schedulers, availableParallelism());
  assert.is(c.limits.max_stanza_bytes, 262144);
  assert.is(c.limits.sessions_per_account, 10);
  assert.is(c.limits.auth_timeout_seconds, 30);
  assert.is(c.stream_management.resume_timeout_seconds, 300);
  assert.equal(c.modules, { enabled: null, disabled: [], options: {}, paths: [] });
  assert.is(c.log_level, 'info');
});

test('an empty file is all defaults, anchored at the file\'s directory', async () => {
  const file = await write('empty.yaml', '# nothing here\n');
  const c = await loadConfig(file);
  assert.equal(c.source, file);
  assert.equal(c.data_dir, join(dir, 'data'));
  assert.equal({ ...c, source: null, data_dir: '' }, { ...defaultConfig(), data_dir: '' });
});

test('partial sections merge with defaults; relative paths resolve against the file', async () => {
  await mkdir(join(dir, 'sub'), { recursive: true });
  const file = await write('sub/partial.yaml', [
    'hosts: [Example.ORG, chat.example.net]',
    'data_dir: ../state',
    'listen: { address: 127.0.0.1, c2s: 15222, s2s: false }',
    'limits: { login_attempts: { max_failures: 3 } }',
    'modules: { disabled: [version], options: { offline: { max_messages: 10 } } }',
  ].join('\n'));
  const c = await loadConfig(file);
  assert.equal(c.hosts, ['example.org', 'chat.example.net']);
  assert.is(c.data_dir, join(dir, 'state'));
  assert.equal(c.listen, { address: '127.0.0.1', c2s: 15222, c2s_direct_tls: 5223, s2s: false, s2s_direct_tls: false, http: 5280, https: 5281, component: 5347 }, 'no federation: no Direct TLS for servers either');
  assert.equal(c.limits.login_attempts, { max_failures: 3, window_seconds: 60, address_max_failures: 30, address_window_seconds: 180 });
  assert.equal(c.modules.options, { offline: { max_messages: 10 } });
});

test('bad types: every problem listed at once, naming the key, the expectation and the value', async () => {
  const lines = await problems([
    'listen:',
    '  c2s: abc',
    '  http: 70000',
    'c2s_require_encryption: "yes"',
    'schedulers: 0',
    'log_level: loud',
    'hosts: example.org',
  ].join('\n'));
  assert.equal(lines, [
    'config error: listen.c2s: expected a port number 1-65535, got "abc" (line 2)',
    'config error: listen.http: expected a port number 1-65535, got 70000 (line 3)',
    'config error: c2s_require_encryption: expected true or false, got "yes" (line 4)',
    'config error: schedulers: expected a number of worker threads 1-1024, got 0 (line 5)',
    'config error: log_level: expected one of error, warn, info, debug, trace, got "loud" (line 6)',
    'config error: hosts: expected a list of domains, got "example.org" (line 7)',
  ]);
});

test('listen.address must be an IP address; data_dir expands ~/', async () => {
  assert.equal(await problems('listen: { address: "0.0.0.0:5222" }\n'), [
    'config error: listen.address: expected an IP address such as "::" or "127.0.0.1", got "0.0.0.0:5222" (line 1)',
  ]);
  const c = await loadConfig(await write('home.yaml', 'data_dir: ~/chorus-data\nlisten: { address: "::1" }\n'));
  assert.is(c.data_dir, join(homedir(), 'chorus-data'));
  assert.is(c.listen.address, '::1');
});

test('unknown keys are reported, with a suggestion when one is close', async () => {
  const lines = await problems([
    'listen:',
    '  c2ss: 5222',
    'stream_managment: {}',
    'colour: blue',
    'limits: { max_stanza_byte: 20000 }',
  ].join('\n'));
  assert.equal(lines, [
    'config error: listen.c2ss: unknown key; did you mean "c2s"? (line 2)',
    'config error: stream_managment: unknown key; did you mean "stream_management"? (line 3)',
    'config error: colour: unknown key (expected one of: hosts, admins, data_dir, listen, tls, components, s2s, c2s_require_encryption, c2s_sasl2, c2s_fast_token_days, schedulers, limits, stream_management, storage, metrics, observer, modules, log_level, log_file) (line 4)',
    'config error: limits.max_stanza_byte: unknown key; did you mean "max_stanza_bytes"? (line 5)',
  ]);
});

test('hosts, admins, ports and modules are cross-checked', async () => {
  const lines = await problems([
    'hosts: [example.org, "bad host", EXAMPLE.org]',
    'admins: [admin@example.org, nobody, a@b/c]',
    'listen: { c2s: 5269 }',
    'modules: { enabled: [roster], disabled: [roster] }',
  ].join('\n'));
  assert.equal(lines, [
    'config error: hosts[1]: expected a domain name (domainpart: character not allowed in a domain name), got "bad host" (line 1)',
    'config error: hosts[2]: "example.org" is already listed at hosts[0] (line 1)',
    'config error: admins[1]: expected a bare JID like admin@example.org (missing "@"), got "nobody" (line 2)',
    'config error: admins[2]: expected a bare JID like admin@example.org (a bare JID has no "/resource"), got "a@b/c" (line 2)',
    'config error: listen.s2s: port 5269 is also used by listen.c2s (line 3)',
    'config error: modules.disabled[0]: "roster" is also in modules.enabled; list it in one of them only (line 4)',
  ]);
});

test('tls: missing certificate files, missing keys and unknown hosts are named', async () => {
  const cert = await write('real.pem', 'not checked here');
  const lines = await problems([
    'hosts: [example.org]',
    'tls:',
    '  example.org:',
    '    cert: ./real.pem',
    '    key: /nonexistent/privkey.pem',
    '  other.net:',
    '    cert: ./real.pem',
  ].join('\n'));
  assert.equal(lines, [
    'config error: tls.example.org.key: cannot read "/nonexistent/privkey.pem": no such file (line 5)',
    'config error: tls.other.net: not one of hosts (example.org) nor a subdomain of one (line 6)',
    'config error: tls.other.net.key: missing; expected the path of the PEM private key (e.g. privkey.pem) (line 6)',
  ]);
  // Relative cert paths resolve against the config file's directory.
  const file = await write('tlsok.yaml', `hosts: [example.org]\ntls: { muc.example.org: { cert: real.pem, key: ${cert} } }\n`);
  const c = await loadConfig(file);
  assert.equal(c.tls, { 'muc.example.org': { cert, key: cert } });
});

test('invalid YAML and unreadable files are reported with a location', async () => {
  const lines = await problems('hosts: [a\nlisten: {\n');
  assert.ok(lines.length >= 1);
  assert.match(lines[0]!, /^config error: .*\.yaml:\d+:\d+: invalid YAML: /);
  const dup = await problems('log_level: info\nlog_level: debug\n');
  assert.match(dup[0]!, /^config error: .*\.yaml:2:1: invalid YAML: .*[Mm]ap keys must be unique/);
  try {
    await loadConfig(join(dir, 'missing.yaml'));
    assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, `config error: ${join(dir, 'missing.yaml')}: cannot read: no such file`);
  }
});

test('chorus.example.yaml is valid and documents every key', async () => {
  const text = await readFile(new URL('../../chorus.example.yaml', import.meta.url), 'utf8');
  const c = parseConfig(text, { baseDir: '/srv/chorus', checkFiles: false });
  assert.equal(c.tls['example.org'], {
    cert: '/etc/letsencrypt/live/example.org/fullchain.pem',
    key: '/etc/letsencrypt/live/example.org/privkey.pem',
  });
  const keys = new Set<string>();
  (function walk(o: object): void {
    for (const [k, v] of Object.entries(o)) {
      keys.add(k);
      if (v && typeof v === 'object' && !Array.isArray(v) && k !== 'tls' && k !== 'options') walk(v);
    }
  })(defaultConfig() as ChorusConfig);
  keys.delete('source');
  for (const k of keys) assert.match(text, new RegExp(`^\\s*${k}:`, 'm'), `chorus.example.yaml does not show "${k}"`);
});

test('storage.sync: off by default, a boolean, anything else named', async () => {
  assert.is(defaultConfig('/tmp/x').storage.sync, false);
  const lines = await problems('storage: { sync: sometimes }');
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /storage\.sync/);
});

test('components (XEP-0114): a domain of its own and a secret of 8 characters or more, each problem named', async () => {
  const found = await problems([
    'hosts: [example.org]',
    'components:',
    '  example.org: { secret: "long enough secret" }',
    '  irc.example.org: { secret: short }',
    '  bots.example.org: { secret: "long enough secret", port: 1 }',
  ].join('\n'));
  assert.ok(found.some((p) => p.includes('components.example.org: example.org is a host of accounts')), found.join('\n'));
  assert.ok(found.some((p) => p.includes('components.irc.example.org.secret') && p.includes('at least 8 characters')), found.join('\n'));
  assert.ok(found.some((p) => p.includes('components.bots.example.org.port: unknown key')), found.join('\n'));
});

test('s2s (federation): static hosts as host:port or tls://host:port, timeouts, secure_auth, a CA file, a read rate; each problem named', async () => {
  const c = parseConfig([
    's2s:',
    '  hosts: { other.example: "192.0.2.10:5269", v6.example: "[2001:db8::1]:5270", tls.example: "tls://192.0.2.11:5270" }',
    '  secure_auth: true',
    '  bytes_per_second: false',
  ].join('\n'), { baseDir: '/srv/chorus', checkFiles: false });
  assert.equal(c.s2s.hosts, {
    'other.example': { host: '192.0.2.10', port: 5269, directTls: false }, 'v6.example': { host: '2001:db8::1', port: 5270, directTls: false },
    'tls.example': { host: '192.0.2.11', port: 5270, directTls: true },
  });
  assert.is(c.s2s.secure_auth, true);
  assert.is(c.s2s.bytes_per_second, false);
  assert.is(defaultConfig('/tmp/x').s2s.bytes_per_second, 1_048_576);
  const found = await problems([
    's2s:',
    '  hosts: { other.example: "192.0.2.10", "bad domain!": "192.0.2.1:5269" }',
    '  connect_timeout_seconds: 0',
    '  ca_file: /nonexistent/ca.pem',
    '  bytes_per_second: lots',
    'listen: { s2s: false, s2s_direct_tls: 5270 }',
  ].join('\n'));
  for (const key of ['s2s.hosts.other.example', 's2s.hosts.bad domain!', 's2s.connect_timeout_seconds', 's2s.ca_file', 's2s.bytes_per_second', 'listen.s2s_direct_tls: needs federation on']) {
    assert.ok(found.some((p) => p.includes(key)), `${key} named in:\n${found.join('\n')}`);
  }
});

test.run();
