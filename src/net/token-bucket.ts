// A token bucket: `rate` tokens a second, refilled continuously up to `burst`. What a connection's
// read limits are made of (bytes per second, stanzas per second): over the rate, reading waits.
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly rate: number, private readonly burst: number, now = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes `n` tokens; when that leaves the bucket short, the ms until it is back to empty, else 0. */
  take(n: number, now = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    return this.tokens < 0 ? Math.ceil((-this.tokens / this.rate) * 1000) : 0;
  }
}
