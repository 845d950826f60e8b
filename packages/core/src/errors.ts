import type { Pid } from './pid.js';
import { formatReason, type ExitReason } from './exit-reason.js';

/** Base class of every error roster throws; `code` is stable and safe to switch on. */
export abstract class RosterError extends Error {
  abstract readonly code: string;
}

/**
 * A bad argument: a send to a name nobody holds, an unknown registry key, a
 * destination that is not one (Erlang's `badarg`).
 */
export class BadArgError extends RosterError {
  readonly code = 'badarg';
  override readonly name = 'BadArgError';
}

export type CallFailure = 'noproc' | 'timeout' | 'noconnection' | 'exit';

/**
 * A `call` that did not get its reply. `reason` is `noproc`, `timeout`,
 * `noconnection`, or the callee's exit reason when it died first.
 */
export class CallError extends RosterError {
  readonly code = 'call_failed';
  override readonly name = 'CallError';

  constructor(
    readonly reason: ExitReason,
    readonly dest: string,
  ) {
    super(`call to ${dest} failed: ${formatReason(reason)}`);
  }

  /** Which kind of failure: one of the well-known atoms, or `exit` for a callee's own reason. */
  get failure(): CallFailure {
    return this.reason === 'noproc' || this.reason === 'timeout' || this.reason === 'noconnection' ? this.reason : 'exit';
  }
}

/** Starting under a name that is taken (Erlang: `{error, {already_started, Pid}}`). */
export class AlreadyStartedError extends RosterError {
  readonly code = 'already_started';
  override readonly name = 'AlreadyStartedError';

  constructor(
    /** The holder of the name, when the registry knows it yet. */
    readonly pid: Pid | undefined,
    readonly dest: string,
  ) {
    super(`${dest} is already registered${pid ? ` to ${pid.key}` : ''}`);
  }
}

/** `start` / `startLink` whose `init` failed or stopped; `reason` is why. */
export class StartError extends RosterError {
  readonly code = 'start_failed';
  override readonly name = 'StartError';

  constructor(readonly reason: ExitReason) {
    super(`process failed to start: ${formatReason(reason)}`, reason instanceof Error ? { cause: reason } : undefined);
  }
}

/**
 * Why a supervisor refused an operation (the `{error, _}` answers of OTP's supervisor):
 * - `already_present`: a child spec with this id exists, not running (or restarting).
 * - `already_started`: a child with this id is running; `pid` is the child (`{already_started, Pid}`).
 * - `running`: the child runs, so it cannot be restarted or deleted.
 * - `restarting`: the supervisor is retrying a failed restart of the child.
 * - `not_found`: no child with this id (or pid).
 * - `max_children`: the dynamic supervisor has `maxChildren` children.
 * - `invalid_child_spec`: a child spec is malformed; `field` names the bad field (`{invalid_child_spec, _}`).
 * - `invalid_supervisor_flags`: a supervisor's flags are malformed; `field` names the bad flag (`{supervisor_data, _}`).
 */
export type SupervisorErrorCode =
  | 'already_present'
  | 'already_started'
  | 'running'
  | 'restarting'
  | 'not_found'
  | 'max_children'
  | 'invalid_child_spec'
  | 'invalid_supervisor_flags';

/** A supervisor refused a child operation (the `{error, _}` tuples of OTP's supervisor). */
export class SupervisorError extends RosterError {
  override readonly name = 'SupervisorError';
  /** For `already_started`: the running child. */
  readonly pid: Pid | undefined;
  /** For `invalid_child_spec` and `invalid_supervisor_flags`: the field or flag at fault. */
  readonly field: string | undefined;
  /** What exactly is wrong, when there is more to say than the code. */
  readonly detail: string | undefined;

  constructor(
    readonly code: SupervisorErrorCode,
    /** The child's id (a pid's key for a dynamic supervisor's child); undefined for a flag. */
    readonly childId: unknown,
    details: { readonly pid?: Pid; readonly field?: string; readonly detail?: string } = {},
  ) {
    const subject = childId === undefined ? 'supervisor' : `supervisor child ${formatReason(childId)}`;
    const detail = details.detail ?? (details.pid !== undefined ? `as ${details.pid.key}` : undefined);
    super(`${subject}: ${code}${detail === undefined ? '' : `: ${detail}`}`);
    this.pid = details.pid;
    this.field = details.field;
    this.detail = details.detail;
  }
}

/** The node has been stopped, or was never started, and cannot do what was asked. */
export class NodeStoppedError extends RosterError {
  readonly code = 'node_stopped';
  override readonly name = 'NodeStoppedError';
}

/**
 * Why a remote spawn (`GenServer.startOn`, `spawnOn`) failed:
 * - `unknown_behaviour`: nothing is registered under the key in the target node's `node.behaviours`.
 * - `unknown_node`: the target node is not a live member of the cluster when the spawn is asked for.
 * - `noconnection`: this node is not clustered (or its distribution cannot spawn), the target node
 *   went down during the spawn, or it was stopping.
 * - `timeout`: no answer within the spawn's `timeout` (init included); a child started too late is killed.
 * - `bad_args`: the args (or the name) cannot cross the wire, refused before anything was sent
 *   (`cause` is the `WireEncodeError`), or the target node refused the name (no such registry there).
 * - `start_failed`: the child was created but did not start: its GenServer `init` failed, stopped
 *   or answered `ignore()`; `reason` is why.
 */
export type SpawnErrorCode = 'unknown_behaviour' | 'unknown_node' | 'noconnection' | 'timeout' | 'bad_args' | 'start_failed';

/**
 * A remote spawn failed; match on `code` (see {@link SpawnErrorCode}). A name
 * that is taken is an `AlreadyStartedError` instead, as for `GenServer.start`.
 */
export class SpawnError extends RosterError {
  override readonly name = 'SpawnError';
  /** For `start_failed`: the child's exit reason (`'ignore'` when its `init` answered `ignore()`). */
  readonly reason: ExitReason;

  constructor(
    readonly code: SpawnErrorCode,
    /** The node the spawn was for. */
    readonly node: string,
    /** The catalogue key asked for. */
    readonly key: string,
    details: { readonly reason?: ExitReason; readonly detail?: string; readonly cause?: unknown } = {},
  ) {
    const detail = details.detail ?? (details.reason !== undefined ? formatReason(details.reason) : undefined);
    super(
      `spawn of ${JSON.stringify(key)} on ${node} failed: ${code}${detail === undefined ? '' : `: ${detail}`}`,
      details.cause !== undefined ? { cause: details.cause } : details.reason instanceof Error ? { cause: details.reason } : undefined,
    );
    this.reason = details.reason;
  }
}
