/** Something with a deadline that can be settled before it. */
export interface Expirable {
  deadline: number;
  readonly settled: boolean;
  expire(): void;
}

/**
 * Call timeouts without a timer per call. Calls made with the same timeout
 * expire in the order they were made, so each timeout value keeps a FIFO and
 * one timer for its head; settled calls are dropped lazily from the front.
 * This takes a setTimeout/clearTimeout pair off the call hot path.
 */
export class DeadlineQueues {
  #queues = new Map<number, DeadlineQueue>();

  add(timeoutMs: number, item: Expirable): void {
    let queue = this.#queues.get(timeoutMs);
    if (queue === undefined) {
      queue = new DeadlineQueue();
      this.#queues.set(timeoutMs, queue);
    }
    item.deadline = performance.now() + timeoutMs;
    queue.add(item);
  }

  clear(): void {
    for (const queue of this.#queues.values()) queue.clear();
    this.#queues.clear();
  }
}

class DeadlineQueue {
  #items: (Expirable | undefined)[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  add(item: Expirable): void {
    this.#dropSettled();
    this.#items.push(item);
    if (this.#timer === undefined) this.#arm();
  }

  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#items = [];
    this.#head = 0;
  }

  #dropSettled(): void {
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.settled) items[this.#head++] = undefined;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
  }

  #arm(): void {
    const first = this.#items[this.#head];
    if (first === undefined) return;
    this.#timer = setTimeout(this.#fire, Math.max(0, first.deadline - performance.now()));
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const items = this.#items;
    while (this.#head < items.length) {
      const item = items[this.#head]!;
      if (!item.settled && item.deadline > now) break;
      items[this.#head++] = undefined;
      if (!item.settled) item.expire();
    }
    this.#dropSettled();
    this.#arm();
  };
}
