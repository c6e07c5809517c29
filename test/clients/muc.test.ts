// Group chat (XEP-0045) as a real client library uses it: slixmpp's own xep_0045 plugin, three
// accounts over STARTTLS on real sockets (muc_slixmpp.py says what each step shows). Debian's
// python3-slixmpp, which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./muc_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['alice', 'bob', 'carol']) await server.addUser(u, 'pw');
});
test.after(async () => { await server?.stop(); });

test('slixmpp: create and configure a room, join with history, talk, subject, nick conflict, kick, leave', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  const room = 'family@conference.localhost';
  assert.equal(out.created, [110, 170, 201]);
  assert.equal(out.alice_role, ['owner', 'moderator']);
  assert.equal(out.features, ['muc_open', 'muc_persistent', 'muc_public', 'muc_semianonymous', 'muc_unmoderated', 'muc_unsecured']);
  assert.equal(out.name, ['Family']);
  assert.equal(out.bob_sees, ['Alice', 'Bob'], 'the occupants, himself last');
  assert.equal(out.bob_got, [`${room}/Alice`, 'hello']);
  assert.equal(out.alice_got, ['Bob', 'hi alice']);
  assert.is(out.conflict, 'conflict');
  assert.equal(out.carol_history, [['Alice', 'hello', room], ['Bob', 'hi alice', room]]);
  assert.equal(out.subject, ['Alice', 'Dinner at 8']);
  assert.equal(out.kicked, [110, 307]);
  assert.is(out.bob_left, 'bye');
});

test.run();
