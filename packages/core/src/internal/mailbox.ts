/**
 * A FIFO queue with removal from the middle for selective receive. An array
 * with a moving head: shifting is O(1) and the array is compacted only when
 * the dead prefix outgrows the live part.
 */
export class Mailbox {
  #items: unknown[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(message: unknown): void {
    this.#items.push(message);
  }

  shift(): unknown {
    const items = this.#items;
    const message = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return message;
  }

  at(index: number): unknown {
    return this.#items[this.#head + index];
  }

  removeAt(index: number): unknown {
    if (index === 0) return this.shift();
    return this.#items.splice(this.#head + index, 1)[0];
  }

  clear(): void {
    if (this.#items.length === 0) return;
    this.#items = [];
    this.#head = 0;
  }

  toArray(): unknown[] {
    return this.#items.slice(this.#head);
  }
}
