// Push notifications (XEP-0357): a phone's app (Conversations, Monal, Siskin) registers its push
// service — an app server, reached through a component (XEP-0114) or another server — with the
// account, and goes to sleep. A message the account gets while none of its clients is awake — kept
// for later (offline), or held for a stream-management session whose socket is gone — makes the
// server publish a notification to each registered service, which wakes the app. What the
// notification says is a summary (XEP-0357 §7: the count, and the sender and body only if the
// operator allows: they pass through the app's vendor).
import { randomBytes } from 'node:crypto';
import { x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';
import { dataForm, readForm, type Field } from '../xmpp/forms.ts';
import { tryParseJid } from '../xmpp/jid.ts';
import { defineModule, type MessageEvent, type UserContext } from '../xmpp/module.ts';
import { offlineDisposition } from './offline.ts';

const MODULE = 'push';
const PUBLISH_OPTIONS = `${NS.PUBSUB}#publish-options`;
const SUMMARY = 'urn:xmpp:push:summary';

const options = {
  max_services: { type: 'number', default: 5, min: 1, max: 50, doc: 'Push services one account may register (one per app installation).' },
  include_sender: { type: 'boolean', default: false, doc: 'Put the sender\'s address in notifications (it passes through the app\'s push service).' },
  include_body: { type: 'boolean', default: false, doc: 'Put the message text in notifications (it passes through the app\'s push service; never for encrypted messages).' },
} as const;

/** A registered push service: where to publish, and the publish-options the app gave (its secret). */
interface Service { jid: string; node: string; options: Array<[string, string[]]> }
/** Kept in the user actor's snapshot: the services, and messages since a client last connected. */
interface State { services: Service[]; count: number }

const state = (user: UserContext): State => user.state<State>(MODULE, () => ({ services: [], count: 0 }));

/** XEP-0357 §6: the publish of one notification to one service. */
function notification(svc: Service, from: string, count: number, sender: string | null, body: string | null): XmlElement {
  const summary: Field[] = [
    { var: 'message-count', value: String(count) },
    ...(sender ? [{ var: 'last-message-sender', value: sender }] : []),
    ...(body ? [{ var: 'last-message-body', value: body }] : []),
  ];
  return x('iq', { type: 'set', from, to: svc.jid, id: `push-${randomBytes(6).toString('hex')}` },
    x('pubsub', { xmlns: NS.PUBSUB },
      x('publish', { node: svc.node }, x('item', null, x('notification', { xmlns: NS.PUSH }, dataForm({ type: 'submit', formType: SUMMARY }, summary)))),
      svc.options.length ? x('publish-options', null, dataForm({ type: 'submit', formType: PUBLISH_OPTIONS }, svc.options.map(([v, value]) => ({ var: v, value })))) : null));
}

export default defineModule({
  name: MODULE,
  description: 'Push notifications (XEP-0357): a sleeping phone app is woken through its push service when a message waits for it.',
  xeps: [{ xep: 357, version: '0.4.1', status: 'complete', note: 'for messages kept offline or held for a detached XEP-0198 session; summary without sender and body unless the options allow' }],
  features: { account: [NS.PUSH] },
  options,
  setup(m) {
    m.iq('set', 'self', NS.PUSH, (iq) => {
      const user = iq.user!;
      const el = iq.payload;
      const jid = tryParseJid(el.attr('jid') ?? '');
      if (!jid) { iq.error('bad-request', 'modify', 'the push service\'s jid is missing or not a JID'); return; }
      const st = state(user);
      const node = el.attr('node');
      if (el.localName === 'disable') {
        user.setState<State>(MODULE, { ...st, services: st.services.filter((s) => !(s.jid === jid.toString() && (node === undefined || s.node === node))) });
        iq.reply();
        return;
      }
      if (el.localName !== 'enable' || !node) { iq.error('bad-request', 'modify', 'expected <enable jid=… node=…/> or <disable jid=…/>'); return; }
      const form = readForm(el);
      if (form && form.formType !== PUBLISH_OPTIONS) { iq.error('bad-request', 'modify', `publish-options are a ${PUBLISH_OPTIONS} form`); return; }
      const kept = st.services.filter((s) => !(s.jid === jid.toString() && s.node === node));
      const max = m.optionsFor(iq.host).max_services;
      if (kept.length >= max) { iq.error('resource-constraint', 'wait', `at most ${max} push services per account`); return; }
      const opts = form ? [...form.values].filter(([k]) => k !== 'FORM_TYPE') : [];
      user.setState<State>(MODULE, { ...st, services: [...kept, { jid: jid.toString(), node, options: opts }] });
      iq.log('info', `push enabled to ${jid} (XEP-0357)`);
      iq.reply();
    });

    /** Each registered service is told of one more message. */
    const notify = (ev: MessageEvent) => {
      const st = state(ev.user);
      if (st.services.length === 0) return;
      const count = st.count + 1;
      ev.user.setState<State>(MODULE, { ...st, count });
      const o = m.optionsFor(ev.host);
      const encrypted = ev.stanza.getChildren().some((c) => c.localName === 'encrypted');
      const body = o.include_body && !encrypted ? ev.stanza.getChildText('body') ?? null : null;
      const from = ev.user.jid.toBareString();
      for (const svc of st.services) ev.route(notification(svc, from, count, o.include_sender ? ev.from.toBareString() : null, body));
    };

    // Kept for later: no client is connected (the offline module, after this, stores it).
    m.hook('message/undeliverable', (ev) => { if (offlineDisposition(ev.stanza) === 'store') notify(ev); return false; }, 10);
    // Delivered only to sessions whose sockets are gone (XEP-0198, waiting to be resumed).
    m.hook('message/delivered', (ev) => {
      if (ev.resources.length > 0 && ev.resources.every((r) => ev.user.session(r)?.detached !== undefined) && offlineDisposition(ev.stanza) === 'store') notify(ev);
      return false;
    });
    // A client is back: the count starts again.
    m.hook('session/bound', (ev) => { const st = state(ev.user); if (st.count) ev.user.setState<State>(MODULE, { ...st, count: 0 }); });
  },
});
