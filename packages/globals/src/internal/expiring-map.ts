/** The longest delay Node's timers take as given. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * A map whose entries expire a fixed time after they were set, under one
 * timer for all of them: what the table waits on with the same timeout for
 * each (the acknowledgements of its commits and releases), where a timer per
 * entry would cost a timer object, its arming and its clearing per
 * registration. Entries set later expire later, so expiry walks the map from
 * its oldest entry and stops at the first one still in time.
 */
export class ExpiringMap<K, V> {
  readonly #entries = new Map<K, { readonly value: V; readonly deadline: number }>();
  #timer: NodeJS.Timeout | undefined;
  /** Inside `#expire`: what an expiry sets is timed by it when it ends, not on its own. */
  #expiring = false;

  /** `expired` runs for each entry left `ttlMs` after it was set, once it is removed. */
  constructor(
    readonly ttlMs: number,
    readonly expired: (key: K, value: V) => void,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Sets `key` (a key set again moves to the young end and gets a new deadline). */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, deadline: performance.now() + this.ttlMs });
    if (!this.#expiring) this.#arm(this.ttlMs);
  }

  delete(key: K): boolean {
    if (!this.#entries.delete(key)) return false;
    if (this.#entries.size === 0) this.#disarm();
    return true;
  }

  *values(): IterableIterator<V> {
    for (const entry of this.#entries.values()) yield entry.value;
  }

  /** Removes every entry without expiring it. */
  clear(): void {
    this.#entries.clear();
    this.#disarm();
  }

  /** One timer at a time; Node fires a delay beyond 2^31 - 1 ms at once, so a long one is re-armed in steps. */
  #arm(ms: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(this.#expire, Math.min(Math.max(0, ms), MAX_DELAY_MS));
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #expire = (): void => {
    this.#timer = undefined;
    this.#expiring = true;
    try {
      const now = performance.now();
      for (const [key, entry] of this.#entries) {
        if (entry.deadline > now) break;
        this.#entries.delete(key);
        this.expired(key, entry.value);
      }
    } finally {
      this.#expiring = false;
      // The next timer is for the oldest entry left, set during the expiries or before.
      const oldest = this.#entries.values().next();
      if (oldest.done !== true) this.#arm(oldest.value.deadline - performance.now());
    }
  };
}
