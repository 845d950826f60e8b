/** One value of a {@link KeyedByNode} table, with where it is filed. */
interface Entry<V> {
  readonly key: string;
  readonly node: string;
  readonly value: V;
  /** When it was set (ms): expiry reads it without touching the value. */
  readonly at: number;
}

/**
 * Values by name key, then node, that age out oldest first: what the table
 * remembers per (name, node) pair, such as the votes it cast and the
 * releases it fenced. Built for the registry's hot path:
 *
 * - no composite key string is built for a lookup;
 * - a name with one node's value (nearly all of them) holds it without a
 *   map of its own;
 * - expiry walks a queue in the order values were set, skipping those
 *   replaced or deleted since, so a value set again counts as young.
 */
export class KeyedByNode<V> {
  readonly #entries = new Map<string, Entry<V> | Map<string, Entry<V>>>();
  /** Entries in the order they were set (some replaced or deleted since); expiry pops from the front. */
  #order: Entry<V>[] = [];
  #head = 0;
  #size = 0;

  /** How many (name, node) pairs hold a value. */
  get size(): number {
    return this.#size;
  }

  get(key: string, node: string): V | undefined {
    return this.#entry(this.#entries.get(key), node)?.value;
  }

  /** Every node's value for `key`. */
  *valuesOf(key: string): IterableIterator<V> {
    const held = this.#entries.get(key);
    if (held === undefined) return;
    if (held instanceof Map) for (const entry of held.values()) yield entry.value;
    else yield held.value;
  }

  /** Files `value` under (`key`, `node`) at time `at` (ms, never less than before), replacing what was there; it is the youngest now. */
  set(key: string, node: string, value: V, at: number): void {
    const entry: Entry<V> = { key, node, value, at };
    const held = this.#entries.get(key);
    if (held === undefined) {
      this.#entries.set(key, entry);
      this.#size++;
    } else if (held instanceof Map) {
      if (!held.has(node)) this.#size++;
      held.set(node, entry);
    } else if (held.node === node) {
      this.#entries.set(key, entry);
    } else {
      this.#entries.set(key, new Map([[held.node, held], [node, entry]]));
      this.#size++;
    }
    this.#order.push(entry);
  }

  /** Drops every value of `node`. */
  forget(node: string): void {
    for (const held of [...this.#entries.values()]) {
      const entry = this.#entry(held, node);
      if (entry !== undefined) this.#delete(entry);
    }
    this.#compact();
  }

  /**
   * Drops the values set before `before` (ms), oldest first, and beyond
   * them, while more than `maxSize` are held, the oldest of the rest. The
   * oldest entry in the queue is judged by its time before it is looked up,
   * so in the common call, where nothing has expired, no map is touched.
   */
  expire(before: number, maxSize = Number.POSITIVE_INFINITY): void {
    const order = this.#order;
    while (this.#head < order.length) {
      const oldest = order[this.#head]!;
      if (oldest.at >= before && this.#size <= maxSize) break;
      if (this.#current(oldest)) this.#delete(oldest);
      this.#head++;
    }
    this.#compact();
  }

  #entry(held: Entry<V> | Map<string, Entry<V>> | undefined, node: string): Entry<V> | undefined {
    if (held === undefined) return undefined;
    if (held instanceof Map) return held.get(node);
    return held.node === node ? held : undefined;
  }

  /** Whether `entry` is still the one filed under its name and node. */
  #current(entry: Entry<V>): boolean {
    return this.#entry(this.#entries.get(entry.key), entry.node) === entry;
  }

  #delete(entry: Entry<V>): void {
    const held = this.#entries.get(entry.key);
    if (held instanceof Map) {
      held.delete(entry.node);
      if (held.size === 0) this.#entries.delete(entry.key);
    } else {
      this.#entries.delete(entry.key);
    }
    this.#size--;
  }

  /** Drops the consumed front of the queue, and past a bound the entries replaced or deleted since: now and then, not at every call. */
  #compact(): void {
    const order = this.#order;
    if (this.#head > 1024 && this.#head * 2 > order.length) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    } else if (order.length - this.#head > 2 * this.#size + 1024) {
      this.#order = order.slice(this.#head).filter((entry) => this.#current(entry));
      this.#head = 0;
    }
  }
}
