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
type Waiting = { env: Envelope; pending?: Pending };

export class DurableSender {
  private token = 0;
  private pending = new Map<number, Pending>();
  /** Per address: durable messages routed and not confirmed yet. */
  private unconfirmed = new Map<Address, number>();
  /** Per address: what waits behind an unconfirmed durable message, in order. */
  private waiting = new Map<Address, Waiting[]>();

  constructor(private readonly thread: ThreadId, private readonly route: (env: Envelope) => void) {}

  send(to: Address, from: Address | undefined, message: unknown): Promise<void> {
    const env: Envelope = { t: to, f: from, m: message, d: ++this.token, s: this.thread };
    return new Promise((resolve, reject) => {
      const p = { env, resolve, reject };
      this.pending.set(env.d!, p);
      const queue = this.waiting.get(to);
      if (queue) { queue.push({ env, pending: p }); return; }
      this.unconfirmed.set(to, (this.unconfirmed.get(to) ?? 0) + 1);
      this.route(env);
    });
  }

  /** A plain message: routed now, unless a durable one to the same address is still unconfirmed. */
  plain(env: Envelope): void {
    if (!this.unconfirmed.has(env.t)) { this.route(env); return; }
    let queue = this.waiting.get(env.t);
    if (!queue) this.waiting.set(env.t, (queue = []));
    queue.push({ env });
  }

  confirmed(token: number, error?: string): void {
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    if (error) p.reject(new Error(`durable send to ${p.env.t} failed: ${error}`));
    else p.resolve();
    const to = p.env.t;
    const n = (this.unconfirmed.get(to) ?? 1) - 1;
    if (n > 0) { this.unconfirmed.set(to, n); return; }
    this.unconfirmed.delete(to);
    const queue = this.waiting.get(to);
    if (!queue) return;
    // What waited goes now, up to the next durable message (which then holds the rest).
    while (queue.length > 0 && !this.unconfirmed.has(to)) {
      const w = queue.shift()!;
      if (w.pending) this.unconfirmed.set(to, 1);
      this.route(w.env);
    }
    if (queue.length === 0) this.waiting.delete(to);
  }

  /** After `thread` died: send again, in the original order, everything it had not confirmed. */
  resendTo(thread: ThreadId, place: (a: Address) => ThreadId): number {
    let n = 0;
    for (const p of this.pending.values()) {
      if (place(p.env.t) !== thread || this.waiting.get(p.env.t)?.some((w) => w.pending === p)) continue;
      this.route(p.env);
      n++;
    }
    return n;
  }

  get inFlight(): number { return this.pending.size; }
}
