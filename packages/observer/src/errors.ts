/**
 * The observer's errors: one class with a stable `code`, as in every roster
 * package, so callers (the CLI among them) switch on `code`, not on messages.
 */
import { RosterError } from '@roster/core';

/**
 * Why the observer refused or failed:
 * - `not_clustered`: the node joined no cluster (start it with `cluster: {…}`): there is nothing to observe.
 * - `listen_failed`: the HTTP server could not bind `host:port` (in use, no permission); `cause` is the system error.
 */
export type ObserverErrorCode = 'not_clustered' | 'listen_failed';

/** A failure of `startObserver` or of a running observer; match on `code`. */
export class ObserverError extends RosterError {
  override readonly name = 'ObserverError';

  constructor(
    readonly code: ObserverErrorCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
  }
}
