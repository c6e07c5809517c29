// PEP (XEP-0163) and private XML (XEP-0049) as real client libraries use them: slixmpp's own
// plugins over STARTTLS on real sockets, with the OMEMO (XEP-0384) nodes as the example
// (pep_slixmpp.py says what each step shows). Debian's python3-slixmpp, which .ci/run installs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { friendsServer, type TestServer } from '../helpers/xmpp.ts';
import { scenario } from '../helpers/process.ts';
import { login, xml } from '../helpers/clients.ts';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // @xmpp/client: the self-signed certificate

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

test('xmpp.js: alice sets her vcard-temp; bob reads it as vCard4 (XEP-0292), by IQ and from her PEP node urn:xmpp:vcard4', async () => {
  const alice = await login(server.port, 'alice', { password: 'pw' });
  const bob = await login(server.port, 'bob', { password: 'pw' });
  const V4 = 'urn:ietf:params:xml:ns:vcard-4.0';
  const before = await bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vcard', { xmlns: V4 })));
  assert.is(before.getChild('vcard', V4)!.children.length, 0, 'none yet: an empty <vcard/>');
  await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' },
    xml('FN', {}, 'Alice Liddell'), xml('N', {}, xml('FAMILY', {}, 'Liddell'), xml('GIVEN', {}, 'Alice')), xml('NICKNAME', {}, 'ally'),
    xml('EMAIL', {}, xml('HOME'), xml('USERID', {}, 'alice@example.org')), xml('TEL', {}, xml('CELL'), xml('NUMBER', {}, '+44 1865 000000')))));
  const card = (await bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('vcard', { xmlns: V4 })))).getChild('vcard', V4)!;
  const read = (c: typeof card) => ({
    fn: c.getChild('fn')?.getChildText('text'), surname: c.getChild('n')?.getChildText('surname'), nickname: c.getChild('nickname')?.getChildText('text'),
    email: c.getChild('email')?.getChildText('text'), tel: c.getChild('tel')?.getChildText('uri'),
    telType: c.getChild('tel')?.getChild('parameters')?.getChild('type')?.getChildText('text'),
  });
  const expected = { fn: 'Alice Liddell', surname: 'Liddell', nickname: 'ally', email: 'alice@example.org', tel: 'tel:+44 1865 000000', telType: 'cell' };
  assert.equal(read(card), expected);
  const items = await bob.iq(xml('iq', { type: 'get', to: 'alice@localhost' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: 'urn:xmpp:vcard4' }))));
  const item = items.getChild('pubsub')!.getChild('items')!.getChild('item')!;
  assert.is(item.attrs.id, 'current');
  assert.equal(read(item.getChild('vcard', V4)!), expected);
  await alice.stop(); await bob.stop();
});

test.run();
