/** Slots in a mailbox's first chunk; later chunks double, up to MAX_CHUNK. */
const FIRST_CHUNK = 8;
const MAX_CHUNK = 1024;
/** An emptied mailbox keeps its last chunk up to this size (bigger ones were for a burst). */
const KEEP_CHUNK = 64;

class Chunk {
  readonly items: unknown[];
  next: Chunk | undefined = undefined;

  constructor(capacity: number) {
    this.items = new Array<unknown>(capacity);
  }
}

/**
 * A FIFO queue with removal from the middle for selective receive: a list of
 * fixed-size chunks. Every chunk but the last is full (the first from `#hi`
 * on), and the last holds `[0, #ti)`, empty only when it is also the first.
 * So pushing and shifting never copy, and a flood
 * never makes one huge array that has to grow (a copy each time) and be
 * compacted; a drained chunk is simply dropped. The first chunk is allocated
 * with the first message, so a process that never gets one pays nothing.
 *
 * `at` walks from a cursor kept from the previous lookup, so a scan in index
 * order (selective receive) is linear; anything that moves messages resets it.
 */
export class Mailbox {
  #head: Chunk | undefined;
  #tail: Chunk | undefined;
  /** The next message to shift, in `#head`. */
  #hi = 0;
  /** The next free slot, in `#tail`. */
  #ti = 0;
  #size = 0;
  /** The chunk the last `at` landed in, and the index its slot 0 stands for. */
  #cursor: Chunk | undefined;
  #cursorBase = 0;

  get size(): number {
    return this.#size;
  }

  push(message: unknown): void {
    let tail = this.#tail;
    if (tail === undefined) {
      tail = new Chunk(FIRST_CHUNK);
      this.#head = tail;
      this.#tail = tail;
    } else if (this.#ti === tail.items.length) {
      const next = new Chunk(Math.min(tail.items.length * 2, MAX_CHUNK));
      tail.next = next;
      this.#tail = tail = next;
      this.#ti = 0;
    }
    tail.items[this.#ti++] = message;
    this.#size++;
  }

  shift(): unknown {
    if (this.#size === 0) return undefined;
    this.#cursor = undefined;
    let head = this.#head!;
    if (this.#hi === head.items.length) {
      head = this.#head = head.next!;
      this.#hi = 0;
    }
    const message = head.items[this.#hi];
    head.items[this.#hi++] = undefined;
    if (--this.#size === 0) this.#emptied();
    return message;
  }

  /** Every slot is clear: start again at the front of the last chunk, or drop it if a burst made it big. */
  #emptied(): void {
    const tail = this.#tail!;
    if (tail.items.length > KEEP_CHUNK) {
      this.#head = undefined;
      this.#tail = undefined;
    } else {
      this.#head = tail;
    }
    this.#hi = 0;
    this.#ti = 0;
  }

  /** The slot of message `index` (which must be in range) in the chunk it leaves in the cursor. */
  #locate(index: number): number {
    let chunk = this.#cursor;
    let base = this.#cursorBase;
    if (chunk === undefined || index < base) {
      chunk = this.#head!;
      base = -this.#hi;
    }
    while (index - base >= chunk.items.length) {
      base += chunk.items.length;
      chunk = chunk.next!;
    }
    this.#cursor = chunk;
    this.#cursorBase = base;
    return index - base;
  }

  at(index: number): unknown {
    if (!(index >= 0 && index < this.#size)) return undefined;
    const slot = this.#locate(index);
    return this.#cursor!.items[slot];
  }

  removeAt(index: number): unknown {
    if (index === 0) return this.shift();
    if (!(index > 0 && index < this.#size)) return undefined;
    let slot = this.#locate(index);
    let chunk = this.#cursor!;
    this.#cursor = undefined;
    const removed = chunk.items[slot];
    // Close the gap: every later message moves one slot towards the head,
    // the first of each following chunk into the last slot of the one before.
    for (;;) {
      const items = chunk.items;
      if (chunk === this.#tail) {
        const end = this.#ti;
        for (let at = slot; at < end - 1; at++) items[at] = items[at + 1];
        items[end - 1] = undefined;
        this.#ti = end - 1;
        break;
      }
      const end = items.length;
      for (let at = slot; at < end - 1; at++) items[at] = items[at + 1];
      const next = chunk.next!;
      items[end - 1] = next.items[0];
      chunk = next;
      slot = 0;
    }
    if (this.#ti === 0 && this.#tail !== this.#head) {
      // The last chunk emptied: the one before it (full) becomes the last.
      let before = this.#head!;
      while (before.next !== this.#tail) before = before.next!;
      before.next = undefined;
      this.#tail = before;
      this.#ti = before.items.length;
    }
    this.#size--;
    return removed;
  }

  clear(): void {
    this.#head = undefined;
    this.#tail = undefined;
    this.#cursor = undefined;
    this.#hi = 0;
    this.#ti = 0;
    this.#size = 0;
  }

  toArray(): unknown[] {
    const out: unknown[] = [];
    for (let index = 0; index < this.#size; index++) out.push(this.at(index));
    return out;
  }
}
