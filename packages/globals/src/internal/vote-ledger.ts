import { compareEpochs, sameEpoch, type Epoch } from '../epoch.js';
import { KeyedByNode } from './keyed-by-node.js';

/** Most votes remembered at once; the oldest go first beyond it. */
const MAX_VOTES = 100_000;

interface Vote {
  readonly claimant: string;
  readonly epoch: Epoch;
  readonly at: number;
  settled: boolean;
}

/**
 * The claims this node voted for (`yes` or `remote`), by name and claimant:
 * a `commit` is applied only for a claim this node voted on, so a forged
 * commit, one that no claim preceded, never takes a name. Bounded in count
 * and age: a vote older than `ttlMs` is forgotten (its commit, if it ever
 * comes, is then repaired by anti-entropy instead); voting again for a name
 * makes the vote young again.
 */
export class VoteLedger {
  readonly #votes = new KeyedByNode<Vote>();

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.#votes.size;
  }

  record(claimant: string, key: string, epoch: Epoch): void {
    const previous = this.#votes.get(key, claimant);
    if (previous !== undefined && compareEpochs(previous.epoch, epoch) > 0) return;
    const now = Date.now();
    this.#votes.set(key, claimant, { claimant, epoch, at: now, settled: false }, now);
    this.#votes.expire(now - this.ttlMs + 1, MAX_VOTES);
  }

  /** Whether this node voted for exactly this claim. */
  votedFor(claimant: string, key: string, epoch: Epoch): boolean {
    const vote = this.#votes.get(key, claimant);
    return vote !== undefined && sameEpoch(vote.epoch, epoch) && Date.now() - vote.at < this.ttlMs;
  }

  /**
   * The oldest claim of a node other than `except` on `key` that this node
   * voted for within the last `withinMs` and that has been neither committed
   * nor aborted since: a claim that may still win (Erlang's `global` holds a
   * lock for it). Scans that name's votes only.
   */
  outstanding(key: string, except: string, withinMs: number): { readonly claimant: string; readonly epoch: Epoch } | undefined {
    const now = Date.now();
    let oldest: Vote | undefined;
    for (const vote of this.#votes.valuesOf(key)) {
      if (vote.claimant === except || vote.settled || now - vote.at >= withinMs) continue;
      if (oldest === undefined || compareEpochs(vote.epoch, oldest.epoch) < 0) oldest = vote;
    }
    return oldest;
  }

  /** The claim was committed or aborted: it no longer holds back others. */
  settle(claimant: string, key: string, epoch: Epoch): void {
    const vote = this.#votes.get(key, claimant);
    if (vote !== undefined && sameEpoch(vote.epoch, epoch)) vote.settled = true;
  }

  /** A claimant that went away takes its votes with it. */
  forget(claimant: string): void {
    this.#votes.forget(claimant);
  }
}
