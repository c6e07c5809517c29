// The real core in this process, for testing feature modules: the user actor (actors/user) on a real
// ActorHost, a real LevelDB in a temp dir, the modules under test in a real ModuleSet, real routing.
// Where a client's session or another server would be stands a probe actor (test/fixtures/core/actors/
// probe) that reports what it gets. The main thread's part is played here: a crashed actor is
// restarted from its snapshot, as its supervisor does, and the node's operator commands
// (callNode('admin', …)) are the test's own (nodeCommands).
//
// Other servers ("peers") are service domains of a test module, served by probes: what the core
// routes to them is what a server-to-server link would carry. Any other domain is remote and is
// answered remote-server-not-found, as on a node without federation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { Level } from 'level';
import type { ToUser } from '../../actors/user/messages.ts';
import { MAIN_THREAD, type Address } from '../../src/runtime/address.ts';
import { DurableStore } from '../../src/runtime/durable-store.ts';
import { ActorHost } from '../../src/runtime/host.ts';
import { KindLoader, type LoadedKind } from '../../src/runtime/loader.ts';
import { isControl, type Control, type Packet } from '../../src/runtime/protocol.ts';
import { Router } from '../../src/runtime/router.ts';
import { kvStorage } from '../../src/storage/kv.ts';
import { serialize } from '../../src/xml/builder.ts';
import { parseElement, type XmlElement } from '../../src/xml/element.ts';
import { OWN_STANZA, validateStanza } from '../../src/xml/framer.ts';
import { NS } from '../../src/xml/namespaces.ts';
import { Jid, parseJid } from '../../src/xmpp/jid.ts';
import type { ModuleDefinition, SessionInfo, Storage } from '../../src/xmpp/module.ts';
import { ModuleSet } from '../../src/xmpp/modules.ts';
import { xmppService, type XmppService, type XmppSettings } from '../../src/xmpp-service.ts';
import { initialUserContext, type UserCtx } from '../../actors/user/core.ts';
import { listen } from './probe-sink.ts';

export interface CoreOptions {
  host?: string;
  /** Module options by module name, as in the config's modules.options. */
  options?: Record<string, Record<string, unknown>>;
  /** Domains of other servers, played by probes. */
  peers?: string[];
  sessionsPerAccount?: number;
  /** The server's admins (bare JIDs), as the config's `admins`. */
  admins?: string[];
  /** The node's operator commands (callNode('admin', …)), as a node's main thread answers them. */
  nodeCommands?: Record<string, (args: Record<string, unknown>) => unknown>;
  /** The LevelDB of an earlier core (its close() gave it): a node started again on its data. */
  dir?: string;
}

const THREAD = 1;
/** The reason crash() kills with: not a failure. */
const DELIBERATE = 'killed by the test';
const ACTOR_DIRS = [fileURLToPath(new URL('../fixtures/core/actors', import.meta.url)), fileURLToPath(new URL('../../actors', import.meta.url))];

/** Kinds bundled once per process: every core of a test file runs the same code. */
class OnceLoader extends KindLoader {
  private loaded = new Map<string, Promise<LoadedKind>>();
  override load(kind: string): Promise<LoadedKind> {
    let l = this.loaded.get(kind);
    if (!l) this.loaded.set(kind, (l = super.load(kind)));
    return l;
  }
}
const loader = new OnceLoader(ACTOR_DIRS);

const dirs: string[] = [];
process.on('exit', () => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Other servers: service domains whose addresses are probes. */
const peerServers = (domains: string[]): ModuleDefinition => ({
  name: 'test-peers', description: 'other servers, played by probes', setup: () => undefined,
  services: () => domains.map((domain) => ({ domain, kind: 'probe' })),
});

export class Core {
  readonly logs: string[] = [];
  /** The time modules read (StanzaContext.now). */
  clock = 1_700_000_000_000;
  /** When set, the modules' storage operations fail with it. */
  failWith: Error | null = null;
  /** Called once a module's write of `key` is done, before the module goes on (to crash it there). */
  afterWrite: ((key: string) => void) | null = null;
  /** What the core routed to peer servers. */
  readonly remote: XmlElement[] = [];
  private inboxes = new Map<string, string[]>();
  private sent: Array<{ full: string; id: string }> = [];
  /** `<full JID> <id>` of every IQ result or error delivered. */
  private answered = new Set<string>();
  private storageOps = 0;
  private mainPending = 0;
  private reported = 0;
  private iqSeq = 0;
  private readonly peers: Set<string>;
  readonly storage: Storage;
  /** The loaded modules (as every thread of a node has them). */
  get modules(): ModuleSet { return (this.services.get('xmpp') as XmppService).modules; }

  private constructor(readonly host: string, private readonly dir: string, private readonly db: Level<string, string>, private readonly store: DurableStore,
    private readonly actors: ActorHost, private readonly router: Router, private readonly services: Map<string, unknown>, peers: string[]) {
    this.peers = new Set(peers);
    this.storage = kvStorage(db, store);
  }

  static async start(defs: ModuleDefinition<any>[], o: CoreOptions = {}): Promise<Core> {
    const host = o.host ?? 'example.com';
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'chorus-core-'));
    if (!o.dir) dirs.push(dir);
    const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    const modules = new ModuleSet([host], undefined, o.admins);
    for (const d of [...defs, ...(o.peers?.length ? [peerServers(o.peers)] : [])]) modules.add(d, { global: o.options?.[d.name] });
    const settings: XmppSettings = {
      hosts: [host], admins: o.admins ?? [], requireEncryption: false, sasl2: false, fastTokenDays: 21, components: {}, sessionsPerAccount: o.sessionsPerAccount ?? 10, maxStanzaBytes: 262_144, serverSecret: 'test',
      loginAttempts: { maxFailures: 5, windowSeconds: 60, addressMaxFailures: 20, addressWindowSeconds: 60 }, federation: null, bootId: 'test',
      modules: { enabled: defs.map((d) => d.name), disabled: [], options: o.options ?? {} }, dataDir: dir, web: { http: false, https: false },
    };
    const store = new DurableStore(db);
    const services = new Map<string, unknown>([['db', db], ['loader', loader], ['store', store]]);
    let core: Core | undefined;
    const actors = new ActorHost({ thread: THREAD, store, loader, services, log: (level, text) => core!.logs.push(`[${level}] ${text}`) });
    const router = new Router(THREAD, 1, actors);
    core = new Core(host, dir, db, store, actors, router, services, o.peers ?? []);
    const c = core;
    const svc = xmppService(settings, modules, services, () => c.clock);
    svc.storage = c.counting(svc.storage);
    services.set('xmpp', svc);
    actors.attach(router);
    router.addPeer(MAIN_THREAD, c.mainThread(o.nodeCommands ?? {}));
    listen((self, from, m) => c.probe(self, from, m));
    return c;
  }

  // ---- what clients and peers do ------------------------------------------------------------

  /** Binds a resource (`local@host/resource`): its session asks the user actor, as at login. */
  bind(full: string): void {
    const jid = this.local(full);
    this.inboxes.set(full, []);
    this.tell(jid, full, { type: 'bind', resource: jid.resource, session: probeOf(full) });
  }

  /** The session ends (its stream closed). */
  unbind(full: string): void {
    const jid = this.local(full);
    this.tell(jid, full, { type: 'unbind', resource: jid.resource });
  }

  /** A stanza the client bound as `full` sends; its session stamps 'from'. */
  send(full: string, stanza: string | XmlElement): void {
    const jid = this.local(full);
    const xml = serialize(strict(stanza).withAttrs({ from: full }));
    this.tell(jid, full, { type: 'client', xml, h: validateStanza(xml, undefined, OWN_STANZA), resource: jid.resource, conn: 'conn:test.1', seq: 0, done: 0 });
  }

  /** A stanza from a peer server for a local account, as a server-to-server link hands it on. */
  inject(stanza: string | XmlElement): void {
    const el = strict(stanza);
    const to = this.local(el.attr('to') ?? '');
    const xml = serialize(el);
    void this.actors.durable.send(`user:${to.toBareString()}`, probeOf(parseJid(el.attr('from')!).toBareString()), { type: 'stanza', xml, h: validateStanza(xml, undefined, OWN_STANZA) } satisfies ToUser);
  }

  /** A session that ends hands back a message it got and could not deliver (its client never had it). */
  handBack(full: string, stanza: string | XmlElement): void {
    this.tell(this.local(full), full, { type: 'redeliver', xml: serialize(strict(stanza)), except: full });
  }

  /** Stops every actor (snapshots kept) and closes the database; returns its folder for a restart. */
  async close(): Promise<string> {
    await this.settle();
    await this.actors.shutdown();
    await this.db.close();
    return this.dir;
  }

  /** The account is deleted (its record is gone): its user actor has the modules remove its data. */
  deleteAccount(local: string): void {
    this.router.send({ t: `user:${local}@${this.host}`, f: 'probe:core', m: { type: 'delete', reply: 'probe:core' } satisfies ToUser });
  }

  /** The account's actor crashes and its supervisor restarts it from its snapshot. */
  crash(local: string): void { this.kill(`user:${local}@${this.host}`); }

  /** Any actor crashes (`room:…`) and is restarted from its snapshot. */
  kill(address: Address): void {
    this.router.sendControl(THREAD, { c: 'kill', address, reason: DELIBERATE });
  }

  /** Whether an actor has a snapshot (a temporary room that ended has none). */
  async hasSnapshot(address: Address): Promise<boolean> { return (await this.store.loadSnapshot(address)) !== undefined; }

  /** Sends an IQ from a client and returns its id. */
  iq(full: string, type: 'get' | 'set', payload: string, to?: string): string {
    const id = `iq${++this.iqSeq}`;
    this.sent.push({ full, id });
    this.send(full, `<iq type="${type}" id="${id}"${to ? ` to="${to}"` : ''}>${payload}</iq>`);
    return id;
  }

  /** Sends an IQ, waits until everything settled, and returns its reply (throws if there is none). */
  async ask(full: string, type: 'get' | 'set', payload: string, to?: string): Promise<XmlElement> {
    const id = this.iq(full, type, payload, to);
    await this.settle();
    const r = this.reply(full, id);
    if (!r) throw new Error(`no reply to ${id}`);
    return r;
  }

  // ---- waiting and looking ------------------------------------------------------------------

  /**
   * Waits until nothing is in motion: no message queued or being handled, no actor starting, nothing
   * unwritten or unconfirmed, no module storage operation pending. Throws the first crash since the
   * last settle().
   */
  async settle(): Promise<void> {
    const until = Date.now() + 30_000;
    for (let quiet = 0; quiet < 3;) {
      await new Promise((r) => setImmediate(r));
      quiet = this.actors.idle() && this.storageOps === 0 && this.mainPending === 0 && this.router.pendingFor(MAIN_THREAD) === 0 ? quiet + 1 : 0;
      if (Date.now() > until) throw new Error('the core did not settle within 30 s');
    }
    const crashes = this.logs.slice(this.reported).filter((l) => l.startsWith('[error]') && !l.includes(`crashed: ${DELIBERATE}`));
    this.reported = this.logs.length;
    if (crashes.length) throw new Error(crashes.join('\n'));
  }

  /** Everything delivered to a session so far, parsed. */
  received(full: string): XmlElement[] { return this.inbox(full).map((s) => strict(s)); }

  /** received(), then forget it. */
  take(full: string): XmlElement[] {
    const out = this.received(full);
    this.inbox(full).length = 0;
    return out;
  }

  /** What went to peer servers, then forget it. */
  takeRemote(): XmlElement[] { return this.remote.splice(0); }

  /** Forgets what every session received and what went to peers. */
  clear(): void {
    for (const box of this.inboxes.values()) box.length = 0;
    this.remote.length = 0;
  }

  /** The reply a session got to IQ `id`. */
  reply(full: string, id: string): XmlElement | undefined {
    return this.received(full).find((e) => e.name === 'iq' && e.attr('id') === id && (e.attr('type') === 'result' || e.attr('type') === 'error'));
  }

  /** IQs sent with iq() that got no reply, as `<full JID> <id>`. */
  unanswered(): string[] { return this.sent.map((s) => `${s.full} ${s.id}`).filter((k) => !this.answered.has(k)); }

  /** A bound session as the account's user actor keeps it (its last snapshot). */
  async session(full: string): Promise<SessionInfo | undefined> {
    const jid = this.local(full);
    return (await this.userCtx(jid.local))?.sessions[jid.resource];
  }

  /** What a module keeps in the account's user actor (its last snapshot). */
  async moduleState<T>(local: string, module: string): Promise<T | undefined> {
    return (await this.userCtx(local))?.mods[module] as T | undefined;
  }

  /** The account's actor restarts (as after a crash) from a snapshot whose `module` state is `value`. */
  async restartWith(local: string, module: string, value: unknown): Promise<void> {
    await this.settle();
    const address = `user:${local}@${this.host}`;
    const ctx = (await this.userCtx(local)) ?? initialUserContext(address);
    this.store.saveSnapshot(address, { kind: 'user', version: 1, snapshot: { status: 'active', context: { ...ctx, mods: { ...ctx.mods, [module]: value } } }, savedAt: Date.now() });
    await this.store.flushed();
    this.crash(local);
  }

  private async userCtx(local: string): Promise<UserCtx | undefined> {
    const saved = await this.store.loadSnapshot(`user:${local}@${this.host}`);
    return (saved?.snapshot as { context: UserCtx } | undefined)?.context;
  }

  seed(key: string, value: unknown): Promise<void> { return this.storage.put(key, value); }
  peek<T>(key: string): Promise<T | undefined> { return this.storage.get<T>(key); }

  // ---- internals --------------------------------------------------------------------------------

  private local(full: string): Jid {
    const jid = parseJid(full);
    if (jid.domain !== this.host || jid.local === '') throw new Error(`${full} is not an account of ${this.host}`);
    return jid;
  }

  private inbox(full: string): string[] {
    const box = this.inboxes.get(full);
    if (!box) throw new Error(`no session ${full} was ever bound`);
    return box;
  }

  /** A message from the session of `full` to its user actor (sessions send plainly: a crash of the
   *  user actor loses it, and the connection replays it). */
  private tell(jid: Jid, full: string, m: ToUser): void {
    this.router.send({ t: `user:${jid.toBareString()}`, f: probeOf(full), m });
  }

  /** What a probe got: a session's deliveries, a peer's stanzas (a bind's answer needs nothing: the
   *  user actor watches the session from then on, as it does a real one). */
  private probe(self: Address, _from: Address | undefined, m: { type: string } & Record<string, unknown>): void {
    const who = self.slice('probe:'.length);
    const jid = parseJid(who);
    if (this.peers.has(jid.domain)) {
      if (m.type === 'stanza') this.remote.push(strict(m.xml as string));
      return;
    }
    if (m.type === 'deliver') {
      const xml = m.xml as string;
      const h = validateStanza(xml, undefined, OWN_STANZA);
      if (h.name === 'iq' && (h.type === 'result' || h.type === 'error')) this.answered.add(`${who} ${h.id}`);
      this.inboxes.get(who)?.push(xml);
      return;
    }
  }

  /** The main thread's end of the router: a crashed actor is restarted from its snapshot (as the
   *  supervisors' restart does); the rest (activations, a connection's 'handled') needs no one. */
  private mainThread(commands: Record<string, (args: Record<string, unknown>) => unknown>): MessagePort {
    const onBatch = (batch: Packet[]) => {
      for (const p of batch) {
        if (!isControl(p)) continue;
        const c = p as Control;
        if (c.c === 'call') {
          const f = c.service === 'admin' ? commands[c.method] : undefined;
          this.mainPending++;
          Promise.resolve().then(() => { if (!f) throw new Error(`no method ${c.service}.${c.method} on the main thread`); return f(c.args[0] as Record<string, unknown>); })
            .then((value) => this.router.sendControl(THREAD, { c: 'call-reply', reply: c.reply, value }),
              (err: Error) => this.router.sendControl(THREAD, { c: 'call-reply', reply: c.reply, error: err.message }))
            .finally(() => { this.mainPending--; });
          continue;
        }
        if (c.c === 'exited' && c.reason !== 'normal' && c.reason !== 'shutdown' && c.reason !== 'moved') {
          this.router.sendControl(THREAD, { c: 'spawn', address: c.address, restore: true });
        }
      }
    };
    const port = {
      postMessage: (batch: Packet[]) => {
        this.mainPending++;
        setImmediate(() => { this.mainPending--; onBatch(batch); });
      },
      on: () => port, close: () => undefined,
    };
    return port as unknown as MessagePort;
  }

  private counting(inner: Storage): Storage {
    const op = <T>(f: () => Promise<T>): Promise<T> => {
      this.storageOps++;
      const p = this.failWith ? Promise.reject(this.failWith) : f();
      return p.finally(() => { this.storageOps--; });
    };
    return {
      get: (key) => op(() => inner.get(key)),
      put: (key, value) => op(() => inner.put(key, value)).then(() => this.afterWrite?.(key)),
      del: (key) => op(() => inner.del(key)),
      range: (prefix, opts) => op(() => inner.range(prefix, opts)),
      batch: (ops) => op(() => inner.batch(ops)),
      withHandling: (ops) => { if (this.failWith) throw this.failWith; inner.withHandling(ops); },
    };
  }
}

const probeOf = (jid: string): Address => `probe:${jid}`;

/** Parsed as the framer would take it: the core refuses what the framer refuses. */
const strict = (stanza: string | XmlElement): XmlElement =>
  parseElement(typeof stanza === 'string' ? stanza : serialize(stanza), NS.CLIENT, { validate: true });
