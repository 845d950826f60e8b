import { isExitMessage, formatReason } from './exit-reason.js';
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
  shutdownChildren,
  validateIntensity,
  type ChildSpec,
  type NormalizedChildSpec,
} from './internal/child-lifecycle.js';
import { tryStart, unwrap, type ChildCounts, type ChildInfo, type Outcome } from './supervisor.js';

export interface DynamicSupervisorSpec {
  /** Restarts allowed within `period` before the supervisor exits with `shutdown`. Default 3. */
  readonly intensity?: number;
  /** Milliseconds. Default 5000. */
  readonly period?: number;
  /** Most children at once; `startChild` beyond it fails with `max_children`. Default: no limit. */
  readonly maxChildren?: number;
}

interface State {
  readonly intensity: RestartIntensity;
  readonly maxChildren: number;
  /** Keyed by pid, in start order. */
  readonly children: Map<string, { pid: Pid; readonly spec: NormalizedChildSpec }>;
}

type Request =
  | { readonly op: 'startChild'; readonly spec: ChildSpec }
  | { readonly op: 'terminateChild'; readonly pid: Pid }
  | { readonly op: 'whichChildren' | 'countChildren' };

const DynamicSupervisorBehaviour: GenServer<State, DynamicSupervisorSpec, Request> = {
  init(spec, self) {
    const intensity = spec.intensity ?? 3;
    const period = spec.period ?? 5000;
    validateIntensity(intensity, period, 'DynamicSupervisor');
    const maxChildren = spec.maxChildren ?? Infinity;
    if (!(maxChildren >= 0)) throw new TypeError('DynamicSupervisor: maxChildren must be a number >= 0');
    self.trapExit(true);
    return { intensity: new RestartIntensity(intensity, period), maxChildren, children: new Map() };
  },

  async handleCall(request, _from, state, self) {
    switch (request.op) {
      case 'startChild': {
        const spec = normalizeChildSpec(request.spec, 'DynamicSupervisor.startChild');
        if (state.children.size >= state.maxChildren) return reply({ error: 'max_children', id: spec.id }, state);
        const started = await tryStart(spec, self);
        if ('ok' in started && started.ok !== undefined) state.children.set(started.ok.key, { pid: started.ok, spec });
        return reply(started, state);
      }
      case 'terminateChild': {
        const child = state.children.get(request.pid.key);
        if (child === undefined) return reply({ error: 'not_found', id: request.pid.key }, state);
        state.children.delete(request.pid.key);
        await shutdownChild(self, child.pid, child.spec.shutdown);
        return reply({ ok: undefined }, state);
      }
      case 'whichChildren':
        return reply(
          { ok: [...state.children.values()].map((child): ChildInfo => ({ id: child.spec.id, pid: child.pid, type: child.spec.type })) },
          state,
        );
      case 'countChildren': {
        const children = [...state.children.values()];
        const counts: ChildCounts = {
          specs: children.length,
          active: children.length,
          supervisors: children.filter((child) => child.spec.type === 'supervisor').length,
          workers: children.filter((child) => child.spec.type === 'worker').length,
        };
        return reply({ ok: counts }, state);
      }
    }
  },

  async handleInfo(message, state, self) {
    if (!isExitMessage(message)) return noreply(state);
    const child = state.children.get(message.from.key);
    if (child === undefined) return noreply(state);
    state.children.delete(message.from.key);
    if (!shouldRestart(child.spec.restart, message.reason)) return noreply(state);
    for (;;) {
      if (!state.intensity.add()) {
        self.logger.error(`dynamic supervisor ${self.pid.key} reached its maximum restart intensity; shutting down`);
        return stop('shutdown', state);
      }
      const started = await tryStart(child.spec, self);
      if ('ok' in started) {
        if (started.ok !== undefined) state.children.set(started.ok.key, { pid: started.ok, spec: child.spec });
        return noreply(state);
      }
      self.logger.error(`dynamic supervisor ${self.pid.key}: child ${child.spec.id} failed to restart: ${formatReason(started.error)}`);
    }
  },

  async terminate(_reason, state, self) {
    // Children of a dynamic supervisor have no order among them: stop them all at once, as Elixir's does.
    // (One receive loop for all of them: concurrent shutdownChild calls would each wait in a receive of their own.)
    await shutdownChildren(self, [...state.children.values()].map((child) => ({ pid: child.pid, shutdown: child.spec.shutdown })));
  },
};

/** Starts children on demand and restarts them one for one (`simple_one_for_one`, Elixir's DynamicSupervisor). */
export const DynamicSupervisor = {
  start(node: Node, spec: DynamicSupervisorSpec = {}, options?: StartOptions): Promise<Pid> {
    return GenServer.start(node, DynamicSupervisorBehaviour, spec, options);
  },

  startLink(self: Process, spec: DynamicSupervisorSpec = {}, options?: StartOptions): Promise<Pid> {
    return GenServer.startLink(self, DynamicSupervisorBehaviour, spec, options);
  },

  async startChild(caller: Caller, supervisor: Dest, spec: ChildSpec): Promise<Pid | undefined> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'startChild', spec }, { timeout: Infinity }));
  },

  async terminateChild(caller: Caller, supervisor: Dest, pid: Pid): Promise<void> {
    unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'terminateChild', pid }, { timeout: Infinity }));
  },

  async whichChildren(caller: Caller, supervisor: Dest): Promise<ChildInfo[]> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'whichChildren' }, { timeout: Infinity }));
  },

  async countChildren(caller: Caller, supervisor: Dest): Promise<ChildCounts> {
    return unwrap(await caller.call<Outcome<unknown>>(supervisor, { op: 'countChildren' }, { timeout: Infinity }));
  },
};
