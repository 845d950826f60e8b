/**
 * The registry's operation counters (`stats.registrations`,
 * `unregistrations`, `registerLatency`): this node's own completed calls
 * only, at the shipped default timings, on a private MemoryBroker.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LatencyHistogram, Node, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport } from '@roster/cluster';
import { GlobalsRegistry } from '@roster/globals';

let broker: MemoryBroker;
let a: Node;
let b: Node;
const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');
const idle = (node: Node): Pid => node.spawn(async (self) => void (await self.receive()));

before(async () => {
  broker = new MemoryBroker();
  const start = (name: string): Promise<Node> =>
    Node.start({ name, logLevel: 'silent', cluster: { id: `globals-stats-${process.pid}`, transport: new MemoryTransport({ broker }) }, registries: { globals: new GlobalsRegistry() } });
  a = await start('stats-a');
  b = await start('stats-b');
});

after(async () => {
  await b.stop();
  await a.stop();
});

test('a fresh registry: zero counts and an empty histogram with the standard bounds', () => {
  const stats = globals(a).stats;
  assert.equal(stats.registrations, 0);
  assert.equal(stats.unregistrations, 0);
  assert.deepEqual(stats.registerLatency.bounds, LatencyHistogram.BOUNDS);
  assert.equal(stats.registerLatency.count, 0);
  assert.deepEqual(stats.registerLatency.counts, new Array<number>(LatencyHistogram.BOUNDS.length + 1).fill(0));
});

test('registerName: each completed call counts once with its round trip, yes or no; the peer counts nothing', async () => {
  const before = { a: globals(a).stats.registrations, b: globals(b).stats.registrations, latency: globals(a).stats.registerLatency.count };
  const started = performance.now();
  assert.equal(await globals(a).registerName('stats-one', idle(a)), 'yes');
  assert.equal(await globals(a).registerName('stats-two', idle(a)), 'yes');
  assert.equal(await globals(a).registerName('stats-one', idle(a)), 'no');
  const elapsed = performance.now() - started;
  const stats = globals(a).stats;
  assert.equal(stats.registrations - before.a, 3);
  assert.equal(globals(b).stats.registrations, before.b, 'a peer voting is not a registration of its own');
  const latency = stats.registerLatency;
  assert.equal(latency.count - before.latency, 3);
  assert.equal(latency.counts.reduce((sum, count) => sum + count, 0), latency.count);
  assert.ok(latency.sum > 0 && latency.sum <= elapsed + 1, `sum ${latency.sum} ms within the ${elapsed} ms the calls took`);
});

test('a registration refused before it starts (a dead pid) is not counted', async () => {
  const before = { registrations: globals(a).stats.registrations, timed: globals(a).stats.registerLatency.count };
  const dead = a.spawn(() => undefined);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(a.isAlive(dead), false);
  await assert.rejects(globals(a).registerName('stats-dead', dead), /not alive/);
  assert.equal(globals(a).stats.registrations, before.registrations);
  assert.equal(globals(a).stats.registerLatency.count, before.timed);
});

test('unregisterName counts on the node that called it, here or for a name held elsewhere', async () => {
  const before = { a: globals(a).stats.unregistrations, b: globals(b).stats.unregistrations };
  assert.equal(await globals(b).registerName('stats-remote', idle(b)), 'yes');
  await globals(a).unregisterName('stats-two');
  await globals(a).unregisterName('stats-remote');
  assert.equal(globals(a).stats.unregistrations - before.a, 2);
  assert.equal(globals(b).stats.unregistrations, before.b);
  assert.equal(globals(b).whereisName('stats-remote'), undefined);
});

test('registerLatency is read when asked: a copy each time', () => {
  const stats = globals(a).stats;
  assert.notEqual(stats.registerLatency, stats.registerLatency);
  assert.ok(Object.keys(stats).includes('registerLatency'), 'enumerable, so it shows when the stats are logged or serialised');
});
