// Running a module's IQ handler, wherever it runs (a session or a user actor): the request gets
// reply()/error() that answer once, and a handler that throws still answers internal-server-error
// (xmpp.js semantics: the peer always gets an answer) before the crash reaches the supervisor. A
// handler may be async: the promise it returns is what the actor suspends on.
import type { XmlElement } from '../xml/element.ts';
import type { StanzaHeader } from '../xml/framer.ts';
import { iqResult, stanzaError } from './errors.ts';
import type { IqRequest } from './module.ts';

export function dispatchIq<R extends Pick<IqRequest, 'reply' | 'error'> = IqRequest>(
  handler: (req: R) => unknown, base: Omit<R, 'reply' | 'error'>, h: StanzaHeader | XmlElement, out: (xml: string) => void,
): void | Promise<void> {
  let answered = false;
  const once = (xml: string | null) => {
    if (answered) throw new Error(`iq ${'attr' in h ? h.attr('id') : h.id} answered twice`);
    answered = true;
    if (xml) out(xml);
  };
  const req = {
    ...base,
    reply: (p) => once(iqResult(h, p ?? null)),
    error: (condition, type, text, o) => once(stanzaError(h, type ?? null, condition, text, o)),
  } as R & Pick<IqRequest, 'reply' | 'error'>;
  const fail = (err: unknown): never => {
    if (!answered) once(stanzaError(h, 'cancel', 'internal-server-error'));
    throw err;
  };
  let r: unknown;
  try { r = handler(req); } catch (err) { fail(err); }
  // An async handler answers before it settles; one that forgot still gets the peer an answer.
  if (r instanceof Promise) return r.then(() => { if (!answered) once(stanzaError(h, 'wait', 'internal-server-error', 'no answer')); }, fail);
}
