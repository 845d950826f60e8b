/**
 * A binary min-heap of in-flight frames ordered by `(due, seq)`: virtual
 * delivery time first, then the global send sequence number. The sequence is
 * unique, so the order is total and never depends on insertion luck.
 */
export interface QueuedFrame {
  /** Global, strictly increasing per broker: the tie-break. */
  readonly seq: number;
  /** Virtual delivery time (ms on the broker's virtual clock). */
  readonly due: number;
  /** Wall-clock time (performance.now()) before which it should not arrive; pacing only. */
  readonly notBefore: number;
  /** Destination address. */
  readonly to: string;
  /** Sender address and node; swapped along with `frame` when a reorder fault hits. */
  from: string;
  fromNode: string;
  frame: string;
  /** Set once delivered or discarded, so stale references (reorder bookkeeping) can tell. */
  done: boolean;
}

function before(x: QueuedFrame, y: QueuedFrame): boolean {
  return x.due < y.due || (x.due === y.due && x.seq < y.seq);
}

export class FrameHeap {
  #items: QueuedFrame[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): QueuedFrame | undefined {
    return this.#items[0];
  }

  push(item: QueuedFrame): void {
    const items = this.#items;
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(item, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  pop(): QueuedFrame | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    this.#siftDown(last, 0);
    return top;
  }

  /** Removes every item matching `predicate` (marking it done); returns how many. */
  removeWhere(predicate: (item: QueuedFrame) => boolean): number {
    const kept: QueuedFrame[] = [];
    let removed = 0;
    for (const item of this.#items) {
      if (predicate(item)) {
        item.done = true;
        removed++;
      } else {
        kept.push(item);
      }
    }
    if (removed === 0) return 0;
    this.#items = kept;
    for (let i = (kept.length >> 1) - 1; i >= 0; i--) this.#siftDown(kept[i]!, i);
    return removed;
  }

  #siftDown(item: QueuedFrame, start: number): void {
    const items = this.#items;
    const n = items.length;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(items[r]!, items[l]!)) c = r;
      const child = items[c]!;
      if (!before(child, item)) break;
      items[i] = child;
      i = c;
    }
    items[i] = item;
  }
}
