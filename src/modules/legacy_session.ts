// RFC 3921's session establishment, for the clients that still ask for it (Strophe.js, which
// Converse.js uses, sends it whenever the feature is offered): announced as optional beside bind
// (RFC 6121 Appendix E; draft-cridland-xmpp-session), and the request answered with an empty result,
// for there is nothing left to establish. An IQ with no 'to' is the account's, so it lands here.
import { defineModule } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';

export default defineModule({
  name: 'legacy_session',
  description: 'Session establishment (RFC 3921), optional and answered for old clients.',
  streamFeatures: [`<session xmlns="${NS.SESSION}"><optional/></session>`],
  setup(m) {
    m.iq('set', 'host', NS.SESSION, (iq) => iq.reply());
  },
});
