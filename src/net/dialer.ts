// Outbound server-to-server connections, made on the main thread (it owns every socket) for the
// link actors (actors/s2s) that ask. Where a remote domain's server is: s2s.hosts in the config,
// else DNS SRV `_xmpps-server._tcp` (Direct TLS) and `_xmpp-server._tcp` (STARTTLS) mixed in one
// order by priority and weight (XEP-0368, RFC 2782), else the domain itself on 5269; each address is
// tried in turn within connect_timeout_seconds (a Direct TLS one until its handshake is done).
// The socket becomes a Connection (the one stream engine) whose machine is the link actor.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promises as dns } from 'node:dns';
import type { Runtime } from '../runtime/runtime.ts';
import type { Child, ChildSpec } from '../runtime/supervisor.ts';
import type { S2sConfig } from '../config/types.ts';
import { Connection, type ConnectionOptions } from './connection.ts';
import { peerClientOptions } from './tls.ts';

/** The dialer's address (a main-thread endpoint: `node:` addresses live there). */
export const DIALER = 'node:s2s-dialer';

/** `local`: the domain the link speaks for (its certificate is shown on a Direct TLS connection). */
export type ToDialer = { type: 'dial'; link: string; local: string; remote: string };
/** What a link actor hears back when no address of the remote domain could be reached. */
export type FromDialer = { type: 'dial-failed'; reason: string };

/** `directTls`: TLS from the first byte (XEP-0368), not STARTTLS. */
export interface Target { host: string; port: number; directTls: boolean }

type Srv = { name: string; port: number; priority: number; weight: number };

/** The addresses to try for a remote domain, in order. */
export async function targetsOf(remote: string, cfg: Pick<S2sConfig, 'hosts'>, resolveSrv: (name: string) => Promise<Srv[]> = dns.resolveSrv): Promise<Target[]> {
  const fixed = cfg.hosts[remote];
  if (fixed) return [{ host: fixed.host, port: fixed.port, directTls: fixed.directTls === true }];
  const lookup = async (service: string, directTls: boolean): Promise<Array<Srv & { directTls: boolean }> | null> => {
    try {
      const records = await resolveSrv(`_${service}._tcp.${remote}`);
      // RFC 2782: a single record with target "." says the service is decidedly not available.
      if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return [];
      return records.map((r) => ({ ...r, directTls }));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return null;
      throw new Error(`DNS: ${code ?? (e as Error).message}`);
    }
  };
  const [direct, starttls] = await Promise.all([lookup('xmpps-server', true), lookup('xmpp-server', false)]);
  if (direct === null && starttls === null) return [{ host: remote, port: 5269, directTls: false }];
  const records = [...(direct ?? []), ...(starttls ?? [])];
  if (records.length === 0) throw new Error(`${remote} says it has no XMPP server service (SRV target ".")`);
  return orderSrv(records).map((r) => ({ host: r.name, port: r.port, directTls: r.directTls }));
}

/** RFC 2782: ascending priority; within one, a weighted random order. */
export function orderSrv<R extends { priority: number; weight: number }>(records: R[], random = Math.random): R[] {
  const out: R[] = [];
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  for (const p of priorities) {
    const group = records.filter((r) => r.priority === p);
    while (group.length) {
      const total = group.reduce((n, r) => n + r.weight, 0);
      let pick = random() * total;
      let i = group.findIndex((r) => (pick -= r.weight) < 0);
      if (i < 0) i = 0; // all weights 0
      out.push(group.splice(i, 1)[0]!);
    }
  }
  return out;
}

/** A connected socket to `t`; for Direct TLS one whose handshake is done (ALPN xmpp-server, SNI the
 *  remote domain, our certificate for `local`). */
function connectOnce(t: Target, timeoutMs: number, local: string, remote: string, opts: ConnectionOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = t.directTls
      ? tlsConnect({ host: t.host, port: t.port, ALPNProtocols: ['xmpp-server'], ...peerClientOptions(opts.tls, remote, local, opts.verifyPeers?.ca) })
      : connect({ host: t.host, port: t.port });
    const where = `${t.host}:${t.port}${t.directTls ? ' (Direct TLS)' : ''}`;
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`${where}: no connection within ${timeoutMs / 1000} s`)); }, timeoutMs);
    socket.once(t.directTls ? 'secureConnect' : 'connect', () => { clearTimeout(timer); socket.removeAllListeners('error'); resolve(socket); });
    socket.once('error', (err) => { clearTimeout(timer); socket.destroy(); reject(new Error(`${where}: ${err.message}`)); });
  });
}

/** The dialer as a listeners' child. Its endpoint is there from the moment the node is built, before
 *  the schedulers restore actors: a link restored at boot with stanzas waiting dials at once.
 *  Stopping it ends its streams. */
export function s2sDialer(rt: Runtime, cfg: S2sConfig, opts: ConnectionOptions): ChildSpec {
  const conns = new Set<Connection>();
  const dial = async (m: ToDialer): Promise<void> => {
    const problems: string[] = [];
    let targets: Target[] = [];
    try { targets = await targetsOf(m.remote, cfg); } catch (e) { problems.push((e as Error).message); }
    for (const t of targets) {
      if (rt.isStopping) return;
      let socket: Socket;
      try { socket = await connectOnce(t, cfg.connect_timeout_seconds * 1000, m.local, m.remote, opts); } catch (e) { problems.push((e as Error).message); continue; }
      try {
        const c: Connection = new Connection(rt, socket, { ...opts, kind: 's2s', actor: m.link, census: undefined }, t.directTls ? 'direct-tls' : 'tcp', () => conns.delete(c));
        conns.add(c);
      } catch (e) { socket.destroy(); problems.push((e as Error).message); continue; }
      return;
    }
    const reason = problems.join('; ') || `no address for ${m.remote}`;
    opts.log('info', `s2s: ${m.remote} not reached: ${reason}`);
    rt.send(m.link, { type: 'dial-failed', reason } satisfies FromDialer, DIALER);
  };
  const register = () => rt.registerEndpoint(DIALER, (msg) => { void dial(msg as ToDialer); });
  register();
  return {
    id: 's2s_out', restart: 'permanent', shutdown: 5000,
    start: async (): Promise<Child> => {
      register();
      return {
        onExit: () => undefined,
        stop: async () => {
          rt.unregisterEndpoint(DIALER);
          for (const c of conns) c.shutdown();
        },
      };
    },
  };
}
