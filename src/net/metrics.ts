// /metrics in Prometheus's text format (prom-client: the exposition format and the process's own
// figures are its job, not ours to write by hand). Gathered at each scrape from the runtime (actors
// per kind, mailbox depths, messages handled, crashes and heap per scheduler, the supervisors'
// children and restarts, each scheduler's event-loop lag), the stream engine (connections, stanzas in and out), the
// counters modules declare (bytes of shared files) and Node's defaults
// for the main thread (CPU, memory, event-loop lag). Answered on loopback, or to anyone with the
// configured password (basic auth), never to the world by default.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Runtime } from '../runtime/runtime.ts';
import { isLoopback, type ConnectionCensus } from './census.ts';
import { traffic } from './traffic.ts';

export interface MetricsAccess { username: string; password: string | null }

export interface MetricsEndpoint { handle(req: IncomingMessage, res: ServerResponse): Promise<void> }

function allowed(req: IncomingMessage, access: MetricsAccess): boolean {
  if (access.password === null) return isLoopback(req.socket.remoteAddress ?? '');
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const given = Buffer.from(m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '');
  const want = Buffer.from(`${access.username}:${access.password}`);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function metricsEndpoint(rt: Runtime, census: ConnectionCensus | undefined, access: MetricsAccess): MetricsEndpoint {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'chorus_main_' });
  const g = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const actors = g('chorus_actors', 'Live actors by kind (s2s: outbound server links).', ['kind']);
  const mailbox = g('chorus_mailbox_depth', 'Messages waiting in actors\' mailboxes, per scheduler.', ['scheduler']);
  const handled = g('chorus_messages_handled', 'Messages actors have handled since the scheduler started.', ['scheduler']);
  const crashes = g('chorus_actor_crashes', 'Actor crashes since the scheduler started.', ['scheduler']);
  const heap = g('chorus_scheduler_heap_bytes', 'Heap used by each scheduler thread.', ['scheduler']);
  const lagP99 = g('chorus_scheduler_event_loop_lag_p99_seconds', 'How late each scheduler\'s event loop ran, 99th percentile since the previous scrape.', ['scheduler']);
  const lagMax = g('chorus_scheduler_event_loop_lag_max_seconds', 'How late each scheduler\'s event loop ran at worst since the previous scrape.', ['scheduler']);
  const children = g('chorus_supervisor_children', 'Children of each dynamic supervisor.', ['supervisor']);
  const restarts = g('chorus_supervisor_restarts', 'Restarts by each dynamic supervisor since the node started.', ['supervisor']);
  const connections = g('chorus_client_connections', 'Open client connections (TCP and WebSocket).');
  const unauthenticated = g('chorus_client_connections_unauthenticated', 'Client connections not yet authenticated.');
  new Counter({
    name: 'chorus_stanzas_in_total', help: 'Stanzas read from streams, by kind.', labelNames: ['type'], registers: [registry],
    collect() { this.reset(); for (const [type, n] of Object.entries(traffic.in)) this.inc({ type }, n); },
  });
  new Counter({
    name: 'chorus_stanzas_out_total', help: 'Stanzas handed to streams to write, by kind.', labelNames: ['type'], registers: [registry],
    collect() { this.reset(); for (const [type, n] of Object.entries(traffic.out)) this.inc({ type }, n); },
  });
  new Counter({
    name: 'chorus_duplicates_dropped_total', help: 'Durable stanzas handed to a stream again after a scheduler thread died, and not written twice.', registers: [registry],
    collect() { this.reset(); this.inc(traffic.duplicatesDropped); },
  });
  const durableBatches = g('chorus_durable_batches', 'LevelDB batches each scheduler wrote (one per tick with durable writes).', ['scheduler']);
  const durableOps = g('chorus_durable_ops', 'LevelDB operations in those batches (durable messages in and out, snapshots, archive entries).', ['scheduler']);
  // Modules' counters, registered as they appear (a module loaded later brings its own).
  const moduleCounters = new Set<string>();
  const registerModuleCounters = () => {
    for (const [name, c] of traffic.modules) {
      if (moduleCounters.has(name)) continue;
      moduleCounters.add(name);
      new Counter({ name: `chorus_${name}_total`, help: c.help, registers: [registry], collect() { this.reset(); this.inc(c.value); } });
    }
  };
  return {
    handle: async (req, res) => {
      if (!allowed(req, access)) {
        res.writeHead(access.password === null ? 403 : 401, { 'Content-Type': 'text/plain', ...(access.password === null ? {} : { 'WWW-Authenticate': 'Basic realm="chorus metrics"' }) });
        res.end(access.password === null ? 'Metrics are answered on loopback only (set metrics.password to allow more)\n' : 'Unauthorized\n');
        return;
      }
      registerModuleCounters();
      const stats = await rt.stats();
      actors.reset();
      const byKind = new Map<string, number>();
      for (const s of stats) {
        const t = String(s.thread);
        mailbox.set({ scheduler: t }, s.mailboxDepth);
        handled.set({ scheduler: t }, s.handled);
        crashes.set({ scheduler: t }, s.crashes);
        heap.set({ scheduler: t }, s.heapUsed);
        durableBatches.set({ scheduler: t }, s.durableWrites.batches);
        durableOps.set({ scheduler: t }, s.durableWrites.ops);
        lagP99.set({ scheduler: t }, s.eventLoopLagMs.p99 / 1000);
        lagMax.set({ scheduler: t }, s.eventLoopLagMs.max / 1000);
        for (const [kind, n] of Object.entries(s.byKind)) byKind.set(kind, (byKind.get(kind) ?? 0) + n);
      }
      for (const [kind, n] of byKind) actors.set({ kind }, n);
      for (const s of rt.supervisors()) { children.set({ supervisor: s.name }, s.children); restarts.set({ supervisor: s.name }, s.restarts); }
      connections.set(census?.open ?? 0);
      unauthenticated.set(census?.notAuthenticated ?? 0);
      const body = await registry.metrics();
      res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    },
  };
}
