// A scheduler: one long-lived worker thread hosting many actors. It opens the node's LevelDB itself
// (classic-level's multithreading mode), so durable mail and snapshots are written where the actors
// run, without a hop through the main thread.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Level } from 'level';
import type { ThreadId } from './address.ts';
import { DurableStore } from './durable-store.ts';
import { ActorHost } from './host.ts';
import { KindLoader } from './loader.ts';
import type { Control } from './protocol.ts';
import { Router } from './router.ts';

export interface SchedulerData {
  entry: string;
  thread: ThreadId;
  schedulers: number;
  dbPath: string;
  sync: boolean;
  actorDirs: string[];
  /** Modules whose `install(services, data)` adds shared services (storage, config, hooks) to this thread. */
  serviceModules: string[];
  settings: Record<string, unknown>;
  peers: Array<[ThreadId, MessagePort]>;
  restore: boolean;
}

const data = workerData as SchedulerData;
const db = new Level<string, string>(data.dbPath, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
await db.open({ multithreading: true });
// The loader is a service too: code that hot-reloads more than actor kinds (feature modules) uses it.
const loader = new KindLoader(data.actorDirs);
// The thread's group commit is a service too: records an actor writes with its handling ride in it.
const store = new DurableStore(db, data.sync);
const services = new Map<string, unknown>([['db', db], ['settings', data.settings], ['loader', loader], ['store', store]]);
for (const m of data.serviceModules) {
  const mod = (await import(m)) as { install: (s: Map<string, unknown>, d: SchedulerData) => Promise<void> | void };
  await mod.install(services, data);
}

const log = (level: 'debug' | 'info' | 'warn' | 'error', text: string) => router.sendControl(0, { c: 'log', level, text });
const host = new ActorHost({ thread: data.thread, store, loader, services, log });
const router = new Router(data.thread, data.schedulers, {
  deliver: (env) => host.deliver(env),
  control: (c: Control, from) => {
    if (c.c === 'peer') router.addPeer(c.thread, c.port);
    else if (c.c === 'shutdown') void shutdown(c.reply, from);
    else host.control(c, from);
  },
});
host.attach(router);
// A rejected promise nobody handles belongs to no actor's message (what an actor awaits settles in
// its frame, and a rejected suspend() crashes that actor): it is logged, and the thread goes on with
// its actors, as one process's failure leaves an Erlang node running. (Node's default would end the
// thread, and every actor on it would restart.)
process.on('unhandledRejection', (reason) => log('error', `scheduler ${data.thread}: a promise no actor waits for failed: ${(reason as Error)?.stack ?? String(reason)}`));
for (const [thread, port] of data.peers) router.addPeer(thread, port);

async function shutdown(reply: number, from: ThreadId): Promise<void> {
  await host.shutdown();
  router.sendControl(from, { c: 'shutdown-done', reply });
  setImmediate(async () => { router.close(); await db.close(); });
}

await host.restoreOwned(data.restore);
router.sendControl(0, { c: 'ready', thread: data.thread });
// The parent port only carries the death notice; keep it from holding the thread open on its own.
parentPort?.unref();
