// XEP-0199 XMPP Ping, client-to-server: an IQ get with <ping xmlns='urn:xmpp:ping'/> to the server's
// domain (or with no 'to': the core falls back to this host handler) gets an empty result.
import { defineModule } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';

export default defineModule({
  name: 'ping',
  description: 'XMPP Ping (XEP-0199): the server answers pings addressed to it.',
  xeps: [{ xep: 199, version: '2.0.1', status: 'complete', note: 'client-to-server; the server sends no pings of its own' }],
  features: { host: [NS.PING] },
  setup(m) {
    m.iq('get', 'host', NS.PING, (iq) => iq.reply());
    // Pings are gets only; a set asks for something no one may do (RFC 6120 §8.3.3.11).
    m.iq('set', 'host', NS.PING, (iq) => iq.error('not-allowed'));
  },
});
