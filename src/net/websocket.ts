// XMPP over WebSocket (RFC 7395) through the one stream engine: a WebSocket is turned into the byte
// stream a Connection reads and writes, so a web client's session is the same session actor as a
// TCP client's (stream management, durability, crash survival and all). Each frame holds one
// element: the client's <open/> becomes a stream header and its <close/> the stream's end; the
// engine's output is cut back into elements, our header becoming <open/>, each element made
// standalone (its namespaces declared), the stream's end <close/>.
import type { IncomingMessage } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Runtime } from '../runtime/runtime.ts';
import { Connection, type ByteSocket, type ConnectionOptions } from './connection.ts';
import { webClient } from './census.ts';
import { serialize, streamOpen, x } from '../xml/builder.ts';
import { parseElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';

const CLOSE = serialize(x('close', { xmlns: NS.FRAMING }));

/** A frame from the client, as the engine reads a stream: <open/> a header, <close/> its end. */
export function inboundText(frame: string): string {
  const t = frame.trim();
  if (/^<(open|close)[\s/>]/.test(t)) {
    let el;
    try { el = parseElement(t); } catch { return frame; } // the engine's framer names what is wrong
    if (el.getXmlns() === NS.FRAMING) {
      if (el.name === 'close') return '</stream:stream>';
      return streamOpen({ declaration: false, to: el.attr('to') ?? null, version: el.attr('version') ?? null, lang: el.attr('xml:lang') ?? null });
    }
  }
  return frame;
}

/** Index of the '>' ending the tag that starts at s[i], quotes respected; -1 if not all here. */
function endOfTag(s: string, i: number): number {
  let quote = '';
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j]!;
    if (quote) { if (c === quote) quote = ''; } else if (c === '"' || c === "'") quote = c; else if (c === '>') return j;
  }
  return -1;
}

/** Index just past the element that starts at s[i]; -1 if not all here. Text holds no '<' (it
 *  is escaped in well-formed XML); CDATA sections are skipped whole. */
function endOfElement(s: string, i: number): number {
  let depth = 0, pos = i;
  for (;;) {
    const k = s.indexOf('<', pos);
    if (k < 0) return -1;
    if (s.startsWith('<![CDATA[', k)) { const e = s.indexOf(']]>', k); if (e < 0) return -1; pos = e + 3; continue; }
    const e = endOfTag(s, k);
    if (e < 0) return -1;
    if (s[k + 1] === '/') depth--;
    else if (s[e - 1] !== '/') depth++;
    pos = e + 1;
    if (depth === 0) return pos;
  }
}

/** A piece of the engine's output: our stream header (its attributes), one element made standalone,
 *  or the stream's end. */
export type OutboundPiece = { open: Record<string, string | null> } | { element: string } | { close: true };

/** The engine's output cut into pieces (what the web transports send: a WebSocket frame each, BOSH
 *  bodies): what it writes is whole XML of ours (stanzas passed through as clients sent them
 *  included), possibly split across writes. */
export class OutboundPieces {
  private buf = '';

  push(text: string): OutboundPiece[] {
    this.buf += text;
    const out: OutboundPiece[] = [];
    for (;;) {
      const s = this.buf;
      let i = 0;
      while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
      if (i === s.length) { this.buf = ''; return out; }
      if (s.startsWith('<?', i)) {
        const e = s.indexOf('?>', i);
        if (e < 0) break;
        this.buf = s.slice(e + 2);
        continue;
      }
      const tagEnd = endOfTag(s, i);
      if (tagEnd < 0) break;
      const tag = s.slice(i, tagEnd + 1);
      const name = /^<\/?([^\s/>]+)/.exec(tag)![1]!;
      if (tag.startsWith('</stream:stream')) { out.push({ close: true }); this.buf = s.slice(tagEnd + 1); continue; }
      if (name === 'stream:stream') { out.push({ open: headerAttrs(tag) }); this.buf = s.slice(tagEnd + 1); continue; }
      const end = endOfElement(s, i);
      if (end < 0) break;
      out.push({ element: standalone(s.slice(i, end), name, tag) });
      this.buf = s.slice(end);
    }
    return out;
  }
}

/** What our stream header says (from, to, id, version, xml:lang). */
function headerAttrs(header: string): Record<string, string | null> {
  const h = parseElement(`${header}</stream:stream>`);
  return { from: h.attr('from') ?? null, to: h.attr('to') ?? null, id: h.attr('id') ?? null, version: h.attr('version') ?? null, 'xml:lang': h.attr('xml:lang') ?? null };
}

/** A piece as RFC 7395 frames it: our header as <open/>, the stream's end as <close/>. */
export function frameOf(p: OutboundPiece): string {
  if ('element' in p) return p.element;
  return 'open' in p ? serialize(x('open', { xmlns: NS.FRAMING, ...p.open })) : CLOSE;
}

/** An element of the stream as a piece of its own: the stream prefix declared on stream:features
 *  and stream:error, the content namespace on stanzas that inherited it. */
function standalone(el: string, name: string, startTag: string): string {
  const at = 1 + name.length;
  if (name.startsWith('stream:')) return startTag.includes('xmlns:stream=') ? el : `${el.slice(0, at)} xmlns:stream="${NS.STREAMS}"${el.slice(at)}`;
  return /\sxmlns\s*=/.test(startTag) ? el : `${el.slice(0, at)} xmlns="${NS.CLIENT}"${el.slice(at)}`;
}

/**
 * A WebSocket as the socket a Connection takes: what the engine uses of a net.Socket (data and
 * close events, pause and resume, write with its callback, how much waits to be sent, end and
 * destroy, the peer's address). Reading pauses the WebSocket when the engine does not keep up.
 */
export class WebSocketStream extends Duplex {
  bytesWritten = 0;
  private readonly pieces = new OutboundPieces();

  constructor(private readonly ws: WebSocket, readonly remoteAddress: string | undefined) {
    super({ decodeStrings: false, allowHalfOpen: false });
    // What waits to be sent includes what the WebSocket has buffered (the engine watches it).
    Object.defineProperty(this, 'writableLength', { get: () => this.writableBuffered() + this.ws.bufferedAmount });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) { this.destroy(new Error('binary frames are not XMPP (RFC 7395 §3.2)')); return; }
      if (!this.push(Buffer.from(inboundText(data.toString('utf8'))))) ws.pause();
    });
    ws.on('close', () => { this.push(null); this.destroy(); });
    ws.on('error', (err) => this.destroy(err));
  }

  private writableBuffered(): number {
    return (Object.getOwnPropertyDescriptor(Duplex.prototype, 'writableLength')!.get!.call(this) as number);
  }

  setNoDelay(): this { return this; }

  override _read(): void { this.ws.resume(); }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.bytesWritten += Buffer.byteLength(text);
    let frames: string[];
    try { frames = this.pieces.push(text).map(frameOf); } catch (e) { done(e as Error); return; }
    if (frames.length === 0) { done(); return; }
    let left = frames.length;
    let failed: Error | null = null;
    for (const f of frames) this.ws.send(f, (err) => { failed ??= err ?? null; if (--left === 0) done(failed); });
  }

  override _final(done: (err?: Error | null) => void): void {
    this.ws.close(1000);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.ws.terminate();
    done(err);
  }
}

/** Where web clients connect (RFC 7395 §3.3, and what XEP-0156 discovery announces). */
export const WEBSOCKET_PATH = '/xmpp-websocket';

export interface WebSocketEndpoint {
  /** Takes an HTTP upgrade for WEBSOCKET_PATH: a Connection whose session is a client's, or a
   *  refusal in HTTP. `overTls`: it came on the HTTPS listener. */
  upgrade(req: IncomingMessage, socket: NetSocket, head: Buffer, overTls: boolean, conns: Set<Connection>): void;
}

function refuse(socket: NetSocket, status: string, text: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

/**
 * WebSocket sessions through the stream engine. Secure when over HTTPS, or when from this machine
 * (a reverse proxy in front terminates TLS): webClient.
 */
export function webSocketEndpoint(rt: Runtime, opts: ConnectionOptions, requireEncryption: boolean): WebSocketEndpoint {
  const wss = new WebSocketServer({
    noServer: true, maxPayload: opts.maxStanzaBytes + 4096, perMessageDeflate: false,
    // RFC 7395 §3.1: the subprotocol is 'xmpp'; a client that does not ask for it is not ours.
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  return {
    upgrade: (req, socket, head, overTls, conns) => {
      const { remote, secure } = webClient(req, overTls);
      if (!secure && requireEncryption) { refuse(socket, '403 Forbidden', 'Use wss:// (c2s_require_encryption)'); return; }
      if (!String(req.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === 'xmpp')) {
        refuse(socket, '400 Bad Request', 'The WebSocket subprotocol must be xmpp (RFC 7395)');
        return;
      }
      const refused = opts.census?.admit(remote);
      if (refused) { refuse(socket, '503 Service Unavailable', refused); return; }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const host = overTls ? ((socket as NetSocket & { servername?: string | false }).servername || null) : null;
        try {
          const c: Connection = new Connection(rt, new WebSocketStream(ws, remote) as ByteSocket, opts, { web: 'websocket', secure, host }, () => conns.delete(c));
          conns.add(c);
        } catch (err) {
          opts.log('warn', `websocket from ${remote}: not set up: ${(err as Error).message}`);
          opts.census?.gone(remote, false);
          ws.terminate();
        }
      });
    },
  };
}
