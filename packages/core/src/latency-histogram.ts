/**
 * A fixed-bucket latency histogram in ms, shared by every figure roster
 * times (calls, registrations): the buckets are the same everywhere, so
 * snapshots of different nodes add up bucket by bucket and map one to one
 * onto a Prometheus histogram (`le` = the bound). A snapshot is plain data,
 * so it crosses the cluster's wire as it is.
 */

/** Upper bounds of the buckets, in ms; a last bucket (+Inf) takes the rest. */
const BOUNDS: readonly number[] = Object.freeze([0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);

/** A {@link LatencyHistogram} read at one moment. */
export interface LatencySnapshot {
  /** Upper bounds of the buckets, in ms: {@link LatencyHistogram.BOUNDS}. */
  readonly bounds: readonly number[];
  /**
   * Observations per bucket, not cumulative: `counts[i]` took the values in
   * `(bounds[i-1], bounds[i]]`; one entry more than `bounds`, the last for
   * values above every bound (+Inf).
   */
  readonly counts: readonly number[];
  /** Observations in all (the sum of `counts`). */
  readonly count: number;
  /** Sum of the observed values, in ms. */
  readonly sum: number;
}

/**
 * `observe` is a few comparisons and three additions, no allocation (cheap
 * enough for a call's hot path); `snapshot` copies the counts out.
 */
export class LatencyHistogram {
  /** `[0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]` ms. */
  static readonly BOUNDS: readonly number[] = BOUNDS;
  readonly #counts: number[] = new Array<number>(BOUNDS.length + 1).fill(0);
  #count = 0;
  #sum = 0;

  /** Records one duration in ms: a finite number >= 0, or a `TypeError` naming `ms`. */
  observe(ms: number): void {
    if (typeof ms !== 'number' || !(ms >= 0) || ms === Infinity) {
      throw new TypeError(`LatencyHistogram.observe: ms must be a finite number >= 0, got ${typeof ms === 'number' ? String(ms) : typeof ms}`);
    }
    let index = 0;
    while (index < BOUNDS.length && ms > BOUNDS[index]!) index++;
    this.#counts[index]!++;
    this.#count++;
    this.#sum += ms;
  }

  snapshot(): LatencySnapshot {
    return { bounds: BOUNDS, counts: this.#counts.slice(), count: this.#count, sum: this.#sum };
  }
}
