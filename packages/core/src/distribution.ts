import type { ExitReason } from './exit-reason.js';
import type { Pid, Ref } from './pid.js';
import type { Node } from './node.js';
import type { Logger } from 'pino';

/** How an exit signal travels: from a dying linked process, or from `exit/2`. */
export type SignalKind = 'link' | 'exit';

/**
 * What a node asks of the cluster layer for pids of other nodes. Implemented
 * by @roster/cluster; the core knows nothing of networks and calls this only
 * for pids whose node is not itself.
 */
export interface Distribution {
  send(from: Pid | undefined, to: Pid, message: unknown): void;
  link(from: Pid, to: Pid): void;
  unlink(from: Pid, to: Pid): void;
  exit(from: Pid, to: Pid, reason: ExitReason, kind: SignalKind): void;
  monitor(watcher: Pid, target: Pid, ref: Ref): void;
  demonitor(watcher: Pid, target: Pid, ref: Ref): void;
  /** A `DOWN` for a remote watcher of a local process. */
  down(watcher: Pid, ref: Ref, pid: Pid, reason: ExitReason): void;
  /**
   * Sends `message` to the process registered under the node-local `name` on
   * `node` (Erlang's `{Name, Node} ! Msg`); false when `node` is not a live
   * member. The receiver drops it when nothing is registered there, answering
   * a `$gen_call` itself (see {@link DistributionHost.deliverNamed}).
   * Throws `WireEncodeError` for a value that cannot cross. Optional: without
   * it, `GenServer.multiCall` and `abcast` count every other node as bad.
   */
  sendNamed?(from: Pid | undefined, node: string, name: string, message: unknown): boolean;
  /** Names of the live member nodes, this one excluded. */
  nodes(): string[];
  /** Leaves the cluster gracefully (peers see `nodedown` at once). */
  leave(): Promise<void>;
}

/**
 * What the cluster layer may do to a node: apply what arrived from peers.
 * Every method takes pids of this node as targets and drops what is not
 * addressed to a live process, answering for the dead ones (`noproc`) itself.
 */
export interface DistributionHost {
  readonly node: Node;
  readonly logger: Logger;
  deliver(to: Pid, message: unknown): void;
  /**
   * Delivers `message` to the process registered here as `name`. For a
   * `$gen_call` it first tells the call's reply port what the name resolved
   * to (a `$gen_whereis` message, its `pid` undefined when nothing is
   * registered), so a caller on another node learns of `noproc` at once.
   */
  deliverNamed(name: string, message: unknown, from?: Pid): void;
  link(from: Pid, to: Pid): void;
  unlink(from: Pid, to: Pid): void;
  exit(from: Pid, to: Pid, reason: ExitReason, kind: SignalKind): void;
  monitor(watcher: Pid, target: Pid, ref: Ref): void;
  demonitor(watcher: Pid, target: Pid, ref: Ref): void;
  down(watcher: Pid, ref: Ref, pid: Pid, reason: ExitReason): void;
  /** Every link and monitor towards `node`'s processes fires with `noconnection`. */
  nodeDown(node: string): void;
  nodeUp(node: string): void;
}

/** Joins a node to a cluster; @roster/cluster registers one when imported. */
export interface DistributionDriver {
  join(host: DistributionHost, options: object): Promise<Distribution>;
}

let driver: DistributionDriver | undefined;

/** Installs the driver behind `Node.start({ cluster })`. */
export function registerDistributionDriver(next: DistributionDriver): void {
  driver = next;
}

export function distributionDriver(): DistributionDriver | undefined {
  return driver;
}
