/**
 * The errors of cluster-wide supervision. Match on `code`: it is stable.
 * A child that loses its name to a conflict is not an error here: it exits
 * with `{ name_conflict: … }`, as the registry's conflict policy says.
 */
import { RosterError } from '@roster/core';

/**
 * - `invalid_spec`: a supervisor or child spec the caller must fix (`field` names it).
 * - `unknown_behaviour`: no participating node registered the child's behaviour key.
 * - `no_quorum`: fewer members than `minMembers` (or a majority of `clusterSize`) are connected; nothing starts.
 * - `no_eligible_node`: placement found no live member that registered the behaviour (or it named none).
 * - `not_found`: no child with that id.
 * - `running`: the child must be stopped first (`deleteChild`, `restartChild`).
 * - `not_running`: the child is not running (`migrate`).
 * - `already_present`: a child with that id exists (stopped); OTP's `already_present`.
 * - `timeout`: the child did not start (or move) within the request's timeout.
 * - `not_started`: no member of that supervisor runs on the node asked.
 */
export type SupervisionErrorCode =
  | 'invalid_spec'
  | 'unknown_behaviour'
  | 'no_quorum'
  | 'no_eligible_node'
  | 'not_found'
  | 'running'
  | 'not_running'
  | 'already_present'
  | 'timeout'
  | 'not_started';

export class SupervisionError extends RosterError {
  override readonly name = 'SupervisionError';

  constructor(
    readonly code: SupervisionErrorCode,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
