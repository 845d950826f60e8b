import type { Via } from './dest.js';
import type { ExitReason } from './exit-reason.js';
import type { Pid, Ref } from './pid.js';
import type { Logger } from 'pino';

/** How an exit signal travels: from a dying linked process, or from `exit/2`. */
export type SignalKind = 'link' | 'exit';

/**
 * A remote spawn as the core hands it to {@link Distribution.spawn}: start
 * the catalogue entry `key` of `node` with `args` (see `GenServer.startOn`).
 */
export interface RemoteSpawnRequest {
  /** The target node: another member, never this one. */
  readonly node: string;
  /** The key in the target node's `node.behaviours`. */
  readonly key: string;
  /** Must cross the wire (the implementation refuses what cannot with `SpawnError('bad_args')`, before sending). */
  readonly args: unknown;
  /** Registered on the target node before the child runs (a string is node-local there). */
  readonly name: string | Via | undefined;
  /** The calling process, to be linked to the child on the target node before the child runs. */
  readonly link: Pid | undefined;
  /** A monitor of `watcher` (a local process) on the child, placed on the target node before the child runs. */
  readonly monitor: { readonly watcher: Pid; readonly ref: Ref } | undefined;
  /** Milliseconds for the whole start, the child's `init` included (finite, > 0). */
  readonly timeout: number;
}

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
   * A call's request and its reply port's monitor in one: on `to`'s node,
   * `watcher` monitors `to` under `ref` (a `DOWN` with `noproc` when `to` is
   * gone), then `message` is delivered to `to`. When `to`'s node is not
   * reachable, the `DOWN` (`noproc` or `noconnection`) comes from here.
   * Throws `WireEncodeError` for a message that cannot cross (then nothing
   * is placed). Optional: without it, the core sends `monitor` then `send`.
   */
  request?(from: Pid | undefined, to: Pid, message: unknown, watcher: Pid, ref: Ref): void;
  /**
   * The server `from` (a local process) replies `value` to the reply port
   * `to` of a call whose monitor on `from` is `tag`: the implementation sends
   * the reply, then drops that monitor here, and the reply says so
   * (`DistributionHost.replied` on the caller's side), so the caller sends no
   * demonitor. Throws `WireEncodeError` for a value that cannot cross (the
   * monitor then stays). Optional: without it, the core sends the reply
   * with `send`.
   */
  reply?(from: Pid, to: Pid, value: unknown, tag: Ref): void;
  /**
   * Sends `message` to the process registered under the node-local `name` on
   * `node` (Erlang's `{Name, Node} ! Msg`); false when `node` is not a live
   * member. The receiver drops it when nothing is registered there, answering
   * a `$gen_call` itself (see {@link DistributionHost.deliverNamed}).
   * Throws `WireEncodeError` for a value that cannot cross. Optional: without
   * it, `GenServer.multiCall` and `abcast` count every other node as bad.
   */
  sendNamed?(from: Pid | undefined, node: string, name: string, message: unknown): boolean;
  /**
   * Starts a catalogue entry on another node (OTP's `spawn/4`, with
   * `spawn_link/4` and `spawn_monitor/4`'s atomicity). Resolves with the
   * child's pid once it runs (a GenServer: after its `init`). The target node
   * links and monitors the child to the caller (`DistributionHost.link`,
   * `.monitor`) before the child runs; when the answer arrives the
   * implementation, synchronously and before handling any later frame, calls
   * `host.link(child, request.link)` and `host.monitored(watcher, child, ref)`
   * here. Rejects with `SpawnError` (`unknown_node`, `noconnection` at once
   * when the node goes down, `timeout` after `request.timeout`,
   * `bad_args`, `unknown_behaviour`, `start_failed`) or
   * `AlreadyStartedError`; it always settles within `request.timeout`. A
   * child whose answer comes after the timeout is killed. Optional: without
   * it, a spawn on another node fails with `SpawnError('noconnection')`.
   */
  spawn?(request: RemoteSpawnRequest): Promise<Pid>;
  /** Names of the live member nodes, this one excluded. */
  nodes(): string[];
  /**
   * What the cluster layer says about itself in `node.snapshot()` (as
   * `distribution`), and so to a peer asking for this node's snapshot: its
   * frame counters, drops, peers. Optional.
   *
   * - Plain, wire-safe data: a fresh object of numbers, strings, booleans,
   *   arrays and plain objects (no pids, class instances or functions).
   * - Cheap: it runs synchronously inside every snapshot; read counters kept
   *   as frames flow, do no I/O.
   * - Read when asked: nothing is computed or kept for it in between.
   *
   * A throw leaves `distribution` out of that snapshot (logged at a bounded
   * rate); it never breaks the snapshot.
   */
  introspect?(): Readonly<Record<string, unknown>>;
  /** Leaves the cluster gracefully (peers see `nodedown` at once). */
  leave(): Promise<void>;
}

/**
 * What the cluster layer may do to a node: apply what arrived from peers.
 * Every method takes pids of this node as targets and drops what is not
 * addressed to a live process, answering for the dead ones (`noproc`) itself.
 */
export interface DistributionHost {
  // `node`, the Node being joined, is declared in node.ts, beside the class,
  // so this contract does not import node.ts, which uses it.
  readonly logger: Logger;
  deliver(to: Pid, message: unknown): void;
  /**
   * A call's reply (`message`) for the local reply port `to`, from the
   * server `from`, whose node dropped the port's monitor `ref` of it as it
   * replied (see {@link Distribution.reply}): delivered like `deliver`, and
   * the port then sends no demonitor.
   */
  replied(to: Pid, message: unknown, from: Pid, ref: Ref): void;
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
  /**
   * A peer placed a monitor of the local `watcher` on its process `target`
   * under `ref` (a remote spawn with `monitor`): the watcher records it, so
   * the `DOWN` reaches it and a `nodedown` fires it. When the watcher is gone,
   * the peer is told to drop the monitor.
   */
  monitored(watcher: Pid, target: Pid, ref: Ref): void;
  /** Every link and monitor towards `node`'s processes fires with `noconnection`. */
  nodeDown(node: string): void;
  nodeUp(node: string): void;
}

/** Joins a node to a cluster; @roster/cluster registers one when imported. */
export interface DistributionDriver {
  join(host: DistributionHost, options: object): Promise<Distribution>;
}
