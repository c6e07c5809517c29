// Messages a user actor (`user:<bare JID>`) receives, and what it sends back. Stanzas travel as strings with their framer
// header: routing needs no full parse.
import type { StanzaHeader } from '../../src/xml/framer.ts';
import type { Delivery } from '../../src/net/c2s-protocol.ts';

export type ToUser =
  /** A session asks to bind a resource (conflicts and the session limit are decided here); `bind2`:
   *  a Bind 2 login, with what its request asked of the modules (serialized elements). */
  | { type: 'bind'; resource: string; session: string; bind2?: { inline: string[] } }
  /** A session ended (its stream closed or timed out). */
  | { type: 'unbind'; resource: string }
  /** A stanza addressed to this account (bare or full JID), from anyone. */
  | { type: 'stanza'; xml: string; h: StanzaHeader }
  /** A stanza one of this account's clients sent, stamped with its full JID by its session; `seq`
   *  (0: none) is reported handled to the connection `conn` once its effects are durable; `done`:
   *  the connection had seen every seq up to it handled. */
  | { type: 'client'; xml: string; h: StanzaHeader; resource: string; conn: string; seq: number; done: number }
  /** A stanza a module running elsewhere wants routed (parsed here). */
  | { type: 'route'; xml: string }
  /** A stanza a closing session could not deliver: route it again, to other resources or offline. */
  | { type: 'redeliver'; xml: string; except: string; sent?: number }
  /** A bound session restarted after a crash: watch it again (at bind the user actor watches its
   *  session from bind-ok on; the monitor follows its move to `session:<full JID>`). */
  | { type: 'arrived'; resource: string }
  /** A session's connection dropped and it waits for a resumption (XEP-0198), or got one. */
  | { type: 'detached'; resource: string } | { type: 'attached'; resource: string }
  /** The account was deleted (its record is gone): clean up, close the sessions, tell `reply`, end. */
  | { type: 'delete'; reply: string };

/** What a user actor sends to its sessions. */
export type ToSessionFromUser =
  /** The resource is bound; `bound`: what modules answered a Bind 2 login with (serialized). */
  | { type: 'bind-ok'; resource: string; bound?: string[] }
  | { type: 'bind-denied'; condition: 'resource-constraint' | 'not-allowed' | 'conflict'; text: string }
  /** Another login took this resource (RFC 6120 §7.7.2.2: end with a conflict stream error), or, while
   *  detached, its place under the account's session limit. */
  | { type: 'replace' }
  /** End the stream with this error (the account was deleted). */
  | { type: 'kick'; condition: 'not-authorized'; text: string }
  /** The answer to unbind: nothing more will be delivered to this session. */
  | { type: 'unbound' }
  /** The user actor restarted and may have lost the client stanza it was handling: have the
   *  connection send again what is not handled yet (duplicates are dropped by seq). */
  | { type: 'replay' }
  | ({ type: 'deliver' } & Delivery);
