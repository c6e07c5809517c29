// What the user actor asks of the world, as data. A step (core.ts) gives the next context and these;
// the host (index.ts) carries them out in order, in the frame of the message they belong to (after
// its hooks' awaits, for a suspended one), so a step can be read and tested without a runtime.
import type { ToLink } from '../s2s/machine.ts';
import { courier, exit, log, monitor, retain, send, sendDurable, sendRetained, startTimer } from '../../src/runtime/api.ts';
import type { Address } from '../../src/runtime/address.ts';
import type { ToConn } from '../../src/net/c2s-protocol.ts';
import type { StanzaHeader } from '../../src/xml/framer.ts';
import { routeStanza } from '../route.ts';
import type { ToSessionFromUser, ToUser } from './messages.ts';

/** The client stanza numbered `seq` on connection `conn` (XEP-0198 counts it once handled). */
export interface ClientSeq { conn: string; seq: number }

export type UserEffect =
  /** A message to one of the account's sessions (bind answers, replace, kick, replay, unbound). */
  | { do: 'tell'; to: Address; msg: ToSessionFromUser }
  /** A stanza to a session. `durable`: the message being handled stays in LevelDB (retained) until
   *  that client has it; `sent` names the copies of one fan-out. */
  | { do: 'deliver'; to: Address; xml: string; durable: boolean; sent?: number }
  /** Into the durable mailbox of a local account or a service: theirs from then on. The client
   *  stanza it came from is handled once it is there. */
  | { do: 'durable'; to: Address; xml: string; h: StanzaHeader; then?: ClientSeq; /** to a server link (actors/s2s) */ link?: true }
  /** A stanza the server made, where routing says (actors/route.ts). */
  | { do: 'route'; xml: string; h: StanzaHeader }
  /** A client stanza is done with. */
  | { do: 'handled'; client: ClientSeq }
  /** Watch a session: its end comes back as `runtime.down` with this tag. */
  | { do: 'watch'; address: Address; tag: number }
  | { do: 'timer'; name: string; ms: number; msg: ToUser }
  /** The account's deletion is done: tell whoever asked. */
  | { do: 'deleted'; to: Address }
  | { do: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; text: string }
  /** The actor ends (its snapshot with it). */
  | { do: 'exit' };

export function perform(effects: readonly UserEffect[]): void {
  let post: ((to: Address, message: unknown) => void) | undefined;
  const handled = (c: ClientSeq) => (post ??= courier())(c.conn, { type: 'handled', seq: c.seq } satisfies ToConn);
  for (const e of effects) {
    switch (e.do) {
      case 'tell': send(e.to, e.msg); break;
      case 'deliver': {
        const receipt = e.durable ? retain() : undefined;
        const msg = { type: 'deliver', xml: e.xml, receipt, sent: e.sent } satisfies ToSessionFromUser;
        if (receipt) sendRetained(e.to, msg, receipt); else send(e.to, msg);
        break;
      }
      case 'durable': {
        const then = e.then;
        if (then) post ??= courier(); // the confirmation comes after this frame
        sendDurable(e.to, e.link ? { type: 'out', xml: e.xml, h: e.h } satisfies ToLink : { type: 'stanza', xml: e.xml, h: e.h } satisfies ToUser).then(() => then && handled(then), (err: Error) => {
          // Not confirmed: a client's stanza stays unhandled, so its client resends it after a resume.
          log('warn', `not routed to ${e.to}: ${err.message}`);
        });
        break;
      }
      case 'route': routeStanza(e.xml, e.h); break;
      case 'handled': handled(e.client); break;
      case 'watch': monitor(e.address, e.tag); break;
      case 'timer': startTimer(e.name, e.ms, e.msg); break;
      case 'deleted': send(e.to, { type: 'deleted' }); break;
      case 'log': log(e.level, e.text); break;
      case 'exit': exit('normal'); break;
    }
  }
}
