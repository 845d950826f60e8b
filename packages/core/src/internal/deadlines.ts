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
 *
 * Nor is the clock read per call: items added during one event-loop turn get
 * their deadline when the turn is over (one setImmediate and one
 * `performance.now()` per turn), `timeoutMs` after that. A call made in a turn
 * therefore never times out early, and at most the rest of its turn late.
 */
export class DeadlineQueues {
  #queues = new Map<number, DeadlineQueue>();
  /** The queue used last: nearly every call uses the same (default) timeout. */
  #last: DeadlineQueue | undefined;
  /** Queues holding items added since the last stamp. */
  #unstamped: DeadlineQueue[] = [];
  #stampSoon: NodeJS.Immediate | undefined;

  add(timeoutMs: number, item: Expirable): void {
    let queue = this.#last;
    if (queue === undefined || queue.timeoutMs !== timeoutMs) {
      queue = this.#queues.get(timeoutMs);
      if (queue === undefined) {
        queue = new DeadlineQueue(timeoutMs);
        this.#queues.set(timeoutMs, queue);
      }
      this.#last = queue;
    }
    if (queue.add(item)) this.#unstamped.push(queue);
    this.#stampSoon ??= setImmediate(this.#stamp);
  }

  #stamp = (): void => {
    this.#stampSoon = undefined;
    const now = performance.now();
    const queues = this.#unstamped;
    this.#unstamped = [];
    for (const queue of queues) queue.stamp(now);
  };

  clear(): void {
    if (this.#stampSoon !== undefined) clearImmediate(this.#stampSoon);
    this.#stampSoon = undefined;
    this.#unstamped = [];
    this.#last = undefined;
    for (const queue of this.#queues.values()) queue.clear();
    this.#queues.clear();
  }
}

/** setTimeout's longest delay; a longer one would fire at once. */
const MAX_DELAY = 2 ** 31 - 1;
/** Spare slots a queue keeps once it is empty. */
const SPARE_LIMIT = 1024;

class DeadlineQueue {
  /** Live items are `#items[#head .. #tail)`; slots past `#tail` are spare capacity. */
  #items: (Expirable | undefined)[] = [];
  #head = 0;
  #tail = 0;
  /** Items before this index have their deadline; the rest wait for the next stamp. */
  #stamped = 0;
  /** Listed in `DeadlineQueues`' unstamped queues. */
  #awaitingStamp = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  /** Queues `item` (its deadline comes with the next stamp); true when the queue needs that stamp. */
  add(item: Expirable): boolean {
    this.#dropSettled();
    this.#items[this.#tail++] = item;
    if (this.#awaitingStamp) return false;
    this.#awaitingStamp = true;
    return true;
  }

  /** The turn that added the waiting items is over: they expire `timeoutMs` after `now`. */
  stamp(now: number): void {
    this.#awaitingStamp = false;
    const deadline = now + this.timeoutMs;
    const items = this.#items;
    for (let index = this.#stamped; index < this.#tail; index++) items[index]!.deadline = deadline;
    this.#stamped = this.#tail;
    if (this.#timer === undefined) this.#arm();
  }

  clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#items = [];
    this.#head = 0;
    this.#tail = 0;
    this.#stamped = 0;
    this.#awaitingStamp = false;
  }

  #dropSettled(): void {
    const items = this.#items;
    while (this.#head < this.#tail && items[this.#head]!.settled) items[this.#head++] = undefined;
    if (this.#head === this.#tail) {
      this.#head = 0;
      this.#tail = 0;
      this.#stamped = 0;
      if (items.length > SPARE_LIMIT) this.#items = [];
      return;
    }
    if (this.#stamped < this.#head) this.#stamped = this.#head;
    if (this.#head > 1024 && this.#head * 2 > this.#tail) {
      this.#items = items.slice(this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#stamped -= this.#head;
      this.#head = 0;
    }
  }

  #arm(): void {
    // An unstamped head gets its timer from the stamp.
    if (this.#head >= this.#stamped) return;
    const first = this.#items[this.#head]!;
    this.#timer = setTimeout(this.#fire, Math.min(MAX_DELAY, Math.max(0, first.deadline - performance.now())));
  }

  #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const items = this.#items;
    while (this.#head < this.#stamped) {
      const item = items[this.#head]!;
      if (!item.settled && item.deadline > now) break;
      items[this.#head++] = undefined;
      if (!item.settled) item.expire();
    }
    this.#dropSettled();
    this.#arm();
  };
}
