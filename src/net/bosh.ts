// XMPP over BOSH (XEP-0124, XEP-0206) through the one stream engine, as WebSocket comes: each BOSH
// session is a byte stream a Connection reads and writes, so its session actor is a TCP client's
// (stream management, durability and crash survival apply). The client's requests carry stanzas in
// and are held open to carry ours out: a request's payload goes to the engine in `rid` order (a
// request ahead of a gap waits for it), at most `hold` requests are held (a newer one frees the
// oldest), a held request is answered as soon as there is output, or empty after `wait` seconds.
// What the engine writes is done only once a response took it (flow control: a client that stops
// asking stops the engine writing). A session nobody asks for in limits.bosh_inactivity_seconds is
// gone, as a TCP stream whose socket closed (XEP-0198 may resume it).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { Runtime } from '../runtime/runtime.ts';
import { Connection, type ByteSocket, type ConnectionOptions } from './connection.ts';
import { overTls, webClient } from './census.ts';
import { OutboundPieces } from './websocket.ts';
import { readBody } from './http-body.ts';
import { serialize, startTag, streamOpen, x, type AttrValue } from '../xml/builder.ts';
import { parseElement, XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';

/** Where BOSH clients connect (what Prosody and ejabberd use, and XEP-0156 announces). */
export const BOSH_PATH = '/http-bind';

/** The bounds this server sets on what a client asks for (XEP-0124 §7). */
const MAX_WAIT_S = 60;
const HOLD = 1;
const REQUESTS = HOLD + 1;
const POLLING_S = 2;
/** Responses kept for a client that asks again with the same rid (a request lost on the way). */
const CACHED = REQUESTS;
/** The engine's input not yet read above which further payloads wait (the engine pushes back). */
const INPUT_HIGH = 256 * 1024;

const CORS = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Methods': 'POST, OPTIONS', 'Access-Control-Allow-Headers': 'Content-Type', 'Access-Control-Max-Age': '86400' };

type Condition = 'bad-request' | 'item-not-found' | 'host-unknown' | 'policy-violation' | 'remote-stream-error' | 'internal-server-error' | 'system-shutdown';

/** A <body/> with elements of ours inside: each already standalone XML (OutboundPieces made it so). */
function body(attrs: Record<string, AttrValue>, elements: readonly string[] = []): string {
  const all = { xmlns: NS.HTTPBIND, ...attrs };
  return elements.length ? `${startTag('body', all)}${elements.join('')}</body>` : serialize(x('body', all));
}

const terminate = (condition?: Condition, elements: readonly string[] = []) => body({ type: 'terminate', condition }, elements);

function answer(res: ServerResponse, text: string, done?: () => void): void {
  if (res.writableEnded || res.destroyed) { done?.(); return; }
  res.writeHead(200, { ...CORS, 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text, done);
}

interface Held { rid: number; res: ServerResponse; timer: NodeJS.Timeout }

/**
 * One BOSH session as the socket a Connection takes. Inbound, request payloads become the stream's
 * bytes (a stream header at creation and at each xmpp:restart, '</stream:stream>' at terminate);
 * outbound, the engine's writes are cut into elements that wait for a held request.
 */
export class BoshStream extends Duplex {
  bytesWritten = 0;
  readonly sid = randomBytes(16).toString('hex');
  private readonly pieces = new OutboundPieces();
  /** Our elements not yet in a response, and the engine's writes they came in (done once sent). */
  private pending: string[] = [];
  private writes: Array<(err?: Error | null) => void> = [];
  private header: Record<string, string | null> | null = null;
  /** The engine ended the stream: the next response terminates the session. */
  private streamEnded = false;
  private gone = false;
  private held: Held[] = [];
  /** Requests that came ahead of a gap in the rids, or while the engine's input is full. */
  private queued = new Map<number, { el: XmlElement; res: ServerResponse }>();
  private nextRid: number;
  private cache = new Map<number, string>();
  private firstAnswered = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private flushing = false;
  private readonly wait: number;
  private readonly hold: number;

  constructor(readonly remoteAddress: string, private readonly create: XmlElement, private readonly inactivity: number, private readonly onGone: (sid: string) => void) {
    super({ decodeStrings: false, allowHalfOpen: false });
    this.nextRid = Number(create.attr('rid')) + 1;
    this.wait = Math.min(MAX_WAIT_S, Math.max(1, Number(create.attr('wait')) || MAX_WAIT_S));
    this.hold = Math.min(HOLD, Math.max(0, Number(create.attr('hold') ?? HOLD) || 0));
  }

  /** Opens the stream for the engine and holds the creation request for its first answer. */
  start(res: ServerResponse): void {
    this.push(streamOpen({ declaration: false, to: this.create.attr('to') ?? null, version: '1.0', lang: this.create.attr('xml:lang') ?? null }));
    this.holdRequest(Number(this.create.attr('rid')), res);
  }

  setNoDelay(): this { return this; }

  /** A request for this session, in whatever order the client's connections brought it. */
  request(el: XmlElement, res: ServerResponse): void {
    const rid = Number(el.attr('rid'));
    if (rid < this.nextRid) {
      // XEP-0124 §14.3: a request already answered is answered again, the same.
      const cached = this.cache.get(rid);
      if (cached !== undefined) answer(res, cached); else this.fail(res, 'item-not-found');
      return;
    }
    if (rid >= this.nextRid + REQUESTS || this.queued.has(rid)) { this.fail(res, 'item-not-found'); return; }
    this.queued.set(rid, { el, res });
    this.takeQueued();
  }

  private takeQueued(): void {
    for (;;) {
      if (this.gone || this.readableLength > INPUT_HIGH) return;
      const next = this.queued.get(this.nextRid);
      if (!next) return;
      this.queued.delete(this.nextRid);
      this.handleInOrder(this.nextRid++, next.el, next.res);
    }
  }

  private handleInOrder(rid: number, el: XmlElement, res: ServerResponse): void {
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = null; }
    if (el.attr('xmpp:restart') === 'true') {
      this.push(streamOpen({ declaration: false, to: el.attr('to') ?? this.create.attr('to') ?? null, version: '1.0', lang: el.attr('xml:lang') ?? null }));
    }
    for (const child of el.children) if (child instanceof XmlElement) this.push(serialize(child));
    if (el.attr('type') === 'terminate') {
      // The client's last stanzas (its unavailable presence) go in, then the stream's end.
      this.push('</stream:stream>');
      this.last(res, rid, terminate(undefined, this.takePending()));
      return;
    }
    this.holdRequest(rid, res);
  }

  private holdRequest(rid: number, res: ServerResponse): void {
    const h: Held = { rid, res, timer: setTimeout(() => this.respond(h), this.wait * 1000).unref() };
    this.held.push(h);
    res.once('close', () => { if (!res.writableFinished) this.release(h); });
    while (this.held.length > this.hold) this.respond(this.held[0]!);
    this.flushSoon();
  }

  private release(h: Held): void {
    clearTimeout(h.timer);
    const i = this.held.indexOf(h);
    if (i < 0) return;
    this.held.splice(i, 1);
    if (!this.held.length && !this.gone) this.idle();
  }

  /** With no request held, the client has `inactivity` seconds to send one. */
  private idle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => { this.idleTimer = null; if (!this.held.length) this.destroy(); }, this.inactivity * 1000).unref();
  }

  /** Answers a held request with what is pending (the session's attributes on the first). */
  private respond(h: Held): void {
    this.release(h);
    if (this.streamEnded) { this.last(h.res, h.rid, this.finalBody()); return; }
    const elements = this.takePending();
    const done = this.writes;
    this.writes = [];
    let attrs: Record<string, AttrValue> = {};
    if (!this.firstAnswered) {
      this.firstAnswered = true;
      attrs = {
        sid: this.sid, wait: this.wait, requests: REQUESTS, hold: this.hold, inactivity: this.inactivity, polling: POLLING_S, ver: '1.11',
        from: this.header?.from ?? this.create.attr('to'), authid: this.header?.id, 'xmlns:xmpp': NS.XBOSH, 'xmpp:version': '1.0', 'xmpp:restartlogic': 'true',
      };
    }
    const text = body(attrs, elements);
    this.remember(h.rid, text);
    answer(h.res, text, () => { for (const cb of done) cb(); });
  }

  private takePending(): string[] {
    const p = this.pending;
    this.pending = [];
    return p;
  }

  private remember(rid: number, text: string): void {
    this.cache.set(rid, text);
    for (const k of this.cache.keys()) if (k <= rid - CACHED) this.cache.delete(k);
  }

  /** What the engine wrote goes out with the next held request, after this tick's other writes. */
  private flushSoon(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      if (this.held.length && (this.pending.length || this.streamEnded)) this.respond(this.held[0]!);
    });
  }

  /** What ends the session: our last elements, a stream error among them named as XEP-0206 §7 says. */
  private finalBody(): string {
    return terminate(this.pending.some((e) => e.startsWith('<stream:error')) ? 'remote-stream-error' : undefined, this.takePending());
  }

  /** The session's last answer: every request it holds ends too, and its sid is forgotten. */
  private last(res: ServerResponse, rid: number, text: string): void {
    this.remember(rid, text);
    answer(res, text);
    this.finish();
  }

  private finish(): void {
    if (this.gone) return;
    this.gone = true;
    // The oldest held request carries what the engine wrote last (a stream error); the others end bare.
    for (const [i, h] of [...this.held].entries()) { this.release(h); answer(h.res, i === 0 ? this.finalBody() : terminate()); }
    for (const q of this.queued.values()) answer(q.res, terminate('item-not-found'));
    this.queued.clear();
    for (const cb of this.writes.splice(0)) cb();
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = null; }
    this.onGone(this.sid);
    this.push(null);
  }

  private fail(res: ServerResponse, condition: Condition): void {
    answer(res, terminate(condition));
  }

  override _read(): void { this.takeQueued(); }

  override _writev(chunks: Array<{ chunk: Buffer | string }>, done: (err?: Error | null) => void): void {
    let text = '';
    for (const { chunk } of chunks) text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.bytesWritten += Buffer.byteLength(text);
    let elements = 0;
    try {
      for (const p of this.pieces.push(text)) {
        if ('open' in p) this.header ??= p.open;
        else if ('close' in p) this.streamEnded = true;
        else { this.pending.push(p.element); elements++; }
      }
    } catch (e) { done(e as Error); return; }
    if (this.gone) { done(); return; }
    if (elements) this.writes.push(done); else done();
    this.flushSoon();
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.streamEnded = true;
    this.flushSoon();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.finish();
    done(err);
  }
}

export interface BoshEndpoint {
  /** A request for BOSH_PATH; a session it opens joins `conns` (the listener's, ended at its stop). */
  handle(req: IncomingMessage, res: ServerResponse, conns: Set<Connection>): void;
}

/**
 * BOSH sessions through the stream engine, by sid. Secure when over HTTPS or from this machine (a
 * reverse proxy in front), as for WebSocket.
 */
export function boshEndpoint(rt: Runtime, opts: ConnectionOptions, { requireEncryption, inactivitySeconds }: { requireEncryption: boolean; inactivitySeconds: number }): BoshEndpoint {
  const sessions = new Map<string, BoshStream>();
  const maxBody = opts.maxStanzaBytes + 16_384;
  const plainAnswer = (res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...CORS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  async function post(req: IncomingMessage, res: ServerResponse, conns: Set<Connection>): Promise<void> {
    const text = await readBody(req, maxBody);
    if (text === null) { plainAnswer(res, 413, `A request is at most ${maxBody} bytes`); return; }
    let el: XmlElement;
    try {
      el = parseElement(text.replace(/^\s*<\?xml[^?]*\?>/, ''), NS.HTTPBIND);
    } catch {
      answer(res, terminate('bad-request'));
      return;
    }
    const rid = Number(el.attr('rid'));
    if (el.name !== 'body' || el.getXmlns() !== NS.HTTPBIND || !Number.isSafeInteger(rid) || rid < 0) { answer(res, terminate('bad-request')); return; }
    const sid = el.attr('sid');
    if (sid !== undefined) {
      const s = sessions.get(sid);
      if (s) s.request(el, res); else answer(res, terminate('item-not-found'));
      return;
    }
    // A new session (XEP-0124 §7.1, XEP-0206 §3).
    if (!el.attr('to')) { answer(res, terminate('bad-request')); return; }
    const { remote, secure } = webClient(req, overTls(req));
    if (!secure && requireEncryption) { plainAnswer(res, 403, 'Use https:// (c2s_require_encryption)'); return; }
    const refused = opts.census?.admit(remote);
    if (refused) { answer(res, terminate('policy-violation')); opts.log('info', `bosh from ${remote}: ${refused}`); return; }
    const stream = new BoshStream(remote, el, inactivitySeconds, (gone) => sessions.delete(gone));
    sessions.set(stream.sid, stream);
    try {
      const c: Connection = new Connection(rt, stream as ByteSocket, opts, { web: 'bosh', secure, host: null }, () => conns.delete(c));
      conns.add(c);
    } catch (err) {
      opts.log('warn', `bosh from ${remote}: not set up: ${(err as Error).message}`);
      opts.census?.gone(remote, false);
      sessions.delete(stream.sid);
      answer(res, terminate('internal-server-error'));
      return;
    }
    stream.start(res);
  }

  return {
    handle: (req, res, conns) => {
      if (req.method === 'OPTIONS') { res.writeHead(204, CORS); res.end(); return; }
      if (req.method === 'GET' || req.method === 'HEAD') { plainAnswer(res, 200, 'XMPP over BOSH (XEP-0206): POST here\n'); return; }
      if (req.method !== 'POST') { plainAnswer(res, 405, 'Method not allowed', { Allow: 'GET, POST, OPTIONS' }); return; }
      post(req, res, conns).catch((err: Error) => {
        opts.log('error', `bosh: ${err.stack ?? err.message}`);
        if (!res.headersSent) answer(res, terminate('internal-server-error'));
      });
    },
  };
}
