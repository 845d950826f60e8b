/**
 * A process identifier: an immutable value naming one process of one node
 * incarnation. Pids of the same process compare equal (`equals`, or `key` in
 * a Map) wherever they were decoded, and a restarted node gets a new
 * `creation`, so a pid never aliases a process of an earlier life.
 */
export class Pid {
  #key: string | undefined;

  constructor(
    /** The name of the node the process lives on. */
    readonly node: string,
    /** The node's incarnation id, fresh at every start. */
    readonly creation: string,
    /** Unique within the node incarnation. */
    readonly id: number,
  ) {}

  /** A stable string, usable as a Map key: `<node.creation.id>`. */
  get key(): string {
    return (this.#key ??= `<${this.node}.${this.creation}.${this.id}>`);
  }

  equals(other: unknown): boolean {
    return (
      other instanceof Pid && other.id === this.id && other.node === this.node && other.creation === this.creation
    );
  }

  toString(): string {
    return this.key;
  }

  toJSON(): string {
    return this.key;
  }
}

/** A unique reference (Erlang's `make_ref()`), as returned by `monitor`. */
export class Ref {
  #key: string | undefined;

  constructor(
    readonly node: string,
    readonly creation: string,
    readonly id: number,
  ) {}

  get key(): string {
    return (this.#key ??= `#Ref<${this.node}.${this.creation}.${this.id}>`);
  }

  equals(other: unknown): boolean {
    return (
      other instanceof Ref && other.id === this.id && other.node === this.node && other.creation === this.creation
    );
  }

  toString(): string {
    return this.key;
  }

  toJSON(): string {
    return this.key;
  }
}

export const isPid = (value: unknown): value is Pid => value instanceof Pid;
export const isRef = (value: unknown): value is Ref => value instanceof Ref;
