/**
 * The CLI's failures and the one table that turns them into exit codes, so a
 * script can tell "the cluster is unreachable" from "you typed it wrong" from
 * "that name is not registered" without reading stderr.
 */
import { RosterError } from '@roster/core';

/**
 * Why `roster` failed. Match on `code`: it is stable.
 * - `usage`: an unknown command or flag, a missing or extra argument, a bad flag value, no broker URL, an unreadable secret file.
 * - `not_found`: `whereis` of a name nobody holds, or a node that is not a member of the cluster.
 * - `broker_unreachable`: no broker URL answered within the connect timeout.
 * - `wrong_secret`: no peer could be heard, but frames signed with another secret (or none) arrived.
 * - `no_nodes`: the broker answered, but no node of the cluster did (a wrong cluster id, or nothing running).
 * - `cluster`: any other failure of the cluster or of a peer (a node that did not answer in time, a lost connection).
 * - `listen_failed`: `observe` could not bind its `--host` / `--port` (in use, no permission).
 */
export type CliErrorCode = 'usage' | 'not_found' | 'broker_unreachable' | 'wrong_secret' | 'no_nodes' | 'cluster' | 'listen_failed';

/** An error of the `roster` CLI; its message is the one line printed on stderr (never a secret). */
export class CliError extends RosterError {
  override readonly name = 'CliError';

  constructor(
    readonly code: CliErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Exit statuses of `roster`, one table: the README's "Exit codes" lists the same. */
export const EXIT_CODES = Object.freeze({
  /** The command did what it was asked. */
  ok: 0,
  /** The broker or the cluster failed (unreachable broker, wrong secret, no nodes, a peer that did not answer), or `observe` could not listen. */
  failure: 1,
  /** Usage: an unknown command or flag, a bad value, a missing argument. */
  usage: 2,
  /** Not found: `whereis` of a name nobody holds, `processes` or `names --node` of a node that is not a member. */
  notFound: 3,
});

/** The exit status for a failure of `code` (see {@link EXIT_CODES}). */
export function exitCodeFor(code: CliErrorCode): number {
  switch (code) {
    case 'usage':
      return EXIT_CODES.usage;
    case 'not_found':
      return EXIT_CODES.notFound;
    case 'broker_unreachable':
    case 'wrong_secret':
    case 'no_nodes':
    case 'cluster':
    case 'listen_failed':
      return EXIT_CODES.failure;
  }
}

/** A usage error (exit 2). */
export function usageError(message: string): CliError {
  return new CliError('usage', message);
}
