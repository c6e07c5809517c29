// Client State Indication (XEP-0352) as a real client library uses it: slixmpp's xep_0352 plugin
// over STARTTLS on real sockets (csi_slixmpp.py says what each step shows). Debian's python3-slixmpp,
// which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./csi_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => { server = await friendsServer(); });
test.after(async () => { await server.stop(); });

test('slixmpp: while the phone is inactive, presence and chat states wait; a message with a body brings them, in order; <active/> flushes', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  assert.is(out.csi_offered, true);
  assert.equal(out.phone_while_inactive, []);
  assert.equal(out.phone_after_body, ['presence:away for lunch', 'state:composing', 'body:lunch?']);
  assert.equal(out.phone_before_active, []);
  assert.equal(out.phone_after_active, ['state:paused']);
});

test.run();
