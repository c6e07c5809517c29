// vCard-temp (XEP-0054) on the real core: set by the account, read by anyone, also through a room.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import vcard, { vcardKeys } from '../../src/modules/vcard.ts';
import muc from '../../src/modules/muc.ts';
import { NS } from '../../src/xml/namespaces.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { Core } from '../helpers/core.ts';

const A = 'alice@example.com/a', B = 'bob@example.com/b';
const errorOf = (e: XmlElement) => e.attr('type') === 'error' ? e.child('error')!.getChildren().map((c) => c.name).filter((n) => n !== 'text').join(' ') : null;
const card = (fn: string) => `<vCard xmlns="${NS.VCARD}"><FN>${fn}</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>`;

async function node(o: Record<string, unknown> = {}): Promise<Core> {
  const h = await Core.start([vcard, muc], { options: { vcard: o } });
  h.bind(A); h.bind(B);
  await h.settle();
  return h;
}

test('the account sets its vCard; it and anyone else read it; none yet is item-not-found', async () => {
  const h = await node();
  assert.is(errorOf(await h.ask(A, 'get', `<vCard xmlns="${NS.VCARD}"/>`)), 'item-not-found');
  assert.is((await h.ask(A, 'set', card('Alice Liddell'))).attr('type'), 'result');
  const own = (await h.ask(A, 'get', `<vCard xmlns="${NS.VCARD}"/>`)).child('vCard', NS.VCARD)!;
  assert.is(own.getChildText('FN', NS.VCARD), 'Alice Liddell');
  const other = await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, 'alice@example.com');
  assert.equal([other.attr('from'), other.child('vCard', NS.VCARD)!.child('PHOTO', NS.VCARD)!.getChildText('BINVAL', NS.VCARD)], ['alice@example.com', 'iVBORw0KGgo=']);
  assert.is(errorOf(await h.ask(B, 'set', card('Mallory'), 'alice@example.com')), 'forbidden');
  assert.is(errorOf(await h.ask(A, 'set', `<vcard xmlns="${NS.VCARD}"/>`)), 'bad-request');
});

test('too big is not acceptable; deleting the account removes it', async () => {
  const h = await node({ max_bytes: 1024 });
  assert.is(errorOf(await h.ask(A, 'set', card('x'.repeat(2000)))), 'not-acceptable');
  await h.ask(A, 'set', card('Alice'));
  h.deleteAccount('alice');
  await h.settle();
  assert.is(await h.peek(vcardKeys.of('alice@example.com')), undefined);
});

test('an occupant\'s vCard through the room: asked of room/nick, answered by the occupant\'s account', async () => {
  const h = await node();
  await h.ask(A, 'set', card('Alice Liddell'));
  const room = 'tea@conference.example.com';
  h.send(A, `<presence to="${room}/Alice"><x xmlns="${NS.MUC}"/></presence>`);
  await h.settle();
  await h.ask(A, 'set', `<query xmlns="${NS.MUC_OWNER}"><x xmlns="${NS.DATA_FORMS}" type="submit"/></query>`, room);
  h.send(B, `<presence to="${room}/Bob"><x xmlns="${NS.MUC}"/></presence>`);
  await h.settle();
  const r = await h.ask(B, 'get', `<vCard xmlns="${NS.VCARD}"/>`, `${room}/Alice`);
  assert.equal([r.attr('type'), r.attr('from'), r.child('vCard', NS.VCARD)?.getChildText('FN', NS.VCARD)], ['result', `${room}/Alice`, 'Alice Liddell']);
});

test.run();
