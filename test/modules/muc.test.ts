// Group chat (XEP-0045) on the real core (test/helpers/core.ts): clients of local accounts join rooms
// at conference.example.com; each room is a real room actor (actors/room) reached through routing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import muc from '../../src/modules/muc.ts';
import presence from '../../src/modules/presence.ts';
import roster from '../../src/modules/roster.ts';
import disco from '../../src/modules/disco.ts';
import type { XmlElement } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Core, type CoreOptions } from '../helpers/core.ts';

const SERVICE = 'conference.example.com';
const ROOM = `room@${SERVICE}`;
const A = 'alice@example.com/a', B = 'bob@example.com/b', C = 'carol@example.com/c';

const mk = (o: CoreOptions = {}) => Core.start([roster, presence, disco, muc], o);

const enter = (h: Core, full: string, nick: string, inner = '', room = ROOM) =>
  h.send(full, `<presence to="${room}/${nick}"><x xmlns="${NS.MUC}">${inner}</x></presence>`);
const codes = (e: XmlElement | undefined) => e?.child('x', NS.MUC_USER)?.getChildren('status', NS.MUC_USER).map((s) => s.attr('code')) ?? [];
const item = (e: XmlElement | undefined) => e?.child('x', NS.MUC_USER)?.child('item', NS.MUC_USER);
const presences = (els: XmlElement[]) => els.filter((e) => e.name === 'presence');
const messages = (els: XmlElement[]) => els.filter((e) => e.name === 'message');
const errorOf = (e: XmlElement | undefined) => e?.child('error')?.getChildren()[0]?.name;
const groupchat = (h: Core, full: string, body: string, id = body) =>
  h.send(full, `<message to="${ROOM}" type="groupchat" id="${id}"><body>${body}</body></message>`);
const instant = `<query xmlns="${NS.MUC_OWNER}"><x xmlns="${NS.DATA_FORMS}" type="submit"/></query>`;
const configure = (fields: Record<string, string>) => `<query xmlns="${NS.MUC_OWNER}"><x xmlns="${NS.DATA_FORMS}" type="submit">`
  + `<field var="FORM_TYPE"><value>${NS.MUC_ROOMCONFIG}</value></field>`
  + Object.entries(fields).map(([k, v]) => `<field var="${k}"><value>${v}</value></field>`).join('') + '</x></query>';

/** alice made the room (an instant room) and is in it as Alice; the others are online, not in it. */
async function opened(o: CoreOptions = {}, config = instant): Promise<Core> {
  const h = await mk(o);
  for (const full of [A, B, C]) { h.bind(full); h.send(full, '<presence/>'); }
  await h.settle();
  enter(h, A, 'Alice');
  await h.settle();
  const r = await h.ask(A, 'set', config, ROOM);
  assert.is(r.attr('type'), 'result', 'configured');
  h.clear();
  return h;
}

test('creating a room: the creator is its owner, 201 and 110 (and 170: it is archived), an empty subject; locked until configured', async () => {
  const h = await mk();
  for (const full of [A, B]) h.bind(full);
  await h.settle();
  enter(h, A, 'Alice');
  await h.settle();
  const got = h.take(A);
  const self = presences(got).find((e) => e.attr('from') === `${ROOM}/Alice`);
  assert.ok(self, 'own presence');
  assert.equal(codes(self).sort(), ['110', '170', '201']);
  assert.equal({ affiliation: item(self)?.attr('affiliation'), role: item(self)?.attr('role'), jid: item(self)?.attr('jid') }, { affiliation: 'owner', role: 'moderator', jid: A });
  assert.ok(self!.child('occupant-id', NS.OCCUPANT_ID)?.attr('id'), 'occupant-id');
  const subject = messages(got).find((e) => e.child('subject'));
  assert.is(subject?.getChildText('subject'), '', 'an empty subject ends the join');
  assert.is(got[got.length - 1], subject, 'the subject comes last');
  // locked: nobody else may enter yet (§10.1.1)
  enter(h, B, 'Bob');
  await h.settle();
  assert.is(errorOf(h.take(B).find((e) => e.attr('type') === 'error')), 'item-not-found');
  // the owner asks for the form, then accepts the defaults: an instant room
  const form = await h.ask(A, 'get', `<query xmlns="${NS.MUC_OWNER}"/>`, ROOM);
  const fields = form.child('query', NS.MUC_OWNER)!.child('x', NS.DATA_FORMS)!.getChildren('field').map((f) => f.attr('var'));
  assert.ok(fields.includes('muc#roomconfig_roomname') && fields.includes('muc#roomconfig_membersonly') && fields.includes('muc#roomconfig_whois'));
  assert.is((await h.ask(A, 'set', instant, ROOM)).attr('type'), 'result');
  enter(h, B, 'Bob');
  await h.settle();
  const atBob = h.take(B);
  assert.equal(presences(atBob).map((e) => `${e.attr('from')} ${codes(e).join(',')}`), [`${ROOM}/Alice `, `${ROOM}/Bob 110,170`], "alice's presence, then bob's own");
  assert.is(item(presences(atBob)[0])?.attr('jid'), undefined, 'semi-anonymous: bob does not see alice\'s JID');
  const atAlice = presences(h.take(A));
  assert.equal(atAlice.map((e) => `${e.attr('from')} ${item(e)?.attr('role')} ${item(e)?.attr('jid')}`), [`${ROOM}/Bob participant ${B}`], 'the moderator sees the JID');
});

test('messages: every occupant gets them from room/nick with the occupant-id; a non-occupant is refused', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  groupchat(h, B, 'hello all');
  await h.settle();
  for (const full of [A, B]) {
    const m = messages(h.received(full));
    assert.equal(m.map((e) => `${e.attr('from')} ${e.attr('type')} ${e.getChildText('body')}`), [`${ROOM}/Bob groupchat hello all`], full);
    assert.is(m[0]!.attr('to'), full);
  }
  const idAtA = messages(h.received(A))[0]!.child('occupant-id', NS.OCCUPANT_ID)!.attr('id');
  assert.ok(idAtA);
  // a forged occupant-id is not passed on
  h.clear();
  h.send(B, `<message to="${ROOM}" type="groupchat"><body>forged</body><occupant-id xmlns="${NS.OCCUPANT_ID}" id="alice"/></message>`);
  await h.settle();
  assert.equal(messages(h.received(A))[0]!.getChildren('occupant-id', NS.OCCUPANT_ID).map((e) => e.attr('id')), [idAtA]);
  groupchat(h, C, 'let me in');
  await h.settle();
  assert.is(errorOf(h.received(C).find((e) => e.attr('type') === 'error')), 'not-acceptable');
});

for (const archive of [true, false]) test(`history on joining, as asked: default, maxstanzas, seconds, none; with delay stamps from the room (${archive ? 'from the room\'s archive' : 'no archive: kept in the room\'s snapshot'})`, async () => {
  const h = await opened({ options: { muc: { archive } } });
  for (let i = 1; i <= 4; i++) { groupchat(h, A, `m${i}`); await h.settle(); h.clock += 1000; }
  enter(h, B, 'Bob');
  await h.settle();
  const got = messages(h.take(B)).filter((e) => e.child('body'));
  assert.equal(got.map((e) => e.getChildText('body')), ['m1', 'm2', 'm3', 'm4']);
  assert.is(got[0]!.child('delay', NS.DELAY)?.attr('from'), ROOM);
  enter(h, C, 'Carol', '<history maxstanzas="2"/>');
  await h.settle();
  assert.equal(messages(h.take(C)).filter((e) => e.child('body')).map((e) => e.getChildText('body')), ['m3', 'm4']);
  const rejoin = async (ask: string) => {
    h.send(C, `<presence to="${ROOM}/Carol" type="unavailable"/>`);
    await h.settle();
    h.clear();
    enter(h, C, 'Carol', ask);
    await h.settle();
  };
  await rejoin('<history seconds="2"/>'); // m3 was 2 s ago, m4 1 s ago
  const got2 = messages(h.take(C));
  assert.equal(got2.filter((e) => e.child('body')).map((e) => e.getChildText('body')), ['m3', 'm4']);
  assert.ok(got2[got2.length - 1]!.child('subject'), 'the subject ends the join, after the history');
  h.send(C, `<presence to="${ROOM}/Carol" type="unavailable"/>`);
  await h.settle();
  enter(h, C, 'Carol', '<history maxchars="0"/>');
  await h.settle();
  assert.equal(messages(h.take(C)).filter((e) => e.child('body')), []);
});

test('nicknames: taken by someone else is a conflict; a change is 303 then the new nick; no nick is jid-malformed', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  enter(h, C, 'Alice');
  h.send(C, `<presence to="${ROOM}"/>`);
  await h.settle();
  assert.equal(h.take(C).filter((e) => e.attr('type') === 'error').map(errorOf), ['conflict', 'jid-malformed']);
  h.clear();
  h.send(B, `<presence to="${ROOM}/Robert"/>`);
  await h.settle();
  const atA = presences(h.received(A));
  assert.equal(atA.map((e) => `${e.attr('from')} ${e.attr('type') ?? 'available'} ${codes(e).join(',')} ${item(e)?.attr('nick') ?? ''}`),
    [`${ROOM}/Bob unavailable 303 Robert`, `${ROOM}/Robert available  `]);
  assert.equal(presences(h.received(B)).map((e) => codes(e).sort().join(',')), ['110,303', '110']);
  groupchat(h, B, 'renamed');
  await h.settle();
  assert.ok(messages(h.received(A)).some((e) => e.attr('from') === `${ROOM}/Robert`));
});

test('private messages go to the occupant\'s client from room/nick; to nobody is item-not-found', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  h.send(B, `<message to="${ROOM}/Alice" type="chat" id="pm1"><body>psst</body></message>`);
  h.send(B, `<message to="${ROOM}/Nobody" type="chat" id="pm2"><body>?</body></message>`);
  await h.settle();
  const pm = messages(h.received(A));
  assert.equal(pm.map((e) => `${e.attr('from')} ${e.attr('to')} ${e.getChildText('body')}`), [`${ROOM}/Bob ${A} psst`]);
  assert.ok(pm[0]!.child('x', NS.MUC_USER));
  assert.equal(h.received(B).filter((e) => e.attr('type') === 'error').map((e) => `${e.attr('id')} ${errorOf(e)}`), ['pm2 item-not-found']);
});

test('leaving: unavailable with 110 to the leaver, unavailable to the others; the last one out ends a temporary room', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  h.send(B, `<presence to="${ROOM}/Bob" type="unavailable"><status>bye</status></presence>`);
  await h.settle();
  assert.equal(presences(h.received(B)).map((e) => `${e.attr('type')} ${codes(e).join(',')}`), ['unavailable 110']);
  assert.equal(presences(h.received(A)).map((e) => `${e.attr('from')} ${e.attr('type')} ${e.getChildText('status')}`), [`${ROOM}/Bob unavailable bye`]);
  h.send(A, `<presence to="${ROOM}/Alice" type="unavailable"/>`);
  await h.settle();
  assert.not.ok(await h.hasSnapshot(`room:${ROOM}`), 'the room is gone');
  // a new join creates it afresh
  h.clear();
  enter(h, B, 'Bob');
  await h.settle();
  assert.ok(codes(presences(h.received(B)).find((e) => e.attr('from') === `${ROOM}/Bob`)).includes('201'));
});

test('an occupant whose client goes offline leaves the room (the presence module sends unavailable to where it was)', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  h.unbind(B);
  await h.settle();
  assert.equal(presences(h.received(A)).map((e) => `${e.attr('from')} ${e.attr('type')}`), [`${ROOM}/Bob unavailable`]);
});

test('a ghost: a groupchat message bounced by a client that is gone takes it out with 333', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  // bob's client went away without the presence module knowing (no unavailable was sent)
  h.send(B, `<message to="${ROOM}" type="error" id="x"><error type="cancel"><service-unavailable xmlns="${NS.STANZAS}"/></error></message>`);
  await h.settle();
  const gone = presences(h.received(A)).find((e) => e.attr('from') === `${ROOM}/Bob`);
  assert.is(gone?.attr('type'), 'unavailable');
  assert.equal(codes(gone), ['333']);
});

test('subject: moderators change it, participants may not unless the room allows it; joiners get it', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.send(B, `<message to="${ROOM}" type="groupchat"><subject>mine now</subject></message>`);
  await h.settle();
  assert.is(errorOf(h.received(B).find((e) => e.attr('type') === 'error')), 'forbidden');
  h.clear();
  h.send(A, `<message to="${ROOM}" type="groupchat"><subject>Plans</subject></message>`);
  await h.settle();
  assert.equal(messages(h.received(B)).map((e) => `${e.attr('from')} ${e.getChildText('subject')}`), [`${ROOM}/Alice Plans`]);
  enter(h, C, 'Carol');
  await h.settle();
  const last = h.received(C).at(-1)!;
  assert.equal([last.name, last.getChildText('subject'), last.attr('from')], ['message', 'Plans', `${ROOM}/Alice`]);
});

test('kick and ban by the owner: 307 and 301 with actor and reason; the banned may not come back; a participant may not kick', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  enter(h, C, 'Carol');
  await h.settle();
  h.clear();
  const denied = await h.ask(C, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item nick="Bob" role="none"/></query>`, ROOM);
  assert.is(errorOf(denied), 'forbidden');
  const kick = await h.ask(A, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item nick="Bob" role="none"><reason>calm down</reason></item></query>`, ROOM);
  assert.is(kick.attr('type'), 'result');
  const toBob = presences(h.received(B)).find((e) => e.attr('from') === `${ROOM}/Bob`);
  assert.equal(codes(toBob).sort(), ['110', '307']);
  assert.is(item(toBob)?.child('reason', NS.MUC_USER)?.text(), 'calm down');
  assert.is(item(toBob)?.child('actor', NS.MUC_USER)?.attr('nick'), 'Alice');
  assert.equal(codes(presences(h.received(C)).find((e) => e.attr('from') === `${ROOM}/Bob`)), ['307']);
  // kicked, not banned: bob may come back; then banned by JID
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  await h.ask(A, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item jid="bob@example.com" affiliation="outcast"/></query>`, ROOM);
  assert.equal(codes(presences(h.received(C)).find((e) => e.attr('from') === `${ROOM}/Bob`)), ['301']);
  enter(h, B, 'Bob');
  await h.settle();
  assert.is(errorOf(h.received(B).find((e) => e.name === 'presence' && e.attr('type') === 'error')), 'forbidden');
  const outcasts = await h.ask(A, 'get', `<query xmlns="${NS.MUC_ADMIN}"><item affiliation="outcast"/></query>`, ROOM);
  assert.equal(outcasts.child('query', NS.MUC_ADMIN)!.getChildren('item').map((i) => i.attr('jid')), ['bob@example.com']);
  // the owner cannot be kicked by anyone lower, and the last owner cannot leave ownership
  assert.is(errorOf(await h.ask(A, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item jid="alice@example.com" affiliation="member"/></query>`, ROOM)), 'conflict');
});

test('the server\'s admins own every room: one enters as owner and kicks in a room someone else made', async () => {
  const h = await opened({ admins: ['carol@example.com'] });
  enter(h, B, 'Bob');
  enter(h, C, 'Carol');
  await h.settle();
  assert.is(item(presences(h.received(C)).find((e) => e.attr('from') === `${ROOM}/Carol`))?.attr('affiliation'), 'owner');
  const kick = await h.ask(C, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item nick="Bob" role="none"/></query>`, ROOM);
  assert.is(kick.attr('type'), 'result');
});

test('members-only and password: registration-required, not-authorized; a member and the right password get in', async () => {
  const h = await opened({}, configure({ 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'sesame' }));
  enter(h, B, 'Bob', '<password>sesame</password>');
  await h.settle();
  assert.is(errorOf(h.take(B).find((e) => e.attr('type') === 'error')), 'registration-required');
  await h.ask(A, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item jid="bob@example.com" affiliation="member"/></query>`, ROOM);
  enter(h, B, 'Bob', '<password>wrong</password>');
  await h.settle();
  assert.is(errorOf(h.take(B).find((e) => e.attr('type') === 'error')), 'not-authorized');
  enter(h, B, 'Bob', '<password>sesame</password>');
  await h.settle();
  assert.ok(presences(h.received(B)).some((e) => e.attr('from') === `${ROOM}/Bob` && codes(e).includes('110')));
  // losing membership in a members-only room takes the occupant out with 321
  h.clear();
  await h.ask(A, 'set', `<query xmlns="${NS.MUC_ADMIN}"><item jid="bob@example.com" affiliation="none"/></query>`, ROOM);
  assert.equal(codes(presences(h.received(A)).find((e) => e.attr('from') === `${ROOM}/Bob`)), ['321']);
});

test('a full room refuses the next one: service-unavailable', async () => {
  const h = await opened({}, configure({ 'muc#roomconfig_maxusers': '2' }));
  enter(h, B, 'Bob');
  enter(h, C, 'Carol');
  await h.settle();
  assert.is(errorOf(h.received(C).find((e) => e.attr('type') === 'error')), 'service-unavailable');
});

test('a bad configuration value is refused and changes nothing', async () => {
  const h = await opened();
  const r = await h.ask(A, 'set', configure({ 'muc#roomconfig_maxusers': 'lots' }), ROOM);
  assert.is(errorOf(r), 'not-acceptable');
  const r2 = await h.ask(B, 'set', instant, ROOM);
  assert.is(errorOf(r2), 'forbidden', 'only owners configure');
});

test('disco: the service and its public rooms, a room with its features and muc#roominfo; the host lists the service', async () => {
  const h = await opened({}, configure({ 'muc#roomconfig_roomname': 'The Room', 'muc#roomconfig_persistentroom': '1' }));
  const items = await h.ask(A, 'get', `<query xmlns="${NS.DISCO_ITEMS}"/>`, 'example.com');
  assert.ok(items.child('query', NS.DISCO_ITEMS)!.getChildren('item').some((i) => i.attr('jid') === SERVICE));
  const svc = await h.ask(A, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`, SERVICE);
  assert.equal({ ...svc.child('query', NS.DISCO_INFO)!.child('identity')!.attrs }, { category: 'conference', type: 'text', name: 'Chatrooms' });
  const rooms = await h.ask(A, 'get', `<query xmlns="${NS.DISCO_ITEMS}"/>`, SERVICE);
  assert.equal(rooms.child('query', NS.DISCO_ITEMS)!.getChildren('item').map((i) => `${i.attr('jid')} ${i.attr('name')}`), [`${ROOM} The Room`]);
  const info = (await h.ask(B, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`, ROOM)).child('query', NS.DISCO_INFO)!;
  const features = info.getChildren('feature').map((f) => f.attr('var'));
  for (const f of [NS.MUC, 'muc_persistent', 'muc_public', 'muc_open', 'muc_semianonymous', 'muc_unsecured', 'muc_unmoderated', NS.OCCUPANT_ID]) assert.ok(features.includes(f), f);
  const form = info.child('x', NS.DATA_FORMS)!;
  assert.equal(form.getChildren('field').filter((f) => f.attr('var') === 'muc#roominfo_occupants').map((f) => f.getChildText('value')), ['1']);
  assert.is(errorOf(await h.ask(B, 'get', `<query xmlns="${NS.DISCO_INFO}"/>`, `nosuch@${SERVICE}`)), 'item-not-found');
});

test('self-ping (XEP-0410): answered for an occupant under its nick, not-acceptable otherwise', async () => {
  const h = await opened();
  assert.is((await h.ask(A, 'get', `<ping xmlns="${NS.PING}"/>`, `${ROOM}/Alice`)).attr('type'), 'result');
  assert.is(errorOf(await h.ask(B, 'get', `<ping xmlns="${NS.PING}"/>`, `${ROOM}/Alice`)), 'not-acceptable');
});

test('the room\'s archive: messages carry a stanza-id by the room; an occupant pages them; a stranger of a members-only room may not', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  for (const body of ['one', 'two', 'three']) { groupchat(h, A, body); await h.settle(); }
  const live = messages(h.received(B)).filter((e) => e.child('body'));
  const sids = live.map((e) => e.child('stanza-id', NS.STANZA_ID));
  assert.ok(sids.every((sid) => sid?.attr('by') === ROOM), 'by the room');
  h.clear();
  const r = await h.ask(B, 'set', `<query xmlns="${NS.MAM}" queryid="r1"><set xmlns="${NS.RSM}"><max>2</max><before/></set></query>`, ROOM);
  const results = messages(h.received(B)).map((e) => e.child('result', NS.MAM)!);
  assert.equal(results.map((res) => res.child('forwarded', NS.FORWARD)!.child('message', NS.CLIENT)!.getChildText('body')), ['two', 'three']);
  assert.equal(results.map((res) => res.attr('id')), sids.slice(1).map((sid) => sid!.attr('id')), 'the archive ids are the stanza-ids');
  assert.equal(results[0]!.child('forwarded', NS.FORWARD)!.child('message', NS.CLIENT)!.attr('from'), `${ROOM}/Alice`);
  assert.is(r.child('fin', NS.MAM)!.attr('complete'), undefined, 'one more is there');
  // members-only: carol, no member and not in the room, may not read it
  await h.ask(A, 'set', configure({ 'muc#roomconfig_membersonly': '1' }), ROOM);
  assert.is(errorOf(await h.ask(C, 'set', `<query xmlns="${NS.MAM}"/>`, ROOM)), 'forbidden');
});

test('moderation (XEP-0425): a moderator retracts a message for everyone; the archive keeps a tombstone, joiners no longer get it', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  groupchat(h, B, 'rude');
  await h.settle();
  const sid = messages(h.received(A)).find((e) => e.getChildText('body') === 'rude')!.child('stanza-id', NS.STANZA_ID)!.attr('id')!;
  const moderate = (id: string) => `<moderate xmlns="urn:xmpp:message-moderate:1" id="${id}"><retract xmlns="urn:xmpp:message-retract:1"/><reason>spam</reason></moderate>`;
  assert.is(errorOf(await h.ask(B, 'set', moderate(sid), ROOM)), 'forbidden', 'a participant may not');
  assert.is(errorOf(await h.ask(A, 'set', moderate('nosuch'), ROOM)), 'item-not-found');
  h.clear();
  assert.is((await h.ask(A, 'set', moderate(sid), ROOM)).attr('type'), 'result');
  for (const full of [A, B]) {
    const r = messages(h.received(full)).find((e) => e.child('retract', 'urn:xmpp:message-retract:1'))!;
    const retract = r.child('retract', 'urn:xmpp:message-retract:1')!;
    assert.equal([r.attr('from'), retract.attr('id'), retract.child('moderated', 'urn:xmpp:message-moderate:1')!.attr('by'), retract.getChildText('reason')], [ROOM, sid, `${ROOM}/Alice`, 'spam'], full);
  }
  h.clear();
  await h.ask(B, 'set', `<query xmlns="${NS.MAM}"/>`, ROOM);
  const archived = messages(h.received(B)).map((e) => e.child('result', NS.MAM)!.child('forwarded', NS.FORWARD)!.child('message', NS.CLIENT)!);
  assert.ok(archived[0]!.child('retracted', 'urn:xmpp:message-retract:1'), 'a tombstone');
  assert.is(archived[0]!.getChildText('body'), undefined, 'the words are gone');
  enter(h, C, 'Carol');
  await h.settle();
  assert.equal(messages(h.received(C)).filter((e) => e.getChildText('body') === 'rude'), [], 'not in the history');
});

test('voice requests (§7.13): a visitor of a moderated room asks, moderators get the form, an approval gives voice', async () => {
  const h = await opened({}, configure({ 'muc#roomconfig_moderatedroom': '1' }));
  enter(h, B, 'Bob');
  await h.settle();
  groupchat(h, B, 'may I');
  await h.settle();
  assert.is(errorOf(h.received(B).find((e) => e.attr('type') === 'error')), 'forbidden', 'a visitor has no voice');
  h.clear();
  h.send(B, `<message to="${ROOM}"><x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#request</value></field><field var="muc#role"><value>participant</value></field></x></message>`);
  await h.settle();
  const ask = messages(h.received(A))[0]!.child('x', NS.DATA_FORMS)!;
  const nickField = ask.getChildren('field').find((f) => f.attr('var') === 'muc#roomnick')!;
  assert.is(nickField.getChildText('value', NS.DATA_FORMS), 'Bob');
  h.send(A, `<message to="${ROOM}"><x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#request</value></field><field var="muc#roomnick"><value>Bob</value></field><field var="muc#request_allow"><value>true</value></field></x></message>`);
  await h.settle();
  assert.is(item(presences(h.received(B)).find((e) => e.attr('from') === `${ROOM}/Bob`))?.attr('role'), 'participant');
  h.clear();
  groupchat(h, B, 'thanks');
  await h.settle();
  assert.ok(messages(h.received(A)).some((e) => e.getChildText('body') === 'thanks'));
});

test('nick registration (§7.10): a registered nick is its owner\'s alone, makes a member, is found by x-roomuser-item, and can be cancelled', async () => {
  const h = await opened();
  const reg = (nick: string) => `<query xmlns="${NS.REGISTER}"><x xmlns="${NS.DATA_FORMS}" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#register</value></field><field var="muc#register_roomnick"><value>${nick}</value></field></x></query>`;
  const form = await h.ask(B, 'get', `<query xmlns="${NS.REGISTER}"/>`, ROOM);
  assert.ok(form.child('query', NS.REGISTER)!.child('x', NS.DATA_FORMS)!.getChildren('field').some((f) => f.attr('var') === 'muc#register_roomnick'));
  assert.is((await h.ask(B, 'set', reg('Bobby'), ROOM)).attr('type'), 'result');
  assert.is(errorOf(await h.ask(C, 'set', reg('Bobby'), ROOM)), 'conflict', 'taken');
  const mine = (await h.ask(B, 'get', `<query xmlns="${NS.REGISTER}"/>`, ROOM)).child('query', NS.REGISTER)!;
  assert.equal([!!mine.child('registered', NS.REGISTER), mine.getChildText('username', NS.REGISTER)], [true, 'Bobby']);
  const found = (await h.ask(B, 'get', `<query xmlns="${NS.DISCO_INFO}" node="x-roomuser-item"/>`, ROOM)).child('query', NS.DISCO_INFO)!;
  assert.is(found.child('identity')?.attr('name'), 'Bobby');
  const members = await h.ask(A, 'get', `<query xmlns="${NS.MUC_ADMIN}"><item affiliation="member"/></query>`, ROOM);
  assert.equal(members.child('query', NS.MUC_ADMIN)!.getChildren('item').map((i) => i.attr('jid')), ['bob@example.com']);
  enter(h, C, 'Bobby');
  await h.settle();
  assert.is(errorOf(h.received(C).find((e) => e.attr('type') === 'error')), 'conflict', 'nobody else enters under it');
  assert.is((await h.ask(B, 'set', `<query xmlns="${NS.REGISTER}"><remove/></query>`, ROOM)).attr('type'), 'result');
  h.clear();
  enter(h, C, 'Bobby');
  await h.settle();
  assert.ok(presences(h.received(C)).some((e) => e.attr('from') === `${ROOM}/Bobby` && codes(e).includes('110')), 'free again');
});

test('an IQ to an occupant reaches its client from room/nick, and the answer comes back to the asker only', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  h.send(A, `<iq to="${ROOM}/Bob" type="get" id="v1"><query xmlns="${NS.VERSION}"/></iq>`);
  await h.settle();
  const asked = h.received(B).find((e) => e.name === 'iq')!;
  assert.equal([asked.attr('from'), asked.attr('type')], [`${ROOM}/Alice`, 'get']);
  assert.is.not(asked.attr('id'), 'v1', 'an id of the room\'s');
  // a forged id is dropped; the real answer goes back under the asker's id
  h.send(B, `<iq to="${ROOM}/Alice" type="result" id="muc.x.y.z"><query xmlns="${NS.VERSION}"><name>forged</name></query></iq>`);
  h.send(B, `<iq to="${ROOM}/Alice" type="result" id="${asked.attr('id')}"><query xmlns="${NS.VERSION}"><name>bobclient</name></query></iq>`);
  await h.settle();
  const answers = h.received(A).filter((e) => e.name === 'iq');
  assert.equal(answers.map((e) => `${e.attr('from')} ${e.attr('id')} ${e.child('query')?.getChildText('name', NS.VERSION)}`), [`${ROOM}/Bob v1 bobclient`]);
  // someone not in the room asks nobody
  assert.is(errorOf(await h.ask(C, 'get', `<query xmlns="${NS.VERSION}"/>`, `${ROOM}/Bob`)), 'not-acceptable');
});

test('a room actor killed mid-conversation comes back with its occupants: nobody notices', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  enter(h, C, 'Carol');
  await h.settle();
  groupchat(h, B, 'before');
  await h.settle();
  h.clear();
  h.kill(`room:${ROOM}`);
  await h.settle();
  assert.ok(h.logs.some((l) => l.includes(`room:${ROOM} crashed`)));
  groupchat(h, C, 'after');
  await h.settle();
  for (const full of [A, B, C]) {
    assert.equal(h.received(full).map((e) => `${e.name} ${e.getChildText('body')}`), ['message after'], `${full}: only the next message`);
  }
});

test('destroy: everyone gets unavailable with <destroy/> and the alternate venue; the room is gone', async () => {
  const h = await opened();
  enter(h, B, 'Bob');
  await h.settle();
  h.clear();
  const r = await h.ask(A, 'set', `<query xmlns="${NS.MUC_OWNER}"><destroy jid="other@${SERVICE}"><reason>moved</reason></destroy></query>`, ROOM);
  assert.is(r.attr('type'), 'result');
  const d = presences(h.received(B))[0]!.child('x', NS.MUC_USER)!.child('destroy', NS.MUC_USER)!;
  assert.equal([d.attr('jid'), d.getChildText('reason', NS.MUC_USER)], [`other@${SERVICE}`, 'moved']);
  assert.not.ok(await h.hasSnapshot(`room:${ROOM}`));
});

test('a mediated invitation reaches the invitee from the room, with the inviter', async () => {
  const h = await opened();
  h.send(A, `<message to="${ROOM}"><x xmlns="${NS.MUC_USER}"><invite to="bob@example.com"><reason>join us</reason></invite></x></message>`);
  await h.settle();
  const inv = messages(h.received(B))[0]!;
  assert.is(inv.attr('from'), ROOM);
  const i = inv.child('x', NS.MUC_USER)!.child('invite', NS.MUC_USER)!;
  assert.equal([i.attr('from'), i.getChildText('reason', NS.MUC_USER)], [A, 'join us']);
  assert.is(inv.child('x', NS.CONFERENCE)?.attr('jid'), ROOM);
});

test.run();
