const SETTLED: Promise<void> = Promise.resolve();

/** Something the scheduler can run: a process with messages to handle. */
export interface Runnable {
  queued: boolean;
  /** Handles up to `budget` messages; returns how many it handled. */
  run(budget: number): number;
}

/**
 * Runs ready processes in batches. A process handles at most `budget`
 * messages before the next ready one gets its turn (Erlang's reductions), and
 * once `batch` messages have been handled in one event-loop turn the
 * scheduler continues on `setImmediate`, so timers and I/O keep running under
 * a message flood. Below that, draining stays on the microtask queue, which is
 * what keeps a local call round trip near a microsecond.
 */
export class Scheduler {
  /** Ready processes are `#ready[#head .. #tail)`; slots past `#tail` are spare capacity. */
  #ready: (Runnable | undefined)[] = [];
  #head = 0;
  #tail = 0;
  #scheduled = false;
  #handledThisTurn = 0;
  #turnResetArmed = false;

  constructor(
    readonly budget = 100,
    readonly batch = 4096,
  ) {}

  enqueue(process: Runnable): void {
    process.queued = true;
    this.#ready[this.#tail++] = process;
    if (!this.#scheduled) {
      this.#scheduled = true;
      // A reaction on a settled promise rather than queueMicrotask: the same
      // place in the microtask queue, without the AsyncResource and bound
      // function Node's queueMicrotask allocates on every call.
      if (this.#handledThisTurn < this.batch) void SETTLED.then(this.#drain);
      else setImmediate(this.#drainNextTurn);
    }
  }

  #drainNextTurn = (): void => {
    this.#handledThisTurn = 0;
    this.#drain();
  };

  #resetTurn = (): void => {
    this.#turnResetArmed = false;
    this.#handledThisTurn = 0;
  };

  #drain = (): void => {
    if (!this.#turnResetArmed) {
      // Counting starts with this turn; the next macrotask resets it.
      this.#turnResetArmed = true;
      setImmediate(this.#resetTurn);
    }
    const ready = this.#ready;
    while (this.#head < this.#tail) {
      const process = ready[this.#head]!;
      ready[this.#head++] = undefined;
      process.queued = false;
      this.#handledThisTurn += process.run(this.budget);
      if (this.#handledThisTurn >= this.batch && this.#head < this.#tail) {
        this.#compact();
        setImmediate(this.#drainNextTurn);
        return;
      }
    }
    // Emptied: start again from slot 0 without truncating (`length = 0` is a
    // runtime call per drain), unless a burst left many spare slots.
    this.#head = 0;
    this.#tail = 0;
    if (ready.length > 1024) this.#ready = [];
    this.#scheduled = false;
  };

  /** Drops the handled prefix once it outgrows the rest (a copy amortised over the handled items). */
  #compact(): void {
    if (this.#head <= 4096 || this.#head * 2 <= this.#tail) return;
    this.#ready = this.#ready.slice(this.#head, this.#tail);
    this.#tail -= this.#head;
    this.#head = 0;
  }
}
