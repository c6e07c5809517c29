// The file-transfer proxy's service actor, `socks5:<domain>` (XEP-0065; src/modules/proxy65.ts has
// the proxy itself, on the main thread). No state of its own: it answers disco and where the proxy
// listens, and passes a requester's activation to the proxy, answering the IQ with what the proxy
// says (the IQ travels with the request, so nothing waits here).
import { fromTransition } from 'xstate';
import { send, service } from '../../src/runtime/api.ts';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import { x } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { iqResultElement, stanzaErrorElement, type StanzaErrorCondition, type StanzaErrorType } from '../../src/xmpp/errors.ts';
import { tryParseJid } from '../../src/xmpp/jid.ts';
import { BYTESTREAMS, streamHash, type FromProxy, type ProxySettings, type ToProxy } from '../../src/modules/proxy65.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { routeElement } from '../route.ts';

interface ProxyCtx { domain: string }
type Ev = { type: 'stanza'; xml: string; h: StanzaHeader } | FromProxy | RuntimeEvent;

const xmpp = () => service<XmppService>('xmpp');
const PROXY = 'node:proxy65';

function fail(st: XmlElement, type: StanzaErrorType | null, condition: StanzaErrorCondition, text?: string): void {
  const e = stanzaErrorElement(st, type, condition, text);
  if (e) routeElement(e);
}

function onStanza(ctx: ProxyCtx, xml: string): void {
  const st = parseElement(xml);
  const sd = xmpp().modules.service(ctx.domain);
  const s = sd?.settings as ProxySettings | undefined;
  if (st.name !== 'iq') { if (st.name === 'message') fail(st, 'cancel', 'service-unavailable'); return; }
  const type = st.attr('type');
  if (type !== 'get' && type !== 'set') return;
  if (!s) { fail(st, 'cancel', 'service-unavailable', 'the proxy is not served here any more'); return; }
  const query = st.getChildren()[0];
  const ns = query?.getXmlns();
  if (type === 'get' && ns === NS.DISCO_INFO && query!.attr('node') === undefined) {
    routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_INFO },
      x('identity', { category: 'proxy', type: 'bytestreams', name: sd!.name }), [BYTESTREAMS, NS.DISCO_INFO].map((v) => x('feature', { var: v })))));
    return;
  }
  if (type === 'get' && ns === NS.DISCO_ITEMS) { routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_ITEMS }))); return; }
  if (type === 'get' && ns === BYTESTREAMS) {
    routeElement(iqResultElement(st, x('query', { xmlns: BYTESTREAMS }, x('streamhost', { jid: ctx.domain, host: s.address, port: String(s.port) }))));
    return;
  }
  if (type === 'set' && ns === BYTESTREAMS) {
    // XEP-0065 §6.3.3: the requester activates; the hash names it, the stream id and the target.
    const from = tryParseJid(st.attr('from') ?? '');
    const target = tryParseJid(query!.getChildText('activate')?.trim() ?? '');
    const sid = query!.attr('sid');
    if (!from || from.local === '' || from.domain !== s.host) { fail(st, 'auth', 'forbidden', `the proxy is for accounts of ${s.host}`); return; }
    if (!sid || !target) { fail(st, 'modify', 'bad-request', 'an activation names the stream id and the target'); return; }
    send(PROXY, { type: 'activate', hash: streamHash(sid, from.toString(), target.toString()), iq: xml } satisfies ToProxy);
    return;
  }
  fail(st, 'cancel', 'service-unavailable');
}

function onActivated(m: FromProxy): void {
  const st = parseElement(m.iq);
  if (m.ok) routeElement(iqResultElement(st));
  else fail(st, 'cancel', 'item-not-found', m.why);
}

export function reduce(ctx: ProxyCtx, ev: Ev): ProxyCtx {
  if (ev.type === 'stanza') onStanza(ctx, ev.xml);
  else if (ev.type === 'activated') onActivated(ev);
  return ctx;
}

export default defineKind({
  kind: 'socks5', version: 1, activation: 'on-demand', persist: 'never',
  machine: fromTransition(reduce, ({ input }: { input: { domain: string } }) => ({ domain: input.domain })),
  input: (address) => ({ domain: address.slice('socks5:'.length) }),
});
