/**
 * What the broker itself costs, measured with raw amqplib in the same run as
 * roster (../shared/reference/anchors.md): the baselines of the cluster and
 * registry suites.
 */
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { microsPerOp, perSecond, timeIt } from './report.js';

const PAYLOAD = 'x'.repeat(100);

async function open(url: string): Promise<{ connection: ChannelModel; channel: Channel; queue: string }> {
  const connection = await connect(url);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  return { connection, channel, queue };
}

/** Sequential request/reply between two connections: microseconds per round trip. */
export async function rawRequestReply(url: string, count: number): Promise<number> {
  const client = await open(url);
  const server = await open(url);
  try {
    await server.channel.consume(
      server.queue,
      (message) => {
        if (message !== null) server.channel.sendToQueue(message.properties.replyTo as string, message.content);
      },
      { noAck: true },
    );
    let pending: (() => void) | undefined;
    await client.channel.consume(client.queue, () => pending?.(), { noAck: true });
    const once = (): Promise<void> =>
      new Promise((resolve) => {
        pending = resolve;
        client.channel.sendToQueue(server.queue, Buffer.from(PAYLOAD), { replyTo: client.queue });
      });
    for (let n = 0; n < 50; n++) await once();
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) await once();
    });
    return microsPerOp(count, ms);
  } finally {
    await client.connection.close();
    await server.connection.close();
  }
}

/**
 * A broadcast on a fanout exchange to `queues` queues (the sender's own
 * included, as a real node's), and the wait for the `queues - 1` direct
 * replies: microseconds per round.
 */
export async function rawBroadcastCollect(url: string, queues: number, count: number): Promise<number> {
  const exchange = `bench-fanout-${process.pid}-${Date.now()}`;
  const nodes = await Promise.all(Array.from({ length: queues }, () => open(url)));
  const [sender, ...peers] = nodes as [(typeof nodes)[0], ...typeof nodes];
  try {
    await sender.channel.assertExchange(exchange, 'fanout', { durable: false, autoDelete: true });
    for (const node of nodes) await node.channel.bindQueue(node.queue, exchange, '');
    for (const peer of peers) {
      await peer.channel.consume(
        peer.queue,
        (message) => {
          if (message !== null) peer.channel.sendToQueue(sender.queue, message.content);
        },
        { noAck: true },
      );
    }
    let replies = 0;
    let pending: (() => void) | undefined;
    await sender.channel.consume(
      sender.queue,
      (message) => {
        // The sender's own copy of the broadcast also lands here, as it does for a node; only replies count.
        if (message !== null && message.properties.type !== 'broadcast' && ++replies === peers.length) pending?.();
      },
      { noAck: true },
    );
    const once = (): Promise<void> =>
      new Promise((resolve) => {
        replies = 0;
        pending = resolve;
        sender.channel.publish(exchange, '', Buffer.from(PAYLOAD), { type: 'broadcast' });
      });
    for (let n = 0; n < 50; n++) await once();
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) await once();
    });
    return microsPerOp(count, ms);
  } finally {
    for (const node of nodes) await node.connection.close();
  }
}

/** One publisher, one consumer, one AMQP message per send, 100-byte bodies: messages per second. */
export async function rawThroughput(url: string, count: number): Promise<number> {
  const producer = await open(url);
  const consumer = await open(url);
  try {
    let received = 0;
    let done: (() => void) | undefined;
    await consumer.channel.consume(
      consumer.queue,
      () => {
        if (++received === count) done?.();
      },
      { noAck: true },
    );
    const finished = new Promise<void>((resolve) => (done = resolve));
    const body = Buffer.from(PAYLOAD);
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) {
        if (!producer.channel.sendToQueue(consumer.queue, body)) {
          await new Promise((resolve) => producer.channel.once('drain', resolve));
        }
      }
      await finished;
    });
    return perSecond(count, ms);
  } finally {
    await producer.connection.close();
    await consumer.connection.close();
  }
}
