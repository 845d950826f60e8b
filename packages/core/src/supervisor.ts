import { StartError, SupervisorError } from './errors.js';
import { formatReason, isExitMessage, type ExitReason } from './exit-reason.js';
import { GenServer, noreply, reply, stop, type Caller, type StartOptions } from './gen-server.js';
import type { Dest } from './dest.js';
import type { Node } from './node.js';
import type { Pid } from './pid.js';
import type { Process } from './process.js';
import {
  normalizeChildSpec,
  RestartIntensity,
  shouldRestart,
  shutdownChild,
  validateIntensity,
  type ChildSpec,
  type ChildType,
  type NormalizedChildSpec,
  type RestartType,
  type Shutdown,
} from './internal/child-lifecycle.js';

export type { ChildSpec, ChildType, RestartType, Shutdown } from './internal/child-lifecycle.js';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

export interface SupervisorSpec {
  /** Default `one_for_one`. */
  readonly strategy?: Strategy;
  /** Restarts allowed within `period` before the supervisor exits with `shutdown`. Default 1. */
  readonly intensity?: number;
  /** Milliseconds. Default 5000. */
  readonly period?: number;
  /** Started in order, stopped in reverse order. */
  readonly children?: readonly ChildSpec[];
}

export interface ChildInfo {
  readonly id: string;
  /** The running child, `restarting`, or undefined when not running. */
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
  spec: NormalizedChildSpec;
  pid: Pid | undefined;
}

interface State {
  readonly strategy: Strategy;
  readonly intensity: RestartIntensity;
  readonly children: Child[];
}

type Request =
  | { readonly op: 'startChild'; readonly spec: ChildSpec }
  | { readonly op: 'terminateChild' | 'restartChild' | 'deleteChild'; readonly id: string }
  | { readonly op: 'whichChildren' | 'countChildren' };

export type Outcome<T> =
  | { readonly ok: T }
  | { readonly error: SupervisorError['code']; readonly id: string }
  | { readonly error: 'start_failed'; readonly id: string; readonly reason: ExitReason };

/** Thrown inside the supervisor when it must give up: the restart intensity was exceeded. */
class GiveUp {}

const SupervisorBehaviour: GenServer<State, SupervisorSpec, Request> = {
  async init(spec, self) {
    const strategy = spec.strategy ?? 'one_for_one';
    if (strategy !== 'one_for_one' && strategy !== 'one_for_all' && strategy !== 'rest_for_one') {
      throw new TypeError(`Supervisor: strategy must be one_for_one, one_for_all or rest_for_one, got ${String(strategy)}`);
    }
    const intensity = spec.intensity ?? 1;
    const period = spec.period ?? 5000;
    validateIntensity(intensity, period, 'Supervisor');
    const specs = (spec.children ?? []).map((child) => normalizeChildSpec(child, 'Supervisor'));
    const ids = new Set<string>();
    for (const child of specs) {
      if (ids.has(child.id)) throw new TypeError(`Supervisor: duplicate child id ${JSON.stringify(child.id)}`);
      ids.add(child.id);
    }
    self.trapExit(true);
    const state: State = { strategy, intensity: new RestartIntensity(intensity, period), children: [] };
    for (const child of specs) {
      let pid: Pid | undefined;
      try {
        pid = await child.start(self);
      } catch (error) {
        await terminateChildren(self, state.children);
        return stop({ shutdown: { failed_to_start_child: child.id, reason: reasonOf(error) } });
      }
      state.children.push({ spec: child, pid });
    }
    return state;
  },

  async handleCall(request, _from, state, self) {
    return reply(await handleRequest(request, state, self), state);
  },

  async handleInfo(message, state, self) {
    if (!isExitMessage(message)) return noreply(state);
    const child = state.children.find((candidate) => candidate.pid?.equals(message.from) === true);
    if (child === undefined) return noreply(state);
    try {
      await childExited(state, child, message.reason, self);
    } catch (error) {
      if (error instanceof GiveUp) {
        self.logger.error(`supervisor ${self.pid.key} reached its maximum restart intensity; shutting down`);
        return stop('shutdown', state);
      }
      throw error;
    }
    return noreply(state);
  },

  async terminate(_reason, state, self) {
    await terminateChildren(self, state.children);
  },
};

async function handleRequest(request: Request, state: State, self: Process): Promise<Outcome<unknown>> {
  switch (request.op) {
    case 'startChild': {
      const spec = normalizeChildSpec(request.spec, 'Supervisor.startChild');
      const existing = state.children.find((child) => child.spec.id === spec.id);
      if (existing !== undefined) return { error: existing.pid ? 'running' : 'already_present', id: spec.id };
      const started = await tryStart(spec, self);
      if ('error' in started) return started;
      state.children.push({ spec, pid: started.ok });
      return started;
    }
    case 'terminateChild': {
      const child = state.children.find((candidate) => candidate.spec.id === request.id);
      if (child === undefined) return { error: 'not_found', id: request.id };
      await stopChild(self, child);
      if (child.spec.restart === 'temporary') state.children.splice(state.children.indexOf(child), 1);
      return { ok: undefined };
    }
    case 'restartChild': {
      const child = state.children.find((candidate) => candidate.spec.id === request.id);
      if (child === undefined) return { error: 'not_found', id: request.id };
      if (child.pid !== undefined) return { error: 'running', id: request.id };
      const started = await tryStart(child.spec, self);
      if ('ok' in started) child.pid = started.ok;
      return started;
    }
    case 'deleteChild': {
      const index = state.children.findIndex((candidate) => candidate.spec.id === request.id);
      if (index < 0) return { error: 'not_found', id: request.id };
      if (state.children[index]!.pid !== undefined) return { error: 'running', id: request.id };
      state.children.splice(index, 1);
      return { ok: undefined };
    }
    case 'whichChildren':
      return {
        ok: state.children.map((child): ChildInfo => ({ id: child.spec.id, pid: child.pid, type: child.spec.type })),
      };
    case 'countChildren': {
      const counts: ChildCounts = {
        specs: state.children.length,
        active: state.children.filter((child) => child.pid !== undefined).length,
        supervisors: state.children.filter((child) => child.spec.type === 'supervisor').length,
        workers: state.children.filter((child) => child.spec.type === 'worker').length,
      };
      return { ok: counts };
    }
  }
}

async function childExited(state: State, child: Child, reason: ExitReason, self: Process): Promise<void> {
  child.pid = undefined;
  if (!shouldRestart(child.spec.restart, reason)) {
    if (child.spec.restart === 'temporary') state.children.splice(state.children.indexOf(child), 1);
    return;
  }
  if (!state.intensity.add()) throw new GiveUp();
  self.logger.warn(`supervisor ${self.pid.key}: child ${child.spec.id} exited (${formatReason(reason)}); restarting`);
  const index = state.children.indexOf(child);
  let toRestart: Child[];
  switch (state.strategy) {
    case 'one_for_one':
      toRestart = [child];
      break;
    case 'one_for_all':
      toRestart = state.children.slice();
      break;
    case 'rest_for_one':
      toRestart = state.children.slice(index);
      break;
  }
  // Siblings go down in reverse start order; temporary ones are not brought back.
  const siblings = toRestart.filter((candidate) => candidate !== child);
  await terminateChildren(self, siblings);
  for (const sibling of siblings) {
    if (sibling.spec.restart === 'temporary') state.children.splice(state.children.indexOf(sibling), 1);
  }
  for (const next of toRestart) {
    if (!state.children.includes(next)) continue;
    await startWithRetry(state, next, self);
  }
}

/** A failed restart counts against the intensity and is tried again, as in OTP. */
async function startWithRetry(state: State, child: Child, self: Process): Promise<void> {
  for (;;) {
    try {
      child.pid = await child.spec.start(self);
      return;
    } catch (error) {
      self.logger.error(`supervisor ${self.pid.key}: child ${child.spec.id} failed to restart: ${formatReason(reasonOf(error))}`);
      if (!state.intensity.add()) throw new GiveUp();
    }
  }
}

async function stopChild(self: Process, child: Child): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  child.pid = undefined;
  await shutdownChild(self, pid, child.spec.shutdown);
}

async function terminateChildren(self: Process, children: readonly Child[]): Promise<void> {
  for (const child of [...children].reverse()) await stopChild(self, child);
}

/** Starts a child for a request: a failure is the caller's answer, not the supervisor's crash. */
export async function tryStart(spec: NormalizedChildSpec, self: Process): Promise<Outcome<Pid | undefined>> {
  try {
    return { ok: await spec.start(self) };
  } catch (error) {
    return { error: 'start_failed', id: spec.id, reason: reasonOf(error) };
  }
}

export function reasonOf(error: unknown): ExitReason {
  return typeof error === 'object' && error !== null && 'reason' in error ? (error as { reason: ExitReason }).reason : error;
}

export function unwrap<T>(outcome: Outcome<unknown>): T {
  if ('reason' in outcome) throw new StartError(outcome.reason);
  if ('error' in outcome) throw new SupervisorError(outcome.error, outcome.id);
  return outcome.ok as T;
}

export interface ChildOptions {
  readonly name?: StartOptions['name'];
  readonly restart?: RestartType;
  readonly shutdown?: Shutdown;
}

/** OTP's supervisor: starts, watches and restarts a fixed, ordered set of children. */
export const Supervisor = {
  start(node: Node, spec: SupervisorSpec, options?: StartOptions): Promise<Pid> {
    return GenServer.start(node, SupervisorBehaviour, spec, options);
  },

  startLink(self: Process, spec: SupervisorSpec, options?: StartOptions): Promise<Pid> {
    return GenServer.startLink(self, SupervisorBehaviour, spec, options);
  },

  /** A worker child running a GenServer behaviour, started with `GenServer.startLink`. */
  worker<S, A>(id: string, behaviour: GenServer<S, A>, args: A, options: ChildOptions = {}): ChildSpec {
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

  async startChild(caller: Caller, supervisor: Dest, spec: ChildSpec): Promise<Pid | undefined> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'startChild', spec }, { timeout: Infinity }));
  },

  async terminateChild(caller: Caller, supervisor: Dest, id: string): Promise<void> {
    unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'terminateChild', id }, { timeout: Infinity }));
  },

  async restartChild(caller: Caller, supervisor: Dest, id: string): Promise<Pid | undefined> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'restartChild', id }, { timeout: Infinity }));
  },

  async deleteChild(caller: Caller, supervisor: Dest, id: string): Promise<void> {
    unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'deleteChild', id }, { timeout: Infinity }));
  },

  async whichChildren(caller: Caller, supervisor: Dest): Promise<ChildInfo[]> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'whichChildren' }, { timeout: Infinity }));
  },

  async countChildren(caller: Caller, supervisor: Dest): Promise<ChildCounts> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'countChildren' }, { timeout: Infinity }));
  },
};
