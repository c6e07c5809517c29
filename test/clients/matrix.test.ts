// The client matrix (#15): Debian's client libraries, each with its default settings (only the
// self-signed test certificate accepted, the way that library lets an application do it), log in to
// Chorus over STARTTLS and Direct TLS, fetch the roster, send presence and exchange a message with a
// second client — and the same against Debian's Prosody in the same run, so a difference between
// the two is a failing row here rather than a surprise for a user. The table in
// docs/client-matrix.md is written by this run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { anchorScript } from '../../bench/lib/anchors.ts';
import { client, xml, type Element } from '@xmpp/client';
import { freePort, startServer, type TestServer } from '../helpers/xmpp.ts';
import { run } from '../helpers/process.ts';
import { login, type TestClient } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate
const PYTHON = '/usr/bin/python3'; // Debian's, where apt puts the libraries (not a pyenv shim)
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const MATRIX = here('../../docs/client-matrix.md');
const PASSWORD = 'pw';

type Mode = 'starttls' | 'direct';
interface Outcome { login: boolean; mechanism: string | null; roster: boolean | null; message_in: boolean; error: string | null; resumed?: boolean; while_away?: boolean }
interface Server {
  name: string; port: number; tlsPort: number; stop(): Promise<void>;
  mechanismOf?(user: string): string | null;
  /** The mechanisms (and binding types) refused on the stream before the user's login. */
  refusedBefore?(user: string): string[];
}
interface Client {
  name: string;
  /** Installed version, or why it is missing. */
  version: { ok: true; v: string } | { ok: false; why: string };
  modes: Mode[];
  /** Logs in as `user`, says hello to `peer`, and reports what it saw. */
  run(server: Server, mode: Mode, user: string, peer: string): Promise<Outcome>;
  /** The same through `cut`'s proxy, which is cut once the hello is answered; `away` then sends a
   *  message to the client's full JID, which must reach it on the resumed stream (XEP-0198). Only
   *  for libraries that resume by default (or, as nbxmpp, when the application reconnects). */
  resume?(cut: Cut, user: string, peer: string, away: (to: string) => Promise<void>): Promise<Outcome>;
}

/** A TCP proxy to a server port whose connections the test can cut (a network drop). */
interface Cut { port: number; cut(): void; close(): Promise<void> }
async function cuttable(target: number): Promise<Cut> {
  const open = new Set<Socket>();
  const server = createServer((down) => {
    const up = connect(target, '127.0.0.1');
    for (const [a, b] of [[down, up], [up, down]] as const) {
      open.add(a);
      a.on('error', () => undefined);
      a.on('close', () => { open.delete(a); b.destroy(); });
      a.pipe(b);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = () => { for (const s of open) s.destroy(); };
  return { port: (server.address() as AddressInfo).port, cut, close: () => new Promise((r) => { cut(); server.close(() => r()); }) };
}

function pyVersion(module: string): Client['version'] {
  const r = spawnSync(PYTHON, ['-c', `import ${module}; print(${module}.__version__)`], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true, v: r.stdout.trim() } : { ok: false, why: `python3-${module} is not installed for ${PYTHON} (.ci/run installs it)` };
}


/** A Python script of test/clients with the contract JID PASSWORD HOST PORT MODE PEER [resume] →
 *  one JSON line (and, resuming, a {"phase": "cut-me"} line before it). */
function pythonClient(name: string, module: string, script: string, resumes = false): Client {
  return {
    name, version: pyVersion(module), modes: ['starttls', 'direct'],
    ...(resumes ? {
      async resume(cut: Cut, user: string, peer: string, away: (to: string) => Promise<void>): Promise<Outcome> {
        const full = `${user}@localhost/${module}-resume`;
        const child = spawn(PYTHON, [here(script), full, PASSWORD, '127.0.0.1', String(cut.port), 'starttls', peer, 'resume'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '', err = '', cutDone = false;
        child.stderr.on('data', (d) => (err += d));
        child.stdout.on('data', (d) => {
          out += d;
          if (!cutDone && out.includes('"phase": "cut-me"')) { cutDone = true; cut.cut(); void away(full); }
        });
        const code = await new Promise<number | null>((r) => child.on('close', r));
        const line = out.trim().split('\n').pop() ?? '';
        assert.ok(line.startsWith('{') && !line.includes('"phase"'), `${name} (exit ${code}) printed no result: ${out}\n${err.slice(-1500)}`);
        return JSON.parse(line) as Outcome;
      },
    } : {}),
    async run(server, mode, user, peer) {
      const port = mode === 'direct' ? server.tlsPort : server.port;
      const r = await run(PYTHON, [here(script), `${user}@localhost/${module}-${mode}`, PASSWORD, '127.0.0.1', String(port), mode, peer]);
      const line = r.out.trim().split('\n').pop() ?? '';
      assert.ok(line.startsWith('{'), `${name} (exit ${r.code}) printed no result: ${r.out}\n${r.err.slice(-1500)}`);
      return JSON.parse(line) as Outcome;
    },
  };
}

/** go-sendxmpp sends one message and exits; its listen mode (a second session) takes the answer. */
const goSendxmpp: Client = {
  name: 'go-sendxmpp',
  version: (() => {
    const r = spawnSync('go-sendxmpp', ['--version'], { encoding: 'utf8' });
    return r.status === 0 ? { ok: true as const, v: r.stdout.split('\n')[0]!.replace(/^go-sendxmpp\s*/, '') } : { ok: false as const, why: 'go-sendxmpp is not installed (.ci/run installs it)' };
  })(),
  modes: ['starttls', 'direct'],
  async run(server, mode, user, peer) {
    const port = mode === 'direct' ? server.tlsPort : server.port;
    const common = ['-u', `${user}@localhost`, '-p', PASSWORD, '-j', `127.0.0.1:${port}`, '-n', ...(mode === 'direct' ? ['-t'] : [])];
    const listener = spawn('go-sendxmpp', [...common, '-d', '-l'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let heard = '';
    // Its debug transcript (what it receives) shows when it is bound, and then the answer.
    const seen = (re: RegExp) => new Promise<boolean>((resolve) => {
      const check = () => { if (re.test(heard)) { clearTimeout(t); resolve(true); } };
      const t = setTimeout(() => resolve(false), 30_000);
      for (const out of [listener.stdout, listener.stderr]) out.on('data', (d) => { heard += d; check(); });
      listener.on('close', () => { clearTimeout(t); resolve(re.test(heard)); });
      check();
    });
    if (!(await seen(/<jid>[^<]+<\/jid><\/bind>/))) return { login: false, mechanism: null, roster: null, message_in: false, error: `its listener never bound: ${heard.slice(-300)}` };
    const answered = seen(/: hello back/);
    const sent = await run('go-sendxmpp', ['-d', ...common, peer], { input: 'hello from go-sendxmpp\n' });
    const message_in = await answered;
    listener.kill();
    // Its debug transcript shows what it received: a SASL challenge means SCRAM, none means PLAIN.
    const transcript = sent.out + sent.err;
    const mechanism = server.mechanismOf?.(user) ?? (transcript.includes('<success') ? (/<challenge/.test(transcript) ? 'SCRAM-*' : 'PLAIN') : null);
    return { login: sent.code === 0 && transcript.includes('<success'), mechanism, roster: null, message_in, error: sent.code === 0 ? null : transcript.trim().slice(-300) };
  },
};

/** xmpp.js, in this process: the mechanism is the one its <auth/> names. */
/** An xmpp.js client over `service`; with `cut`, the drop-and-resume run. */
async function xmppJsRun(service: string, user: string, resource: string, peer: string, drop?: { cut: Cut; away: (to: string) => Promise<void> }): Promise<Outcome> {
  const out: Outcome = { login: false, mechanism: null, roster: false, message_in: false, error: null, ...(drop ? { resumed: false, while_away: false } : {}) };
  const c = client({ service, domain: 'localhost', username: user, password: PASSWORD, resource });
  c.on('error', (e: Error) => { if (!drop || out.resumed) out.error ??= e.message; });
  c.on('send', (el: Element) => { if (el.is('auth') || el.is('authenticate')) out.mechanism = el.attrs.mechanism ?? null; });
  const heard = (body: string) => new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 30_000);
    c.on('stanza', (s: Element) => { if (s.is('message') && s.getChildText('body') === body) { clearTimeout(t); resolve(true); } });
  });
  const back = heard('hello back');
  try {
    await c.start();
    out.login = true;
    out.roster = !!(await c.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })), 10_000)).getChild('query');
    await c.send(xml('presence'));
    await c.send(xml('message', { to: peer, type: 'chat' }, xml('body', {}, 'hello from @xmpp/client')));
    out.message_in = await back;
    if (drop) {
      const resumed = new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 30_000);
        (c.streamManagement as unknown as { on(e: 'resumed', f: () => void): void }).on('resumed', () => { clearTimeout(t); resolve(true); });
      });
      const away = heard('while away');
      drop.cut.cut();
      await drop.away(c.jid!.toString());
      out.resumed = await resumed;
      out.while_away = await away;
    }
  } catch (e) {
    out.error ??= (e as Error).message;
  } finally {
    await c.stop().catch(() => undefined);
  }
  return out;
}

const xmppJs: Client = {
  name: '@xmpp/client',
  version: { ok: true, v: (await import('@xmpp/client/package.json', { with: { type: 'json' } })).default.version },
  modes: ['starttls', 'direct'],
  run: (server, mode, user, peer) => xmppJsRun(mode === 'direct' ? `xmpps://127.0.0.1:${server.tlsPort}` : `xmpp://127.0.0.1:${server.port}`, user, `xmppjs-${mode}`, peer),
  resume: (cut, user, peer, away) => xmppJsRun(`xmpp://127.0.0.1:${cut.port}`, user, 'xmppjs-resume', peer, { cut, away }),
};

const ALL: Client[] = [
  pythonClient('slixmpp', 'slixmpp', './slixmpp_client.py'),
  pythonClient('aioxmpp', 'aioxmpp', './aioxmpp_client.py', true),
  pythonClient('nbxmpp (Gajim)', 'nbxmpp', './nbxmpp_client.py', true),
  goSendxmpp,
  xmppJs,
];
// MATRIX_ONLY=go-sendxmpp runs one row set while working on it.
const CLIENTS = process.env.MATRIX_ONLY ? ALL.filter((c) => c.name.startsWith(process.env.MATRIX_ONLY!)) : ALL;

// ---- the servers ------------------------------------------------------------------------------------

async function chorus(users: string[]): Promise<Server & { node: TestServer }> {
  const node = await startServer();
  for (const u of users) await node.addUser(u, PASSWORD);
  return {
    name: 'Chorus', node, port: node.port, tlsPort: node.tlsPort, stop: () => node.stop(),
    // The node's own login line: what the client really picked, for clients that do not say.
    mechanismOf: (user) => {
      const line = [...node.logs].reverse().find((l) => l.includes(`login: user=${user}@localhost `));
      return line ? /mechanism=(\S+)/.exec(line)![1]! : null;
    },
    // The login lines name the stream's session: the failures logged under it came first.
    refusedBefore: (user) => {
      const line = [...node.logs].reverse().find((l) => l.includes(`login: user=${user}@localhost `));
      const session = line && /(session:\S+): login:/.exec(line)?.[1];
      if (!session) return [];
      return node.logs.filter((l) => l.includes(`${session}: login failed:`)).map((l) => {
        const m = /mechanism=(\S+) condition=(\S+) reason="([^"]*)"/.exec(l);
        return m ? `${m[1]} (${m[3]})` : l;
      });
    },
  };
}

const prosodyVersion = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'prosody'], { encoding: 'utf8' });

async function prosody(users: number): Promise<Server> {
  const state = mkdtempSync(join(tmpdir(), 'chorus-matrix-prosody-'));
  const env = {
    ...process.env, PROSODY_PORT: String(await freePort()), PROSODY_TLS_PORT: String(await freePort()),
    BENCH_DOMAIN: 'localhost', BENCH_STATE: state, PROSODY_REQUIRE_ENCRYPTION: 'true', PROSODY_SCRAM_ITERATIONS: '4096',
  };
  const run = anchorScript('prosody', env);
  await run('start', String(users));
  return {
    name: `Prosody ${prosodyVersion.stdout.trim()}`, port: Number(env.PROSODY_PORT), tlsPort: Number(env.PROSODY_TLS_PORT),
    stop: async () => { await run('stop'); rmSync(state, { recursive: true, force: true }); },
  };
}

// ---- the run ----------------------------------------------------------------------------------------

const rows: string[] = [];
const resumeRows: string[] = [];
const SERVERS = ['chorus', 'prosody'] as const;
// prosody.sh names its accounts u1..uN: u1 is the peer, each client and run has its own account.
const accounts = CLIENTS.length * 3 + 1;
const users = Array.from({ length: accounts }, (_, i) => `u${i + 1}`);

for (const which of SERVERS) {
  let server: Server;
  let peer: TestClient;
  test(`${which}: up, with a peer that answers every hello`, async () => {
    if (which === 'prosody') assert.ok(prosodyVersion.status === 0, 'Debian\'s prosody is not installed (.ci/run installs it)');
    server = which === 'chorus' ? await chorus(users) : await prosody(accounts);
    peer = await login(server.port, 'u1', { password: PASSWORD, presence: true, resource: 'peer' });
    peer.c.on('stanza', (s: Element) => {
      if (s.is('message') && s.getChildText('body')?.startsWith('hello from ') && s.attrs.from) {
        // To the bare JID: go-sendxmpp's sending session has gone by then, its listener is another.
        void peer.c.send(xml('message', { to: s.attrs.from.split('/')[0], type: 'chat' }, xml('body', {}, 'hello back')));
      }
    });
  });

  CLIENTS.forEach((c, i) => {
    for (const mode of c.modes) {
      const user = `u${2 + i * 2 + (mode === 'direct' ? 1 : 0)}`;
      test(`${which}: ${c.name} ${c.version.ok ? c.version.v : '(missing)'} with its defaults over ${mode === 'direct' ? 'Direct TLS' : 'STARTTLS'}`, async () => {
        assert.ok(c.version.ok, c.version.ok ? '' : c.version.why);
        const r = await c.run(server, mode, user, 'u1@localhost/peer');
        const seen = server.mechanismOf?.(user);
        const picked = seen && r.mechanism && seen !== r.mechanism ? `${r.mechanism} (server: ${seen})` : (r.mechanism ?? seen ?? '—');
        const refused = server.refusedBefore?.(user) ?? [];
        const mech = refused.length ? `${picked}, after ${refused.join('; ')}` : picked;
        const yn = (v: boolean | null) => (v === null ? '—' : v ? 'yes' : 'no');
        rows.push(`| ${c.name} ${c.version.ok ? c.version.v : ''} | ${server.name} | ${mode === 'direct' ? 'Direct TLS' : 'STARTTLS'} | ${mech} | ${yn(r.login)} | ${yn(r.roster)} | ${yn(r.message_in)} |`);
        assert.equal({ login: r.login, roster: r.roster !== false, message_in: r.message_in, error: r.error }, { login: true, roster: true, message_in: true, error: null }, JSON.stringify(r));
      });
    }
  });

  CLIENTS.forEach((c, i) => {
    if (!c.resume) return;
    const user = `u${2 + CLIENTS.length * 2 + i}`;
    test(`${which}: ${c.name} resumes its stream (XEP-0198) after the connection is cut, and gets what was sent meanwhile`, async () => {
      assert.ok(c.version.ok, c.version.ok ? '' : c.version.why);
      const cut = await cuttable(server.port);
      try {
        const away = (to: string) => peer.c.send(xml('message', { to, type: 'chat' }, xml('body', {}, 'while away')));
        const r = await c.resume!(cut, user, 'u1@localhost/peer', away);
        const yn = (v: boolean | undefined) => (v ? 'yes' : 'no');
        resumeRows.push(`| ${c.name} ${c.version.ok ? c.version.v : ''} | ${server.name} | ${yn(r.resumed)} | ${yn(r.while_away)} |`);
        assert.equal({ message_in: r.message_in, resumed: r.resumed, while_away: r.while_away, error: r.error }, { message_in: true, resumed: true, while_away: true, error: null }, JSON.stringify(r));
      } finally {
        await cut.close();
      }
    });
  });

  test(`${which}: down`, async () => {
    await peer?.stop();
    await server?.stop();
  });
}

test.after(() => {
  if (rows.length === 0 || process.env.MATRIX_ONLY) return;
  writeFileSync(MATRIX, [
    '# Client matrix', '',
    'Written by `test/clients/matrix.test.ts` on each run: each client library with its default settings',
    '(only the self-signed certificate accepted) against a fresh Chorus node and, in the same run, Debian\'s',
    'Prosody (`bench/anchors/prosody.sh`, encryption required as in Debian\'s config). "SASL" is what the',
    'client names, or the server\'s login line where the client does not say, and on Chorus the attempts its',
    'log shows refused before it on the same stream (none of which counts toward the lock-out); roster "—":',
    'the client has none.', '',
    '| client | server | transport | SASL | login | roster | message both ways |',
    '|---|---|---|---|---|---|---|', ...rows, '',
    '## Stream resumption', '',
    'The same libraries that resume a stream with their defaults (XEP-0198; nbxmpp when the application',
    'connects again, as Gajim does), over STARTTLS through a proxy whose connection the test cuts once the',
    'first message is answered; the peer then writes to the client\'s full JID. slixmpp (no XEP-0198 plugin',
    'by default) and go-sendxmpp (one-shot) have no row.', '',
    '| client | server | stream resumed | message sent meanwhile arrives |',
    '|---|---|---|---|', ...resumeRows, '',
  ].join('\n'));
});

test.run();
