// The HTTP side as supervisor children of `listeners`: `listen.http` (plain, for a reverse proxy in
// front or loopback) and `listen.https` (the hosts' certificates by SNI, as the stream listeners
// have them), Node's own servers. Web clients' XMPP comes as WebSocket upgrades on /xmpp-websocket
// (src/net/websocket.ts) and BOSH requests on /http-bind (src/net/bosh.ts), found through XEP-0156's
// host-meta; /metrics and the admins' observer (src/net/observer.ts) are the node's own; any other
// request goes to the first
// route a loaded module declares for its path (HttpRoute: file sharing's /upload/), else 404. The routes' periodic work
// (expiry) runs in a child of its own while any HTTP listener is on. All of it on the main thread,
// which holds every socket: a handler that throws costs its request a 500, never the node.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Child, ChildSpec } from '../runtime/supervisor.ts';
import type { HttpContext, HttpRoute } from '../xmpp/module.ts';
import type { ModuleSet } from '../xmpp/modules.ts';
import type { TlsContexts } from './tls.ts';
import type { Connection } from './connection.ts';
import { WEBSOCKET_PATH, type WebSocketEndpoint } from './websocket.ts';
import { BOSH_PATH, type BoshEndpoint } from './bosh.ts';
import type { MetricsEndpoint } from './metrics.ts';
import { OBSERVER_PATH, type ObserverEndpoint } from './observer.ts';
import { listeningChild } from './listener.ts';
import { traffic } from './traffic.ts';
import { overTls } from './census.ts';
import { serialize, x } from '../xml/builder.ts';

type Log = HttpContext['log'];

export interface HttpApp {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The routes' periodic work, each on its own timer; the function stops them. */
  startTasks(): () => void;
}

/** The routes of every loaded module, each with the context it runs in. */
/** The node's own HTTP endpoints beside the modules' routes (each null when configured off). */
export interface NodeEndpoints { metrics: MetricsEndpoint | null; observer: ObserverEndpoint | null }

export function httpApp(modules: ModuleSet, base: Omit<HttpContext, 'services' | 'text' | 'count'>, { metrics, observer }: NodeEndpoints): HttpApp {
  const routes: Array<{ route: HttpRoute; ctx: HttpContext }> = modules.loaded.flatMap((def) => {
    const services = modules.hosts.flatMap((h) => modules.servicesOf(h)).filter((sd) => sd.module === def.name);
    return (def.http ?? []).map((route) => {
      for (const [name, help] of Object.entries(route.counters ?? {})) if (!traffic.modules.has(name)) traffic.modules.set(name, { help, value: 0 });
      const count = (name: string, n: number) => {
        const c = route.counters?.[name] === undefined ? undefined : traffic.modules.get(name);
        if (!c) throw new Error(`module ${def.name} counts ${name}, which its route does not declare`);
        c.value += n;
      };
      return { route, ctx: { ...base, services, text: plain, count, log: (level, text) => base.log(level, `http ${def.name}: ${text}`) } satisfies HttpContext };
    });
  });
  return {
    handle: (req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0]!;
      if (path === '/.well-known/host-meta' || path === '/.well-known/host-meta.json') { hostMeta(req, res, path.endsWith('.json')); return; }
      if (path === '/metrics' && metrics) {
        metrics.handle(req, res).catch((err: Error) => { base.log('error', `/metrics: ${err.message}`); if (!res.headersSent) plain(res, 500, 'Internal error'); });
        return;
      }
      if (observer && (path === OBSERVER_PATH || path.startsWith(`${OBSERVER_PATH}/`))) { observer.handle(req, res); return; }
      const found = routes.find((r) => path.startsWith(r.route.prefix));
      if (!found) { plain(res, 404, 'Not found'); return; }
      Promise.resolve().then(() => found.route.handle(req, res, found.ctx)).catch((err: Error) => {
        found.ctx.log('error', `${req.method} ${path}: ${err.stack ?? err.message}`);
        if (!res.headersSent) plain(res, 500, 'Internal error');
        else res.destroy();
      });
    },
    startTasks: () => {
      const timers = routes.filter((r) => r.route.every).map(({ route, ctx }) => {
        const run = () => { route.every!.run(ctx).catch((err: Error) => ctx.log('error', `periodic work: ${err.stack ?? err.message}`)); };
        run();
        return setInterval(run, route.every!.ms).unref();
      });
      return () => { for (const t of timers) clearInterval(t); };
    },
  };
}

/** XEP-0156: where this server takes WebSocket and BOSH connections, for the host the request names. */
function hostMeta(req: IncomingMessage, res: ServerResponse, json: boolean): void {
  const tls = overTls(req) || req.headers['x-forwarded-proto'] === 'https';
  const host = req.headers.host ?? 'localhost';
  const links = [
    { rel: 'urn:xmpp:alt-connections:websocket', href: `${tls ? 'wss' : 'ws'}://${host}${WEBSOCKET_PATH}` },
    { rel: 'urn:xmpp:alt-connections:xbosh', href: `${tls ? 'https' : 'http'}://${host}${BOSH_PATH}` },
  ];
  const body = json
    ? JSON.stringify({ links })
    : serialize(x('XRD', { xmlns: 'http://docs.oasis-open.org/ns/xri/xrd-1.0' }, links.map((l) => x('Link', l))));
  res.writeHead(200, { 'Content-Type': json ? 'application/json' : 'application/xrd+xml', 'Access-Control-Allow-Origin': '*', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** A short text answer (errors, 404). */
export function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const SERVER_OPTIONS = {
  // Uploads may take long; what bounds a request is the idle timeout below, not its total time.
  requestTimeout: 0,
  headersTimeout: 30_000,
  keepAliveTimeout: 5_000,
  maxHeaderSize: 16_384,
};
const IDLE_MS = 120_000;

/** The web clients' transports: WebSocket upgrades and BOSH requests, each session a Connection. */
export interface WebTransports { ws: WebSocketEndpoint; bosh: BoshEndpoint }

export function httpListener(id: 'http' | 'https', port: number, address: string, tls: TlsContexts | null, app: HttpApp, log: Log, web: WebTransports | null): ChildSpec {
  return {
    id, restart: 'permanent', shutdown: 5000,
    start: async (): Promise<Child> => {
      // WebSocket and BOSH sessions are streams like any other: ended with system-shutdown when this stops.
      const conns = new Set<Connection>();
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        if (web && (req.url ?? '').split('?', 1)[0] === BOSH_PATH) web.bosh.handle(req, res, conns);
        else app.handle(req, res);
      };
      let server: HttpServer;
      if (id === 'https') {
        if (!tls) throw new Error('https: TLS contexts are needed');
        const s = createHttpsServer({ ...tls.serverOptions(), ...SERVER_OPTIONS, ALPNProtocols: ['http/1.1'] }, handle);
        tls.attach(s);
        s.on('tlsClientError', () => undefined); // a failed handshake is the client's problem
        server = s;
      } else {
        server = createHttpServer(SERVER_OPTIONS, handle);
      }
      server.timeout = IDLE_MS;
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
        socket.on('error', () => undefined);
        if (web && (req.url ?? '').split('?', 1)[0] === WEBSOCKET_PATH) web.ws.upgrade(req, socket, head, id === 'https', conns);
        else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      });
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
        log('debug', `${id}: bad request from ${socket.remoteAddress}: ${err.code ?? err.message}`);
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else socket.destroy();
      });
      return listeningChild(server, id, port, address, async () => {
        for (const c of conns) c.shutdown();
        const grace = setTimeout(() => server.closeAllConnections(), 3000);
        await new Promise<void>((r) => { server.close(() => r()); server.closeIdleConnections(); });
        clearTimeout(grace);
      });
    },
  };
}

/** The routes' periodic work, as a listeners' child (while any HTTP listener is on). */
export function httpTasks(app: HttpApp): ChildSpec {
  return {
    id: 'http_tasks', restart: 'permanent', shutdown: 1000,
    start: async (): Promise<Child> => {
      const stop = app.startTasks();
      return { onExit: () => undefined, stop: async () => stop() };
    },
  };
}
