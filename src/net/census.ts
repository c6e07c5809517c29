// How many client connections there are, per source address and unauthenticated in total, so a
// public server can refuse one more before it costs anything: one host opening thousands of
// sockets, or a flood of connections that never log in (#8). Shared by both c2s listeners; the
// counts follow each Connection from accept until it is done.
import type { IncomingMessage } from 'node:http';
import { addressKey } from '../sasl/throttle.ts';

/** This machine's own addresses: a reverse proxy in front, or a local scraper. */
export const isLoopback = (address: string): boolean => address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';

/** The request came over TLS (the HTTPS listener). */
export const overTls = (req: IncomingMessage): boolean => (req.socket as { encrypted?: boolean }).encrypted === true;

/** Who a web client (WebSocket, BOSH) is, and whether its connection is secure: over HTTPS, or from
 *  this machine (a reverse proxy in front terminates TLS and names the client in X-Forwarded-For,
 *  taken from it alone, so that limits and login throttling see the real address). */
export function webClient(req: IncomingMessage, overTls: boolean): { remote: string; secure: boolean } {
  const peer = req.socket.remoteAddress ?? '';
  const proxied = isLoopback(peer) ? String(req.headers['x-forwarded-for'] ?? '').split(',').pop()!.trim() : '';
  return { remote: proxied || peer, secure: overTls || isLoopback(peer) };
}

export interface CensusLimits { perAddress: number; unauthenticated: number; exempt: string[] }

export class ConnectionCensus {
  private byAddress = new Map<string, number>();
  private unauthenticated = 0;
  /** Open client connections (TCP and WebSocket), and those not yet authenticated (for /metrics). */
  get open(): number { let n = 0; for (const v of this.byAddress.values()) n += v; return n; }
  get notAuthenticated(): number { return this.unauthenticated; }
  private readonly exempt: Set<string>;
  constructor(private readonly limits: CensusLimits) { this.exempt = new Set(limits.exempt.map(addressKey)); }

  /** Counts a new connection in, or says why not. */
  admit(remote: string): string | null {
    const key = addressKey(remote);
    const n = this.byAddress.get(key) ?? 0;
    if (n >= this.limits.perAddress && !this.exempt.has(key)) return `too many connections from ${key} (limits.connections_per_ip: ${this.limits.perAddress})`;
    if (this.unauthenticated >= this.limits.unauthenticated) return `too many connections not yet authenticated (limits.unauthenticated_connections: ${this.limits.unauthenticated})`;
    this.byAddress.set(key, n + 1);
    this.unauthenticated++;
    return null;
  }

  authenticated(): void { this.unauthenticated--; }

  gone(remote: string, authenticated: boolean): void {
    const key = addressKey(remote);
    const n = (this.byAddress.get(key) ?? 1) - 1;
    if (n > 0) this.byAddress.set(key, n);
    else this.byAddress.delete(key);
    if (!authenticated) this.unauthenticated--;
  }

}
