// XEP-0202 Entity Time: the server's UTC time and its local offset, both per XEP-0082, from the
// stanza context's clock.
import { x } from '../xml/builder.ts';
import { xmppDateTime, xmppTzo } from '../xmpp/delay.ts';
import { defineModule } from '../xmpp/module.ts';
import { NS } from '../xml/namespaces.ts';

export default defineModule({
  name: 'time',
  description: 'Entity Time (XEP-0202): the server reports its time.',
  xeps: [{ xep: 202, version: '2.0', status: 'complete' }],
  features: { host: [NS.TIME] },
  setup(m) {
    m.iq('get', 'host', NS.TIME, (iq) => {
      const now = iq.now();
      iq.reply(x('time', { xmlns: NS.TIME }, x('tzo', null, xmppTzo(now)), x('utc', null, xmppDateTime(now))));
    });
    m.iq('set', 'host', NS.TIME, (iq) => iq.error('not-allowed'));
  },
});
