// Messages between a client connection (main thread, owns the socket) and its session actor (a
// scheduler). Flat records of strings and numbers: they are cloned across threads.
import type { Receipt } from '../runtime/api.ts';
import type { StanzaHeader } from '../xml/framer.ts';

export interface ConnInfo {
  conn: string;          // the connection's address, conn:<boot>.<n>
  remote: string;        // peer IP
  secure: boolean;       // TLS already up (Direct TLS)
  directTls: boolean;
  host: string | null;   // SNI name, when TLS is up
  cb: ChannelBindings | null;
  /** A server stream over Direct TLS: the other server's certificate (as on the 'tls' event). */
  peer?: PeerCertificate;
}

/** A stanza on its way to a client. `receipt`: its durable message, released once the client has it.
 *  `sent`: when the user actor sent it, set on each copy of a message it gave to several resources
 *  (a copy handed back is then not routed again while another resource has it). */
export interface Delivery { xml: string; receipt?: Receipt; sent?: number }

/** A resumption asked inside SASL2 (XEP-0388, XEP-0198): on success the connection answers with
 *  <success/> (`data`, the resumed full JID, <resumed/>, a new FAST `token`) and `features`. */
export interface InlineResume { data: string | null; token: string | null; features: string }

/** A server's certificate as TLS saw it: `authorized` if it chains to a CA we trust (`error` says
 *  why not), and the DNS names it is for (its subjectAltName, else its common name). */
export interface PeerCertificate { authorized: boolean; error?: string; names: string[] }

/** Whether a certificate's names cover a domain (RFC 6125 §6.4: exact, or a wildcard for the
 *  leftmost label only). */
export function certificateNames(cert: PeerCertificate | null | undefined, domain: string): boolean {
  if (!cert?.authorized) return false;
  const d = domain.toLowerCase();
  return cert.names.some((n) => n === d || (n.startsWith('*.') && d.indexOf('.') > 0 && d.slice(d.indexOf('.') + 1) === n.slice(2)));
}

export interface ChannelBindings { 'tls-exporter'?: string; 'tls-server-end-point'?: string } // base64

export type ToSession =
  /** An outbound stream's socket is connected (the connection was made for an existing actor). */
  | ({ type: 'connected' } & ConnInfo)
  /** `id`: the stream id the peer gave (a server's answer to our header); `db`: it declared the
   *  dialback namespace (XEP-0220). */
  | { type: 'header'; to: string | null; from: string | null; version: string | null; lang: string | null; xmlns: string; id?: string | null; db?: boolean }
  /** `h`: the framer's routing header (to/from/type/id and offsets): routing needs no full parse. */
  /** `seq`: the client's stanzas counted (XEP-0198); `done`: every one up to it is handled. */
  | { type: 'stanza'; xml: string; h: StanzaHeader; seq: number; done?: number }
  /** TLS is up. On a server stream, `peer`: the other server's certificate, as the actor needs it to
   *  decide whether it proves a domain (RFC 6125, XEP-0178). */
  | { type: 'tls'; host: string | null; cb: ChannelBindings; peer?: PeerCertificate }
  | { type: 'end' }
  /** The socket is gone. `unacked`: what the client never acknowledged (stream management). */
  | { type: 'closed'; reason: string; unacked: Delivery[] }
  /** The socket dropped but XEP-0198 resumption may bring it back: presence stays, mail queues. */
  | { type: 'detached' }
  /** The resumption asked inside SASL2 failed: `xml` is the <failed/> its <success/> carries. */
  | { type: 'resume-failed'; xml: string }
  /** A stream-management resumption attached a new socket to this session. */
  | { type: 'resumed'; conn: string }
  /** The answer to 'drain': every delivery the session sent before it has been accounted for. */
  | { type: 'drained' };

export type ToConn =
  | { type: 'write'; xml: string }
  /** Answer <starttls/> with `xml` and start TLS as the server; with `servername`, start it as the
   *  client of an outbound stream (the peer said <proceed/>) for that domain. */
  | { type: 'starttls'; xml: string; servername?: string; /** our domain, whose certificate we show */ local?: string }
  /** SASL succeeded: `jid` is the authenticated bare JID; with `restart` the client restarts the
   *  stream (RFC 6120), without it the stream goes on (XEP-0388). Until bound (the connection's
   *  monitor of the session hears it moved to its full JID), stanzas come one at a time ('next'). */
  | { type: 'authenticated'; xml: string; jid: string; restart: boolean; /** Nothing to bind (a component's stream): open at once. */ bound?: boolean }
  | { type: 'close'; xml?: string }
  /** Authenticated and not bound yet, the session takes stanzas one at a time: it is done with the
   *  one it had (anything but a bind request in progress), send the next. */
  | { type: 'next' }
  /** The bind was refused (`xml`, the error): the next stanza may come. */
  | { type: 'bind-failed'; xml: string }
  /** Inbound stanza `seq` is handled (its effects durable): it counts for XEP-0198 <a h=…/>. */
  | { type: 'handled'; seq: number }
  /** A stanza for the client; the receipt is released once the client has it (acked or written).
   *  `hold`: the client said it is inactive (XEP-0352) and this can wait: kept, in order, until a
   *  delivery that cannot wait or 'flush'. */
  | ({ type: 'deliver'; hold?: boolean } & Delivery)
  /** Write every held delivery now (the client became active). */
  | { type: 'flush' }
  /** XEP-0198 <enable/> is accepted: count from where it came in, answer <enabled/> (resumable if
   *  `resume`, for as long as the connection keeps detached streams). `wrap`: written around the
   *  <enabled/> (XEP-0198 enabled inline, in Bind 2's <bound/>). */
  | { type: 'sm-enable'; resume: boolean; wrap?: [string, string] }
  /** The peer answered our <enable/> with <enabled/> (an outbound server stream): from here on each
   *  delivery is kept, its receipt held, until the peer acknowledges it; unacknowledged ones come
   *  back with 'closed'. */
  | { type: 'sm-enabled' }
  /** XEP-0198 <resume/> is in order here: take over stream `previd` if it is this account's and
   *  detached, acknowledging `h`; else answer <failed/>. */
  | { type: 'sm-resume'; previd: string; h: number; inline?: InlineResume }
  /** A restarted session asks for the inbound stanzas it has not handled yet. */
  | { type: 'replay' }
  /** The ending session's last message: answer 'drained' once earlier deliveries are handed back. */
  | { type: 'drain' };
