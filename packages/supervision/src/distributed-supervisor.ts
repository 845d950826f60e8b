/**
 * A supervisor whose children live anywhere in the cluster: one member per
 * participating node, a converging view of the children, each child under a
 * global name so at most one instance runs among connected nodes.
 *
 * **When to use:** work that must run somewhere, once, and keep running when
 * its node goes: a scheduler, a partition owner, a connection to an
 * external system. For work that should run on every node, use a local
 * `Supervisor` on each.
 *
 * **Failure behaviour:**
 * - A child that crashes is restarted on its node by its member, by its
 *   restart type, within the member's restart intensity (past it, the member
 *   stops its children and exits with `shutdown`; the others take them over).
 * - A node lost (or its member gone): the leader (the member with the
 *   smallest node name) places each of its children on a survivor; a
 *   `temporary` child is gone with its node. This happens when the registry
 *   drops the lost node's names: the cluster's failure timeout, plus a round
 *   trip or two for the new claim.
 * - Below quorum (`minMembers`, or a majority of `clusterSize`) nothing
 *   starts, not even a local restart: the minority side of a partition
 *   starts no duplicate. At a heal, the registry's conflict policy leaves
 *   one instance of each child and the other exits with `{ name_conflict }`;
 *   the table follows the survivor.
 * - A graceful stop (`node.stop()`, or the member stopped with `shutdown`)
 *   and `migrate` hand each child's state to its successor when its
 *   behaviour has `handoff`; the successor's `init` receives it as
 *   `context.handoff`. After a crash or a loss, `init` starts fresh.
 *
 * **Gotchas:** every participating node must register the children's
 * behaviours under the same keys before starting its member (only nodes
 * that did are placement candidates), and start the member with the same
 * spec. Children are GenServers; their args and handoff state must cross
 * the wire.
 */
import { CallError, GenServer, type Caller, type Node, type Pid, type Process } from '@roster/core';
import type { GlobalsRegistry } from '@roster/globals';
import type { EventEmitter } from 'eventemitter3';
import { SupervisionError } from './errors.js';
import { normalizeSpec } from './internal/options.js';
import { answerToResult, eventsOf, MemberBehaviour, memberLocalName, memberOf, type MemberAnswer, type MemberRequest, type MemberStats } from './internal/members.js';

export type { MemberStats } from './internal/members.js';
import type {
  DistributedChildCounts,
  DistributedChildInfo,
  DistributedChildSpec,
  DistributedSupervisorEvents,
  DistributedSupervisorSpec,
} from './spec.js';

/** Options of the verbs that wait for a child to start, stop or move. */
export interface DistributedRequestOptions {
  /** Milliseconds. Default 10 000. */
  readonly timeout?: number;
}

/** Where a child runs. */
export interface ChildLocation {
  readonly node: string;
  readonly pid: Pid;
}

const DEFAULT_TIMEOUT = 10_000;

function registryOf(where: string, node: Node, key: string): GlobalsRegistry {
  const registry = node.registry(key) as Partial<GlobalsRegistry>;
  if (typeof registry.epochOf !== 'function' || typeof registry.on !== 'function' || typeof registry.registered !== 'function') {
    throw new SupervisionError('invalid_spec', `${where}: the registry ${JSON.stringify(key)} must be a GlobalsRegistry (cluster-wide, with events and epochs)`, 'registry');
  }
  return registry as GlobalsRegistry;
}

async function startMember(where: string, node: Node, spec: DistributedSupervisorSpec, parent: Process | undefined): Promise<Pid> {
  const normalized = normalizeSpec(where, spec);
  const registry = registryOf(where, node, normalized.registry);
  const args = { spec: normalized, registry };
  const options = { name: memberLocalName(normalized.id) };
  return parent === undefined ? GenServer.start(node, MemberBehaviour, args, options) : GenServer.startLink(parent, MemberBehaviour, args, options);
}

function timeoutOf(where: string, options: DistributedRequestOptions | undefined): number {
  const timeout = options?.timeout ?? DEFAULT_TIMEOUT;
  if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout <= 0) {
    throw new TypeError(`${where}: timeout must be an integer of ms > 0, got ${String(timeout)}`);
  }
  return timeout;
}

async function ask(where: string, caller: Caller, id: string, request: MemberRequest, timeout: number, what: string): Promise<unknown> {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError(`${where}: supervisor id must be a non-empty string`);
  let answer: MemberAnswer;
  try {
    answer = await caller.call<MemberAnswer>(memberLocalName(id), request, { timeout: timeout + 1000 });
  } catch (error) {
    if (error instanceof CallError && error.reason === 'noproc') {
      throw new SupervisionError('not_started', `${where}: no member of ${JSON.stringify(id)} runs on this node`, undefined, { cause: error });
    }
    throw error;
  }
  return answerToResult(answer, what);
}

function childId(where: string, id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new TypeError(`${where}: child id must be a non-empty string`);
  return id;
}

export const DistributedSupervisor = {
  /**
   * Starts this node's member of the supervisor `spec.id` (unlinked); resolves
   * with its pid once it holds its member name and has asked the others for
   * their view. Rejects with `SupervisionError('invalid_spec')` for a bad
   * spec, and `AlreadyStartedError` when this node runs one already.
   */
  start(node: Node, spec: DistributedSupervisorSpec): Promise<Pid> {
    return startMember('DistributedSupervisor.start', node, spec, undefined);
  },

  /** As `start`, linked to the calling process (what a local `Supervisor`'s child spec uses). */
  startLink(self: Process, spec: DistributedSupervisorSpec): Promise<Pid> {
    return startMember('DistributedSupervisor.startLink', self.node, spec, self);
  },

  /** Stops this node's member: its children hand over to other members (a graceful stop). */
  stop(caller: Node | Process, id: string): Promise<void> {
    return GenServer.stop(caller, memberLocalName(id), 'shutdown');
  },

  /** Every child, cluster-wide, with the node it runs on, as this node's member sees it. */
  async whichChildren(caller: Caller, id: string): Promise<DistributedChildInfo[]> {
    return (await ask('DistributedSupervisor.whichChildren', caller, id, { op: 'which' }, DEFAULT_TIMEOUT, id)) as DistributedChildInfo[];
  },

  /** The nodes whose member this node's member sees and has heard from (itself included), sorted: the nodes placement chooses among. */
  async members(caller: Caller, id: string): Promise<string[]> {
    return (await ask('DistributedSupervisor.members', caller, id, { op: 'members' }, DEFAULT_TIMEOUT, id)) as string[];
  },

  async countChildren(caller: Caller, id: string): Promise<DistributedChildCounts> {
    return (await ask('DistributedSupervisor.countChildren', caller, id, { op: 'count' }, DEFAULT_TIMEOUT, id)) as DistributedChildCounts;
  },

  /**
   * Adds a child and resolves once it runs, with where. Rejects with
   * `AlreadyStartedError` when the id runs already, `StartError` when its
   * first `init` failed, `SupervisionError` (`invalid_spec`, `no_quorum`,
   * `unknown_behaviour`, `no_eligible_node`, `already_present`, `timeout`).
   */
  async startChild(caller: Caller, id: string, spec: DistributedChildSpec, options?: DistributedRequestOptions): Promise<ChildLocation> {
    const where = 'DistributedSupervisor.startChild';
    const timeout = timeoutOf(where, options);
    return (await ask(where, caller, id, { op: 'startChild', spec, timeout }, timeout, `${id}/${String(spec?.id)}`)) as ChildLocation;
  },

  /** Stops a child wherever it runs, for good (it stays listed as `stopped`); resolves once no node resolves its name. */
  async terminateChild(caller: Caller, id: string, child: string, options?: DistributedRequestOptions): Promise<void> {
    const where = 'DistributedSupervisor.terminateChild';
    const timeout = timeoutOf(where, options);
    await ask(where, caller, id, { op: 'terminateChild', id: childId(where, child), timeout }, timeout, child);
  },

  /** Starts a stopped child again (by its placement) and resolves once it runs. */
  async restartChild(caller: Caller, id: string, child: string, options?: DistributedRequestOptions): Promise<ChildLocation> {
    const where = 'DistributedSupervisor.restartChild';
    const timeout = timeoutOf(where, options);
    return (await ask(where, caller, id, { op: 'restartChild', id: childId(where, child), timeout }, timeout, child)) as ChildLocation;
  },

  /** Removes a stopped child's spec. */
  async deleteChild(caller: Caller, id: string, child: string): Promise<void> {
    const where = 'DistributedSupervisor.deleteChild';
    await ask(where, caller, id, { op: 'deleteChild', id: childId(where, child), timeout: DEFAULT_TIMEOUT }, DEFAULT_TIMEOUT, child);
  },

  async getChildSpec(caller: Caller, id: string, child: string): Promise<DistributedChildSpec> {
    const where = 'DistributedSupervisor.getChildSpec';
    return (await ask(where, caller, id, { op: 'getChildSpec', id: childId(where, child), timeout: DEFAULT_TIMEOUT }, DEFAULT_TIMEOUT, child)) as DistributedChildSpec;
  },

  /**
   * Moves a running child to `to` (a node running a member that registered
   * its behaviour): its state goes along when its behaviour has `handoff`.
   * Resolves once it runs there.
   */
  async migrate(caller: Caller, id: string, child: string, to: string, options?: DistributedRequestOptions): Promise<ChildLocation> {
    const where = 'DistributedSupervisor.migrate';
    const timeout = timeoutOf(where, options);
    if (typeof to !== 'string' || to.length === 0) throw new TypeError(`${where}: to must be a node name`);
    return (await ask(where, caller, id, { op: 'migrate', id: childId(where, child), to, timeout }, timeout, child)) as ChildLocation;
  },

  /** What this node's member counted (drops, starts, restarts, failovers, listener errors): plain numbers, read when asked. */
  stats(node: Node, id: string): Readonly<MemberStats> {
    const member = memberOf(node, id);
    if (member === undefined) throw new SupervisionError('not_started', `DistributedSupervisor.stats: no member of ${JSON.stringify(id)} runs on ${node.name}`);
    return member.stats;
  },

  /**
   * The events this node's member sees (children started, restarted,
   * migrated, stopped; nodes lost). The emitter is the node's for this id:
   * it can be taken before the member starts, and listeners stay subscribed
   * across member restarts.
   */
  events(node: Node, id: string): EventEmitter<DistributedSupervisorEvents> {
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('DistributedSupervisor.events: supervisor id must be a non-empty string');
    return eventsOf(node, id);
  },
};
