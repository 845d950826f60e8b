/** Reconnection backoff settings, all in milliseconds. */
export interface BackoffSettings {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": the `round`-th wait (from 0) is
 * uniformly drawn from [d/2, d] where d = min(maxMs, initialMs * 2^round), so
 * nodes that lost the same broker do not all come back in the same instant.
 */
export function backoffDelay(settings: BackoffSettings, round: number, random: () => number = Math.random): number {
  const ceiling = Math.min(settings.maxMs, settings.initialMs * 2 ** Math.min(round, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
