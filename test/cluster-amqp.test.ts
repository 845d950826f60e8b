/**
 * The cluster suite over RabbitMQ (AmqpTransport). Uses `AMQP_URL` when set,
 * otherwise a private broker from `startRabbitMQ()`. Nodes run in this
 * process, except the one lost without warning: a separate OS process
 * (`startNodeProcesses`) killed with SIGKILL. Raw frames are published by a
 * bare amqplib connection onto the cluster's fanout exchange `roster.<id>`.
 */
import { after, before } from 'node:test';
import { connect } from 'amqplib';
import { startCluster, startNodeProcesses, startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { clusterSuite, type Carrier } from './cluster-suite.js';

let rabbit: RabbitMQ | undefined;

before(async () => {
  rabbit = await startRabbitMQ();
});

after(async () => {
  await rabbit?.stop();
});

function url(): string {
  if (rabbit === undefined) throw new Error('RabbitMQ is not started');
  return rabbit.url;
}

const carrier: Carrier = {
  kind: 'amqp',
  waitMs: 10_000,
  start: (options) => startCluster({ ...options, transport: 'amqp', amqpUrl: url() }),
  async startLosable(harness, name) {
    const { heartbeatInterval, failureTimeout, secret } = harness.options;
    const [child] = await startNodeProcesses({
      count: 1,
      names: [name],
      amqpUrl: url(),
      clusterId: harness.id,
      ...(heartbeatInterval === undefined ? {} : { heartbeatInterval }),
      ...(failureTimeout === undefined ? {} : { failureTimeout }),
      ...(typeof secret === 'string' ? { secret } : {}),
    });
    const peer = child!;
    const echo = await peer.spawnEcho();
    return {
      name,
      echo,
      ready: async () => {
        await harness.waitForMembership({ also: [name], timeout: 10_000 });
        await Promise.all(harness.nodes.map((node) => peer.waitForPeer(node.name, 10_000)));
      },
      lose: () => peer.kill('SIGKILL'),
      close: () => peer.stop(),
    };
  },
  async injector(harness) {
    const connection = await connect(url());
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    const exchange = `roster.${harness.id}`;
    return {
      address: queue,
      async publish(frame) {
        channel.publish(exchange, '', Buffer.from(frame, 'utf8'));
        await channel.waitForConfirms();
      },
      async close() {
        await connection.close();
      },
    };
  },
};

clusterSuite('amqp', carrier);
