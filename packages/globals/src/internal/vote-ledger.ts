import { compareEpochs, sameEpoch, type Epoch } from '../epoch.js';

/** Most votes remembered at once; the oldest go first beyond it. */
const MAX_VOTES = 100_000;

interface Vote {
  readonly claimant: string;
  readonly key: string;
  readonly epoch: Epoch;
  readonly at: number;
  settled: boolean;
}

/**
 * The claims this node voted for (`yes` or `remote`), by name and claimant:
 * a `commit` is applied only for a claim this node voted on, so a forged
 * commit, one that no claim preceded, never takes a name. Bounded in count
 * and age: a vote older than `ttlMs` is forgotten (its commit, if it ever
 * comes, is then repaired by anti-entropy instead).
 *
 * Keyed by name, then claimant (no composite key string is built on the hot
 * path); a queue in order of voting drives expiry, its entries checked
 * against the map so a vote replaced or forgotten meanwhile is skipped.
 */
export class VoteLedger {
  /**
   * By name key: the vote this node holds, or, when several claimants hold
   * one for the same name (a race), those by claimant. Most names only ever
   * see one claimant: no map of their own.
   */
  readonly #votes = new Map<string, Vote | Map<string, Vote>>();
  /** Votes in the order they were cast (some replaced or forgotten since); expiry pops from the front. */
  #order: Vote[] = [];
  #head = 0;
  #size = 0;

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.#size;
  }

  record(claimant: string, key: string, epoch: Epoch): void {
    const held = this.#votes.get(key);
    const previous = this.#of(held, claimant);
    if (previous !== undefined && compareEpochs(previous.epoch, epoch) > 0) return;
    const now = Date.now();
    const vote: Vote = { claimant, key, epoch, at: now, settled: false };
    if (previous === undefined) this.#size++;
    if (held === undefined || (!(held instanceof Map) && held.claimant === claimant)) this.#votes.set(key, vote);
    else if (held instanceof Map) held.set(claimant, vote);
    else this.#votes.set(key, new Map([[held.claimant, held], [claimant, vote]]));
    this.#order.push(vote);
    this.#expire(now);
  }

  /** Whether this node voted for exactly this claim. */
  votedFor(claimant: string, key: string, epoch: Epoch): boolean {
    const vote = this.#vote(claimant, key);
    return vote !== undefined && sameEpoch(vote.epoch, epoch) && Date.now() - vote.at < this.ttlMs;
  }

  /**
   * The oldest claim of a node other than `except` on `key` that this node
   * voted for within the last `withinMs` and that has been neither committed
   * nor aborted since: a claim that may still win (Erlang's `global` holds a
   * lock for it). Scans that name's votes only.
   */
  outstanding(key: string, except: string, withinMs: number): { readonly claimant: string; readonly epoch: Epoch } | undefined {
    const held = this.#votes.get(key);
    if (held === undefined) return undefined;
    const now = Date.now();
    let oldest: Vote | undefined;
    for (const vote of held instanceof Map ? held.values() : [held]) {
      if (vote.claimant === except || vote.settled || now - vote.at >= withinMs) continue;
      if (oldest === undefined || compareEpochs(vote.epoch, oldest.epoch) < 0) oldest = vote;
    }
    return oldest;
  }

  /** The claim was committed or aborted: it no longer holds back others. */
  settle(claimant: string, key: string, epoch: Epoch): void {
    const vote = this.#vote(claimant, key);
    if (vote !== undefined && sameEpoch(vote.epoch, epoch)) vote.settled = true;
  }

  /** A claimant that went away takes its votes with it. */
  forget(claimant: string): void {
    for (const held of [...this.#votes.values()]) {
      const vote = this.#of(held, claimant);
      if (vote !== undefined) this.#delete(vote);
    }
  }

  #vote(claimant: string, key: string): Vote | undefined {
    return this.#of(this.#votes.get(key), claimant);
  }

  #of(held: Vote | Map<string, Vote> | undefined, claimant: string): Vote | undefined {
    if (held === undefined) return undefined;
    if (held instanceof Map) return held.get(claimant);
    return held.claimant === claimant ? held : undefined;
  }

  /** Whether `vote` is still the one held for its claimant and name. */
  #current(vote: Vote): boolean {
    return this.#vote(vote.claimant, vote.key) === vote;
  }

  #delete(vote: Vote): void {
    const held = this.#votes.get(vote.key);
    if (held instanceof Map) {
      held.delete(vote.claimant);
      if (held.size === 0) this.#votes.delete(vote.key);
    } else {
      this.#votes.delete(vote.key);
    }
    this.#size--;
  }

  #expire(now: number): void {
    const order = this.#order;
    while (this.#head < order.length) {
      const oldest = order[this.#head]!;
      if (this.#current(oldest)) {
        if (this.#size <= MAX_VOTES && now - oldest.at < this.ttlMs) break;
        this.#delete(oldest);
      }
      this.#head++;
    }
    // Drop the consumed front (and, past a bound, the entries replaced or forgotten since) now and then, not at every vote.
    if (this.#head > 1024 && this.#head * 2 > order.length) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    } else if (order.length - this.#head > 2 * this.#size + 1024) {
      this.#order = order.slice(this.#head).filter((vote) => this.#current(vote));
      this.#head = 0;
    }
  }
}
