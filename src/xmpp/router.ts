// The route hooks, named in one place and run the same way wherever a stanza sets out: from a
// client in its session actor, or from the server on an account's behalf in its user actor. Prosody's
// grammar: `pre-<kind>/<target>` on the sender's side, `<kind>/<target>` at the recipient's user
// actor, target host | bare | full by the 'to' (a domain, with or without a resource, is the host).
import { serialize } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import type { Jid } from './jid.ts';
import type { InboundEvent, OutboundEvent, SessionContext, StanzaContext, StanzaKind, Target, UserContext } from './module.ts';
import type { ModuleSet } from './modules.ts';

export function targetOf(to: Jid): Target {
  return to.local === '' ? 'host' : to.resource === '' ? 'bare' : 'full';
}

export const outboundHook = (kind: StanzaKind, to: Jid) => `pre-${kind}/${targetOf(to)}` as const;
export const inboundHook = (kind: StanzaKind, to: Jid) => `${kind}/${to.resource === '' ? 'bare' : 'full'}` as const;

type ErrorFn = OutboundEvent['error'];

/** A route event whose stanza is parsed only when a handler reads it (the chat path stays a string). */
function routeEvent<E>(base: object, xml: string, from: Jid, to: Jid, error: ErrorFn, onSet: (v: XmlElement) => void): E {
  let parsed: XmlElement | undefined;
  return Object.defineProperty({ ...base, xml, from, to, error }, 'stanza', {
    get: () => (parsed ??= parseElement(xml)),
    set: (v: XmlElement) => { onSet(v); parsed = v; },
    enumerable: true,
  }) as E;
}

export type Outcome = { stopped: true } | { stopped: false; xml: string | null };

/**
 * Runs the outbound hooks of a stanza from `from` (a local account). Stopped: a handler vetoed it
 * (and answered, if it had to). Otherwise `xml` is the rewritten stanza, or null for the original.
 * Outbound hooks are synchronous: they decide on what the actor holds, never wait.
 */
export function runOutbound(
  modules: ModuleSet, kind: StanzaKind, base: StanzaContext & { session?: SessionContext; user?: UserContext },
  xml: string, from: Jid, to: Jid, error: ErrorFn,
): Outcome {
  const name = outboundHook(kind, to);
  if (!modules.has(name)) return { stopped: false, xml: null };
  let replaced: XmlElement | null = null;
  const r = modules.run(name, routeEvent<OutboundEvent>(base, xml, from, to, error, (v) => { replaced = v; }));
  if (r instanceof Promise) {
    r.catch(() => undefined);
    throw new Error(`${name}: a handler returned a promise; outbound hooks are synchronous`);
  }
  return r ? { stopped: true } : { stopped: false, xml: replaced ? serialize(replaced) : null };
}

/** The inbound event for `<kind>/<target>` (and the hooks after it: undeliverable, delivered).
 *  Inbound hooks veto or stop; the core delivers the stanza as it came, so it is not rewritable. */
export function inboundEvent(base: StanzaContext & { user: UserContext }, xml: string, from: Jid, to: Jid, error: ErrorFn): InboundEvent {
  return routeEvent<InboundEvent>(base, xml, from, to, error, () => { throw new Error('an inbound stanza cannot be rewritten'); });
}
