// vCard-temp (XEP-0054): an account's business card, which its own clients set and anyone may read
// (clients show names and vCard avatars, XEP-0153, from it; a room passes a request for an
// occupant's on to the occupant's account).
//
// Kept in step with the account's PEP avatar (XEP-0398): an avatar a client publishes (XEP-0084)
// becomes the vCard's PHOTO, a PHOTO set by a vCard client is published as the avatar, and every
// available presence the account sends carries the avatar's hash (<x xmlns='vcard-temp:x:update'/>),
// so clients that read vCards (and rooms, which pass the hash on) see the same picture.
//
// vCard4 (XEP-0292) is read from the same card: by IQ, and in PEP at urn:xmpp:vcard4 (published on
// each change, so contacts' clients that follow vCard4 get a notification).
import { createHash } from 'node:crypto';
import { serialize, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { andThen, defineModule, type IqRequest, type PresenceEvent, type StanzaContext, type UserContext } from '../xmpp/module.ts';
import { keyOf } from '../storage/db.ts';
import type { PepApi, PepPublishedEvent } from './pep.ts';
import { vcard4Of } from './vcard-map.ts';

const MODULE = 'vcard';

export const vcardKeys = { of: (bare: string) => keyOf(MODULE, bare) };

const options = {
  max_bytes: { type: 'number', default: 262_144, min: 1024, max: 16_777_216, doc: 'The largest vCard an account may keep (avatars make them big), in bytes.' },
} as const;

/** The hash (SHA-1, hex) of the account's avatar, '' for none; kept in the user actor, so a presence
 *  needs no read. Absent until first needed (then read from the stored vCard once). */
interface State { photo?: string }

type Ctx = StanzaContext & { user: UserContext };
interface Photo { type: string; base64: string; sha1: string; bytes: number }

/** Anyone's read of an account's vCard: the stored one, or item-not-found (XEP-0054 §3.1). */
async function read(iq: IqRequest): Promise<void> {
  const stored = await iq.storage.get<string>(vcardKeys.of(iq.user!.jid.toBareString()));
  if (stored === undefined) { iq.error('item-not-found', 'cancel', 'no vCard'); return; }
  iq.reply(parseElement(stored, NS.VCARD));
}

/** XEP-0292: the card in vCard4, an empty <vcard/> for none. */
async function read4(iq: IqRequest): Promise<void> {
  const stored = await iq.storage.get<string>(vcardKeys.of(iq.user!.jid.toBareString()));
  iq.reply(vcard4Of(stored === undefined ? undefined : parseElement(stored, NS.VCARD)));
}

/** A vCard's PHOTO, if it holds an image (BINVAL; an EXTVAL link is no avatar to convert). */
function photoOf(vcard: XmlElement): Photo | undefined {
  const photo = vcard.child('PHOTO', NS.VCARD);
  const base64 = photo?.getChildText('BINVAL', NS.VCARD)?.replace(/\s+/g, '');
  if (!base64) return undefined;
  const data = Buffer.from(base64, 'base64');
  if (data.length === 0) return undefined;
  return { type: photo!.getChildText('TYPE', NS.VCARD)?.trim() || 'image/png', base64, sha1: sha1(data), bytes: data.length };
}

const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex');

const photoState = (user: UserContext): State => user.state<State>(MODULE, () => ({}));

/** The avatar's hash, read from the stored vCard the first time it is asked for. */
function avatarHash(ctx: Ctx): string | Promise<string> {
  const known = photoState(ctx.user).photo;
  if (known !== undefined) return known;
  return ctx.storage.get<string>(vcardKeys.of(ctx.user.jid.toBareString())).then((stored) => {
    const hash = stored === undefined ? '' : photoOf(parseElement(stored, NS.VCARD))?.sha1 ?? '';
    ctx.user.setState<State>(MODULE, { photo: hash });
    return hash;
  });
}

/**
 * XEP-0398 §4: the hash in every available presence the account sends, unless its client says it
 * has no avatar to show (an empty <photo/>); an <x/> without a photo, or with another hash, is
 * replaced. Nothing is added while the account has no avatar.
 */
function withAvatarHash(ev: PresenceEvent & { resource: string }): false | Promise<false> {
  if (ev.stanza.attr('type') !== undefined) return false;
  return andThen(avatarHash(ev), (hash): false => {
    if (hash === '') return false;
    const st = ev.stanza;
    const update = st.child('x', NS.VCARD_UPDATE);
    const photo = update?.child('photo', NS.VCARD_UPDATE);
    if (photo && photo.text() === '') return false;
    if (photo?.text() === hash) return false;
    const mark = x('x', { xmlns: NS.VCARD_UPDATE }, x('photo', null, hash));
    ev.stanza = st.withChildren([...st.children.filter((c) => c !== update), mark]);
    return false;
  });
}

/** §3.1: a client published avatar metadata: the image it names (not a link) becomes the PHOTO. */
async function fromPep(ev: PepPublishedEvent, pep: PepApi, max: number): Promise<void> {
  if (ev.node !== NS.AVATAR_METADATA) return;
  const owner = ev.user.jid.toBareString();
  const info = ev.payload.getChildren('info', NS.AVATAR_METADATA).find((i) => !i.attr('url'));
  const stored = await ev.storage.get<string>(vcardKeys.of(owner));
  const vcard = stored === undefined ? x('vCard', { xmlns: NS.VCARD }) : parseElement(stored, NS.VCARD);
  let photo: XmlElement | null = null;
  if (info) {
    const data = (await pep.items(ev.storage, owner, NS.AVATAR_DATA)).find((i) => i.id === info.attr('id'));
    const base64 = data?.payload.text().replace(/\s+/g, '') ?? '';
    const bytes = Buffer.from(base64, 'base64');
    // The id is the image's SHA-1 (XEP-0084): anything else is not the image the metadata names.
    if (!data || bytes.length === 0 || sha1(bytes) !== info.attr('id')?.toLowerCase()) {
      ev.log('info', `avatar ${info.attr('id')} not put in the vCard: its data is not published, or its hash is not its id`);
      return;
    }
    photo = x('PHOTO', null, x('TYPE', null, info.attr('type') ?? 'image/png'), x('BINVAL', null, base64));
  }
  const hash = info ? info.attr('id')!.toLowerCase() : '';
  if (photoState(ev.user).photo === hash) return;
  const next = serialize(x('vCard', { xmlns: NS.VCARD }, vcard.children.filter((c) => typeof c === 'string' || c.localName !== 'PHOTO'), photo));
  if (Buffer.byteLength(next) > max) { ev.log('info', `avatar ${hash} not put in the vCard: it would be over ${max} bytes`); return; }
  await ev.storage.put(vcardKeys.of(owner), next);
  ev.user.setState<State>(MODULE, { photo: hash });
}

/** §3.2: a PHOTO set by a vCard client is published as the avatar (data, then metadata); none
 *  where there was one disables it (an empty metadata item). */
async function toPep(ctx: Ctx, photo: Photo | undefined, before: string, pep: PepApi): Promise<void> {
  const hash = photo?.sha1 ?? '';
  if (hash === before) return;
  ctx.user.setState<State>(MODULE, { photo: hash });
  if (photo) {
    await pep.replaceItems(ctx, NS.AVATAR_DATA, [{ id: hash, payload: x('data', { xmlns: NS.AVATAR_DATA }, photo.base64) }], 'open');
    await pep.replaceItems(ctx, NS.AVATAR_METADATA, [{ id: hash, payload: x('metadata', { xmlns: NS.AVATAR_METADATA }, x('info', { bytes: photo.bytes, id: hash, type: photo.type })) }], 'open');
  } else {
    await pep.replaceItems(ctx, NS.AVATAR_METADATA, [{ id: 'none', payload: x('metadata', { xmlns: NS.AVATAR_METADATA }) }], 'open');
  }
}

export default defineModule({
  name: MODULE,
  description: 'vCard-temp (XEP-0054): an account\'s vCard, set by its own clients, read by anyone; its PHOTO in step with the PEP avatar (XEP-0398).',
  xeps: [
    { xep: 54, version: '1.2', status: 'complete' },
    { xep: 153, version: '1.1.1', status: 'complete', note: 'the avatar hash put in the account\'s presence by the server (XEP-0398)' },
    { xep: 398, version: '1.0.0', status: 'complete', note: 'PEP avatar to vCard and back' },
    { xep: 292, status: 'partial', note: 'read: the vcard-temp card in vCard4, by IQ and in PEP (urn:xmpp:vcard4); set in vcard-temp' },
  ],
  features: { account: [NS.VCARD, NS.PEP_VCARD_CONVERSION, NS.VCARD4] },
  storage: [MODULE],
  depends: ['pep'],
  options,
  setup(m) {
    const pep = m.depends<PepApi>('pep');
    m.iq('get', 'self', NS.VCARD, read);
    m.iq('get', 'bare', NS.VCARD, read);
    m.iq('set', 'self', NS.VCARD, async (iq) => {
      if (iq.payload.localName !== 'vCard') { iq.error('bad-request', 'modify', 'expected <vCard xmlns=\'vcard-temp\'/>'); return; }
      const vcard = x('vCard', { xmlns: NS.VCARD }, iq.payload.children);
      const xml = serialize(vcard);
      const max = m.optionsFor(iq.host).max_bytes;
      if (Buffer.byteLength(xml) > max) { iq.error('not-acceptable', 'modify', `a vCard is at most ${max} bytes here`); return; }
      const before = await avatarHash(iq as IqRequest & Ctx);
      await iq.storage.put(vcardKeys.of(iq.from.toBareString()), xml);
      iq.reply();
      const card = parseElement(xml, NS.VCARD);
      await toPep(iq as IqRequest & Ctx, photoOf(card), before, pep);
      await pep.replaceItems(iq as IqRequest & Ctx, NS.PEP_VCARD4, [{ id: 'current', payload: vcard4Of(card) }], 'open');
    });
    m.iq('set', 'bare', NS.VCARD, (iq) => { iq.error('forbidden', 'auth', 'only the account itself sets its vCard'); });
    m.iq('get', 'self', NS.VCARD4, read4);
    m.iq('get', 'bare', NS.VCARD4, read4);
    m.iq('set', 'self', NS.VCARD4, (iq) => { iq.error('feature-not-implemented', 'cancel', 'set the vCard in vcard-temp (XEP-0054); vCard4 is read from it'); });
    m.hook('pep/published', (ev) => fromPep(ev, pep, m.optionsFor(ev.host).max_bytes));
    // Before the presence module sends it anywhere (broadcast, or directed: a room join).
    m.hook('presence/out', (ev) => withAvatarHash(ev), 100);
    m.hook('user/deleted', async (ev) => { await ev.storage.del(vcardKeys.of(ev.jid.toBareString())); });
    // XEP-0227: the vCard as it is stored.
    m.hook('account/export', async (ev) => {
      const xml = await ev.storage.get<string>(vcardKeys.of(ev.jid.toBareString()));
      if (xml !== undefined) ev.add(parseElement(xml, NS.VCARD));
    });
    m.hook('account/import', async (ev) => {
      const card = ev.user.child('vCard', NS.VCARD);
      if (card) await ev.storage.put(vcardKeys.of(ev.jid.toBareString()), serialize(x('vCard', { xmlns: NS.VCARD }, card.children)));
    });
  },
});
