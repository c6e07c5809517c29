// The sending half of durable messages on one thread: each send waits for the owner thread's
// confirmation that the message is in LevelDB. If the owner thread dies first, every unconfirmed
// message is sent again to its replacement — at-least-once; receivers drop duplicates by message id.
//
// Messages to one address keep their order, durable or not, as Erlang keeps it between two
// processes: a plain message sent after a durable one to the same address waits until that one is
// confirmed (it is in the receiver's queue by then), and whatever follows a waiting message waits too.
import type { Address, ThreadId } from './address.ts';
import type { Envelope } from './protocol.ts';

interface Pending { env: Envelope; resolve: () => void; reject: (e: Error) => void }
/** Per address: durable messages routed and not yet confirmed, and what waits behind them. */
interface Lane { unconfirmed: number; waiting: Array<{ env: Envelope; pending?: Pending }> }

export class DurableSender {
  private token = 0;
  private pending = new Map<number, Pending>();
  private lanes = new Map<Address, Lane>();

  constructor(private readonly thread: ThreadId, private readonly route: (env: Envelope) => void) {}

  send(to: Address, from: Address | undefined, message: unknown): Promise<void> {
    const env: Envelope = { t: to, f: from, m: message, d: ++this.token, s: this.thread };
    return new Promise((resolve, reject) => {
      const p = { env, resolve, reject };
      this.pending.set(env.d!, p);
      let lane = this.lanes.get(to);
      if (!lane) this.lanes.set(to, (lane = { unconfirmed: 0, waiting: [] }));
      if (lane.waiting.length > 0) lane.waiting.push({ env, pending: p });
      else { lane.unconfirmed++; this.route(env); }
    });
  }

  /** A plain message: routed now, unless a durable one to the same address is still unconfirmed. */
  plain(env: Envelope): void {
    const lane = this.lanes.get(env.t);
    if (lane) lane.waiting.push({ env });
    else this.route(env);
  }

  confirmed(token: number, error?: string): void {
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    if (error) p.reject(new Error(`durable send to ${p.env.t} failed: ${error}`));
    else p.resolve();
    const lane = this.lanes.get(p.env.t);
    if (!lane || --lane.unconfirmed > 0) return;
    // Everything that waited goes now, up to the next durable message (which then holds the rest).
    while (lane.waiting.length > 0 && lane.unconfirmed === 0) {
      const w = lane.waiting.shift()!;
      if (w.pending) lane.unconfirmed++;
      this.route(w.env);
    }
    if (lane.unconfirmed === 0) this.lanes.delete(p.env.t);
  }

  /** After `thread` died: send again, in the original order, everything it had not confirmed. */
  resendTo(thread: ThreadId, place: (a: Address) => ThreadId): number {
    let n = 0;
    for (const p of this.pending.values()) {
      if (place(p.env.t) !== thread || this.lanes.get(p.env.t)?.waiting.some((w) => w.pending === p)) continue;
      this.route(p.env);
      n++;
    }
    return n;
  }

  get inFlight(): number { return this.pending.size; }
}
