interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * Tracks publisher confirms by our own sequence numbers (assigned when a
 * message is sealed, before it is published, so a flush also covers messages
 * still queued behind back-pressure).
 *
 * `wait()` resolves once every message assigned so far is settled: confirmed
 * (`ack`), or rejected (`nack`, which rejects the waiters covering it).
 * `failAll` (connection lost, transport closed) rejects every waiter and
 * abandons what is outstanding.
 */
export class ConfirmTracker {
  /** Lowest sequence number not yet settled. */
  #low = 1;
  /** Next sequence number to assign. */
  #next = 1;
  /** Settled flags: `#settled[#head + i]` is for `#low + i` (out-of-order settlements wait here). */
  #settled: boolean[] = [];
  #head = 0;
  #waiters: Waiter[] = [];

  /** Messages assigned but not yet settled. */
  get outstanding(): number {
    return this.#next - this.#low;
  }

  assign(): number {
    const seq = this.#next;
    this.#next += 1;
    this.#settled.push(false);
    return seq;
  }

  /** The broker confirmed `seq`. */
  ack(seq: number): void {
    this.#settle(seq);
  }

  /** `seq` was refused (nack) or dropped before publishing: waiters that cover it reject with `error`. */
  nack(seq: number, error: Error): void {
    if (seq < this.#low) return;
    const keep: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.target >= seq) waiter.reject(error);
      else keep.push(waiter);
    }
    this.#waiters = keep;
    this.#settle(seq);
  }

  /** Resolves once every message assigned so far is settled. */
  wait(): Promise<void> {
    const target = this.#next - 1;
    if (target < this.#low) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject });
    });
  }

  /** Rejects every waiter with `error` and abandons every outstanding message. */
  failAll(error: Error): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    this.#low = this.#next;
    this.#settled = [];
    this.#head = 0;
    for (const waiter of waiters) waiter.reject(error);
  }

  #settle(seq: number): void {
    const index = this.#head + seq - this.#low;
    if (index < this.#head || index >= this.#settled.length) return;
    this.#settled[index] = true;
    const start = this.#head;
    while (this.#head < this.#settled.length && this.#settled[this.#head] === true) this.#head += 1;
    if (this.#head === start) return;
    this.#low += this.#head - start;
    if (this.#head === this.#settled.length) {
      this.#settled = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#settled.length) {
      this.#settled = this.#settled.slice(this.#head);
      this.#head = 0;
    }
    if (this.#waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.target < this.#low) waiter.resolve();
      else keep.push(waiter);
    }
    this.#waiters = keep;
  }
}
