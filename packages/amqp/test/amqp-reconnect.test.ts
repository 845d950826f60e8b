import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AmqpTransport, AmqpTransportError } from '@roster/amqp';
import { startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { next, recorder, refusedPort, uniqueCluster, within } from './helpers.js';

/**
 * Takes the broker away under live traffic. Needs a broker this process can
 * pause: a private one, or AMQP_URL plus ROSTER_RABBITMQ_CTL (what
 * scripts/run-tests.mjs provides); otherwise it starts a private one.
 */
describe('AmqpTransport when the broker goes away', { timeout: 180_000 }, () => {
  let rabbit: RabbitMQ;
  const open: AmqpTransport[] = [];

  before(async () => {
    // These tests take the broker away: an external one must be controllable, else they get a private one.
    const controllable = process.env['AMQP_URL'] === undefined || (process.env['ROSTER_RABBITMQ_CTL'] ?? '') !== '';
    rabbit = await startRabbitMQ(controllable ? {} : { forcePrivate: true });
  });

  after(async () => {
    await Promise.all(open.map((each) => each.close()));
    if (rabbit?.state === 'paused') await rabbit.resume();
    await rabbit?.stop();
  });

  function transport(urls: string | string[] = rabbit.url): AmqpTransport {
    const created = new AmqpTransport({ urls, heartbeat: 2, reconnect: { initialMs: 50, maxMs: 400 } });
    open.push(created);
    return created;
  }

  test('down, dropped frames while down, then up with a new address and traffic again', async (t) => {
    const cluster = uniqueCluster('reconnect');
    const a = transport();
    const b = transport();
    const rb = recorder(b);
    const [oldA, oldB] = await within(Promise.all([a.connect({ cluster, node: 'a' }), b.connect({ cluster, node: 'b' })]), 15_000, 'connect');

    // Live traffic from a to b, every few milliseconds, all along.
    let sent = 0;
    const pump = setInterval(() => {
      const target = b.address ?? oldB;
      for (let i = 0; i < 5; i += 1) a.send(target, JSON.stringify({ n: sent++ }));
      a.broadcast(JSON.stringify({ n: sent++, all: true }));
    }, 5);
    try {
      await rb.until(20);
      const pendingFlush = a.flush();
      const downA = next(a, 'down', 15_000);
      const downB = next(b, 'down', 15_000);
      const upA = next(a, 'up', 90_000);
      const upB = next(b, 'up', 90_000);

      await rabbit.pause();
      const [errorA] = await Promise.all([downA, downB]);
      assert.ok(errorA instanceof Error, 'down carries the error');
      assert.equal(a.state, 'down');
      assert.equal(a.address, undefined);
      // A flush pending at the loss, if the broker had not confirmed it yet, fails with connection_lost.
      await pendingFlush.catch((error: unknown) => {
        assert.ok(error instanceof AmqpTransportError && error.code === 'connection_lost', String(error));
      });

      const droppedBefore = a.stats.dropped;
      a.send(oldB, '{"while":"down"}');
      a.broadcast('{"while":"down"}');
      assert.ok(a.stats.dropped >= droppedBefore + 2, 'frames handed over while down are dropped and counted');
      await assert.rejects(a.flush(), (error: unknown) => error instanceof AmqpTransportError && error.code === 'not_connected');

      await rabbit.resume();
      const [newA, newB] = await Promise.all([upA, upB]);
      assert.notEqual(newA, oldA, 'a reconnect gives a new address');
      assert.notEqual(newB, oldB);
      assert.equal(a.address, newA);
      assert.equal(a.state, 'up');

      // Traffic flows again: a marker sent now arrives.
      const seen = rb.frames.length;
      a.send(newB, '{"marker":"after"}');
      await within(a.flush(), 10_000, 'flush after reconnect');
      const frames = await rb.until(seen + 1, 10_000);
      await within(
        (async () => {
          while (!frames.includes('{"marker":"after"}')) await new Promise((resolve) => setTimeout(resolve, 10));
        })(),
        10_000,
        'the marker frame',
      );
      assert.ok(!frames.includes('{"while":"down"}'));
      assert.ok(a.stats.connections >= 2);
    } finally {
      clearInterval(pump);
    }
  });

  test('with [bad, good] URLs a transport comes back after the broker returns', async (t) => {
    const bad = `amqp://guest:guest@127.0.0.1:${await refusedPort()}`;
    const a = transport([bad, rabbit.url]);
    const ra = recorder(a);
    const first = await within(a.connect({ cluster: uniqueCluster('failover'), node: 'a' }), 15_000, 'connect');
    const down = next(a, 'down', 15_000);
    const up = next(a, 'up', 90_000);
    await rabbit.pause({ graceful: true });
    await down;
    await rabbit.resume();
    const second = await up;
    assert.notEqual(second, first);
    a.broadcast('{"back":true}');
    assert.deepEqual(await ra.until(1), ['{"back":true}']);
  });
});
