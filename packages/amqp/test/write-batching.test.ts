/**
 * One socket write per turn: the frames amqplib sends in one pass of its
 * multiplexer reach the socket as one `writev`, in order, instead of one
 * system call each; and where amqplib does not have the expected shape,
 * nothing is patched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type ChannelModel } from 'amqplib';
import { startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { batchSocketWrites } from '../src/internal/write-batching.js';
import { within } from './helpers.js';

/** Counts the writes reaching `model`'s socket (each `_write` or `_writev` is one system call). */
function countWrites(model: ChannelModel): { readonly count: number } {
  const socket = (model.connection as unknown as { stream: { _write: (...args: unknown[]) => void; _writev?: (...args: unknown[]) => void } }).stream;
  const counter = { count: 0 };
  const write = socket._write.bind(socket);
  socket._write = (...args: unknown[]) => {
    counter.count++;
    write(...args);
  };
  const writev = socket._writev?.bind(socket);
  if (writev !== undefined) {
    socket._writev = (...args: unknown[]) => {
      counter.count++;
      writev(...args);
    };
  }
  return counter;
}

/** Publishes `count` numbered messages to a fresh queue in one turn; resolves with what a consumer got, in order, and the writes made. */
async function publishInOneTurn(model: ChannelModel, count: number): Promise<{ got: number[]; writes: number }> {
  const channel = await model.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true });
  const got: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  await channel.consume(queue, (message) => {
    if (message === null) return;
    got.push(Number(message.content.toString()));
    if (got.length === count) done();
  }, { noAck: true });
  const writes = countWrites(model);
  for (let n = 0; n < count; n++) channel.sendToQueue(queue, Buffer.from(String(n)));
  await within(all, 10_000, `${count} messages`);
  const made = writes.count;
  await channel.close();
  return { got, writes: made };
}

describe('batchSocketWrites', { timeout: 60_000 }, () => {
  let rabbit: RabbitMQ;
  before(async () => {
    rabbit = await startRabbitMQ();
  });
  after(async () => {
    await rabbit.stop();
  });

  test('a turn of publishes is a few socket writes, received in order; without it, one write each', async () => {
    const batched = await connect(rabbit.url);
    const plain = await connect(rabbit.url);
    try {
      assert.equal(batchSocketWrites(batched), true, 'amqplib has the shape this patch expects');
      const withBatching = await publishInOneTurn(batched, 200);
      const without = await publishInOneTurn(plain, 200);
      const order = Array.from({ length: 200 }, (_, n) => n);
      assert.deepEqual(withBatching.got, order);
      assert.deepEqual(without.got, order);
      assert.ok(without.writes >= 150, `amqplib alone wrote ${without.writes} times for 200 publishes (the premise of the patch)`);
      assert.ok(withBatching.writes <= 10, `${withBatching.writes} socket writes for 200 publishes in one turn`);
    } finally {
      await batched.close();
      await plain.close();
    }
  });

  test('an amqplib of another shape is left alone', () => {
    for (const connection of [{}, { muxer: {} }, { muxer: { _readIncoming: () => {}, out: {} } }]) {
      assert.equal(batchSocketWrites({ connection } as unknown as ChannelModel), false);
    }
  });
});
