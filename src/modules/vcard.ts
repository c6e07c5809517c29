// vCard-temp (XEP-0054): an account's business card, which its own clients set and anyone may read
// (clients show names and vCard avatars, XEP-0153, from it; a room passes a request for an
// occupant's on to the occupant's account).
import { serialize, x } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule, type IqRequest } from '../xmpp/module.ts';
import { keyOf } from '../storage/db.ts';

const MODULE = 'vcard';

export const vcardKeys = { of: (bare: string) => keyOf(MODULE, bare) };

const options = {
  max_bytes: { type: 'number', default: 262_144, min: 1024, max: 16_777_216, doc: 'The largest vCard an account may keep (avatars make them big), in bytes.' },
} as const;

/** Anyone's read of an account's vCard: the stored one, or item-not-found (XEP-0054 §3.1). */
async function read(iq: IqRequest): Promise<void> {
  const stored = await iq.storage.get<string>(vcardKeys.of(iq.user!.jid.toBareString()));
  if (stored === undefined) { iq.error('item-not-found', 'cancel', 'no vCard'); return; }
  iq.reply(parseElement(stored, NS.VCARD));
}

export default defineModule({
  name: MODULE,
  description: 'vCard-temp (XEP-0054): an account\'s vCard, set by its own clients, read by anyone.',
  xeps: [{ xep: 54, version: '1.2', status: 'complete' }],
  features: { account: [NS.VCARD] },
  storage: [MODULE],
  options,
  setup(m) {
    m.iq('get', 'self', NS.VCARD, read);
    m.iq('get', 'bare', NS.VCARD, read);
    m.iq('set', 'self', NS.VCARD, async (iq) => {
      if (iq.payload.localName !== 'vCard') { iq.error('bad-request', 'modify', 'expected <vCard xmlns=\'vcard-temp\'/>'); return; }
      const xml = serialize(x('vCard', { xmlns: NS.VCARD }, iq.payload.children));
      const max = m.optionsFor(iq.host).max_bytes;
      if (Buffer.byteLength(xml) > max) { iq.error('not-acceptable', 'modify', `a vCard is at most ${max} bytes here`); return; }
      await iq.storage.put(vcardKeys.of(iq.from.toBareString()), xml);
      iq.reply();
    });
    m.iq('set', 'bare', NS.VCARD, (iq) => { iq.error('forbidden', 'auth', 'only the account itself sets its vCard'); });
    m.hook('user/deleted', async (ev) => { await ev.storage.del(vcardKeys.of(ev.jid.toBareString())); });
  },
});
