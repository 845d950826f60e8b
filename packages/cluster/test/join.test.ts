/**
 * Joining: a node's first view is what answered its hello within the join
 * window, completed by the members those answers name (`m` of the direct
 * `hb`), so a peer that is slow to answer (busy, or behind a link that drops
 * frames for a moment) is still in the view `Node.start` resolves with.
 * At the shipped default timings.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Node } from '@roster/core';
import { MemoryBroker, MemoryTransport } from '../src/index.js';

const started: Node[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((node) => node.stop()));
});

async function start(broker: MemoryBroker, name: string): Promise<Node> {
  const node = await Node.start({ name, logLevel: 'silent', cluster: { transport: new MemoryTransport({ broker }) } });
  started.push(node);
  return node;
}

describe('joining', () => {
  it('a member that did not answer within the join window, but that another member names, is in the view when Node.start resolves', async () => {
    const broker = new MemoryBroker();
    await start(broker, 'a');
    await start(broker, 'b');
    // c's hello never reaches b, and b's answer cannot come back, until b's next heartbeat after the heal.
    broker.partition(['c'], ['b']);
    const joining = start(broker, 'c');
    setTimeout(() => broker.heal(), 400);
    const c = await joining;
    assert.deepEqual([...c.nodes()].sort(), ['a', 'b'], 'c starts knowing every member');
  });

  it('a lone node starts at once with an empty view', async () => {
    const broker = new MemoryBroker();
    const lone = await start(broker, 'lone');
    assert.deepEqual(lone.nodes(), []);
  });
});
