// SOCKS5 Bytestreams proxy (XEP-0065): a file transfer between two clients that cannot reach each
// other directly (Jingle's fallback) goes through proxy.<host>. The service's actor (actors/socks5)
// answers disco and where the proxy is, and asks for activation; the proxy itself is a SOCKS5
// server on the main thread (here: SocketService), which pairs the target's and the requester's
// connections by the hash both name, SHA-1(sid + requester + target), and joins them once the
// requester asks the service to activate the pair. Off by default: a server offering it relays
// strangers' bytes, and its address must be reachable by both clients.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { defineModule, type SocketContext } from '../xmpp/module.ts';
import type { ServiceDomain } from '../xmpp/routing.ts';

const options = {
  enabled: { type: 'boolean', default: false, doc: 'Offer the proxy on this host.' },
  host: { type: 'string', default: '', doc: 'The proxy\'s domain (default proxy.<host>).' },
  name: { type: 'string', default: 'File transfer proxy', doc: 'The service name shown in disco.' },
  port: { type: 'number', default: 5000, min: 1, max: 65_535, doc: 'The SOCKS5 port (Prosody\'s default); open it in the firewall.' },
  address: { type: 'string', default: '', doc: 'The address clients connect to (default: the proxy\'s domain, which must resolve to this machine).' },
  interface: { type: 'string', default: '::', doc: 'The address the SOCKS5 port binds to.' },
} as const;

export interface ProxySettings { host: string; port: number; address: string; interface: string }

export const BYTESTREAMS = 'http://jabber.org/protocol/bytestreams';

/** What a requester and its target both name to the proxy (XEP-0065 §5.3.2). */
export const streamHash = (sid: string, requester: string, target: string) => createHash('sha1').update(`${sid}${requester}${target}`).digest('hex');

/** What the service's actor and the proxy say to each other. */
export type ToProxy = { type: 'activate'; hash: string; iq: string };
export type FromProxy = { type: 'activated'; ok: boolean; why?: string; iq: string };

/** A connection that said its hash, waiting for the other side and the activation. */
interface Waiting { socket: Socket; timer: NodeJS.Timeout }
const waiting = new Map<string, Waiting[]>();
/** How long a connection may wait to be joined. */
const WAIT_MS = 60_000;
const reply = (status: number, hash: Buffer) => Buffer.concat([Buffer.from([5, status, 0, 3, hash.length]), hash, Buffer.from([0, 0])]);

/** RFC 1928 as XEP-0065 uses it: no authentication, CONNECT to a "domain" that is the hash, port 0. */
function accept(socket: Socket, ctx: SocketContext): void {
  let buf = Buffer.alloc(0);
  let step: 'greeting' | 'request' = 'greeting';
  const fail = () => socket.destroy();
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > 300) { fail(); return; }
    if (step === 'greeting') {
      if (buf.length < 2) return;
      if (buf[0] !== 5) { fail(); return; }
      const n = buf[1]!;
      if (buf.length < 2 + n) return;
      const methods = buf.subarray(2, 2 + n);
      buf = buf.subarray(2 + n);
      if (!methods.includes(0)) { socket.end(Buffer.from([5, 0xff])); return; }
      socket.write(Buffer.from([5, 0]));
      step = 'request';
    }
    if (buf.length < 5) return;
    if (buf[0] !== 5 || buf[1] !== 1 || buf[3] !== 3) { socket.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0])); return; }
    const len = buf[4]!;
    if (buf.length < 5 + len + 2) return;
    const hash = buf.subarray(5, 5 + len);
    socket.removeListener('data', onData);
    const rest = buf.subarray(5 + len + 2);
    const key = hash.toString('latin1');
    const list = waiting.get(key) ?? [];
    if (!/^[0-9a-f]{40}$/.test(key) || list.length >= 2) { socket.end(reply(2, hash)); return; } // not allowed
    socket.pause();
    if (rest.length) socket.unshift(rest);
    const entry: Waiting = { socket, timer: setTimeout(() => { drop(key, entry); socket.destroy(); }, WAIT_MS) };
    entry.timer.unref();
    waiting.set(key, [...list, entry]);
    socket.once('close', () => drop(key, entry));
    socket.write(reply(0, hash));
    ctx.log('debug', `a connection waits on ${key.slice(0, 8)}…`);
  };
  socket.on('data', onData);
}

function drop(key: string, entry: Waiting): void {
  clearTimeout(entry.timer);
  const rest = (waiting.get(key) ?? []).filter((w) => w !== entry);
  if (rest.length) waiting.set(key, rest); else waiting.delete(key);
}

/** The requester asked for activation: the two connections on the hash are joined, byte for byte. */
function message(m: Record<string, unknown>, from: string, ctx: SocketContext): void {
  const req = m as ToProxy;
  if (req.type !== 'activate') return;
  const pair = waiting.get(req.hash) ?? [];
  if (pair.length !== 2) {
    ctx.send(from, { type: 'activated', ok: false, why: pair.length ? 'only one side has connected' : 'neither side has connected', iq: req.iq } satisfies FromProxy);
    return;
  }
  waiting.delete(req.hash);
  const [a, b] = pair as [Waiting, Waiting];
  for (const w of pair) clearTimeout(w.timer);
  a.socket.pipe(b.socket).on('error', () => undefined);
  b.socket.pipe(a.socket).on('error', () => undefined);
  a.socket.once('close', () => b.socket.end());
  b.socket.once('close', () => a.socket.end());
  a.socket.resume();
  b.socket.resume();
  ctx.log('info', `a bytestream activated (${req.hash.slice(0, 8)}…)`);
  ctx.send(from, { type: 'activated', ok: true, iq: req.iq } satisfies FromProxy);
}

export default defineModule({
  name: 'proxy65',
  description: 'SOCKS5 Bytestreams proxy (XEP-0065) at proxy.<host>, for file transfers between clients that cannot connect directly.',
  xeps: [{ xep: 65, version: '1.8.2', status: 'complete', note: 'the proxy (mediated connection); off by default' }],
  options,
  services: (host, o) => (o.enabled ? [{
    domain: o.host || `proxy.${host}`, kind: 'socks5', name: o.name, whole: true,
    settings: { host, port: o.port, address: o.address || o.host || `proxy.${host}`, interface: o.interface } satisfies ProxySettings,
  }] : []),
  sockets: [{
    id: 'proxy65',
    // One SOCKS5 port for every host's proxy (the first host's settings).
    listen: (services: readonly ServiceDomain[]) => {
      const s = services[0]?.settings as ProxySettings | undefined;
      return s ? { port: s.port, address: s.interface } : null;
    },
    accept,
    message,
  }],
  setup() {},
});
