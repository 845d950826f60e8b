/**
 * What a node says about itself when asked: counters, per-process facts,
 * supervision trees and a whole-node snapshot (`node.stats`,
 * `node.processInfo(pid)`, `node.snapshot()`), the data source of the
 * observer page, the Prometheus exporter and the `roster` CLI.
 *
 * Everything here is plain data (numbers, strings, arrays, pids), so a
 * snapshot crosses the cluster's wire codec as it is
 * (`clusterOf(node).snapshotOf(peer)`). Nothing is computed until asked:
 * the runtime keeps plain counters on its hot paths, and a snapshot reads
 * them (OTP's `erlang:statistics/1`, `process_info/2` and observer's
 * system tab, in one call).
 */
import type { LatencySnapshot } from './latency-histogram.js';
import type { Pid } from './pid.js';

/** `node.stats`: the node's counters since it started, read when asked. */
export interface NodeStats {
  /** Processes started on this node. */
  readonly spawned: number;
  /** Processes of this node that exited, for any reason. */
  readonly exited: number;
  /** Messages delivered into local mailboxes (exit signals and `DOWN`s turned into messages included; call replies, which go straight to the waiting caller, not). */
  readonly messagesIn: number;
  /** Messages sent by local processes or the node itself (to local or remote pids, names and via names), call requests and replies included. */
  readonly messagesOut: number;
  /** Calls made from this node (`GenServer.call`, `node.call`, `self.call`). */
  readonly calls: number;
  /** Calls that rejected: `noproc`, `timeout`, `noconnection`, the callee's exit, a request that could not be sent. */
  readonly callsFailed: number;
  /**
   * Round trips of answered calls, in ms, sampled: every call to another
   * node, and one call in 16 within this node (two clock reads cost about as
   * much as a local call). A distribution, not a count: `calls` counts them
   * all. Failed calls are in `callsFailed`, not here.
   */
  readonly callLatency: LatencySnapshot;
}

/** What a process is, as far as the node can tell. */
export type ProcessKind = 'process' | 'gen_server' | 'supervisor' | 'dynamic_supervisor';

/** One live process, read at one moment (Erlang's `process_info/1`). */
export interface ProcessInfo {
  readonly pid: Pid;
  /** Its node-local registered name, if it has one. */
  readonly name?: string;
  readonly kind: ProcessKind;
  /** Messages waiting in its mailbox. */
  readonly mailboxLength: number;
  /** Messages delivered into its mailbox since it started. */
  readonly messagesIn: number;
  readonly trapExit: boolean;
  /** Processes it is linked to (on any node). */
  readonly links: number;
  /** Monitors it holds on other processes (Erlang's `monitors`). */
  readonly monitors: number;
  /** Monitors others hold on it, a pending call's reply port among them (Erlang's `monitored_by`). */
  readonly monitoredBy: number;
  /** When it was created, `Date.now()` ms (read once per event-loop turn: processes spawned in one turn share its time). */
  readonly startedAt: number;
}

/** One restart a supervisor made. */
export interface RestartRecord {
  readonly childId: string;
  /** `Date.now()` ms. */
  readonly at: number;
  /** Why the child had exited, as `formatReason` renders it (`try_again_restart` for a retry of a restart that failed). */
  readonly reason: string;
}

/** A supervisor's child, as its supervisor holds it. */
export interface SupervisorChildInfo {
  readonly id: string;
  /** The running child; absent while it is not running (stopped, or `restarting` after a failed restart). */
  readonly pid?: Pid;
  readonly type: 'worker' | 'supervisor';
  /** `permanent`, `transient` or `temporary`. */
  readonly restart: string;
}

/** A local supervisor (`Supervisor` or `DynamicSupervisor`) and its children, read at one moment. */
export interface SupervisorInfo {
  readonly pid: Pid;
  readonly name?: string;
  /** The supervisor this one runs under, when it runs under one. */
  readonly parent?: Pid;
  /** `one_for_one`, `one_for_all`, `rest_for_one`, or `simple_one_for_one` for a `DynamicSupervisor`. */
  readonly strategy: string;
  /** Restarts made since it started. */
  readonly restarts: number;
  /** The last 20 restarts, oldest first. */
  readonly recentRestarts: readonly RestartRecord[];
  /** In start order. */
  readonly children: readonly SupervisorChildInfo[];
}

/** What a supervisor reports of itself (the pid, name and parent come from its process); internal, not on the index. */
export type SupervisorDetails = Omit<SupervisorInfo, 'pid' | 'name' | 'parent'>;

/** The node's process memory (`process.memoryUsage()`), bytes; shared by every node of the OS process. */
export interface MemoryInfo {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
}

/**
 * How late the event loop ran timers, in ms (`perf_hooks.monitorEventLoopDelay`),
 * over the last completed window of about a second; shared by every node of
 * the OS process. All 0 until the sampler, started by the first snapshot, has a window.
 */
export interface EventLoopDelay {
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** A whole node read at one moment: `node.snapshot()`, or a peer's through `clusterOf(node).snapshotOf(peer)`. */
export interface NodeSnapshot {
  readonly node: string;
  /** When it was taken, `Date.now()` ms of the node that took it. */
  readonly at: number;
  /** Live processes. */
  readonly processCount: number;
  readonly stats: NodeStats;
  /** The longest mailbox of any live process (0 with none). */
  readonly mailboxMax: number;
  /** The processes with the longest mailboxes, longest first (ties: oldest first); `longestMailboxes` of them (default 10), idle ones included when there are fewer busy ones. */
  readonly longestMailboxes: readonly ProcessInfo[];
  readonly memory: MemoryInfo;
  readonly eventLoopDelay: EventLoopDelay;
  /** Every live local supervisor, parents before their children. */
  readonly supervisors: readonly SupervisorInfo[];
  /** The node-local registered names. */
  readonly registered: readonly string[];
  /**
   * What the node's cluster layer reports of itself (`Distribution.introspect`:
   * for @roster/cluster a `ClusterIntrospection`, frames sent, received and
   * dropped by reason, peers, role); absent when the node is not clustered,
   * its distribution has no `introspect`, or it threw.
   */
  readonly distribution?: Readonly<Record<string, unknown>>;
  /**
   * By registry key (as installed: `node.installRegistry(key, …)`): what each
   * installed registry's `introspect()` returned (for @roster/globals a
   * `GlobalsIntrospection`). A registry without `introspect`, or whose
   * `introspect` threw, is absent; `{}` when none reports.
   */
  readonly registries: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** With `processes: true`: every live local process, oldest first (from a peer, at most 10 000: see `truncated`). */
  readonly processes?: readonly ProcessInfo[];
  /**
   * Only from a peer (`snapshotOf` with `processes: true`): true when
   * `processes` is not every process. A peer sends at most the 10 000 with
   * the longest mailboxes (oldest first among equals), and fewer when even
   * those would not fit in one frame (`maxFrameBytes`); `processCount` is
   * still the whole count.
   */
  readonly truncated?: boolean;
}

/** Options of `node.snapshot()`. */
export interface SnapshotOptions {
  /** How many processes `longestMailboxes` lists: an integer from 0 to 1000. Default 10. */
  readonly longestMailboxes?: number;
  /** List every live process in `processes` (O(processes): for `roster processes NODE`, not for a page refreshed every second). Default false. */
  readonly processes?: boolean;
}
