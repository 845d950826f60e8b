/**
 * Where a distributed supervisor starts a child: a named strategy, a node
 * list, or a function. Only live members that registered the child's
 * behaviour are candidates; placement never sees the others.
 */

/** A node that may host a child, with its load (process count, plus the children placed on it since it last said). */
export interface PlacementCandidate {
  readonly node: string;
  readonly load: number;
}

export interface PlacementContext {
  readonly childId: string;
  /** The child's behaviour key. */
  readonly behaviour: string;
  /** Sorted by node name; never empty. */
  readonly candidates: readonly PlacementCandidate[];
  /** The node deciding (the member placing the child). */
  readonly self: string;
}

/** Answers a candidate's node name, or undefined to start the child nowhere (`no_eligible_node`). */
export type PlacementFunction = (context: PlacementContext) => string | undefined;

/**
 * - `local_first`: the deciding node when it qualifies, else `round_robin`;
 * - `round_robin`: the candidates in turn (the deciding member's own counter);
 * - `least_loaded`: the fewest processes;
 * - `random`;
 * - a node list: the first live candidate in the list's order (a preference list);
 * - a {@link PlacementFunction}: it must answer a candidate, on every node the same
 *   way (static children only: a function cannot cross the wire).
 */
export type Placement = 'local_first' | 'round_robin' | 'least_loaded' | 'random' | readonly string[] | PlacementFunction;

export const PLACEMENT_STRATEGIES: ReadonlySet<string> = new Set(['local_first', 'round_robin', 'least_loaded', 'random']);

/** The placer of one member: it keeps the round-robin position. */
export class Placer {
  #turn = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /** The chosen node, or undefined when the placement names no candidate. */
  choose(placement: Placement, context: PlacementContext): string | undefined {
    const { candidates, self } = context;
    if (candidates.length === 0) return undefined;
    if (typeof placement === 'function') {
      const chosen = placement(context);
      return candidates.some((candidate) => candidate.node === chosen) ? chosen : undefined;
    }
    if (typeof placement !== 'string') {
      return placement.find((node) => candidates.some((candidate) => candidate.node === node));
    }
    switch (placement) {
      case 'local_first':
        if (candidates.some((candidate) => candidate.node === self)) return self;
        return this.#roundRobin(candidates);
      case 'round_robin':
        return this.#roundRobin(candidates);
      case 'least_loaded': {
        let best = candidates[0]!;
        for (const candidate of candidates) if (candidate.load < best.load) best = candidate;
        return best.node;
      }
      case 'random':
        return candidates[Math.floor(this.random() * candidates.length) % candidates.length]!.node;
      default:
        return undefined;
    }
  }

  #roundRobin(candidates: readonly PlacementCandidate[]): string {
    return candidates[this.#turn++ % candidates.length]!.node;
  }
}
