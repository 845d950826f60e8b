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
  readonly #votes = new Map<string, { readonly epoch: Epoch; readonly at: number; settled: boolean }>();
  /** By key: the claimants with a vote recorded here. */
  readonly #claimants = new Map<string, Set<string>>();

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
    this.#votes.set(id, { epoch, at: now, settled: false });
    let claimants = this.#claimants.get(key);
    if (claimants === undefined) this.#claimants.set(key, (claimants = new Set()));
    claimants.add(claimant);
    this.#expire(now);
  }

  /** Whether this node voted for exactly this claim. */
  votedFor(claimant: string, key: string, epoch: Epoch): boolean {
    const vote = this.#votes.get(`${claimant}\u0000${key}`);
    return vote !== undefined && sameEpoch(vote.epoch, epoch) && Date.now() - vote.at < this.ttlMs;
  }

  /**
   * The oldest claim of a node other than `except` on `key` that this node
   * voted for within the last `withinMs` and that has been neither committed
   * nor aborted since: a claim that may still win (Erlang's `global` holds a
   * lock for it). Scans the votes of that key's claimants only.
   */
  outstanding(key: string, except: string, withinMs: number): { readonly claimant: string; readonly epoch: Epoch } | undefined {
    const now = Date.now();
    let oldest: { claimant: string; epoch: Epoch } | undefined;
    for (const claimant of this.#claimants.get(key) ?? []) {
      if (claimant === except) continue;
      const vote = this.#votes.get(`${claimant}\u0000${key}`);
      if (vote === undefined || vote.settled || now - vote.at >= withinMs) continue;
      if (oldest === undefined || compareEpochs(vote.epoch, oldest.epoch) < 0) oldest = { claimant, epoch: vote.epoch };
    }
    return oldest;
  }

  /** The claim was committed or aborted: it no longer holds back others. */
  settle(claimant: string, key: string, epoch: Epoch): void {
    const vote = this.#votes.get(`${claimant}\u0000${key}`);
    if (vote !== undefined && sameEpoch(vote.epoch, epoch)) vote.settled = true;
  }

  /** A claimant that went away takes its votes with it. */
  forget(claimant: string): void {
    const prefix = `${claimant}\u0000`;
    for (const id of this.#votes.keys()) if (id.startsWith(prefix)) this.#delete(id);
  }

  #delete(id: string): void {
    this.#votes.delete(id);
    const split = id.indexOf('\u0000');
    const key = id.slice(split + 1);
    const claimants = this.#claimants.get(key);
    claimants?.delete(id.slice(0, split));
    if (claimants?.size === 0) this.#claimants.delete(key);
  }

  #expire(now: number): void {
    for (const [id, vote] of this.#votes) {
      if (this.#votes.size <= MAX_VOTES && now - vote.at < this.ttlMs) break;
      this.#delete(id);
    }
  }
}
