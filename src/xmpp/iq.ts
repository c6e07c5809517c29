// Running a module's IQ handler, wherever it runs (a session or a user actor): the request gets
// reply()/error() that answer once, and a handler that throws still answers internal-server-error
// (xmpp.js semantics: the peer always gets an answer) before the crash reaches the supervisor.
import type { StanzaHeader } from '../xml/framer.ts';
import { iqResult, stanzaError } from './errors.ts';
import type { IqRequest } from './module.ts';

export function dispatchIq(handler: (req: IqRequest) => unknown, base: Omit<IqRequest, 'reply' | 'error'>, h: StanzaHeader, out: (xml: string) => void): void {
  let answered = false;
  const once = (xml: string | null) => {
    if (answered) throw new Error(`iq ${h.id} answered twice`);
    answered = true;
    if (xml) out(xml);
  };
  const req: IqRequest = {
    ...base,
    reply: (p) => once(iqResult(h, p ?? null)),
    error: (condition, type, text) => once(stanzaError(h, type ?? null, condition, text)),
  };
  try { handler(req); } catch (err) {
    if (!answered) once(stanzaError(h, 'cancel', 'internal-server-error'));
    throw err;
  }
}
