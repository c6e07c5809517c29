// External Service Discovery (XEP-0215): the STUN and TURN servers the operator names, so clients can
// set up calls (Jingle). With a secret shared with the TURN server (coturn's use-auth-secret, the
// "TURN REST" scheme), each account gets credentials that expire: username "<expiry>:<account>",
// password base64(HMAC-SHA1(secret, username)).
import { createHmac } from 'node:crypto';
import { x } from '../xml/builder.ts';
import { defineModule, type IqRequest } from '../xmpp/module.ts';

const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const options = {
  services: { type: 'strings', default: [] as string[], doc: 'STUN/TURN servers as URIs (RFC 7064/7065), e.g. "turn:turn.example.org:3478?transport=udp", "stun:turn.example.org".' },
  secret: { type: 'string', default: '', doc: 'The secret shared with the TURN server (coturn static-auth-secret); empty: no credentials are handed out.' },
  ttl_seconds: { type: 'number', default: 86_400, min: 60, max: 31_536_000, doc: 'How long handed-out TURN credentials stay valid.' },
} as const;

interface Service { type: 'stun' | 'stuns' | 'turn' | 'turns'; host: string; port: number; transport?: 'udp' | 'tcp' }

/** A STUN/TURN URI (RFC 7064/7065); throws a config error naming it. */
export function parseServiceUri(uri: string, where: string): Service {
  const m = /^(stuns?|turns?):([^:?/\s]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(uri);
  if (!m) throw new Error(`config error: ${where}: '${uri}' is not a STUN/TURN URI (stun:host[:port], turn:host[:port][?transport=udp|tcp])`);
  const type = m[1] as Service['type'];
  const port = m[3] ? Number(m[3]) : type.endsWith('s') ? 5349 : 3478;
  if (port < 1 || port > 65535) throw new Error(`config error: ${where}: '${uri}': port ${port} is out of range`);
  return { type, host: m[2]!, port, ...(m[4] ? { transport: m[4] as 'udp' | 'tcp' } : {}) };
}

export default defineModule({
  name: 'external_services',
  description: 'External service discovery (XEP-0215): STUN/TURN for calls, with expiring TURN credentials.',
  xeps: [{ xep: 215, version: '1.0.0', status: 'complete', note: 'credentials by the TURN REST scheme (coturn use-auth-secret)' }],
  features: { host: [NS_EXTDISCO] },
  options,
  setup(m) {
    const byHost = new Map(m.hosts.map((host) => [host, m.optionsFor(host).services.map((u, i) => parseServiceUri(u, `modules.options.external_services.services[${i}] (for ${host})`))]));

    const element = (iq: IqRequest, s: Service) => {
      const o = m.optionsFor(iq.host);
      const turn = s.type.startsWith('turn') && o.secret !== '';
      const expiry = Math.floor(iq.now() / 1000) + o.ttl_seconds;
      const username = turn ? `${expiry}:${iq.from.toBareString()}` : undefined;
      return x('service', {
        type: s.type, host: s.host, port: s.port, transport: s.transport,
        username, password: username ? createHmac('sha1', o.secret).update(username).digest('base64') : undefined,
        expires: username ? new Date(expiry * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined,
        restricted: username ? '1' : undefined,
      });
    };
    // Only for the server's own accounts: credentials are theirs.
    const local = (iq: IqRequest): boolean => {
      if (iq.user) return true;
      iq.error('forbidden', 'auth', 'for accounts of this server');
      return false;
    };

    m.iq('get', 'host', NS_EXTDISCO, (iq) => {
      if (!local(iq)) return;
      const services = byHost.get(iq.host) ?? [];
      if (iq.payload.localName === 'credentials') {
        const want = iq.payload.child('service', NS_EXTDISCO);
        const s = services.find((sv) => sv.host === want?.attr('host') && (!want?.attr('type') || sv.type === want.attr('type')));
        if (!s) { iq.error('item-not-found', 'cancel', 'no such service'); return; }
        iq.reply(x('credentials', { xmlns: NS_EXTDISCO }, element(iq, s)));
        return;
      }
      const type = iq.payload.attr('type');
      iq.reply(x('services', { xmlns: NS_EXTDISCO, type }, services.filter((s) => !type || s.type === type).map((s) => element(iq, s))));
    });
    m.iq('set', 'host', NS_EXTDISCO, (iq) => { iq.error('not-allowed', 'cancel', 'the services are the operator\'s to set'); });
  },
});
