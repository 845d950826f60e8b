/**
 * The epoch of a claim: a hybrid logical clock reading plus the claiming
 * node's name. Epochs are totally ordered: by wall time, then logical
 * counter, then node name, so no two claims are ever equal, wall-clock skew
 * cannot reorder a node's own claims, and a claim made after seeing another
 * is always younger than it.
 */
export interface Epoch {
  readonly wall: number;
  readonly counter: number;
  readonly node: string;
}

/** Negative when `a` is older than `b`. */
export function compareEpochs(a: Epoch, b: Epoch): number {
  if (a.wall !== b.wall) return a.wall - b.wall;
  if (a.counter !== b.counter) return a.counter - b.counter;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

export function sameEpoch(a: Epoch, b: Epoch): boolean {
  return a.wall === b.wall && a.counter === b.counter && a.node === b.node;
}

export function formatEpoch(epoch: Epoch): string {
  return `${epoch.wall}.${epoch.counter}@${epoch.node}`;
}

/** A hybrid logical clock (Kulkarni et al.): monotonic, close to wall time, and causal across nodes. */
export class HybridLogicalClock {
  #wall = 0;
  #counter = 0;

  constructor(
    readonly node: string,
    readonly physical: () => number = Date.now,
  ) {}

  /** A new epoch, younger than every epoch this clock made or observed. */
  now(): Epoch {
    const physical = this.physical();
    if (physical > this.#wall) {
      this.#wall = physical;
      this.#counter = 0;
    } else {
      this.#counter++;
    }
    return { wall: this.#wall, counter: this.#counter, node: this.node };
  }

  /** Takes in an epoch seen from elsewhere, so later epochs of this clock are younger than it. */
  observe(epoch: Epoch): void {
    const physical = this.physical();
    const previous = this.#wall;
    const wall = Math.max(previous, epoch.wall, physical);
    if (wall === previous && wall === epoch.wall) this.#counter = Math.max(this.#counter, epoch.counter) + 1;
    else if (wall === previous) this.#counter++;
    else if (wall === epoch.wall) this.#counter = epoch.counter + 1;
    else this.#counter = 0;
    this.#wall = wall;
  }
}
