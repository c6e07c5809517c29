// The main thread's side of the load workers: long-lived worker_threads, one command at a time each,
// stats merged into run totals and a per-second timeline.
import { Worker } from 'node:worker_threads';
import { Histogram } from './histogram.ts';
import type { Ack, Command, StatsReport, WorkerInit, WorkerMessage } from './protocol.ts';

export class Counters {
  sent = 0;
  recv = 0;
  logins = 0;
  loginFails = 0;
  closedUnexpectedly = 0;
  lat = new Histogram();
  login = new Histogram();
  tls = new Histogram();
  errors: string[] = [];

  add(r: StatsReport): void {
    this.sent += r.sent;
    this.recv += r.recv;
    this.logins += r.logins;
    this.loginFails += r.loginFails;
    this.closedUnexpectedly += r.closedUnexpectedly;
    this.lat.merge(r.lat);
    this.login.merge(r.login);
    this.tls.merge(r.tls);
    for (const e of r.errors) if (this.errors.length < 20 && !this.errors.includes(e)) this.errors.push(e);
  }
}

export class Pool {
  private seq = 0;
  private failed: Error | null = null;
  private pending = new Map<number, { res: (d: Record<string, unknown>) => void; rej: (e: Error) => void }>();
  /** Everything since the last resetMeasure(). */
  measure = new Counters();
  /** Everything since the last takeInterval(). */
  interval = new Counters();
  /** Everything in the whole run (errors and login counts across phases). */
  whole = new Counters();

  private constructor(readonly workers: Worker[]) {
    for (const w of workers) {
      w.on('message', (m: WorkerMessage) => this.onMessage(m));
      w.on('error', (e) => {
        this.failed ??= e;
        for (const p of this.pending.values()) p.rej(e);
        this.pending.clear();
      });
    }
  }

  static start(n: number, init: Omit<WorkerInit, 'index'>): Pool {
    // Node 20 ignores `--import tsx` in a worker's execArgv for the worker's own entry, so a tiny
    // JS bootstrap registers tsx first and then imports the TypeScript worker.
    const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register();` +
      ` await import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)});`;
    const url = new URL('data:text/javascript,' + encodeURIComponent(boot));
    const workers = Array.from({ length: n }, (_, index) => new Worker(url, {
      workerData: { chorusBench: true, init: { ...init, index } },
    }));
    return new Pool(workers);
  }

  get size(): number { return this.workers.length; }

  private onMessage(m: WorkerMessage): void {
    if (m.type === 'stats') {
      this.measure.add(m);
      this.interval.add(m);
      this.whole.add(m);
      return;
    }
    const a = m as Ack;
    const p = this.pending.get(a.seq);
    if (!p) return;
    this.pending.delete(a.seq);
    if (a.ok) p.res(a.data ?? {});
    else p.rej(new Error(`worker: ${a.op}: ${a.error}`));
  }

  send(i: number, cmd: Command): Promise<Record<string, unknown>> {
    const seq = ++this.seq;
    if (this.failed) return Promise.reject(new Error('load worker died: ' + this.failed.message));
    return new Promise((res, rej) => {
      this.pending.set(seq, { res, rej });
      this.workers[i].postMessage({ seq, cmd });
    });
  }

  /** Sends each worker its command (null = none) and waits for all. */
  all(cmd: (i: number) => Command | null): Promise<Array<Record<string, unknown>>> {
    return Promise.all(this.workers.map((_, i) => {
      const c = cmd(i);
      return c ? this.send(i, c) : Promise.resolve({});
    }));
  }

  resetMeasure(): void { this.measure = new Counters(); }

  takeInterval(): Counters {
    const c = this.interval;
    this.interval = new Counters();
    return c;
  }

  /** Lets workers send their last stats, then ends them. */
  async exit(): Promise<void> {
    await Promise.all(this.workers.map((w) => new Promise<void>((res) => {
      const t = setTimeout(() => { void w.terminate(); res(); }, 3000);
      w.once('exit', () => { clearTimeout(t); res(); });
      w.postMessage('exit');
    })));
  }
}

/** Splits `n` as evenly as possible into `parts`. */
export function share(n: number, parts: number, i: number): number {
  return Math.floor(n / parts) + (i < n % parts ? 1 : 0);
}
