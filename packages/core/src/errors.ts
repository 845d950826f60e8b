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

/** A supervisor refused a child operation (the `{error, _}` tuples of OTP's supervisor). */
export class SupervisorError extends RosterError {
  override readonly name = 'SupervisorError';

  constructor(
    readonly code: 'already_present' | 'running' | 'restarting' | 'not_found' | 'max_children',
    readonly childId: unknown,
  ) {
    super(`supervisor child ${formatReason(childId)}: ${code}`);
  }
}

/** The node has been stopped, or was never started, and cannot do what was asked. */
export class NodeStoppedError extends RosterError {
  readonly code = 'node_stopped';
  override readonly name = 'NodeStoppedError';
}
