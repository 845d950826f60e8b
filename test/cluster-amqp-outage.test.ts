/**
 * RabbitMQ goes away in the middle of traffic and comes back: the nodes
 * reconnect on their own, see each other again, watchers of remote processes
 * got `noconnection`, and calls made meanwhile failed with a typed CallError
 * instead of hanging.
 *
 * Needs a broker it may pause: a private one (`startRabbitMQ()`), or
 * `AMQP_URL` together with `ROSTER_RABBITMQ_CTL`; with `AMQP_URL` alone it
 * starts a private broker anyway.
 */
import assert from 'node:assert/strict';
import { setTimeout as pace } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CallError, GenServer, type DownMessage, type ExitMessage, isDownMessage, isExitMessage, type Pid } from '@roster/core';
import { EchoServer, startCluster, startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { clusterEvent, deferred, probe, within } from './cluster-suite.js';

let rabbit: RabbitMQ | undefined;

before(async () => {
  const controllable = process.env['AMQP_URL'] === undefined || (process.env['ROSTER_RABBITMQ_CTL'] ?? '') !== '';
  rabbit = await startRabbitMQ(controllable ? {} : { forcePrivate: true });
});

after(async () => {
  await rabbit?.stop();
});

type Outcome = { ok: true } | { ok: false; error: unknown };

describe('cluster over amqp: broker outage', () => {
  it('nodes reconnect, membership recovers, watchers saw noconnection, calls meanwhile failed typed', async () => {
    const W = 10_000;
    const broker = rabbit!;
    const h = await startCluster({
      nodes: ['a', 'b'],
      transport: 'amqp',
      amqpUrl: broker.url,
      heartbeatInterval: 200,
      failureTimeout: 1000,
      amqp: { reconnect: { initialMs: 100, maxMs: 1000 } },
    });
    let stopTraffic = (): void => {};
    try {
      await h.waitForMembership({ timeout: W });
      const a = h.node('a');
      const b = h.node('b');
      const watched = await GenServer.start(b, EchoServer, undefined);
      const served = await GenServer.start(b, EchoServer, undefined);
      const watcher = await probe(a, W, (self) => void self.monitor(watched));
      const trapper = await probe(a, W, (self) => self.link(watched), { trapExit: true });
      assert.equal(await a.call(watched, 'ping'), 'pong');

      // Traffic: one call after another (paced, so a failing call cannot spin), plus a stream of sends.
      const outcomes: Outcome[] = [];
      let running = true;
      const warmedUp = deferred();
      let nextSuccess: ReturnType<typeof deferred> | undefined;
      const traffic = (async () => {
        let i = 0;
        while (running) {
          try {
            await within(a.call(served, i++, { timeout: 1500 }), 'a traffic call to settle', 5000);
            outcomes.push({ ok: true });
            if (outcomes.length === 10) warmedUp.resolve();
            nextSuccess?.resolve(undefined);
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
          a.send(served, { noise: i });
          await pace(10);
        }
      })();
      stopTraffic = () => {
        running = false;
      };
      await within(warmedUp.promise, 'traffic to flow', W);

      const downOnA = clusterEvent(h.clusterOf('a'), 'nodedown', 'b', W);
      const downOnB = clusterEvent(h.clusterOf('b'), 'nodedown', 'a', W);
      const before = outcomes.length;
      await broker.pause();
      assert.equal(await downOnA, 'disconnected');
      assert.equal(await downOnB, 'disconnected');
      assert.ok(!h.clusterOf('a').connected || h.clusterOf('a').nodes().length === 0);

      const down = await watcher.next<DownMessage>((m) => isDownMessage(m) && m.pid?.equals(watched) === true, 'DOWN');
      assert.equal(down.reason, 'noconnection');
      const exit = await trapper.next<ExitMessage>((m) => isExitMessage(m) && m.from.equals(watched), 'EXIT');
      assert.equal(exit.reason, 'noconnection');

      // A call made during the outage fails, typed, within its timeout.
      const duringOutage = a.call(served, 'ping', { timeout: 2000 });
      await assert.rejects(within(duringOutage, 'a call during the outage', 5000), (error: unknown) => {
        assert.ok(error instanceof CallError, String(error));
        assert.ok(error.failure === 'noconnection' || error.failure === 'timeout', error.message);
        return true;
      });

      const upOnA = clusterEvent(h.clusterOf('a'), 'nodeup', 'b', 60_000);
      const upOnB = clusterEvent(h.clusterOf('b'), 'nodeup', 'a', 60_000);
      await broker.resume();
      await Promise.all([upOnA, upOnB]);
      await h.waitForMembership({ timeout: W });
      assert.ok(a.nodes().includes('b') && b.nodes().includes('a'));

      // The traffic resumes by itself.
      nextSuccess = deferred();
      await within(nextSuccess.promise, 'a traffic call to succeed after the outage', W);
      stopTraffic();
      await within(traffic, 'the traffic loop to end', W);

      const failures = outcomes.filter((o): o is { ok: false; error: unknown } => !o.ok);
      assert.ok(outcomes.slice(0, before).every((o) => o.ok), 'calls before the outage succeeded');
      assert.ok(failures.length > 0, 'some calls ran into the outage');
      for (const { error } of failures) {
        assert.ok(error instanceof CallError, `a call failed with ${String(error)}`);
        assert.ok(error.failure === 'noconnection' || error.failure === 'timeout', error.message);
      }

      // After recovery: calls, monitors and the dead watched process are all as expected.
      assert.equal(await a.call(served, 'ping'), 'pong');
      await assert.rejects(a.call(watched, 'ping'), (error: unknown) => error instanceof CallError && error.reason === 'noproc');
      const again = await probe(a, W, (self) => void self.monitor(served));
      assert.equal(await a.call(served, { stop: { shutdown: 'after the outage' } }), 'ok');
      const finalDown = await again.next<DownMessage>((m) => isDownMessage(m) && (m.pid as Pid | undefined)?.equals(served) === true, 'DOWN');
      assert.deepEqual(finalDown.reason, { shutdown: 'after the outage' });
    } finally {
      stopTraffic();
      await h.stopAll();
    }
  });
});
