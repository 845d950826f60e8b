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
  #ready: Runnable[] = [];
  #head = 0;
  #scheduled = false;
  #handledThisTurn = 0;
  #turnResetArmed = false;

  constructor(
    readonly budget = 100,
    readonly batch = 4096,
  ) {}

  enqueue(process: Runnable): void {
    process.queued = true;
    this.#ready.push(process);
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
    while (this.#head < ready.length) {
      const process = ready[this.#head]!;
      ready[this.#head++] = undefined as unknown as Runnable;
      process.queued = false;
      this.#handledThisTurn += process.run(this.budget);
      if (this.#handledThisTurn >= this.batch && this.#head < ready.length) {
        this.#compact();
        setImmediate(this.#drainNextTurn);
        return;
      }
    }
    ready.length = 0;
    this.#head = 0;
    this.#scheduled = false;
  };

  #compact(): void {
    this.#ready = this.#ready.slice(this.#head);
    this.#head = 0;
  }
}
