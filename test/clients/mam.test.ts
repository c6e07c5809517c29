// Message archives (XEP-0313) as a real client library uses them: slixmpp's own xep_0313 plugin
// paging with xep_0059 over STARTTLS on real sockets (mam_slixmpp.py says what each step shows).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./mam_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => {
  server = await startServer();
  for (const u of ['alice', 'bob']) await server.addUser(u, 'pw');
});
test.after(async () => { await server.stop(); });

test('slixmpp: a client that logs in later pages the whole archive, oldest first and newest first, and by contact', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  const all = Array.from({ length: 25 }, (_, i) => `m${i + 1}`);
  assert.is(out.phone_count, 25);
  assert.is(out.stanza_ids, 25, 'each live message carries the account\'s stanza-id');
  assert.equal(out.all, all);
  assert.is(out.ids_match, true, 'the archive ids are the stanza-ids the phone saw');
  assert.equal(out.newest, all.slice().reverse().slice(0, 12));
  assert.is(out.with_bob, 25);
});

test.run();
