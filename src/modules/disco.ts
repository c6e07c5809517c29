// XEP-0030 Service Discovery. The server (host target) answers disco#info with identity server/im and
// every loaded module's host features, and disco#items with the service domains the loaded modules
// serve on that host and the configured component/service JIDs.
// An account (a user's bare JID, or no 'to' from the user: targets bare and self) answers disco#info
// with identity account/registered and every module's account features (XEP-0030 §3.1 and RFC 6121
// §8.5.1: the server answers for the account), and disco#items with no items.
// The feature lists come from the loader (`m.features()`), read at request time. A request for a
// node goes to the module that publishes it (the 'disco/node' hook: ad-hoc commands).
import { x } from '../xml/builder.ts';
import type { IqRequest } from '../xmpp/module.ts';
import { andThen, defineModule } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';
import { tryParseJid } from '../xmpp/jid.ts';
import { dataForm } from '../xmpp/forms.ts';

const SERVERINFO = 'http://jabber.org/network/serverinfo';

const OWN_HOST = [NS.DISCO_INFO, NS.DISCO_ITEMS];
const OWN_ACCOUNT = [NS.DISCO_INFO];

const options = {
  name: { type: 'string', default: 'Chorus', doc: "The 'name' of the server's disco#info identity (category server, type im)." },
  items: { type: 'strings', default: [] as string[], doc: 'JIDs of components and services listed in disco#items on every host (e.g. conference.example.com).' },
  // XEP-0157: who to reach about the server, as URIs (mailto:, xmpp:, https:).
  abuse_addresses: { type: 'strings', default: [] as string[], doc: 'Where abuse is reported (XEP-0157), e.g. "mailto:abuse@example.org".' },
  admin_addresses: { type: 'strings', default: [] as string[], doc: 'The server\'s administrators (XEP-0157), e.g. "xmpp:admin@example.org".' },
  feedback_addresses: { type: 'strings', default: [] as string[], doc: 'Where feedback goes (XEP-0157).' },
  security_addresses: { type: 'strings', default: [] as string[], doc: 'Where security problems are reported (XEP-0157).' },
  status_addresses: { type: 'strings', default: [] as string[], doc: 'Where the server\'s status is published (XEP-0157).' },
  support_addresses: { type: 'strings', default: [] as string[], doc: 'Where users get help (XEP-0157).' },
} as const;

const CONTACT_KINDS = ['abuse', 'admin', 'feedback', 'security', 'status', 'support'] as const;

export default defineModule({
  name: 'disco',
  description: 'Service discovery (XEP-0030): server and account identities and features, server items.',
  xeps: [
    { xep: 30, version: '2.5rc3', status: 'complete', note: 'info and items; nodes answered by the modules that publish them' },
    { xep: 157, version: '1.1.1', status: 'complete', note: 'contact addresses from the options, as XEP-0128 extended info' },
  ],
  features: { host: OWN_HOST, account: OWN_ACCOUNT },
  options,
  setup(m) {
    // Each host's items, checked once: a host may list its own services (modules.hosts.<host>.disco).
    const itemsOf = new Map(m.hosts.map((host) => [host, m.optionsFor(host).items.map((s) => {
      const jid = tryParseJid(s);
      if (!jid) throw new Error(`config error: modules.options.disco.items (for ${host}): '${s}' is not a valid JID`);
      return jid.toString();
    })]));
    const featureVars = (kind: 'host' | 'account'): string[] => {
      const out = new Set<string>(kind === 'host' ? OWN_HOST : OWN_ACCOUNT);
      for (const f of m.features()[kind]) out.add(f);
      return [...out].sort();
    };

    // A request for a node goes to the module that publishes it (disco/node); a node nobody
    // publishes is item-not-found (XEP-0030 §3.1, §4.1).
    const node = (iq: IqRequest, query: 'info' | 'items', target: 'host' | 'account'): void | Promise<void> => {
      const name = iq.payload.attr('node')!;
      return andThen(m.fire('disco/node', { ...iq, node: name, query, target }), (answered) => { if (!answered) iq.error('item-not-found'); });
    };
    const hasNode = (iq: IqRequest): boolean => iq.payload.attr('node') !== undefined;

    const hostInfo = (iq: IqRequest) => {
      if (hasNode(iq)) return node(iq, 'info', 'host');
      const o = m.optionsFor(iq.host);
      const contacts = CONTACT_KINDS.filter((k) => o[`${k}_addresses`].length > 0);
      iq.reply(x('query', { xmlns: NS.DISCO_INFO },
        x('identity', { category: 'server', type: 'im', name: o.name }),
        m.identities().host.map((i) => x('identity', { ...i })),
        featureVars('host').map((f) => x('feature', { var: f })),
        // XEP-0157 as XEP-0128 extended information: only when the operator named someone.
        contacts.length ? dataForm({ type: 'result', formType: SERVERINFO }, contacts.map((k) => ({ var: `${k}-addresses`, type: 'list-multi' as const, value: o[`${k}_addresses`] }))) : null));
    };
    const hostItems = (iq: IqRequest) => {
      if (hasNode(iq)) return node(iq, 'items', 'host');
      const services = m.services(iq.host).map((sd) => x('item', { jid: sd.domain, name: sd.name }));
      iq.reply(x('query', { xmlns: NS.DISCO_ITEMS }, services, (itemsOf.get(iq.host) ?? []).map((jid) => x('item', { jid }))));
    };
    const accountInfo = (iq: IqRequest) => {
      if (hasNode(iq)) return node(iq, 'info', 'account');
      iq.reply(x('query', { xmlns: NS.DISCO_INFO },
        x('identity', { category: 'account', type: 'registered' }),
        m.identities().account.map((i) => x('identity', { ...i })),
        featureVars('account').map((f) => x('feature', { var: f }))));
    };
    const accountItems = (iq: IqRequest) => {
      if (hasNode(iq)) return node(iq, 'items', 'account');
      iq.reply(x('query', { xmlns: NS.DISCO_ITEMS }));
    };
    // Nothing here can be set: RFC 6120 §8.3.3.11, "does not allow any entity to perform the action".
    const readOnly = (iq: IqRequest) => iq.error('not-allowed');

    m.iq('get', 'host', NS.DISCO_INFO, hostInfo);
    m.iq('get', 'host', NS.DISCO_ITEMS, hostItems);
    for (const target of ['bare', 'self'] as const) {
      m.iq('get', target, NS.DISCO_INFO, accountInfo);
      m.iq('get', target, NS.DISCO_ITEMS, accountItems);
    }
    for (const target of ['host', 'bare', 'self'] as const) {
      m.iq('set', target, NS.DISCO_INFO, readOnly);
      m.iq('set', target, NS.DISCO_ITEMS, readOnly);
    }
  },
});
