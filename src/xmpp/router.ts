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
type Base = StanzaContext & { session?: SessionContext; user?: UserContext };

/** A route event. A class, not a spread object with a property getter (~3 µs each on the chat path):
 *  the stanza is parsed only when a handler reads it. */
class RouteEvent {
  readonly host: string; readonly now: StanzaContext['now']; readonly route: StanzaContext['route'];
  readonly storage: StanzaContext['storage']; readonly log: StanzaContext['log'];
  readonly session?: SessionContext; readonly user?: UserContext;
  protected parsed: XmlElement | undefined;
  constructor(base: Base, readonly xml: string, readonly from: Jid, readonly to: Jid, readonly error: ErrorFn) {
    this.host = base.host; this.now = base.now; this.route = base.route; this.storage = base.storage; this.log = base.log;
    if (base.session) this.session = base.session;
    if (base.user) this.user = base.user;
  }
}

class Outbound extends RouteEvent implements OutboundEvent {
  replaced: XmlElement | null = null;
  get stanza(): XmlElement { return this.replaced ?? (this.parsed ??= parseElement(this.xml)); }
  set stanza(v: XmlElement) { this.replaced = v; }
}

class Inbound extends RouteEvent implements InboundEvent {
  declare readonly user: UserContext;
  get stanza(): XmlElement { return (this.parsed ??= parseElement(this.xml)); }
  // Inbound hooks veto or stop; the core delivers the stanza as it came, so it is not rewritable.
  set stanza(_: XmlElement) { throw new Error('an inbound stanza cannot be rewritten'); }
}

export type Outcome = { stopped: true } | { stopped: false; xml: string | null };
const STOPPED: Outcome = { stopped: true };
const PASSED: Outcome = { stopped: false, xml: null };

/**
 * Runs the outbound hooks of a stanza from `from` (a local account). Stopped: a handler vetoed it
 * (and answered, if it had to). Otherwise `xml` is the rewritten stanza, or null for the original.
 * Outbound hooks are synchronous: they decide on what the actor holds, never wait.
 */
export function runOutbound(modules: ModuleSet, kind: StanzaKind, base: () => Base, xml: string, from: Jid, to: Jid, error: ErrorFn): Outcome {
  const name = outboundHook(kind, to);
  if (!modules.has(name)) return PASSED; // the chat path with no outbound module: no event built
  const ev = new Outbound(base(), xml, from, to, error);
  const r = modules.run(name, ev);
  if (r instanceof Promise) {
    r.catch(() => undefined);
    throw new Error(`${name}: a handler returned a promise; outbound hooks are synchronous`);
  }
  return r ? STOPPED : ev.replaced ? { stopped: false, xml: serialize(ev.replaced) } : PASSED;
}

/** The inbound event for `<kind>/<target>` (and the hooks after it: undeliverable, delivered). */
export function inboundEvent(base: StanzaContext & { user: UserContext }, xml: string, from: Jid, to: Jid, error: ErrorFn): InboundEvent {
  return new Inbound(base, xml, from, to, error);
}
