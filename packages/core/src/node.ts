import { EventEmitter } from 'eventemitter3';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import type { Dest } from './dest.js';
import { distributionDriver } from './distribution-driver.js';
import { BehaviourCatalogue } from './behaviour-catalogue.js';
import { BadArgError } from './errors.js';
import type { ExitReason } from './exit-reason.js';
import type { Name } from './name.js';
import type { Pid } from './pid.js';
import type { CallOptions, ProcessBody, SpawnOptions } from './process.js';
import type { NameRegistry } from './registry.js';
import type { NodeSnapshot, NodeStats, ProcessInfo, SnapshotOptions } from './introspection.js';
import { processInfo, resolveSnapshotOptions, takeSnapshot, useLoopSampler } from './internal/introspect.js';
import { createLogger } from './internal/logger.js';
import { Proc, type ExitHook } from './internal/process.js';
import { Runtime } from './internal/runtime.js';
import { RUNTIME } from './internal/runtime-access.js';

// The members of three contracts that name the Node class, declared here
// beside it and merged into their interfaces. process.ts, distribution.ts
// and registry.ts are used by this module (and by the runtime below it), so
// importing Node there would close an import cycle; the types are the same.
declare module './process.js' {
  interface Process {
    /** The node this process runs on. */
    readonly node: Node;
  }
}
declare module './distribution.js' {
  interface DistributionHost {
    /** The node the cluster layer joins and delivers to. */
    readonly node: Node;
  }
}
declare module './registry.js' {
  interface NameRegistry {
    /** Called once by `node.installRegistry`; a registry serves one node. */
    attach?(node: Node, key: string): void | Promise<void>;
  }
}

/**
 * The options of the cluster a node joins. Empty here: @roster/cluster
 * merges its `ClusterOptions` in (module augmentation) when it is imported,
 * so the core names no network option and a typo still fails to compile.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by @roster/cluster
export interface NodeClusterOptions {}

export interface NodeOptions {
  /** Unique in the cluster: letters, digits and `_ - . @ :`. */
  readonly name: string;
  /** A pino logger to derive the node's child logger from; default: a new one at `logLevel`. */
  readonly logger?: Logger;
  /** Default `warn` (a library prints nothing in normal operation); the `ROSTER_LOG_LEVEL` environment variable overrides it. */
  readonly logLevel?: string;
  /** Registries to install before the node is returned, by key. */
  readonly registries?: Readonly<Record<string, NameRegistry>>;
  /**
   * Joins a cluster (needs @roster/cluster, which types this as its
   * `ClusterOptions`: a misspelt option is a compile error, and an unknown
   * key a `TypeError` at start). `{}` joins the in-process MemoryTransport.
   */
  readonly cluster?: NodeClusterOptions;
  /** Scheduler tuning: messages per process turn, and per event-loop turn. */
  readonly scheduler?: { readonly budget?: number; readonly batch?: number };
  /** How long `stop()` waits for processes to shut down before killing them. Default 5000 ms. */
  readonly shutdownTimeout?: number;
}

export interface NodeEvents {
  /** `stop()` has begun: processes are about to be shut down. */
  stopping: () => void;
  nodeup: (node: string) => void;
  nodedown: (node: string) => void;
  stopped: () => void;
}

const NODE_NAME = /^[A-Za-z0-9_\-.@:]{1,255}$/;

/**
 * One runtime instance: a name unique in its cluster, a fresh incarnation
 * (`creation`), a process table and the registries installed on it.
 */
export class Node extends EventEmitter<NodeEvents> {
  readonly name: string;
  /** This incarnation's id: pids of a restarted node never alias older ones. */
  readonly creation: string;
  readonly logger: Logger;
  /** Behaviours peers may start here by key (`GenServer.startOn`, `spawnOn`); empty at start. */
  readonly behaviours: BehaviourCatalogue;
  readonly [RUNTIME]: Runtime;
  readonly #shutdownTimeout: number;
  #stopping: Promise<void> | undefined;
  readonly #registryOrder: string[] = [];
  /** Stops this node's use of the event-loop sampler; set by the first snapshot. */
  #releaseSampler: (() => void) | undefined;

  private constructor(options: NodeOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('Node.start: options must be an object');
    if (typeof options.name !== 'string' || !NODE_NAME.test(options.name)) {
      throw new TypeError(`Node.start: options.name must match ${NODE_NAME.source}, got ${JSON.stringify(options.name)}`);
    }
    this.name = options.name;
    this.creation = nanoid(8);
    this.logger = createLogger(options.name, options.logger, options.logLevel);
    this.#shutdownTimeout = options.shutdownTimeout ?? 5000;
    this.behaviours = new BehaviourCatalogue();
    this[RUNTIME] = new Runtime(this, this.name, this.creation, this.logger, options.scheduler);
    this[RUNTIME].localNames.attach(this);
  }

  /** Starts a node; with `cluster`, it has joined the cluster when this resolves. */
  static async start(options: NodeOptions): Promise<Node> {
    const node = new Node(options);
    try {
      // The cluster first: a distributed registry attaches to the membership it will vote with.
      if (options.cluster !== undefined) {
        const driver = distributionDriver();
        if (driver === undefined) {
          throw new TypeError('Node.start: options.cluster needs @roster/cluster; import it before starting the node');
        }
        node[RUNTIME].distribution = await driver.join(node[RUNTIME], options.cluster);
      }
      if (options.registries !== undefined) {
        for (const [key, registry] of Object.entries(options.registries)) await node.installRegistry(key, registry);
      }
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** False once `stop()` has begun. */
  get alive(): boolean {
    return this[RUNTIME].alive;
  }

  /** A pid standing for the node itself: the sender of what is sent from outside any process. */
  get pid(): Pid {
    return this[RUNTIME].rootPid;
  }

  /** Spawns a process running `body`: `node.spawn(async (self) => { ... await self.receive() ... })`. */
  spawn(body: ProcessBody, options?: Omit<SpawnOptions, 'link'>): Pid {
    return this[RUNTIME].spawn(body, options, undefined);
  }

  /** Sends `message` to `dest`; throws `BadArgError` when a name resolves to nobody. */
  send(dest: Dest, message: unknown): void {
    this[RUNTIME].send(dest, message, this[RUNTIME].rootPid);
  }

  /** A GenServer call from outside any process. */
  call<R = unknown>(dest: Dest, request: unknown, options?: CallOptions): Promise<R> {
    return this[RUNTIME].call(undefined, dest, request, options) as Promise<R>;
  }

  /** A GenServer cast; never throws. */
  cast(dest: Dest, message: unknown): void {
    this[RUNTIME].cast(dest, message, this[RUNTIME].rootPid);
  }

  /** Sends an exit signal to `dest` from the node (Erlang's `exit/2`). */
  exit(dest: Dest, reason: ExitReason): void {
    const runtime = this[RUNTIME];
    const target = runtime.resolve(dest);
    if (target !== undefined) runtime.exitSignal(runtime.rootPid, target, reason);
  }

  /** Registers a node-local name (Erlang's `register/2`); throws `BadArgError` if taken or the pid is dead. */
  register(name: string, pid: Pid): void {
    this[RUNTIME].registerLocal(name, pid);
  }

  unregister(name: string): void {
    this[RUNTIME].localNames.unregister(name);
  }

  /** Resolves a destination to the pid it names now, or undefined. */
  whereis(dest: Dest): Pid | undefined {
    return this[RUNTIME].resolve(dest);
  }

  /** Node-local names. */
  registered(): string[] {
    return this[RUNTIME].localNames.registered() as string[];
  }

  /** Whether a process of this node is alive (false for pids of other nodes). */
  isAlive(pid: Pid): boolean {
    return this[RUNTIME].localProc(pid)?.alive === true;
  }

  /** The pids of this node's live processes. */
  processes(): Pid[] {
    const pids: Pid[] = [];
    for (const endpoint of this[RUNTIME].table.values()) if (endpoint instanceof Proc) pids.push(endpoint.pid);
    return pids;
  }

  /** Live member nodes of the cluster, this one excluded (empty when not clustered). */
  nodes(): string[] {
    return this[RUNTIME].distribution?.nodes() ?? [];
  }

  /**
   * The node's counters since it started (spawns, exits, messages in and
   * out, calls and their latency), read now: plain numbers, cheap to read.
   */
  get stats(): NodeStats {
    return this[RUNTIME].counters.read();
  }

  /** A live local process's facts now (Erlang's `process_info/1`); undefined for a dead one or a pid of another node. */
  processInfo(pid: Pid): ProcessInfo | undefined {
    const runtime = this[RUNTIME];
    const proc = runtime.localProc(pid);
    return proc?.alive === true ? processInfo(runtime, proc) : undefined;
  }

  /**
   * The whole node now, as plain data: process count, counters, the longest
   * mailboxes, memory, event-loop delay, supervision trees and local names,
   * and what the cluster layer and each installed registry report of
   * themselves (`distribution`, `registries`: their `introspect()`, a
   * throwing one left out and logged at a bounded rate); with
   * `processes: true`, every live process too. One pass over the
   * process table. The first snapshot starts the process-wide event-loop
   * sampler (stopped again when the node stops), so its `eventLoopDelay`
   * reads 0. Throws `TypeError` naming a bad option.
   */
  snapshot(options?: SnapshotOptions): NodeSnapshot {
    const resolved = resolveSnapshotOptions(options, 'Node.snapshot');
    if (this.#releaseSampler === undefined && this[RUNTIME].alive) this.#releaseSampler = useLoopSampler();
    return takeSnapshot(this[RUNTIME], resolved);
  }

  /**
   * Installs `registry` under `key`, so `via(key, name)` resolves through it.
   * A key can be taken once.
   */
  async installRegistry(key: string, registry: NameRegistry): Promise<void> {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TypeError(`installRegistry: key must be a non-empty string, got ${typeof key}`);
    }
    if (typeof registry?.whereisName !== 'function' || typeof registry.registerName !== 'function') {
      throw new TypeError('installRegistry: registry must implement NameRegistry');
    }
    const registries = this[RUNTIME].registries;
    if (registries.has(key)) throw new BadArgError(`installRegistry: a registry is already installed under ${JSON.stringify(key)}`);
    registries.set(key, registry);
    this.#registryOrder.push(key);
    try {
      await registry.attach?.(this, key);
    } catch (error) {
      registries.delete(key);
      this.#registryOrder.splice(this.#registryOrder.indexOf(key), 1);
      throw error;
    }
  }

  /** The registry installed under `key`; throws `BadArgError` when there is none. */
  registry<R extends NameRegistry = NameRegistry>(key: string): R {
    return this[RUNTIME].registry(key) as R;
  }

  /** Registers `pid` under a destination's name: a string (local) or a via name. */
  async registerName(dest: string | { readonly via: string; readonly name: Name }, pid: Pid): Promise<'yes' | 'no'> {
    if (typeof dest === 'string') return this[RUNTIME].localNames.registerName(dest, pid);
    return this[RUNTIME].registry(dest.via).registerName(dest.name, pid);
  }

  /**
   * Runs `hook` synchronously when the local process `pid` exits, before any
   * monitor sees its `DOWN`: how registries clear names "the moment" a process
   * dies. Returns a canceller, or undefined when `pid` is not a live local process.
   */
  watchExit(pid: Pid, hook: ExitHook): (() => void) | undefined {
    return this[RUNTIME].watchExit(pid, hook);
  }

  /**
   * Stops the node: top-level processes get `shutdown` in reverse start order
   * (supervisors stop their trees), stragglers are killed after
   * `shutdownTimeout`, then registries detach and the node leaves its cluster.
   */
  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    this.emit('stopping');
    const runtime = this[RUNTIME];
    const deadline = Date.now() + this.#shutdownTimeout;
    const topLevel = [...runtime.table.values()]
      .filter((endpoint): endpoint is Proc => endpoint instanceof Proc && endpoint.parent === runtime.rootPid)
      .reverse();
    for (const proc of topLevel) {
      if (!proc.alive) continue;
      const gone = new Promise<void>((resolve) => proc.onExit(() => resolve()));
      runtime.exitSignal(runtime.rootPid, proc.pid, 'shutdown');
      await waitUntil(gone, deadline - Date.now());
    }
    for (const endpoint of [...runtime.table.values()]) {
      if (endpoint instanceof Proc) endpoint.terminate('killed');
    }
    runtime.alive = false;
    for (const key of [...this.#registryOrder].reverse()) {
      try {
        await runtime.registries.get(key)?.detach?.();
      } catch (error) {
        this.logger.warn({ err: error, registry: key }, 'registry failed to detach');
      }
    }
    const distribution = runtime.distribution;
    if (distribution !== undefined) {
      try {
        await distribution.leave();
      } catch (error) {
        this.logger.warn({ err: error }, 'leaving the cluster failed');
      }
    }
    runtime.deadlines.clear();
    runtime.localNames.detach();
    this.#releaseSampler?.();
    this.emit('stopped');
  }

  override toString(): string {
    return `Node(${this.name})`;
  }

}

function waitUntil(promise: Promise<void>, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
