/**
 * Replay protection at the shipped default timings (heartbeat 1000 ms,
 * failureTimeout 3000 ms): frames captured off the broker and sent again are
 * dropped as `replayed` (or `misrouted` when meant for another node), with a
 * cluster secret and without one.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { isExitMessage, type ExitMessage } from '@roster/core';
import { MemoryTransport, NodeNameTakenError, WIRE_VERSION, type PeerIdentity } from '../src/index.js';
import { TestNet, envelopeOf, netsClosedAfter, nextEvent, within } from './helpers.js';

const SECRET = 'the cluster secret';

function sign(json: string, secret: string | undefined): string {
  return secret === undefined ? json : `~${createHmac('sha256', secret).update(json).digest('base64url')}${json}`;
}

for (const secret of [SECRET, undefined]) {
  describe(`replay protection (${secret === undefined ? 'no secret' : 'with a secret'})`, () => {
    const net = netsClosedAfter(secret === undefined ? {} : { secret });

    it("a replayed hello and heartbeat of a peer's earlier session are dropped: the peer is not cycled, a link across stays intact", async () => {
      const n = await net();
      const a = await n.start('a');
      const oldHello = n.nextBroadcast('b', 'hello');
      const b = await n.start('b');
      const captured = [await oldHello, await n.nextBroadcast('b', 'hb')];
      const oldSession = envelopeOf(captured[1]!).b['s'] as number;

      // A genuine reconnect: a new session of b, and a cycles b once.
      const cycled = nextEvent(n.cluster(a), 'nodeup', 'b', 3000);
      const newHello = n.nextBroadcast('b', 'hello');
      n.broker.disconnect('b');
      n.broker.reconnect('b');
      await cycled;
      assert.ok((envelopeOf(await newHello).b['s'] as number) > oldSession);
      await within(n.broker.idle(), 'quiet', 3000);
      assert.ok(a.nodes().includes('b') && b.nodes().includes('a'));

      const exits: ExitMessage[] = [];
      const onB = b.spawn(async (self) => void (await self.receive()));
      const onA = a.spawn(
        async (self) => {
          self.link(onB);
          for (;;) {
            const message = await self.receive();
            if (isExitMessage(message)) exits.push(message);
          }
        },
        { trapExit: true },
      );
      await within(n.broker.idle(), 'the link to cross', 3000);
      const downs: string[] = [];
      n.cluster(a).on('nodedown', (peer) => downs.push(`a saw ${peer.node} down`));
      n.cluster(b).on('nodedown', (peer) => downs.push(`b saw ${peer.node} down`));
      const before = n.cluster(a).stats.dropped.replayed;

      for (let round = 0; round < 3; round++) for (const frame of captured) n.spy.broadcast(frame);
      await within(n.broker.idle(), 'the replays to arrive', 3000);

      assert.deepEqual(downs, []);
      assert.deepEqual(exits, [], 'the link did not fire');
      assert.equal(n.cluster(a).stats.dropped.replayed - before, 6, 'every replayed frame dropped as replayed');
      // The link is still there: an exit of onB reaches onA with its reason.
      b.exit(onB, 'boom');
      await within(
        (async () => {
          while (exits.length === 0) await n.broker.idle();
        })(),
        'the EXIT across the link',
        3000,
      );
      assert.equal((exits as ExitMessage[])[0]!.reason, 'boom');
      assert.ok(a.isAlive(onA));
    });

    it("a crashed node's last heartbeat replayed every 100 ms: peers drop it after failureTimeout and it restarts under its name", async () => {
      const n = await net();
      const a = await n.start('a');
      await n.start('b');
      const lastHb = await n.nextBroadcast('b', 'hb');
      const down = nextEvent(n.cluster(a), 'nodedown', 'b', 3000 + 2000);
      n.broker.crash('b');
      const replaying = setInterval(() => n.spy.broadcast(lastHb), 100);
      try {
        const [peer, reason] = await down;
        assert.equal(reason, 'timeout');
        const up = nextEvent(n.cluster(a), 'nodeup', 'b', 3000);
        const again = await n.start('b').catch((error: unknown) => {
          assert.ok(!(error instanceof NodeNameTakenError), 'the dead incarnation must not hold the name');
          throw error;
        });
        const [newPeer] = (await up) as [PeerIdentity];
        assert.equal(newPeer.creation, again.creation);
        assert.notEqual(newPeer.creation, peer.creation);
        assert.ok(n.cluster(a).stats.dropped.replayed > 0);
      } finally {
        clearInterval(replaying);
      }
    });

    it('a direct frame replayed to a third node is dropped as misrouted, and to its receiver as replayed', async () => {
      const n = await net();
      const direct: string[] = [];
      const transportB = new MemoryTransport({ broker: n.broker });
      transportB.on('frame', (frame) => {
        const envelope = envelopeOf(frame);
        if (envelope['f'] === 'a' && envelope['k'] === 'ch') direct.push(frame);
      });
      const a = await n.start('a');
      const b = await n.start('b', { transport: transportB });
      const c = await n.start('c');
      await within(n.broker.idle(), 'membership', 3000);
      const gotB: unknown[] = [];
      const gotC: unknown[] = [];
      n.cluster(b).channel('svc', (_from, message) => gotB.push(message));
      n.cluster(c).channel('svc', (_from, message) => gotC.push(message));
      const channel = n.cluster(a).channel('svc', () => {});
      assert.ok(channel.send('b', { op: 'transfer', amount: 100 }));
      await within(n.broker.idle(), 'the send', 3000);
      assert.equal(direct.length, 1);
      assert.deepEqual(gotB, [{ op: 'transfer', amount: 100 }]);

      const misrouted = n.cluster(c).stats.dropped.misrouted;
      const replayed = n.cluster(b).stats.dropped.replayed;
      n.spy.send(n.address('c'), direct[0]!);
      n.spy.send(n.address('b'), direct[0]!);
      await within(n.broker.idle(), 'the replays', 3000);
      assert.deepEqual(gotC, [], 'c must not act on a frame meant for b');
      assert.deepEqual(gotB, [{ op: 'transfer', amount: 100 }], 'b acts on it once');
      assert.equal(n.cluster(c).stats.dropped.misrouted - misrouted, 1);
      assert.equal(n.cluster(b).stats.dropped.replayed - replayed, 1);
      assert.ok(a.nodes().includes('b') && a.nodes().includes('c'));
    });

    it('membership frames stamped beyond the clock skew bound are dropped (clock_skew ahead, replayed behind)', async () => {
      const n = await net();
      const a = await n.start('a');
      const cluster = n.cluster(a);
      assert.equal(cluster.maxClockSkew, 10_000);
      const hello = (node: string, t: number): string =>
        sign(JSON.stringify({ v: WIRE_VERSION, c: n.id, f: node, i: `${node}-1`, k: 'hello', q: 1, b: { a: n.spy.address, s: 0, t } }), secret);
      const before = { ...cluster.stats.dropped };
      const now = Date.now();
      n.spy.broadcast(hello('ahead', now + 10_000 + 5_000));
      n.spy.broadcast(hello('behind', now - (3000 + 10_000) - 5_000));
      const up = nextEvent(cluster, 'nodeup', 'now', 3000);
      n.spy.broadcast(hello('now', now));
      await up;
      assert.equal(cluster.stats.dropped.clock_skew - before.clock_skew, 1);
      assert.equal(cluster.stats.dropped.replayed - before.replayed, 1);
      assert.ok(!a.nodes().includes('ahead') && !a.nodes().includes('behind'));
    });
  });
}

describe('maxClockSkew', () => {
  it('is validated and exposed', async () => {
    const n = await new TestNet().open();
    try {
      for (const bad of [-1, Number.NaN, '5' as unknown as number]) {
        await assert.rejects(n.start('x', { maxClockSkew: bad }), (error: unknown) => error instanceof TypeError && /maxClockSkew/.test(error.message));
      }
      const node = await n.start('y', { maxClockSkew: 2500 });
      assert.equal(n.cluster(node).maxClockSkew, 2500);
    } finally {
      await n.close();
    }
  });
});


describe('node names', () => {
  it('a second incarnation of the only member is refused by that member itself', async () => {
    const n = await new TestNet().open();
    try {
      await n.start('solo');
      await assert.rejects(n.start('solo', { joinWindow: 200 }), NodeNameTakenError);
    } finally {
      await n.close();
    }
  });
});
