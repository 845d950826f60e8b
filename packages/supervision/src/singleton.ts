/**
 * One instance cluster-wide, under a global name, that fails over: a
 * distributed supervisor of one child named `name`. Start it on every node
 * that may host it; `call(via('globals', name), …)` reaches it from any
 * node. After a partition heals, exactly one instance survives and the other
 * exits with `{ name_conflict: … }` (the registry's `keep-oldest` policy).
 */
import { createHash } from 'node:crypto';
import { nameKey, type Name, type Node, type Pid, type Process, type RestartType } from '@roster/core';
import { DistributedSupervisor } from './distributed-supervisor.js';
import { SupervisionError } from './errors.js';
import type { Placement } from './placement.js';
import type { DistributedChildInfo } from './spec.js';

export interface SingletonSpec {
  /** The instance's global name. */
  readonly name: Name;
  /** The catalogue key of its GenServer behaviour (`node.behaviours.register`). */
  readonly key?: string;
  /** Another name for `key`. */
  readonly behaviour?: string;
  readonly args?: unknown;
  /** Default `permanent`. */
  readonly restart?: RestartType;
  readonly shutdown?: number | 'brutal_kill' | 'infinity';
  /** Default `local_first`: the node that starts first hosts it. */
  readonly placement?: Placement;
  readonly minMembers?: number;
  readonly clusterSize?: number;
  readonly intensity?: number;
  readonly period?: number;
  readonly registry?: string;
  readonly syncTimeout?: number;
  readonly startTimeout?: number;
}

const CHILD_ID = 'singleton';

/** The id of the supervisor behind a singleton: the same on every node, from its name. */
export function singletonId(name: Name): string {
  const key = nameKey(name);
  return key.length <= 180 ? `singleton:${key}` : `singleton:${createHash('sha256').update(key).digest('hex')}`;
}

function toSupervisorSpec(where: string, spec: SingletonSpec) {
  if (typeof spec !== 'object' || spec === null) throw new SupervisionError('invalid_spec', `${where}: spec must be an object`, 'spec');
  const { name, key, behaviour, args, restart, shutdown, placement, ...supervisor } = spec;
  if (name === undefined) throw new SupervisionError('invalid_spec', `${where}: name is required`, 'name');
  let id: string;
  try {
    id = singletonId(name);
  } catch (error) {
    throw new SupervisionError('invalid_spec', `${where}: name: ${(error as Error).message}`, 'name', { cause: error });
  }
  const child = {
    id: CHILD_ID,
    name,
    ...(key === undefined ? {} : { key }),
    ...(behaviour === undefined ? {} : { behaviour }),
    ...(args === undefined ? {} : { args }),
    ...(restart === undefined ? {} : { restart }),
    ...(shutdown === undefined ? {} : { shutdown }),
  };
  return { id, placement: placement ?? 'local_first', children: [child], ...supervisor };
}

export const Singleton = {
  /** Starts this node's member of the singleton; resolves with the member's pid (not the instance's: see `whereis`). */
  start(node: Node, spec: SingletonSpec): Promise<Pid> {
    return DistributedSupervisor.start(node, toSupervisorSpec('Singleton.start', spec));
  },

  startLink(self: Process, spec: SingletonSpec): Promise<Pid> {
    return DistributedSupervisor.startLink(self, toSupervisorSpec('Singleton.startLink', spec));
  },

  /** Where the instance runs now, as this node's member sees it. */
  async where(node: Node, name: Name): Promise<DistributedChildInfo | undefined> {
    const children = await DistributedSupervisor.whichChildren(node, singletonId(name));
    return children.find((child) => child.id === CHILD_ID);
  },

  /** Moves the instance to `to`, with its handoff state. */
  migrate(node: Node, name: Name, to: string) {
    return DistributedSupervisor.migrate(node, singletonId(name), CHILD_ID, to);
  },

  /** Stops this node's member (a graceful stop: the instance hands over if it ran here). */
  stop(node: Node, name: Name): Promise<void> {
    return DistributedSupervisor.stop(node, singletonId(name));
  },

  events(node: Node, name: Name) {
    return DistributedSupervisor.events(node, singletonId(name));
  },
};
