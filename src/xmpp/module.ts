// The contract of a feature module (one XEP or RFC feature = one file in src/modules/). A module
// declares what it implements (XEPs, disco features, stream features, service domains, options with
// defaults and bounds) and registers hooks; the actors run the hooks and know no feature by name.
// The loader owns the registrations (as Prosody's module manager and ejabberd's gen_mod do).
import type { Jid } from './jid.ts';
import type { XmlElement } from '../xml/element.ts';
import type { StanzaErrorCondition, StanzaErrorOptions, StanzaErrorType } from './errors.ts';
import type { ServiceDomain } from './routing.ts';
import type { Field } from './forms.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface Identity { category: string; type: string; name?: string }

export interface XepDeclaration { xep: number; version?: string; status?: 'complete' | 'partial'; note?: string }

export type OptionSpec =
  | { type: 'number'; default: number; min?: number; max?: number; doc: string }
  | { type: 'boolean'; default: boolean; doc: string }
  | { type: 'string'; default: string; doc: string; enum?: string[] }
  | { type: 'strings'; default: string[]; doc: string };

export type OptionValues<S extends Record<string, OptionSpec>> = { [K in keyof S]: S[K]['default'] };

/** What a stanza handler can do, wherever it runs. */
export interface StanzaContext {
  /** The local domain the stanza was addressed to (or the sender's, for stanzas with no 'to'). */
  host: string;
  now(): number;
  /** Sends any stanza onwards through the server's routing (to local users, sessions or remote). */
  route(stanza: XmlElement | string): void;
  storage: Storage;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  /** Runs one of the node's operator commands (the admin socket's: adduser, passwd, deluser, users,
   *  actors, ...) as the CLI does; rejects with its error. */
  operator(command: string, args?: Record<string, unknown>): Promise<unknown>;
}

export interface IqRequest extends StanzaContext {
  stanza: XmlElement;
  payload: XmlElement;
  from: Jid;
  to: Jid;
  type: 'get' | 'set';
  /** The result; payload omitted = empty result. Replying twice is a bug and throws. */
  reply(payload?: XmlElement | null): void;
  error(condition: StanzaErrorCondition, type?: StanzaErrorType, text?: string, o?: StanzaErrorOptions): void;
  /** The account the IQ runs in: the recipient's (targets 'self', 'bare') or, for 'host', the
   *  sender's when a local account sent it. */
  user?: UserContext;
}

/**
 * An IQ a client sends before it authenticates, to the server (XEP-0077 registration, XEP-0445's
 * invitation token): run by the client's stream (its session actor), one request at a time.
 */
export interface PreauthIq extends StanzaContext {
  stanza: XmlElement;
  payload: XmlElement;
  type: 'get' | 'set';
  /** The client's address, and whether TLS is up. */
  remote: string;
  secure: boolean;
  /** What modules kept on this stream before authentication (an accepted invitation), by key. */
  kept: Readonly<Record<string, string>>;
  /** Keeps a value on this stream until it ends or authenticates (later requests read it in `kept`). */
  keep(key: string, value: string): void;
  reply(payload?: XmlElement | null): void;
  error(condition: StanzaErrorCondition, type?: StanzaErrorType, text?: string, o?: StanzaErrorOptions): void;
}

/** The stream features offered before authentication: handlers push theirs (XEP-0077's <register/>).
 *  Asked once per host and TLS state while a module set is loaded: they may depend on nothing else. */
export interface PreauthFeaturesEvent { host: string; secure: boolean; features: XmlElement[] }

/**
 * A registration asked for on a stream (XEP-0077 before authentication), before the account is made:
 * `username` is null for the form (a get). `allowed` starts as the host's policy (open registration);
 * a handler may allow it (an invitation kept on the stream), name the username it must take, or
 * refuse it (a username reserved by an invitation).
 */
export interface RegistrationEvent extends StanzaContext {
  username: string | null;
  kept: Readonly<Record<string, string>>;
  allowed: boolean;
  /** The module that allowed it (beyond the host's policy). */
  allowedBy?: string;
  fixedUsername?: string;
  refusal?: { condition: StanzaErrorCondition; text: string };
}

/** An account was made by in-band registration on a client's stream. */
export interface RegisteredEvent extends StanzaContext { jid: Jid; kept: Readonly<Record<string, string>> }

/** A bound session as its user actor sees it. */
export interface SessionInfo {
  resource: string;
  address: string;
  /** Last available presence, or null before initial presence / after unavailable. */
  presence: string | null;
  priority: number;
  /** When it last became available (ms; 0 while unavailable): which copies of a message it has. */
  since: number;
  /** The session asked for the roster (RFC 6121 §2.1.6: pushes go to interested resources only). */
  interested: boolean;
  /** Since when (ms) its connection is gone and it waits for a resumption (XEP-0198); absent while
   *  its client is connected. */
  detached?: number;
}

/** The user actor's view for modules: one account, its sessions and its module state. */
export interface UserContext {
  jid: Jid;
  sessions(): SessionInfo[];
  session(resource: string): SessionInfo | undefined;
  /** Writes a stanza to one of this user's bound sessions, durably: resolves once the session's
   *  mailbox holds it (a module handing over stored mail deletes its copy after that). */
  deliver(resource: string, stanza: XmlElement | string): Promise<void>;
  /** Per-module state kept in the user actor's snapshot (keep it small; big data goes to storage).
   *  `init` is what a module that never called setState reads; reading stores nothing. */
  state<T>(module: string, init: () => T): T;
  setState<T>(module: string, value: T): void;
  /** Records a session's current presence (null = unavailable) and priority; routing reads these. */
  setPresence(resource: string, presence: string | null, priority: number): void;
  /** Marks a session as having requested the roster (it then gets roster pushes). */
  setInterested(resource: string): void;
}

/** Where a stanza is addressed: the server's own domain, an account's bare JID, or one of its resources. */
export type Target = 'host' | 'bare' | 'full';
export type StanzaKind = 'message' | 'presence' | 'iq';

interface StanzaEventBase extends StanzaContext {
  /** The stanza as a tree (parsed when first read); assigning one rewrites the stanza. */
  stanza: XmlElement;
  /** The stanza as a string; assigning one rewrites it without a parse (the chat path's way). */
  xml: string;
  /** Its type attribute as the framer read it (null: none), when known (route hooks). */
  readonly type?: string | null;
  from: Jid;
  to: Jid;
  /** Answers the sender with a stanza error from the server, not through any hook (never for an
   *  error: RFC 6120 §8.3.1). The handler then returns true: the stanza goes no further. */
  error(condition: StanzaErrorCondition, type?: StanzaErrorType, text?: string, o?: StanzaErrorOptions): void;
}

/**
 * A stanza on its way out of a local account, in the account's user actor, before it is routed:
 * from one of its clients (`resource` set: error() answers that client), or sent by the server on
 * the account's behalf (presence broadcasts, subscription stanzas: error() answers nobody). A
 * handler may be async (the actor waits); it may veto (return true, with or without error()), or
 * rewrite by assigning `stanza` (the router sends that instead). `user` sees every session.
 */
export interface OutboundEvent extends StanzaEventBase { user: UserContext; resource?: string }

/**
 * A stanza arriving: for a local account in its user actor (`<kind>/bare|full`), or for the server
 * itself (`<kind>/host`, in the sender's user actor). A handler may veto, stop, or rewrite by
 * assigning `stanza` (the core then delivers that).
 */
export interface InboundEvent extends StanzaEventBase { user: UserContext }
export type MessageEvent = InboundEvent;
export type PresenceEvent = InboundEvent;
/** A message the core delivered, and the resources it went to. */
export interface DeliveredEvent extends MessageEvent { resources: readonly string[] }
/** A message no session can take now. `handedBack`: it was accepted earlier (its sender was told so)
 *  and handed back by a session that ended without delivering it; it may not be refused now. */
export interface UndeliverableEvent extends MessageEvent { handedBack: boolean }
export interface SessionEvent extends StanzaContext {
  user: UserContext;
  resource: string;
  /** At a Bind 2 login (XEP-0386): what the client asked inside <bind/> of the modules' namespaces,
   *  and `answer()` puts an element in the <bound/> it gets (the archive's metadata). */
  bind2?: { inline: readonly XmlElement[]; answer(el: XmlElement): void };
}

/** Prosody's grammar: `pre-<kind>/<target>` outbound (the sender's side), `<kind>/<target>` at the
 *  recipient (IQ requests to the host go to the `iq` handlers instead). */
type RouteHooks = { [K in `pre-${StanzaKind}/${Target}`]: OutboundEvent } & { [K in `${StanzaKind}/${Target}`]: InboundEvent };

/** Hook points and their events. A handler returning true stops the chain (handled). */
export interface Hooks extends RouteHooks {
  /** `<type>/<target>/<payload xmlns>`, target host | self | bare. Runs where the reply is natural. */
  iq: IqRequest;
  /** A message the core could not deliver to any session (chat/normal to an offline user). */
  'message/undeliverable': UndeliverableEvent;
  /** A message the core delivered to sessions (for carbons, archives). */
  'message/delivered': DeliveredEvent;
  /** Presence this user's session sent, in the user actor (broadcast, directed, subscription
   *  requests), after its pre-presence hooks passed it. */
  'presence/out': PresenceEvent & { resource: string };
  'session/bound': SessionEvent;
  'session/unbound': SessionEvent;
  /** Called after a user actor's restart or hot reload with the module's state. */
  'user/started': { user: UserContext } & StanzaContext;
  /** The account's record is gone: each module removes what it stored for it. */
  'user/deleted': AccountDeletedEvent;
  /** XEP-0227 (`chorus export`): each module adds what it stores for the account to its <user/>. */
  'account/export': AccountExportEvent;
  /** XEP-0227 (`chorus import`): each module stores what it reads in the account's <user/> (the
   *  account exists; the node is stopped). */
  'account/import': AccountImportEvent;
  /** `preauth/<type>/<payload xmlns>`: an IQ before authentication (registered with m.preauth). */
  preauth: PreauthIq;
  'stream/pre-auth-features': PreauthFeaturesEvent;
  'account/registering': RegistrationEvent;
  'account/registered': RegisteredEvent;
  /** A disco#info or disco#items request for a node (XEP-0030 §3.2, §4.2), fired by the disco
   *  module: the module that publishes the node answers it and returns true. */
  'disco/node': DiscoNodeEvent;
}

export interface DiscoNodeEvent extends IqRequest {
  node: string;
  query: 'info' | 'items';
  /** The server (a host) or an account (its bare JID). */
  target: 'host' | 'account';
}

/** A form a command asks to be filled (XEP-0004), or shows as its result. */
export interface CommandForm { title?: string; instructions?: string; fields: Field[]; /** XEP-0068's FORM_TYPE. */ formType?: string }

/** Who runs a command (their account), and what it may use: the node's operator commands too
 *  (StanzaContext.operator: `chorus adduser` and the others, as the CLI runs them). */
export interface CommandContext extends StanzaContext {
  from: Jid;
  user?: UserContext;
}

/** What a command answers when it completes: a note, a result form, or both. */
export interface CommandResult { note?: { type: 'info' | 'warn' | 'error'; text: string }; form?: CommandForm }

/** An ad-hoc command (XEP-0050) a module offers at the server's address: one form, then its result.
 *  The adhoc module lists, describes and runs them; who may is `access`. */
export interface CommandDefinition {
  node: string;
  name: string;
  /** The server's admins (ModuleApi.isAdmin), or any account of the host. */
  access: 'admin' | 'local';
  /** The form to fill first; without one the command runs at once. */
  form?(c: CommandContext): CommandForm | Promise<CommandForm>;
  /** Runs with the submitted values by field name (none when there was no form). */
  run(c: CommandContext, values: Map<string, string[]>): CommandResult | Promise<CommandResult>;
}

/**
 * Runs in the account's user actor when a node runs (`live` set: sessions still bound, stanzas can
 * be routed, e.g. to cancel subscriptions), else in the CLI that deleted it, with storage only.
 */
/** The portable form of an account's data (XEP-0227): a module's part is children of <user/>. */
export interface AccountExportEvent {
  jid: Jid;
  storage: Omit<Storage, 'withHandling'>;
  add(el: XmlElement): void;
}

export interface AccountImportEvent {
  jid: Jid;
  storage: Omit<Storage, 'withHandling'>;
  /** The account's <user/> element (children in the XEP-0227 namespace or their own). */
  user: XmlElement;
  now(): number;
  /** What the import says of this account (a skipped item), for the operator. */
  note(text: string): void;
}

export interface AccountDeletedEvent {
  jid: Jid;
  storage: Storage;
  /** The node's data directory: a module that keeps files there (uploads) removes the account's. */
  dataDir: string;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  live?: StanzaContext & { user: UserContext };
}

export type HookName = keyof Hooks;
/** true stops the chain (handled). A promise suspends the actor running the hook until it settles:
 *  read, decide, write — no other stanza of that actor interleaves. */
export type HookResult = boolean | void | Promise<boolean | void>;
export type HookHandler<K extends HookName> = (event: Hooks[K]) => HookResult;

export interface RangeOptions { limit?: number; reverse?: boolean; gt?: string; gte?: string; lt?: string; lte?: string }

export interface Storage {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /** Entries with keys starting with prefix, in key order; `gt`/`gte` and `lt`/`lte` narrow it to keys
   *  after or before others of the same prefix (paging: an archive from a given id on). */
  range<T>(prefix: string, opts?: RangeOptions): Promise<Array<[string, T]>>;
  batch(ops: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }>): Promise<void>;
  /** Writes that go to disk with the handling of the message being handled, atomic with it, without
   *  waiting (what the chat path writes per message: an archive entry). A read sees them once the
   *  thread's batch is committed, within the tick. */
  withHandling(ops: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }>): void;
}

/** Whether an account has the admin role, read from where accounts are stored. */
export type AdminRoleLookup = (bare: string, storage: Pick<Storage, 'get'>) => Promise<boolean>;

/** A domain a module serves on a host (group chat, upload, pubsub): its addresses are actors of
 *  `kind` (`<kind>:<bare JID>`, the domain itself `<kind>:<domain>`), in the kind folders of actors/
 *  or of a modules.paths folder's actors/. Listed in the host's disco#items, with `name`. */
export interface ServiceDeclaration {
  domain: string;
  kind: string;
  name?: string;
  /** What the service's actors read (plain data: limits, defaults), from the host's options. */
  settings?: Record<string, unknown>;
  /** One actor for every address of the domain (`<kind>:<domain>`), not one per bare JID. */
  whole?: boolean;
}

/** What a module's HTTP handler gets. It runs on the main thread, which holds every socket. */
export interface HttpContext {
  storage: Omit<Storage, 'withHandling'>;
  dataDir: string;
  /** The node's secret: what signs what the module's actors hand out (upload slots). */
  secret: string;
  /** This module's service domains on every host, as routing has them (settings included). */
  services: readonly ServiceDomain[];
  now(): number;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
  /** A short text answer (a refusal, a 404), with any headers besides its type and length. */
  text(res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void;
  /** Adds to one of the route's counters. */
  count(name: string, n: number): void;
}

/** What a module's socket service gets on the main thread. */
export interface SocketContext {
  /** Sends to an actor (an answer to one that asked, by its address). */
  send(to: string, message: Record<string, unknown>): void;
  log(level: 'debug' | 'info' | 'warn' | 'error', text: string): void;
}

/**
 * A TCP service of a module (XEP-0065's SOCKS5 proxy): the main thread, which holds every socket,
 * listens on the port its service domains name and hands it each connection; its actors reach it
 * at `node:<id>`.
 */
export interface SocketService {
  id: string;
  /** Where to listen, from the module's service domains (their settings); null: nowhere. */
  listen(services: readonly ServiceDomain[]): { port: number; address: string } | null;
  accept(socket: Socket, ctx: SocketContext): void;
  /** A message one of the module's actors sent to `node:<id>`. */
  message(message: Record<string, unknown>, from: string, ctx: SocketContext): void;
}

/** Paths a module serves on the node's HTTP listeners (listen.http, listen.https). */
export interface HttpRoute {
  /** Requests whose path starts with this (`/upload/`) come to `handle`; the first match wins. */
  prefix: string;
  /** Answers the request; a throw (or rejection) is a 500 and a log line, never the node's end. */
  handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void | Promise<void>;
  /** Work the listener runs every `ms` while it serves, and once at start (expiry of files). */
  every?: { ms: number; run(ctx: HttpContext): Promise<void> };
  /** Counters the handler adds to (HttpContext.count), by name with their help: /metrics shows each
   *  as chorus_<name>_total. */
  counters?: Record<string, string>;
}

/**
 * A command the operator runs from the shell (`chorus <name> ARGS`) on the running node: the CLI asks
 * one actor (a service's, a room's) and shows its answer. The actor gets `message` with a `reply`
 * address and answers there `{ ok: true, result }` or `{ ok: false, error }`.
 */
export interface OperatorCommand {
  name: string;
  usage: string;
  summary: string;
  args: [min: number, max: number];
  /** Whom to ask and what, from the arguments and the node's service domains; a string is what is
   *  wrong with the arguments. */
  ask(args: string[], node: { hosts: readonly string[]; services(host: string): readonly ServiceDomain[] }): { address: string; message: Record<string, unknown> } | string;
}

/** The node's HTTP listeners' ports (false: off): where the URLs modules hand out point. */
export interface WebPorts { http: number | false; https: number | false }

/** The base URL of this node's HTTP side for a domain: HTTPS when on, else HTTP; null with neither. */
export function webBase(web: WebPorts | null, domain: string): string | null {
  if (!web) return null;
  return web.https !== false ? `https://${domain}:${web.https}` : web.http !== false ? `http://${domain}:${web.http}` : null;
}

export interface ModuleApi<O> {
  /** The options of the config's `modules.options`, defaults filled in. */
  options: O;
  /** The options for one host: `modules.hosts.<host>` over `options` (read them per stanza, by its host). */
  optionsFor(host: string): O;
  hosts: string[];
  /** Registers a handler; priority: higher runs first (Prosody's convention). */
  hook<K extends HookName>(name: K, handler: HookHandler<K>, priority?: number): void;
  /** Shorthand for hook('iq') filtered to one `<type>/<target>/<xmlns>` key. */
  iq(type: 'get' | 'set', target: 'host' | 'self' | 'bare', xmlns: string, handler: (iq: IqRequest) => void | Promise<void>): void;
  /** An IQ a client may send before it authenticates, by `<type>/<payload xmlns>` (one handler each). */
  preauth(type: 'get' | 'set', xmlns: string, handler: (iq: PreauthIq) => void | Promise<void>): void;
  /** The disco features of every loaded module (read at request time, so load order does not matter). */
  features(): { host: Iterable<string>; account: Iterable<string> };
  /** The identities the loaded modules add (read at request time). */
  identities(): { host: readonly Identity[]; account: readonly Identity[] };
  /** The service domains every loaded module declares on `host` (read at request time). */
  services(host: string): ServiceDomain[];
  /** Offers an ad-hoc command (XEP-0050); a reload of the module replaces its commands. */
  command(def: CommandDefinition): void;
  /** Every loaded module's commands (read at request time). */
  commands(): readonly CommandDefinition[];
  /** Runs a hook of the loaded modules (the disco module asks who publishes a node). */
  fire<K extends HookName>(name: K, event: Hooks[K]): boolean | Promise<boolean>;
  /** The config's `admins` (bare JIDs): what is known without storage (the group-chat service's
   *  owners of every room). */
  admins: ReadonlySet<string>;
  /** Whether an account is one of the server's admins: in the config's `admins`, or given the admin
   *  role (an admin invitation). What admin commands and admin-only features check. */
  isAdmin(bare: string, storage: Pick<Storage, 'get'>): Promise<boolean>;
  /** The node's HTTP listeners (null where the set is loaded without them: the CLI offline). */
  web: WebPorts | null;
  /** What a module named in `depends` returned from its setup (Prosody's module:depends). Taken
   *  at setup: after a reload of that module, a dependent sees the new API once it is reloaded too. */
  depends<T>(module: string): T;
}

export interface ModuleDefinition<S extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  description: string;
  xeps?: XepDeclaration[];
  /** disco#info features this module adds to the server (`host`) and to accounts (`account`). */
  features?: { host?: string[]; account?: string[] };
  /** disco#info identities it adds beside the server's and the account's own (PEP: pubsub/pep). */
  identities?: { host?: Identity[]; account?: Identity[] };
  /** Stream features offered after bind-ready (e.g. `<sm xmlns='urn:xmpp:sm:3'/>`), as XML strings. */
  streamFeatures?: string[];
  /** Session features a client may turn on inside its Bind 2 request (XEP-0386), by namespace: the
   *  request's elements in them reach the module's `session/bound` hook (`bind2.inline`). */
  bind2?: string[];
  /** The service domains this module serves on a host, from that host's options (so each host
   *  configures its own, e.g. `conference.<host>`) and the server's admins. */
  services?(host: string, options: OptionValues<S>, admins: ReadonlySet<string>): ServiceDeclaration[];
  /** The key prefixes this module keeps its data under (`<prefix>!…`, built with src/storage/db.ts's
   *  keyOf): no other module's, nor the core's (acct, mbox, snap, dead). Its `user/deleted` hook
   *  removes what it keeps for an account. */
  storage?: string[];
  options?: S;
  /** Commands the operator runs from the shell (`chorus rooms`), answered by this module's actors. */
  operatorCommands?: OperatorCommand[];
  /** What it serves over HTTP (on the main thread: the routes are read when the node starts). */
  http?: HttpRoute[];
  /** Its TCP services (on the main thread, read when the node starts). */
  sockets?: SocketService[];
  depends?: string[];
  /** Registers the hooks; what it returns is the API other modules get with `m.depends(name)`. */
  setup(m: ModuleApi<OptionValues<S>>): void | object;
}

/** f applied to a value that may still be coming: synchronous code stays synchronous. */
export function andThen<T, R>(v: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export function defineModule<S extends Record<string, OptionSpec>>(def: ModuleDefinition<S>): ModuleDefinition<S> {
  if (!/^[a-z][a-z0-9_-]*$/.test(def.name)) throw new Error(`bad module name ${JSON.stringify(def.name)}`);
  return def;
}
