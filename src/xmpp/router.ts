// The route hooks, named in one place and run the same way wherever a stanza sets out or arrives.
// Prosody's grammar: `pre-<kind>/<target>` on the sender's side (its user actor), `<kind>/<target>`
// at the recipient, target host | bare | full by the 'to' (a domain, with or without a resource, is
// the host). Where a stanza goes is routing.ts's decision; this runs the hooks on its way.
import { serialize } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import type { Jid } from './jid.ts';
import type { InboundEvent, OutboundEvent, StanzaContext, StanzaKind, Target, UserContext } from './module.ts';
import type { ModuleSet } from './modules.ts';

export function targetOf(to: Jid): Target {
  return to.local === '' ? 'host' : to.resource === '' ? 'bare' : 'full';
}

export const outboundHook = (kind: StanzaKind, to: Jid) => `pre-${kind}/${targetOf(to)}` as const;
export const inboundHook = (kind: StanzaKind, to: Jid) => `${kind}/${targetOf(to)}` as const;

type ErrorFn = OutboundEvent['error'];
type Base = StanzaContext & { user: UserContext };

/** A route event. A class, not a spread object with a property getter (~3 µs each on the chat path):
 *  what the handler can do comes from `base` through the prototype, and the stanza is parsed only
 *  when a handler reads it; a handler that assigns it rewrites it. */
class RouteEvent {
  replaced: XmlElement | null = null;
  /** A rewrite made on the string (cheaper than a tree on the chat path). */
  replacedXml: string | null = null;
  private parsed: XmlElement | undefined;
  constructor(private readonly base: Base, private readonly original: string, readonly from: Jid, readonly to: Jid, readonly error: ErrorFn,
    /** The stanza's type attribute as the framer read it (null: none), or undefined when not known. */
    readonly type?: string | null) {}
  get xml(): string { return this.replaced ? serialize(this.replaced) : this.replacedXml ?? this.original; }
  set xml(v: string) { this.replacedXml = v; this.replaced = null; this.parsed = undefined; }
  get host(): string { return this.base.host; }
  get storage(): StanzaContext['storage'] { return this.base.storage; }
  get user(): UserContext { return this.base.user; }
  now(): number { return this.base.now(); }
  route(stanza: XmlElement | string): void { this.base.route(stanza); }
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void { this.base.log(level, text); }
  operator(command: string, args?: Record<string, unknown>): Promise<unknown> { return this.base.operator(command, args); }
  get stanza(): XmlElement { return this.replaced ?? (this.parsed ??= parseElement(this.replacedXml ?? this.original)); }
  set stanza(v: XmlElement) { this.replaced = v; this.replacedXml = null; }
}

class Outbound extends RouteEvent implements OutboundEvent {
  resource?: string;
}

export type Outcome = { stopped: true } | { stopped: false; xml: string | null };
const STOPPED: Outcome = { stopped: true };
const PASSED: Outcome = { stopped: false, xml: null };

/**
 * Runs a hook chain on a route event. Stopped: a handler vetoed the stanza (and answered, if it had
 * to). Otherwise `xml` is the rewritten stanza, or null for the original. A promise only once a
 * handler returned one.
 */
function runRoute(modules: ModuleSet, name: Parameters<ModuleSet['run']>[0], ev: RouteEvent): Outcome | Promise<Outcome> {
  const r = modules.run(name, ev as never);
  return r instanceof Promise ? r.then((stopped) => outcome(ev, stopped)) : outcome(ev, r);
}

const outcome = (ev: RouteEvent, stopped: boolean): Outcome =>
  (stopped ? STOPPED : ev.replaced ? { stopped: false, xml: serialize(ev.replaced) } : ev.replacedXml !== null ? { stopped: false, xml: ev.replacedXml } : PASSED);

/** The outbound hooks of a stanza from `from` (a local account); `resource`: the client that sent it. */
export function runOutbound(modules: ModuleSet, kind: StanzaKind, base: () => Base, xml: string, from: Jid, to: Jid, error: ErrorFn, resource?: string, type?: string | null): Outcome | Promise<Outcome> {
  const name = outboundHook(kind, to);
  if (!modules.has(name)) return PASSED; // the chat path with no outbound module: no event built
  const ev = new Outbound(base(), xml, from, to, error, type);
  if (resource !== undefined) ev.resource = resource;
  return runRoute(modules, name, ev);
}

/** The inbound hooks of a stanza for `to` (`<kind>/<host|bare|full>`). */
export function runInbound(modules: ModuleSet, kind: StanzaKind, base: () => Base, xml: string, from: Jid, to: Jid, error: ErrorFn, type?: string | null): Outcome | Promise<Outcome> {
  const name = inboundHook(kind, to);
  if (!modules.has(name)) return PASSED;
  return runRoute(modules, name, new RouteEvent(base(), xml, from, to, error, type));
}

/** The event for the hooks after delivery was decided (undeliverable, delivered). */
export function inboundEvent(base: Base, xml: string, from: Jid, to: Jid, error: ErrorFn): InboundEvent {
  return new RouteEvent(base, xml, from, to, error);
}
