/**
 * Shared machinery of the globals integration tests (globals-model,
 * globals-faults, globals-amqp): a `World` of N nodes, each with a
 * GlobalsRegistry and a pool of small probe processes whose every message
 * and exit reason the test can see, plus the invariant checks of DESIGN.md
 * section 3 that every test runs after settling.
 */
import assert from 'node:assert/strict';
import { BadArgError, canonicalName, isDownMessage, type ExitReason, type Name, type Node, type Pid } from '@roster/core';
import { clusterOf, type MemoryBroker } from '@roster/cluster';
import { GlobalsRegistry, RegistryUnavailableError, type ConflictOutcome, type ConflictPolicy } from '@roster/globals';
import { startCluster, type ClusterHarness } from '@roster/testkit';

export const envSeed = process.env['ROSTER_SEED'];
/** fast-check parameters honouring ROSTER_SEED (fast-check prints the seed and the shrunk case on failure). */
export function fcParams(numRuns: number): { numRuns: number; seed?: number; endOnFailure?: boolean } {
  const override = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};
  return { numRuns, ...override };
}

/** Rejects with a clear message when `promise` takes longer than `ms`; the timer never keeps the process alive. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Resolves when `node` sees `event` for `peer`, unless `already()` holds at once. Bounded. */
export function nodeEvent(node: Node, event: 'nodeup' | 'nodedown', peer: string, already: () => boolean, ms: number): Promise<void> {
  if (already()) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const listener = (name: string): void => {
        if (name !== peer && !already()) return;
        node.off(event, listener);
        resolve();
      };
      node.on(event, listener);
    }),
    ms,
    `${node.name}: ${event} of ${peer}`,
  ).catch((error: unknown) => {
    if (already()) return;
    throw error;
  });
}

/** The registry's 'unregistered' event for `name` (any pid), bounded; subscribe before causing it. */
export function unregisteredEvent(registry: GlobalsRegistry, name: Name, ms: number, what: string): Promise<ExitReason> {
  const key = canonicalName(name);
  let listener: ((n: Name, pid: Pid, reason: ExitReason) => void) | undefined;
  return within(
    new Promise<ExitReason>((resolve) => {
      listener = (n, _pid, reason) => {
        if (canonicalName(n) === key) resolve(reason);
      };
      registry.on('unregistered', listener);
    }),
    ms,
    what,
  ).finally(() => {
    if (listener !== undefined) registry.off('unregistered', listener);
  });
}

/** A probe process and everything the test learned about it. */
export interface Probe {
  readonly pid: Pid;
  /** Every message it received, in order. */
  readonly inbox: unknown[];
  /** Resolves with its exit reason (from a monitor placed before anything could kill it). */
  readonly down: Promise<ExitReason>;
  reason: ExitReason | undefined;
  /** The test killed it (so any reason but `name_conflict` is expected). */
  killedByTest: boolean;
  /** Its node incarnation was stopped or crashed by the test. */
  nodeGone: boolean;
}

export interface RecordedConflict {
  readonly seq: number;
  /** The node whose registry reported it. */
  readonly at: string;
  readonly outcome: ConflictOutcome;
}

export interface WorldOptions {
  readonly transport: 'memory' | 'amqp';
  readonly nodes: readonly string[];
  readonly broker?: MemoryBroker;
  readonly amqpUrl?: string;
  readonly policy?: ConflictPolicy;
  readonly registerTimeout?: number;
  readonly heartbeatInterval?: number;
  readonly failureTimeout?: number;
  readonly membershipTimeout?: number;
}

/**
 * N nodes of one cluster, each with a GlobalsRegistry installed as `globals`.
 * Node names are stable across restarts; `node(name)` is the current incarnation.
 */
export class World {
  readonly #nodes = new Map<string, Node>();
  readonly #registries = new Map<string, GlobalsRegistry>();
  readonly probes = new Map<string, Probe>();
  readonly conflicts: RecordedConflict[] = [];
  /** Crashed by the test and not restarted yet. */
  readonly crashed = new Set<string>();
  /** A logical clock of test actions, to order registrations, unregistrations and conflicts. */
  seq = 0;

  private constructor(
    readonly harness: ClusterHarness,
    readonly options: WorldOptions,
  ) {}

  static async start(options: WorldOptions): Promise<World> {
    let world: World | undefined;
    const pending = new Map<string, GlobalsRegistry>();
    const harness = await startCluster({
      nodes: options.nodes,
      transport: options.transport,
      ...(options.broker === undefined ? {} : { broker: options.broker }),
      ...(options.amqpUrl === undefined ? {} : { amqpUrl: options.amqpUrl }),
      ...(options.heartbeatInterval === undefined ? {} : { heartbeatInterval: options.heartbeatInterval }),
      ...(options.failureTimeout === undefined ? {} : { failureTimeout: options.failureTimeout }),
      ...(options.membershipTimeout === undefined ? {} : { membershipTimeout: options.membershipTimeout }),
      registries: (name) => {
        const registry = World.#newRegistry(options);
        pending.set(name, registry);
        return { globals: registry };
      },
    });
    world = new World(harness, options);
    for (const node of harness.nodes) world.#adopt(node, pending.get(node.name)!);
    await harness.waitForMembership();
    return world;
  }

  static #newRegistry(options: WorldOptions): GlobalsRegistry {
    return new GlobalsRegistry({
      ...(options.policy === undefined ? {} : { conflictPolicy: options.policy }),
      ...(options.registerTimeout === undefined ? {} : { registerTimeout: options.registerTimeout }),
    });
  }

  #adopt(node: Node, registry: GlobalsRegistry): void {
    this.#nodes.set(node.name, node);
    this.#registries.set(node.name, registry);
    registry.on('conflict', (outcome) => this.conflicts.push({ seq: ++this.seq, at: node.name, outcome }));
  }

  get names(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Nodes that are running (not crashed and waiting for a restart). */
  get liveNames(): string[] {
    return this.names.filter((name) => !this.crashed.has(name));
  }

  node(name: string): Node {
    const node = this.#nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  registry(name: string): GlobalsRegistry {
    const registry = this.#registries.get(name);
    if (registry === undefined) throw new Error(`no registry on ${name}`);
    return registry;
  }

  get broker(): MemoryBroker {
    const broker = this.harness.broker;
    if (broker === undefined) throw new Error('not a memory world');
    return broker;
  }

  /**
   * Spawns a probe on `nodeName`: it stores every message it receives; a
   * watcher on the same node monitors it (placed before this resolves) and
   * records its exit reason.
   */
  async spawn(nodeName: string): Promise<Probe> {
    const node = this.node(nodeName);
    const inbox: unknown[] = [];
    const pid = node.spawn(async (self) => {
      for (;;) inbox.push(await self.receive());
    });
    let placed!: () => void;
    const ready = new Promise<void>((resolve) => {
      placed = resolve;
    });
    const down = new Promise<ExitReason>((resolve) => {
      node.spawn(async (self) => {
        const ref = self.monitor(pid);
        placed();
        const message = await self.receive((m) => isDownMessage(m) && m.ref.equals(ref));
        if (isDownMessage(message)) resolve(message.reason);
      });
    });
    const probe: Probe = { pid, inbox, down, reason: undefined, killedByTest: false, nodeGone: false };
    void down.then((reason) => {
      probe.reason = reason;
    });
    this.probes.set(pid.key, probe);
    await within(ready, 2000, `the monitor of ${pid.key}`);
    return probe;
  }

  probe(pid: Pid): Probe {
    const probe = this.probes.get(pid.key);
    if (probe === undefined) throw new Error(`${pid.key} is not a probe`);
    return probe;
  }

  /** Whether `pid` is a live process of the current incarnation of its node. */
  isAlive(pid: Pid): boolean {
    const node = this.#nodes.get(pid.node);
    return node !== undefined && !this.crashed.has(pid.node) && node.creation === pid.creation && node.isAlive(pid);
  }

  /** Kills a probe (`exit(pid, 'kill')`) and resolves with its reason once its monitor saw it go. */
  async kill(pid: Pid): Promise<ExitReason> {
    const probe = this.probe(pid);
    if (this.isAlive(pid)) {
      probe.killedByTest = true;
      this.node(pid.node).exit(pid, 'kill');
    }
    return within(probe.down, 2000, `DOWN of ${pid.key}`);
  }

  /** `sync()` on every live node, twice: what one round's anti-entropy releases reaches everyone in the second. */
  async syncAll(ms = 10_000): Promise<void> {
    for (let round = 0; round < 2; round++) {
      await within(Promise.all(this.liveNames.map((name) => this.registry(name).sync())), ms, `sync round ${round + 1}`);
    }
  }

  /** The owner of `name` as each live node sees it (`undefined`: free). */
  views(name: Name): Map<string, Pid | undefined> {
    return new Map(this.liveNames.map((node) => [node, this.registry(node).whereisName(name)]));
  }

  /** One node's names, canonical and sorted. */
  registeredKeys(node: string): string[] {
    return this.registry(node).registered().map(canonicalName).sort();
  }

  /**
   * Invariants 1 and 4 once settled: every live node has the same owner for
   * every name (and the same registered() set), and no name points at a dead
   * process. Returns the agreed owners by canonical name.
   */
  checkAgreement(universe: readonly Name[], context: string): Map<string, Pid> {
    const live = this.liveNames;
    const first = live[0];
    assert.ok(first !== undefined, 'no live node');
    const agreed = new Map<string, Pid>();
    for (const name of universe) {
      const views = this.views(name);
      const owner = views.get(first);
      for (const [node, pid] of views) {
        assert.ok(
          pid === owner || (pid !== undefined && owner !== undefined && pid.equals(owner)),
          `${context}: nodes disagree on ${canonicalName(name)}: ${[...views].map(([n, p]) => `${n}=${p?.key ?? 'none'}`).join(' ')} (${node})`,
        );
      }
      if (owner !== undefined) {
        assert.ok(this.isAlive(owner), `${context}: ghost: ${canonicalName(name)} -> dead ${owner.key}`);
        agreed.set(canonicalName(name), owner);
      }
    }
    const keys = this.registeredKeys(first);
    for (const node of live) assert.deepEqual(this.registeredKeys(node), keys, `${context}: registered() differs on ${node} and ${first}`);
    assert.deepEqual(keys, [...agreed.keys()].sort(), `${context}: registered() is not the set of owned names`);
    return agreed;
  }

  /** Simulates a crash: the node's transport dies without a word (memory only). */
  crash(name: string): void {
    this.broker.crash(name);
    this.crashed.add(name);
  }

  /**
   * Restarts a crashed node under the same name once every live peer that
   * still lists it has seen it go (failure timeout), stopping the old
   * incarnation (its processes die).
   */
  async restart(name: string): Promise<void> {
    const old = this.node(name);
    const timeout = (this.options.failureTimeout ?? 3000) * 4 + 2000;
    await Promise.all(
      this.liveNames
        .filter((other) => other !== name)
        .map((other) => {
          const node = this.node(other);
          return nodeEvent(node, 'nodedown', name, () => !node.nodes().includes(name), timeout);
        }),
    );
    for (const probe of this.probes.values()) if (probe.pid.node === name && probe.pid.creation === old.creation) probe.nodeGone = true;
    await within(old.stop(), 10_000, `stop of crashed ${name}`);
    const registry = World.#newRegistry(this.options);
    const node = await this.harness.startNode(name, { registries: { globals: registry } });
    this.#adopt(node, registry);
    this.crashed.delete(name);
  }

  /** Every live node sees every other live node. */
  async waitForMembership(ms = 10_000): Promise<void> {
    const live = this.liveNames.map((name) => this.node(name));
    await Promise.all(
      live.flatMap((node) =>
        live
          .filter((other) => other !== node)
          .map((other) => nodeEvent(node, 'nodeup', other.name, () => node.nodes().includes(other.name), ms)),
      ),
    );
  }

  /** Stops every node; idempotent. */
  async stop(): Promise<void> {
    await this.harness.stopAll();
  }

  isMember(from: string, peer: string): boolean {
    return clusterOf(this.node(from))?.isMember(peer) ?? false;
  }
}

/** What a registration came to, as the tests classify it. */
export type RegisterOutcome = 'yes' | 'no' | 'unavailable' | 'badarg';

export async function classify(attempt: Promise<'yes' | 'no'>): Promise<RegisterOutcome> {
  try {
    return await attempt;
  } catch (error) {
    if (error instanceof RegistryUnavailableError) return 'unavailable';
    if (error instanceof BadArgError) return 'badarg';
    throw error;
  }
}

/** `true` when `reason` is `{ name_conflict: ... }`. */
export function isNameConflictReason(reason: ExitReason | undefined): reason is { name_conflict: { name: Name; winner: Pid | undefined } } {
  return typeof reason === 'object' && reason !== null && !(reason instanceof Error) && 'name_conflict' in reason;
}

/** `{ type: 'name_conflict', name }` messages a probe got for `name`. */
export function conflictMessages(probe: Probe, name: Name): unknown[] {
  const key = canonicalName(name);
  return probe.inbox.filter(
    (message) =>
      typeof message === 'object' &&
      message !== null &&
      (message as { type?: unknown }).type === 'name_conflict' &&
      canonicalName((message as { name: Name }).name) === key,
  );
}

/** The JSON names the tests use: strings, a number, an object (keys in another order elsewhere) and an array. */
export const NAMES: readonly Name[] = ['alpha', 'beta', 'gamma', 42, { svc: 'db', shard: 1 }, ['queue', 7]];

/** The same names as other code would spell them: object keys in another order. */
export function respell(name: Name): Name {
  if (typeof name === 'object' && name !== null && !Array.isArray(name)) {
    return Object.fromEntries(Object.entries(name).reverse()) as Name;
  }
  return name;
}
