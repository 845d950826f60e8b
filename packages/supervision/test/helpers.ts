/**
 * Test machinery for cluster-wide supervision: nodes on one MemoryBroker
 * with a GlobalsRegistry and the test behaviours registered, a `Counter`
 * child that keeps state and hands it over, and a probe that every child
 * instance enters when it starts and leaves when it exits, so two live
 * instances of one child among connected nodes are caught the moment the
 * second starts, not only after settling.
 */
import { EventEmitter } from 'eventemitter3';
import { Node, noreply, reply, stop, type Name, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, clusterOf, type ClusterOptions } from '@roster/cluster';
import { GlobalsRegistry, type GlobalsRegistryOptions } from '@roster/globals';
import type { ChildContext, DistributedBehaviour } from '@roster/supervision';
import { within } from '@roster/testkit';

export interface Instance {
  readonly child: string;
  readonly node: Node;
  readonly pid: Pid;
  readonly context: ChildContext | undefined;
  readonly args: unknown;
}

/** Every live child instance in this test process, checked for duplicates as each one starts. */
export class InstanceProbe extends EventEmitter<{ change: () => void }> {
  readonly live = new Map<string, Instance[]>();
  readonly violations: string[] = [];
  readonly starts: Instance[] = [];
  readonly exits: { child: string; node: string; reason: unknown }[] = [];

  enter(instance: Instance): void {
    const list = this.live.get(instance.child) ?? [];
    for (const other of list) {
      if (connected(other.node, instance.node)) {
        this.violations.push(`${instance.child}: ${instance.pid.key} on ${instance.node.name} started while ${other.pid.key} on ${other.node.name} runs, both connected`);
      }
    }
    list.push(instance);
    this.live.set(instance.child, list);
    this.starts.push(instance);
    instance.node.watchExit(instance.pid, (reason) => {
      const now = this.live.get(instance.child) ?? [];
      this.live.set(instance.child, now.filter((entry) => entry !== instance));
      this.exits.push({ child: instance.child, node: instance.node.name, reason });
      this.emit('change');
    });
    this.emit('change');
  }

  /** Live instances of `child` on nodes that are up. */
  running(child: string): Instance[] {
    return (this.live.get(child) ?? []).filter((instance) => instance.node.alive);
  }
}

/** Whether two nodes are members of each other's cluster view (a duplicate across a cut is allowed). */
export function connected(a: Node, b: Node): boolean {
  if (a === b) return a.alive;
  if (!a.alive || !b.alive) return false;
  return clusterOf(a)?.isMember(b.name) === true && clusterOf(b)?.isMember(a.name) === true;
}

interface CounterState {
  count: number;
  readonly child: string;
}

/** A child with a count it hands over; `crash` crashes it, `get` answers the count, the context and its node. */
export function counterBehaviour(probe: InstanceProbe): DistributedBehaviour<CounterState, unknown> {
  return {
    init(args, self, context) {
      const child = context?.childId ?? 'unknown';
      probe.enter({ child, node: self.node, pid: self.pid, context, args });
      const handed = context?.handoff as { count?: number } | undefined;
      return { count: typeof handed?.count === 'number' ? handed.count : 0, child };
    },
    handleCall(request, _from, state, self) {
      if (request === 'get') return reply({ count: state.count, node: self.node.name, child: state.child }, state);
      if (request === 'bump') return reply(++state.count, state);
      if (request === 'crash') throw new Error('crash requested');
      if (request === 'stop_normal') return stop('normal', state) as never;
      return reply(undefined, state);
    },
    handleCast(message, state) {
      if (message === 'crash') throw new Error('crash requested');
      return noreply(state);
    },
    handoff(state) {
      return { count: state.count };
    },
  };
}

export interface TestNodeOptions {
  readonly cluster?: Omit<ClusterOptions, 'transport'>;
  readonly registry?: GlobalsRegistryOptions;
  /** Behaviour keys to register; default `counter`. */
  readonly behaviours?: readonly string[];
}

/** Nodes started by a test, stopped after it. */
export class TestWorld {
  readonly nodes = new Map<string, Node>();
  readonly probe = new InstanceProbe();

  constructor(readonly broker: MemoryBroker = new MemoryBroker()) {}

  async start(name: string, options: TestNodeOptions = {}): Promise<Node> {
    const node = await Node.start({
      name,
      logLevel: 'silent',
      cluster: { ...options.cluster, transport: new MemoryTransport({ broker: this.broker }) },
      registries: { globals: new GlobalsRegistry(options.registry) },
    });
    for (const key of options.behaviours ?? ['counter']) node.behaviours.register(key, counterBehaviour(this.probe));
    this.nodes.set(name, node);
    return node;
  }

  node(name: string): Node {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /** The broker forgets `name` without a word (its peers' failure detectors must notice), and its processes die with it. */
  async crash(name: string): Promise<void> {
    this.broker.crash(name);
    const node = this.nodes.get(name);
    this.nodes.delete(name);
    await node?.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.stop()));
    this.nodes.clear();
  }

  /** Resolves once `check()` holds, re-checked whenever a child instance starts or exits; fails after `ms`. */
  until(check: () => boolean, what: string, ms: number): Promise<void> {
    if (check()) return Promise.resolve();
    return within(
      new Promise<void>((resolve) => {
        const listener = (): void => {
          if (!check()) return;
          this.probe.off('change', listener);
          clearInterval(timer);
          resolve();
        };
        this.probe.on('change', listener);
        // Table changes that start or stop nothing (a record moving) are seen at the next instance change or tick.
        const timer = setInterval(listener, 50);
        timer.unref();
      }),
      what,
      ms,
    );
  }
}

export function nameOf(supervisor: string, child: string): Name {
  return [supervisor, child];
}
