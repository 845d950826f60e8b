/**
 * Shared machinery of the globals integration tests (globals-model,
 * globals-faults, globals-amqp): a `World` of N nodes, each with a
 * GlobalsRegistry and a pool of small probe processes whose every message
 * and exit reason the test can see, plus the invariant checks of DESIGN.md
 * section 3 that every test runs after settling.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BadArgError, canonicalName, isDownMessage, via, type ExitReason, type Name, type Node, type Pid } from '@roster/core';
import type { MemoryBroker } from '@roster/cluster';
import { GlobalsRegistry, RegistryUnavailableError, type ConflictOutcome, type ConflictPolicy } from '@roster/globals';
import type { AmqpTransportOptions } from '@roster/amqp';
import { startCluster, type ClusterHarness } from '@roster/testkit';
import { within as withinDeadline } from '@roster/testkit';

export const envSeed = process.env['ROSTER_SEED'];
/** fast-check parameters honouring ROSTER_SEED (fast-check prints the seed and the shrunk case on failure). */
export function fcParams(numRuns: number): { numRuns: number; seed?: number } {
  const override = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};
  // ROSTER_NUM_RUNS scales every property up (soak) or down.
  const runs = Number(process.env['ROSTER_NUM_RUNS'] ?? '');
  return { numRuns: Number.isSafeInteger(runs) && runs > 0 ? runs : numRuns, ...override };
}

/**
 * `fc.assert` that also prints the failing assertion: fast-check puts the
 * error as `cause`, which the node:test reporter does not show.
 */
export async function assertProperty<T>(property: fc.IAsyncPropertyWithHooks<T>, numRuns: number): Promise<void> {
  try {
    await fc.assert(property, fcParams(numRuns));
  } catch (error) {
    if (error instanceof Error && error.cause instanceof Error) error.message += `\nCause: ${error.cause.stack ?? error.cause.message}`;
    throw error;
  }
}

/** `within` of @roster/testkit (its timer keeps the process up while a failure detection is awaited), in this file's argument order. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withinDeadline(promise, what, ms);
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
  /** AmqpTransport options besides the URL (`transport: 'amqp'`). */
  readonly amqp?: Omit<AmqpTransportOptions, 'urls'>;
  /** The cluster secret (signed frames); default none. */
  readonly secret?: string;
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
  /** nodeup / nodedown events seen by any node so far. */
  membershipEvents = 0;

  private constructor(
    readonly harness: ClusterHarness,
    readonly options: WorldOptions,
  ) {}

  static async start(options: WorldOptions): Promise<World> {
    const pending = new Map<string, GlobalsRegistry>();
    const harness = await startCluster({
      nodes: options.nodes,
      transport: options.transport,
      ...(options.broker === undefined ? {} : { broker: options.broker }),
      ...(options.amqpUrl === undefined ? {} : { amqpUrl: options.amqpUrl }),
      ...(options.heartbeatInterval === undefined ? {} : { heartbeatInterval: options.heartbeatInterval }),
      ...(options.failureTimeout === undefined ? {} : { failureTimeout: options.failureTimeout }),
      ...(options.membershipTimeout === undefined ? {} : { membershipTimeout: options.membershipTimeout }),
      ...(options.amqp === undefined ? {} : { amqp: options.amqp }),
      ...(options.secret === undefined ? {} : { secret: options.secret }),
      registries: (name) => {
        const registry = World.#newRegistry(options);
        pending.set(name, registry);
        return { globals: registry };
      },
    });
    const world = new World(harness, options);
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
    node.on('nodeup', () => this.membershipEvents++);
    node.on('nodedown', () => this.membershipEvents++);
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

  /** `sync()` on every live node, twice by default: what one round's anti-entropy releases reaches everyone in the second. */
  async syncAll(ms = 10_000, rounds = 2): Promise<void> {
    for (let round = 0; round < rounds; round++) {
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
    const universeKeys = new Set(universe.map(canonicalName));
    assert.deepEqual(
      keys.filter((key) => universeKeys.has(key)),
      [...agreed.keys()].sort(),
      `${context}: registered() is not the set of owned names`,
    );
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

  /**
   * A node that was not part of the world joins the running cluster (or one
   * whose old incarnation is gone comes back); resolves when its
   * `Node.start` does, with nothing awaited after it.
   */
  async join(name: string): Promise<Node> {
    const existing = this.#nodes.get(name);
    if (existing !== undefined && existing.alive && !this.crashed.has(name)) throw new Error(`${name} is already running`);
    const registry = World.#newRegistry(this.options);
    const node = await this.harness.startNode(name, { registries: { globals: registry } });
    this.#adopt(node, registry);
    this.crashed.delete(name);
    return node;
  }

  /**
   * Stops a node gracefully (`node.stop()`: its processes exit, then it
   * leaves); it counts as down (in `crashed`) until `restart` or `join`.
   */
  async stopNode(name: string): Promise<void> {
    const node = this.node(name);
    for (const probe of this.probes.values()) if (probe.pid.node === name && probe.pid.creation === node.creation) probe.nodeGone = true;
    this.crashed.add(name);
    await within(node.stop(), 10_000, `graceful stop of ${name}`);
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

// ---- the model: commands, pools, the sequential runner and the batch runner ----------------------

export const NODES = ['a', 'b', 'c'] as const;
export const SLOTS = 3;

export type Command =
  | { readonly k: 'register'; readonly at: number; readonly owner: number; readonly slot: number; readonly name: number }
  | { readonly k: 'unregister'; readonly at: number; readonly name: number }
  | { readonly k: 'whereis'; readonly at: number; readonly name: number }
  | { readonly k: 'registered'; readonly at: number }
  | { readonly k: 'send'; readonly at: number; readonly name: number; readonly viaNode: boolean }
  | { readonly k: 'kill'; readonly owner: number; readonly slot: number }
  | { readonly k: 'respawn'; readonly owner: number; readonly slot: number }
  | { readonly k: 'consistent'; readonly at: number; readonly name: number };

export const nodeArb = fc.integer({ min: 0, max: NODES.length - 1 });
export const slotArb = fc.integer({ min: 0, max: SLOTS - 1 });
export const nameArb = fc.integer({ min: 0, max: NAMES.length - 1 });

/** Commands; `register` mostly on the registrant's own node, sometimes on another (a BadArgError). */
export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({ owner: nodeArb, slot: slotArb, name: nameArb, cross: fc.integer({ min: 0, max: 9 }), other: nodeArb })
      .map(({ owner, slot, name, cross, other }) => ({ k: 'register' as const, at: cross === 0 ? other : owner, owner, slot, name })),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('unregister' as const), at: nodeArb, name: nameArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('whereis' as const), at: nodeArb, name: nameArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('registered' as const), at: nodeArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('send' as const), at: nodeArb, name: nameArb, viaNode: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('kill' as const), owner: nodeArb, slot: slotArb }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('respawn' as const), owner: nodeArb, slot: slotArb }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('consistent' as const), at: nodeArb, name: nameArb }) },
);

export const nodeOf = (index: number): string => NODES[index]!;
export const nameOf = (index: number): Name => NAMES[index]!;

/** Pools of probes per node, by slot. */
export type Pools = Map<string, Probe[]>;

export async function freshPools(world: World): Promise<Pools> {
  const pools: Pools = new Map();
  for (const node of NODES) {
    const pool: Probe[] = [];
    for (let slot = 0; slot < SLOTS; slot++) pool.push(await world.spawn(node));
    pools.set(node, pool);
  }
  return pools;
}

export const slotOf = (pools: Pools, owner: number, slot: number): Probe => pools.get(nodeOf(owner))![slot]!;

let tokens = 0;

/** Kills every probe of the run and checks every node forgot every name. */
export async function cleanup(world: World, pools: Pools): Promise<void> {
  for (const pool of pools.values()) for (const probe of pool) if (world.isAlive(probe.pid)) await world.kill(probe.pid);
  await world.syncAll();
  for (const node of world.liveNames) assert.deepEqual(world.registeredKeys(node), [], `names left on ${node} after every registrant died`);
}

export async function runSequential(world: World, pools: Pools, model: Map<string, Pid>, command: Command, context: string): Promise<void> {
  switch (command.k) {
    case 'register': {
      const probe = slotOf(pools, command.owner, command.slot);
      const name = nameOf(command.name);
      const key = canonicalName(name);
      const alive = world.isAlive(probe.pid);
      const outcome = await classify(world.registry(nodeOf(command.at)).registerName(name, probe.pid));
      const expected: RegisterOutcome = !alive || command.at !== command.owner ? 'badarg' : model.has(key) ? 'no' : 'yes';
      assert.equal(outcome, expected, context);
      if (outcome === 'yes') model.set(key, probe.pid);
      return;
    }
    case 'unregister': {
      const name = nameOf(command.name);
      const key = canonicalName(name);
      const owner = model.get(key);
      const registry = world.registry(nodeOf(command.at));
      // Any node's unregister acts (global:unregister_name), and when it resolves no node resolves the name.
      const acts = owner !== undefined;
      const gone = acts ? world.liveNames.map((node) => unregisteredEvent(world.registry(node), name, 2000, `${context}: unregistered on ${node}`)) : [];
      await registry.unregisterName(command.at % 2 === 0 ? name : respell(name));
      if (acts) {
        model.delete(key);
        await Promise.all(gone);
        // The owner process keeps running: unregistering is not killing.
        assert.ok(world.isAlive(owner), `${context}: unregister killed ${owner.key}`);
      }
      return;
    }
    case 'whereis': {
      const expected = model.get(canonicalName(nameOf(command.name)));
      assert.equal(world.registry(nodeOf(command.at)).whereisName(nameOf(command.name))?.key, expected?.key, context);
      assert.equal(world.node(nodeOf(command.at)).whereis(via('globals', nameOf(command.name)))?.key, expected?.key, context);
      return;
    }
    case 'registered':
      assert.deepEqual(world.registeredKeys(nodeOf(command.at)), [...model.keys()].sort(), context);
      return;
    case 'send': {
      const name = nameOf(command.name);
      const owner = model.get(canonicalName(name));
      const token = { token: ++tokens };
      const at = nodeOf(command.at);
      const send = (): Pid | undefined =>
        command.viaNode ? (world.node(at).send(via('globals', name), token), undefined) : world.registry(at).send(name, token);
      if (owner === undefined) {
        assert.throws(send, BadArgError, `${context}: send to a free name must throw BadArgError`);
        return;
      }
      const returned = send();
      if (returned !== undefined) assert.ok(returned.equals(owner), `${context}: send returned ${returned.key}, owner is ${owner.key}`);
      const inbox = world.probe(owner).inbox;
      await world.syncAll(); // a round trip to every node: the message (FIFO behind nothing) has arrived
      // Across nodes the message arrives decoded (a copy): match it by value.
      const isToken = (message: unknown): boolean => (message as { token?: unknown } | null)?.token === token.token;
      await waitFor(() => inbox.some(isToken), 2000, `${context}: delivery to ${owner.key}`);
      for (const probe of world.probes.values()) {
        if (!probe.pid.equals(owner)) assert.ok(!probe.inbox.some(isToken), `${context}: ${probe.pid.key} got it too`);
      }
      return;
    }
    case 'kill': {
      const probe = slotOf(pools, command.owner, command.slot);
      if (!world.isAlive(probe.pid)) return;
      const held = [...model].filter(([, pid]) => pid.equals(probe.pid)).map(([key]) => NAMES.find((n) => canonicalName(n) === key)!);
      const gone = held.flatMap((name) =>
        world.liveNames.map((node) => unregisteredEvent(world.registry(node), name, 2000, `${context}: unregistered on ${node}`)),
      );
      const reason = await world.kill(probe.pid);
      assert.equal(reason, 'killed', context);
      // Invariant 4: gone on every node within a round trip, without anyone calling sync().
      await Promise.all(gone);
      for (const name of held) {
        model.delete(canonicalName(name));
        for (const node of NODES) assert.equal(world.registry(node).whereisName(name), undefined, `${context}: ${node} still has it`);
      }
      return;
    }
    case 'respawn': {
      const pool = pools.get(nodeOf(command.owner))!;
      if (!world.isAlive(pool[command.slot]!.pid)) pool[command.slot] = await world.spawn(nodeOf(command.owner));
      return;
    }
    case 'consistent': {
      const expected = model.get(canonicalName(nameOf(command.name)));
      const actual = await world.registry(nodeOf(command.at)).whereisNameConsistent(nameOf(command.name));
      assert.equal(actual?.key, expected?.key, context);
      return;
    }
  }
}

/** Resolves once `predicate` holds, checking on every macrotask turn; rejects after `ms`. */
export async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---- the concurrent variant ---------------------------------------------------------------

/** A batch: commands issued from all nodes at the same moment. */
export const batchArb = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record({ owner: nodeArb, slot: slotArb, name: fc.integer({ min: 0, max: 2 }) })
        .map(({ owner, slot, name }) => ({ k: 'register' as const, at: owner, owner, slot, name })),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('unregister' as const), at: nodeArb, name: fc.integer({ min: 0, max: 2 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('kill' as const), owner: nodeArb, slot: slotArb }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('respawn' as const), owner: nodeArb, slot: slotArb }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('send' as const), at: nodeArb, name: fc.integer({ min: 0, max: 2 }), viaNode: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('consistent' as const), at: nodeArb, name: fc.integer({ min: 0, max: 2 }) }) },
  ) as fc.Arbitrary<Command>,
  { minLength: 1, maxLength: 8 },
);

/** What the batch runner saw, so a test can check its batches really raced. */
export const raceStats = { racedNames: 0, yes: 0, no: 0 };

/** Registrations that answered yes and whose name the test has not unregistered since, by canonical name. */
export interface Ledger {
  /** Every pid that ever got a `yes` for a name. */
  readonly granted: Map<string, Pid[]>;
  /** `yes` answers still expected to hold (while their process lives). */
  readonly holds: Map<string, Pid>;
}

/**
 * Runs one batch concurrently and checks the invariants that hold whatever
 * the interleaving. Exported for the fault and AMQP tests.
 */
export async function runBatch(world: World, pools: Pools, ledger: Ledger, batch: readonly Command[], context: string): Promise<void> {
  const before = world.checkAgreement(NAMES, `${context} (before)`);
  const results: { command: Command; outcome?: RegisterOutcome; pid?: Pid }[] = [];
  /** Pids the batch killed (taken when the kill is issued: a respawn in the same batch refills the slot). */
  const killedPids = new Set<string>();
  // Everything is issued in this one synchronous loop: the batch races.
  const running = batch.map(async (command) => {
    switch (command.k) {
      case 'register': {
        const probe = slotOf(pools, command.owner, command.slot);
        const outcome = await classify(world.registry(nodeOf(command.at)).registerName(nameOf(command.name), probe.pid));
        results.push({ command, outcome, pid: probe.pid });
        return;
      }
      case 'unregister':
        await world.registry(nodeOf(command.at)).unregisterName(nameOf(command.name));
        return;
      case 'kill': {
        const probe = slotOf(pools, command.owner, command.slot);
        killedPids.add(probe.pid.key);
        if (world.isAlive(probe.pid)) await world.kill(probe.pid);
        return;
      }
      case 'respawn': {
        const pool = pools.get(nodeOf(command.owner))!;
        if (!world.isAlive(pool[command.slot]!.pid)) pool[command.slot] = await world.spawn(nodeOf(command.owner));
        return;
      }
      case 'send':
        try {
          world.registry(nodeOf(command.at)).send(nameOf(command.name), { token: ++tokens });
        } catch (error) {
          if (!(error instanceof BadArgError)) throw error;
        }
        return;
      case 'consistent': {
        const pid = await world.registry(nodeOf(command.at)).whereisNameConsistent(nameOf(command.name));
        if (pid !== undefined) results.push({ command, pid });
        return;
      }
      default:
        return;
    }
  });
  await within(Promise.all(running), 10_000, `${context}: the batch`);
  await world.syncAll();
  const agreed = world.checkAgreement(NAMES, context);

  for (const [index, name] of NAMES.entries()) {
    const key = canonicalName(name);
    const registrations = results.filter((r) => r.command.k === 'register' && r.command.name === index);
    const yes = registrations.filter((r) => r.outcome === 'yes');
    for (const r of registrations) assert.notEqual(r.outcome, 'unavailable', `${context}: ${key}: unavailable without faults`);
    for (const r of yes) {
      (ledger.granted.get(key) ?? ledger.granted.set(key, []).get(key)!).push(r.pid!);
      ledger.holds.set(key, r.pid!);
    }
    const unregistered = batch.some((c) => c.k === 'unregister' && c.name === index);
    const previous = before.get(key);
    const touched = unregistered || [previous, ...registrations.map((r) => r.pid)].some((pid) => pid !== undefined && killedPids.has(pid.key));
    if (registrations.length >= 2) raceStats.racedNames++;
    raceStats.yes += yes.length;
    raceStats.no += registrations.filter((r) => r.outcome === 'no').length;
    if (!touched) {
      // Uniqueness among racing claims: nothing freed the name during the batch, so at most one won, none if it was held.
      assert.ok(yes.length <= 1, `${context}: ${yes.length} registrations of ${key} answered yes: ${yes.map((r) => r.pid!.key).join(', ')}`);
      if (previous !== undefined) assert.equal(yes.length, 0, `${context}: ${key} was held by ${previous.key}, yet a claim won`);
    }
    if (unregistered) {
      // An unregister racing the registration may land before or after it: no expectation for this name's holder.
      const held = ledger.holds.get(key);
      if (held !== undefined) ledger.holds.delete(key);
    }
    const owner = agreed.get(key);
    if (owner !== undefined) {
      // Nobody holds a name without a yes.
      assert.ok(ledger.granted.get(key)?.some((pid) => pid.equals(owner)), `${context}: ${key} held by ${owner.key}, which never got a yes`);
    }
  }
  for (const [key, pid] of [...ledger.holds]) {
    if (!world.isAlive(pid)) {
      ledger.holds.delete(key);
      continue;
    }
    assert.ok(agreed.get(key)?.equals(pid), `${context}: ${pid.key} got yes for ${key} and lives, but ${agreed.get(key)?.key ?? 'nobody'} holds it`);
  }
}



/** Every node agrees with `model` (name -> owner): whereisName (also respelt), registered(), no ghosts. */
export function checkModel(world: World, model: ReadonlyMap<string, Pid>, context: string): void {
  const agreed = world.checkAgreement(NAMES, context);
  for (const name of NAMES) {
    const expected = model.get(canonicalName(name));
    const actual = agreed.get(canonicalName(name));
    assert.ok(
      expected === undefined ? actual === undefined : actual?.equals(expected) === true,
      `${context}: ${canonicalName(name)} is ${actual?.key ?? 'free'}, the model says ${expected?.key ?? 'free'}`,
    );
    // The same name spelt differently (object keys reordered) is the same name.
    for (const node of world.liveNames) assert.equal(world.registry(node).whereisName(respell(name))?.key, expected?.key, `${context}: respelt on ${node}`);
  }
  for (const node of world.liveNames) assert.deepEqual(world.registeredKeys(node), [...model.keys()].sort(), `${context}: registered() on ${node}`);
}

/**
 * Runs a sequential program against the model: after every command, settle
 * (sync on every node) and compare every node with the model. `model` may
 * start non-empty (names owned by probes outside `pools`).
 */
export async function runSequentialProgram(
  world: World,
  pools: Pools,
  commands: readonly Command[],
  model = new Map<string, Pid>(),
): Promise<void> {
  for (const [step, command] of commands.entries()) {
    const context = `step ${step} ${JSON.stringify(command)}`;
    await runSequential(world, pools, model, command, context);
    await world.syncAll();
    checkModel(world, model, context);
  }
}
