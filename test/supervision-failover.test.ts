/**
 * Cluster-wide supervision on the MemoryTransport at the shipped default
 * timings (heartbeat 1 s, failure timeout 3 s): failover after a node's
 * loss, quorum gating across a partition, the heal, handoff, migrate,
 * singletons, and a restarted node that must not run anything twice. The
 * probe of helpers.ts fails a test the moment two instances of one child
 * run on connected nodes.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { via, type Node } from '@roster/core';
import { clusterOf } from '@roster/cluster';
import type { GlobalsRegistry } from '@roster/globals';
import { DistributedSupervisor, Singleton, SupervisionError, type DistributedChildSpec } from '@roster/supervision';
import { TestWorld, nameOf } from '../packages/supervision/test/helpers.ts';

let world: TestWorld;

afterEach(async () => {
  await world?.stopAll();
  assert.deepEqual(world?.probe.violations ?? [], [], 'two instances of one child ran on connected nodes');
});

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');

function children(count: number, extra: Partial<DistributedChildSpec> = {}): DistributedChildSpec[] {
  return Array.from({ length: count }, (_, index) => ({ id: `c${index}`, behaviour: 'counter', ...extra }));
}

/**
 * Starts a member on each node, waits until every member sees all of them,
 * then adds `dynamic` children from the first node (children in the spec
 * itself are placed by the first member, before the others exist).
 */
async function startGroup(
  names: readonly string[],
  spec: Parameters<typeof DistributedSupervisor.start>[1],
  dynamic: readonly DistributedChildSpec[] = [],
): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const name of names) nodes.push(await world.start(name));
  for (const node of nodes) await DistributedSupervisor.start(node, spec);
  for (const node of nodes) {
    const deadline = Date.now() + 5000;
    while ((await DistributedSupervisor.members(node, spec.id)).length < names.length) {
      assert.ok(Date.now() < deadline, `${node.name} never saw every member`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  await Promise.all(dynamic.map((child) => DistributedSupervisor.startChild(nodes[0]!, spec.id, child)));
  return nodes;
}

/** Every child runs exactly once, on a node that is up, and every node's member lists it there. */
async function settled(ids: readonly string[], ms: number): Promise<void> {
  await world.until(
    () => ids.every((id) => world.probe.running(id).length === 1),
    `each of ${ids.length} children running exactly once`,
    ms,
  );
}

describe('DistributedSupervisor failover (MemoryTransport, default timings)', () => {
  test('children spread over the nodes; whichChildren answers the same from every node', async () => {
    world = new TestWorld();
    const ids = children(6).map((child) => child.id);
    const nodes = await startGroup(['a', 'b', 'c'], { id: 'spread' }, children(6));
    await settled(ids, 5000);
    const hosts = new Set(ids.map((id) => world.probe.running(id)[0]!.node.name));
    assert.equal(hosts.size, 3, 'round_robin placed children on every node');
    for (const node of nodes) {
      const listed = await DistributedSupervisor.whichChildren(node, 'spread');
      assert.deepEqual(listed.map((child) => child.id), ids);
      for (const child of listed) {
        const instance = world.probe.running(child.id)[0]!;
        assert.equal(child.state, 'running', `${node.name} sees ${child.id} running`);
        assert.equal(child.node, instance.node.name);
        assert.ok(child.pid?.equals(instance.pid));
      }
      const counts = await DistributedSupervisor.countChildren(node, 'spread');
      assert.equal(counts.specs, 6);
      assert.equal(counts.active, 6);
    }
    // A call by the child's global name reaches it from any node.
    const reply = (await nodes[0]!.call(via('globals', nameOf('spread', 'c4')), 'get')) as { node: string };
    assert.equal(reply.node, world.probe.running('c4')[0]!.node.name);
  });

  test("a crashed node's children run again on the survivors within the failure timeout plus a round trip", async () => {
    world = new TestWorld();
    const ids = children(9).map((child) => child.id);
    const nodes = await startGroup(['a', 'b', 'c'], { id: 'failover' }, children(9));
    await settled(ids, 5000);
    const lost = ids.filter((id) => world.probe.running(id)[0]!.node.name === 'b');
    assert.ok(lost.length > 0);
    const events: string[] = [];
    DistributedSupervisor.events(nodes[0]!, 'failover').on('migrated', (child, from) => events.push(`${child.id}:${from}->${child.node}`));
    const lostEvents: string[][] = [];
    DistributedSupervisor.events(nodes[0]!, 'failover').on('nodeLost', (node, held) => lostEvents.push([node, ...held]));
    const started = Date.now();
    await world.crash('b');
    const cluster = clusterOf(nodes[0]!)!;
    await settled(ids, cluster.failureTimeout + cluster.heartbeatInterval + 2000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed <= cluster.failureTimeout + cluster.heartbeatInterval + 500, `failover took ${elapsed} ms`);
    for (const id of lost) assert.notEqual(world.probe.running(id)[0]!.node.name, 'b');
    // Each child answers a call by name on its new node.
    for (const id of lost) {
      const reply = (await nodes[2]!.call(via('globals', nameOf('failover', id)), 'get')) as { node: string };
      assert.notEqual(reply.node, 'b');
    }
    await world.until(() => events.length >= lost.length, 'migrated events', 2000);
    assert.deepEqual(lostEvents.map((entry) => entry[0]), ['b']);
    assert.deepEqual(new Set(lostEvents[0]!.slice(1)), new Set(lost));
  });
});
