/**
 * How AmqpTransport picks a broker among several URLs, with fault proxies
 * (@roster/testkit) in front of one broker standing in for several:
 * after a loss it tries the URLs in list order with the lost one last, and
 * an attempt whose declarations stall gives up and moves on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AmqpTransport, redactUrl } from '@roster/amqp';
import { startFaultProxy, startRabbitMQ, type FaultProxy, type RabbitMQ } from '@roster/testkit';
import { next, uniqueCluster, within } from './helpers.js';

describe('AmqpTransport failover between URLs', { timeout: 60_000 }, () => {
  let rabbit: RabbitMQ;
  let proxies: FaultProxy[];

  before(async () => {
    rabbit = await startRabbitMQ();
    const { hostname, port } = new URL(rabbit.url);
    proxies = await Promise.all([0, 1, 2].map(() => startFaultProxy({ target: { host: hostname, port: Number(port) } })));
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await rabbit?.stop();
  });

  test('after a loss: the URLs in list order, the lost one last (a node returns to its first broker)', async () => {
    const urls = proxies.map((proxy) => proxy.url(rabbit.url));
    const t = new AmqpTransport({ urls, heartbeat: 2, reconnect: { initialMs: 50, maxMs: 200 } });
    try {
      await within(t.connect({ cluster: uniqueCluster('order'), node: 'a' }), 10_000, 'connect');
      assert.equal(t.broker, redactUrl(urls[0]!));
      let up = next(t, 'up');
      proxies[0]!.reset();
      await up;
      assert.equal(t.broker, redactUrl(urls[1]!));
      up = next(t, 'up');
      proxies[1]!.reset();
      await up;
      // Not the "next" URL (2): the first one, which is up.
      assert.equal(t.broker, redactUrl(urls[0]!));
    } finally {
      await t.close();
    }
  });

  test('an attempt whose declarations stall past attemptTimeoutMs gives up and tries the next URL', async () => {
    const slow = proxies[2]!;
    // ~0.8 s per round trip: the handshake (3 round trips, never idle 2.5 s) passes, the 6 declaration round trips do not fit in 2.5 s.
    slow.delay(400);
    const urls = [slow.url(rabbit.url), rabbit.url];
    const t = new AmqpTransport({ urls, heartbeat: 5, attemptTimeoutMs: 2500, connectTimeoutMs: 20_000 });
    try {
      const began = performance.now();
      await within(t.connect({ cluster: uniqueCluster('stall'), node: 'a' }), 20_000, 'connect');
      assert.equal(t.broker, redactUrl(rabbit.url), `connected through ${String(t.broker)}`);
      assert.ok(performance.now() - began < 10_000);
    } finally {
      slow.delay(0);
      await t.close();
    }
  });
});
