/**
 * What pids and refs share: an immutable `{ node, creation, id }` value with
 * a stable string form, equal to any other of the same kind and fields.
 */
abstract class Identifier {
  #key: string | undefined;

  constructor(
    /** The name of the node it belongs to. */
    readonly node: string,
    /** The node's incarnation id, fresh at every start. */
    readonly creation: string,
    /** Unique within the node incarnation. */
    readonly id: number,
  ) {}

  /** How the string form opens: `<` for a pid, `#Ref<` for a ref. */
  protected abstract get opening(): string;

  /** A stable string, usable as a Map key. */
  get key(): string {
    return (this.#key ??= `${this.opening}${this.node}.${this.creation}.${this.id}>`);
  }

  equals(other: unknown): boolean {
    return (
      other instanceof Identifier &&
      other.constructor === this.constructor &&
      other.id === this.id &&
      other.node === this.node &&
      other.creation === this.creation
    );
  }

  toString(): string {
    return this.key;
  }

  toJSON(): string {
    return this.key;
  }
}

/**
 * A process identifier: an immutable value naming one process of one node
 * incarnation. Pids of the same process compare equal (`equals`, or `key` in
 * a Map) wherever they were decoded, and a restarted node gets a new
 * `creation`, so a pid never aliases a process of an earlier life.
 * String form: `<node.creation.id>`.
 */
export class Pid extends Identifier {
  protected get opening(): string {
    return '<';
  }
}

/** A unique reference (Erlang's `make_ref()`), as returned by `monitor`. String form: `#Ref<node.creation.id>`. */
export class Ref extends Identifier {
  protected get opening(): string {
    return '#Ref<';
  }
}

export const isPid = (value: unknown): value is Pid => value instanceof Pid;
export const isRef = (value: unknown): value is Ref => value instanceof Ref;
