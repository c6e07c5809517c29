// The mailbox router of one thread. send() is location-transparent: an address on this thread is
// delivered by reference (no copy); any other thread gets the packet in a per-thread batch posted once
// per tick (arrays of flat records clone ~3x faster than single posts, measured-facts.md).
import type { MessagePort } from 'node:worker_threads';
import { placeAddress, type Address, type ThreadId } from './address.ts';
import { isControl, type Control, type Envelope, type Packet } from './protocol.ts';

export interface RouterSink {
  deliver(env: Envelope): void;
  control(c: Control, fromThread: ThreadId): void;
}

/** Releases remembered per thread: more than a thread reads in the moment before it dies. */
const RELEASES_KEPT = 1024;

export class Router {
  private peers = new Map<ThreadId, MessagePort>();
  private outbox = new Map<ThreadId, Packet[]>();
  private flushScheduled = false;
  /** Threads being replaced: their packets wait in the outbox until the new peer port arrives. */
  private down = new Set<ThreadId>();
  /** The last releases sent to each thread (a ring): one that dies may not have read them, or not
   *  written them to disk, and its replacement would load those messages again and hand them out
   *  twice. They go again to the replacement. */
  private releases = new Map<ThreadId, { ring: Control[]; next: number }>();
  readonly counters = { local: 0, remote: 0, batches: 0 };

  constructor(readonly thread: ThreadId, readonly schedulers: number, private readonly sink: RouterSink) {}

  place(address: Address): ThreadId { return placeAddress(address, this.schedulers); }

  send(env: Envelope): void {
    const t = placeAddress(env.t, this.schedulers);
    if (t === this.thread) { this.counters.local++; this.sink.deliver(env); return; }
    this.counters.remote++;
    this.enqueue(t, env);
  }

  sendControl(thread: ThreadId, c: Control): void {
    if (thread === this.thread) { this.sink.control(c, this.thread); return; }
    if (c.c === 'release') {
      let r = this.releases.get(thread);
      if (!r) this.releases.set(thread, (r = { ring: [], next: 0 }));
      r.ring[r.next] = c;
      r.next = (r.next + 1) % RELEASES_KEPT;
    }
    this.enqueue(thread, c);
  }

  /** Sends a control to the thread that owns `address`. */
  controlFor(address: Address, c: Control): void { this.sendControl(this.place(address), c); }

  addPeer(thread: ThreadId, port: MessagePort): void {
    this.peers.get(thread)?.close();
    this.peers.set(thread, port);
    this.down.delete(thread);
    port.on('message', (batch: Packet[]) => {
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!;
        if (isControl(p)) this.sink.control(p, thread);
        else this.sink.deliver(p);
      }
    });
    if (this.outbox.get(thread)?.length) this.scheduleFlush();
  }

  /** Durable envelopes waiting for a dead thread are dropped here: their senders resend them all. */
  markDown(thread: ThreadId): void {
    this.down.add(thread);
    const q = this.outbox.get(thread);
    if (q) this.outbox.set(thread, q.filter((p) => isControl(p) || (p as Envelope).d === undefined));
    this.peers.get(thread)?.close();
    this.peers.delete(thread);
    const released = this.releases.get(thread);
    this.releases.delete(thread);
    for (const c of released?.ring ?? []) this.enqueue(thread, c);
  }

  /** Packets still waiting for a thread (being replaced); the node resends durable ones. */
  pendingFor(thread: ThreadId): number { return this.outbox.get(thread)?.length ?? 0; }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }

  private enqueue(thread: ThreadId, p: Packet): void {
    let q = this.outbox.get(thread);
    if (!q) this.outbox.set(thread, (q = []));
    q.push(p);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private flush = (): void => {
    this.flushScheduled = false;
    for (const [thread, q] of this.outbox) {
      if (q.length === 0 || this.down.has(thread)) continue;
      const port = this.peers.get(thread);
      if (!port) continue;
      this.outbox.set(thread, []);
      this.counters.batches++;
      port.postMessage(q, transferables(q));
    }
  };
}

function transferables(q: Packet[]): MessagePort[] {
  let list: MessagePort[] | undefined;
  for (const p of q) if (isControl(p) && p.c === 'peer') (list ??= []).push(p.port);
  return list ?? [];
}
