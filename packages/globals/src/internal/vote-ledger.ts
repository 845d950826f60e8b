import { compareEpochs, sameEpoch, type Epoch } from '../epoch.js';

/** Most votes remembered at once; the oldest go first beyond it. */
const MAX_VOTES = 100_000;

/**
 * The claims this node voted for (`yes` or `remote`), by claimant and name:
 * a `commit` is applied only for a claim this node voted on, so a forged
 * commit, one that no claim preceded, never takes a name. Bounded in count
 * and age: a vote older than `ttlMs` is forgotten (its commit, if it ever
 * comes, is then repaired by anti-entropy instead).
 */
export class VoteLedger {
  /** By `claimant\0key`, in order of voting (re-voting moves an entry last). */
  readonly #votes = new Map<string, { readonly epoch: Epoch; readonly at: number }>();

  constructor(readonly ttlMs: number) {}

  get size(): number {
    return this.#votes.size;
  }

  record(claimant: string, key: string, epoch: Epoch): void {
    const id = `${claimant}\u0000${key}`;
    const previous = this.#votes.get(id);
    if (previous !== undefined && compareEpochs(previous.epoch, epoch) > 0) return;
    const now = Date.now();
    this.#votes.delete(id);
    this.#votes.set(id, { epoch, at: now });
    this.#expire(now);
  }

  /** Whether this node voted for exactly this claim. */
  votedFor(claimant: string, key: string, epoch: Epoch): boolean {
    const vote = this.#votes.get(`${claimant}\u0000${key}`);
    return vote !== undefined && sameEpoch(vote.epoch, epoch) && Date.now() - vote.at < this.ttlMs;
  }

  /** Whether this node voted for a claim of `claimant` on `key` at or above `epoch`'s age. */
  votedOnOrBefore(claimant: string, key: string, epoch: Epoch): boolean {
    const vote = this.#votes.get(`${claimant}\u0000${key}`);
    return vote !== undefined && compareEpochs(vote.epoch, epoch) <= 0;
  }

  /** A claimant that went away takes its votes with it. */
  forget(claimant: string): void {
    const prefix = `${claimant}\u0000`;
    for (const id of this.#votes.keys()) if (id.startsWith(prefix)) this.#votes.delete(id);
  }

  #expire(now: number): void {
    for (const [id, vote] of this.#votes) {
      if (this.#votes.size <= MAX_VOTES && now - vote.at < this.ttlMs) break;
      this.#votes.delete(id);
    }
  }
}
