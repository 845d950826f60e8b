/**
 * Cluster harness for tests: N roster nodes in this process over a
 * MemoryTransport or an AmqpTransport (`startCluster`), and nodes in separate
 * OS processes over RabbitMQ (`startNodeProcesses`), driven over IPC, for
 * what only a real process can do (be SIGKILLed).
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Node, Pid, type NameRegistry } from '@roster/core';
import { MemoryBroker, MemoryTransport, clusterOf, type Cluster, type ClusterOptions, type Transport } from '@roster/cluster';
import type { AmqpTransportOptions } from '@roster/amqp';
import type {
  ChildMessage,
  ChildRegistrySpec,
  ChildSetupSpec,
  ChildStartOptions,
  NodeProcessCommand,
  NodeProcessResults,
  ParentMessage,
  PidFields,
  SerializedError,
} from './internal/node-process-protocol.js';

export { EchoServer } from './internal/node-process-echo.js';
export type {
  ChildRegistrySpec,
  ChildSetupSpec,
  NodeProcessCommand,
  NodeProcessEmit,
  NodeProcessInvokeErrorCode,
  NodeProcessResults,
  NodeProcessSetupFunction,
  PidFields,
} from './internal/node-process-protocol.js';

/** Cluster options a harness passes to every node it starts (the transport is the harness's business). */
export type ClusterOverrides = Omit<ClusterOptions, 'transport'>;

export type HarnessTransportKind = 'memory' | 'amqp';

/** Options of {@link startCluster}. */
export interface StartClusterOptions extends ClusterOverrides {
  /** How many nodes (named `<namePrefix>1` … `<namePrefix>N`), or their names. */
  readonly nodes: number | readonly string[];
  readonly transport: HarnessTransportKind;
  /** RabbitMQ to use with `transport: 'amqp'`; default `$AMQP_URL`. */
  readonly amqpUrl?: string;
  /** The broker of `transport: 'memory'`; default a fresh, fault-free one (never the process-wide default). */
  readonly broker?: MemoryBroker;
  /** Options of every AmqpTransport (`transport: 'amqp'`), besides the URL. */
  readonly amqp?: Omit<AmqpTransportOptions, 'urls'>;
  /** Registries to install on each node, by key. */
  readonly registries?: (nodeName: string) => Record<string, NameRegistry>;
  /** Name prefix when `nodes` is a number. Default `node`. */
  readonly namePrefix?: string;
  /** Default bound of {@link ClusterHarness.waitForMembership}. Default 10 000 ms. */
  readonly membershipTimeout?: number;
  /** Log level of the nodes; `ROSTER_LOG_LEVEL` still overrides it. */
  readonly logLevel?: string;
}

/** Options of {@link ClusterHarness.startNode}: per-node overrides of the harness's cluster options. */
export interface StartNodeOptions extends ClusterOverrides {
  readonly registries?: Record<string, NameRegistry>;
}

export interface WaitForMembershipOptions {
  /** Default the harness's `membershipTimeout`. */
  readonly timeout?: number;
  /** Only these nodes must see each other (default: every live node of the harness). */
  readonly among?: readonly string[];
  /** Nodes outside the harness (e.g. node processes) the nodes must also see. */
  readonly also?: readonly string[];
}

/** N nodes of one cluster in this process. */
export interface ClusterHarness {
  /** The cluster id every node joined (default a fresh `roster-test-<hex>`). */
  readonly id: string;
  readonly kind: HarnessTransportKind;
  /** The nodes, in start order (nodes added by `startNode` included). */
  readonly nodes: readonly Node[];
  /** The memory broker (memory transport only). */
  readonly broker: MemoryBroker | undefined;
  /** The RabbitMQ URL (amqp transport only). */
  readonly amqpUrl: string | undefined;
  /** The cluster options every node got (without the transport). */
  readonly options: ClusterOverrides;
  /** A node by name; throws if the harness has none. */
  node(name: string): Node;
  /** The cluster of a node by name. */
  clusterOf(name: string): Cluster;
  /** The transport a node was started with. */
  transportOf(name: string): Transport;
  /** A fresh transport of the harness's kind (for raw access to the carrier, or a node started by hand). */
  createTransport(): Promise<Transport>;
  /** Starts one more node in the same cluster; rejects (and keeps nothing) when `Node.start` does. */
  startNode(name: string, overrides?: StartNodeOptions): Promise<Node>;
  /**
   * Resolves when every node sees every other one (and the `also` nodes),
   * waiting on `nodeup` events; rejects after the timeout naming who is missing whom.
   */
  waitForMembership(options?: WaitForMembershipOptions): Promise<void>;
  /** Stops every node (in parallel). Idempotent. */
  stopAll(): Promise<void>;
}

let amqpModule: Promise<typeof import('@roster/amqp')> | undefined;

function loadAmqp(): Promise<typeof import('@roster/amqp')> {
  return (amqpModule ??= import('@roster/amqp'));
}

/** A fresh cluster id, so concurrent or leftover clusters on a shared broker never meet. */
export function uniqueClusterId(prefix = 'roster-test'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

const CLUSTER_KEYS = ['id', 'secret', 'heartbeatInterval', 'failureTimeout', 'joinWindow', 'maxFrameBytes', 'role'] as const;

function pickClusterOptions(source: ClusterOverrides): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CLUSTER_KEYS) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/**
 * Starts `nodes` nodes of one cluster in this process, in parallel, each on
 * its own transport. It does not wait for them to see each other: call
 * `waitForMembership()`. When a node fails to start, the others are stopped
 * and the error is rethrown.
 */
export async function startCluster(options: StartClusterOptions): Promise<ClusterHarness> {
  const names =
    typeof options.nodes === 'number'
      ? Array.from({ length: options.nodes }, (_, index) => `${options.namePrefix ?? 'node'}${index + 1}`)
      : [...options.nodes];
  if (new Set(names).size !== names.length) throw new TypeError(`startCluster: duplicate node names in ${names.join(', ')}`);
  const kind = options.transport;
  if (kind !== 'memory' && kind !== 'amqp') throw new TypeError(`startCluster: unknown transport ${String(kind)}`);
  let amqpUrl: string | undefined;
  if (kind === 'amqp') {
    amqpUrl = options.amqpUrl ?? process.env['AMQP_URL'];
    if (amqpUrl === undefined || amqpUrl === '') {
      throw new TypeError('startCluster: transport amqp needs amqpUrl (or AMQP_URL); startRabbitMQ() gives one');
    }
  }
  const clusterOptions: ClusterOverrides = {
    ...(pickClusterOptions(options) as ClusterOverrides),
    id: options.id ?? uniqueClusterId(),
    ...(kind === 'memory' && options.joinWindow === undefined ? { joinWindow: 50 } : {}),
  };
  const harness = new Harness(kind, clusterOptions, kind === 'memory' ? (options.broker ?? new MemoryBroker()) : undefined, amqpUrl, options);
  const started = await Promise.allSettled(
    names.map((name) => harness.startNode(name, options.registries === undefined ? {} : { registries: options.registries(name) })),
  );
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await harness.stopAll();
    throw failed.reason;
  }
  // Keep the requested order, whatever order the starts finished in.
  harness.sortNodes(names);
  return harness;
}

class Harness implements ClusterHarness {
  readonly id: string;
  readonly #nodes: Node[] = [];
  readonly #transports = new Map<Node, Transport>();
  #stopping: Promise<void> | undefined;

  constructor(
    readonly kind: HarnessTransportKind,
    readonly options: ClusterOverrides,
    readonly broker: MemoryBroker | undefined,
    readonly amqpUrl: string | undefined,
    readonly settings: Pick<StartClusterOptions, 'membershipTimeout' | 'logLevel' | 'amqp'>,
  ) {
    this.id = options.id!;
  }

  get nodes(): readonly Node[] {
    return this.#nodes;
  }

  sortNodes(order: readonly string[]): void {
    this.#nodes.sort((a, b) => {
      const ia = order.indexOf(a.name);
      const ib = order.indexOf(b.name);
      return (ia === -1 ? Infinity : ia) - (ib === -1 ? Infinity : ib);
    });
  }

  node(name: string): Node {
    const node = this.#nodes.find((candidate) => candidate.name === name);
    if (node === undefined) throw new Error(`cluster harness: no node ${JSON.stringify(name)} (have ${this.#nodes.map((n) => n.name).join(', ')})`);
    return node;
  }

  clusterOf(name: string): Cluster {
    const cluster = clusterOf(this.node(name));
    if (cluster === undefined) throw new Error(`cluster harness: node ${name} is not clustered`);
    return cluster;
  }

  transportOf(name: string): Transport {
    return this.#transports.get(this.node(name))!;
  }

  async createTransport(): Promise<Transport> {
    if (this.kind === 'memory') return new MemoryTransport({ broker: this.broker! });
    const { AmqpTransport } = await loadAmqp();
    return new AmqpTransport({ ...this.settings.amqp, urls: [this.amqpUrl!] });
  }

  async startNode(name: string, overrides: StartNodeOptions = {}): Promise<Node> {
    if (this.#stopping !== undefined) throw new Error('cluster harness: already stopped');
    const transport = await this.createTransport();
    const cluster = { ...pickClusterOptions(this.options), ...pickClusterOptions(overrides), transport };
    let node: Node;
    try {
      node = await Node.start({
        name,
        cluster,
        ...(overrides.registries === undefined ? {} : { registries: overrides.registries }),
        ...(this.settings.logLevel === undefined ? {} : { logLevel: this.settings.logLevel }),
      });
    } catch (error) {
      await transport.close().catch(() => {});
      throw error;
    }
    this.#nodes.push(node);
    this.#transports.set(node, transport);
    return node;
  }

  waitForMembership(options: WaitForMembershipOptions = {}): Promise<void> {
    const timeout = options.timeout ?? this.settings.membershipTimeout ?? 10_000;
    const live = this.#nodes.filter((node) => node.alive);
    const members = options.among === undefined ? live : options.among.map((name) => this.node(name));
    const also = options.also ?? [];
    const missing = (): string[] => {
      const out: string[] = [];
      for (const node of members) {
        const seen = new Set(node.nodes());
        for (const other of members) if (other !== node && !seen.has(other.name)) out.push(`${node.name} does not see ${other.name}`);
        for (const name of also) if (name !== node.name && !seen.has(name)) out.push(`${node.name} does not see ${name}`);
      }
      return out;
    };
    if (missing().length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (missing().length !== 0) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`cluster ${this.id}: membership incomplete after ${timeout} ms: ${missing().join('; ')}`));
      }, timeout);
      const done = (): void => {
        clearTimeout(timer);
        for (const node of members) node.off('nodeup', check);
      };
      for (const node of members) node.on('nodeup', check);
    });
  }

  stopAll(): Promise<void> {
    return (this.#stopping ??= Promise.allSettled(this.#nodes.map((node) => node.stop())).then(() => undefined));
  }
}

/**
 * Resolves with the reason when `node` sees `event` for `peer`, or rejects
 * after `timeout` ms. Subscribe before causing the event.
 */
export function waitForNodeEvent(node: Node, event: 'nodeup' | 'nodedown', peer: string, timeout = 10_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const listener = (name: string): void => {
      if (name !== peer) return;
      clearTimeout(timer);
      node.off(event, listener);
      resolve();
    };
    const timer = setTimeout(() => {
      node.off(event, listener);
      reject(new Error(`${node.name}: no ${event} for ${peer} within ${timeout} ms`));
    }, timeout);
    node.on(event, listener);
  });
}

// ---- node processes -----------------------------------------------------------------

/** Options of {@link startNodeProcesses}. */
export interface StartNodeProcessesOptions extends Omit<ClusterOverrides, 'id' | 'secret'> {
  readonly count: number;
  /** The broker; default `$AMQP_URL`. Ignored when `amqpUrls` is given. */
  readonly amqpUrl?: string;
  /**
   * Broker URLs for each child's AmqpTransport `urls` (tried in order; on a
   * loss the others first, see AmqpTransport): one list for every child, or
   * a function of the child's index (from 0, in `names` order) and name
   * returning its own list, e.g. `(i) => cluster.rotatedUrls(i % n)` to
   * spread the children over a broker cluster while each can fail over.
   * Takes precedence over `amqpUrl`; a list must be non-empty strings.
   */
  readonly amqpUrls?: readonly string[] | ((index: number, name: string) => readonly string[]);
  /** The cluster to join (the `id` of a `startCluster` harness to mix them). */
  readonly clusterId: string;
  readonly secret?: string;
  /** Names: `<namePrefix>1` … Default `proc`. */
  readonly namePrefix?: string;
  /** Or explicit names (overrides `count`). */
  readonly names?: readonly string[];
  /** Registries to install in each child, by module and export (see {@link ChildRegistrySpec}). */
  readonly registries?: readonly ChildRegistrySpec[];
  /** Options of each child's AmqpTransport besides the URL (JSON only). */
  readonly amqp?: Omit<AmqpTransportOptions, 'urls' | 'logger'>;
  /** How long a child may take to start (tsx compiles on first load). Default 30 000 ms. */
  readonly startTimeout?: number;
  /** Extra environment for the children. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * User code each child runs once its node has started, and whose exports
   * `NodeProcess.invoke` calls (see {@link ChildSetupSpec}). When it throws,
   * that child leaves the cluster and `startNodeProcesses` rejects with a
   * {@link NodeProcessError} carrying the error's name, message and code.
   */
  readonly setup?: ChildSetupSpec;
  /**
   * Called with every `custom` event any child emits (`emit(event, data)` in
   * its setup module), from the start on: also those emitted while `setup`
   * runs, before the `NodeProcess` exists for the caller to listen on.
   * The `NodeProcess`'s own `'custom'` listeners get the same events.
   */
  readonly onCustomEvent?: (from: string, event: string, data: unknown) => void;
}

/**
 * A failure a child reported for a request (or its start); `code`/`reason`
 * carry a RosterError's fields when it was one, and `invoke`'s own failures
 * have code `no_setup` or `no_such_export` ({@link NodeProcessInvokeErrorCode}).
 */
export class NodeProcessError extends Error {
  override readonly name = 'NodeProcessError';
  readonly code: string | undefined;
  readonly reason: unknown;
  /** The name of the error class the child saw (`CallError`, `BadArgError`…). */
  readonly remoteName: string;

  constructor(error: SerializedError) {
    super(`${error.name}: ${error.message}`);
    this.remoteName = error.name;
    this.code = error.code;
    this.reason = error.reason;
  }
}

export interface NodeProcessEvents {
  nodeup: [node: string];
  nodedown: [node: string];
  /** What the child's setup code emitted with `emit(event, data)` (`data` is `null` when it gave none). */
  custom: [event: string, data: unknown];
  exit: [code: number | null, signal: NodeJS.Signals | null];
}

/** A roster node running in its own OS process. */
export interface NodeProcess extends EventEmitter<NodeProcessEvents> {
  /** The roster node's name. */
  readonly name: string;
  /** Its incarnation. */
  readonly creation: string;
  /** The OS process id. */
  readonly pid: number;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the OS process is still running. */
  readonly running: boolean;
  /** Peers the child's node has seen come up and not go down since (from its events). */
  readonly peers: ReadonlySet<string>;
  request<C extends NodeProcessCommand>(command: C, timeout?: number): Promise<NodeProcessResults[C['cmd']]>;
  /**
   * Calls `fn`, a function the child's setup module exports, as `fn(node,
   * args, emit)`; resolves with its JSON result (`undefined` as `null`).
   * Rejects with a {@link NodeProcessError}: code `no_setup` (started
   * without `setup`), `no_such_export`, or what `fn` threw. Default timeout
   * 15 000 ms.
   */
  invoke<T = unknown>(fn: string, args?: unknown, timeout?: number): Promise<T>;
  /** Starts an echo server ({@link EchoServer}) in the child; resolves with its pid. */
  spawnEcho(localName?: string): Promise<Pid>;
  /** Resolves when the child's node sees `peer` (from its `nodeup` events). */
  waitForPeer(peer: string, timeout?: number): Promise<void>;
  /** Sends a signal to the OS process (`SIGKILL` for a crash nobody hears about). */
  kill(signal?: NodeJS.Signals): void;
  /** Graceful: asks the node to stop, waits for the exit, SIGKILLs after `timeout`. Idempotent. */
  stop(timeout?: number): Promise<void>;
}

const ENTRY_EXTENSION = import.meta.url.endsWith('.ts') ? 'ts' : 'js';

function resolveAmqpUrls(options: StartNodeProcessesOptions): (index: number, name: string) => readonly string[] {
  const given = options.amqpUrls;
  if (typeof given === 'function') return given;
  if (given !== undefined) return () => given;
  const amqpUrl = options.amqpUrl ?? process.env['AMQP_URL'];
  if (amqpUrl === undefined || amqpUrl === '') throw new TypeError('startNodeProcesses: needs amqpUrls or amqpUrl (or AMQP_URL)');
  return () => [amqpUrl];
}

function checkUrlList(urls: unknown, name: string): string[] {
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every((url) => typeof url === 'string' && url !== '')) {
    throw new TypeError(`startNodeProcesses: amqpUrls for ${name} must be a non-empty list of non-empty URL strings`);
  }
  return [...(urls as string[])];
}

/**
 * Forks `count` OS processes, each running one roster node over
 * AmqpTransport in cluster `clusterId`, and resolves once every one is
 * ready. Children exit when this process does (their IPC channel closes).
 */
export async function startNodeProcesses(options: StartNodeProcessesOptions): Promise<NodeProcess[]> {
  const names = options.names ?? Array.from({ length: options.count }, (_, index) => `${options.namePrefix ?? 'proc'}${index + 1}`);
  const urlsOf = resolveAmqpUrls(options);
  const perNode = names.map((name, index) => checkUrlList(urlsOf(index, name), name));
  if (options.setup !== undefined) checkSetup(options.setup);
  const base: Omit<ChildStartOptions, 'name' | 'amqpUrls'> = {
    clusterId: options.clusterId,
    ...(pickClusterOptions(options) as Partial<ChildStartOptions>),
    ...(options.secret === undefined ? {} : { secret: options.secret }),
    ...(options.registries === undefined ? {} : { registries: options.registries }),
    ...(options.amqp === undefined ? {} : { amqp: options.amqp as Record<string, unknown> }),
    ...(options.setup === undefined ? {} : { setup: options.setup }),
  };
  const started = await Promise.allSettled(
    names.map((name, index) => spawnNodeProcess({ ...base, name, amqpUrls: perNode[index]! }, options.startTimeout ?? 30_000, options.env, options.onCustomEvent)),
  );
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(started.map((result) => (result.status === 'fulfilled' ? result.value.stop(2000) : undefined)));
    throw failed.reason;
  }
  return started.map((result) => (result as PromiseFulfilledResult<NodeProcess>).value);
}

function checkSetup(setup: ChildSetupSpec): void {
  if (typeof setup !== 'object' || setup === null) throw new TypeError(`startNodeProcesses: setup must be { module, exportName?, args? }, got ${String(setup)}`);
  const { module, exportName } = setup;
  if (typeof module !== 'string' || module.length === 0) throw new TypeError(`startNodeProcesses: setup.module must be a non-empty string, got ${String(module)}`);
  if (module.startsWith('.') && !isAbsolute(module)) {
    throw new TypeError(`startNodeProcesses: setup.module must be an absolute path, a file: URL or a package name, got the relative ${module} (try fileURLToPath(new URL('${module}', import.meta.url)))`);
  }
  if (exportName !== undefined && (typeof exportName !== 'string' || exportName.length === 0)) {
    throw new TypeError(`startNodeProcesses: setup.exportName must be a non-empty string, got ${String(exportName)}`);
  }
}

/** Stops every node process (gracefully, SIGKILL after `timeout`). */
export async function stopNodeProcesses(processes: readonly NodeProcess[], timeout = 5000): Promise<void> {
  await Promise.all(processes.map((child) => child.stop(timeout)));
}

/**
 * How a node process is started: from this package's sources, as this
 * package is (TypeScript through tsx, the development condition resolving
 * every package to its sources); from its build, as compiled JavaScript,
 * with tsx loaded only to import a setup or registry module written in
 * TypeScript (a benchmark's fixture measuring built packages).
 */
function childExecArgv(options: ChildStartOptions): string[] {
  if (ENTRY_EXTENSION === 'ts') return ['--conditions=development', '--import', 'tsx'];
  const modules = [options.setup?.module, ...(options.registries ?? []).map((registry) => registry.module)];
  return modules.some((module) => module !== undefined && /\.[cm]?ts$/.test(module)) ? ['--import', 'tsx'] : [];
}

function spawnNodeProcess(
  options: ChildStartOptions,
  startTimeout: number,
  env: Readonly<Record<string, string>> | undefined,
  onCustomEvent: StartNodeProcessesOptions['onCustomEvent'],
): Promise<NodeProcess> {
  const entry = fileURLToPath(new URL(`./internal/node-process-entry.${ENTRY_EXTENSION}`, import.meta.url));
  const child = fork(entry, [], {
    execArgv: childExecArgv(options),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise<NodeProcess>((resolve, reject) => {
    const handle = new ChildHandle(child, options.name, onCustomEvent);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node process ${options.name} did not start within ${startTimeout} ms`));
    }, startTimeout);
    handle.onStart = (error) => {
      clearTimeout(timer);
      if (error === undefined) {
        resolve(handle);
      } else {
        child.kill('SIGKILL');
        reject(error);
      }
    };
    child.send({ type: 'start', options } satisfies ParentMessage);
  });
}

class ChildHandle extends EventEmitter<NodeProcessEvents> implements NodeProcess {
  creation = '';
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly peers = new Set<string>();
  onStart: ((error: Error | undefined) => void) | undefined;
  #running = true;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void; timer: NodeJS.Timeout }>();
  #stopping: Promise<void> | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
    readonly onCustomEvent?: StartNodeProcessesOptions['onCustomEvent'],
  ) {
    super();
    this.pid = child.pid!;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#running = false;
        const error = new Error(`node process ${name} exited (${signal ?? code})`);
        for (const { reject, timer } of this.#pending.values()) {
          clearTimeout(timer);
          reject(error);
        }
        this.#pending.clear();
        this.onStart?.(error);
        this.onStart = undefined;
        this.emit('exit', code, signal);
        resolve({ code, signal });
      });
    });
    child.on('message', (message: ChildMessage) => this.#onMessage(message));
    // A dead child's channel errors (EPIPE) must not crash the test process.
    child.on('error', () => {});
  }

  get running(): boolean {
    return this.#running;
  }

  #onMessage(message: ChildMessage): void {
    switch (message.type) {
      case 'ready':
        this.creation = message.creation;
        this.onStart?.(undefined);
        this.onStart = undefined;
        return;
      case 'failed':
        this.onStart?.(new NodeProcessError(message.error));
        this.onStart = undefined;
        return;
      case 'event':
        if (message.event === 'nodeup') this.peers.add(message.node);
        else this.peers.delete(message.node);
        this.emit(message.event, message.node);
        return;
      case 'custom':
        this.onCustomEvent?.(this.name, message.event, message.data);
        this.emit('custom', message.event, message.data);
        return;
      case 'reply': {
        const pending = this.#pending.get(message.id);
        if (pending === undefined) return;
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(new NodeProcessError(message.error));
        return;
      }
    }
  }

  request<C extends NodeProcessCommand>(command: C, timeout = 15_000): Promise<NodeProcessResults[C['cmd']]> {
    if (!this.#running || !this.child.connected) {
      return Promise.reject(new Error(`node process ${this.name} is not running`));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`node process ${this.name}: no reply to ${command.cmd} within ${timeout} ms`));
      }, timeout);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.send({ type: 'request', id, command } satisfies ParentMessage);
    });
  }

  invoke<T = unknown>(fn: string, args?: unknown, timeout?: number): Promise<T> {
    if (typeof fn !== 'string' || fn.length === 0) return Promise.reject(new TypeError(`node process ${this.name}: invoke needs a function name, got ${String(fn)}`));
    const command: NodeProcessCommand = args === undefined ? { cmd: 'invoke', fn } : { cmd: 'invoke', fn, args };
    return this.request(command, timeout) as Promise<T>;
  }

  async spawnEcho(localName?: string): Promise<Pid> {
    const fields = await this.request(localName === undefined ? { cmd: 'spawnEcho' } : { cmd: 'spawnEcho', localName });
    return new Pid(fields.node, fields.creation, fields.id);
  }

  waitForPeer(peer: string, timeout = 10_000): Promise<void> {
    if (this.peers.has(peer)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const listener = (name: string): void => {
        if (name !== peer) return;
        clearTimeout(timer);
        this.off('nodeup', listener);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('nodeup', listener);
        reject(new Error(`node process ${this.name}: no nodeup for ${peer} within ${timeout} ms`));
      }, timeout);
      this.on('nodeup', listener);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.#running) this.child.kill(signal);
  }

  stop(timeout = 5000): Promise<void> {
    return (this.#stopping ??= this.#stop(timeout));
  }

  async #stop(timeout: number): Promise<void> {
    if (!this.#running) return;
    const killer = setTimeout(() => this.child.kill('SIGKILL'), timeout);
    this.request({ cmd: 'stop' }, timeout).catch(() => this.child.kill('SIGKILL'));
    await this.exited;
    clearTimeout(killer);
  }
}

/** Rebuilds a pid a node process reported. */
export function pidOf(fields: PidFields): Pid {
  return new Pid(fields.node, fields.creation, fields.id);
}
