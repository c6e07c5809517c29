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
import { startServer, rawLogin, type RawClient, type TestServer } from '../helpers/xmpp.ts';

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
  peer = await rawLogin(server.tlsPort, 'peer', 'desk', 'secret', { directTls: true }); // the node requires TLS
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
