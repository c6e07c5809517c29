// XEP-0280 Message Carbons (v1.0, with its "carbons:rules:0" eligibility), on the route hooks alone:
// a resource enables or disables copies for itself; a message to the account that some of its
// resources did not get reaches the others as a <received/> copy (on `message/delivered`, which
// names the resources that got it), and a message one resource sends reaches the others as a <sent/>
// copy (on `pre-message/*`, in the sender's user actor, which sees every session). No copies of a
// message marked <private/> (XEP-0280 §7) or <no-copy/> (XEP-0334 §4.4), of group chat or of what a
// MUC service sends. The marker stays on the delivered message (§7 says SHOULD remove): the copies
// are decided after delivery, on the stanza delivered. The enabled resources live in the user
// actor's state.
import { x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule, type OutboundEvent, type UserContext } from '../xmpp/module.ts';

const MODULE = 'carbons';
const RULES = 'urn:xmpp:carbons:rules:0';

/** The resources that enabled carbons. */
type CarbonsState = string[];
const NONE: CarbonsState = [];
const enabledOf = (user: UserContext): CarbonsState => user.state<CarbonsState>(MODULE, () => NONE);

/**
 * XEP-0280 §6: chat, and normal with a body; never group chat, errors (their correlation is not
 * tracked), messages from a MUC (private messages carry muc#user), copies themselves, or what the
 * sender asked not to copy.
 */
export function eligible(stanza: XmlElement): boolean {
  const type = stanza.attr('type') ?? 'normal';
  if (type !== 'chat' && !(type === 'normal' && stanza.child('body', NS.CLIENT))) return false;
  for (const c of stanza.getChildren()) {
    const ns = c.getXmlns();
    if (ns === NS.CARBONS || ns === NS.MUC_USER || (ns === NS.HINTS && c.localName === 'no-copy')) return false;
  }
  return true;
}

/** The copy for `resource`: from the bare JID, the original forwarded inside (XEP-0297). */
function copy(user: UserContext, resource: string, direction: 'sent' | 'received', original: XmlElement): XmlElement {
  const bare = user.jid.toBareString();
  return x('message', { from: bare, to: `${bare}/${resource}`, type: original.attr('type') ?? 'normal' },
    x(direction, { xmlns: NS.CARBONS }, x('forwarded', { xmlns: NS.FORWARD }, original.withAttrs({ xmlns: NS.CLIENT }))));
}

/** Copies to the enabled resources, but those in `except`. Cheap when none is enabled: the chat
 *  path of accounts without carbons parses nothing. */
function copyTo(user: UserContext, except: readonly string[], direction: 'sent' | 'received', stanza: () => XmlElement): void {
  const to = enabledOf(user).filter((r) => !except.includes(r) && user.session(r));
  if (to.length === 0) return;
  const original = stanza();
  if (!eligible(original)) return;
  for (const r of to) void user.deliver(r, copy(user, r, direction, original));
}

/** Asking twice is no error (§10.1). */
function setEnabled(user: UserContext, resource: string, want: boolean): void {
  const on = enabledOf(user);
  if (want !== on.includes(resource)) user.setState(MODULE, want ? [...on, resource] : on.filter((r) => r !== resource));
}

/** A message one of the account's clients sends (not one the server sends for it). */
function sent(ev: OutboundEvent): void {
  if (ev.resource !== undefined) copyTo(ev.user, [ev.resource], 'sent', () => ev.stanza);
}

export default defineModule({
  name: MODULE,
  description: 'Message Carbons (XEP-0280): every resource of an account sees both sides of its chats',
  xeps: [
    { xep: 280, version: '1.0.1', status: 'complete', note: 'carbons:rules:0 eligibility; errors are not copied' },
    { xep: 334, version: '0.3.0', status: 'partial', note: 'no-copy (and carbons\' private) honoured here; store/no-store in offline' },
  ],
  features: { host: [NS.CARBONS, RULES] },
  // XEP-0386: a client may turn carbons on inside its Bind 2 request.
  bind2: [NS.CARBONS],
  setup(m) {
    m.iq('set', 'self', NS.CARBONS, (iq) => {
      const want = iq.payload.localName === 'enable';
      if (!want && iq.payload.localName !== 'disable') { iq.error('bad-request', 'modify', `unknown carbons request <${iq.payload.localName}/>`); return; }
      setEnabled(iq.user!, iq.from.resource, want);
      iq.reply();
    });
    m.hook('session/bound', (ev) => {
      if (ev.bind2?.inline.some((e) => e.localName === 'enable' && e.getXmlns() === NS.CARBONS)) setEnabled(ev.user, ev.resource, true);
    });
    for (const target of ['bare', 'full'] as const) m.hook(`pre-message/${target}`, sent);
    m.hook('message/delivered', (ev) => { copyTo(ev.user, ev.resources, 'received', () => ev.stanza); });
    m.hook('session/unbound', (ev) => setEnabled(ev.user, ev.resource, false));
  },
});
