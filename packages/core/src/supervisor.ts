/**
 * OTP's supervisor: starts an ordered set of children, watches them, and
 * restarts them by its strategy within its restart intensity.
 *
 * Failure behaviour, as in OTP: a bad child spec or flag is the caller's
 * `SupervisorError` (the supervisor never crashes on one); a child that
 * fails to restart is retried through the supervisor's own mailbox (it is
 * `restarting` meanwhile, and the supervisor keeps answering calls), each
 * attempt counting against the intensity; past the intensity the supervisor
 * stops its children and exits with `shutdown`.
 */
import { StartError, SupervisorError, type SupervisorErrorCode } from './errors.js';
import { formatReason, isExitMessage, type ExitReason } from './exit-reason.js';
import { GenServer, type Caller, type StartOptions } from './gen-server.js';
import { noreply, reply, stop, type IgnorableGenServer } from './gen-server-callbacks.js';
import type { Dest } from './dest.js';
import type { Node } from './node.js';
import { Pid } from './pid.js';
import type { CallOptions, Process } from './process.js';
import {
  normalizeChildSpec,
  orDefault,
  RestartIntensity,
  shouldRestart,
  shutdownChild,
  startChildProcess,
  type ChildSpec,
  type ChildType,
  type NormalizedChildSpec,
  type RestartType,
  type Shutdown,
} from './internal/child-lifecycle.js';
import { checkFlagKeys, checkIntensity, invalidFlag } from './internal/supervisor-flags.js';
import { RestartLog, tagProcess } from './internal/introspect.js';
import type { SupervisorDetails } from './introspection.js';

export type {
  ChildSpec,
  ChildStartResult,
  ChildType,
  NormalizedChildSpec,
  RestartType,
  Shutdown,
} from './internal/child-lifecycle.js';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

/**
 * When the supervisor shuts itself down after a `significant` child exits on
 * its own (OTP 24's `auto_shutdown`): `never` (the default), on the first
 * (`any_significant`), or once none is left running (`all_significant`).
 */
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant';

export interface SupervisorSpec {
  /** Default `one_for_one`. */
  readonly strategy?: Strategy;
  /** Restarts allowed within `period` (an integer >= 0) before the supervisor exits with `shutdown`. Default 1. */
  readonly intensity?: number;
  /** Milliseconds, an integer > 0 (OTP refuses `infinity`, and so does roster `Infinity`). Default 5000. */
  readonly period?: number;
  /** Default `never`. */
  readonly autoShutdown?: AutoShutdown;
  /** Started in order, stopped in reverse order. */
  readonly children?: readonly ChildSpec[];
}

export interface ChildInfo {
  readonly id: string;
  /** The running child, `restarting` while a failed restart is being retried, or undefined when not running. */
  readonly pid: Pid | 'restarting' | undefined;
  readonly type: ChildType;
}

export interface ChildCounts {
  readonly specs: number;
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

interface Child {
  readonly spec: NormalizedChildSpec;
  pid: Pid | 'restarting' | undefined;
}

interface CheckedSpec {
  readonly strategy: Strategy;
  readonly intensity: number;
  readonly period: number;
  readonly autoShutdown: AutoShutdown;
  readonly children: readonly NormalizedChildSpec[];
}

interface State {
  readonly strategy: Strategy;
  readonly intensity: RestartIntensity;
  readonly autoShutdown: AutoShutdown;
  readonly children: Child[];
  /** What snapshots show of the restarts made. */
  readonly restarts: RestartLog;
}

type Request =
  | { readonly op: 'startChild'; readonly spec: ChildSpec }
  | { readonly op: 'terminateChild' | 'restartChild' | 'deleteChild' | 'getChildSpec'; readonly id: string }
  | { readonly op: 'whichChildren' | 'countChildren' };

/** What the supervisor's own mailbox carries between restart attempts (OTP's `try_again_restart`). */
interface TryAgainRestart {
  readonly op: 'tryAgainRestart';
  readonly id: string;
}

/** A supervisor's answer to a request; a refusal crosses the wire as plain data and is rebuilt by `unwrap`. */
export type Outcome<T> =
  | { readonly ok: T }
  | {
      readonly error: SupervisorErrorCode;
      readonly id: unknown;
      readonly pid?: Pid;
      readonly field?: string;
      readonly detail?: string;
    }
  | { readonly error: 'start_failed'; readonly id: string; readonly reason: ExitReason };

/** A refusal as an outcome. */
export function refusal(error: SupervisorError): Outcome<never> {
  return {
    error: error.code,
    id: error.childId,
    ...(error.pid === undefined ? {} : { pid: error.pid }),
    ...(error.field === undefined ? {} : { field: error.field }),
    ...(error.detail === undefined ? {} : { detail: error.detail }),
  };
}

const STRATEGIES: readonly Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
const AUTO_SHUTDOWNS: readonly AutoShutdown[] = ['never', 'any_significant', 'all_significant'];
const SUPERVISOR_FLAGS = new Set(['strategy', 'intensity', 'period', 'autoShutdown', 'children']);

/** Checks a supervisor spec as OTP does at start: flags, then each child, then duplicate ids. */
function checkSupervisorSpec(spec: unknown, where: string): CheckedSpec {
  const flags = checkFlagKeys(spec, SUPERVISOR_FLAGS, where);
  const strategy = orDefault(flags['strategy'], 'one_for_one');
  if (!STRATEGIES.includes(strategy as Strategy)) {
    throw invalidFlag(where, 'strategy', `strategy must be one_for_one, one_for_all or rest_for_one, got ${String(strategy)}`);
  }
  const { intensity, period } = checkIntensity(flags, 1, where);
  const autoShutdown = orDefault(flags['autoShutdown'], 'never');
  if (!AUTO_SHUTDOWNS.includes(autoShutdown as AutoShutdown)) {
    throw invalidFlag(where, 'autoShutdown', `autoShutdown must be never, any_significant or all_significant, got ${String(autoShutdown)}`);
  }
  const children = orDefault(flags['children'], []);
  if (!Array.isArray(children)) throw invalidFlag(where, 'children', 'children must be an array of child specs');
  const checked = checkSpecs(children, where, autoShutdown !== 'never');
  return { strategy: strategy as Strategy, intensity, period, autoShutdown: autoShutdown as AutoShutdown, children: checked };
}

function checkSpecs(specs: readonly unknown[], where: string, significantAllowed: boolean): NormalizedChildSpec[] {
  const checked = specs.map((child) => normalizeChildSpec(child, where, significantAllowed));
  const ids = new Set<string>();
  for (const child of checked) {
    if (ids.has(child.id)) {
      throw new SupervisorError('invalid_child_spec', child.id, { field: 'id', detail: `${where}: duplicate child id ${JSON.stringify(child.id)}` });
    }
    ids.add(child.id);
  }
  return checked;
}

const SupervisorBehaviour: GenServer<State, CheckedSpec, Request, TryAgainRestart> = {
  async init(spec, self) {
    self.trapExit(true);
    const state: State = {
      strategy: spec.strategy,
      intensity: new RestartIntensity(spec.intensity, spec.period),
      autoShutdown: spec.autoShutdown,
      children: [],
      restarts: new RestartLog(),
    };
    tagProcess(self, 'supervisor', () => describeSupervisor(state));
    for (const child of spec.children) {
      let pid: Pid | undefined;
      try {
        pid = await startChildProcess(child, self);
      } catch (error) {
        await terminateChildren(self, state.children);
        return stop({ shutdown: { failed_to_start_child: child.id, reason: reasonOf(error) } });
      }
      // A temporary child that answered ignore is not kept (OTP drops it).
      if (pid === undefined && child.restart === 'temporary') continue;
      state.children.push({ spec: child, pid });
    }
    return state;
  },

  async handleCall(request, _from, state, self) {
    return reply(await handleRequest(request, state, self), state);
  },

  async handleCast(message, state, self) {
    if (message?.op !== 'tryAgainRestart') return noreply(state);
    const child = state.children.find((candidate) => candidate.spec.id === message.id);
    // Ended meanwhile: terminated, deleted, or restarted with its group.
    if (child?.pid !== 'restarting') return noreply(state);
    return (await restart(state, child, self, 'try_again_restart')) ? noreply(state) : stop('shutdown', state);
  },

  async handleInfo(message, state, self) {
    if (!isExitMessage(message)) return noreply(state);
    const child = state.children.find((candidate) => candidate.pid instanceof Pid && candidate.pid.equals(message.from));
    if (child === undefined) return noreply(state);
    return (await childExited(state, child, message.reason, self)) ? noreply(state) : stop('shutdown', state);
  },

  async terminate(_reason, state, self) {
    await terminateChildren(self, state.children);
  },
};

async function handleRequest(request: Request, state: State, self: Process): Promise<Outcome<unknown>> {
  const find = (id: string): Child | undefined => state.children.find((candidate) => candidate.spec.id === id);
  switch (request.op) {
    case 'startChild': {
      let spec: NormalizedChildSpec;
      try {
        spec = normalizeChildSpec(request.spec, 'Supervisor.startChild', state.autoShutdown !== 'never');
      } catch (error) {
        if (error instanceof SupervisorError) return refusal(error);
        throw error;
      }
      const existing = find(spec.id);
      if (existing !== undefined) {
        return existing.pid instanceof Pid
          ? { error: 'already_started', id: spec.id, pid: existing.pid }
          : { error: 'already_present', id: spec.id };
      }
      const started = await tryStart(spec, self);
      if ('error' in started) return started;
      if (started.ok !== undefined || spec.restart !== 'temporary') state.children.push({ spec, pid: started.ok });
      return started;
    }
    case 'terminateChild': {
      const child = find(request.id);
      if (child === undefined) return { error: 'not_found', id: request.id };
      // A child being restarted is left stopped: its pending retry finds it so and does nothing.
      await stopChild(self, child);
      if (child.spec.restart === 'temporary') removeChild(state, child);
      return { ok: undefined };
    }
    case 'restartChild': {
      const child = find(request.id);
      if (child === undefined) return { error: 'not_found', id: request.id };
      if (child.pid === 'restarting') return { error: 'restarting', id: request.id };
      if (child.pid !== undefined) return { error: 'running', id: request.id };
      const started = await tryStart(child.spec, self);
      if ('ok' in started) child.pid = started.ok;
      return started;
    }
    case 'deleteChild': {
      const child = find(request.id);
      if (child === undefined) return { error: 'not_found', id: request.id };
      if (child.pid === 'restarting') return { error: 'restarting', id: request.id };
      if (child.pid !== undefined) return { error: 'running', id: request.id };
      removeChild(state, child);
      return { ok: undefined };
    }
    case 'getChildSpec': {
      const child = find(request.id);
      return child === undefined ? { error: 'not_found', id: request.id } : { ok: child.spec };
    }
    case 'whichChildren':
      return {
        ok: state.children.map((child): ChildInfo => ({ id: child.spec.id, pid: child.pid, type: child.spec.type })),
      };
    case 'countChildren': {
      const counts: ChildCounts = {
        specs: state.children.length,
        active: state.children.filter((child) => child.pid instanceof Pid).length,
        supervisors: state.children.filter((child) => child.spec.type === 'supervisor').length,
        workers: state.children.filter((child) => child.spec.type === 'worker').length,
      };
      return { ok: counts };
    }
  }
}

/** A child exited on its own; false when the supervisor must now shut down. */
async function childExited(state: State, child: Child, reason: ExitReason, self: Process): Promise<boolean> {
  child.pid = undefined;
  if (shouldRestart(child.spec.restart, reason)) {
    self.logger.warn(`supervisor ${self.pid.key}: child ${child.spec.id} exited (${formatReason(reason)}); restarting`);
    return restart(state, child, self, reason);
  }
  if (child.spec.restart === 'temporary') removeChild(state, child);
  if (child.spec.significant && autoShutdownDue(state)) {
    self.logger.info(`supervisor ${self.pid.key}: significant child ${child.spec.id} exited; shutting down (${state.autoShutdown})`);
    return false;
  }
  return true;
}

/** After a significant child exited by itself: whether `autoShutdown` now stops the supervisor. */
function autoShutdownDue(state: State): boolean {
  if (state.autoShutdown === 'any_significant') return true;
  if (state.autoShutdown === 'all_significant') return !state.children.some((child) => child.spec.significant && child.pid !== undefined);
  return false;
}

/**
 * Restarts `child` with the group its strategy names, counting one restart.
 * The group is stopped (in reverse start order) and started again (in
 * order); when a child of it fails to start, it is marked `restarting` and a
 * retry goes through the mailbox, so calls are answered in between. The
 * retry restarts the failed child's group as a whole again, as OTP's does.
 * False when the intensity is used up.
 */
async function restart(state: State, child: Child, self: Process, reason: ExitReason): Promise<boolean> {
  if (!state.intensity.add()) {
    self.logger.error(`supervisor ${self.pid.key} reached its maximum restart intensity; shutting down`);
    return false;
  }
  state.restarts.record(child.spec.id, reason);
  const index = state.children.indexOf(child);
  const group =
    state.strategy === 'one_for_one' ? [child] : state.strategy === 'one_for_all' ? state.children.slice() : state.children.slice(index);
  // Siblings go down in reverse start order; temporary ones are not brought back.
  const siblings = group.filter((candidate) => candidate !== child);
  await terminateChildren(self, siblings);
  for (const sibling of siblings) if (sibling.spec.restart === 'temporary') removeChild(state, sibling);
  for (const next of group) {
    if (!state.children.includes(next)) continue;
    try {
      next.pid = await startChildProcess(next.spec, self);
    } catch (error) {
      self.logger.error(`supervisor ${self.pid.key}: child ${next.spec.id} failed to restart: ${formatReason(reasonOf(error))}`);
      next.pid = 'restarting';
      self.cast(self.pid, { op: 'tryAgainRestart', id: next.spec.id } satisfies TryAgainRestart);
      return true;
    }
  }
  return true;
}

/** What a snapshot shows of this supervisor (read synchronously, between its callbacks or during one). */
function describeSupervisor(state: State): SupervisorDetails {
  return {
    strategy: state.strategy,
    restarts: state.restarts.count,
    recentRestarts: state.restarts.recent(),
    children: state.children.map((child) => ({
      id: child.spec.id,
      ...(child.pid instanceof Pid ? { pid: child.pid } : {}),
      type: child.spec.type,
      restart: child.spec.restart,
    })),
  };
}

function removeChild(state: State, child: Child): void {
  const index = state.children.indexOf(child);
  if (index >= 0) state.children.splice(index, 1);
}

async function stopChild(self: Process, child: Child): Promise<void> {
  const pid = child.pid;
  child.pid = undefined;
  if (pid instanceof Pid) await shutdownChild(self, pid, child.spec.shutdown);
}

async function terminateChildren(self: Process, children: readonly Child[]): Promise<void> {
  for (const child of [...children].reverse()) await stopChild(self, child);
}

/** Starts a child for a request: a failure is the caller's answer, not the supervisor's crash. */
export async function tryStart(spec: NormalizedChildSpec, self: Process): Promise<Outcome<Pid | undefined>> {
  try {
    return { ok: await startChildProcess(spec, self) };
  } catch (error) {
    return { error: 'start_failed', id: spec.id, reason: reasonOf(error) };
  }
}

export function reasonOf(error: unknown): ExitReason {
  return typeof error === 'object' && error !== null && 'reason' in error ? (error as { reason: ExitReason }).reason : error;
}

export function unwrap<T>(outcome: Outcome<unknown>): T {
  if ('reason' in outcome) throw new StartError(outcome.reason);
  if ('error' in outcome) {
    const details = {
      ...(outcome.pid === undefined ? {} : { pid: outcome.pid }),
      ...(outcome.field === undefined ? {} : { field: outcome.field }),
      ...(outcome.detail === undefined ? {} : { detail: outcome.detail }),
    };
    throw new SupervisorError(outcome.error, outcome.id, details);
  }
  return outcome.ok as T;
}

/** A supervisor request with the caller's timeout; supervisor calls wait forever by default, as OTP's do. */
export async function supervisorCall<T>(caller: Caller, supervisor: Dest, request: unknown, options: CallOptions | undefined): Promise<T> {
  return unwrap<T>(await caller.call<Outcome<unknown>>(supervisor, request, { timeout: options?.timeout ?? Infinity }));
}

export interface ChildOptions {
  readonly name?: StartOptions['name'];
  readonly restart?: RestartType;
  readonly shutdown?: Shutdown;
  readonly significant?: boolean;
}

/** OTP's supervisor: starts, watches and restarts a fixed, ordered set of children. */
export const Supervisor = {
  /**
   * Starts an unlinked supervisor; resolves once every child has started.
   * Rejects with `SupervisorError` (`invalid_supervisor_flags` or
   * `invalid_child_spec`, naming the field) for a bad spec, and with
   * `StartError` (`{ shutdown: { failed_to_start_child, reason } }`) when a child fails to start.
   */
  async start(node: Node, spec: SupervisorSpec, options?: StartOptions): Promise<Pid> {
    return GenServer.start(node, SupervisorBehaviour, checkSupervisorSpec(spec, 'Supervisor.start'), options);
  },

  /** `start`, linked to the calling process `self` (what a parent supervisor's child spec uses). */
  async startLink(self: Process, spec: SupervisorSpec, options?: StartOptions): Promise<Pid> {
    return GenServer.startLink(self, SupervisorBehaviour, checkSupervisorSpec(spec, 'Supervisor.startLink'), options);
  },

  /**
   * Checks child specs as a supervisor would (OTP's `check_childspecs`): the
   * first problem as a `SupervisorError` naming the field, or undefined when
   * they are all valid. With `autoShutdown: 'never'`, significant children are refused.
   */
  checkChildSpecs(specs: readonly ChildSpec[], autoShutdown?: AutoShutdown): SupervisorError | undefined {
    try {
      if (!Array.isArray(specs)) throw invalidFlag('Supervisor.checkChildSpecs', 'children', 'specs must be an array of child specs');
      checkSpecs(specs, 'Supervisor.checkChildSpecs', autoShutdown !== 'never');
      return undefined;
    } catch (error) {
      if (error instanceof SupervisorError) return error;
      throw error;
    }
  },

  /** A worker child running a GenServer behaviour, started with `GenServer.startLink` (an `ignore` from its init is the child's `ignore`). */
  worker<S, A>(id: string, behaviour: IgnorableGenServer<S, A>, args: A, options: ChildOptions = {}): ChildSpec {
    const { name, ...rest } = options;
    return {
      id,
      type: 'worker',
      start: (self) => GenServer.startLink(self, behaviour, args, name === undefined ? {} : { name }),
      ...rest,
    };
  },

  /** A child that is itself a supervisor. */
  supervisor(id: string, spec: SupervisorSpec, options: ChildOptions = {}): ChildSpec {
    const { name, ...rest } = options;
    return {
      id,
      type: 'supervisor',
      start: (self) => Supervisor.startLink(self, spec, name === undefined ? {} : { name }),
      ...rest,
    };
  },

  /**
   * Adds and starts a child. Rejects with `SupervisorError`: `invalid_child_spec`
   * (the supervisor is untouched), `already_started` (carrying the running
   * child's `pid`) or `already_present`; with `StartError` when it fails to start.
   */
  startChild(caller: Caller, supervisor: Dest, spec: ChildSpec, options?: CallOptions): Promise<Pid | undefined> {
    return supervisorCall(caller, supervisor, { op: 'startChild', spec }, options);
  },

  /** Stops a child, keeping its spec (a temporary child's goes); ends a restart loop of it. */
  async terminateChild(caller: Caller, supervisor: Dest, id: string, options?: CallOptions): Promise<void> {
    await supervisorCall(caller, supervisor, { op: 'terminateChild', id }, options);
  },

  /** Starts a stopped child again from its spec; `running` or `restarting` when it is not stopped. */
  restartChild(caller: Caller, supervisor: Dest, id: string, options?: CallOptions): Promise<Pid | undefined> {
    return supervisorCall(caller, supervisor, { op: 'restartChild', id }, options);
  },

  /** Removes a stopped child's spec; `running` or `restarting` when it is not stopped. */
  async deleteChild(caller: Caller, supervisor: Dest, id: string, options?: CallOptions): Promise<void> {
    await supervisorCall(caller, supervisor, { op: 'deleteChild', id }, options);
  },

  /** A child's spec with every default filled in (OTP's `get_childspec`); only within a node (its `start` is a function). */
  getChildSpec(caller: Caller, supervisor: Dest, id: string, options?: CallOptions): Promise<NormalizedChildSpec> {
    return supervisorCall(caller, supervisor, { op: 'getChildSpec', id }, options);
  },

  whichChildren(caller: Caller, supervisor: Dest, options?: CallOptions): Promise<ChildInfo[]> {
    return supervisorCall(caller, supervisor, { op: 'whichChildren' }, options);
  },

  countChildren(caller: Caller, supervisor: Dest, options?: CallOptions): Promise<ChildCounts> {
    return supervisorCall(caller, supervisor, { op: 'countChildren' }, options);
  },
};
