/**
 * startRabbitMQCluster: a private 3-broker cluster boots (once for the
 * file), every broker reports all three running, a frame published on
 * broker 0 reaches a consumer on broker 2, a SIGKILLed broker starts again
 * and rejoins, a paused broker answers nothing until resumed; an external
 * cluster comes from AMQP_CLUSTER_URLS and is driven through
 * ROSTER_RABBITMQ_CLUSTER_CTL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AmqpTransport } from '@roster/amqp';
import { startRabbitMQCluster, within, type RabbitMQCluster } from '@roster/testkit';
import { probeAmqp } from '../src/internal/rabbitmq-probe.js';

const CLUSTER = `cluster-test-${process.pid}`;

async function transportOn(url: string, node: string): Promise<AmqpTransport> {
  const transport = new AmqpTransport({ urls: url, connectTimeoutMs: 15_000 });
  await transport.connect({ cluster: CLUSTER, node });
  return transport;
}

function nextFrame(transport: AmqpTransport, match: string): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const listener = (frame: string): void => {
        if (frame !== match) return;
        transport.off('frame', listener);
        resolve(frame);
      };
      transport.on('frame', listener);
    }),
    `frame ${match}`,
    10_000,
  );
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('startRabbitMQCluster: a private cluster of 3', { timeout: 180_000 }, () => {
  let cluster: RabbitMQCluster;

  before(async () => {
    cluster = await startRabbitMQCluster({ nodes: 3, forcePrivate: true });
    process.stderr.write(`rabbitmq-cluster.test: 3 brokers booted and joined in ${cluster.startupMs} ms\n`);
  });
  after(async () => {
    await cluster?.stopAll();
  });

  test('every broker reports the same 3 running nodes', async () => {
    assert.equal(cluster.size, 3);
    assert.equal(cluster.external, false);
    assert.equal(new Set(cluster.urls).size, 3);
    for (const name of cluster.nodeNames) assert.match(name, /^rabbit-[0-9a-f]+-[0-2]@localhost$/);
    const views = await Promise.all([0, 1, 2].map((i) => cluster.runningNodes(i)));
    for (const view of views) assert.deepEqual(view, [...cluster.nodeNames].sort());
    assert.deepEqual(cluster.rotatedUrls(1), [cluster.url(1), cluster.url(2), cluster.url(0)]);
    assert.throws(() => cluster.url(3), RangeError);
  });

  test('a frame published on broker 0 reaches a consumer on broker 2, directly and by broadcast', async () => {
    const a = await transportOn(cluster.url(0), 'a');
    const b = await transportOn(cluster.url(2), 'b');
    try {
      const direct = nextFrame(b, 'direct');
      a.send(b.address!, 'direct');
      await direct;
      const fanout = nextFrame(b, 'fanout');
      a.broadcast('fanout');
      await fanout;
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('kill(1) takes broker 1 out of the cluster; start(1) brings it back in', async () => {
    await cluster.kill(1);
    assert.equal(cluster.state(1), 'stopped');
    assert.equal(await probeAmqp({ host: '127.0.0.1', port: portOf(cluster.url(1)) }), 'refused');
    assert.deepEqual(await cluster.runningNodes(0), [cluster.nodeNames[0], cluster.nodeNames[2]].sort());
    const began = performance.now();
    await cluster.start(1);
    process.stderr.write(`rabbitmq-cluster.test: broker 1 restarted in ${Math.round(performance.now() - began)} ms\n`);
    assert.equal(cluster.state(1), 'running');
    assert.deepEqual(await cluster.runningNodes(1), [...cluster.nodeNames].sort());
    // And it routes across the cluster again.
    const a = await transportOn(cluster.url(1), 'a1');
    const b = await transportOn(cluster.url(0), 'b1');
    try {
      const got = nextFrame(b, 'after restart');
      a.send(b.address!, 'after restart');
      await got;
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('pause(2) freezes broker 2 (the port accepts, nothing answers); resume(2) thaws it', async () => {
    await cluster.pause(2);
    assert.equal(cluster.state(2), 'paused');
    assert.equal(await probeAmqp({ host: '127.0.0.1', port: portOf(cluster.url(2)) }, 500), 'error');
    await cluster.resume(2);
    assert.equal(cluster.state(2), 'running');
    assert.equal(await probeAmqp({ host: '127.0.0.1', port: portOf(cluster.url(2)) }, 5000), 'ready');
  });
});

describe('startRabbitMQCluster: an external cluster', () => {
  test('AMQP_CLUSTER_URLS names the brokers; ROSTER_RABBITMQ_CLUSTER_CTL drives them', async () => {
    const urls = 'amqp://u:p@10.0.0.1:5672, amqp://u:p@10.0.0.2:5672';
    const plain = await startRabbitMQCluster({ env: { AMQP_CLUSTER_URLS: urls } });
    assert.equal(plain.external, true);
    assert.deepEqual(plain.urls, ['amqp://u:p@10.0.0.1:5672', 'amqp://u:p@10.0.0.2:5672']);
    await assert.rejects(plain.kill(0), /ROSTER_RABBITMQ_CLUSTER_CTL/);
    await plain.stopAll();

    const dir = await mkdtemp(join(tmpdir(), 'roster-cluster-ctl-'));
    try {
      const script = join(dir, 'ctl.sh');
      await writeFile(script, `#!/bin/sh\necho "$1 $2" >> "${join(dir, 'calls')}"\n`, { mode: 0o755 });
      const driven = await startRabbitMQCluster({ env: { AMQP_CLUSTER_URLS: urls, ROSTER_RABBITMQ_CLUSTER_CTL: script } });
      await driven.kill(1);
      await driven.pause(0);
      assert.equal(driven.state(1), 'stopped');
      assert.equal(driven.state(0), 'paused');
      assert.equal(await readFile(join(dir, 'calls'), 'utf8'), 'kill 1\npause 0\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await assert.rejects(startRabbitMQCluster({ nodes: 0, forcePrivate: true }), /option nodes must be an integer/);
  });
});
