// The stream listeners as supervisor children: for clients STARTTLS on `listen.c2s` (5222) and
// Direct TLS on `listen.c2s_direct_tls` (5223, XEP-0368, ALPN xmpp-client); for servers STARTTLS on
// `listen.s2s` (5269) and Direct TLS on `listen.s2s_direct_tls` (5270, ALPN xmpp-server). Each accepted socket is a Connection (the one stream engine) whose machine is
// the actor kind in its options. Stopping a listener ends its streams with `system-shutdown`.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContext } from 'node:tls';
import type { Runtime } from '../runtime/runtime.ts';
import type { Child, ChildSpec } from '../runtime/supervisor.ts';
import { Connection, type ConnectionOptions } from './connection.ts';
import { peerContext, type TlsContexts } from './tls.ts';
import { streamOpen } from '../xml/builder.ts';
import { streamError } from '../xmpp/errors.ts';
import { OperatorError } from '../operator-error.ts';

/** What a listener that could not open says to the operator (the port taken, no permission, no such address). */
function listenError(err: NodeJS.ErrnoException, id: string, port: number, address: string): Error {
  if (err.code === 'EADDRINUSE') {
    return new OperatorError(`listen.${id}: port ${port} on ${address} is already in use`, `stop the program holding it (ss -ltnp 'sport = :${port}' names it) or set listen.${id} to a free port`);
  }
  if (err.code === 'EACCES') {
    return new OperatorError(`listen.${id}: no permission to listen on port ${port}`, 'ports below 1024 need root or CAP_NET_BIND_SERVICE (the systemd unit can grant AmbientCapabilities=CAP_NET_BIND_SERVICE); or use a port from 1024 up');
  }
  if (err.code === 'EADDRNOTAVAIL') return new OperatorError(`listen.address: ${address} is not an address of this machine`, 'use one of its addresses, or "::" for all of them');
  return err;
}

/** How long streams get to close after system-shutdown before their sockets are cut (the
 *  listener's supervisor waits 5 s). */
const SHUTDOWN_GRACE_MS = 3000;

export function streamListener(id: string, rt: Runtime, port: number, address: string, directTls: boolean, tls: TlsContexts | null, opts: ConnectionOptions): ChildSpec {
  return {
    id, restart: 'permanent', shutdown: 5000,
    start: async (): Promise<Child> => {
      // Connections until they are done (a detached one waits for resumption with no socket); sockets
      // of this server until they close (after a resumption another listener's connection owns one).
      const conns = new Set<Connection>();
      const sockets = new Set<Socket>();
      const accept = (socket: Socket) => {
        if (rt.isStopping) { socket.destroy(); return; }
        const refused = opts.census?.admit(socket.remoteAddress ?? '');
        if (refused) {
          opts.log('debug', `${id}: refused a connection from ${socket.remoteAddress}: ${refused}`);
          socket.on('error', () => undefined);
          socket.end(streamOpen({ id: 'refused' }) + streamError('policy-violation', refused));
          setTimeout(() => socket.destroy(), 2000).unref();
          return;
        }
        let c: Connection;
        try {
          c = new Connection(rt, socket, opts, directTls ? 'direct-tls' : 'tcp', () => conns.delete(c));
        } catch (err) { // e.g. a TLS socket that died between handshake and here: only it is lost
          opts.log('warn', `${id}: connection from ${socket.remoteAddress} not set up: ${(err as Error).message}`);
          opts.census?.gone(socket.remoteAddress ?? '', false);
          socket.destroy();
          return;
        }
        conns.add(c);
      };
      let server: Server;
      if (directTls) {
        if (!tls) throw new Error(`${id}: Direct TLS needs a certificate`);
        // A server shows its certificate too (XEP-0178): each handshake's context trusts the peers' CAs.
        const peers = opts.verifyPeers;
        const verifying = peers ? {
          ca: peers.ca, requestCert: true, rejectUnauthorized: false,
          SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, peerContext(tls, name, peers.ca)),
        } : {};
        const s = createTlsServer({ ...tls.serverOptions(), ...verifying, ALPNProtocols: [opts.kind === 's2sin' ? 'xmpp-server' : 'xmpp-client'] }, accept);
        tls.attach(s);
        s.on('tlsClientError', () => undefined); // a failed handshake is the client's problem, not ours
        server = s;
      } else {
        server = createTcpServer(accept);
      }
      server.on('connection', (raw: Socket) => { sockets.add(raw); raw.once('close', () => sockets.delete(raw)); });
      return listeningChild(server, id, port, address, async () => {
        // Every stream is told system-shutdown; a socket still open after the grace is cut, so that
        // server.close() (which waits for all of them) returns and the node can exit.
        const grace = setTimeout(() => { for (const raw of sockets) raw.destroy(); }, SHUTDOWN_GRACE_MS);
        await new Promise<void>((r) => { server.close(() => r()); for (const c of conns) c.shutdown(); });
        clearTimeout(grace);
      });
    },
  };
}

/** A server listening, as a supervisor child: what keeps it from opening is said to the operator,
 *  a later error is its exit, and `close` is how it stops. */
export async function listeningChild(server: Server, id: string, port: number, address: string, close: () => Promise<void>): Promise<Child> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, id, port, address)));
    server.listen(port, address, () => resolve());
  });
  let exitCb: ((r: string) => void) | null = null;
  server.on('error', (err) => exitCb?.(err.message));
  return { onExit: (cb) => { exitCb = cb; }, stop: async () => { exitCb = null; await close(); } };
}
