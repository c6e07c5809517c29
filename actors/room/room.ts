// What a room does with each stanza (XEP-0045): functions from the room's state and a stanza to its
// next state; what it sends goes out through the runtime (durably, to each occupant's account). The
// service domain's own actor (`room:conference.example.org`) answers disco for the service.
import { createHmac } from 'node:crypto';
import { exit, log, send, service, suspend } from '../../src/runtime/api.ts';
import { restamp, serialize, x } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement, type XmlNode } from '../../src/xml/element.ts';
import { OWN_STANZA, validateStanza, type StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { addDelayXml } from '../../src/xmpp/delay.ts';
import { iqResultElement, stanzaErrorElement, type StanzaErrorCondition, type StanzaErrorType } from '../../src/xmpp/errors.ts';
import { dataForm, formBoolean, formText, readForm, type Submitted } from '../../src/xmpp/forms.ts';
import { parseJid, prepareResourcepart, tryParseJid, type Jid } from '../../src/xmpp/jid.ts';
import { keyOf, unescapeKeyPart } from '../../src/storage/db.ts';
import type { MucSettings } from '../../src/modules/muc.ts';
import { archiveId, archiveKeys, finElement, metadataElement, queryArchive, queryFields, recentMessages, removeArchive, resultMessage, type ArchiveEntry } from '../../src/modules/archive.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { routeElement, routeStanza } from '../route.ts';
import {
  affiliationOf, atLeast, defaultConfig, nickOf, outranks, roleOnEntry,
  type Affiliation, type Occupant, type Role, type RoomConfig, type RoomCtx,
} from './state.ts';

const xmpp = () => service<XmppService>('xmpp');

/** The module's settings for this room's domain; undefined once the module is unloaded. */
function settingsOf(ctx: RoomCtx): MucSettings | undefined {
  const jid = parseJid(ctx.jid);
  return xmpp().modules.service(jid.domain)?.settings as MucSettings | undefined;
}

const MODERATE = 'urn:xmpp:message-moderate:1';
const MUC_REGISTER = 'http://jabber.org/protocol/muc#register';
const RETRACT = 'urn:xmpp:message-retract:1';

/** A room's archive (XEP-0313): `mucmam!<room JID>!<id>`. */
const roomArchive = archiveKeys('mucmam');

/** Where the service keeps its list of rooms (for disco#items): `muc!<domain>!<room>`. */
const roomKeys = {
  of: (domain: string) => `${keyOf('muc', domain)}!`,
  room: (domain: string, local: string) => keyOf('muc', domain, local),
};

// ---- the way in -------------------------------------------------------------------------------------

export function onStanza(ctx: RoomCtx, xml: string, h: StanzaHeader): RoomCtx {
  if (!h.from || !h.to) return ctx;
  const st = parseElement(xml);
  const from = parseJid(h.from);
  const to = parseJid(h.to);
  const s = settingsOf(ctx);
  if (!s) { fail(st, 'cancel', 'service-unavailable', 'group chat is not served here any more'); return ctx; }
  if (to.local === '') { serviceStanza(st, to); return ctx; }
  switch (st.name) {
    case 'presence': return onPresence(ctx, s, st, from, to);
    case 'message': return onMessage(ctx, s, st, from, to);
    case 'iq': return onIq(ctx, s, st, from, to);
    default: return ctx;
  }
}

/** An error back to the sender of `st`, from where it was sent (never for an error). A presence
 *  error carries what was sent (its <x xmlns='…muc'/>), as XEP-0045's examples do and clients match on. */
function fail(st: XmlElement, type: StanzaErrorType | null, condition: StanzaErrorCondition, text?: string): void {
  const e = stanzaErrorElement(st, type, condition, text, { includePayload: st.name === 'presence' });
  if (e) routeElement(e);
}

// ---- presence: entering, leaving, nick changes ----------------------------------------------------

function onPresence(ctx: RoomCtx, s: MucSettings, st: XmlElement, from: Jid, to: Jid): RoomCtx {
  const type = st.attr('type');
  const full = from.toString();
  const nick = nickOf(ctx, full);
  // A presence error from an occupant: its client is gone (RFC 6121 §4.6.3); it leaves (333).
  if (type === 'error') return nick ? leave(ctx, full, nick, null, ['333']) : ctx;
  if (type === 'unavailable') return nick ? leave(ctx, full, nick, st, []) : ctx;
  if (type !== undefined) return ctx; // subscriptions are nothing to a room
  if (to.resource === '') { fail(st, 'modify', 'jid-malformed', 'a nickname is needed to enter a room'); return ctx; }
  if (nick === undefined) return enter(ctx, s, st, from, to.resource);
  if (nick !== to.resource) return changeNick(ctx, st, nick, to.resource);
  // A presence update of an occupant.
  const o = ctx.occupants[nick]!;
  const next = withOccupant(ctx, { ...o, presence: presenceBody(st) });
  broadcastPresence(next, next.occupants[nick]!, []);
  return next;
}

function enter(ctx: RoomCtx, s: MucSettings, st: XmlElement, from: Jid, nick: string): RoomCtx {
  const full = from.toString();
  const bare = from.toBareString();
  let room = ctx;
  const created = !ctx.exists;
  if (created) {
    if (!mayCreate(s, bare)) { fail(st, 'cancel', 'not-allowed', 'rooms here are created by the service\'s admins only'); return ctx; }
    room = { ...ctx, exists: true, locked: true, config: defaultConfig(s, parseJid(ctx.jid).local), affiliations: { [bare]: 'owner' }, occupants: {}, subject: null, history: [] };
  }
  const affiliation = affiliationOf(room, s, bare);
  if (room.locked && affiliation !== 'owner') { fail(st, 'cancel', 'item-not-found', 'this room is locked: its owner has not configured it yet'); return ctx; }
  if (affiliation === 'outcast') { fail(st, 'auth', 'forbidden', 'you are banned from this room'); return ctx; }
  if (room.config.membersOnly && !atLeast(affiliation, 'member')) { fail(st, 'auth', 'registration-required', 'this room is for its members only'); return ctx; }
  const muc = st.child('x', NS.MUC);
  if (room.config.password !== '' && affiliation !== 'owner' && muc?.getChildText('password', NS.MUC) !== room.config.password) {
    fail(st, 'auth', 'not-authorized', 'this room needs a password'); return ctx;
  }
  const existing = room.occupants[nick];
  if (existing && existing.bare !== bare) { fail(st, 'cancel', 'conflict', 'that nickname is taken in this room'); return ctx; }
  if (registeredBy(room, nick, bare)) { fail(st, 'cancel', 'conflict', 'that nickname is registered to someone else in this room'); return ctx; }
  if (!existing && Object.keys(room.occupants).length >= room.config.maxUsers && !atLeast(affiliation, 'admin')) {
    fail(st, 'wait', 'service-unavailable', 'this room is full'); return ctx;
  }
  const occupant: Occupant = existing
    ? { ...existing, jids: [...existing.jids, full], presence: presenceBody(st) }
    : { nick, bare, jids: [full], role: roleOnEntry(room, affiliation), presence: presenceBody(st) };
  room = withOccupant(room, occupant);
  // The others' presence first, then the newcomer's to everyone, its own last (§7.2.3).
  for (const o of Object.values(room.occupants)) if (o.nick !== nick) sendPresence(room, o, full, []);
  const own = ['110', ...(room.config.whois === 'anyone' ? ['100'] : []), ...(s.archive ? ['170'] : []), ...(created ? ['201'] : [])];
  if (existing) sendPresence(room, occupant, full, own);
  else broadcastPresence(room, occupant, own);
  if (created) { sendSubject(room, full); log('info', `room ${room.jid} created by ${bare}`); listRoom(room); return room; }
  const wanted = historyWanted(muc?.child('history', NS.MUC));
  if (!s.archive) { sendHistory(room, full, pickHistory(room.history, wanted)); sendSubject(room, full); return room; }
  // From the archive; the room waits for the read, so nothing reaches the joiner before its history.
  const count = Math.min(room.config.historyLength, wanted.stanzas ?? Infinity);
  suspend((count > 0 ? recentMessages(xmpp().storage, roomArchive, room.jid, count, wanted.from) : Promise.resolve([]))
    .catch((err: Error) => { log('warn', `no history for ${full} in ${room.jid}: ${err.message}`); return []; })
    .then((entries): RoomCtx => { sendHistory(room, full, pickHistory(entries, wanted)); sendSubject(room, full); return room; }));
  return room;
}

function mayCreate(s: MucSettings, bare: string): boolean {
  if (s.restrictCreation === 'anyone') return true;
  if (s.admins.includes(bare)) return true;
  return s.restrictCreation === 'local' && xmpp().domains.isHost(parseJid(bare).domain);
}

/** One of an occupant's clients leaves; the occupant leaves with its last one. */
function leave(ctx: RoomCtx, full: string, nick: string, st: XmlElement | null, codes: string[]): RoomCtx {
  const o = ctx.occupants[nick]!;
  const status = st?.child('status');
  const gone = x('presence', { type: 'unavailable', from: `${ctx.jid}/${nick}`, to: full }, status, userX(ctx, o, true, 'none', ['110', ...codes]));
  if (codes.length === 0) routeElement(gone); // a client that errored is not there to hear it
  const jids = o.jids.filter((j) => j !== full);
  if (jids.length > 0) return withOccupant(ctx, { ...o, jids });
  const { [nick]: _, ...occupants } = ctx.occupants;
  void _;
  const next = { ...ctx, occupants };
  broadcastPresence(next, { ...o, role: 'none' }, [], status ? [status] : [], 'unavailable', codes);
  return emptied(next);
}

/** A room nobody is in: a temporary room ends (§10.1.4), a persistent one sleeps until its next
 *  stanza (its snapshot keeps everything). */
function emptied(ctx: RoomCtx): RoomCtx {
  if (Object.keys(ctx.occupants).length > 0) return ctx;
  if (!ctx.config.persistent) { unlistRoom(ctx, true); exit('normal'); return { ...ctx, exists: false }; }
  exit('shutdown');
  return ctx;
}

function changeNick(ctx: RoomCtx, st: XmlElement, nick: string, newNick: string): RoomCtx {
  const o = ctx.occupants[nick]!;
  const taken = ctx.occupants[newNick];
  if (taken && taken.bare !== o.bare) { fail(st, 'cancel', 'conflict', 'that nickname is taken in this room'); return ctx; }
  if (taken) { fail(st, 'cancel', 'not-acceptable', 'another of your clients has that nickname'); return ctx; }
  // Unavailable under the old nick with the new one and 303, then available under the new (§7.6).
  for (const r of Object.values(ctx.occupants)) {
    for (const jid of r.jids) {
      const self = r.nick === nick;
      routeElement(x('presence', { type: 'unavailable', from: `${ctx.jid}/${nick}`, to: jid },
        userX(ctx, o, self || sees(ctx, r), 'none', self ? ['303', '110'] : ['303'], newNick), occupantId(ctx, o)));
    }
  }
  const { [nick]: _, ...rest } = ctx.occupants;
  void _;
  const moved: Occupant = { ...o, nick: newNick, presence: presenceBody(st) };
  const next = { ...ctx, occupants: { ...rest, [newNick]: moved } };
  broadcastPresence(next, moved, ['110']);
  return next;
}

/** The presence children an occupant's presence carries on (show, status, priority, caps). */
function presenceBody(st: XmlElement): string {
  return st.getChildren().filter((c) => { const ns = c.getXmlns(); return ns !== NS.MUC && ns !== NS.MUC_USER && ns !== NS.OCCUPANT_ID; }).map(serialize).join('');
}

/** Whether `viewer` sees real JIDs: everyone in a non-anonymous room, moderators otherwise. */
const sees = (ctx: RoomCtx, viewer: Occupant): boolean => ctx.config.whois === 'anyone' || viewer.role === 'moderator';

/** <x xmlns='muc#user'><item …/><status …/></x> about occupant `o`. */
function userX(ctx: RoomCtx, o: Occupant, withJid: boolean, role: Role | null, codes: string[], nick?: string, extra: XmlNode[] = []): XmlElement {
  const s = settingsOf(ctx);
  const affiliation = s ? affiliationOf(ctx, s, o.bare) : 'none';
  return x('x', { xmlns: NS.MUC_USER },
    x('item', { affiliation, role: role ?? o.role, jid: withJid ? o.jids[o.jids.length - 1] : undefined, nick }, extra),
    codes.map((code) => x('status', { code })));
}

/** XEP-0421: the same opaque id for one real bare JID in one room, whichever nick or client. */
function occupantId(ctx: RoomCtx, o: Occupant): XmlElement {
  const key = `${ctx.jid}\u0000${o.bare}`;
  let id = occupantIds.get(key);
  if (id === undefined) {
    if (occupantIds.size >= 10_000) occupantIds.clear();
    id = createHmac('sha256', xmpp().settings.serverSecret).update(key).digest('base64url').slice(0, 22);
    occupantIds.set(key, id);
  }
  return x('occupant-id', { xmlns: NS.OCCUPANT_ID, id });
}
/** An HMAC per message was a tenth of a busy room's CPU; the id never changes for a room and a JID. */
const occupantIds = new Map<string, string>();

/** Occupant `o`'s current presence to one client `to` (with `codes`). */
function sendPresence(ctx: RoomCtx, o: Occupant, to: string, codes: string[]): void {
  const viewer = ctx.occupants[nickOf(ctx, to) ?? ''];
  const self = o.jids.includes(to);
  routeElement(presenceStanza(ctx, o, to, self || (viewer !== undefined && sees(ctx, viewer)), codes));
}

function presenceStanza(ctx: RoomCtx, o: Occupant, to: string, withJid: boolean, codes: string[], type?: 'unavailable', children: XmlNode[] = [], extra: XmlNode[] = []): XmlElement {
  const body = type === 'unavailable' ? children : o.presence ? parseElement(`<p>${o.presence}</p>`).children : [];
  return x('presence', { from: `${ctx.jid}/${o.nick}`, to, type }, body, userX(ctx, o, withJid, type === 'unavailable' ? 'none' : null, codes, undefined, extra), occupantId(ctx, o));
}

/** Occupant `o`'s presence to every client in the room; its own clients get `ownCodes` (110 …). */
function broadcastPresence(ctx: RoomCtx, o: Occupant, ownCodes: string[], children: XmlNode[] = [], type?: 'unavailable', codes: string[] = [], extra: XmlNode[] = []): void {
  for (const r of Object.values(ctx.occupants)) {
    for (const jid of r.jids) {
      const self = r.nick === o.nick && r.bare === o.bare;
      routeElement(presenceStanza(ctx, o, jid, self || sees(ctx, r), self ? [...ownCodes, ...codes] : codes, type, children, extra));
    }
  }
}

// ---- messages -------------------------------------------------------------------------------------

function onMessage(ctx: RoomCtx, s: MucSettings, st: XmlElement, from: Jid, to: Jid): RoomCtx {
  const type = st.attr('type') ?? 'normal';
  const full = from.toString();
  const nick = nickOf(ctx, full);
  if (type === 'error') {
    // What the room sent an occupant's client bounced: the client is gone (a ghost); it leaves (333).
    return nick ? leave(ctx, full, nick, null, ['333']) : ctx;
  }
  if (!ctx.exists) { fail(st, 'cancel', 'item-not-found', 'no such room'); return ctx; }
  if (to.resource !== '') return privateMessage(ctx, st, type, nick, to.resource);
  if (type === 'groupchat') return groupchat(ctx, st, nick);
  const invite = st.child('x', NS.MUC_USER)?.child('invite', NS.MUC_USER);
  if (invite) return inviteTo(ctx, s, st, from, nick, invite);
  const decline = st.child('x', NS.MUC_USER)?.child('decline', NS.MUC_USER);
  if (decline) { declined(ctx, from, decline); return ctx; }
  const form = readForm(st);
  if (form?.formType === NS.MUC_REQUEST) return voiceRequest(ctx, st, nick, form);
  fail(st, 'modify', 'bad-request', 'messages to a room are of type groupchat');
  return ctx;
}

function groupchat(ctx: RoomCtx, st: XmlElement, nick: string | undefined): RoomCtx {
  if (nick === undefined) { fail(st, 'modify', 'not-acceptable', 'you are not in this room'); return ctx; }
  const o = ctx.occupants[nick]!;
  if (o.role === 'visitor') { fail(st, 'auth', 'forbidden', 'visitors have no voice in this moderated room'); return ctx; }
  const subject = st.child('subject');
  if (subject && st.child('body') === undefined) {
    if (o.role !== 'moderator' && !ctx.config.changeSubject) { fail(st, 'auth', 'forbidden', 'only moderators may change the subject'); return ctx; }
    const next = { ...ctx, subject: { text: subject.text(), nick, at: xmpp().now() } };
    fanOut(next, x('message', { from: `${ctx.jid}/${nick}`, type: 'groupchat', id: st.attr('id') }, subject, occupantId(ctx, o)));
    return next;
  }
  // The occupant's own claims of identity are dropped (XEP-0421 §4, XEP-0359 §3.1): the room says who
  // it is and which archive id the message has.
  const kept = st.children.filter((c) => typeof c === 'string' || (c.getXmlns() !== NS.OCCUPANT_ID && !(c.getXmlns() === NS.STANZA_ID && c.attr('by') === ctx.jid)));
  const at = xmpp().now();
  const id = settingsOf(ctx)?.archive ? archiveId(at) : null;
  const msg = x('message', { from: `${ctx.jid}/${nick}`, type: 'groupchat', id: st.attr('id'), 'xml:lang': st.attr('xml:lang') }, kept, occupantId(ctx, o),
    id ? x('stanza-id', { xmlns: NS.STANZA_ID, by: ctx.jid, id }) : null);
  const archived = id !== null && st.child('body') !== undefined;
  // An archived message is on disk in the room's archive with the handling of this message (or the
  // message is handled again): the archive is its durable copy, which an occupant's client that
  // missed a delivery reads (XEP-0313 on the room), so each delivery needs no durable copy of its own.
  const xml = fanOut(ctx, msg, !archived);
  if (st.child('body') === undefined) return ctx;
  if (archived) {
    xmpp().storage.withHandling([{ type: 'put', key: roomArchive.entry(ctx.jid, id), value: { with: ctx.jid, at, dir: 'in', xml } satisfies ArchiveEntry }]);
    // Joiners' history comes from the archive (§7.2.15 with MAM): no snapshot write per message.
    return ctx.history.length ? { ...ctx, history: [] } : ctx;
  }
  if (ctx.config.historyLength === 0) return ctx;
  const history = [...ctx.history, { xml, at }].slice(-ctx.config.historyLength);
  return { ...ctx, history };
}

/** One stanza to every client in the room: serialized once, only 'to' changes per copy. Durable
 *  unless the caller has a durable copy of its own (the archive). */
function fanOut(ctx: RoomCtx, el: XmlElement, durable = true): string {
  const xml = serialize(el);
  const h = validateStanza(xml, undefined, OWN_STANZA);
  for (const o of Object.values(ctx.occupants)) {
    for (const jid of o.jids) { const r = restamp(xml, h, { to: jid }); routeStanza(r.xml, r.header, durable); }
  }
  return xml;
}

function privateMessage(ctx: RoomCtx, st: XmlElement, type: string, nick: string | undefined, toNick: string): RoomCtx {
  if (type === 'groupchat') { fail(st, 'modify', 'bad-request', 'a private message is not of type groupchat'); return ctx; }
  if (nick === undefined) { fail(st, 'modify', 'not-acceptable', 'you are not in this room'); return ctx; }
  const target = ctx.occupants[toNick];
  if (!target) { fail(st, 'cancel', 'item-not-found', 'nobody of that nickname is in this room'); return ctx; }
  const sender = ctx.occupants[nick]!;
  const allowed = { anyone: true, participants: sender.role !== 'visitor', moderators: sender.role === 'moderator', none: false }[ctx.config.allowPm];
  if (!allowed) { fail(st, 'cancel', 'not-allowed', 'private messages are not allowed in this room'); return ctx; }
  const kept = st.children.filter((c) => typeof c === 'string' || (c.getXmlns() !== NS.OCCUPANT_ID && c.getXmlns() !== NS.MUC_USER));
  for (const jid of target.jids) {
    routeElement(x('message', { from: `${ctx.jid}/${nick}`, to: jid, type: st.attr('type'), id: st.attr('id') }, kept, x('x', { xmlns: NS.MUC_USER }), occupantId(ctx, sender)));
  }
  return ctx;
}

/**
 * §7.13 and §8.6: a visitor of a moderated room asks for voice with a muc#request form; every
 * moderator gets the form to approve; an approval gives the occupant voice (participant).
 */
function voiceRequest(ctx: RoomCtx, st: XmlElement, nick: string | undefined, form: Submitted): RoomCtx {
  if (nick === undefined) { fail(st, 'modify', 'not-acceptable', 'you are not in this room'); return ctx; }
  const me = ctx.occupants[nick]!;
  const allow = formBoolean(form, 'muc#request_allow');
  if (allow !== undefined) {
    // A moderator's answer to a request.
    if (me.role !== 'moderator') { fail(st, 'auth', 'forbidden', 'only moderators answer voice requests'); return ctx; }
    const who = ctx.occupants[formText(form, 'muc#roomnick') ?? ''];
    if (!allow || !who || who.role !== 'visitor') return ctx;
    const next = withOccupant(ctx, { ...who, role: 'participant' });
    broadcastPresence(next, next.occupants[who.nick]!, []);
    return next;
  }
  if (me.role !== 'visitor' || formText(form, 'muc#role') !== 'participant') { fail(st, 'modify', 'bad-request', 'only a visitor asks for voice (muc#role participant)'); return ctx; }
  const ask = dataForm({ type: 'form', title: 'Voice request', instructions: `To approve this request for voice, select the "Grant voice" checkbox and submit the form.`, formType: NS.MUC_REQUEST }, [
    { var: 'muc#role', type: 'list-single', label: 'Requested role', value: 'participant' },
    { var: 'muc#jid', type: 'jid-single', label: 'User ID', value: me.jids[me.jids.length - 1] },
    { var: 'muc#roomnick', type: 'text-single', label: 'Room nickname', value: nick },
    { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', value: false },
  ]);
  for (const m of Object.values(ctx.occupants).filter((o) => o.role === 'moderator')) {
    for (const jid of m.jids) routeElement(x('message', { from: ctx.jid, to: jid, id: `voice-${xmpp().now()}` }, ask));
  }
  return ctx;
}

/** A mediated invitation (§7.8.2): the room tells the invitee; in a members-only room the invitee
 *  becomes a member when the inviter may make members. */
function inviteTo(ctx: RoomCtx, s: MucSettings, st: XmlElement, from: Jid, nick: string | undefined, invite: XmlElement): RoomCtx {
  if (nick === undefined) { fail(st, 'modify', 'not-acceptable', 'you are not in this room'); return ctx; }
  const invitee = tryParseJid(invite.attr('to') ?? '');
  if (!invitee) { fail(st, 'modify', 'jid-malformed', 'the invitee is not a valid JID'); return ctx; }
  const inviter = ctx.occupants[nick]!;
  const rank = affiliationOf(ctx, s, from.toBareString());
  if (!ctx.config.allowInvites && inviter.role !== 'moderator') { fail(st, 'auth', 'forbidden', 'only moderators may invite to this room'); return ctx; }
  let next = ctx;
  const bare = invitee.toBareString();
  if (ctx.config.membersOnly && affiliationOf(ctx, s, bare) === 'none' && (ctx.config.allowInvites || atLeast(rank, 'admin'))) {
    next = { ...ctx, affiliations: { ...ctx.affiliations, [bare]: 'member' } };
  }
  const reason = invite.child('reason', NS.MUC_USER);
  routeElement(x('message', { from: ctx.jid, to: invitee.toString(), id: st.attr('id') },
    x('x', { xmlns: NS.MUC_USER }, x('invite', { from: from.toString() }, reason), ctx.config.password ? x('password', null, ctx.config.password) : null),
    x('x', { xmlns: NS.CONFERENCE, jid: ctx.jid, reason: reason?.text(), password: ctx.config.password || undefined })));
  return next;
}

function declined(ctx: RoomCtx, from: Jid, decline: XmlElement): void {
  const inviter = tryParseJid(decline.attr('to') ?? '');
  if (!inviter) return;
  routeElement(x('message', { from: ctx.jid, to: inviter.toString() },
    x('x', { xmlns: NS.MUC_USER }, x('decline', { from: from.toBareString() }, decline.child('reason', NS.MUC_USER)))));
}

/** §7.2.14: what a joiner asks of the history (<history maxchars maxstanzas seconds since/>). */
interface HistoryWanted { stanzas?: number; chars?: number; /** ms, inclusive */ from?: number }

function historyWanted(ask: XmlElement | undefined): HistoryWanted {
  const n = (a: string) => { const v = Number(ask?.attr(a)); return ask?.attr(a) !== undefined && Number.isFinite(v) && v >= 0 ? v : undefined; };
  const seconds = n('seconds');
  const since = ask?.attr('since') ? Date.parse(ask.attr('since')!) : Number.NaN;
  const bounds = [...(seconds !== undefined ? [xmpp().now() - seconds * 1000] : []), ...(Number.isNaN(since) ? [] : [since + 1])];
  return { stanzas: n('maxstanzas'), chars: n('maxchars'), from: bounds.length ? Math.max(...bounds) : undefined };
}

/** The newest of `list` (oldest first) that the joiner's limits allow; by default all of it. */
function pickHistory<E extends { xml: string; at: number }>(list: E[], w: HistoryWanted): E[] {
  let out = w.from !== undefined ? list.filter((e) => e.at >= w.from!) : list;
  if (w.stanzas !== undefined) out = w.stanzas === 0 ? [] : out.slice(-w.stanzas);
  if (w.chars === undefined) return out;
  let budget = w.chars;
  const kept: E[] = [];
  for (let i = out.length - 1; i >= 0 && budget >= out[i]!.xml.length; i--) { budget -= out[i]!.xml.length; kept.unshift(out[i]!); }
  return kept;
}

/** History to a joiner, with delay stamps from the room. */
function sendHistory(ctx: RoomCtx, to: string, list: Array<{ xml: string; at: number }>): void {
  for (const e of list) {
    const xml = addDelayXml(e.xml, ctx.jid, e.at);
    const r = restamp(xml, validateStanza(xml, undefined, OWN_STANZA), { to });
    routeStanza(r.xml, r.header);
  }
}

/** §7.2.15: the subject ends a join; an empty one when there is none. */
function sendSubject(ctx: RoomCtx, to: string): void {
  const sub = ctx.subject;
  routeElement(x('message', { from: sub ? `${ctx.jid}/${sub.nick}` : ctx.jid, to, type: 'groupchat', id: `subject-${sub?.at ?? 0}` },
    x('subject', null, sub?.text ?? ''),
    sub ? x('delay', { xmlns: NS.DELAY, from: ctx.jid, stamp: new Date(sub.at).toISOString() }) : null));
}

// ---- IQs: disco, self-ping, owner and admin ---------------------------------------------------------

function onIq(ctx: RoomCtx, s: MucSettings, st: XmlElement, from: Jid, to: Jid): RoomCtx {
  const type = st.attr('type');
  const full = from.toString();
  if (type === 'result' || type === 'error') {
    if (to.resource !== '') answerForwarded(ctx, st, full, to.resource);
    return ctx;
  }
  if (type !== 'get' && type !== 'set') return ctx;
  const payload = st.getChildren()[0];
  const ns = payload?.getXmlns();
  if (to.resource !== '') {
    // XEP-0410: a client asks whether it is still in the room under that nick.
    if (ns === NS.PING && type === 'get' && ctx.occupants[to.resource]?.jids.includes(full)) { routeElement(iqResultElement(st)); return ctx; }
    forwardIq(ctx, st, full, to.resource, ns);
    return ctx;
  }
  if (!ctx.exists) { fail(st, 'cancel', 'item-not-found', 'no such room'); return ctx; }
  const affiliation = affiliationOf(ctx, s, from.toBareString());
  const reply = (p?: XmlElement) => routeElement(iqResultElement(st, p));
  switch (`${type} ${ns}`) {
    case `get ${NS.DISCO_INFO}`:
      // §7.12: the nickname registered to the asker, as an identity of node x-roomuser-item.
      if (payload!.attr('node') === 'x-roomuser-item') {
        const mine = ctx.nicks?.[from.toBareString()];
        reply(x('query', { xmlns: NS.DISCO_INFO, node: 'x-roomuser-item' }, mine ? x('identity', { category: 'conference', type: 'text', name: mine }) : null));
      } else if (payload!.attr('node') !== undefined) fail(st, 'cancel', 'item-not-found');
      else reply(roomInfo(ctx));
      return ctx;
    case `get ${NS.REGISTER}`: case `set ${NS.REGISTER}`:
      return register(ctx, st, payload!, from.toBareString(), affiliation);
    case `get ${NS.DISCO_ITEMS}`:
      reply(x('query', { xmlns: NS.DISCO_ITEMS }));
      return ctx;
    case `get ${NS.PING}`:
      reply();
      return ctx;
    case `set ${MODERATE}`:
      moderate(ctx, st, payload!, full);
      return ctx;
    case `get ${NS.MAM}`: case `set ${NS.MAM}`:
      archiveIq(ctx, s, st, payload!, from, affiliation);
      return ctx;
    case `get ${NS.MUC_OWNER}`:
      if (affiliation !== 'owner') { fail(st, 'auth', 'forbidden', 'only owners configure a room'); return ctx; }
      reply(x('query', { xmlns: NS.MUC_OWNER }, configForm(ctx, s)));
      return ctx;
    case `set ${NS.MUC_OWNER}`:
      if (affiliation !== 'owner') { fail(st, 'auth', 'forbidden', 'only owners configure or destroy a room'); return ctx; }
      return owner(ctx, s, st, payload!);
    case `get ${NS.MUC_ADMIN}`:
      return adminList(ctx, s, st, payload!, full, affiliation);
    case `set ${NS.MUC_ADMIN}`:
      return admin(ctx, s, st, payload!, full, affiliation);
    default:
      fail(st, 'cancel', 'service-unavailable');
      return ctx;
  }
}

/**
 * An occupant's IQ to another occupant: passed on from room/nick to the
 * target's client (a vCard request to its account, which answers for the person), under an id that
 * says, signed, where the answer goes back; so the room keeps nothing per request.
 */
function forwardIq(ctx: RoomCtx, st: XmlElement, full: string, toNick: string, ns: string | undefined): void {
  const nick = nickOf(ctx, full);
  // XEP-0410 §3.1: not in the room (or not under that nick) is not-acceptable, so the client rejoins.
  if (nick === undefined) { fail(st, 'modify', 'not-acceptable', 'you are not in this room'); return; }
  const target = ctx.occupants[toNick];
  if (!target) { fail(st, 'cancel', 'item-not-found', 'nobody of that nickname is in this room'); return; }
  const to = ns === NS.VCARD ? target.bare : target.jids[target.jids.length - 1]!;
  routeElement(x('iq', { type: st.attr('type'), id: forwardedId(full, st.attr('id') ?? ''), from: `${ctx.jid}/${nick}`, to }, st.children));
}

/** The answer to a forwarded IQ, back to who asked, from the nick it was asked of. */
function answerForwarded(ctx: RoomCtx, st: XmlElement, full: string, asker: string): void {
  const back = readForwardedId(st.attr('id') ?? '');
  const answerer = nickOf(ctx, full) ?? Object.values(ctx.occupants).find((o) => o.bare === full)?.nick;
  if (!back || !answerer || nickOf(ctx, back.from) !== asker) return;
  routeElement(x('iq', { type: st.attr('type'), id: back.id, from: `${ctx.jid}/${answerer}`, to: back.from }, st.children));
}

const sign = (s: string): string => createHmac('sha256', xmpp().settings.serverSecret).update(s).digest('base64url').slice(0, 12);
function forwardedId(from: string, id: string): string {
  const body = `${Buffer.from(from).toString('base64url')}.${Buffer.from(id).toString('base64url')}`;
  return `muc.${body}.${sign(body)}`;
}
function readForwardedId(id: string): { from: string; id: string } | undefined {
  const [tag, f, i, mac] = id.split('.');
  if (tag !== 'muc' || f === undefined || i === undefined || mac !== sign(`${f}.${i}`)) return undefined;
  return { from: Buffer.from(f, 'base64url').toString(), id: Buffer.from(i, 'base64url').toString() };
}

/** The room's archive (XEP-0313 §5.1.2): for whoever may enter it; results go to the asking client. */
function archiveIq(ctx: RoomCtx, s: MucSettings, st: XmlElement, q: XmlElement, from: Jid, affiliation: Affiliation): void {
  if (!s.archive) { fail(st, 'cancel', 'service-unavailable', 'this service keeps no archives'); return; }
  const occupant = nickOf(ctx, from.toString()) !== undefined;
  if (!occupant && (affiliation === 'outcast' || (ctx.config.membersOnly && !atLeast(affiliation, 'member')))) {
    fail(st, 'auth', 'forbidden', 'the archive is for those who may enter the room'); return;
  }
  const storage = xmpp().storage;
  if (st.attr('type') === 'get') {
    if (q.localName === 'metadata') { suspend(metadataElement(storage, roomArchive, ctx.jid).then((m) => routeElement(iqResultElement(st, m)))); return; }
    routeElement(iqResultElement(st, x('query', { xmlns: NS.MAM }, dataForm({ type: 'form', formType: NS.MAM }, [...queryFields]))));
    return;
  }
  suspend(queryArchive(storage, roomArchive, ctx.jid, q, { defaultPage: 50, maxPage: 250 }).then((page) => {
    if ('condition' in page) { fail(st, null, page.condition, page.text); return; }
    for (const [key, e] of page.entries) routeElement(resultMessage(from.toString(), ctx.jid, page.queryid, key, e));
    routeElement(iqResultElement(st, finElement(page)));
  }));
}

/**
 * XEP-0425 (0.3.0): a moderator retracts an occupant's message for everyone, named by the stanza-id
 * the room gave it: every occupant is told (XEP-0424's <retract/>, by whom), the archive keeps a
 * tombstone in its place, which joiners' history (read from the archive) skips: it has no body.
 */
function moderate(ctx: RoomCtx, st: XmlElement, q: XmlElement, full: string): void {
  const me = ctx.occupants[nickOf(ctx, full) ?? ''];
  if (me?.role !== 'moderator') { fail(st, 'auth', 'forbidden', 'only moderators retract others\' messages'); return; }
  const id = q.attr('id');
  if (!id || !q.child('retract', RETRACT)) { fail(st, 'modify', 'bad-request', 'name the message (its stanza-id) and say <retract/>'); return; }
  const storage = xmpp().storage;
  const reason = q.getChildText('reason', MODERATE);
  suspend(storage.get<ArchiveEntry>(roomArchive.entry(ctx.jid, id)).then((entry): RoomCtx => {
    if (!entry) { fail(st, 'cancel', 'item-not-found', 'no message of this room has that id'); return ctx; }
    const moderated = () => x('moderated', { xmlns: MODERATE, by: `${ctx.jid}/${me.nick}` }, occupantId(ctx, me));
    const at = xmpp().now();
    const original = parseElement(entry.xml);
    const tombstone = x('message', { from: original.attr('from'), type: 'groupchat', id: original.attr('id') },
      x('retracted', { xmlns: RETRACT, stamp: new Date(at).toISOString() }, moderated(), reason !== undefined ? x('reason', null, reason) : null),
      original.getChildren().filter((c) => c.getXmlns() === NS.OCCUPANT_ID || c.getXmlns() === NS.STANZA_ID));
    const noticeId = archiveId(at);
    const notice = x('message', { from: ctx.jid, type: 'groupchat', id: `retract-${noticeId}` },
      x('retract', { xmlns: RETRACT, id }, moderated(), reason !== undefined ? x('reason', null, reason) : null),
      x('stanza-id', { xmlns: NS.STANZA_ID, by: ctx.jid, id: noticeId }));
    const xml = fanOut(ctx, notice);
    storage.withHandling([
      { type: 'put', key: roomArchive.entry(ctx.jid, id), value: { ...entry, xml: serialize(tombstone) } satisfies ArchiveEntry },
      { type: 'put', key: roomArchive.entry(ctx.jid, noticeId), value: { with: ctx.jid, at, dir: 'in', xml } satisfies ArchiveEntry },
    ]);
    routeElement(iqResultElement(st));
    return ctx;
  }));
}

function roomInfo(ctx: RoomCtx): XmlElement {
  const c = ctx.config;
  const features = [NS.MUC, NS.DISCO_INFO, NS.DISCO_ITEMS, NS.OCCUPANT_ID, NS.MUC_SELF_PING, NS.MUC_STABLE_ID, NS.MUC_REQUEST,
    ...(settingsOf(ctx)?.archive ? [NS.MAM, NS.STANZA_ID, MODERATE, RETRACT] : []),
    c.public ? 'muc_public' : 'muc_hidden', c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open', c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous', c.password ? 'muc_passwordprotected' : 'muc_unsecured'];
  return x('query', { xmlns: NS.DISCO_INFO },
    x('identity', { category: 'conference', type: 'text', name: c.name || parseJid(ctx.jid).local }),
    features.map((v) => x('feature', { var: v })),
    dataForm({ type: 'result', formType: NS.MUC_ROOMINFO }, [
      { var: 'muc#roominfo_description', label: 'Description', value: c.description },
      { var: 'muc#roominfo_occupants', label: 'Number of occupants', value: Object.keys(ctx.occupants).length },
      { var: 'muc#roominfo_subject', label: 'Subject', value: ctx.subject?.text ?? '' },
      { var: 'muc#roomconfig_roomname', label: 'Name', value: c.name },
      { var: 'muc#roomconfig_changesubject', label: 'Occupants may change the subject', value: c.changeSubject },
    ]));
}

function configForm(ctx: RoomCtx, s: MucSettings): XmlElement {
  const c = ctx.config;
  const sizes = [...new Set([10, 20, 30, 50, 100, 200, 500, 1000, c.maxUsers, s.maxOccupants])].filter((n) => n <= s.maxOccupants).sort((a, b) => a - b);
  return dataForm({ type: 'form', title: `Configuration of ${ctx.jid}`, formType: NS.MUC_ROOMCONFIG }, [
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Name', value: c.name },
    { var: 'muc#roomconfig_roomdesc', type: 'text-single', label: 'Description', value: c.description },
    { var: 'muc#roomconfig_persistentroom', type: 'boolean', label: 'Persistent (kept when empty)', value: c.persistent },
    { var: 'muc#roomconfig_publicroom', type: 'boolean', label: 'Listed in the directory of rooms', value: c.public },
    { var: 'muc#roomconfig_membersonly', type: 'boolean', label: 'Members only', value: c.membersOnly },
    { var: 'muc#roomconfig_moderatedroom', type: 'boolean', label: 'Moderated (only members speak without voice)', value: c.moderated },
    { var: 'muc#roomconfig_passwordprotectedroom', type: 'boolean', label: 'Password protected', value: c.password !== '' },
    { var: 'muc#roomconfig_roomsecret', type: 'text-private', label: 'Password', value: c.password },
    { var: 'muc#roomconfig_maxusers', type: 'list-single', label: 'Most occupants', value: String(c.maxUsers), options: sizes.map((n) => ({ value: String(n) })) },
    { var: 'muc#roomconfig_whois', type: 'list-single', label: 'Who sees real JIDs', value: c.whois, options: [{ value: 'moderators', label: 'Moderators' }, { value: 'anyone', label: 'Anyone' }] },
    { var: 'muc#maxhistoryfetch', type: 'text-single', label: `Messages kept for joiners (at most ${s.maxHistoryLength})`, value: String(c.historyLength) },
    { var: 'muc#roomconfig_allowpm', type: 'list-single', label: 'Who may send private messages', value: c.allowPm, options: ['anyone', 'participants', 'moderators', 'none'].map((value) => ({ value })) },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Occupants may invite', value: c.allowInvites },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Occupants may change the subject', value: c.changeSubject },
  ]);
}

/** The submitted configuration, or the name of the field that is wrong. */
function readConfig(c: RoomConfig, s: MucSettings, f: Submitted): RoomConfig | string {
  const next = { ...c };
  const bool = (name: string, apply: (v: boolean) => void): string | null => {
    if (!f.values.has(name)) return null;
    const v = formBoolean(f, name);
    if (v === undefined) return name;
    apply(v);
    return null;
  };
  const name = formText(f, 'muc#roomconfig_roomname');
  if (name !== undefined) next.name = name;
  const desc = formText(f, 'muc#roomconfig_roomdesc');
  if (desc !== undefined) next.description = desc;
  let protectedRoom: boolean | undefined;
  const bad = bool('muc#roomconfig_persistentroom', (v) => { next.persistent = v; })
    ?? bool('muc#roomconfig_publicroom', (v) => { next.public = v; })
    ?? bool('muc#roomconfig_membersonly', (v) => { next.membersOnly = v; })
    ?? bool('muc#roomconfig_moderatedroom', (v) => { next.moderated = v; })
    ?? bool('muc#roomconfig_passwordprotectedroom', (v) => { protectedRoom = v; })
    ?? bool('muc#roomconfig_allowinvites', (v) => { next.allowInvites = v; })
    ?? bool('muc#roomconfig_changesubject', (v) => { next.changeSubject = v; });
  if (bad) return bad;
  const secret = formText(f, 'muc#roomconfig_roomsecret');
  if (secret !== undefined) next.password = secret;
  if (protectedRoom === false) next.password = '';
  if (protectedRoom === true && next.password === '') return 'muc#roomconfig_roomsecret';
  const max = formText(f, 'muc#roomconfig_maxusers');
  if (max !== undefined) {
    const n = max === '' || max === 'none' ? s.maxOccupants : Number(max);
    if (!Number.isInteger(n) || n < 1 || n > s.maxOccupants) return 'muc#roomconfig_maxusers';
    next.maxUsers = n;
  }
  const whois = formText(f, 'muc#roomconfig_whois');
  if (whois !== undefined) {
    if (whois !== 'moderators' && whois !== 'anyone') return 'muc#roomconfig_whois';
    next.whois = whois;
  }
  const hist = formText(f, 'muc#maxhistoryfetch') ?? formText(f, 'muc#roomconfig_historylength');
  if (hist !== undefined) {
    const n = Number(hist);
    if (!Number.isInteger(n) || n < 0 || n > s.maxHistoryLength) return 'muc#maxhistoryfetch';
    next.historyLength = n;
  }
  const pm = formText(f, 'muc#roomconfig_allowpm');
  if (pm !== undefined) {
    if (!['anyone', 'participants', 'moderators', 'none'].includes(pm)) return 'muc#roomconfig_allowpm';
    next.allowPm = pm as RoomConfig['allowPm'];
  }
  return next;
}

/** §10.1.2-3, §10.2, §10.9: configure (an empty submit is an instant room), cancel, destroy. */
function owner(ctx: RoomCtx, s: MucSettings, st: XmlElement, q: XmlElement): RoomCtx {
  const destroy = q.child('destroy', NS.MUC_OWNER);
  if (destroy) { routeElement(iqResultElement(st)); return destroyRoom(ctx, destroy); }
  const form = readForm(q);
  if (!form) { fail(st, 'modify', 'bad-request', 'expected a data form or <destroy/>'); return ctx; }
  if (form.type === 'cancel') {
    routeElement(iqResultElement(st));
    // Cancelling the first configuration of a new room destroys it (§10.1.3).
    return ctx.locked ? destroyRoom(ctx, undefined) : ctx;
  }
  if (form.type !== 'submit') { fail(st, 'modify', 'bad-request', 'expected a submitted form'); return ctx; }
  if (form.formType !== undefined && form.formType !== NS.MUC_ROOMCONFIG) { fail(st, 'modify', 'bad-request', `unknown FORM_TYPE ${form.formType}`); return ctx; }
  const config = readConfig(ctx.config, s, form);
  if (typeof config === 'string') { fail(st, 'modify', 'not-acceptable', `the value of ${config} is not acceptable`); return ctx; }
  routeElement(iqResultElement(st));
  let next: RoomCtx = { ...ctx, config, locked: false, history: ctx.history.slice(-config.historyLength || ctx.history.length) };
  if (config.historyLength === 0) next = { ...next, history: [] };
  // What changed that occupants are told of (§10.2.1): 104, and 172/173 for the JID visibility.
  if (!ctx.locked) {
    const codes = ['104', ...(config.whois !== ctx.config.whois ? [config.whois === 'anyone' ? '172' : '173'] : [])];
    fanOut(next, x('message', { from: ctx.jid, type: 'groupchat', id: `config-${xmpp().now()}` }, x('x', { xmlns: NS.MUC_USER }, codes.map((code) => x('status', { code })))));
  }
  // Becoming members-only sends out who is not a member (322).
  if (config.membersOnly && !ctx.config.membersOnly) {
    for (const o of Object.values(next.occupants)) {
      if (!atLeast(affiliationOf(next, s, o.bare), 'member')) next = removeOccupant(next, o, ['322'], null, null);
    }
  }
  listRoom(next);
  return next;
}

function destroyRoom(ctx: RoomCtx, destroy: XmlElement | undefined): RoomCtx {
  const d = destroy ? x('destroy', { jid: destroy.attr('jid') }, destroy.child('reason', NS.MUC_OWNER) ? x('reason', null, destroy.getChildText('reason', NS.MUC_OWNER)!) : null) : x('destroy');
  for (const o of Object.values(ctx.occupants)) {
    for (const jid of o.jids) {
      routeElement(x('presence', { type: 'unavailable', from: `${ctx.jid}/${o.nick}`, to: jid },
        x('x', { xmlns: NS.MUC_USER }, x('item', { affiliation: 'none', role: 'none' }), d, o.jids.includes(jid) ? x('status', { code: '110' }) : null)));
    }
  }
  log('info', `room ${ctx.jid} destroyed`);
  unlistRoom(ctx, true);
  exit('normal');
  return { ...ctx, exists: false, occupants: {} };
}

/** Someone is removed by a moderator or an affiliation change: `codes` say why (301 ban, 307 kick,
 *  321 no longer a member, 322 members-only). */
function removeOccupant(ctx: RoomCtx, o: Occupant, codes: string[], actor: string | null, reason: string | null): RoomCtx {
  const { [o.nick]: _, ...occupants } = ctx.occupants;
  void _;
  const extra: XmlNode[] = [actor ? x('actor', { nick: actor }) : null, reason ? x('reason', null, reason) : null].filter((n): n is XmlElement => n !== null);
  for (const jid of o.jids) routeElement(presenceStanza(ctx, o, jid, true, ['110', ...codes], 'unavailable', [], extra));
  const next = { ...ctx, occupants };
  broadcastPresence(next, { ...o, role: 'none' }, [], [], 'unavailable', codes, extra);
  return next;
}

function adminList(ctx: RoomCtx, s: MucSettings, st: XmlElement, q: XmlElement, full: string, affiliation: Affiliation): RoomCtx {
  const item = q.child('item', NS.MUC_ADMIN);
  const wantAff = item?.attr('affiliation') as Affiliation | undefined;
  const wantRole = item?.attr('role') as Role | undefined;
  const me = ctx.occupants[nickOf(ctx, full) ?? ''];
  if (wantAff && ['owner', 'admin', 'member', 'outcast'].includes(wantAff)) {
    if (!atLeast(affiliation, 'admin')) { fail(st, 'auth', 'forbidden', 'only admins and owners see affiliation lists'); return ctx; }
    const jids = [...Object.entries(ctx.affiliations).filter(([, a]) => a === wantAff).map(([j]) => j), ...(wantAff === 'owner' ? s.admins : [])];
    routeElement(iqResultElement(st, x('query', { xmlns: NS.MUC_ADMIN }, [...new Set(jids)].map((jid) => x('item', { jid, affiliation: wantAff, nick: Object.values(ctx.occupants).find((o) => o.bare === jid)?.nick })))));
    return ctx;
  }
  if (wantRole && ['moderator', 'participant', 'visitor'].includes(wantRole)) {
    if (me?.role !== 'moderator') { fail(st, 'auth', 'forbidden', 'only moderators see role lists'); return ctx; }
    const list = Object.values(ctx.occupants).filter((o) => o.role === wantRole);
    routeElement(iqResultElement(st, x('query', { xmlns: NS.MUC_ADMIN }, list.map((o) => x('item', { nick: o.nick, role: o.role, affiliation: affiliationOf(ctx, s, o.bare), jid: o.jids[0] })))));
    return ctx;
  }
  fail(st, 'modify', 'bad-request', 'ask for one affiliation or one role');
  return ctx;
}

/** §8-§10: role changes by nick (kick, voice, moderator) and affiliation changes by JID (ban,
 *  member, admin, owner), each checked before any applies. */
function admin(ctx: RoomCtx, s: MucSettings, st: XmlElement, q: XmlElement, full: string, affiliation: Affiliation): RoomCtx {
  const items = q.getChildren('item', NS.MUC_ADMIN);
  if (items.length === 0) { fail(st, 'modify', 'bad-request', 'no item'); return ctx; }
  const me = ctx.occupants[nickOf(ctx, full) ?? ''];
  const actorNick = me?.nick ?? null;
  type Change = { kind: 'role'; o: Occupant; role: Role; reason: string | null } | { kind: 'aff'; jid: string; aff: Affiliation; reason: string | null };
  const changes: Change[] = [];
  for (const item of items) {
    const reason = item.getChildText('reason', NS.MUC_ADMIN) ?? null;
    const role = item.attr('role') as Role | undefined;
    const aff = item.attr('affiliation') as Affiliation | undefined;
    if (role !== undefined && aff === undefined) {
      if (!['moderator', 'participant', 'visitor', 'none'].includes(role)) { fail(st, 'modify', 'bad-request', `unknown role ${role}`); return ctx; }
      const o = ctx.occupants[item.attr('nick') ?? ''];
      if (!o) { fail(st, 'cancel', 'item-not-found', `nobody called ${item.attr('nick')} is in this room`); return ctx; }
      if (me?.role !== 'moderator') { fail(st, 'auth', 'forbidden', 'only moderators change roles'); return ctx; }
      if (role === 'moderator' && !atLeast(affiliation, 'admin')) { fail(st, 'auth', 'forbidden', 'only admins and owners make moderators'); return ctx; }
      const theirs = affiliationOf(ctx, s, o.bare);
      if ((role === 'none' || role === 'visitor' || (role === 'participant' && o.role === 'moderator')) && atLeast(theirs, 'admin') && !outranks(affiliation, theirs)) {
        fail(st, 'cancel', 'not-allowed', `${o.nick} is an ${theirs} of this room`); return ctx;
      }
      changes.push({ kind: 'role', o, role, reason });
    } else if (aff !== undefined) {
      if (!['owner', 'admin', 'member', 'outcast', 'none'].includes(aff)) { fail(st, 'modify', 'bad-request', `unknown affiliation ${aff}`); return ctx; }
      const jid = tryParseJid(item.attr('jid') ?? '') ?? (item.attr('nick') ? tryParseJid(ctx.occupants[item.attr('nick')!]?.bare ?? '') : undefined);
      if (!jid) { fail(st, 'modify', 'jid-malformed', 'an affiliation change needs a valid jid'); return ctx; }
      const bare = jid.toBareString();
      const theirs = affiliationOf(ctx, s, bare);
      if (!atLeast(affiliation, 'admin')) { fail(st, 'auth', 'forbidden', 'only admins and owners change affiliations'); return ctx; }
      if ((aff === 'owner' || aff === 'admin' || theirs === 'owner' || theirs === 'admin') && affiliation !== 'owner') {
        fail(st, 'auth', 'forbidden', 'only owners make or unmake admins and owners'); return ctx;
      }
      if (s.admins.includes(bare) && aff !== 'owner') { fail(st, 'cancel', 'not-allowed', `${bare} is an admin of the service`); return ctx; }
      const owners = Object.entries(ctx.affiliations).filter(([, a]) => a === 'owner').map(([j]) => j);
      if (theirs === 'owner' && aff !== 'owner' && owners.length === 1 && owners[0] === bare) {
        fail(st, 'cancel', 'conflict', 'a room keeps at least one owner'); return ctx;
      }
      changes.push({ kind: 'aff', jid: bare, aff, reason });
    } else { fail(st, 'modify', 'bad-request', 'an item names a role or an affiliation'); return ctx; }
  }
  routeElement(iqResultElement(st));
  let next = ctx;
  for (const c of changes) {
    if (c.kind === 'role') {
      const o = next.occupants[c.o.nick];
      if (!o) continue;
      if (c.role === 'none') { next = removeOccupant(next, o, ['307'], actorNick, c.reason); continue; }
      next = withOccupant(next, { ...o, role: c.role });
      broadcastPresence(next, next.occupants[o.nick]!, []);
      continue;
    }
    const affiliations = { ...next.affiliations };
    if (c.aff === 'none') delete affiliations[c.jid]; else affiliations[c.jid] = c.aff;
    next = { ...next, affiliations };
    for (const o of Object.values(next.occupants).filter((oc) => oc.bare === c.jid)) {
      if (c.aff === 'outcast') next = removeOccupant(next, o, ['301'], actorNick, c.reason);
      else if (next.config.membersOnly && c.aff === 'none') next = removeOccupant(next, o, ['321'], actorNick, c.reason);
      else {
        next = withOccupant(next, { ...o, role: roleOnEntry(next, affiliationOf(next, s, o.bare)) });
        broadcastPresence(next, next.occupants[o.nick]!, []);
      }
    }
  }
  return next;
}

/** Whether `nick` is registered in the room to someone other than `bare`. */
const registeredBy = (ctx: RoomCtx, nick: string, bare: string): boolean =>
  Object.entries(ctx.nicks ?? {}).some(([owner, n]) => n === nick && owner !== bare);

/**
 * §7.10: registering a nickname with the room (which makes the registrant a member), reading it back,
 * and cancelling it (<remove/>, which ends the membership).
 */
function register(ctx: RoomCtx, st: XmlElement, q: XmlElement, bare: string, affiliation: Affiliation): RoomCtx {
  const mine = ctx.nicks?.[bare];
  if (st.attr('type') === 'get') {
    if (mine) { routeElement(iqResultElement(st, x('query', { xmlns: NS.REGISTER }, x('registered'), x('username', null, mine)))); return ctx; }
    routeElement(iqResultElement(st, x('query', { xmlns: NS.REGISTER },
      x('instructions', null, 'Register a nickname: nobody else enters this room under it.'),
      dataForm({ type: 'form', title: `Nickname in ${ctx.jid}`, formType: MUC_REGISTER }, [{ var: 'muc#register_roomnick', type: 'text-single', label: 'Nickname' }]))));
    return ctx;
  }
  if (affiliation === 'outcast') { fail(st, 'auth', 'forbidden', 'you are banned from this room'); return ctx; }
  if (q.child('remove', NS.REGISTER)) {
    if (!mine) { fail(st, 'cancel', 'item-not-found', 'no nickname of yours is registered here'); return ctx; }
    const { [bare]: _, ...nicks } = ctx.nicks ?? {};
    void _;
    const affiliations = { ...ctx.affiliations };
    if (affiliations[bare] === 'member') delete affiliations[bare];
    routeElement(iqResultElement(st));
    return { ...ctx, nicks, affiliations };
  }
  const form = readForm(q);
  const nick = form ? formText(form, 'muc#register_roomnick') : q.getChildText('username', NS.REGISTER);
  let prepared: string | undefined;
  try { prepared = nick ? prepareResourcepart(nick) : undefined; } catch { prepared = undefined; }
  if (!prepared) { fail(st, 'modify', 'not-acceptable', 'a nickname is needed, and it must be a valid one'); return ctx; }
  const inUse = ctx.occupants[prepared];
  if (registeredBy(ctx, prepared, bare) || (inUse && inUse.bare !== bare)) { fail(st, 'cancel', 'conflict', 'that nickname is taken in this room'); return ctx; }
  if (ctx.config.membersOnly && !atLeast(affiliation, 'member') && !ctx.config.allowInvites) { fail(st, 'cancel', 'not-allowed', 'members are made by the room\'s admins here'); return ctx; }
  routeElement(iqResultElement(st));
  return { ...ctx, nicks: { ...ctx.nicks, [bare]: prepared }, affiliations: atLeast(affiliation, 'member') ? ctx.affiliations : { ...ctx.affiliations, [bare]: 'member' } };
}

const withOccupant = (ctx: RoomCtx, o: Occupant): RoomCtx => ({ ...ctx, occupants: { ...ctx.occupants, [o.nick]: o } });

// ---- the service's own address --------------------------------------------------------------------

function serviceStanza(st: XmlElement, to: Jid): void {
  if (st.name !== 'iq') { if (st.name === 'message') fail(st, 'cancel', 'service-unavailable', 'send to a room, not to the service'); return; }
  const type = st.attr('type');
  if (type !== 'get' && type !== 'set') return;
  const payload = st.getChildren()[0];
  const ns = payload?.getXmlns();
  if (type === 'get' && ns === NS.DISCO_INFO && payload!.attr('node') === undefined) {
    const name = xmpp().modules.service(to.domain)?.name ?? 'Chatrooms';
    routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_INFO },
      x('identity', { category: 'conference', type: 'text', name }),
      [NS.MUC, NS.DISCO_INFO, NS.DISCO_ITEMS, NS.OCCUPANT_ID, NS.MUC_SELF_PING, NS.MUC_STABLE_ID].map((v) => x('feature', { var: v })))));
    return;
  }
  if (type === 'get' && ns === NS.DISCO_ITEMS && payload!.attr('node') === undefined) {
    // The public rooms, from the service's list (rooms asleep on disk included): a read, then the answer.
    suspend(xmpp().storage.range<{ name: string; public: boolean }>(roomKeys.of(to.domain)).then((rows) => {
      routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_ITEMS },
        rows.filter(([, r]) => r.public).map(([k, r]) => x('item', { jid: `${unescapeLast(k)}@${to.domain}`, name: r.name })))));
    }, (err: Error) => { log('warn', `${to.domain}: rooms not listed: ${err.message}`); fail(st, 'wait', 'internal-server-error'); }));
    return;
  }
  if (type === 'get' && ns === NS.PING) { routeElement(iqResultElement(st)); return; }
  fail(st, 'cancel', 'service-unavailable');
}

// ---- the operator's questions (chorus rooms, chorus room info|destroy) -------------------------------

/** What the operator asks a room, or the service's own actor; the answer goes to `reply`. */
export type RoomOperatorRequest = { type: 'operator'; command: 'rooms' | 'info' | 'destroy'; reason?: string; reply: string };
export type OperatorAnswer = { ok: true; result: unknown } | { ok: false; error: string };

export function onOperator(ctx: RoomCtx, m: RoomOperatorRequest): RoomCtx {
  const answer = (a: OperatorAnswer) => send(m.reply, a);
  const jid = parseJid(ctx.jid);
  if (jid.local === '') {
    if (m.command !== 'rooms') { answer({ ok: false, error: `${ctx.jid} is the service, not a room` }); return ctx; }
    // Every room the service knows (asleep on disk or live): its list, written as rooms are made.
    suspend(xmpp().storage.range<{ name: string; public: boolean; persistent: boolean }>(roomKeys.of(jid.domain)).then(
      (rows) => answer({ ok: true, result: rows.map(([k, r]) => ({ room: `${unescapeLast(k)}@${jid.domain}`, name: r.name, public: r.public, persistent: r.persistent })) }),
      (err: Error) => answer({ ok: false, error: `the list of rooms could not be read: ${err.message}` })));
    return ctx;
  }
  if (!ctx.exists) {
    // Started by this question: there is no such room, and nothing of it is kept.
    answer({ ok: false, error: `no room ${ctx.jid}` });
    exit('normal');
    return ctx;
  }
  if (m.command === 'destroy') {
    const reason = m.reason ? x('reason', { xmlns: NS.MUC_OWNER }, m.reason) : null;
    const next = destroyRoom(ctx, x('destroy', { xmlns: NS.MUC_OWNER }, reason));
    answer({ ok: true, result: { destroyed: ctx.jid, occupants: Object.keys(ctx.occupants).length } });
    return next;
  }
  if (m.command === 'info') {
    const s = settingsOf(ctx);
    answer({ ok: true, result: {
      room: ctx.jid, locked: ctx.locked, ...ctx.config, password: ctx.config.password ? '(set)' : '',
      subject: ctx.subject?.text ?? '',
      occupants: Object.values(ctx.occupants).map((o) => ({ nick: o.nick, jid: o.bare, clients: o.jids.length, role: o.role, affiliation: s ? affiliationOf(ctx, s, o.bare) : 'none' })),
      affiliations: ctx.affiliations,
      history: s?.archive ? 'from the archive' : ctx.history.length,
    } });
    if (Object.keys(ctx.occupants).length === 0) exit('shutdown'); // a persistent room asleep stays asleep
    return ctx;
  }
  answer({ ok: false, error: `a room answers info and destroy, not ${String(m.command)}` });
  return ctx;
}

const unescapeLast = (key: string): string => unescapeKeyPart(key.slice(key.lastIndexOf('!') + 1));

/** The service's list of rooms (disco#items): written when a room is made or configured. The room
 *  waits for the write (suspend), so its answer follows it. */
function listRoom(ctx: RoomCtx): void {
  const jid = parseJid(ctx.jid);
  suspend(xmpp().storage.put(roomKeys.room(jid.domain, jid.local), { name: ctx.config.name, public: ctx.config.public && !ctx.locked, persistent: ctx.config.persistent })
    .catch((err: Error) => log('warn', `${ctx.jid}: not listed: ${err.message}`)));
}

/** Off the service's list; a room that ends takes its archive with it. */
function unlistRoom(ctx: RoomCtx, withArchive: boolean): void {
  const jid = parseJid(ctx.jid);
  const storage = xmpp().storage;
  suspend(Promise.all([storage.del(roomKeys.room(jid.domain, jid.local)), withArchive ? removeArchive(storage, roomArchive, ctx.jid) : null])
    .catch((err: Error) => log('warn', `${ctx.jid}: not unlisted: ${err.message}`)));
}
