// An in-memory stand-in for the core, to test feature modules without sockets or actors: one simulated
// user actor per account (its bound sessions, module state and hook runs), an in-memory Storage, and
// routing between them. Every hook run and routed stanza is a separate macrotask, as actor messages
// are; an async hook holds its account's next message until it settles (the runtime's suspend());
// each session records what was delivered to it.
//
// Stricter than the core where that catches module bugs: state is copied in and out as JSON (mutating
// without setState is lost), route() must be called while the message it belongs to is being handled
// (its awaits included), everything a module builds is serialized and parsed again, an IQ answered
// twice throws, and an exception in any hook (a rejected promise too: an actor crash) fails settle().
import { serialize } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { stanzaErrorElement } from '../../src/xmpp/errors.ts';
import { dispatchIq } from '../../src/xmpp/iq.ts';
import { Jid, parseJid } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xml/namespaces.ts';
import {
  andThen, type InboundEvent, type ModuleDefinition, type RangeOptions, type SessionInfo, type StanzaContext, type StanzaKind, type Storage, type UserContext,
} from '../../src/xmpp/module.ts';
import { inboundEvent, inboundHook, runOutbound } from '../../src/xmpp/router.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { bounds } from '../../src/storage/kv.ts';

type BatchOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * JSON values under string keys, in LevelDB's key order. Each operation takes effect after a random
 * (seeded) number of macrotasks, so operations in flight together may complete in any order, as
 * concurrent LevelDB operations may: a module that reads before its own write has landed sees old data.
 */
export class MemoryStorage implements Storage {
  readonly data = new Map<string, string>();
  /** Operations issued and not yet completed. */
  pending = 0;
  /** When set, operations fail with it (to exercise error paths). */
  failWith: Error | null = null;
  private seed32: number;

  constructor(seed = 1) { this.seed32 = seed >>> 0 || 1; }

  private op<T>(f: () => T): Promise<T> {
    this.pending++;
    // xorshift32: 1 to 4 hops
    let r = this.seed32;
    r ^= r << 13; r ^= r >>> 17; r ^= r << 5;
    this.seed32 = r >>> 0;
    let hops = 1 + (this.seed32 % 4);
    return new Promise<T>((resolve, reject) => {
      const step = () => {
        if (--hops > 0) { setImmediate(step); return; }
        this.pending--;
        if (this.failWith) reject(this.failWith);
        else resolve(f());
      };
      setImmediate(step);
    });
  }

  get<T>(key: string): Promise<T | undefined> { return this.op(() => this.peek<T>(key)); }
  put(key: string, value: unknown): Promise<void> { return this.op(() => { this.seed(key, value); }); }
  del(key: string): Promise<void> { return this.op(() => { this.data.delete(key); }); }
  batch(ops: BatchOp[]): Promise<void> {
    return this.op(() => { for (const o of ops) if (o.type === 'put') this.seed(o.key, o.value); else this.data.delete(o.key); });
  }
  range<T>(prefix: string, opts: RangeOptions = {}): Promise<Array<[string, T]>> {
    return this.op(() => {
      const b = bounds(prefix, opts);
      const inside = (k: string) => (b.gt !== undefined ? utf8Order(k, b.gt) > 0 : utf8Order(k, b.gte!) >= 0) && (b.lte !== undefined ? utf8Order(k, b.lte) <= 0 : utf8Order(k, b.lt!) < 0);
      const ks = [...this.data.keys()].filter(inside).sort(utf8Order);
      if (opts.reverse) ks.reverse();
      const picked = opts.limit !== undefined && opts.limit >= 0 ? ks.slice(0, opts.limit) : ks;
      return picked.map((k) => [k, JSON.parse(this.data.get(k)!) as T] as [string, T]);
    });
  }

  /** Synchronous access for tests. */
  peek<T>(key: string): T | undefined {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }
  seed(key: string, value: unknown): void { this.data.set(key, JSON.stringify(value)); }
}

interface SimUser {
  jid: Jid;
  sessions: Map<string, SessionInfo>;
  inboxes: Map<string, string[]>;
  state: Map<string, string>;
  ctx: UserContext;
  /** Messages waiting; the one being handled (0: none) — an async one until it settles. */
  queue: Array<() => unknown>;
  current: number;
}

export interface HarnessOptions {
  host?: string;
  /** Another Storage (e.g. kvStorage over a real LevelDB) instead of the in-memory one. */
  storage?: Storage;
  /** Seed of the storage's completion order; default $CHORUS_HARNESS_SEED or 1 (run a suite under several). */
  seed?: number;
  /** Module options by module name, as in the config's modules.options. */
  options?: Record<string, Record<string, unknown>>;
}

export class Harness {
  readonly host: string;
  readonly modules: ModuleSet;
  readonly storage: MemoryStorage;
  /** What modules get: `options.storage` or `storage`, counting operations in flight for settle(). */
  readonly moduleStorage: Storage;
  private storageOps = 0;
  /** Stanzas routed to other domains (what s2s would carry). */
  readonly remote: XmlElement[] = [];
  /** Stanzas that found no account or no session. */
  readonly dropped: string[] = [];
  /** Stanzas no module handled. */
  readonly unhandled: string[] = [];
  readonly logs: string[] = [];
  /** Every setPresence call, in order. */
  readonly presenceCalls: Array<{ jid: string; presence: string | null; priority: number }> = [];
  clock = 1_700_000_000_000;
  private users = new Map<string, SimUser>();
  private inflight = 0;
  private errors: unknown[] = [];
  private openIqs = new Map<string, string>();
  private iqSeq = 0;
  private messageSeq = 0;

  constructor(defs: ModuleDefinition<any>[], o: HarnessOptions = {}) {
    this.host = o.host ?? 'example.com';
    this.storage = new MemoryStorage(o.seed ?? Number(process.env.CHORUS_HARNESS_SEED ?? 1));
    this.moduleStorage = this.counting(o.storage ?? this.storage);
    this.modules = new ModuleSet([this.host]);
    for (const d of defs) this.modules.add(d, { global: o.options?.[d.name] });
  }

  /** The account's actor (created on first use: the account exists). */
  account(local: string): SimUser {
    const bare = new Jid(local, this.host).toString();
    let u = this.users.get(bare);
    if (!u) {
      const created: SimUser = { jid: parseJid(bare), sessions: new Map(), inboxes: new Map(), state: new Map(), ctx: null as never, queue: [], current: 0 };
      created.ctx = this.userContext(created);
      this.users.set(bare, (u = created));
    }
    return u;
  }

  /** Binds a resource (`local@host/resource`) and runs 'session/bound'. */
  bind(full: string): void {
    const jid = parseJid(full);
    const u = this.userOf(jid);
    this.post(u, () => {
      if (u.sessions.has(jid.resource)) throw new Error(`${full} is already bound`);
      u.sessions.set(jid.resource, { resource: jid.resource, address: `session:${full}`, presence: null, priority: 0, since: 0, interested: false });
      u.inboxes.set(jid.resource, []);
      return this.modules.run('session/bound', { ...this.stanzaContext(u), user: u.ctx, resource: jid.resource });
    });
  }

  /** Ends a resource's stream: 'session/unbound' runs, then the session leaves the list (as the core does). */
  unbind(full: string): void {
    const jid = parseJid(full);
    const u = this.userOf(jid);
    this.post(u, () => {
      if (!u.sessions.has(jid.resource)) throw new Error(`${full} is not bound`);
      return andThen(this.modules.run('session/unbound', { ...this.stanzaContext(u), user: u.ctx, resource: jid.resource }), () => { u.sessions.delete(jid.resource); });
    });
  }

  /** Runs 'user/started' as after an actor restart. */
  restart(local: string): void {
    const u = this.account(local);
    this.post(u, () => this.modules.run('user/started', { ...this.stanzaContext(u), user: u.ctx }));
  }

  /** A stanza the client bound as `full` sends; 'from' is stamped as the core does. */
  send(full: string, stanza: string | XmlElement): void {
    const from = parseJid(full);
    const u = this.userOf(from);
    const el = reparse(stanza).withAttrs({ from: full });
    this.post(u, () => {
      if (!u.sessions.has(from.resource)) throw new Error(`${full} sent a stanza but is not bound`);
      const toAttr = el.attr('to');
      const to = toAttr ? parseJid(toAttr) : u.jid;
      const answer: InboundEvent['error'] = (c, t, text, o) => {
        const err = stanzaErrorElement(el, t ?? null, c, text, o);
        if (err) void u.ctx.deliver(from.resource, err);
      };
      // The sender's outbound hooks, as its user actor runs them (not for its own broadcast presence).
      const hooked = el.name === 'presence' && toAttr === undefined ? { stopped: false as const, xml: null }
        : runOutbound(this.modules, el.name as StanzaKind, () => ({ ...this.stanzaContext(u), user: u.ctx }), serialize(el), from, to, answer, from.resource);
      return andThen(hooked, (out) => {
        if (out.stopped) return undefined;
        const sent = out.xml === null ? el : reparse(out.xml);
        if (sent.name === 'presence') {
          const ev = { ...this.stanzaContext(u), stanza: sent, xml: serialize(sent), from, to, user: u.ctx, resource: from.resource, error: answer };
          return andThen(this.modules.run('presence/out', ev), (handled) => { if (!handled) this.unhandled.push(serialize(sent)); });
        }
        if (sent.name === 'iq') return this.clientIq(u, from, sent);
        this.route(sent);
        return undefined;
      });
    });
  }

  /** A stanza arriving from elsewhere (another server), routed like any other. */
  inject(stanza: string | XmlElement): void { this.route(stanza); }

  /** The core's routing: local accounts get their inbound hooks or delivery, other domains go to `remote`. */
  route(stanza: string | XmlElement): void {
    const el = reparse(stanza);
    const toAttr = el.attr('to');
    if (toAttr === undefined) throw new Error(`routed a stanza with no 'to': ${serialize(el)}`);
    const to = parseJid(toAttr);
    if (to.domain !== this.host) { this.remote.push(el); return; }
    const u = this.users.get(to.toBareString());
    if (!u) { this.dropped.push(serialize(el)); return; }
    this.post(u, () => this.arrive(u, to, el));
  }

  /** Waits until no hook or storage operation is pending; rethrows the first hook error. */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let i = 0; i < 100_000 && quiet < 3; i++) {
      await new Promise((r) => setImmediate(r));
      quiet = this.inflight === 0 && this.storageOps === 0 ? quiet + 1 : 0;
    }
    if (quiet < 3) throw new Error('harness did not settle');
    if (this.errors.length) { const e = this.errors[0]; this.errors.length = 0; throw e; }
  }

  /** Everything delivered to a session so far, parsed. */
  received(full: string): XmlElement[] {
    return this.inbox(full).map((s) => parseElement(s));
  }

  /** received(), then forget it. */
  take(full: string): XmlElement[] {
    const out = this.received(full);
    this.inbox(full).length = 0;
    return out;
  }

  /** remote, then forget it. */
  takeRemote(): XmlElement[] { return this.remote.splice(0); }

  /** Forgets what every session received and what went remote. */
  clear(): void {
    for (const u of this.users.values()) for (const box of u.inboxes.values()) box.length = 0;
    this.remote.length = 0;
  }

  session(full: string): SessionInfo | undefined {
    const jid = parseJid(full);
    return this.users.get(jid.toBareString())?.sessions.get(jid.resource);
  }

  state<T>(local: string, module: string): T | undefined {
    const v = this.account(local).state.get(module);
    return v === undefined ? undefined : (JSON.parse(v) as T);
  }

  /** IQs sent by clients and not answered yet (id → sender). */
  unanswered(): string[] { return [...this.openIqs.values()]; }

  /** Sends an IQ from a client and returns its id. */
  iq(full: string, type: 'get' | 'set', payload: string, to?: string): string {
    const id = `iq${++this.iqSeq}`;
    this.send(full, `<iq type="${type}" id="${id}"${to ? ` to="${to}"` : ''}>${payload}</iq>`);
    return id;
  }

  /** Sends an IQ, waits until everything settled, and returns its reply (throws if there is none). */
  async ask(full: string, type: 'get' | 'set', payload: string): Promise<XmlElement> {
    const id = this.iq(full, type, payload);
    await this.settle();
    const r = this.reply(full, id);
    if (!r) throw new Error(`no reply to ${id}`);
    return r;
  }

  /** The reply a session got to IQ `id`. */
  reply(full: string, id: string): XmlElement | undefined {
    return this.received(full).find((e) => e.name === 'iq' && e.attr('id') === id && (e.attr('type') === 'result' || e.attr('type') === 'error'));
  }

  // ---- internals --------------------------------------------------------------------------------

  private counting(inner: Storage): Storage {
    const track = <T>(p: Promise<T>): Promise<T> => {
      this.storageOps++;
      return p.finally(() => { this.storageOps--; });
    };
    return {
      get: (key) => track(inner.get(key)),
      put: (key, value) => track(inner.put(key, value)),
      del: (key) => track(inner.del(key)),
      range: (prefix, opts) => track(inner.range(prefix, opts)),
      batch: (ops) => track(inner.batch(ops)),
    };
  }

  private inbox(full: string): string[] {
    const jid = parseJid(full);
    const box = this.users.get(jid.toBareString())?.inboxes.get(jid.resource);
    if (!box) throw new Error(`no session ${full} was ever bound`);
    return box;
  }

  private userOf(jid: Jid): SimUser {
    if (jid.domain !== this.host) throw new Error(`${jid} is not local`);
    return this.account(jid.local);
  }

  // One actor message: run later, one at a time per account; a promise it returns holds the next.
  private post(u: SimUser, f: () => unknown): void {
    this.inflight++;
    u.queue.push(f);
    if (u.queue.length === 1 && u.current === 0) setImmediate(() => this.pump(u));
  }

  private pump(u: SimUser): void {
    const f = u.queue.shift();
    if (!f) return;
    u.current = ++this.messageSeq;
    const fail = (e: unknown) => { this.errors.push(e); this.logs.push(`[error] ${u.jid}: ${(e as Error)?.stack ?? e}`); };
    const done = () => { u.current = 0; this.inflight--; if (u.queue.length) setImmediate(() => this.pump(u)); };
    let r: unknown;
    try { r = f(); } catch (e) { fail(e); }
    if (r instanceof Promise) r.catch(fail).finally(done);
    else done();
  }

  private stanzaContext(u: SimUser): StanzaContext {
    const message = u.current;
    const during = (what: string) => {
      if (u.current !== message) throw new Error(`${what} called after the message it belongs to was handled`);
    };
    return {
      host: this.host,
      now: () => this.clock,
      route: (s) => { during('route()'); this.routeAs(u, s); },
      storage: this.moduleStorage,
      log: (level, text) => { this.logs.push(`[${level}] ${u.jid}: ${text}`); },
    };
  }

  private userContext(u: SimUser): UserContext {
    const copy = (s: SessionInfo): SessionInfo => ({ ...s });
    const live = (resource: string): SessionInfo => {
      const s = u.sessions.get(resource);
      if (!s) throw new Error(`${u.jid}/${resource} is not bound`);
      return s;
    };
    return {
      jid: u.jid,
      sessions: () => [...u.sessions.values()].map(copy),
      session: (resource) => { const s = u.sessions.get(resource); return s && copy(s); },
      deliver: (resource, stanza) => {
        const xml = typeof stanza === 'string' ? stanza : serialize(stanza);
        strict(xml); // must be one well-formed stanza
        const box = u.sessions.has(resource) ? u.inboxes.get(resource) : undefined;
        if (box) box.push(xml);
        else this.dropped.push(xml);
        return Promise.resolve();
      },
      state: <T>(module: string, init: () => T): T => {
        const v = u.state.get(module);
        return v === undefined ? init() : (JSON.parse(v) as T);
      },
      setState: (module, value) => { u.state.set(module, JSON.stringify(value)); },
      setPresence: (resource, presence, priority) => {
        const s = live(resource);
        if (presence !== null) strict(presence);
        s.presence = presence;
        s.priority = priority;
        this.presenceCalls.push({ jid: `${u.jid}/${resource}`, presence, priority });
      },
      setInterested: (resource) => { live(resource).interested = true; },
    };
  }

  /** What a module routes from the user actor: on the account's behalf it passes the outbound hooks. */
  private routeAs(u: SimUser, stanza: string | XmlElement): void {
    const el = reparse(stanza);
    const fromAttr = el.attr('from'), toAttr = el.attr('to');
    if (fromAttr !== undefined && toAttr !== undefined && parseJid(fromAttr).bareEquals(u.jid)) {
      const out = runOutbound(this.modules, el.name as StanzaKind, () => ({ ...this.stanzaContext(u), user: u.ctx }), serialize(el), parseJid(fromAttr), parseJid(toAttr), () => undefined);
      if (out instanceof Promise) throw new Error('the harness runs outbound hooks of routed stanzas synchronously');
      if (out.stopped) return;
      if (out.xml !== null) { this.route(out.xml); return; }
    }
    this.route(el);
  }

  private arrive(u: SimUser, to: Jid, el: XmlElement): unknown {
    const xml = serialize(el);
    const fromAttr = el.attr('from');
    if (fromAttr === undefined) throw new Error(`${el.name} with no 'from' routed to ${to}: ${xml}`);
    const from = parseJid(fromAttr);
    const error: InboundEvent['error'] = (c, t, text, o) => {
      const err = stanzaErrorElement(el, t ?? null, c, text, o);
      if (err) this.route(err);
    };
    const ev = inboundEvent({ ...this.stanzaContext(u), user: u.ctx }, xml, from, to, error);
    return andThen(this.modules.run(inboundHook(el.name as StanzaKind, to), ev), (handled) => {
      if (handled) return undefined;
      if (el.name === 'presence') { this.unhandled.push(xml); return undefined; }
      const type = el.attr('type');
      if (el.name === 'iq' && to.isBare() && (type === 'get' || type === 'set')) return this.serveIq(u, 'bare', from, el, (reply) => this.route(reply));
      if (!to.isBare() && u.sessions.has(to.resource)) void u.ctx.deliver(to.resource, xml);
      else this.dropped.push(xml);
      return undefined;
    });
  }

  private clientIq(u: SimUser, from: Jid, el: XmlElement): unknown {
    const type = el.attr('type');
    const toAttr = el.attr('to');
    const to = toAttr ? parseJid(toAttr) : null;
    if ((type === 'get' || type === 'set') && (to === null || (to.isBare() && to.bareEquals(u.jid)))) {
      return this.serveIq(u, 'self', from, el, (reply) => u.ctx.deliver(from.resource, reply));
    }
    this.route(el);
  }

  private serveIq(owner: SimUser, target: 'self' | 'bare', from: Jid, el: XmlElement, answer: (reply: XmlElement) => void): unknown {
    const type = el.attr('type') as 'get' | 'set';
    const payload = el.getChildren()[0];
    const key = `${from}#${el.attr('id') ?? ''}`;
    this.openIqs.set(key, `${from} ${serialize(el)}`);
    const out = (xml: string) => { this.openIqs.delete(key); answer(strict(xml)); };
    const handler = payload ? this.modules.iqHandler(type, target, payload.getXmlns()) : undefined;
    if (!handler) { out(serialize(stanzaErrorElement(el, null, 'service-unavailable')!)); return; }
    const to = el.attr('to') ? parseJid(el.attr('to')!) : owner.jid;
    return dispatchIq(handler, { ...this.stanzaContext(owner), stanza: el, payload: payload!, from, to, type, user: owner.ctx }, el, out);
  }
}

// The strict framer as well as the parser: the core's routing refuses what the framer refuses.
const strict = (xml: string): XmlElement => parseElement(xml, NS.CLIENT, { validate: true });

function reparse(stanza: string | XmlElement): XmlElement {
  return strict(typeof stanza === 'string' ? stanza : serialize(stanza));
}
