/**
 * Anti-replay state per peer incarnation: a sliding window over each stream's
 * sequence numbers (as IPsec's), the highest session seen, and the sequence
 * this node last used towards it. Kept after the peer is dropped, so a dead
 * incarnation's replayed frames stay dropped; bounded in count and age.
 */

/** How far below the highest sequence number a late frame is still accepted (once). */
export const REPLAY_WINDOW = 64;

/** What {@link ReplayWindow.accept} says of a sequence number. */
export const Verdict = {
  /** Seen before, or too far behind: a replay. */
  Replayed: 0,
  /** New, and the next one (or a late one filling a hole). */
  Accepted: 1,
  /** New, and past the next one: frames in between are missing (so far), and were not reported yet. */
  Gap: 2,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** The sequence numbers of one sender on one stream. */
export class ReplayWindow {
  /** Highest sequence number accepted; 0 before the first. */
  max = 0;
  /** Highest sequence number whose loss was reported (so one loss is reported once). */
  reported = 0;
  /** `seen[q % REPLAY_WINDOW]`: whether q, within the window, was accepted. */
  readonly #seen = new Uint8Array(REPLAY_WINDOW);

  accept(q: number): Verdict {
    const max = this.max;
    if (q > max) {
      const seen = this.#seen;
      // Slots of the numbers skipped over now stand for them: not seen.
      for (let skipped = Math.max(max + 1, q - REPLAY_WINDOW + 1); skipped < q; skipped++) seen[skipped % REPLAY_WINDOW] = 0;
      seen[q % REPLAY_WINDOW] = 1;
      this.max = q;
      if (q === max + 1 || q - 1 <= this.reported) return Verdict.Accepted;
      this.reported = q - 1;
      return Verdict.Gap;
    }
    if (q <= max - REPLAY_WINDOW) return Verdict.Replayed;
    const slot = q % REPLAY_WINDOW;
    if (this.#seen[slot] === 1) return Verdict.Replayed;
    this.#seen[slot] = 1;
    return Verdict.Accepted;
  }

  /**
   * Whether frames up to `upTo` are missing and not reported yet; if so they
   * count as reported from now on.
   */
  missing(upTo: number): boolean {
    if (upTo <= this.max || upTo <= this.reported) return false;
    this.reported = upTo;
    return true;
  }
}

/** What this node keeps about one incarnation (node name + creation) of a peer. */
export interface Incarnation {
  readonly node: string;
  readonly creation: string;
  /** `JSON.stringify(creation)`, as direct frames to it carry it in `r`. */
  readonly creationJson: string;
  /** Its hello, hb and leave broadcasts. */
  readonly broadcast: ReplayWindow;
  /** Its direct frames to this node. */
  readonly direct: ReplayWindow;
  /** Highest session seen from it: a lower one is a replay. */
  session: number;
  /** Sequence number of the last direct frame this node sent to it. */
  sent: number;
  /** Last time (ms) it was heard from or dropped. */
  touched: number;
  /** It left gracefully: a leave is final for an incarnation, so a late heartbeat of it never brings it back. */
  left: boolean;
}

/**
 * The incarnations this node knows, at most `limit`: one that is no member
 * and unheard for `maxAgeMs` is forgotten; when full, the longest-unheard
 * non-member goes.
 */
export class IncarnationTable {
  readonly #entries = new Map<string, Incarnation>();

  constructor(
    readonly limit = 4096,
    readonly maxAgeMs = 10 * 60_000,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `node`/`creation`, made on first use. `isMember` guards live peers from eviction. */
  get(node: string, creation: string, now: number, isMember: (entry: Incarnation) => boolean): Incarnation {
    const key = `${node}\n${creation}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      if (this.#entries.size >= this.limit) this.#evictOne(isMember);
      entry = {
        node,
        creation,
        creationJson: JSON.stringify(creation),
        broadcast: new ReplayWindow(),
        direct: new ReplayWindow(),
        session: 0,
        sent: 0,
        touched: now,
        left: false,
      };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Forgets non-members unheard for `maxAgeMs`. */
  expire(now: number, isMember: (entry: Incarnation) => boolean): void {
    const deadline = now - this.maxAgeMs;
    for (const [key, entry] of this.#entries) {
      if (entry.touched < deadline && !isMember(entry)) this.#entries.delete(key);
    }
  }

  clear(): void {
    this.#entries.clear();
  }

  #evictOne(isMember: (entry: Incarnation) => boolean): void {
    let oldest: [string, Incarnation] | undefined;
    for (const item of this.#entries) {
      if (!isMember(item[1]) && (oldest === undefined || item[1].touched < oldest[1].touched)) oldest = item;
    }
    if (oldest !== undefined) this.#entries.delete(oldest[0]);
  }
}
