// @xmpp/client sessions for tests, with a stanza inbox to wait on.
import { client, xml, type Client, type Element } from '@xmpp/client';

export interface TestClient {
  c: Client;
  jid: string;
  inbox: Element[];
  next(pred: (e: Element) => boolean, ms?: number): Promise<Element>;
  iq(el: Element): Promise<Element>;
  stop(): Promise<void>;
}

/** `service`: a URL instead of a TCP port (ws:// or wss://, RFC 7395). */
export async function login(port: number, user: string, opts: { resource?: string; password?: string; tls?: 'direct'; presence?: boolean; domain?: string; address?: string; service?: string } = {}): Promise<TestClient> {
  const service = opts.service ?? `${opts.tls === 'direct' ? 'xmpps' : 'xmpp'}://${opts.address ?? '127.0.0.1'}:${port}`;
  const c = client({ service, domain: opts.domain ?? 'localhost', username: user, password: opts.password ?? 'secret', resource: opts.resource ?? 'test' });
  const inbox: Element[] = [];
  const waiters: Array<{ pred: (e: Element) => boolean; resolve: (e: Element) => void }> = [];
  c.on('error', () => undefined);
  c.on('stanza', (s: Element) => {
    const i = waiters.findIndex((w) => w.pred(s));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(s);
    else inbox.push(s);
  });
  await c.start();
  if (opts.presence) await c.send(xml('presence'));
  return {
    // Bound by Bind 2 (XEP-0386): the resource asked for, then '/' and the server's id.
    c, jid: c.jid!.toString(), inbox,
    next(pred, ms = 5000) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (e: Element) => { clearTimeout(t); resolve(e); } };
        const t = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`${user}: no matching stanza in ${ms} ms; inbox: ${inbox.map(String).join('\n')}`)); }, ms);
        waiters.push(w);
      });
    },
    iq: (el) => c.iqCaller.request(el, 5000),
    stop: async () => { try { await c.stop(); } catch { /* already gone */ } },
  };
}

export const isMessage = (body?: string) => (e: Element) => e.is('message') && (body === undefined || e.getChildText('body') === body);
export const isPresence = (from: string, type?: string) => (e: Element) => e.is('presence') && e.attrs.from?.startsWith(from) === true && (e.attrs.type ?? undefined) === type;
export { xml };
