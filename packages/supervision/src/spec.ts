/**
 * The specs, child view and events of cluster-wide supervision: a leaf
 * module both the public verbs and the member machinery read.
 */
import type { CallResult, CastResult, ExitReason, GenServer, InitResult, Name, Pid, Process, RestartType } from '@roster/core';
import type { Epoch } from '@roster/globals';
import type { Placement } from './placement.js';

/** A child of a distributed supervisor. Everything but a function `placement` crosses the wire. */
export interface DistributedChildSpec {
  /** Unique within the supervisor. */
  readonly id: string;
  /** The key its GenServer behaviour is registered under (`node.behaviours.register(key, behaviour)`) on the nodes that may host it. */
  readonly behaviour?: string;
  /** Another name for `behaviour` (the catalogue key); give one of the two. */
  readonly key?: string;
  /** Given to `init`; must cross the wire (JSON values, pids, refs). */
  readonly args?: unknown;
  /** OTP's restart type. Default `permanent`. A `temporary` child that was running on a lost node is gone; the others start again elsewhere. */
  readonly restart?: RestartType;
  /** Milliseconds `terminate` may take, `brutal_kill` or `infinity`. Default 5000. */
  readonly shutdown?: number | 'brutal_kill' | 'infinity';
  /** Where it runs; default the supervisor's `placement`. */
  readonly placement?: Placement;
  /** Its global name; default `[supervisorId, childId]`. At most one process holds it among connected nodes. */
  readonly name?: Name;
}

export interface DistributedSupervisorSpec {
  /** The supervisor's id, the same on every participating node. */
  readonly id: string;
  /**
   * Only `one_for_one`: children live on different nodes, and restarting a
   * group across nodes would tie each node's failures to the others'.
   */
  readonly strategy?: 'one_for_one';
  /** Restarts of crashed children a member allows within `period` before it stops its children and exits with `shutdown` (OTP). Default 3. */
  readonly intensity?: number;
  /** Milliseconds. Default 5000. */
  readonly period?: number;
  /** Started at the first member that sees none of them recorded; the same list on every member. */
  readonly children?: readonly DistributedChildSpec[];
  /** Default placement of the children. Default `round_robin`. */
  readonly placement?: Placement;
  /**
   * Quorum: with fewer connected members than this (this one included), a
   * member starts no child, so the minority side of a partition starts no
   * duplicate. Default 1.
   */
  readonly minMembers?: number;
  /** A declared cluster size: the quorum is then a majority of it (it overrides `minMembers` when larger). */
  readonly clusterSize?: number;
  /** The registry key the children's names go through. Default `globals` (a `GlobalsRegistry`). */
  readonly registry?: string;
  /** How long a starting member waits for the other members' view of the children. Default 2000 ms. */
  readonly syncTimeout?: number;
  /** Milliseconds a child's `init` may take. Default 5000. */
  readonly startTimeout?: number;
}

/** What a child's `init` receives as its third argument. */
export interface ChildContext {
  readonly supervisor: string;
  readonly childId: string;
  /** The child's global name. */
  readonly name: Name;
  /** The epoch of this instance's claim on its name: younger for every new instance, a fencing token for external stores. */
  readonly epoch: Epoch | undefined;
  /** What the previous instance's `handoff` returned (a graceful stop or a `migrate`); undefined after a crash or a loss. */
  readonly handoff: unknown;
}

type Maybe<T> = T | Promise<T>;

/**
 * A GenServer behaviour a distributed supervisor can run. `init` also gets a
 * {@link ChildContext}; `handoff`, when present, returns the state its
 * successor's `init` receives on a graceful stop or a `migrate` (it must
 * cross the wire).
 */
export interface DistributedBehaviour<State, Args = any> extends GenServer<State, Args> {
  init(args: Args, self: Process, context?: ChildContext): Maybe<InitResult<State>>;
  handoff?(state: State, self: Process): unknown;
  handleCall?(request: any, from: any, state: State, self: Process): Maybe<CallResult<State>>;
  handleCast?(message: any, state: State, self: Process): Maybe<CastResult<State>>;
}

/** Where a child is, as every member sees it (converging). */
export type ChildState = 'assigned' | 'running' | 'stopped' | 'deleted';

/** One child as `whichChildren` answers it, cluster-wide. */
export interface DistributedChildInfo {
  readonly id: string;
  readonly name: Name;
  readonly behaviour: string;
  readonly restart: RestartType;
  /** `assigned`: placed on `node` and starting (or waiting for quorum); `running`; `stopped` (terminated or exited, not to restart). */
  readonly state: Exclude<ChildState, 'deleted'>;
  readonly node: string | undefined;
  readonly pid: Pid | undefined;
  /** Times it was started again (crash restarts and failovers). */
  readonly restarts: number;
}

export interface DistributedChildCounts {
  readonly specs: number;
  readonly active: number;
  /** Active children by node. */
  readonly byNode: Readonly<Record<string, number>>;
}

/** What a member sees happen, cluster-wide, as its view changes. */
export interface DistributedSupervisorEvents {
  /** A child runs for the first time. */
  started: (child: DistributedChildInfo) => void;
  /** A child runs again on the node it ran on (after a crash). */
  restarted: (child: DistributedChildInfo) => void;
  /** A child runs on another node than before (`from`): a failover, a handoff or a `migrate`. */
  migrated: (child: DistributedChildInfo, from: string) => void;
  /** A child stopped for good (terminated, exited normally as `transient`, or deleted); `reason` when it exited. */
  stopped: (child: DistributedChildInfo, reason: ExitReason | undefined) => void;
  /** A member was lost (its node down or its member gone), with the ids of the children it held. */
  nodeLost: (node: string, children: readonly string[]) => void;
  /** A member joined this one's view and said what it hosts: placement may choose it from now on. */
  memberUp: (node: string) => void;
}
