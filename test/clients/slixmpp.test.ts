// Debian's python3-slixmpp (1.8.3) with its default settings logs in to Chorus over STARTTLS and
// Direct TLS, fetches its roster, sends presence and exchanges a message with a second client (#15).
// Its defaults try SCRAM-*-PLUS with tls-unique (which TLS 1.3 does not have), then SCRAM with the
// gs2 flag 'y': both refusals must leave the right password a way in. The rows go to
// docs/client-matrix.md, written by this run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect } from 'node:tls';
import { once } from 'node:events';
import { startServer, RawClient, OPEN, type TestServer } from '../helpers/xmpp.ts';

const PYTHON = '/usr/bin/python3'; // Debian's, where apt puts python3-slixmpp (not a pyenv shim)
const SCRIPT = fileURLToPath(new URL('./slixmpp_client.py', import.meta.url));
const MATRIX = fileURLToPath(new URL('../../docs/client-matrix.md', import.meta.url));
const version = spawnSync(PYTHON, ['-c', 'import slixmpp; print(slixmpp.__version__)'], { encoding: 'utf8' });
const available = version.status === 0;

interface Outcome { login: boolean; mechanism: string | null; roster: boolean; message_in: boolean; error: string | null }

let server: TestServer;
let peer: RawClient;
const rows: string[] = [];

test.before(async () => {
  server = await startServer();
  await server.addUser('slix');
  await server.addUser('peer');
  peer = await tlsLogin(server.tlsPort, 'peer', 'desk');
});
test.after(async () => {
  peer?.close();
  await server.stop();
  if (rows.length) {
    writeFileSync(MATRIX, [
      '# Client matrix', '',
      'Written by `test/clients/slixmpp.test.ts` on each run: each client with its default settings against a',
      'fresh Chorus node (self-signed certificate accepted, nothing else changed).', '',
      '| client | transport | SASL mechanism chosen | login | roster | message both ways |',
      '|---|---|---|---|---|---|', ...rows, '',
    ].join('\n'));
  }
});

/** The second client: Direct TLS and PLAIN by hand, on a node with its default (TLS required) policy. */
async function tlsLogin(port: number, user: string, resource: string): Promise<RawClient> {
  const t = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] });
  await once(t, 'secureConnect');
  const c = RawClient.wrap(t);
  c.send(OPEN);
  await c.next(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0secret`).toString('base64')}</auth>`);
  await c.next(/<success/);
  c.send(OPEN);
  await c.next(/<\/stream:features>/);
  c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq><presence/>`);
  await c.next(/id="b"/);
  return c;
}

async function run(mode: 'starttls' | 'direct', resource: string): Promise<Outcome> {
  const port = mode === 'direct' ? server.tlsPort : server.port;
  const child = spawn(PYTHON, [SCRIPT, `slix@localhost/${resource}`, 'secret', '127.0.0.1', String(port), mode, 'peer@localhost/desk'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  // The peer answers the client's hello, whichever resource it came from.
  const answer = (async () => {
    await peer.next(new RegExp(`<message[^>]*from="slix@localhost/${resource}"[^>]*>[\\s\\S]*?hello from slixmpp`), 40_000);
    peer.send(`<message to='slix@localhost/${resource}' type='chat'><body>hello back</body></message>`);
  })().catch(() => undefined);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  await answer;
  const line = out.trim().split('\n').pop() ?? '';
  assert.ok(line.startsWith('{'), `slixmpp (exit ${code}) printed no result: ${out}\n${err.slice(-1500)}`);
  return JSON.parse(line) as Outcome;
}

for (const mode of ['starttls', 'direct'] as const) {
  test(`slixmpp ${available ? version.stdout.trim() : '(missing)'} with its defaults, ${mode === 'direct' ? 'Direct TLS (5223)' : 'STARTTLS (5222)'}: login, roster, presence, a message both ways`, async () => {
    assert.ok(available, `python3-slixmpp is not installed for ${PYTHON} (.ci/run installs it): ${version.stderr}`);
    const r = await run(mode, `py-${mode}`);
    rows.push(`| slixmpp ${version.stdout.trim()} | ${mode === 'direct' ? 'Direct TLS' : 'STARTTLS'} | ${r.mechanism ?? '—'} | ${r.login ? 'yes' : 'no'} | ${r.roster ? 'yes' : 'no'} | ${r.message_in ? 'yes' : 'no'} |`);
    assert.equal(r, { ...r, login: true, roster: true, message_in: true, error: null }, JSON.stringify(r));
  });
}

test.run();
