/**
 * One member against hostile peers: malformed messages on its channel are
 * dropped, counted and logged at a bounded rate, and change nothing; a
 * record that places a child on a node that runs no member is re-placed.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Pid, via } from '@roster/core';
import { clusterOf } from '@roster/cluster';
import { DistributedSupervisor } from '@roster/supervision';
import { TestWorld } from './helpers.js';

let world: TestWorld;
afterEach(async () => {
  await world?.stopAll();
  assert.deepEqual(world?.probe.violations ?? [], []);
});

describe('DistributedSupervisor member', () => {
  test('malformed messages are dropped and counted; the member keeps working', async () => {
    world = new TestWorld();
    const a = await world.start('a');
    await DistributedSupervisor.start(a, { id: 's' });
    await DistributedSupervisor.startChild(a, 's', { id: 'c', behaviour: 'counter' });
    const evil = await world.start('evil', { behaviours: [] });
    const channel = clusterOf(evil)!.channel('$dsup:s', () => undefined);
    const junk: unknown[] = [
      'hello',
      { op: 'records', records: [{ id: 'c', v: [99, 'evil'], state: 'running', host: 'evil', pid: new Pid('a', 'zz', 1), restarts: 0, spec: {} }] },
      { op: 'load', load: -4, keys: [] },
      { op: 'nope' },
    ];
    for (const message of junk) channel.broadcast(message);
    await clusterOf(evil)!.flush();
    const stats = DistributedSupervisor.stats(a, 's');
    const deadline = Date.now() + 2000;
    while (stats.dropped < junk.length) {
      assert.ok(Date.now() < deadline, `dropped ${stats.dropped} of ${junk.length}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const listed = await DistributedSupervisor.whichChildren(a, 's');
    assert.deepEqual(listed.map((child) => [child.id, child.node, child.state]), [['c', 'a', 'running']]);
    assert.equal(((await a.call(via('globals', ['s', 'c']), 'get')) as { node: string }).node, 'a');
  });

  test('a record placing a child on a node with no member is placed again by the leader', async () => {
    world = new TestWorld();
    const a = await world.start('a');
    await DistributedSupervisor.start(a, { id: 's' });
    await DistributedSupervisor.startChild(a, 's', { id: 'c', behaviour: 'counter' });
    await DistributedSupervisor.terminateChild(a, 's', 'c');
    const liar = await world.start('liar', { behaviours: [] });
    const channel = clusterOf(liar)!.channel('$dsup:s', () => undefined);
    const spec = { behaviour: 'counter', restart: 'permanent', shutdown: 5000, name: ['s', 'c'] };
    channel.broadcast({ op: 'records', records: [{ id: 'c', v: [1000, 'liar'], spec, state: 'assigned', host: 'nowhere', restarts: 0 }] });
    await world.until(() => world.probe.running('c').length === 1, 'c placed again', 3000);
    assert.equal(world.probe.running('c')[0]!.node.name, 'a');
  });

  test('a listener that throws is counted and logged; the member keeps supervising', async () => {
    world = new TestWorld();
    const a = await world.start('a');
    DistributedSupervisor.events(a, 's').on('started', () => {
      throw new Error('listener bug');
    });
    await DistributedSupervisor.start(a, { id: 's' });
    await DistributedSupervisor.startChild(a, 's', { id: 'c', behaviour: 'counter' });
    await DistributedSupervisor.startChild(a, 's', { id: 'd', behaviour: 'counter' });
    assert.equal(DistributedSupervisor.stats(a, 's').listenerErrors, 2);
    assert.equal(world.probe.running('d').length, 1);
  });
});
