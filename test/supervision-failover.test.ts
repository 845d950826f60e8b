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
import { within } from '@roster/testkit';
import { TestWorld, nameOf } from '../packages/supervision/test/helpers.js';

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
  const everyone = Promise.all(nodes.map((node) => membersUp(node, spec.id, names.length)));
  for (const node of nodes) await DistributedSupervisor.start(node, spec);
  await everyone;
  await Promise.all(dynamic.map((child) => DistributedSupervisor.startChild(nodes[0]!, spec.id, child)));
  return nodes;
}

/** Resolves when `node`'s member of `id` has heard from `count` members (itself included), by its `memberUp` events. */
function membersUp(node: Node, id: string, count: number): Promise<void> {
  const events = DistributedSupervisor.events(node, id);
  const seen = new Set([node.name]);
  return within(
    new Promise<void>((resolve) => {
      const listener = (member: string): void => {
        seen.add(member);
        if (seen.size < count) return;
        events.off('memberUp', listener);
        resolve();
      };
      events.on('memberUp', listener);
    }),
    `${node.name}: ${count} members of ${id}`,
    5000,
  );
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

  test('a partition: the minority side starts nothing; the heal leaves one instance and the loser exits with name_conflict', async () => {
    world = new TestWorld();
    const ids = children(6).map((child) => child.id);
    const nodes = await startGroup(['a', 'b', 'c'], { id: 'quorum', clusterSize: 3 }, children(6));
    await settled(ids, 5000);
    const onA = ids.filter((id) => world.probe.running(id)[0]!.node.name === 'a');
    const elsewhere = ids.filter((id) => !onA.includes(id));
    assert.ok(onA.length > 0 && elsewhere.length > 0);
    const startsBefore = world.probe.starts.length;
    world.broker.partition(['a'], ['b', 'c']);
    // The majority restarts a's children; a (alone, below quorum) starts none of b's and c's.
    await world.until(() => onA.every((id) => world.probe.running(id).some((instance) => instance.node.name !== 'a')), "a's children on the majority side", 8000);
    const startedOnA = world.probe.starts.slice(startsBefore).filter((instance) => instance.node.name === 'a');
    assert.deepEqual(startedOnA.map((instance) => instance.child), [], 'the minority started nothing');
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'quorum', { id: 'x', behaviour: 'counter' }), (error: unknown) => error instanceof SupervisionError && error.code === 'no_quorum');
    // Heal: each duplicated child keeps one instance; the other exits with name_conflict.
    const exitsBefore = world.probe.exits.length;
    world.broker.heal();
    await world.until(() => ids.every((id) => world.probe.running(id).length === 1), 'one instance of each child after the heal', 10_000);
    const conflictExits = world.probe.exits.slice(exitsBefore).filter((exit) => typeof exit.reason === 'object' && exit.reason !== null && 'name_conflict' in exit.reason);
    assert.deepEqual(new Set(conflictExits.map((exit) => exit.child)), new Set(onA), 'each loser was told with name_conflict');
    // The tables follow the survivors, on every node.
    await world.until(() => true, 'noop', 1);
    for (const node of nodes) {
      const deadline = Date.now() + 5000;
      for (;;) {
        const listed = await DistributedSupervisor.whichChildren(node, 'quorum');
        const agrees = listed.every((child) => child.state === 'running' && child.pid?.equals(world.probe.running(child.id)[0]!.pid));
        if (agrees) break;
        assert.ok(Date.now() < deadline, `${node.name}'s table never followed the survivors`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  test('node.stop() hands each child over with its state; migrate moves one with its state', async () => {
    world = new TestWorld();
    const ids = children(3).map((child) => child.id);
    const nodes = await startGroup(['a', 'b', 'c'], { id: 'handoff' }, children(3));
    await settled(ids, 5000);
    const onB = ids.find((id) => world.probe.running(id)[0]!.node.name === 'b')!;
    for (let bump = 0; bump < 5; bump++) await nodes[0]!.call(via('globals', nameOf('handoff', onB)), 'bump');
    // migrate: to c, with the count.
    const moved = await DistributedSupervisor.migrate(nodes[0]!, 'handoff', onB, 'c');
    assert.equal(moved.node, 'c');
    const atC = (await nodes[0]!.call(via('globals', nameOf('handoff', onB)), 'get')) as { count: number; node: string };
    assert.deepEqual([atC.node, atC.count], ['c', 5]);
    assert.equal(world.probe.running(onB).at(-1)!.context?.handoff !== undefined, true);
    // A graceful stop of c: its children go to a or b, each with its state.
    await nodes[0]!.call(via('globals', nameOf('handoff', onB)), 'bump');
    const onC = ids.filter((id) => world.probe.running(id)[0]!.node.name === 'c');
    world.nodes.delete('c');
    await nodes[2]!.stop();
    await settled(ids, 5000);
    for (const id of onC) assert.notEqual(world.probe.running(id)[0]!.node.name, 'c');
    const after = (await nodes[0]!.call(via('globals', nameOf('handoff', onB)), 'get')) as { count: number; node: string };
    assert.equal(after.count, 6, 'the count survived the graceful stop');
    // After a crash there is no handoff: a fresh init.
    const host = world.probe.running(onB)[0]!.node.name;
    await world.crash(host);
    await settled(ids, 8000);
    const fresh = (await nodes[0]!.call(via('globals', nameOf('handoff', onB)), 'get')) as { count: number };
    assert.equal(fresh.count, 0);
    assert.equal(world.probe.running(onB)[0]!.context?.handoff, undefined);
  });

  test("a child's init gets its claim's epoch: younger for every new instance (a fencing token)", async () => {
    world = new TestWorld();
    const nodes = await startGroup(['a', 'b'], { id: 'fence' }, [{ id: 'only', behaviour: 'counter', placement: ['b', 'a'] }]);
    await settled(['only'], 5000);
    const first = world.probe.running('only')[0]!.context!.epoch!;
    assert.deepEqual(first, globals(nodes[0]!).epochOf(nameOf('fence', 'only')));
    await world.crash('b');
    await settled(['only'], 8000);
    const second = world.probe.running('only')[0]!.context!.epoch!;
    assert.ok(second.wall > first.wall || (second.wall === first.wall && second.counter > first.counter), 'the new epoch is younger');
  });

  test('a node that restarts under its name runs nothing twice and takes new children', async () => {
    world = new TestWorld();
    const ids = children(6).map((child) => child.id);
    await startGroup(['a', 'b', 'c'], { id: 'rejoin' }, children(6));
    await settled(ids, 5000);
    await world.crash('c');
    await settled(ids, 8000);
    const back = await world.start('c');
    await DistributedSupervisor.start(back, { id: 'rejoin' });
    const location = await DistributedSupervisor.startChild(back, 'rejoin', { id: 'new', behaviour: 'counter', placement: 'local_first' });
    assert.equal(location.node, 'c');
    await settled([...ids, 'new'], 5000);
    const listed = await DistributedSupervisor.whichChildren(back, 'rejoin');
    assert.equal(listed.length, 7);
    assert.ok(listed.every((child) => child.state === 'running'));
  });
});

describe('DistributedSupervisor through a rolling restart (default timings)', () => {
  test('each node stopped gracefully and started again in turn: every child runs once throughout, and keeps its state', async () => {
    world = new TestWorld();
    const names = ['a', 'b', 'c'];
    const ids = children(12).map((child) => child.id);
    const nodes = await startGroup(names, { id: 'rolling', clusterSize: 3 }, children(12));
    await settled(ids, 5000);
    const call = (request: string, id: string) => world.nodes.values().next().value!.call(via('globals', nameOf('rolling', id)), request);
    for (const id of ids) for (let bump = 0; bump < 2; bump++) await call('bump', id);
    for (const name of names) {
      const node = world.node(name);
      world.nodes.delete(name);
      await node.stop();
      await settled(ids, 5000);
      for (const id of ids) assert.notEqual(world.probe.running(id)[0]!.node.name, name, `${id} left ${name}`);
      const back = await world.start(name);
      await DistributedSupervisor.start(back, { id: 'rolling', clusterSize: 3 });
      // Every child answers by name, with the count it had before (each move was a handoff).
      for (const id of ids) assert.equal(((await call('get', id)) as { count: number }).count, 2, `${id} kept its count past ${name}'s restart`);
    }
    assert.equal(nodes.length, 3);
    await settled(ids, 5000);
  });
});

describe('DistributedSupervisor children (one cluster)', () => {
  test('restart types: permanent restarts in place, transient stops on a normal exit, temporary is gone; errors are typed', async () => {
    world = new TestWorld();
    const nodes = await startGroup(['a', 'b'], { id: 'types', intensity: 10 }, [
      { id: 'p', behaviour: 'counter', restart: 'permanent', placement: ['b'] },
      { id: 't', behaviour: 'counter', restart: 'transient', placement: ['b'] },
      { id: 'x', behaviour: 'counter', restart: 'temporary', placement: ['b'] },
    ]);
    await settled(['p', 't', 'x'], 5000);
    const call = (id: string, request: string) => nodes[0]!.call(via('globals', nameOf('types', id)), request).catch(() => undefined);
    const before = world.probe.running('p')[0]!.pid;
    await call('p', 'crash');
    await world.until(() => world.probe.running('p').length === 1 && !world.probe.running('p')[0]!.pid.equals(before), 'p restarted', 3000);
    assert.equal(world.probe.running('p')[0]!.node.name, 'b', 'restarted on its node');
    await call('t', 'stop_normal');
    await call('x', 'crash');
    await world.until(() => world.probe.running('t').length === 0 && world.probe.running('x').length === 0, 't and x gone', 3000);
    const deadline = Date.now() + 3000;
    let listed = await DistributedSupervisor.whichChildren(nodes[0]!, 'types');
    while (!(listed.find((child) => child.id === 't')?.state === 'stopped' && listed.every((child) => child.id !== 'x'))) {
      assert.ok(Date.now() < deadline, `table: ${JSON.stringify(listed.map((child) => [child.id, child.state]))}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      listed = await DistributedSupervisor.whichChildren(nodes[0]!, 'types');
    }
    assert.equal(listed.find((child) => child.id === 'p')?.restarts, 1);
    // Errors.
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'types', { id: 'u', behaviour: 'nobody' }), (error: unknown) => error instanceof SupervisionError && error.code === 'unknown_behaviour');
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'types', { id: 'p', behaviour: 'counter' }), (error: unknown) => error instanceof Error && (error as { code?: string }).code === 'already_started');
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'types', { id: 't', behaviour: 'counter' }), (error: unknown) => error instanceof SupervisionError && error.code === 'already_present');
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'types', { id: 'f', behaviour: 'counter', args: { f: () => 1 } }), (error: unknown) => error instanceof SupervisionError && error.code === 'invalid_spec');
    await assert.rejects(DistributedSupervisor.startChild(nodes[0]!, 'types', { id: 'g', behaviour: 'counter', placement: ['zz'] }), (error: unknown) => error instanceof SupervisionError && error.code === 'no_eligible_node');
    await assert.rejects(DistributedSupervisor.whichChildren(nodes[0]!, 'nope'), (error: unknown) => error instanceof SupervisionError && error.code === 'not_started');
    await assert.rejects(DistributedSupervisor.start(nodes[0]!, { id: 'bad', strategy: 'one_for_all' as never }), (error: unknown) => error instanceof SupervisionError && error.field === 'strategy');
    await assert.rejects(DistributedSupervisor.start(nodes[0]!, { id: 'bad', children: [{ id: 'q', behaviour: 'counter', restrat: 'x' } as never] }), (error: unknown) => error instanceof SupervisionError && error.field === 'children[0].restrat');
    // terminate / restart / delete.
    await DistributedSupervisor.terminateChild(nodes[0]!, 'types', 'p');
    assert.equal(globals(nodes[0]!).whereisName(nameOf('types', 'p')), undefined);
    assert.equal(world.probe.running('p').length, 0);
    await assert.rejects(DistributedSupervisor.deleteChild(nodes[0]!, 'types', 'nope'), (error: unknown) => error instanceof SupervisionError && error.code === 'not_found');
    const again = await DistributedSupervisor.restartChild(nodes[1]!, 'types', 'p');
    assert.equal(again.node, 'b');
    await DistributedSupervisor.terminateChild(nodes[1]!, 'types', 't');
    await DistributedSupervisor.deleteChild(nodes[1]!, 'types', 't');
    // The node that deleted it reads its own write; the others converge.
    const ids = (await DistributedSupervisor.whichChildren(nodes[1]!, 'types')).map((child) => child.id);
    assert.deepEqual(ids, ['p']);
  });

  test('past its restart intensity a member stops its children and exits; the others take them over', async () => {
    world = new TestWorld();
    const nodes = await startGroup(['a', 'b'], { id: 'intensity', intensity: 1, period: 5000 }, [{ id: 'p', behaviour: 'counter', placement: ['b', 'a'] }]);
    await settled(['p'], 5000);
    const member = nodes[1]!.whereis('roster_dsup_intensity')!;
    const gone = new Promise<void>((resolve) => nodes[1]!.watchExit(member, () => resolve()));
    await nodes[0]!.call(via('globals', nameOf('intensity', 'p')), 'crash').catch(() => undefined);
    await world.until(() => world.probe.running('p').length === 1, 'first restart', 3000);
    await nodes[0]!.call(via('globals', nameOf('intensity', 'p')), 'crash').catch(() => undefined);
    await gone;
    await world.until(() => world.probe.running('p')[0]?.node.name === 'a', 'p taken over by a', 5000);
  });
});

describe('Singleton', () => {
  test('two nodes stopping at once, the host among them: the singleton runs once on a survivor, with its state', async () => {
    world = new TestWorld();
    const nodes: Node[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) nodes.push(await world.start(name));
    await Promise.all(nodes.map((node) => Singleton.start(node, { name: 'keeper', key: 'counter', clusterSize: 5 })));
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton', 5000);
    for (let bump = 0; bump < 3; bump++) await nodes[4]!.call(via('globals', 'keeper'), 'bump');
    const host = world.probe.running('singleton')[0]!.node;
    const other = nodes.find((node) => node !== host && node.name !== 'e')!;
    for (const leaving of [host, other]) world.nodes.delete(leaving.name);
    await Promise.all([host.stop(), other.stop()]);
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton on a survivor', 8000);
    const now = world.probe.running('singleton')[0]!;
    assert.ok(now.node !== host && now.node !== other);
    const state = (await nodes[4]!.call(via('globals', 'keeper'), 'get')) as { count: number };
    assert.equal(state.count, 3, 'the handoff survived two nodes leaving together');
  });

  test('two nodes crashing at once, the host among them: exactly one singleton on the survivors (Akka double singleton)', async () => {
    world = new TestWorld();
    const nodes: Node[] = [];
    for (const name of ['a', 'b', 'c', 'd', 'e']) nodes.push(await world.start(name));
    await Promise.all(nodes.map((node) => Singleton.start(node, { name: 'keeper', key: 'counter', clusterSize: 5 })));
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton', 5000);
    const host = world.probe.running('singleton')[0]!.node.name;
    const other = ['a', 'b', 'c', 'd', 'e'].find((name) => name !== host)!;
    await Promise.all([world.crash(host), world.crash(other)]);
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton on a survivor', 8000);
    assert.ok(![host, other].includes(world.probe.running('singleton')[0]!.node.name));
    // Every survivor's table comes to name that one instance (the tables converge; the probe saw no second).
    const expected = world.probe.running('singleton')[0]!.pid.key;
    for (const node of world.nodes.values()) {
      const deadline = Date.now() + 3000;
      while ((await Singleton.where(node, 'keeper'))?.pid?.key !== expected) {
        assert.ok(Date.now() < deadline, `${node.name} never listed the singleton at ${expected}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.equal(world.probe.running('singleton').length, 1);
  });


  test('one instance cluster-wide, reached by name from any node; it fails over, and after a heal one survives', async () => {
    world = new TestWorld();
    const names = ['a', 'b', 'c'];
    const nodes: Node[] = [];
    for (const name of names) nodes.push(await world.start(name));
    await Promise.all(nodes.map((node) => Singleton.start(node, { name: 'leader', key: 'counter', clusterSize: 3 })));
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton', 5000);
    for (const node of nodes) {
      const reply = (await node.call(via('globals', 'leader'), 'get')) as { node: string };
      assert.equal(reply.node, world.probe.running('singleton')[0]!.node.name);
    }
    const host = world.probe.running('singleton')[0]!.node.name;
    await world.crash(host);
    const survivors = nodes.filter((node) => node.name !== host);
    await world.until(() => world.probe.running('singleton').length === 1, 'the singleton after failover', 8000);
    assert.notEqual(world.probe.running('singleton')[0]!.node.name, host);
    const where = await Singleton.where(survivors[0]!, 'leader');
    assert.equal(where?.node, world.probe.running('singleton')[0]!.node.name);
    // A two-node cluster cut in two with clusterSize 2 (quorum 2) would start nothing; with the default quorum both sides run one.
    const [x, y] = survivors as [Node, Node];
    await Singleton.stop(x, 'leader').catch(() => undefined);
    await Singleton.stop(y, 'leader').catch(() => undefined);
    await world.until(() => world.probe.running('singleton').length === 0, 'singleton stopped', 5000);
    await Promise.all([x, y].map((node) => Singleton.start(node, { name: 'solo', key: 'counter' })));
    await world.until(() => world.probe.running('singleton').length === 1, 'solo', 5000);
    world.broker.partition([x.name], [y.name]);
    await world.until(() => world.probe.running('singleton').length === 2, 'one solo on each side', 10_000);
    const exitsBefore = world.probe.exits.length;
    world.broker.heal();
    await world.until(() => world.probe.running('singleton').length === 1, 'one solo after the heal', 10_000);
    const loser = world.probe.exits.slice(exitsBefore).find((exit) => typeof exit.reason === 'object' && exit.reason !== null && 'name_conflict' in exit.reason);
    assert.ok(loser !== undefined, 'the loser exited with name_conflict');
  });
});
