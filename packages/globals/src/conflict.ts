import type { Name, Pid } from '@roster/core';
import { compareEpochs, type Epoch } from './epoch.js';

/** One side of a name claimed on both sides of a healed partition. */
export interface ConflictClaim {
  readonly pid: Pid;
  readonly epoch: Epoch;
  readonly node: string;
}

/**
 * A user resolver: given both claims (in epoch order, oldest first), the pid
 * that keeps the name, or undefined to take it from both. It must be
 * deterministic: every node runs it and must reach the same answer. Losers
 * are told with a `{ type: 'name_conflict', name, winner }` message.
 */
export type ConflictResolver = (name: Name, older: ConflictClaim, younger: ConflictClaim) => Pid | undefined;

/**
 * How a name claimed on both sides of a partition is settled once it heals:
 * - `keep-oldest` (default): the older epoch keeps it; the loser exits with
 *   reason `{ name_conflict: { name, winner } }`.
 * - `notify-loser`: the older keeps it; the loser keeps running, loses the
 *   name, and receives `{ type: 'name_conflict', name, winner }`.
 * - `notify-all`: neither keeps it; both receive the message (winner undefined).
 * - a `ConflictResolver`.
 */
export type ConflictPolicy = 'keep-oldest' | 'notify-loser' | 'notify-all' | ConflictResolver;

/** What a conflict came to, as the `conflict` event reports it. */
export interface ConflictOutcome {
  readonly name: Name;
  readonly winner: ConflictClaim | undefined;
  readonly losers: readonly ConflictClaim[];
  readonly policy: string;
}

/** The message a loser (not killed) receives. */
export interface NameConflictMessage {
  readonly type: 'name_conflict';
  readonly name: Name;
  readonly winner: Pid | undefined;
}

/** Decides between two claims of one name; the same answer on every node. */
export function resolveConflict(policy: ConflictPolicy, name: Name, a: ConflictClaim, b: ConflictClaim): ConflictOutcome {
  const [older, younger] = compareEpochs(a.epoch, b.epoch) <= 0 ? [a, b] : [b, a];
  if (policy === 'keep-oldest' || policy === 'notify-loser') {
    return { name, winner: older, losers: [younger], policy };
  }
  if (policy === 'notify-all') return { name, winner: undefined, losers: [older, younger], policy };
  const kept = policy(name, older, younger);
  const winner = kept === undefined ? undefined : [older, younger].find((claim) => claim.pid.equals(kept));
  return {
    name,
    winner,
    losers: [older, younger].filter((claim) => claim !== winner),
    policy: 'custom',
  };
}
