// What may wait for an inactive client (XEP-0352): the session's rule, case by case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canWait } from '../../actors/session/stream.ts';

const cases: Array<[string, boolean]> = [
  ['<presence from="b@x/r"><status>away</status></presence>', true],
  ['<presence from="b@x/r" type="unavailable"/>', true],
  ['<presence from="b@x" type="subscribe"/>', false],
  ['<message from="b@x/r" type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>', true],
  ['<message from="b@x/r" type="chat"><received xmlns="urn:xmpp:receipts" id="1"/></message>', true],
  ['<message from="b@x" type="headline"><event xmlns="http://jabber.org/protocol/pubsub#event"/></message>', true],
  ['<message from="b@x/r" type="chat"><body>hi</body></message>', false],
  ['<message from="r@c/n" type="groupchat"><subject>topic</subject></message>', false],
  ['<message from="b@x/r" type="chat"><encrypted xmlns="eu.siacs.conversations.axolotl"/></message>', false],
  ['<message from="b@x/r"><propose xmlns="urn:xmpp:jingle-message:0" id="c"/></message>', false],
  ['<message from="r@c"><x xmlns="http://jabber.org/protocol/muc#user"><invite from="b@x"/></x></message>', false],
  ['<message from="b@x/r" type="error"><error type="cancel"/></message>', false],
  ['<message from="a@x" type="chat"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" type="chat"><body>hi</body></message></forwarded></received></message>', false],
  ['<message from="a@x" type="chat"><received xmlns="urn:xmpp:carbons:2"><forwarded xmlns="urn:xmpp:forward:0"><message xmlns="jabber:client" type="chat"><active xmlns="http://jabber.org/protocol/chatstates"/></message></forwarded></received></message>', true],
  ['<message from="a@x" type="chat"><sent xmlns="urn:xmpp:carbons:2"/></message>', false],
  ['<iq from="b@x/r" type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq>', false],
];

test('what can wait and what cannot', () => {
  for (const [xml, expected] of cases) assert.is(canWait(xml), expected, xml);
});

test.run();
