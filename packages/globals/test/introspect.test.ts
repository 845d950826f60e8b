/**
 * `GlobalsRegistry.introspect()`: a copy of its stats (the latency as plain
 * data), how many names this node resolves, its members; what the node's
 * snapshot carries under the registry's key, and what a peer's `snapshotOf`
 * brings back checked (the cluster knows this shape by its `kind`).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Node, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, clusterOf } from '@roster/cluster';
import { GlobalsRegistry, type GlobalsIntrospection } from '@roster/globals';

let broker: MemoryBroker;
let a: Node;
let b: Node;
let watcher: Node;
const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');
const idle = (node: Node): Pid => node.spawn(async (self) => void (await self.receive()));

before(async () => {
  broker = new MemoryBroker();
  const start = (name: string, role: 'member' | 'observer' = 'member'): Promise<Node> =>
    Node.start({
      name,
      logLevel: 'silent',
      cluster: { id: `globals-introspect-${process.pid}`, transport: new MemoryTransport({ broker }), role },
      registries: { globals: new GlobalsRegistry() },
    });
  a = await start('intro-a');
  b = await start('intro-b');
  watcher = await start('intro-watcher', 'observer');
  await globals(a).sync();
});

after(async () => {
  await watcher.stop();
  await b.stop();
  await a.stop();
});

test('introspect: the stats copied, the names this node resolves (every owner), its members', async () => {
  const before = globals(a).introspect();
  assert.equal(before.kind, 'globals');
  assert.equal(await globals(a).registerName('intro-one', idle(a)), 'yes');
  assert.equal(await globals(b).registerName('intro-two', idle(b)), 'yes');
  assert.equal(await globals(a).registerName('intro-one', idle(a)), 'no');
  await globals(a).unregisterName('intro-one');
  assert.equal(await globals(a).registerName(['intro', 3], idle(a)), 'yes');
  const report = globals(a).introspect();
  const stats = globals(a).stats;
  assert.equal(report.registrations - before.registrations, 3);
  assert.equal(report.unregistrations - before.unregistrations, 1);
  assert.equal(report.registerLatency.count - before.registerLatency.count, 3);
  assert.deepEqual(report.registerLatency, stats.registerLatency);
  assert.deepEqual(report.drops, stats.drops);
  assert.equal(report.dropped, stats.dropped);
  assert.equal(report.conflicts, stats.conflicts);
  // intro-two (b's) and ["intro",3] (a's): every name a resolves, whoever owns it.
  assert.equal(report.names, globals(a).registered().length);
  assert.ok(globals(a).whereisName('intro-two') !== undefined);
  assert.deepEqual([...report.members].sort(), ['intro-a', 'intro-b']);
  // A copy: changing it changes nothing.
  (report.drops as Record<string, number>)['forged'] = 99;
  assert.notEqual(globals(a).stats.drops.forged, 99);
  // Plain data all the way down: it survives JSON as it is.
  assert.deepEqual(JSON.parse(JSON.stringify(report)), { ...report, registerLatency: { ...report.registerLatency, bounds: [...report.registerLatency.bounds] } });
});

test("the node's snapshot carries it under the registry's key, and a peer's arrives checked", async () => {
  assert.equal(await globals(b).registerName('intro-peer', idle(b)), 'yes');
  const own = a.snapshot().registries['globals'] as GlobalsIntrospection;
  assert.equal(own.kind, 'globals');
  assert.equal(own.names, globals(a).registered().length);
  const peer = (await clusterOf(watcher)!.snapshotOf('intro-b')).registries['globals'] as GlobalsIntrospection;
  const local = globals(b).introspect();
  assert.equal(peer.registrations, local.registrations);
  assert.equal(peer.names, local.names);
  assert.deepEqual(peer.registerLatency, local.registerLatency);
  assert.deepEqual([...peer.members].sort(), ['intro-a', 'intro-b']);
  // The observer's own registry: it holds and votes on nothing, and counts no members of its own.
  const observed = globals(watcher).introspect();
  assert.equal(observed.registrations, 0);
  assert.ok(!observed.members.includes('intro-watcher'));
});
