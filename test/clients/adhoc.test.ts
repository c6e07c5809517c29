// Server administration (XEP-0133) from a real client library: slixmpp's xep_0050 plugin over
// STARTTLS on real sockets, against a node whose config names an admin (adhoc_slixmpp.py says what
// each step shows). Debian's python3-slixmpp, which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./adhoc_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => {
  server = await startServer((c) => { c.admins = ['admin@localhost']; });
  for (const u of ['admin', 'bob']) await server.addUser(u, 'pw');
});
test.after(async () => { await server.stop(); });

test('slixmpp: an admin adds, re-passwords and deletes an account, lists who is online and announces; others may not', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  // XEP-0133's, and XEP-0401's invitations (the invites module).
  assert.equal(out.admin_commands, ['add-user', 'announce', 'change-user-password', 'delete-user', 'get-online-users-list', 'get-online-users-num', 'get-registered-users-num', 'urn:xmpp:invite#create-account', 'urn:xmpp:invite#invite', 'user-stats']);
  assert.equal(out.bob_commands, ['urn:xmpp:invite#invite'], 'an account may invite a contact, nothing more');
  assert.is(out.bob_refused, 'forbidden');
  assert.equal(out.add, ['info', 'carol@localhost is added']);
  assert.is(out.carol_logs_in, true);
  assert.is((out.add_again as string[])[0], 'error');
  assert.match((out.add_again as string[])[1]!, /exists/);
  assert.is(out.carol_new_password, true);
  assert.is(out.carol_old_password, false);
  assert.equal(out.online, ['admin@localhost', 'bob@localhost']);
  assert.is(out.registered, '3');
  assert.equal(out.announce, ['info', 'sent to 2 sessions']);
  assert.equal(out.bob_got, ['localhost', 'Maintenance', 'Back at noon']);
  assert.equal(out.delete, ['info', 'deleted: carol@localhost']);
  assert.is(out.carol_after_delete, false);
});

test.run();
