// Last Activity (XEP-0012): asked of the server, how long it has been up; asked of an account by a
// contact that sees its presence (or by the account itself), 0 while it is online, else the seconds
// since it went offline and the status it left with (the presence module's record). Asked of a full
// JID, the question goes to the client, as any IQ does.
import { x } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { defineModule } from '../xmpp/module.ts';
import type { PresenceApi } from './presence.ts';

const started = Date.now();

export default defineModule({
  name: 'last',
  description: 'Last activity (XEP-0012): the server\'s uptime, and when a contact was last online.',
  xeps: [{ xep: 12, version: '2.0', status: 'complete', note: 'server uptime; account offline time for subscribed contacts' }],
  features: { host: [NS.LAST], account: [NS.LAST] },
  depends: ['presence'],
  setup(m) {
    const presence = m.depends<PresenceApi>('presence');
    m.iq('get', 'host', NS.LAST, (iq) => { iq.reply(x('query', { xmlns: NS.LAST, seconds: Math.max(0, Math.floor((iq.now() - started) / 1000)) })); });
    for (const target of ['self', 'bare'] as const) {
      m.iq('get', target, NS.LAST, async (iq) => {
        const user = iq.user!;
        const asker = iq.from.toBareString();
        // §4: only to those allowed to see the account's presence.
        if (asker !== user.jid.toBareString() && !(await presence.subscribed({ ...iq, user }, asker))) { iq.error('forbidden', 'auth', 'for contacts that see this account\'s presence'); return; }
        if (user.sessions().some((s) => s.presence !== null)) { iq.reply(x('query', { xmlns: NS.LAST, seconds: 0 })); return; }
        const last = presence.lastUnavailable(user);
        if (!last) { iq.error('service-unavailable', 'cancel', 'no record of when this account was last online'); return; }
        const status = parseElement(last.xml).getChildText('status') ?? undefined;
        iq.reply(x('query', { xmlns: NS.LAST, seconds: Math.max(0, Math.floor((iq.now() - last.at) / 1000)) }, status));
      });
    }
    m.iq('set', 'host', NS.LAST, (iq) => { iq.error('not-allowed'); });
  },
});
