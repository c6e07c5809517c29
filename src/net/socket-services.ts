// Modules' TCP services (SocketService: XEP-0065's SOCKS5 proxy) as listeners' children: the main
// thread, which holds every socket, listens where the module's service domains say, hands the
// module each connection, and passes it what the module's actors send to `node:<id>`.
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import type { Runtime } from '../runtime/runtime.ts';
import type { Child, ChildSpec } from '../runtime/supervisor.ts';
import type { SocketContext } from '../xmpp/module.ts';
import type { ModuleSet } from '../xmpp/modules.ts';
import { listeningChild } from './listener.ts';

export function socketServices(rt: Runtime, modules: ModuleSet, log: (level: string, text: string) => void): ChildSpec[] {
  return modules.loaded.flatMap((def) => (def.sockets ?? []).flatMap((svc) => {
    const services = modules.hosts.flatMap((h) => modules.servicesOf(h)).filter((sd) => sd.module === def.name);
    const at = svc.listen(services);
    if (!at) return [];
    const ctx: SocketContext = { send: (to, m) => rt.send(to, m, `node:${svc.id}`), log: (level, text) => log(level, `${svc.id}: ${text}`) };
    const endpoint = `node:${svc.id}`;
    // The endpoint is there from the start: an actor may ask before the listener is up.
    rt.registerEndpoint(endpoint, (m, from) => { try { svc.message(m as Record<string, unknown>, from ?? '', ctx); } catch (e) { ctx.log('error', (e as Error).message); } });
    const spec: ChildSpec = {
      id: svc.id, restart: 'permanent', shutdown: 3000,
      start: async (): Promise<Child> => {
        const sockets = new Set<Socket>();
        const server = createServer((socket) => {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
          try { svc.accept(socket, ctx); } catch (e) { ctx.log('warn', `a connection from ${socket.remoteAddress} failed: ${(e as Error).message}`); socket.destroy(); }
        });
        return listeningChild(server, svc.id, at.port, at.address, async () => {
          await new Promise<void>((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); });
        });
      },
    };
    return [spec];
  }));
}
