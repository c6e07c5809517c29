// The file-sharing service's actor, `upload_slots:<domain>` (XEP-0363; src/modules/upload.ts declares the
// service and serves the files over HTTP). One per service domain, with no state of its own: it
// answers disco (the size limit as a XEP-0128 form) and hands out slots to the host's accounts, one
// request at a time, so that two requests never both fit in the last of a quota: the quota read
// and the slot's record are one step (the actor waits for them).
import { fromTransition } from 'xstate';
import { log, service, suspend } from '../../src/runtime/api.ts';
import { defineKind, type RuntimeEvent } from '../../src/runtime/kind.ts';
import { x } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { iqResultElement, stanzaErrorElement, type StanzaErrorCondition, type StanzaErrorOptions, type StanzaErrorType } from '../../src/xmpp/errors.ts';
import { dataForm } from '../../src/xmpp/forms.ts';
import { tryParseJid } from '../../src/xmpp/jid.ts';
import { fileUrl, newSlotId, safeName, signSlot, UPLOAD_NS, uploadKeys, usage, type UploadRecord, type UploadSettings } from '../../src/modules/upload.ts';
import type { XmppService } from '../../src/xmpp-service.ts';
import { webBase } from '../../src/xmpp/module.ts';
import { routeElement } from '../route.ts';

interface UploadCtx { domain: string }
type Ev = { type: 'stanza'; xml: string; h: StanzaHeader } | RuntimeEvent;

const xmpp = () => service<XmppService>('xmpp');

function fail(st: XmlElement, type: StanzaErrorType | null, condition: StanzaErrorCondition, text?: string, o?: StanzaErrorOptions): void {
  const e = stanzaErrorElement(st, type, condition, text, o);
  if (e) routeElement(e);
}

/** Where the files are reached: the configured URL, else this node's HTTPS (or HTTP) listener. */
const baseUrl = (domain: string, s: UploadSettings): string | null => s.url || webBase(xmpp().settings.web, domain);

function onStanza(ctx: UploadCtx, xml: string): void {
  const st = parseElement(xml);
  const s = xmpp().modules.service(ctx.domain)?.settings as UploadSettings | undefined;
  if (st.name !== 'iq') { if (st.name === 'message') fail(st, 'cancel', 'service-unavailable', 'ask for a slot with an IQ (XEP-0363)'); return; }
  const type = st.attr('type');
  if (type !== 'get' && type !== 'set') return;
  if (!s) { fail(st, 'cancel', 'service-unavailable', 'file sharing is not served here any more'); return; }
  const payload = st.getChildren()[0];
  const ns = payload?.getXmlns();
  if (type === 'get' && ns === NS.DISCO_INFO && payload!.attr('node') === undefined) {
    routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_INFO },
      x('identity', { category: 'store', type: 'file', name: xmpp().modules.service(ctx.domain)?.name }),
      [UPLOAD_NS, NS.DISCO_INFO].map((v) => x('feature', { var: v })),
      dataForm({ type: 'result', formType: UPLOAD_NS }, [{ var: 'max-file-size', value: String(s.maxFileBytes) }]))));
    return;
  }
  if (type === 'get' && ns === NS.DISCO_ITEMS && payload!.attr('node') === undefined) { routeElement(iqResultElement(st, x('query', { xmlns: NS.DISCO_ITEMS }))); return; }
  if (type === 'get' && ns === NS.PING) { routeElement(iqResultElement(st)); return; }
  if (type === 'get' && ns === UPLOAD_NS && payload!.name === 'request') { slot(ctx, s, st, payload!); return; }
  fail(st, 'cancel', 'service-unavailable');
}

function slot(ctx: UploadCtx, s: UploadSettings, st: XmlElement, req: XmlElement): void {
  const from = tryParseJid(st.attr('from') ?? '');
  if (!from || from.local === '' || from.domain !== s.host) { fail(st, 'auth', 'forbidden', `file sharing here is for accounts of ${s.host}`); return; }
  const filename = req.attr('filename');
  const sizeText = req.attr('size') ?? '';
  const size = /^\d{1,16}$/.test(sizeText) ? Number(sizeText) : NaN;
  if (!filename || !Number.isSafeInteger(size)) { fail(st, 'modify', 'bad-request', 'a request names the file and its size in bytes'); return; }
  if (size > s.maxFileBytes) {
    fail(st, 'modify', 'not-acceptable', `the file is larger than ${s.maxFileBytes} bytes`,
      { app: x('file-too-large', { xmlns: UPLOAD_NS }, x('max-file-size', null, String(s.maxFileBytes))) });
    return;
  }
  const base = baseUrl(ctx.domain, s);
  if (!base) { fail(st, 'cancel', 'service-unavailable', 'this server has no HTTP listener for the files'); return; }
  const owner = from.toBareString();
  const { storage, settings } = xmpp();
  const now = xmpp().now();
  suspend(usage(storage, owner, now).then(async (used) => {
    if (used + size > s.quotaBytes) {
      fail(st, 'wait', 'resource-constraint', `that would be more than your ${s.quotaBytes} bytes of shared files (${used} now); older files expire`);
      return;
    }
    const id = newSlotId();
    const name = safeName(filename);
    const until = now + s.slotSeconds * 1000;
    await storage.put(uploadKeys.one(owner, id), { slot: id, size, state: 'slot', until } satisfies UploadRecord);
    const token = signSlot(settings.serverSecret, { slot: id, name, size, type: req.attr('content-type') ?? '', owner, until });
    const url = fileUrl(base, id, name);
    routeElement(iqResultElement(st, x('slot', { xmlns: UPLOAD_NS },
      x('put', { url }, x('header', { name: 'Authorization' }, `Bearer ${token}`)),
      x('get', { url }))));
  }).catch((err: Error) => { log('warn', `${ctx.domain}: no slot for ${owner}: ${err.message}`); fail(st, 'wait', 'internal-server-error'); }));
}

export function reduce(ctx: UploadCtx, ev: Ev): UploadCtx {
  if (ev.type === 'stanza') onStanza(ctx, ev.xml);
  return ctx;
}

export default defineKind({
  kind: 'upload_slots', version: 1, activation: 'on-demand', persist: 'never',
  machine: fromTransition(reduce, ({ input }: { input: { domain: string } }) => ({ domain: input.domain })),
  input: (address) => ({ domain: address.slice('upload_slots:'.length) }),
});
