import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AmqpTransport, AmqpTransportError, type AmqpTransportOptions } from '@roster/amqp';
import { startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { next, recorder, refusedPort, uniqueCluster, within } from './helpers.js';

describe('AmqpTransport against a real broker', { timeout: 120_000 }, () => {
  let rabbit: RabbitMQ;
  const open: AmqpTransport[] = [];

  function transport(options: Partial<AmqpTransportOptions> = {}): AmqpTransport {
    const created = new AmqpTransport({ urls: rabbit.url, reconnect: { initialMs: 50, maxMs: 500 }, ...options });
    open.push(created);
    return created;
  }

  /** Two connected transports of one fresh cluster, with recorders. */
  async function pair(options: Partial<AmqpTransportOptions> = {}) {
    const cluster = uniqueCluster('pair');
    const a = transport(options);
    const b = transport(options);
    const ra = recorder(a);
    const rb = recorder(b);
    const [addressA, addressB] = await within(
      Promise.all([a.connect({ cluster, node: 'a' }), b.connect({ cluster, node: 'b' })]),
      15_000,
      'connect',
    );
    return { cluster, a, b, ra, rb, addressA, addressB };
  }

  before(async () => {
    rabbit = await startRabbitMQ();
  });

  after(async () => {
    await Promise.all(open.map((each) => each.close()));
    await rabbit?.stop();
  });

  test('connect resolves with the queue name as address and emits up first', async () => {
    const t = transport();
    let upAddress: string | undefined;
    t.on('up', (address) => {
      upAddress = address;
    });
    assert.equal(t.state, 'idle');
    const address = await within(t.connect({ cluster: uniqueCluster('c'), node: 'n' }), 15_000, 'connect');
    assert.match(address, /^amq\.gen-/);
    assert.equal(upAddress, address);
    assert.equal(t.address, address);
    assert.equal(t.state, 'up');
    await assert.rejects(t.connect({ cluster: 'x', node: 'n' }), /already up/);
  });

  test('broadcast reaches every node, the sender included; send reaches one node', async () => {
    const { a, b, ra, rb, addressA, addressB } = await pair();
    a.broadcast('{"hello":"all"}');
    await ra.until(1);
    await rb.until(1);
    assert.deepEqual(ra.frames, ['{"hello":"all"}']);
    assert.deepEqual(rb.frames, ['{"hello":"all"}']);

    a.send(addressB, '{"to":"b"}');
    b.send(addressA, '{"to":"a"}');
    await ra.until(2);
    await rb.until(2);
    assert.deepEqual(ra.frames, ['{"hello":"all"}', '{"to":"a"}']);
    assert.deepEqual(rb.frames, ['{"hello":"all"}', '{"to":"b"}']);
    assert.equal(a.stats.published, 2);
    assert.equal(b.stats.received, 2);
  });

  test('frames keep their order per pair, and one turn of frames travels as few messages', async () => {
    const { a, rb, addressB } = await pair();
    const count = 5000;
    const sent: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const frame = JSON.stringify({ i, pad: 'x'.repeat(i % 50) });
      sent.push(frame);
      a.send(addressB, frame);
    }
    await within(a.flush(), 10_000, 'flush');
    const got = await rb.until(count, 20_000);
    assert.deepEqual(got, sent);
    const stats = a.stats;
    assert.equal(stats.published, count);
    assert.ok(stats.batches < count / 10, `expected coalescing, got ${stats.batches} messages for ${count} frames`);
    assert.equal(stats.confirmed, 0, 'plain publishing by default: no confirms');
  });

  test('a big burst is split into batches of at most maxBatchBytes, in order', async () => {
    const { a, rb, addressB } = await pair({ maxBatchBytes: 4096 });
    const sent = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i, pad: 'y'.repeat(100) }));
    for (const frame of sent) a.send(addressB, frame);
    assert.deepEqual(await rb.until(sent.length), sent);
    // 300 frames of ~120 bytes in 4 KiB batches: at least 9 messages, far fewer than 300.
    assert.ok(a.stats.batches >= 9 && a.stats.batches < 30, `batches: ${a.stats.batches}`);
  });

  test('broadcast and direct frames interleaved keep their order at the receiver', async () => {
    const { a, rb, addressB } = await pair();
    const sent: string[] = [];
    for (let i = 0; i < 200; i += 1) {
      const frame = JSON.stringify({ i });
      sent.push(frame);
      if (i % 3 === 0) a.broadcast(frame);
      else a.send(addressB, frame);
    }
    assert.deepEqual(await rb.until(sent.length), sent);
  });

  test('frames that contain a newline or are empty survive the batching', async () => {
    const { a, rb, addressB } = await pair();
    const sent = ['{"a":1}', 'line one\nline two', '', '{"b":2}', '\n', '{"c":"é✓"}'];
    for (const frame of sent) a.send(addressB, frame);
    assert.deepEqual(await rb.until(sent.length), sent);
  });

  test('transports of different clusters never see each other', async () => {
    const one = await pair();
    const two = await pair();
    one.a.broadcast('{"cluster":1}');
    two.a.broadcast('{"cluster":2}');
    await Promise.all([one.rb.until(1), two.rb.until(1), one.ra.until(1), two.ra.until(1)]);
    await Promise.all([one.a.flush(), two.a.flush()]);
    // Give a stray cross-cluster delivery the time to show up, then look.
    await one.b.flush();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(one.rb.frames, ['{"cluster":1}']);
    assert.deepEqual(two.rb.frames, ['{"cluster":2}']);
    assert.deepEqual(one.ra.frames, ['{"cluster":1}']);
    assert.deepEqual(two.ra.frames, ['{"cluster":2}']);
  });

  test('with confirms: true, flush resolves once the broker confirmed everything, and at once when idle', async () => {
    const { a, addressB } = await pair({ confirms: true });
    await within(a.flush(), 5_000, 'idle flush');
    for (let i = 0; i < 100; i += 1) a.send(addressB, `{"n":${i}}`);
    a.broadcast('{"all":true}');
    const before = a.stats.confirmed;
    await within(a.flush(), 10_000, 'flush');
    const stats = a.stats;
    assert.equal(stats.confirmed, stats.batches);
    assert.ok(stats.confirmed > before);
  });

  test('without confirms (the default), flush is an in-order barrier: what it covers is in the queue when it resolves', async () => {
    // b consumes with a prefetch of 1 and never acks past the first message, so the rest stays queued where it can be counted.
    const { a, addressB } = await pair();
    const probe = transport();
    await probe.connect({ cluster: uniqueCluster('probe'), node: 'probe' });
    const target = `roster-test-barrier-${process.pid}-${Date.now()}`;
    const { connect } = await import('amqplib');
    const model = await connect(rabbit.url);
    try {
      const channel = await model.createChannel();
      await channel.assertQueue(target, { exclusive: true, autoDelete: true, durable: false });
      for (let i = 0; i < 50; i += 1) a.send(target, `{"n":${i}}`);
      await within(a.flush(), 10_000, 'barrier flush');
      const { messageCount } = await channel.checkQueue(target);
      assert.ok(messageCount >= 1, 'the frames were routed before flush resolved');
      const got = await channel.get(target, { noAck: true });
      assert.ok(got !== false && got.content.toString().split('\n').length === 50, 'one coalesced message carries the 50 frames');
      assert.equal(a.stats.confirmed, 0);
      assert.ok(addressB.length > 0);
    } finally {
      await model.close();
      await probe.close();
    }
  });

  test('a send to an address that is gone is dropped by the broker without harm', async () => {
    const { a, b, rb, addressB } = await pair();
    a.send('amq.gen-no-such-queue', '{"lost":true}');
    await within(a.flush(), 5_000, 'flush');
    a.send(addressB, '{"still":"fine"}');
    assert.deepEqual(await rb.until(1), ['{"still":"fine"}']);
    assert.equal(b.state, 'up');
    assert.equal(a.state, 'up');
  });

  test('close is idempotent, emits nothing afterwards, and flush then rejects', async () => {
    const { a, b, addressA } = await pair();
    const events: string[] = [];
    a.on('frame', () => events.push('frame'));
    a.on('down', () => events.push('down'));
    a.on('up', () => events.push('up'));
    const first = a.close();
    const second = a.close();
    assert.equal(first, second);
    await within(first, 5_000, 'close');
    await a.close();
    assert.equal(a.state, 'closed');
    assert.equal(a.address, undefined);
    // Frames for the closed node, and broadcasts from its peer: nothing reaches it.
    b.send(addressA, '{"late":1}');
    b.broadcast('{"late":2}');
    await b.flush();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(events, []);
    a.broadcast('{"after":"close"}');
    assert.equal(a.stats.dropped, 1);
    await assert.rejects(a.flush(), (error: unknown) => error instanceof AmqpTransportError && error.code === 'closed');
    await assert.rejects(a.connect({ cluster: 'x', node: 'y' }), (error: unknown) => error instanceof AmqpTransportError && error.code === 'closed');
  });

  test('close publishes what is still coalescing before it leaves', async () => {
    const { a, rb, addressB } = await pair();
    a.send(addressB, '{"last":"words"}');
    await a.close();
    assert.deepEqual(await rb.until(1), ['{"last":"words"}']);
  });

  test('a frame listener that closes the transport stops further frames', async () => {
    const { a, b, addressB } = await pair();
    const seen: string[] = [];
    const first = new Promise<void>((resolve) => {
      b.on('frame', (frame) => {
        seen.push(frame);
        void b.close();
        resolve();
      });
    });
    // One turn: one AMQP message carrying all ten frames.
    for (let i = 0; i < 10; i += 1) a.send(addressB, `{"i":${i}}`);
    await within(first, 5_000, 'the first frame');
    await within(b.close(), 5_000, 'close');
    assert.deepEqual(seen, ['{"i":0}']);
  });

  test('fails over: [refused url, good url] connects to the good one', async () => {
    const bad = `amqp://guest:guest@127.0.0.1:${await refusedPort()}`;
    const t = transport({ urls: [bad, rabbit.url] });
    const address = await within(t.connect({ cluster: uniqueCluster('failover'), node: 'f' }), 15_000, 'connect');
    assert.match(address, /^amq\.gen-/);
    assert.equal(t.state, 'up');
    assert.equal(t.broker?.includes('guest:guest'), false);
  });

  test('connect rejects with connect_failed and a redacted message when no broker answers', async () => {
    const port = await refusedPort();
    const t = transport({ urls: [`amqp://admin:hunter2@127.0.0.1:${port}`], connectTimeoutMs: 500, reconnect: { initialMs: 20, maxMs: 50 } });
    await assert.rejects(t.connect({ cluster: 'c', node: 'n' }), (error: unknown) => {
      assert.ok(error instanceof AmqpTransportError);
      assert.equal(error.code, 'connect_failed');
      assert.ok(!error.message.includes('hunter2'), error.message);
      assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
      return true;
    });
    assert.equal(t.state, 'idle');
  });

  test('close during connect rejects connect with code closed', async () => {
    const t = transport({ urls: [`amqp://127.0.0.1:${await refusedPort()}`], reconnect: { initialMs: 1000, maxMs: 1000 } });
    const connecting = t.connect({ cluster: 'c', node: 'n' });
    const rejected = assert.rejects(connecting, (error: unknown) => error instanceof AmqpTransportError && error.code === 'closed');
    assert.equal(t.state, 'connecting');
    await t.close();
    await rejected;
  });

  test('frames handed over before connect or with a bad type', async () => {
    const t = transport();
    t.broadcast('{"early":1}');
    assert.equal(t.stats.dropped, 1);
    await assert.rejects(t.flush(), (error: unknown) => error instanceof AmqpTransportError && error.code === 'not_connected');
    assert.throws(() => t.broadcast(42 as unknown as string), TypeError);
  });

  test('an oversized frame is dropped and counted', async () => {
    const { a, rb, addressB } = await pair({ maxFrameBytes: 2048 });
    a.send(addressB, JSON.stringify({ big: 'z'.repeat(4096) }));
    a.send(addressB, '{"small":1}');
    assert.deepEqual(await rb.until(1), ['{"small":1}']);
    assert.equal(a.stats.oversized, 1);
    assert.equal(a.stats.dropped, 1);
  });

  test('manual acks with a prefetch window deliver everything in order', async () => {
    const { a, rb, addressB } = await pair({ prefetch: 2, batching: 'none' });
    const sent = Array.from({ length: 50 }, (_, i) => `{"p":${i}}`);
    for (const frame of sent) a.send(addressB, frame);
    assert.deepEqual(await rb.until(sent.length), sent);
    assert.equal(a.stats.batches, sent.length);
  });
});
