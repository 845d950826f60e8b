/**
 * Processes watching membership, as Erlang's `monitor_node/2` and
 * `net_kernel:monitor_nodes/1` give it: a `nodedown` message per monitor
 * when a node leaves, is cut off or crashes (at the shipped default
 * failure timeout), at once for a node not connected; `nodeup` and
 * `nodedown` for every member to a subscriber. A monitor fires once; a
 * subscription lasts until cancelled or its process exits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BadArgError, isNodeDownMessage, isNodeUpMessage, type Node, type Pid, type Process } from '@roster/core';
import { netsClosedAfter, within } from './helpers.js';

const net = netsClosedAfter();

/** A process on `node` that runs `setup`, then records every nodeup/nodedown it gets; `next(n)` resolves once it has `n`. */
function watcher(node: Node, setup: (self: Process) => void): { pid: Pid; seen: string[]; next: (count: number, ms?: number) => Promise<string[]> } {
  const seen: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  const pid = node.spawn(async (self) => {
    setup(self);
    ready();
    for (;;) {
      const message = await self.receive();
      if (isNodeDownMessage(message) || isNodeUpMessage(message)) seen.push(`${message.type} ${message.node}`);
      for (const waiter of [...waiters]) if (seen.length >= waiter.count) waiter.resolve();
    }
  });
  const next = async (count: number, ms = 2000): Promise<string[]> => {
    await started;
    if (seen.length < count) await within(new Promise<void>((resolve) => waiters.push({ count, resolve })), `${count} node messages (have ${seen.join(', ')})`, ms);
    return [...seen];
  };
  return { pid, seen, next };
}

describe('monitorNode and monitorNodes', () => {
  test('two monitors of a node get two nodedowns when it leaves, and are gone; a subscriber sees every join and leave', async () => {
    const n = await net();
    const [a, b] = await n.startAll('a', 'b');
    const monitors = watcher(a!, (self) => {
      self.monitorNode('b');
      self.monitorNode('b');
    });
    const subscriber = watcher(a!, (self) => self.monitorNodes(true));
    await monitors.next(0);
    await subscriber.next(0);
    const c = await n.start('c');
    assert.deepEqual(await subscriber.next(1), ['nodeup c']);
    await b!.stop();
    assert.deepEqual(await monitors.next(2), ['nodedown b', 'nodedown b']);
    assert.deepEqual(await subscriber.next(2), ['nodeup c', 'nodedown b']);
    // The monitors fired: b's next life and death reach only the subscriber.
    const b2 = await n.start('b');
    await subscriber.next(3);
    await b2.stop();
    assert.deepEqual(await subscriber.next(4), ['nodeup c', 'nodedown b', 'nodeup b', 'nodedown b']);
    await c.stop();
    assert.deepEqual(await subscriber.next(5), ['nodeup c', 'nodedown b', 'nodeup b', 'nodedown b', 'nodedown c']);
    assert.deepEqual(monitors.seen, ['nodedown b', 'nodedown b']);
  });

  test('a node cut off is reported down after the default failure timeout', async () => {
    const n = await net();
    const [a] = await n.startAll('a', 'b');
    const monitor = watcher(a!, (self) => self.monitorNode('b'));
    await monitor.next(0);
    n.broker.partition(['a'], ['b']);
    // Heartbeat 1 s, failure timeout 3 s: the nodedown comes within about 4 s.
    assert.deepEqual(await monitor.next(1, 6000), ['nodedown b']);
  });

  test('a node not connected is down at once; this node is never down; false takes one monitor away', async () => {
    const n = await net();
    const [a, b] = await n.startAll('a', 'b');
    const early = watcher(a!, (self) => self.monitorNode('nowhere'));
    assert.deepEqual(await early.next(1), ['nodedown nowhere']);
    const counted = watcher(a!, (self) => {
      self.monitorNode('a');
      self.monitorNode('b');
      self.monitorNode('b');
      self.monitorNode('b', false);
    });
    const unsubscribed = watcher(a!, (self) => {
      self.monitorNodes(true);
      self.monitorNodes(false);
    });
    await counted.next(0);
    await unsubscribed.next(0);
    // A subscriber started after them, so its nodedown comes after theirs would.
    const last = watcher(a!, (self) => self.monitorNodes(true));
    await last.next(0);
    await b!.stop();
    await last.next(1);
    assert.deepEqual(await counted.next(1), ['nodedown b'], 'one monitor of b left, none of this node');
    assert.deepEqual(unsubscribed.seen, []);
  });

  test('a process that exits holds no monitor; bad arguments are BadArgError naming them', async () => {
    const n = await net();
    const [a, b] = await n.startAll('a', 'b');
    const gone = watcher(a!, (self) => {
      self.monitorNode('b');
      self.monitorNodes(true);
    });
    await gone.next(0);
    a!.exit(gone.pid, 'kill');
    const last = watcher(a!, (self) => self.monitorNodes(true));
    await last.next(0);
    await b!.stop();
    await last.next(1);
    assert.deepEqual(gone.seen, []);
    const errors: unknown[] = [];
    const checked = watcher(a!, (self) => {
      for (const bad of [() => self.monitorNode(''), () => self.monitorNode(42 as never), () => self.monitorNode('b', 'yes' as never), () => self.monitorNodes(1 as never)]) {
        try {
          bad();
        } catch (error) {
          errors.push(error);
        }
      }
    });
    await checked.next(0);
    assert.equal(errors.length, 4);
    for (const error of errors) assert.ok(error instanceof BadArgError);
    assert.match(String((errors[0] as Error).message), /monitorNode: node/);
    assert.match(String((errors[2] as Error).message), /monitorNode: flag/);
    assert.match(String((errors[3] as Error).message), /monitorNodes: flag/);
  });
});
