// The sending half of durable messages on one thread: each send waits for the owner thread's
// confirmation that the message is in LevelDB. If the owner thread dies first, every unconfirmed
// message is sent again to its replacement — at-least-once; receivers drop duplicates by message id.
import type { Address, ThreadId } from './address.ts';
import type { Envelope } from './protocol.ts';

interface Pending { env: Envelope; resolve: () => void; reject: (e: Error) => void }

export class DurableSender {
  private token = 0;
  private pending = new Map<number, Pending>();

  constructor(private readonly thread: ThreadId, private readonly route: (env: Envelope) => void) {}

  send(to: Address, from: Address | undefined, message: unknown): Promise<void> {
    const env: Envelope = { t: to, f: from, m: message, d: ++this.token, s: this.thread };
    return new Promise((resolve, reject) => {
      this.pending.set(env.d!, { env, resolve, reject });
      this.route(env);
    });
  }

  confirmed(token: number, error?: string): void {
    const p = this.pending.get(token);
    if (!p) return;
    this.pending.delete(token);
    if (error) p.reject(new Error(`durable send to ${p.env.t} failed: ${error}`));
    else p.resolve();
  }

  /** After `thread` died: send again, in the original order, everything it had not confirmed. */
  resendTo(thread: ThreadId, place: (a: Address) => ThreadId): number {
    let n = 0;
    for (const p of this.pending.values()) if (place(p.env.t) === thread) { this.route(p.env); n++; }
    return n;
  }

  get inFlight(): number { return this.pending.size; }
}
