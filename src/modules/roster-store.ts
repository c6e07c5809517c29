// What the roster and presence modules share: the stored roster item (RFC 6121 §2.1 plus the
// subscription sub-states of Appendix A), its XML form, versioned writes with roster pushes, and the
// per-account task queue that keeps every read-modify-write of one roster in arrival order.
//
// Why a queue: hooks are synchronous and storage is not. A roster change reads an item, decides, and
// writes; two such changes for one account must not interleave (a `subscribe` and an inbound
// `subscribed` for the same contact would both start from the old state). Each task loads its data off
// the actor, comes back in through `later()` to decide and act with a fresh context, and the next task
// starts only after the previous one's writes have landed. Tasks that need no data and find the queue
// idle run at once, inside the hook that created them.
import { keys } from '../storage/db.ts';
import { serialize, x } from '../xml/builder.ts';
import { parseElement, type XmlElement } from '../xml/element.ts';
import { NS } from '../xmpp/namespaces.ts';
import type { StanzaContext, Storage, UserContext } from '../xmpp/module.ts';

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  /** The contact's bare JID. */
  jid: string;
  name?: string;
  groups: string[];
  subscription: Subscription;
  /** Pending out: the user asked for the contact's presence and has no answer yet (ask='subscribe'). */
  ask: boolean;
  /** Pre-approved (RFC 6121 §3.4): the contact's next subscribe is accepted without asking the user. */
  approved: boolean;
  /** Pending in: the contact's subscribe stanza, kept whole and redelivered at each initial presence. */
  pendingIn: string | null;
  /** False for a record that only holds a pending inbound request: the client's roster does not show it. */
  listed: boolean;
}

export const hasTo = (s: Subscription): boolean => s === 'to' || s === 'both';
export const hasFrom = (s: Subscription): boolean => s === 'from' || s === 'both';

export function newItem(jid: string): RosterItem {
  return { jid, groups: [], subscription: 'none', ask: false, approved: false, pendingIn: null, listed: false };
}

/** `<item/>` as the client sees it (RFC 6121 §2.1.2). */
export function itemElement(item: RosterItem): XmlElement {
  return x('item', {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask ? 'subscribe' : null,
    approved: item.approved ? 'true' : null,
  }, item.groups.map((g) => x('group', null, g)));
}

// ---- storage -------------------------------------------------------------------------------------

export interface Limits {
  /** Most roster records per account (pending inbound requests count too: they are stored). */
  maxItems: number;
}

export const DEFAULT_LIMITS: Limits = { maxItems: 1000 };

// The contract gives a module no way to read another module's options, so roster.ts registers its limits
// here under its ModuleSet's `hosts` array (one array per ModuleSet) and presence.ts looks them up.
const limitsBySet = new WeakMap<readonly string[], Limits>();
export function setLimits(hosts: readonly string[], limits: Limits): void { limitsBySet.set(hosts, limits); }
export function limitsFor(hosts: readonly string[]): Limits { return limitsBySet.get(hosts) ?? DEFAULT_LIMITS; }

export async function loadItem(storage: Storage, owner: string, contact: string): Promise<RosterItem | undefined> {
  return storage.get<RosterItem>(keys.roster(owner, contact));
}

export async function loadAll(storage: Storage, owner: string): Promise<RosterItem[]> {
  return (await storage.range<RosterItem>(keys.rosterOf(owner))).map(([, v]) => v);
}

/** The version counter; undefined when the roster never changed (or predates versioning). */
export async function loadVersion(storage: Storage, owner: string): Promise<number | undefined> {
  return storage.get<number>(keys.rosterver(owner));
}

/** True when the account already holds `max` records, so one more would exceed the limit. */
export async function isFull(storage: Storage, owner: string, max: number): Promise<boolean> {
  return (await storage.range(keys.rosterOf(owner), { limit: max })).length >= max;
}

/** One item with the version, for tasks that change a single contact. */
export interface ItemAndVersion { item: RosterItem | undefined; ver: number | undefined; full: boolean }

/** `maxItems` null: this change never creates a record, so the limit is not looked at. */
export async function loadForChange(storage: Storage, owner: string, contact: string, maxItems: number | null): Promise<ItemAndVersion> {
  const [item, ver] = await Promise.all([loadItem(storage, owner, contact), loadVersion(storage, owner)]);
  const full = item === undefined && maxItems !== null ? await isFull(storage, owner, maxItems) : false;
  return { item, ver, full };
}

// A counter that only grows. It starts at the clock rather than 1 so that an account deleted and created
// again can never hand out a version a client cached for the old one.
function nextVersion(ver: number | undefined, now: number): number {
  return ver === undefined ? Math.max(1, Math.floor(now)) : ver + 1;
}

export const versionString = (ver: number | undefined): string => String(ver ?? 0);

let pushSeq = 0;

/** Roster push (RFC 6121 §2.1.6) to every resource that asked for the roster. No 'from': it is the server. */
export function pushToInterested(user: UserContext, ver: number, item: XmlElement): void {
  for (const s of user.sessions()) {
    if (!s.interested) continue;
    const to = user.jid.bare().withResource(s.resource).toString();
    user.deliver(s.resource, x('iq', { type: 'set', id: `push-${ver}-${++pushSeq}`, to },
      x('query', { xmlns: NS.ROSTER, ver: String(ver) }, item)));
  }
}

/**
 * Stores one contact's new record (null = gone) and, when what the client sees changed, bumps the version
 * and pushes the item. Returns the write, which the task queue waits for before starting the next task.
 */
export function saveItem(
  ctx: StanzaContext & { user: UserContext }, before: RosterItem | undefined, after: RosterItem | null,
  ver: number | undefined, contact: string,
): { write: Promise<void>; ver: number | undefined } {
  const owner = ctx.user.jid.toBareString();
  const shown = (i: RosterItem | null | undefined) => (i && i.listed ? serialize(itemElement(i)) : null);
  const beforeXml = shown(before), afterXml = shown(after);
  const ops: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }> = [];
  // an unlisted record exists only to hold a pending request
  const keep = after !== null && (after.listed || after.pendingIn !== null);
  if (keep) ops.push({ type: 'put', key: keys.roster(owner, contact), value: after });
  else if (before !== undefined) ops.push({ type: 'del', key: keys.roster(owner, contact) });
  let newVer = ver;
  if (beforeXml !== afterXml) {
    newVer = nextVersion(ver, ctx.now());
    ops.push({ type: 'put', key: keys.rosterver(owner), value: newVer });
    pushToInterested(ctx.user, newVer, afterXml !== null ? itemElement(after!) : x('item', { jid: contact, subscription: 'remove' }));
  }
  return { write: ops.length ? ctx.storage.batch(ops) : Promise.resolve(), ver: newVer };
}

// ---- the per-account task queue ------------------------------------------------------------------

export type ActorContext = StanzaContext & { user: UserContext };

export interface TaskSpec<T> {
  /** Reads what the decision needs, off the actor. Omitted: the task needs no data. */
  load?: (storage: Storage) => Promise<T>;
  /** Decides and acts inside the actor; a returned promise (the writes) holds the queue until it settles. */
  apply: (ctx: ActorContext, data: T) => void | Promise<unknown>;
  /** Runs inside the actor instead of apply when load failed. */
  fail?: (ctx: ActorContext, err: unknown) => void;
  /**
   * The event's keep(): the stanza stays in the durable mailbox until the task's writes have landed, so
   * a crash in between replays it (every task is safe to replay). Called only when the task cannot
   * finish inside the hook; the release runs inside the actor.
   */
  hold?: () => () => void;
}

interface Task {
  id: number;
  spec: TaskSpec<any>;
  storage: Storage;
  wake: (data: unknown) => void;
  log: StanzaContext['log'];
  state: 'queued' | 'loading' | 'ready' | 'applying';
  since: number;
  data?: unknown;
  error?: unknown;
  failed?: boolean;
  release?: () => void;
}

interface Queue { owner: string; tasks: Task[] }

/** What a queue's `later()` message carries: a task's data is ready, or its stanza can be released. */
export interface WakeMessage { rosterTask: number; owner: string; release?: true }

// Per thread, like the user actors it serves (one ModuleSet per scheduler thread).
const queues = new Map<string, Queue>();
/** Releases of finished tasks, waiting for their trip back into the actor. */
const releases = new Map<number, () => void>();
let taskSeq = 0;
/** A task that has not come back for this long is assumed lost (its actor moved or crashed) and dropped. */
const STUCK_MS = 30_000;

/** True when the account has tasks waiting or running. */
export function busy(owner: string): boolean {
  return (queues.get(owner)?.tasks.length ?? 0) > 0;
}

/** Queues a task for the event's account; `module` names the module whose onLater hands it to resume(). */
export function enqueue<T>(ev: ActorContext, module: string, spec: TaskSpec<T>): void {
  const owner = ev.user.jid.toBareString();
  let q = queues.get(owner);
  if (!q) queues.set(owner, (q = { owner, tasks: [] }));
  const head = q.tasks[0];
  if (head && Date.now() - head.since > STUCK_MS) {
    ev.log('warn', `roster task ${head.id} for ${owner} never came back (${head.state}); dropped`);
    q.tasks.shift();
    if (q.tasks[0]) start(q);
  }
  const task: Task = { id: ++taskSeq, spec, storage: ev.storage, wake: ev.later(module), log: ev.log, state: 'queued', since: Date.now() };
  q.tasks.push(task);
  if (q.tasks.length === 1 && !spec.load) {
    task.state = 'ready';
    run(q, task, ev, spec.hold); // idle queue, nothing to read: act now, in this hook
    return;
  }
  task.release = spec.hold?.();
  if (q.tasks.length === 1) start(q);
}

/** The onLater handler of both modules: a task whose data is loaded continues here, inside the actor. */
export function resume(data: unknown, ctx: StanzaContext & { user?: UserContext }): void {
  const m = data as Partial<WakeMessage> | null;
  if (!m || typeof m.rosterTask !== 'number' || typeof m.owner !== 'string') return;
  if (m.release) {
    const release = releases.get(m.rosterTask);
    releases.delete(m.rosterTask);
    release?.();
    return;
  }
  const q = queues.get(m.owner);
  const task = q?.tasks[0];
  if (!q || !task || task.id !== m.rosterTask || task.state !== 'ready') return;
  if (!ctx.user || ctx.user.jid.toBareString() !== m.owner) return;
  run(q, task, ctx as ActorContext);
}

function start(q: Queue): void {
  const task = q.tasks[0];
  if (!task || task.state !== 'queued') return;
  task.since = Date.now();
  const wake = () => {
    task.state = 'ready';
    try {
      task.wake({ rosterTask: task.id, owner: q.owner } satisfies WakeMessage);
    } catch (err) {
      task.log('error', `roster task ${task.id}: cannot wake the actor: ${(err as Error).message}`);
      finish(q, task);
    }
  };
  if (!task.spec.load) { wake(); return; }
  task.state = 'loading';
  task.spec.load(task.storage).then(
    (d) => { task.data = d; },
    (e) => { task.error = e; task.failed = true; },
  ).then(wake);
}

/** `hold` is given when running inside the hook: the task takes the event's keep() only if it must wait. */
function run(q: Queue, task: Task, ctx: ActorContext, hold?: () => () => void): void {
  task.state = 'applying';
  task.since = Date.now();
  let pending: unknown;
  try {
    if (task.failed) {
      ctx.log('error', `roster read for ${q.owner} failed: ${(task.error as Error)?.message ?? task.error}`);
      task.spec.fail?.(ctx, task.error);
    } else {
      pending = task.spec.apply(ctx, task.data);
    }
  } catch (err) {
    ctx.log('error', `roster task for ${q.owner} threw: ${(err as Error)?.stack ?? err}`);
  }
  if (pending instanceof Promise) {
    if (hold) task.release = hold();
    pending.catch((err) => task.log('error', `roster write for ${q.owner} failed: ${(err as Error)?.message ?? err}`))
      .finally(() => {
        if (task.release) {
          releases.set(task.id, task.release);
          try { task.wake({ rosterTask: task.id, owner: q.owner, release: true } satisfies WakeMessage); } catch { releases.delete(task.id); }
        }
        finish(q, task);
      });
  } else {
    task.release?.();
    finish(q, task);
  }
}

function finish(q: Queue, task: Task): void {
  if (q.tasks[0] !== task) return;
  q.tasks.shift();
  if (q.tasks.length === 0) {
    if (queues.get(q.owner) === q) queues.delete(q.owner);
    return;
  }
  start(q);
}

// ---- presence the subscription changes send ------------------------------------------------------

/** The user's sessions that sent available presence (RFC 6121 §4.1's "available resources"). */
export function availableSessions(user: UserContext): Array<{ resource: string; presence: string }> {
  const out: Array<{ resource: string; presence: string }> = [];
  for (const s of user.sessions()) if (s.presence !== null) out.push({ resource: s.resource, presence: s.presence });
  return out;
}

/**
 * From each available resource of the user to `to`: its current presence (a new subscriber gets it at
 * once, RFC 6121 §3.1.5), or unavailable presence (a subscription from `to` ended, §3.2.2 and §3.3.3).
 */
export function sendPresenceOf(ctx: ActorContext, to: string, kind: 'current' | 'unavailable'): void {
  const bare = ctx.user.jid.bare();
  for (const s of availableSessions(ctx.user)) {
    const from = bare.withResource(s.resource).toString();
    if (kind === 'unavailable') {
      ctx.route(x('presence', { type: 'unavailable', from, to }));
      continue;
    }
    let el: XmlElement;
    try { el = parseElement(s.presence); } catch { el = x('presence'); }
    ctx.route(el.withAttrs({ from, to }));
  }
}
