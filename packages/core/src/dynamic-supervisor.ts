/**
 * OTP's `simple_one_for_one`, shaped like Elixir's DynamicSupervisor: children
 * are started on demand, each from its own spec, and restarted one for one.
 *
 * Failure behaviour: a bad spec or flag is the caller's `SupervisorError`; a
 * child that fails to restart is retried through the supervisor's mailbox
 * (`restarting` meanwhile, calls answered in between), each attempt counting
 * against the intensity; past it the supervisor stops its children and exits
 * with `shutdown`.
 */
import { SupervisorError } from './errors.js';
import { isExitMessage, formatReason, type ExitReason } from './exit-reason.js';
import { GenServer, type Caller, type StartOptions } from './gen-server.js';
import { noreply, reply, stop } from './gen-server-callbacks.js';
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
  shutdownChildren,
  startChildProcess,
  type ChildSpec,
  type NormalizedChildSpec,
} from './internal/child-lifecycle.js';
import { checkFlagKeys, checkIntensity, invalidFlag } from './internal/supervisor-flags.js';
import { RestartLog, tagProcess } from './internal/introspect.js';
import type { SupervisorDetails } from './introspection.js';
import { reasonOf, refusal, supervisorCall, tryStart, type ChildCounts, type ChildInfo, type Outcome } from './supervisor.js';

export interface DynamicSupervisorSpec {
  /** Restarts allowed within `period` (an integer >= 0) before the supervisor exits with `shutdown`. Default 3. */
  readonly intensity?: number;
  /** Milliseconds, an integer > 0. Default 5000. */
  readonly period?: number;
  /** Most children at once (an integer >= 0, or Infinity); `startChild` beyond it fails with `max_children`. Default: no limit. */
  readonly maxChildren?: number;
}

interface CheckedSpec {
  readonly intensity: number;
  readonly period: number;
  readonly maxChildren: number;
}

interface Child {
  /** The running child, or `restarting` while a failed restart is retried. */
  pid: Pid | 'restarting';
  /** The pid the child is known by in `byPid`: its first pid, or the one it had when its restart failed. */
  key: string;
  readonly spec: NormalizedChildSpec;
}

/**
 * Pids of children that are gone, so `terminateChild` of one answers ok as
 * OTP's does for a former child. Bounded: past it the oldest are forgotten
 * (and answer `not_found`, as a pid that never was a child).
 */
const FORMER_CHILDREN_KEPT = 4096;

interface State {
  readonly intensity: RestartIntensity;
  readonly maxChildren: number;
  /** In start order. */
  readonly children: Set<Child>;
  readonly byPid: Map<string, Child>;
  readonly former: Set<string>;
  /** What snapshots show of the restarts made. */
  readonly restarts: RestartLog;
}

type Request =
  | { readonly op: 'startChild'; readonly spec: ChildSpec }
  | { readonly op: 'terminateChild'; readonly pid: Pid }
  | { readonly op: 'whichChildren' | 'countChildren' };

interface TryAgainRestart {
  readonly op: 'tryAgainRestart';
  readonly key: string;
}

const DYNAMIC_FLAGS = new Set(['intensity', 'period', 'maxChildren']);

function checkDynamicSpec(spec: unknown, where: string): CheckedSpec {
  const flags = checkFlagKeys(spec, DYNAMIC_FLAGS, where);
  const { intensity, period } = checkIntensity(flags, 3, where);
  const maxChildren = orDefault(flags['maxChildren'], Infinity);
  if (!(maxChildren === Infinity || (Number.isInteger(maxChildren) && (maxChildren as number) >= 0))) {
    throw invalidFlag(where, 'maxChildren', `maxChildren must be an integer >= 0 or Infinity, got ${String(maxChildren)}`);
  }
  return { intensity, period, maxChildren: maxChildren as number };
}

function forget(state: State, child: Child): void {
  state.children.delete(child);
  state.byPid.delete(child.key);
  remember(state, child.key);
}

function remember(state: State, key: string): void {
  state.former.add(key);
  if (state.former.size > FORMER_CHILDREN_KEPT) state.former.delete(state.former.values().next().value!);
}

/** Restarts `child` (one attempt, counted); a failure marks it `restarting` and retries through the mailbox. False when the intensity is used up. */
async function restart(state: State, child: Child, self: Process, reason: ExitReason): Promise<boolean> {
  if (!state.intensity.add()) {
    self.logger.error(`dynamic supervisor ${self.pid.key} reached its maximum restart intensity; shutting down`);
    return false;
  }
  state.restarts.record(child.spec.id, reason);
  let pid: Pid | undefined;
  try {
    pid = await startChildProcess(child.spec, self);
  } catch (error) {
    self.logger.error(`dynamic supervisor ${self.pid.key}: child ${child.spec.id} failed to restart: ${formatReason(reasonOf(error))}`);
    child.pid = 'restarting';
    self.cast(self.pid, { op: 'tryAgainRestart', key: child.key } satisfies TryAgainRestart);
    return true;
  }
  if (pid === undefined) {
    forget(state, child);
    return true;
  }
  state.byPid.delete(child.key);
  remember(state, child.key);
  child.pid = pid;
  child.key = pid.key;
  state.byPid.set(pid.key, child);
  return true;
}

/** What a snapshot shows of this supervisor. */
function describeDynamic(state: State): SupervisorDetails {
  return {
    strategy: 'simple_one_for_one',
    restarts: state.restarts.count,
    recentRestarts: state.restarts.recent(),
    children: [...state.children].map((child) => ({
      id: child.spec.id,
      ...(child.pid instanceof Pid ? { pid: child.pid } : {}),
      type: child.spec.type,
      restart: child.spec.restart,
    })),
  };
}

const DynamicSupervisorBehaviour: GenServer<State, CheckedSpec, Request, TryAgainRestart> = {
  init(spec, self) {
    self.trapExit(true);
    const state: State = {
      intensity: new RestartIntensity(spec.intensity, spec.period),
      maxChildren: spec.maxChildren,
      children: new Set(),
      byPid: new Map(),
      former: new Set(),
      restarts: new RestartLog(),
    };
    tagProcess(self, 'dynamic_supervisor', () => describeDynamic(state));
    return state;
  },

  async handleCall(request, _from, state, self) {
    switch (request.op) {
      case 'startChild': {
        let spec: NormalizedChildSpec;
        try {
          // No autoShutdown here (as in OTP's simple_one_for_one): a significant child is refused.
          spec = normalizeChildSpec(request.spec, 'DynamicSupervisor.startChild', false);
        } catch (error) {
          if (error instanceof SupervisorError) return reply(refusal(error), state);
          throw error;
        }
        if (state.children.size >= state.maxChildren) return reply({ error: 'max_children', id: spec.id }, state);
        const started = await tryStart(spec, self);
        if ('ok' in started && started.ok !== undefined) {
          const child: Child = { pid: started.ok, key: started.ok.key, spec };
          state.children.add(child);
          state.byPid.set(child.key, child);
        }
        return reply(started, state);
      }
      case 'terminateChild': {
        const key = request.pid instanceof Pid ? request.pid.key : String(request.pid);
        const child = state.byPid.get(key);
        if (child === undefined) {
          return reply(state.former.has(key) ? { ok: undefined } : { error: 'not_found', id: key }, state);
        }
        forget(state, child);
        if (child.pid instanceof Pid) await shutdownChild(self, child.pid, child.spec.shutdown);
        return reply({ ok: undefined }, state);
      }
      case 'whichChildren':
        return reply(
          { ok: [...state.children].map((child): ChildInfo => ({ id: child.spec.id, pid: child.pid, type: child.spec.type })) },
          state,
        );
      case 'countChildren': {
        const children = [...state.children];
        // Elixir's DynamicSupervisor: every child has its own spec, so `specs` counts one per child.
        const counts: ChildCounts = {
          specs: children.length,
          active: children.filter((child) => child.pid instanceof Pid).length,
          supervisors: children.filter((child) => child.spec.type === 'supervisor').length,
          workers: children.filter((child) => child.spec.type === 'worker').length,
        };
        return reply({ ok: counts }, state);
      }
    }
  },

  async handleCast(message, state, self) {
    if (message?.op !== 'tryAgainRestart') return noreply(state);
    const child = state.byPid.get(message.key);
    if (child?.pid !== 'restarting') return noreply(state);
    return (await restart(state, child, self, 'try_again_restart')) ? noreply(state) : stop('shutdown', state);
  },

  async handleInfo(message, state, self) {
    if (!isExitMessage(message)) return noreply(state);
    const child = state.byPid.get(message.from.key);
    if (child === undefined || !(child.pid instanceof Pid)) return noreply(state);
    if (!shouldRestart(child.spec.restart, message.reason)) {
      forget(state, child);
      return noreply(state);
    }
    return (await restart(state, child, self, message.reason)) ? noreply(state) : stop('shutdown', state);
  },

  async terminate(_reason, state, self) {
    // Children of a dynamic supervisor have no order among them: stop them all at once, as Elixir's does.
    // (One receive loop for all of them: concurrent shutdownChild calls would each wait in a receive of their own.)
    const running: { pid: Pid; shutdown: NormalizedChildSpec['shutdown'] }[] = [];
    for (const child of state.children) if (child.pid instanceof Pid) running.push({ pid: child.pid, shutdown: child.spec.shutdown });
    await shutdownChildren(self, running);
  },
};

/**
 * Starts children on demand and restarts them one for one (`simple_one_for_one`).
 * It follows Elixir's DynamicSupervisor where the two differ: each `startChild`
 * brings its own spec, so `countChildren().specs` counts one per child (OTP's
 * simple_one_for_one, with its one shared spec, answers 1).
 */
export const DynamicSupervisor = {
  /** Rejects with `SupervisorError('invalid_supervisor_flags')`, naming the flag, for a bad spec. */
  async start(node: Node, spec: DynamicSupervisorSpec = {}, options?: StartOptions): Promise<Pid> {
    return GenServer.start(node, DynamicSupervisorBehaviour, checkDynamicSpec(spec, 'DynamicSupervisor.start'), options);
  },

  async startLink(self: Process, spec: DynamicSupervisorSpec = {}, options?: StartOptions): Promise<Pid> {
    return GenServer.startLink(self, DynamicSupervisorBehaviour, checkDynamicSpec(spec, 'DynamicSupervisor.startLink'), options);
  },

  /**
   * Starts a child; resolves with its pid, or undefined when it answered
   * ignore. Rejects with `SupervisorError` (`invalid_child_spec`,
   * `max_children`) or `StartError`.
   */
  startChild(caller: Caller, supervisor: Dest, spec: ChildSpec, options?: CallOptions): Promise<Pid | undefined> {
    return supervisorCall(caller, supervisor, { op: 'startChild', spec }, options);
  },

  /** Stops a child; resolves for a former child too, rejects with `not_found` for a pid that never was one. */
  async terminateChild(caller: Caller, supervisor: Dest, pid: Pid, options?: CallOptions): Promise<void> {
    if (!(pid instanceof Pid)) throw new TypeError(`DynamicSupervisor.terminateChild: pid must be a Pid, got ${typeof pid}`);
    await supervisorCall(caller, supervisor, { op: 'terminateChild', pid }, options);
  },

  whichChildren(caller: Caller, supervisor: Dest, options?: CallOptions): Promise<ChildInfo[]> {
    return supervisorCall(caller, supervisor, { op: 'whichChildren' }, options);
  },

  countChildren(caller: Caller, supervisor: Dest, options?: CallOptions): Promise<ChildCounts> {
    return supervisorCall(caller, supervisor, { op: 'countChildren' }, options);
  },
};
