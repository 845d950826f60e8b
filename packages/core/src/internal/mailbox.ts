/**
 * A FIFO queue with removal from the middle for selective receive. An array
 * with a moving head: shifting is O(1) and the array is compacted only when
 * the dead prefix outgrows the live part.
 */
export class Mailbox {
  /** Live messages are `#items[#head .. #tail)`; slots past `#tail` are spare capacity. */
  #items: unknown[] = [];
  #head = 0;
  #tail = 0;

  get size(): number {
    return this.#tail - this.#head;
  }

  push(message: unknown): void {
    // Writing into spare capacity (or appending) instead of truncating the
    // array when it empties: `length = 0` is a runtime call on every message
    // of a process that keeps its mailbox near empty.
    this.#items[this.#tail++] = message;
  }

  shift(): unknown {
    const items = this.#items;
    const message = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === this.#tail) {
      this.#head = 0;
      this.#tail = 0;
      // Do not keep a flood's worth of empty slots around.
      if (items.length > SPARE_LIMIT) this.#items = [];
    } else if (this.#head > 4096 && this.#head * 2 > this.#tail) {
      this.#items = items.slice(this.#head, this.#tail);
      this.#tail -= this.#head;
      this.#head = 0;
    }
    return message;
  }

  at(index: number): unknown {
    return this.#items[this.#head + index];
  }

  removeAt(index: number): unknown {
    if (index === 0) return this.shift();
    this.#tail--;
    return this.#items.splice(this.#head + index, 1)[0];
  }

  clear(): void {
    if (this.#tail === 0 && this.#items.length <= SPARE_LIMIT) return;
    this.#items = [];
    this.#head = 0;
    this.#tail = 0;
  }

  toArray(): unknown[] {
    return this.#items.slice(this.#head, this.#tail);
  }
}

/** Spare slots a mailbox keeps once it is empty. */
const SPARE_LIMIT = 1024;
