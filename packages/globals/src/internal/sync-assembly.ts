import { sameEpoch, type Epoch } from '../epoch.js';
import type { WireClaim } from './protocol.js';

/** Most bytes (roughly: encoded name lengths) of unfinished sync parts held per peer. */
export const MAX_SYNC_BYTES = 16 * 1024 * 1024;
/** An unfinished sync whose next part has not come within this long is abandoned. */
export const SYNC_PART_TTL_MS = 30_000;

interface Assembly {
  readonly at: Epoch;
  readonly claims: WireClaim[];
  bytes: number;
  touched: number;
}

/**
 * The parts of syncs still arriving, by sender (parts of one sync are
 * contiguous and carry the same `at`). Bounded per peer by bytes and by age,
 * so a peer that starts syncs and never finishes them pins nothing.
 */
export class SyncAssembly {
  readonly #bySender = new Map<string, Assembly>();

  /** Adds a part; false when it would exceed the bound (the whole sync is then dropped). */
  add(sender: string, at: Epoch, claims: readonly WireClaim[], bytes: number): boolean {
    const now = Date.now();
    this.#expire(now);
    let assembly = this.#bySender.get(sender);
    if (assembly !== undefined && !sameEpoch(assembly.at, at)) assembly = undefined; // a new sync replaces an unfinished one
    if (assembly === undefined) {
      assembly = { at, claims: [], bytes: 0, touched: now };
      this.#bySender.set(sender, assembly);
    }
    if (assembly.bytes + bytes > MAX_SYNC_BYTES) {
      this.#bySender.delete(sender);
      return false;
    }
    assembly.claims.push(...claims);
    assembly.bytes += bytes;
    assembly.touched = now;
    return true;
  }

  /** The earlier parts of the sync `at` from `sender` (empty when none), forgetting them. */
  take(sender: string, at: Epoch): WireClaim[] {
    const assembly = this.#bySender.get(sender);
    this.#bySender.delete(sender);
    return assembly !== undefined && sameEpoch(assembly.at, at) ? assembly.claims : [];
  }

  forget(sender: string): void {
    this.#bySender.delete(sender);
  }

  clear(): void {
    this.#bySender.clear();
  }

  #expire(now: number): void {
    for (const [sender, assembly] of this.#bySender) if (now - assembly.touched >= SYNC_PART_TTL_MS) this.#bySender.delete(sender);
  }
}
