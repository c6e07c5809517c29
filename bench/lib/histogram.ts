// Log-linear latency histogram in microseconds: 32 sub-buckets per power of two (~3% error), fixed
// size, mergeable across workers by adding counts, shipped as sparse [index, count] pairs.
const SUB = 32;
const SUB_BITS = 5;
const MAX_EXP = 40; // 2^40 µs ≈ 12 days
export const BUCKETS = (MAX_EXP + 1) * SUB;

export class Histogram {
  counts = new Float64Array(BUCKETS);
  n = 0;
  max = 0;
  sum = 0;

  record(us: number): void {
    if (!(us >= 0)) us = 0;
    this.counts[indexOf(us)]++;
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  merge(o: Histogram | SparseHistogram): void {
    if (o instanceof Histogram) {
      for (let i = 0; i < BUCKETS; i++) this.counts[i] += o.counts[i];
    } else {
      for (let i = 0; i < o.b.length; i += 2) this.counts[o.b[i]] += o.b[i + 1];
    }
    this.n += o.n;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  /** Value (µs) at quantile q in [0, 1]; the upper edge of its bucket, capped by the true max. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(upperEdge(i), this.max);
    }
    return this.max;
  }

  mean(): number { return this.n ? this.sum / this.n : 0; }

  toSparse(): SparseHistogram {
    const b: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) b.push(i, this.counts[i]);
    return { b, n: this.n, max: this.max, sum: this.sum };
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.max = 0;
    this.sum = 0;
  }

  static from(s: SparseHistogram): Histogram {
    const h = new Histogram();
    h.merge(s);
    return h;
  }
}

export interface SparseHistogram { b: number[]; n: number; max: number; sum: number }

export interface Percentiles { n: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number }

/** Percentiles in milliseconds, for reports. */
export function percentilesMs(h: Histogram): Percentiles {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    n: h.n, mean: ms(h.mean()), p50: ms(h.quantile(0.5)), p90: ms(h.quantile(0.9)),
    p99: ms(h.quantile(0.99)), p999: ms(h.quantile(0.999)), max: ms(h.max),
  };
}

function indexOf(us: number): number {
  const v = Math.floor(us);
  if (v < SUB) return v;
  const exp = v < 0x80000000 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
  if (exp > MAX_EXP) return BUCKETS - 1;
  const sub = Math.floor(v / 2 ** (exp - SUB_BITS)) - SUB; // 0..31
  return (exp - SUB_BITS + 1) * SUB + sub;
}

function upperEdge(i: number): number {
  if (i < SUB) return i + 1;
  const exp = Math.floor(i / SUB) + SUB_BITS - 1;
  const sub = i % SUB;
  return (SUB + sub + 1) * 2 ** (exp - SUB_BITS);
}
