// Client State Indication (XEP-0352) as a real client library uses it: slixmpp's xep_0352 plugin
// over STARTTLS on real sockets (csi_slixmpp.py says what each step shows). Debian's python3-slixmpp,
// which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import { rosterKeys, type RosterItem } from '../../src/modules/roster-store.ts';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { run } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./csi_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['alice', 'bob']) await server.addUser(u, 'pw');
  const db = server.node.runtime.db as unknown as Level<string, unknown>;
  for (const [owner, contact] of [['alice', 'bob'], ['bob', 'alice']]) {
    const item: RosterItem = { jid: `${contact}@localhost`, groups: [], subscription: 'both', ask: false, approved: false, pendingIn: null, listed: true };
    await db.put(rosterKeys.item(`${owner}@localhost`, `${contact}@localhost`), item, { valueEncoding: 'json' });
  }
});
test.after(async () => { await server.stop(); });

test('slixmpp: while the phone is inactive, presence and chat states wait; a message with a body brings them, in order; <active/> flushes', async () => {
  const r = await run('/usr/bin/python3', [SCRIPT, '127.0.0.1', String(server.port), 'localhost', 'pw']);
  const out = JSON.parse(r.out.trim().split('\n').pop() || '{}') as Record<string, unknown> & { error?: string };
  assert.is(out.error, undefined, `${JSON.stringify(out)}\n${r.err.slice(-2000)}`);
  assert.is(out.csi_offered, true);
  assert.equal(out.phone_while_inactive, []);
  assert.equal(out.phone_after_body, ['presence:away for lunch', 'state:composing', 'body:lunch?']);
  assert.equal(out.phone_before_active, []);
  assert.equal(out.phone_after_active, ['state:paused']);
});

test.run();
