const EMPTY: unknown[] = [];

/** FIFO with O(1) push/shift (Array#shift is O(n) on long mailboxes); an empty one allocates nothing. */
export class Deque<T> {
  private buf: (T | undefined)[] = EMPTY as (T | undefined)[];
  private head = 0;
  private tail = 0;
  length = 0;

  push(v: T): void {
    if (this.length === this.buf.length) this.grow();
    this.buf[this.tail] = v;
    this.tail = (this.tail + 1) & (this.buf.length - 1);
    this.length++;
  }

  unshift(v: T): void {
    if (this.length === this.buf.length) this.grow();
    this.head = (this.head - 1) & (this.buf.length - 1);
    this.buf[this.head] = v;
    this.length++;
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & (this.buf.length - 1);
    this.length--;
    if (this.length === 0 && this.buf.length > 16) this.clear(); // a burst's buffer is not kept while idle
    return v;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.length; i++) yield this.buf[(this.head + i) & (this.buf.length - 1)] as T;
  }

  clear(): void { this.buf = EMPTY as (T | undefined)[]; this.head = this.tail = this.length = 0; }

  private grow(): void {
    const next: (T | undefined)[] = new Array(Math.max(4, this.buf.length * 2));
    for (let i = 0; i < this.length; i++) next[i] = this.buf[(this.head + i) & (this.buf.length - 1)];
    this.buf = next;
    this.head = 0;
    this.tail = this.length;
  }
}
