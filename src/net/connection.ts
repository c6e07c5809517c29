// A client connection, on the main thread because Node cannot hand a socket to a worker. It is the
// transport half of a stream: bytes in → framer → stanza strings to the session actor; strings out →
// one corked write per tick. It also keeps everything that changes with every stanza and must survive
// a crash of the session actor: the XEP-0198 counters, the unacknowledged outbound queue and the
// inbound stanzas not yet handled (replayed to a restarted session), and the deliveries an inactive
// client's session holds back (XEP-0352). The protocol decisions (features, SASL, bind, whether
// stream management may be enabled or a stream resumed, what can wait, routing) are the session
// actor's; this carries them out.
import { Socket } from 'node:net';
import type { WebSocketStream } from './websocket.ts';
import type { BoshStream } from './bosh.ts';
import { traffic } from './traffic.ts';
import { TokenBucket } from './token-bucket.ts';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Runtime } from '../runtime/runtime.ts';
import type { Receipt } from '../runtime/api.ts';
import { StreamFramer, XmlError, type StanzaHeader, type StreamHeader } from '../xml/framer.ts';
import { streamOpen } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { streamError, type StreamErrorCondition } from '../xmpp/errors.ts';
import { NS } from '../xml/namespaces.ts';
import { peerClientOptions, peerContext, serverEndPointHash, TLS_PROTOCOL_OPTIONS, type TlsContexts } from './tls.ts';
import type { ChannelBindings, ConnInfo, Delivery, InlineResume, PeerCertificate, ToConn, ToSession } from './c2s-protocol.ts';
import { sasl2SuccessXml } from '../sasl/sasl2.ts';
import type { ConnectionCensus } from './census.ts';

export interface ConnectionOptions {
  /** The actor kind whose machine decides this stream: `session` (a client's), `s2sin` (a server's),
   *  `component` (XEP-0114's), and the content namespaces the framer lets through (default: client, server). */
  kind?: string;
  contentNamespaces?: readonly string[];
  /** An outbound stream: the connection reports to this existing actor (it spawns none), which is
   *  told `connected` first and writes the first header. */
  actor?: string;
  maxStanzaBytes: number;
  /** Bytes per second a client may send, refilled continuously, up to `burstBytes`; 0 = unlimited. */
  bytesPerSecond: number;
  burstBytes: number;
  /** Stanzas per second a bound client may send, up to `stanzaBurst` at once; 0 = unlimited. Over
   *  it, reading waits (TCP pushes back): nothing is dropped. */
  stanzasPerSecond: number;
  stanzaBurst: number;
  /** A stanza (or header) begun must be complete within this: one trickled in a byte at a time
   *  (slowloris) ends the stream with policy-violation. 0: no limit. */
  stanzaTimeoutMs: number;
  authTimeoutMs: number;
  resumeTimeoutMs: number;
  maxUnacked: number;
  /** Bytes written to a socket and not yet taken by the kernel beyond which its client is not reading. */
  maxOutboundBytes: number;
  /** The framer's limits on element nesting and on attributes per element. */
  maxDepth: number;
  maxAttributes: number;
  /** For STARTTLS: SNI contexts (null when no TLS is configured). */
  tls: TlsContexts | null;
  /** Server streams: show our certificate and read the other server's, checked against these CAs
   *  (PEM; the system's store and s2s.ca_file). */
  verifyPeers?: { ca: string[] };
  /** What the listener tells each stream's actor besides its ConnInfo (its policy: flat values). */
  actorInput?: Record<string, string | number | boolean>;
  /** The counts behind limits.connections_per_ip and unauthenticated_connections; the listener admits. */
  census?: ConnectionCensus;
  log: (level: 'debug' | 'info' | 'warn' | 'error', text: string) => void;
}


/** This process's boot id: connection addresses of an earlier boot name sockets that are gone. */
export const BOOT = randomBytes(4).toString('hex');
let counter = 0;

/** The attributes of XEP-0198 nonzas we read (built once: <r/> and <a/> come with every few stanzas). */

/** Inbound stanzas not yet handled by the session: at HIGH the socket is no longer read, at LOW again. */
const IN_FLIGHT_HIGH = 256;
const IN_FLIGHT_LOW = 64;

/** How long an <r/> may wait for the stanzas before it to be handled (a bound, not the usual case). */
const ACK_WAIT_MS = 1000;

/** XEP-0198 stream ids of detached, resumable connections (main thread only). */
/** Deliveries held for an inactive client (XEP-0352) at most: beyond, they are written. */
const CSI_MAX_HELD = 256;

/** How long a client with more than max_outbound_bytes waiting may take none of it before it is closed. */
const OUTBOUND_STALL_MS = 10_000;
/** How long a crashed bound session has to come back (its supervisor restarts it at once). */
const RESTART_WAIT_MS = 10_000;

const resumable = new Map<string, Connection>();

/** How a connection's bytes come: plain TCP (STARTTLS may follow), TLS from the first byte
 *  (XEP-0368), or over HTTP, a WebSocket (RFC 7395) or a BOSH session (XEP-0206), secure when it
 *  came over HTTPS or from this machine (a reverse proxy in front); `host`: the TLS server name it
 *  came with. */
export type Transport = 'tcp' | 'direct-tls' | { web: 'websocket' | 'bosh'; secure: boolean; host: string | null };

/** The engine's socket: a net.Socket (a TLSSocket after STARTTLS or on Direct TLS), a WebSocket's stream or a BOSH session. */
export type ByteSocket = Socket | WebSocketStream | BoshStream;

export class Connection {
  readonly address = `conn:${BOOT}.${++counter}`;
  private session: string;
  private framer: StreamFramer;
  /** The framer reports through this, so a resumption can hand framer and socket to another connection. */
  private sink: { conn: Connection };
  private socket: ByteSocket;
  private headerSent = false;
  private streamTo: string | null = null;
  private corked = false;
  private closed = false;
  /** A stream error or close was written: nothing more goes out on this socket. */
  private ending = false;
  /** The session was told the socket is gone and given what it held: later deliveries go straight back. */
  private expired = false;
  /** The socket went to another connection (XEP-0198 resumption): it is not ours to close. */
  private handedOver = false;
  private done = false;
  /** Without XEP-0198: delivered stanzas written but not yet taken by the kernel; released as it takes
   *  them, given back to the session if the socket dies first. */
  private flushing: Delivery[] = [];
  /** Deliveries held while the client is inactive (XEP-0352; the session decides which). */
  private waiting: Delivery[] = [];
  /** Per address whose durable messages we were handed, the highest seq (see handedBefore). */
  private lastReceipt: Map<string, string> | null = null;
  private stall: NodeJS.Timeout | null = null;
  private readonly remote: string;
  /** The stream was closed on purpose (either side): no XEP-0198 resumption for it. */
  private ended = false;
  private authTimer: NodeJS.Timeout | null;
  /** Inbound seq (counts message/presence/iq) and those not yet handled by the session, for replay. */
  private inSeq = 0;
  private unhandled: Map<number, { xml: string; h: StanzaHeader }> | null = null;
  private authJid: string | null = null;
  /** From authentication until the session is bound, stanzas go to it one at a time ('busy': one
   *  is with it; the rest wait in `held`): after the bind request nothing may reach the session at
   *  its old address, and the session, not this, knows which one that is. */
  private gate: 'off' | 'open' | 'busy' = 'off';
  private held: Array<{ xml: string; h: StanzaHeader }> = [];
  private sessionUp = true;
  private monitorRef = 0;
  /** The session crashed after bind: waiting for its restart (its 'replay'). */
  private restartWait: NodeJS.Timeout | null = null;
  /** Nobody watches the session any more (it crashed for good): the connection ends with its socket. */
  private orphaned = false;
  // XEP-0198
  private smId: string | null = null;
  private smInBase = 0;      // inSeq when SM was enabled: <a h> counts from there
  private enableAt = 0;      // inSeq when the last <enable/> came in (the session answers it later)
  private smOut = 0;         // stanzas sent since enable
  private smAckedOut = 0;    // the client's last <a h>
  private unacked: Delivery[] = [];
  /** Each <r/> is answered once, in order: as soon as all that came before it is handled (durable),
   *  whatever the client sent since, or after ACK_WAIT_MS with the count handled by then. */
  private ackWaits: Array<{ upTo: number; by: number }> = [];
  /** An <r/> answered at its deadline with less than it asked about: the rest is acknowledged
   *  unasked once handled (XEP-0198 §4 allows an <a/> at any time), or the client, which may not
   *  ask again, would keep what the server has long handled as unacknowledged. */
  private ackOwed = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  /** Our own <r/>, sent shortly after deliveries: a client acks what it got before it closes. */
  private ackRequest: NodeJS.Timeout | null = null;
  private detachTimer: NodeJS.Timeout | null = null;
  // rate limit and flow control: the socket is read only while neither holds it
  private readonly bytes: TokenBucket | null;
  private readonly stanzas: TokenBucket | null;
  private overRate = false;
  private overStanzaRate = false;
  private inFlightFull = false;
  /** Elements read so far (the stream header counts): what the slowloris watch sees move. */
  private progress = 0;
  private trickle: NodeJS.Timeout | null = null;
  private secure: boolean;

  /** `onDone`: once, when this connection is finished (its session gone), not when its first socket
   *  closes — a detached stream lives on and may take over another socket (XEP-0198 resumption). */
  constructor(private readonly rt: Runtime, socket: ByteSocket, private readonly o: ConnectionOptions, transport: Transport, private readonly onDone: () => void = () => undefined) {
    this.socket = socket;
    const directTls = transport === 'direct-tls';
    this.secure = directTls || (typeof transport === 'object' && transport.secure);
    this.session = o.actor ?? `${o.kind ?? 'session'}:@${BOOT}.${counter}`;
    this.bytes = o.bytesPerSecond > 0 ? new TokenBucket(o.bytesPerSecond, o.burstBytes) : null;
    this.stanzas = o.stanzasPerSecond > 0 ? new TokenBucket(o.stanzasPerSecond, o.stanzaBurst) : null;
    this.sink = { conn: this };
    this.framer = this.newFramer();
    rt.registerEndpoint(this.address, this.guard((m) => this.fromSession(m as ToConn)));
    this.remote = socket.remoteAddress ?? '';
    const info: ConnInfo = { conn: this.address, remote: this.remote, secure: this.secure, directTls, host: typeof transport === 'object' ? transport.host : null, cb: null, ...o.actorInput };
    o.log('info', `${this.address}: opened (${this.remote}${directTls ? ', Direct TLS' : typeof transport === 'object' ? `, ${transport.web}` : ''})`);
    if (directTls) {
      const t = socket as TLSSocket;
      info.host = (t as TLSSocket & { servername?: string | false }).servername || null;
      info.cb = channelBindings(t);
      if (o.verifyPeers) info.peer = peerCertificate(t);
    }
    // The spawn and then the first stanzas travel the same port, so the actor exists before its mail.
    if (o.actor) this.toSession({ type: 'connected', ...info });
    else this.rt.spawn(this.session, info).catch(this.guard((err: Error) => { this.o.log('error', `${this.address}: session did not start: ${err.message}`); this.destroy(); }));
    this.watchSession();
    // Until bound: a stream that authenticates and never binds would otherwise live forever.
    this.authTimer = this.timer(o.authTimeoutMs, () => this.fail('connection-timeout', this.authJid ? 'no resource bound in time' : 'not authenticated in time'));
    this.attach(socket);
  }

  /**
   * Every way into a connection — socket and TLS events, actor messages, monitors, timers — goes
   * through a guard: whatever goes wrong in one connection (hostile input the framer rejects from
   * any call site, a bug) ends that connection with a stream error and never reaches the main
   * thread's event loop, where an uncaught error would end every connection of the node.
   */
  private guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
    return (...args: A) => {
      try { fn(...args); } catch (err) { this.crashed(err); }
    };
  }

  private crashed(err: unknown): void {
    try {
      if (err instanceof XmlError) { this.fail(err.condition, err.message); return; }
      this.o.log('error', `${this.address}: ${(err as Error)?.stack ?? String(err)}`);
      this.fail('internal-server-error');
    } catch {
      try { this.destroy(); } catch { /* the socket is beyond saving; the node is not */ }
    }
  }

  /** An unref'd, guarded timer. */
  private timer(ms: number, fn: () => void): NodeJS.Timeout {
    return setTimeout(this.guard(fn), ms).unref();
  }

  private newFramer(): StreamFramer {
    const sink = this.sink;
    return new StreamFramer({
      onStreamStart: (h: StreamHeader) => sink.conn.header(h),
      onStanza: (xml: string, h: StanzaHeader) => sink.conn.inbound(xml, h),
      onStreamEnd: () => { sink.conn.ended = true; sink.conn.toSession({ type: 'end' }); },
    }, { maxStanzaBytes: this.o.maxStanzaBytes, maxDepth: this.o.maxDepth, maxAttributes: this.o.maxAttributes, contentNamespaces: this.o.contentNamespaces });
  }

  private header(h: StreamHeader): void {
    this.progress++;
    this.streamTo = h.to;
    this.toSession({ type: 'header', to: h.to, from: h.from, version: h.version, lang: h.lang, xmlns: h.xmlns, id: h.id, db: h.attrs['xmlns:db'] === NS.DIALBACK });
  }

  private attach(socket: ByteSocket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', this.guard((err: Error) => this.o.log('debug', `${this.address}: ${err.message}`)));
    socket.once('close', this.guard(() => { if (this.socket === socket) this.socketClosed(); }));
  }

  private onData = this.guard((chunk: Buffer): void => {
    if (this.closed) return;
    if (this.bytes) this.charge(chunk.length);
    this.framer.write(chunk);
    if (this.o.stanzaTimeoutMs > 0 && !this.trickle) this.watchTrickle();
  });

  /** Over the byte rate the socket stops being read until the bucket refills (TCP pushes back). */
  private charge(bytes: number): void {
    const wait = this.bytes!.take(bytes);
    if (wait && !this.overRate) {
      this.overRate = true;
      this.reading();
      this.timer(wait, () => { this.overRate = false; this.reading(); });
    }
  }

  /** Over the stanza rate the framer stops handing out stanzas too (one read may hold hundreds). */
  private chargeStanza(): void {
    const wait = this.stanzas!.take(1);
    if (wait && !this.overStanzaRate) {
      this.overStanzaRate = true;
      this.framer.pause();
      this.reading();
      this.timer(wait, () => {
        this.overStanzaRate = false;
        this.reading();
        if (!this.inFlightFull) this.framer.resume();
      });
    }
  }

  private reading(): void {
    if (this.closed) return;
    if (this.overRate || this.inFlightFull || this.overStanzaRate) this.socket.pause();
    else this.socket.resume();
  }

  /** While part of an element waits in the framer, something must complete within stanzaTimeoutMs. */
  private watchTrickle(): void {
    if (!this.framer.midElement || this.framer.isPaused) return;
    const mark = this.progress;
    this.trickle = this.timer(this.o.stanzaTimeoutMs, () => {
      this.trickle = null;
      if (this.closed || this.ending) return;
      if (this.progress === mark && this.framer.midElement && !this.framer.isPaused) {
        this.fail('policy-violation', `no stanza completed in ${this.o.stanzaTimeoutMs / 1000} s`);
        return;
      }
      this.watchTrickle();
    });
  }

  // ---- inbound --------------------------------------------------------------------------------

  private inbound(xml: string, h: StanzaHeader): void {
    this.progress++;
    if (this.gate === 'busy') { this.held.push({ xml, h }); return; }
    if (this.gate === 'open') this.gate = 'busy';
    // XEP-0198 acks are counters, kept here; <enable/> and <resume/> are the session's to allow. The
    // count an <enable/> starts from is where it came in (stanzas pipelined after it count).
    if (h.xmlns === NS.SM && (h.name === 'r' || h.name === 'a')) { this.smAck(xml, h); return; }
    if (h.xmlns === NS.SM && h.name === 'enable') this.enableAt = this.inSeq;
    if (h.name === 'starttls') this.framer.pause(); // nothing sent in plaintext after it may be read
    const counted = h.name === 'message' || h.name === 'presence' || h.name === 'iq';
    if (counted) traffic.in[h.name as keyof typeof traffic.in]++;
    // Bound streams only (authTimer gone): before, the auth timeout bounds a client, and the framer's
    // pauses belong to STARTTLS and the SASL restart.
    if (counted && this.stanzas && this.authTimer === null) this.chargeStanza();
    const seq = counted ? ++this.inSeq : 0;
    if (counted) (this.unhandled ??= new Map()).set(seq, { xml, h });
    if (counted && this.unhandled!.size >= IN_FLIGHT_HIGH && !this.inFlightFull) {
      // A client faster than its session waits (TCP pushes back) instead of being cut off.
      this.inFlightFull = true;
      this.framer.pause();
      this.reading();
    }
    this.toSession({ type: 'stanza', xml, h, seq, done: counted ? this.handledIn() : undefined });
  }

  private toSession(m: ToSession): void {
    if (this.sessionUp) this.rt.send(this.session, m, this.address);
  }

  private fromSession(m: ToConn): void {
    switch (m.type) {
      case 'write': this.write(m.xml); break;
      case 'deliver': this.deliver(m); break; // the message is the Delivery: no copy on the chat path
      case 'flush': this.flushWaiting(); break;
      case 'sm-enable': this.smEnable(m.resume, m.wrap); break;
      case 'sm-enabled': this.smId ??= randomBytes(12).toString('base64url'); break;
      case 'sm-resume': this.resume(m.previd, m.h, m.inline); break;
      case 'handled':
        this.unhandled?.delete(m.seq);
        if (this.ackWaits.length || this.ackOwed) this.answerAcks();
        if (this.inFlightFull && this.unhandled!.size <= IN_FLIGHT_LOW) {
          this.inFlightFull = false;
          this.reading();
          if (!this.overStanzaRate) this.framer.resume();
        }
        break;
      case 'starttls': if (m.servername) this.startTlsClient(m.servername, m.local); else this.startTls(m.xml); break;
      case 'authenticated':
        if (!this.authJid) this.o.census?.authenticated();
        this.authJid = m.jid;
        if (m.xml) this.write(m.xml);
        if (m.restart) {
          this.framer.pause();
          this.framer.reset({ keepPending: true });
          this.framer.resume();
        }
        if (m.bound) { if (this.authTimer) { clearTimeout(this.authTimer); this.authTimer = null; } } else this.gate = 'open';
        break;
      case 'next': this.next(); break;
      case 'bind-failed':
        this.write(m.xml);
        this.next();
        break;
      case 'close':
        this.ended = true;
        // Detached (XEP-0198): no socket to close, and the session (replaced by a new login) waits
        // for its unacknowledged stanzas now, not at the resumption timeout.
        if (this.closed) { this.expire(); break; }
        if (m.xml) this.write(m.xml);
        this.endSocket();
        break;
      // The session's last word to us: everything it delivered before this has arrived (FIFO).
      case 'drain': this.toSession({ type: 'drained' }); break;
      case 'replay':
        // A restarted session: watch it again.
        if (this.restartWait) { clearTimeout(this.restartWait); this.restartWait = null; this.watchSession(); }
        if (this.unhandled) {
          const done = this.handledIn();
          for (const [seq, s] of this.unhandled) this.rt.send(this.session, { type: 'stanza', xml: s.xml, h: s.h, seq, done } satisfies ToSession, this.address);
        }
        // Before bind, what the restarted session had may have been a nonza, which is not replayed.
        if (!this.unhandled?.size) this.next();
        break;
    }
  }

  /** The session is done with the stanza it had before bind: the next one goes. */
  private next(): void {
    if (this.gate !== 'busy') return;
    this.gate = 'open';
    const s = this.held.shift();
    if (s) this.inbound(s.xml, s.h);
  }

  /**
   * Watches the session wherever it goes: the monitor follows it when it moves at bind, and the notice
   * of its new address is what opens the bound stream. A crash before bind ends the stream (the session
   * kept no snapshot; the client logs in again). After bind its supervisor restarts it from its
   * snapshot and it asks for a replay, which watches it again; one not back within RESTART_WAIT_MS
   * ends the stream.
   */
  private watchSession(): void {
    this.monitorRef = this.rt.monitor(this.session, this.guard((reason, movedTo) => {
      if (reason === 'moved') { if (movedTo) this.bound(movedTo); return; }
      // Gone: this connection has no one left to serve.
      if (reason === 'normal' || reason === 'shutdown' || reason === 'noproc') { this.sessionUp = false; this.destroy(); return; }
      // An outbound stream's link actor restarts without it (and connects again).
      if (this.o.actor) { this.orphaned = true; this.fail('internal-server-error'); return; }
      if (!this.authJid || this.gate !== 'off') {
        this.o.log('warn', `${this.address}: session ${this.session} crashed (${reason}) before bind; the stream ends`);
        this.orphaned = true;
        this.fail('internal-server-error', 'the login failed; please log in again');
        return;
      }
      this.o.log('warn', `${this.address}: session ${this.session} crashed (${reason}); the connection stays open`);
      this.restartWait = this.timer(RESTART_WAIT_MS, () => {
        this.restartWait = null;
        this.o.log('warn', `${this.address}: session ${this.session} not restarted within ${RESTART_WAIT_MS / 1000} s; the stream ends`);
        this.orphaned = true;
        this.fail('internal-server-error', 'the session failed');
      });
    }));
  }

  /** The session now runs at its full JID: held stanzas go there, and the rest as they come. */
  private bound(address: string): void {
    if (this.authTimer) { clearTimeout(this.authTimer); this.authTimer = null; }
    this.session = address;
    this.gate = 'off';
    const held = this.held;
    this.held = [];
    for (const s of held) this.inbound(s.xml, s.h);
  }

  // ---- outbound -------------------------------------------------------------------------------

  write(xml: string, written?: (err?: Error | null) => void): void {
    if (this.closed || this.ending || this.socket.destroyed) return;
    if (!this.headerSent && (xml.startsWith('<?xml') || xml.startsWith('<stream:stream'))) this.headerSent = true;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.guard(() => { this.corked = false; this.socket.uncork(); }));
    }
    this.socket.write(xml, written);
  }

  /**
   * Every stanza handed to us ends exactly one way: written and released (no XEP-0198), acknowledged
   * by the client and released, or given back to the session (lost()) to be routed again — in the
   * batch of expire() or, after it, one by one.
   */
  private deliver(d: Delivery & { hold?: boolean }): void {
    if (d.receipt && this.handedBefore(d.receipt)) { traffic.duplicatesDropped++; return; }
    if (this.expired) { this.lost([d]); return; }
    if (d.hold) {
      this.waiting.push(d);
      if (this.waiting.length >= CSI_MAX_HELD) this.flushWaiting();
      return;
    }
    // What waited goes first: the client sees every stanza in the order it was sent.
    if (this.waiting.length) this.flushWaiting();
    this.deliverNow(d);
  }

  /**
   * Whether this durable message was handed to us before and we still hold it. A thread that dies
   * takes no connection with it, but its replacement loads from disk every durable message not yet
   * released, including those we hold until the client acknowledges them: handed again, they must
   * not be written twice. Seqs grow per address (clock-based, handled in order), so only one not
   * above the highest seen is looked for among what we hold; one we no longer hold is written again
   * (a clock set back must never make a new message look old: twice, rarely, but never lost).
   */
  private handedBefore(r: Receipt): boolean {
    const last = (this.lastReceipt ??= new Map()).get(r.address);
    if (last === undefined || r.seq > last) { this.lastReceipt.set(r.address, r.seq); return false; }
    const same = (d: Delivery) => d.receipt !== undefined && d.receipt.seq === r.seq && d.receipt.address === r.address;
    return this.unacked.some(same) || this.flushing.some(same) || this.waiting.some(same);
  }

  private flushWaiting(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const d of waiting) this.deliverNow(d);
  }

  private deliverNow(d: Delivery): void {
    if (this.expired) { this.lost([d]); return; }
    // '<message', '<presence', '<iq': the second character tells (no parse on the chat path).
    const k = d.xml.charCodeAt(1);
    if (k === 109) traffic.out.message++; else if (k === 112) traffic.out.presence++; else if (k === 105) traffic.out.iq++;
    if (this.smId) {
      this.unacked.push(d);
      this.smOut++;
      if (this.unacked.length > this.o.maxUnacked) {
        // A client that does not ack (or read) is not kept: its mail goes to its other resources or offline.
        this.ended = true;
        if (this.closed) this.expire(); // detached: nothing will resume this soon enough
        else this.fail('policy-violation', 'too many unacknowledged stanzas');
        return;
      }
      if (this.closed || this.ending) return; // held for a resumption, or for expire()
      this.write(d.xml);
      this.checkOutbound();
      if (this.closed || this.ending) return;
      if (this.unacked.length >= 16) this.requestAck();
      else if (!this.ackRequest) this.ackRequest = this.timer(500, () => this.requestAck());
      return;
    }
    if (this.closed || this.ending) { this.lost([d]); return; }
    if (d.receipt) { this.flushing.push(d); this.write(d.xml, this.taken); } else this.write(d.xml);
    this.checkOutbound();
  }

  /** The kernel took a delivered stanza (writes complete in order: the oldest one waiting). One bound
   *  function for every write, not a closure each: this is the chat path. */
  private readonly taken = this.guard((err?: Error | null): void => {
    if (err) return; // not written: expire() gives it back
    const item = this.flushing.shift();
    if (item?.receipt) this.rt.router.controlFor(item.receipt.address, { c: 'release', address: item.receipt.address, seq: item.receipt.seq });
  });

  /**
   * A client that does not read is not buffered for without bound. Above max_outbound_bytes waiting,
   * it has OUTBOUND_STALL_MS to take some of it (a phone catching up on a backlog does); a client that
   * took nothing in that time, or with 16 times the limit waiting, is closed and its mail routed again.
   */
  private checkOutbound(): void {
    const waiting = this.socket.writableLength, max = this.o.maxOutboundBytes;
    if (this.closed || this.ending || waiting <= max || this.stall) return;
    if (waiting > 16 * max) { this.notReading(waiting); return; }
    const taken = () => this.socket.bytesWritten - this.socket.writableLength; // handed to the kernel
    const mark = taken();
    this.stall = this.timer(OUTBOUND_STALL_MS, () => {
      this.stall = null;
      if (this.socket.writableLength <= max) return;
      if (taken() === mark) this.notReading(this.socket.writableLength);
      else this.checkOutbound(); // it reads, slowly: watch again
    });
  }

  private notReading(waiting: number): void {
    this.ended = true; // no resumption: the next stream would not read either
    // Ended, not destroyed: a client that reads again within the 2 s grace still gets what is buffered.
    this.fail('policy-violation', `the client does not read (${waiting} bytes waiting)`);
  }

  /** Stanzas the client never got go back to the session, which routes them again (offline storage). */
  private lost(items: Delivery[]): void {
    if (items.length) this.rt.send(this.session, { type: 'closed', reason: 'undelivered', unacked: items } satisfies ToSession, this.address);
  }

  // ---- XEP-0198 -------------------------------------------------------------------------------

  private smAck(xml: string, h: StanzaHeader): void {
    if (h.name === 'r') { this.ackWaits.push({ upTo: this.inSeq, by: Date.now() + ACK_WAIT_MS }); this.answerAcks(); return; }
    // The framer has checked it; its attributes are read as any element's (entities and all).
    this.acked(Number(parseElement(xml, NS.SM).attr('h')));
  }

  /** The session accepted <enable/>: from now on stanzas are counted and kept until acknowledged. */
  private smEnable(resume: boolean, wrap: [string, string] = ['', '']): void {
    if (this.smId) return;
    this.smId = randomBytes(12).toString('base64url');
    this.smInBase = this.enableAt;
    if (resume) resumable.set(this.smId, this);
    const max = Math.round(this.o.resumeTimeoutMs / 1000);
    this.write(`${wrap[0]}<enabled xmlns="${NS.SM}" id="${this.smId}"${resume ? ` resume="true" max="${max}"` : ''}/>${wrap[1]}`);
  }

  private requestAck(): void {
    if (this.ackRequest) { clearTimeout(this.ackRequest); this.ackRequest = null; }
    if (!this.closed && this.unacked.length > 0) this.write(`<r xmlns="${NS.SM}"/>`);
  }

  private answerAcks(): void {
    const handled = this.handledIn(), now = Date.now();
    let head = this.ackWaits[0];
    let answered = false;
    while (head && (head.upTo <= handled || head.by <= now)) {
      this.ackWaits.shift();
      if (head.upTo > handled) this.ackOwed = Math.max(this.ackOwed, head.upTo);
      this.write(`<a xmlns="${NS.SM}" h="${(handled - this.smInBase) >>> 0}"/>`);
      answered = true;
      head = this.ackWaits[0];
    }
    if (this.ackOwed && this.ackOwed <= handled) {
      this.ackOwed = 0;
      if (!answered) this.write(`<a xmlns="${NS.SM}" h="${(handled - this.smInBase) >>> 0}"/>`);
    }
    if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = null; }
    if (head) this.ackTimer = this.timer(head.by - now, () => { this.ackTimer = null; this.answerAcks(); });
  }

  /** Inbound stanzas handled so far: every seq below the oldest unhandled one. */
  private handledIn(): number {
    if (!this.unhandled || this.unhandled.size === 0) return this.inSeq;
    return this.unhandled.keys().next().value! - 1;
  }

  private acked(h: number): void {
    if (!Number.isInteger(h) || h < 0) { this.fail('undefined-condition', 'bad h'); return; }
    const n = (h - this.smAckedOut) >>> 0; // h wraps at 2^32
    if (n > this.unacked.length) { this.fail('undefined-condition', 'handled-count-too-high'); return; }
    const done = this.unacked.splice(0, n);
    this.smAckedOut = h;
    for (const u of done) if (u.receipt) this.rt.router.controlFor(u.receipt.address, { c: 'release', address: u.receipt.address, seq: u.receipt.seq });
  }

  /** `<resume/>` on this (new) connection, which the session found in order (authenticated, not
   *  bound): the detached connection of that stream, if it is this account's, takes this socket over. */
  private resume(previd: string, h: number, inline?: InlineResume): void {
    const old = resumable.get(previd);
    if (!this.authJid || !old || !old.closed || old.authJid !== this.authJid) {
      const failed = `<failed xmlns="${NS.SM}"${old && old.authJid === this.authJid ? ` h="${old.handledIn() - old.smInBase}"` : ''}><item-not-found xmlns="${NS.STANZAS}"/></failed>`;
      // Inside SASL2 the session goes on (to bind) and puts the failure in its <success/>.
      if (inline) { this.toSession({ type: 'resume-failed', xml: failed }); return; }
      this.write(failed);
      this.next();
      return;
    }
    // This connection's own (unbound) session ends; the socket and framer move to the old connection.
    // Stop watching that session first: its normal exit must not destroy a socket we gave away.
    this.rt.demonitor(this.session, this.monitorRef);
    this.handedOver = true;
    this.sessionUp = false;
    this.rt.send(this.session, { type: 'closed', reason: 'resumed elsewhere', unacked: [] } satisfies ToSession, this.address);
    this.closed = true;
    this.rt.unregisterEndpoint(this.address);
    this.socket.removeListener('data', this.onData);
    this.sink.conn = old;
    old.takeOver(this.socket, this.framer, this.sink, h, inline);
  }

  private takeOver(socket: ByteSocket, framer: StreamFramer, sink: { conn: Connection }, h: number, inline?: InlineResume): void {
    if (this.detachTimer) { clearTimeout(this.detachTimer); this.detachTimer = null; }
    this.closed = false;
    this.ended = false;
    this.ending = false;
    this.framer = framer;
    this.sink = sink;
    this.attach(socket);
    if (this.inFlightFull) this.framer.pause(); // we are inside its callback (<resume/>)
    this.overRate = false;
    this.reading();
    this.acked(h);
    const resumed = `<resumed xmlns="${NS.SM}" h="${(this.handledIn() - this.smInBase) >>> 0}" previd="${this.smId}"/>`;
    this.write(inline ? sasl2SuccessXml(inline.data, this.session.slice('session:'.length), [resumed, ...(inline.token ? [inline.token] : [])]) + inline.features : resumed);
    for (const u of this.unacked) this.write(u.xml);
    this.o.log('info', `${this.address}: resumed (${socket.remoteAddress ?? this.remote}), ${this.unacked.length} stanzas sent again`);
    this.toSession({ type: 'resumed', conn: this.address });
  }

  // ---- closing --------------------------------------------------------------------------------

  private startTls(xml: string): void {
    const tls = this.o.tls;
    // No STARTTLS inside a WebSocket (RFC 7395 §3.6: TLS is the HTTP connection's).
    if (!tls || this.secure || !(this.socket instanceof Socket)) { this.fail('undefined-condition', 'TLS not available'); return; }
    const ctx = (this.streamTo && tls.contextFor(this.streamTo)) || tls.defaultContext();
    // A server stream asks the other server for its certificate too (XEP-0178), to be judged by the
    // actor: the CAs it is checked against go into a context of its own.
    const peers = this.o.verifyPeers;
    const opts = peers
      ? { secureContext: peerContext(tls, this.streamTo ?? '', peers.ca), requestCert: true, rejectUnauthorized: false }
      : { secureContext: ctx, SNICallback: tls.SNICallback, ...TLS_PROTOCOL_OPTIONS };
    this.write(xml);
    this.socket.uncork();
    this.corked = false;
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    const tlsSocket = new TLSSocket(plain, { isServer: true, ...opts });
    this.framer.reset(); // anything pipelined in plaintext after <starttls/> is dropped, never read
    this.framer.resume();
    this.secure = true;
    tlsSocket.once('secure', this.guard(() => {
      if (peers) verifyClient(tlsSocket);
      this.toSession({ type: 'tls', host: (tlsSocket as TLSSocket & { servername?: string | false }).servername || null, cb: channelBindings(tlsSocket),
        ...(peers ? { peer: peerCertificate(tlsSocket) } : {}) });
    }));
    this.attach(tlsSocket);
  }

  /** An outbound stream's STARTTLS (the peer said <proceed/>): this side is the TLS client. */
  private startTlsClient(servername: string, local?: string): void {
    if (this.secure || !(this.socket instanceof Socket)) { this.fail('undefined-condition', 'TLS is already on'); return; }
    this.socket.uncork();
    this.corked = false;
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    const tlsSocket = tlsConnect({ socket: plain, ...peerClientOptions(this.o.tls, servername, local, this.o.verifyPeers?.ca) });
    this.framer.reset();
    this.framer.resume();
    this.secure = true;
    tlsSocket.once('secureConnect', this.guard(() => this.toSession({ type: 'tls', host: servername, cb: {}, peer: peerCertificate(tlsSocket) })));
    this.attach(tlsSocket);
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9): header first if none was sent yet. */
  fail(condition: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.o.log('debug', `${this.address}: stream error ${condition}${text ? `: ${text}` : ''}`);
    this.write((this.headerSent ? '' : streamOpen({ id: 'error' })) + streamError(condition, text));
    this.endSocket();
  }

  private endSocket(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.socket.end();
    this.timer(2000, () => this.socket.destroy());
  }

  private socketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.authTimer) { clearTimeout(this.authTimer); this.authTimer = null; }
    if (this.smId && resumable.get(this.smId) === this && this.sessionUp && !this.ended) {
      // Detached: the session stays (presence and all) until resumed or timed out.
      this.o.log('info', `${this.address}: closed (${this.remote}); its session waits ${Math.round(this.o.resumeTimeoutMs / 1000)} s for a resumption`);
      this.detachTimer = this.timer(this.o.resumeTimeoutMs, () => this.expire());
      this.toSession({ type: 'detached' });
      return;
    }
    this.expire();
  }

  /** Once: the session gets what the client never acknowledged. Late deliveries (in flight while
   *  closing) still reach us and go back via lost(), until the session's 'drain' says there are no
   *  more; its exit then ends this connection (watchSession). */
  private expire(): void {
    if (this.expired) return;
    this.expired = true;
    this.closed = true;
    if (this.detachTimer) { clearTimeout(this.detachTimer); this.detachTimer = null; }
    if (this.smId) resumable.delete(this.smId);
    const unacked = [...this.unacked, ...this.flushing, ...this.waiting];
    this.unacked = [];
    this.flushing = [];
    this.waiting = [];
    this.toSession({ type: 'closed', reason: this.ended ? 'stream closed' : 'connection lost', unacked });
    if (this.orphaned) this.destroy();
  }

  private destroy(): void {
    if (!this.done) {
      this.done = true;
      this.o.log('info', `${this.address}: closed (${this.remote})`);
      this.o.census?.gone(this.remote, this.authJid !== null);
      this.onDone();
    }
    this.closed = true;
    if (this.detachTimer) clearTimeout(this.detachTimer);
    if (this.restartWait) clearTimeout(this.restartWait);
    if (this.smId) resumable.delete(this.smId);
    this.rt.unregisterEndpoint(this.address);
    this.rt.demonitor(this.session, this.monitorRef);
    if (!this.handedOver && !this.socket.destroyed) this.socket.destroy();
  }

  /** For node shutdown: ends this stream, or the one that took over this connection's socket. */
  shutdown(): void {
    if (this.handedOver) this.sink.conn.shutdown();
    else this.fail('system-shutdown');
  }
}

/** Node judges a client's certificate only on sockets of a tls.Server (its 'secure' listener); on a
 *  socket made for STARTTLS the same judgement is asked of OpenSSL here. */
function verifyClient(t: TLSSocket): void {
  const error = (t as unknown as { _handle?: { verifyError?(): (Error & { code?: string }) | null } })._handle?.verifyError?.();
  if (error) t.authorizationError = error;
  else t.authorized = true;
}

function peerCertificate(t: TLSSocket): PeerCertificate {
  const cert = t.getPeerCertificate();
  const dns = (cert?.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4).toLowerCase());
  const cn = typeof cert?.subject?.CN === 'string' ? [cert.subject.CN.toLowerCase()] : [];
  const error = t.authorizationError ? String(t.authorizationError) : (cert && Object.keys(cert).length ? undefined : 'no certificate');
  return { authorized: t.authorized && error === undefined, ...(error ? { error } : {}), names: dns.length ? dns : cn };
}

function channelBindings(t: TLSSocket): ChannelBindings {
  const cb: ChannelBindings = {};
  if (t.getProtocol() === 'TLSv1.3') cb['tls-exporter'] = t.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)).toString('base64');
  const cert = t.getCertificate() as { raw?: Buffer } | null;
  try {
    if (cert?.raw) cb['tls-server-end-point'] = serverEndPointHash(cert.raw).toString('base64');
  } catch { /* no hash defined for this certificate's signature (RFC 5929): not offered */ }
  return cb;
}
