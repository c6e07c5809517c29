// Starting and stopping a node: the runtime, its supervision tree and the admin socket. The tree
// (supervisors/tree.ts) and what runs on top (XMPP listeners, services) are passed in: the runtime
// knows no application.
import { join } from 'node:path';
import { AdminServer, type AdminHandler } from './admin.ts';
import { Runtime, type RuntimeOptions } from './runtime.ts';
import type { ChildSpec, Supervisor, SupervisorLog } from './supervisor.ts';

export interface RunningRuntime {
  runtime: Runtime;
  root: Supervisor;
  admin: AdminServer;
  stop(): Promise<void>;
}

export interface StartRuntimeOptions extends RuntimeOptions {
  /** Builds the supervision tree (supervisors/tree.ts's nodeTree) over the runtime and the listeners. */
  tree: (runtime: Runtime, listeners: ChildSpec[], log: SupervisorLog) => Supervisor;
  listeners?: (runtime: Runtime) => ChildSpec[];
  /** Extra admin commands (they may override the runtime's own, e.g. to add to 'reload'). */
  adminCommands?: (runtime: Runtime, builtin: Map<string, AdminHandler>) => Map<string, AdminHandler>;
  /** Called if the root supervisor gives up (the node can no longer run). */
  onFatal?: (reason: string) => void;
}

export async function startRuntime(o: StartRuntimeOptions): Promise<RunningRuntime> {
  const runtime = new Runtime(o);
  await runtime.open();
  const log = (level: 'info' | 'warn' | 'error', text: string) => runtime.log(level, text);
  const root = o.tree(runtime, o.listeners?.(runtime) ?? [], log);
  runtime.setRoot(root);
  try {
    await root.start();
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const builtin = runtimeCommands(runtime);
  const commands = new Map<string, AdminHandler>([...builtin, ...(o.adminCommands?.(runtime, builtin) ?? [])]);
  const admin = new AdminServer(join(o.dataDir, 'admin.sock'), commands);
  // The same commands for actors (callNode('admin', …)): an admin's ad-hoc command runs what the CLI runs.
  runtime.provide('admin', Object.fromEntries(commands));
  await admin.listen();
  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= (async () => {
    runtime.markStopping();
    log('info', 'node stopping');
    await admin.close();
    await root.stop();
    await runtime.close();
    log('info', 'node stopped');
  })());
  root.onExit((reason) => {
    runtime.log('error', `root supervisor gave up (${reason}); stopping the node`);
    void stop().then(() => o.onFatal?.(reason));
  });
  return { runtime, root, admin, stop };
}

/** status / actors / ask / kill / reload: what an operator asks a running node. */
function runtimeCommands(rt: Runtime): Map<string, AdminHandler> {
  return new Map<string, AdminHandler>([
    ['status', async () => {
      const stats = await rt.stats();
      const byKind: Record<string, number> = {};
      for (const s of stats) for (const [k, n] of Object.entries(s.byKind)) byKind[k] = (byKind[k] ?? 0) + n;
      return {
        uptimeSeconds: Math.round((Date.now() - rt.started) / 1000),
        rssBytes: process.memoryUsage().rss,
        // Where the RSS is, beside the schedulers' heaps: the main thread's heap (connections, framers)
        // and what lives outside any heap (socket and TLS buffers, Buffers).
        mainThread: (({ heapUsed, external, arrayBuffers }) => ({ heapUsed, external, arrayBuffers }))(process.memoryUsage()),
        schedulers: stats.map((s) => ({ thread: s.thread, actors: s.actors, mailboxDepth: s.mailboxDepth, maxMailbox: s.maxMailbox, handled: s.handled, crashes: s.crashes, heapUsed: s.heapUsed, eventLoopLagMs: s.eventLoopLagMs })),
        actorsByKind: byKind,
        kinds: stats[0]?.kinds ?? {},
        supervisors: rt.supervisors(),
        restarts: { schedulers: rt.counters.schedulerRestarts, actorCrashes: rt.counters.actorCrashes },
      };
    }],
    ['actors', async (args) => {
      const kind = typeof args.kind === 'string' ? args.kind : undefined;
      const stats = await rt.stats(true, kind);
      return stats.flatMap((s) => (s.list ?? []).map((a) => ({ ...a, scheduler: s.thread })));
    }],
    // A question to one actor (the operator commands modules declare: chorus rooms, room info).
    ['ask', async (args) => {
      if (typeof args.address !== 'string' || typeof args.message !== 'object' || args.message === null) throw new Error('ask needs an address and a message');
      return rt.ask(args.address, args.message as Record<string, unknown>);
    }],
    ['kill', async (args) => {
      if (typeof args.address !== 'string') throw new Error('kill needs an address, e.g. session:juliet@example.com/balcony');
      const reason = typeof args.reason === 'string' ? args.reason : 'kill';
      if (!(await rt.kill(args.address, reason))) throw new Error(`no actor ${args.address}`);
      return { killed: args.address, reason };
    }],
    ['reload', async (args) => {
      const kinds = typeof args.kind === 'string' ? [args.kind] : Object.keys((await rt.stats())[0]?.kinds ?? {});
      const out = [];
      for (const k of kinds) out.push(...(await rt.reload(k)));
      return out;
    }],
  ]);
}
