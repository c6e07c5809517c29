// A minimal raw-socket XMPP client for load generation: connect, optional STARTTLS or Direct TLS,
// SASL PLAIN or SCRAM, bind; then stanzas in and out as strings. Writes are coalesced per tick across
// all clients of a thread (one socket.write per client per tick), the cheapest way to push many stanzas.
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Framer, stanzaName, attr, childText, escapeXml } from './parser.ts';
import { createHmac } from 'node:crypto';
import { scramLogin } from './scram.ts';

/** FAST tokens this thread's clients got in the warm-up, by username. */
const fastTokens = new Map<string, string>();

export type TlsMode = 'none' | 'starttls' | 'direct';

export interface ClientOptions {
  host: string;
  port: number;
  domain: string;
  username: string;
  password: string;
  resource?: string;
  tls?: TlsMode;
  mechanism?: string; // 'PLAIN', 'SCRAM-SHA-1' / 'SCRAM-SHA-256' / 'SCRAM-SHA-512', or 'HT-SHA-256-NONE' (FAST)
  /** SASL2 + Bind 2 (XEP-0388/0386): authenticate and bind in one exchange, no stream restart. */
  sasl2?: boolean;
  timeoutMs?: number;
  /** true: one socket write per tick for all queued stanzas; false: one write per stanza, as an
   *  interactive client does (and as the anchors in targets.md were measured). */
  coalesce?: boolean;
  /** SCRAM: stop after the server's challenge once the salted password is cached (warm-up); FAST:
   *  log in with the password only to get this client's token. */
  warmOnly?: boolean;
}

export interface LoginTimings { connectMs: number; tlsMs: number; authMs: number; totalMs: number }

export class XmppError extends Error {
  constructor(message: string, readonly condition?: string) { super(message); }
}

const NS_STREAM = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";

// Coalesced writes: clients with pending output, flushed once per tick.
const dirty = new Set<XmppClient>();
let flushScheduled = false;
function scheduleFlush(c: XmppClient): void {
  dirty.add(c);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}
function flushAll(): void {
  flushScheduled = false;
  for (const c of dirty) c.flush();
  dirty.clear();
}

let idSeq = 0;
export function nextId(): string { return (++idSeq).toString(36); }

export class XmppClient {
  socket: net.Socket | tls.TLSSocket | null = null;
  jid = '';
  timings: LoginTimings = { connectMs: 0, tlsMs: 0, authMs: 0, totalMs: 0 };
  established = false;
  closed = false;
  /** Called for every stanza once the session is established. */
  onStanza: ((s: string) => void) | null = null;
  onClose: ((err?: Error) => void) | null = null;

  private framer: Framer;
  private out: string[] = [];
  private inbox: string[] = [];
  private waiter: ((s: string) => void) | null = null;
  private failer: ((e: Error) => void) | null = null;
  private lastError: Error | null = null;
  private header = '';

  constructor(readonly opts: ClientOptions) {
    this.framer = new Framer({
      onHeader: (h) => { this.header = h; this.deliver('<header/>'); },
      onStanza: (s) => {
        if (!this.established) this.deliver(s);
        else if (this.onStanza) this.onStanza(s);
      },
      onEnd: () => this.fail(new XmppError('stream closed by server')),
    });
  }

  /** Connects and logs in; resolves once a resource is bound. */
  async login(): Promise<LoginTimings> {
    const o = this.opts;
    const t0 = performance.now();
    const timeout = setTimeout(() => this.fail(new XmppError('login timed out')), o.timeoutMs ?? 60_000);
    try {
      const mode = o.tls ?? 'none';
      const s = net.connect({ host: o.host, port: o.port });
      this.attach(s);
      await new Promise<void>((res, rej) => { s.once('connect', () => res()); this.failer = rej; });
      this.timings.connectMs = performance.now() - t0;
      if (mode === 'direct') { // TLS handshake timed on its own, from the connected socket
        const t1 = performance.now();
        await this.upgradeTls(['xmpp-client']);
        this.timings.tlsMs = performance.now() - t1;
      }
      let features = await this.openStream();
      if (mode === 'starttls') {
        if (!features.includes('<starttls')) throw new XmppError('server offers no STARTTLS');
        this.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        const r = await this.next();
        if (stanzaName(r) !== 'proceed') throw new XmppError('STARTTLS refused');
        const t1 = performance.now();
        await this.upgradeTls();
        this.timings.tlsMs = performance.now() - t1;
        features = await this.openStream();
      }
      const ta = performance.now();
      const mech = (o.mechanism ?? 'PLAIN').toUpperCase();
      if (!features.includes('>' + mech + '<')) throw new XmppError(`server does not offer ${mech}`);
      if (o.sasl2 || mech.startsWith('HT-')) {
        const done = await this.sasl2Login(mech, features);
        this.timings.authMs = performance.now() - ta;
        this.timings.totalMs = performance.now() - t0;
        if (done === 'warm') return this.timings;
        this.established = true;
        const early = this.inbox;
        this.inbox = [];
        if (this.onStanza) for (const s of early) this.onStanza(s);
        return this.timings;
      }
      if (mech === 'PLAIN') {
        const token = Buffer.from(`\0${o.username}\0${o.password}`).toString('base64');
        this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${token}</auth>`);
        const r = await this.next();
        if (stanzaName(r) !== 'success') throw new XmppError('authentication failed: ' + r.slice(0, 200), 'not-authorized');
      } else {
        await scramLogin(mech, o.username, o.password, (s) => this.write(s), () => this.next(), o.warmOnly);
        if (o.warmOnly) {
          this.timings.totalMs = performance.now() - t0;
          return this.timings;
        }
      }
      this.timings.authMs = performance.now() - ta;
      features = await this.openStream();
      const res = o.resource ?? 'bench';
      const id = nextId();
      this.write(`<iq type='set' id='${id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${escapeXml(res)}</resource></bind></iq>`);
      const b = await this.next();
      if (attr(b, 'type') !== 'result') throw new XmppError('bind failed: ' + b.slice(0, 200));
      this.jid = childText(b, 'jid') ?? `${o.username}@${o.domain}/${res}`;
      // Old servers require the RFC 3921 session; ones that mark it optional do not.
      const session = features.indexOf('<session');
      if (session >= 0 && !/<session[^>]*\/>/.test(features.slice(session)) && !features.includes('<optional')) {
        this.write(`<iq type='set' id='s${id}'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
        await this.next();
      }
      this.established = true;
      // Anything that arrived in the same read as the bind result.
      const early = this.inbox;
      this.inbox = [];
      if (this.onStanza) for (const s of early) this.onStanza(s);
      this.timings.totalMs = performance.now() - t0;
      return this.timings;
    } catch (e) {
      this.destroy();
      throw e;
    } finally {
      clearTimeout(timeout);
    }
  }

  /**
   * SASL2 (XEP-0388) with Bind 2: one <authenticate/> (SCRAM adds a challenge and a response), then
   * <success/> with the bound JID and the features, no restart. FAST: the HMAC of this client's
   * token (got in the warm-up with a PLAIN login that asked for one) is the whole exchange.
   */
  private async sasl2Login(mech: string, features: string): Promise<'warm' | 'bound'> {
    const o = this.opts;
    if (!features.includes('urn:xmpp:sasl:2')) throw new XmppError('server does not offer SASL2');
    const agent = `<user-agent id='bench-${escapeXml(o.username)}'/>`;
    const bind = `<bind xmlns='urn:xmpp:bind:0'><tag>${escapeXml(o.resource ?? 'bench')}</tag></bind>`;
    const authenticate = (m: string, initial: string, extra: string) =>
      this.write(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='${m}'><initial-response>${initial}</initial-response>${agent}${extra}</authenticate>`);
    let success: string;
    if (mech.startsWith('HT-') && o.warmOnly) {
      authenticate('PLAIN', Buffer.from(`\0${o.username}\0${o.password}`).toString('base64'), `<request-token xmlns='urn:xmpp:fast:0' mechanism='${mech}'/>`);
      success = await this.next();
      const token = /<token [^>]*token=["']([^"']+)["']/.exec(success)?.[1];
      if (stanzaName(success) !== 'success' || !token) throw new XmppError('FAST warm-up: no token: ' + success.slice(0, 200));
      fastTokens.set(o.username, token);
      await this.next(); // the features
      return 'warm';
    }
    if (mech.startsWith('HT-')) {
      const token = fastTokens.get(o.username);
      if (!token) throw new XmppError(`FAST: no token for ${o.username} (the warm-up gets them)`);
      const proof = createHmac('sha256', token).update('Initiator').digest();
      authenticate(mech, Buffer.concat([Buffer.from(`${o.username}\0`), proof]).toString('base64'), `${bind}<fast xmlns='urn:xmpp:fast:0'/>`);
      success = await this.next();
      const answer = childText(success, 'additional-data');
      if (stanzaName(success) !== 'success' || answer !== createHmac('sha256', token).update('Responder').digest('base64')) throw new XmppError('FAST login failed: ' + success.slice(0, 200), 'not-authorized');
    } else if (mech === 'PLAIN') {
      authenticate('PLAIN', Buffer.from(`\0${o.username}\0${o.password}`).toString('base64'), bind);
      success = await this.next();
      if (stanzaName(success) !== 'success') throw new XmppError('authentication failed: ' + success.slice(0, 200), 'not-authorized');
    } else {
      success = await scramLogin(mech, o.username, o.password, (s) => this.write(s), () => this.next(), false, `${agent}${bind}`);
    }
    this.jid = childText(success, 'authorization-identifier') ?? `${o.username}@${o.domain}`;
    await this.next(); // the bound stream's features
    return 'bound';
  }

  /** Sends one IQ and resolves with the reply (for setup steps, not the hot path). */
  async iq(body: string, type: 'get' | 'set', to?: string): Promise<string> {
    const id = nextId();
    if (!this.established) return Promise.reject(new XmppError('not established'));
    const prevHandler = this.onStanza;
    return new Promise<string>((res, rej) => {
      const t = setTimeout(() => { this.onStanza = prevHandler; rej(new XmppError('iq timed out')); }, 30_000);
      this.onStanza = (s) => {
        if (stanzaName(s) === 'iq' && attr(s, 'id') === id) {
          clearTimeout(t);
          this.onStanza = prevHandler;
          res(s);
        } else if (prevHandler) prevHandler(s);
      };
      this.send(`<iq type='${type}' id='${id}'${to ? ` to='${escapeXml(to)}'` : ''}>${body}</iq>`);
    });
  }

  /** Queues a stanza; it goes out with everything else queued this tick. */
  send(s: string): void {
    if (this.closed) return;
    if (!this.opts.coalesce) { this.socket?.write(s); return; }
    this.out.push(s);
    if (this.out.length === 1) scheduleFlush(this);
  }

  flush(): void {
    if (this.out.length === 0 || !this.socket || this.closed) { this.out.length = 0; return; }
    const data = this.out.length === 1 ? this.out[0] : this.out.join('');
    this.out.length = 0;
    this.socket.write(data);
  }

  /** Graceful close: end the stream, then the socket; force it after a second. */
  close(): Promise<void> {
    return new Promise((res) => {
      if (!this.socket || this.closed) { res(); return; }
      const s = this.socket;
      this.flush();
      this.closed = true;
      const t = setTimeout(() => s.destroy(), 1000);
      s.once('close', () => { clearTimeout(t); res(); });
      s.end('</stream:stream>');
    });
  }

  destroy(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  // --- internals ---

  private attach(s: net.Socket | tls.TLSSocket): void {
    this.socket = s;
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => this.framer.push(d));
    s.on('error', (e) => this.fail(e));
    s.on('close', () => {
      const wasClosed = this.closed;
      this.closed = true;
      this.fail(new XmppError('connection closed'));
      if (this.onClose) this.onClose(wasClosed ? undefined : this.lastError ?? new XmppError('connection closed'));
    });
  }

  private async upgradeTls(alpn?: string[]): Promise<void> {
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    this.framer.reset();
    const s = tls.connect({ socket: raw, servername: this.opts.domain, rejectUnauthorized: false, ALPNProtocols: alpn });
    await new Promise<void>((res, rej) => {
      s.once('secureConnect', () => res());
      s.once('error', rej);
    });
    this.attach(s);
  }

  private async openStream(): Promise<string> {
    this.framer.reset();
    this.inbox = [];
    this.write(`<?xml version='1.0'?><stream:stream ${NS_STREAM} to='${escapeXml(this.opts.domain)}' version='1.0'>`);
    const h = await this.next();
    if (h !== '<header/>') throw new XmppError('expected a stream header, got ' + h.slice(0, 100));
    const f = await this.next();
    if (stanzaName(f) !== 'features') throw new XmppError('expected stream features, got ' + f.slice(0, 200));
    return f;
  }

  private write(s: string): void { this.socket?.write(s); }

  private next(): Promise<string> {
    if (this.lastError) return Promise.reject(this.lastError);
    const s = this.inbox.shift();
    if (s !== undefined) return this.checked(s);
    return new Promise<string>((res, rej) => {
      this.waiter = (x) => { this.checked(x).then(res, rej); };
      this.failer = rej;
    });
  }

  private checked(s: string): Promise<string> {
    if (stanzaName(s) === 'error' && s.startsWith('<stream:error')) {
      return Promise.reject(new XmppError('stream error: ' + s.slice(0, 300)));
    }
    return Promise.resolve(s);
  }

  private deliver(s: string): void {
    const w = this.waiter;
    if (w) { this.waiter = null; this.failer = null; w(s); } else this.inbox.push(s);
  }

  private fail(e: Error): void {
    if (!this.lastError) this.lastError = e;
    const f = this.failer;
    this.waiter = null;
    this.failer = null;
    if (f) f(e);
  }

  get streamHeader(): string { return this.header; }
}
