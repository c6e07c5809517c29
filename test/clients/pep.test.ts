// PEP (XEP-0163) and private XML (XEP-0049) as real client libraries use them: slixmpp's own
// plugins over STARTTLS on real sockets, with the OMEMO (XEP-0384) nodes as the example
// (pep_slixmpp.py says what each step shows). Debian's python3-slixmpp, which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./pep_slixmpp.py', import.meta.url));
const AVATAR = fileURLToPath(new URL('./avatar_slixmpp.py', import.meta.url));

let server: TestServer;
test.before(async () => { server = await friendsServer(); });
test.after(async () => { await server.stop(); });

test('slixmpp: the OMEMO device list reaches alice\'s other device and bob by caps, the bundle is fetched; bookmarks in private XML', async () => {
  const out = await scenario(SCRIPT, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  assert.equal(out.laptop_devices, ['1111', '2222']);
  assert.equal(out.bob_devices, ['1111', '2222']);
  assert.equal(out.bob_fetched, ['AAAA']);
  assert.equal(out.phone_sees_bob, ['3333']);
  assert.equal(out.laptop_sees_bob, ['3333']);
  assert.is(out.bundle_events, 0, 'nobody was told of the bundle');
  assert.equal(out.private, [['family@conference.localhost', 'Alice', 'Family']]);
});

test('slixmpp: an avatar published over PEP is alice\'s vCard PHOTO for bob, and its hash is in her presence (XEP-0398)', async () => {
  const out = await scenario(AVATAR, ['127.0.0.1', String(server.port), 'localhost', 'pw']);
  assert.equal(out, { vcard_photo_is_the_image: true, vcard_photo_type: 'image/png', presence_photo_is_the_hash: true });
});

test.run();
