/**
 * What the cluster layer does so services on top (the registry) never lose a
 * channel message silently: `gap` when direct frames from a peer were lost,
 * and channel frames that arrive before the channel opens kept for it. At
 * the shipped default timings (heartbeat 1000 ms, failureTimeout 3000 ms).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Node } from '@roster/core';
import { MemoryTransport, type PeerIdentity } from '../src/index.js';
import { envelopeOf, netsClosedAfter, nextEvent, within, type TestNet } from './helpers.js';

const net = netsClosedAfter();

/** A transport for `node` that resolves `nextHeartbeatFrom(peer)` when a broadcast hb of `peer` arrives. */
function watchedTransport(n: TestNet): { transport: MemoryTransport; nextHeartbeatFrom(peer: string): Promise<void> } {
  const transport = new MemoryTransport({ broker: n.broker });
  return {
    transport,
    nextHeartbeatFrom: (peer) =>
      within(
        new Promise<void>((resolve) => {
          const listener = (frame: string): void => {
            const envelope = envelopeOf(frame);
            if (envelope['f'] !== peer || envelope['k'] !== 'hb' || envelope['r'] !== undefined) return;
            transport.off('frame', listener);
            resolve();
          };
          transport.on('frame', listener);
        }),
        `a heartbeat of ${peer}`,
        3000,
      ),
  };
}

describe('gap', () => {
  /** Nodes a and b with channel `svc` open on both; what b's handler gets goes to `received`, b's heartbeats from a are watched. */
  async function pair(received: (message: unknown) => void) {
    const n = await net();
    const watched = watchedTransport(n);
    const watchedA = watchedTransport(n);
    const a = await n.start('a', { transport: watchedA.transport });
    const b = await n.start('b', { transport: watched.transport });
    await within(n.broker.idle(), 'membership', 3000);
    const channelA = n.cluster(a).channel('svc', () => {});
    n.cluster(b).channel('svc', (_from, message) => received(message));
    return { n, watched, watchedA, a, b, channelA };
  }

  it('a channel message lost while the link was cut (below failureTimeout) raises gap within one heartbeat of the heal', async () => {
    const got: unknown[] = [];
    const { n, watched, watchedA, a, b, channelA } = await pair((message) => got.push(message));
    const gaps: PeerIdentity[] = [];
    n.cluster(b).on('gap', (peer) => gaps.push(peer));
    const downs: string[] = [];
    n.cluster(a).on('nodedown', (peer) => downs.push(peer.node));
    n.cluster(b).on('nodedown', (peer) => downs.push(peer.node));

    // Cut right after a heartbeat each way, so the silence stays below failureTimeout.
    await watched.nextHeartbeatFrom('a');
    await watchedA.nextHeartbeatFrom('b');
    n.broker.partition(['a'], ['b']);
    assert.ok(channelA.send('b', 'lost in the cut'));
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the cut itself
    const gap = nextEvent(n.cluster(b), 'gap', 'a', 3000);
    const healed = Date.now();
    n.broker.heal();
    const [peer] = await gap;
    const elapsed = Date.now() - healed;
    assert.ok(elapsed <= n.cluster(a).heartbeatInterval + 250, `gap ${elapsed} ms after the heal`);
    assert.equal(peer.creation, a.creation);
    assert.deepEqual(got, [], 'the message itself is gone');
    assert.deepEqual(downs, [], 'no nodedown: the cut was shorter than failureTimeout');
    assert.equal(gaps.length, 1);
  });

  it('a dropped frame between two others raises gap at the next message, once', async () => {
    const events: string[] = [];
    const { n, watched, b, channelA } = await pair((message) => events.push(String(message)));
    n.cluster(b).on('gap', (peer) => events.push(`gap ${peer.node}`));

    channelA.send('b', 'one');
    n.broker.setFaults({ dropRate: 1 });
    channelA.send('b', 'two');
    n.broker.setFaults({});
    channelA.send('b', 'three');
    await within(n.broker.idle(), 'the three sends', 3000);
    assert.deepEqual(events, ['one', 'gap a', 'three']);
    // The heartbeats that follow say the same loss again: it is not reported twice.
    await watched.nextHeartbeatFrom('a');
    await watched.nextHeartbeatFrom('a');
    assert.deepEqual(events, ['one', 'gap a', 'three']);
  });
});

describe('channel frames that arrive before the channel opens', () => {
  it('are handed to the handler in arrival order at the next microtask, a sender that went down meanwhile included', async () => {
    const n = await net();
    const [a, b] = (await n.startAll('a', 'b')) as [Node, Node];
    const channelA = n.cluster(a).channel('late', () => {});
    channelA.send('b', 'm1');
    channelA.broadcast('m2');
    channelA.send('b', { n: 3 });
    const down = nextEvent(n.cluster(b), 'nodedown', 'a', 3000);
    await a.stop();
    await down;
    await within(n.broker.idle(), 'the frames', 3000);

    const got: [PeerIdentity, unknown][] = [];
    const channelB = n.cluster(b).channel('late', (from, message) => got.push([from, message]));
    assert.deepEqual(got, [], 'not inside channel()');
    await null;
    assert.deepEqual(got, [
      [{ node: 'a', creation: a.creation }, 'm1'],
      [{ node: 'a', creation: a.creation }, 'm2'],
      [{ node: 'a', creation: a.creation }, { n: 3 }],
    ]);
    assert.equal(n.cluster(b).stats.dropped.no_channel, 0);
    channelB.close();
  });

  it('are bounded: beyond 16 MiB waiting, more are dropped as no_channel', async () => {
    const n = await net();
    const [a, b] = (await n.startAll('a', 'b')) as [Node, Node];
    const channelA = n.cluster(a).channel('big', () => {});
    const chunk = 'x'.repeat(1_000_000);
    for (let index = 0; index < 17; index++) channelA.send('b', `${index}:${chunk}`);
    await within(n.broker.idle(), 'the frames', 10_000);
    assert.equal(n.cluster(b).stats.dropped.no_channel, 1);
    const got: string[] = [];
    n.cluster(b).channel('big', (_from, message) => got.push((message as string).slice(0, 3)));
    await null;
    assert.deepEqual(got, Array.from({ length: 16 }, (_, index) => `${index}:x`.slice(0, 3)));
  });
});

describe('over-deep frames', () => {
  it('are dropped as malformed and counted, and the node carries on', async () => {
    const n = await net();
    const [a] = (await n.startAll('a', 'b')) as [Node, Node];
    const before = n.cluster(a).stats.dropped.malformed;
    const body = `{"a":${JSON.stringify(n.spy.address)},"s":0,"x":${'['.repeat(500_000)}${']'.repeat(500_000)}}`;
    n.spy.broadcast(`{"v":1,"c":${JSON.stringify(n.id)},"f":"deep","i":"d1","k":"hello","q":1,"b":${body}}`);
    await within(n.broker.idle(), 'the frame', 3000);
    assert.equal(n.cluster(a).stats.dropped.malformed - before, 1);
    assert.deepEqual(a.nodes(), ['b']);
  });
});
