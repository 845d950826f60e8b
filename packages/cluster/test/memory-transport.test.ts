import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MemoryBroker, MemoryTransport, MemoryTransportError, type FaultOptions } from '../src/memory-transport.js';
import { SeededRandom } from '../src/internal/seeded-random.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

type Received = { to: string; frame: string };

/** The next `event` of `t`, as a promise of its (first) argument. */
function next(t: MemoryTransport, event: 'up' | 'down' | 'frame'): Promise<unknown> {
  return new Promise((resolve) => t.once(event, (arg: unknown) => resolve(arg)));
}

/** Connects `nodes` to `broker` in `cluster`, recording every frame each receives. */
async function connectAll(
  broker: MemoryBroker,
  cluster: string,
  nodes: readonly string[],
  log: Received[] = [],
): Promise<{ transports: MemoryTransport[]; log: Received[] }> {
  const transports: MemoryTransport[] = [];
  for (const node of nodes) {
    const t = new MemoryTransport({ broker });
    t.on('frame', (frame) => log.push({ to: t.address ?? `${node}?`, frame }));
    await t.connect({ cluster, node });
    transports.push(t);
  }
  return { transports, log };
}

function framesOf(log: readonly Received[], to: string): string[] {
  return log.filter((r) => r.to === to).map((r) => r.frame);
}

async function closeAll(transports: readonly MemoryTransport[]): Promise<void> {
  await Promise.all(transports.map((t) => t.close()));
}

describe('SeededRandom', () => {
  it('is reproducible from its seed and stays in range', () => {
    const a = new SeededRandom(12345);
    const b = new SeededRandom(12345);
    const c = new SeededRandom(12346);
    const xs = Array.from({ length: 1000 }, () => a.next());
    const ys = Array.from({ length: 1000 }, () => b.next());
    const zs = Array.from({ length: 1000 }, () => c.next());
    assert.deepEqual(xs, ys);
    assert.notDeepEqual(xs, zs);
    for (const x of xs) assert.ok(x >= 0 && x < 1);
    const r = new SeededRandom(7);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 40_000; i++) counts[r.int(0, 3)]!++;
    for (const n of counts) assert.ok(n > 9_000 && n < 11_000, `skewed: ${counts.join(',')}`);
  });

  it('uses the high bits of large seeds', () => {
    assert.notEqual(new SeededRandom(1).nextUint32(), new SeededRandom(1 + 2 ** 32).nextUint32());
  });
});

describe('MemoryTransport', () => {
  it('connects with a unique address, emits up, and reports its state', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const t = new MemoryTransport({ broker });
    assert.equal(t.state, 'idle');
    assert.equal(t.address, undefined);
    const up = next(t, 'up');
    const address = await t.connect({ cluster: 'c', node: 'a' });
    assert.equal(await up, address);
    assert.equal(t.address, address);
    assert.equal(t.state, 'up');
    const t2 = new MemoryTransport({ broker });
    const address2 = await t2.connect({ cluster: 'c', node: 'a' });
    assert.notEqual(address, address2);
    await assert.rejects(t.connect({ cluster: 'c', node: 'a' }), /already up/);
    await t.flush();
    assert.deepEqual(
      broker.connections('c').map((c) => c.address),
      [address, address2],
    );
    await closeAll([t, t2]);
  });

  it('joins MemoryBroker.default when given no broker', async () => {
    const t = new MemoryTransport();
    assert.equal(t.broker, MemoryBroker.default);
    const address = await t.connect({ cluster: 'default-test', node: 'solo' });
    const got = next(t, 'frame');
    t.send(address, 'hello me');
    assert.equal(await got, 'hello me');
    await t.close();
  });

  it('delivers broadcasts to every node of the cluster, itself included, and direct sends to one', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b', 'c']);
    const [a, b, c] = transports as [MemoryTransport, MemoryTransport, MemoryTransport];
    a.broadcast('hello all');
    b.send(c.address!, 'just c');
    assert.equal(log.length, 0, 'delivery is never synchronous');
    await broker.idle();
    assert.deepEqual(framesOf(log, a.address!), ['hello all']);
    assert.deepEqual(framesOf(log, b.address!), ['hello all']);
    assert.deepEqual(framesOf(log, c.address!), ['hello all', 'just c']);
    assert.deepEqual(broker.stats, { sent: 2, delivered: 4, dropped: 0, duplicated: 0, reordered: 0, inFlight: 0 });
    await closeAll(transports);
  });

  it('keeps clusters apart', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const log: Received[] = [];
    const one = await connectAll(broker, 'one', ['a', 'b'], log);
    const two = await connectAll(broker, 'two', ['a', 'b'], log);
    one.transports[0]!.broadcast('to one');
    two.transports[0]!.broadcast('to two');
    one.transports[0]!.send(two.transports[1]!.address!, 'cross-cluster');
    await broker.idle();
    for (const t of one.transports) assert.deepEqual(framesOf(log, t.address!), ['to one']);
    for (const t of two.transports) assert.deepEqual(framesOf(log, t.address!), ['to two']);
    assert.equal(broker.stats.dropped, 1);
    await closeAll([...one.transports, ...two.transports]);
  });

  it('drops a send to an unknown address', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b']);
    transports[0]!.send('mem:nobody:999', 'lost');
    transports[0]!.send('not even an address', 'lost');
    await broker.idle();
    assert.deepEqual(log, []);
    assert.equal(broker.stats.dropped, 2);
    await closeAll(transports);
  });

  it('keeps FIFO per sender-receiver pair over 10k frames without faults', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['s1', 's2', 's3', 'r1', 'r2']);
    const senders = transports.slice(0, 3);
    const receivers = transports.slice(3);
    const total = 10_000;
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      const s = senders[i % 3]!;
      if (i % 10 === 0) s.broadcast(`${s.address}|${i}`);
      else s.send(receivers[i % 2]!.address!, `${s.address}|${i}`);
      if (i % 1000 === 999) await new Promise<void>((resolve) => setImmediate(resolve)); // interleave with delivery
    }
    await broker.idle();
    const elapsed = performance.now() - started;
    for (const r of [...receivers, ...senders]) {
      const lastFrom = new Map<string, number>();
      for (const frame of framesOf(log, r.address!)) {
        const [from, n] = frame.split('|') as [string, string];
        const seq = Number(n);
        assert.ok((lastFrom.get(from) ?? -1) < seq, `out of order at ${r.address}: ${from} ${seq}`);
        lastFrom.set(from, seq);
      }
    }
    const expected = total * 0.9 + total * 0.1 * transports.length;
    assert.equal(log.length, expected);
    assert.equal(broker.stats.delivered, expected);
    assert.ok(elapsed < 2000, `10k frames took ${elapsed.toFixed(0)} ms`);
    await closeAll(transports);
  });

  it('close is idempotent, fires nothing afterwards, and drops what is sent to or by it', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b']);
    const [a, b] = transports as [MemoryTransport, MemoryTransport];
    const events: string[] = [];
    a.on('up', () => events.push('up'));
    a.on('down', () => events.push('down'));
    a.on('frame', () => events.push('frame'));
    const aAddress = a.address!;
    b.send(aAddress, 'in flight to a');
    a.broadcast('sent by a before close');
    await a.close();
    await a.close();
    assert.equal(a.state, 'closed');
    assert.equal(a.address, undefined);
    a.broadcast('after close');
    a.send(b.address!, 'after close');
    b.send(aAddress, 'to a closed address');
    broker.disconnect('a');
    broker.reconnect('a');
    broker.crash('a');
    await broker.idle();
    assert.deepEqual(events, []);
    assert.deepEqual(framesOf(log, b.address!), ['sent by a before close'], 'frames already handed over still arrive');
    await assert.rejects(a.flush(), (e: unknown) => e instanceof MemoryTransportError && e.code === 'closed');
    await assert.rejects(a.connect({ cluster: 'c', node: 'a' }), MemoryTransportError);
    await b.close();
  });

  it('partition drops frames across the groups, keeps both sides up, and heal restores them', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b', 'c', 'd']);
    const [a, b, c, d] = transports as [MemoryTransport, MemoryTransport, MemoryTransport, MemoryTransport];
    a.send(c.address!, 'in flight when cut');
    broker.partition(['a', 'b'], ['c', 'd']);
    assert.ok(broker.isPartitioned('a', 'c') && broker.isPartitioned('d', 'b'));
    assert.ok(!broker.isPartitioned('a', 'b'));
    a.broadcast('a1');
    c.broadcast('c1');
    d.send(b.address!, 'd->b');
    b.send(a.address!, 'b->a');
    await broker.idle();
    for (const t of transports) assert.equal(t.state, 'up');
    assert.deepEqual(framesOf(log, a.address!), ['a1', 'b->a']);
    assert.deepEqual(framesOf(log, b.address!), ['a1']);
    assert.deepEqual(framesOf(log, c.address!), ['c1']);
    assert.deepEqual(framesOf(log, d.address!), ['c1']);
    broker.heal();
    log.length = 0;
    a.broadcast('a2');
    d.send(b.address!, 'd->b again');
    await broker.idle();
    for (const t of transports) assert.ok(framesOf(log, t.address!).includes('a2'));
    assert.deepEqual(framesOf(log, b.address!), ['a2', 'd->b again']);
    // selective heal
    broker.partition(['a'], ['b']);
    broker.partition(['a'], ['c']);
    broker.heal(['a'], ['b']);
    assert.ok(!broker.isPartitioned('a', 'b') && broker.isPartitioned('c', 'a'));
    await closeAll(transports);
  });

  it('disconnect gives down, reconnect gives up under a new address', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b']);
    const [a, b] = transports as [MemoryTransport, MemoryTransport];
    const events: string[] = [];
    a.on('up', (address) => events.push(`up ${address}`));
    a.on('down', (error) => events.push(`down ${(error as MemoryTransportError).code}`));
    const oldAddress = a.address!;
    a.broadcast('sent before the cut');
    b.send(oldAddress, 'in flight to a');
    const down = next(a, 'down');
    broker.disconnect('a');
    assert.equal(a.state, 'down');
    assert.equal(a.address, undefined);
    const error = await down;
    assert.ok(error instanceof MemoryTransportError && error.code === 'disconnected');
    a.broadcast('sent while down');
    b.send(oldAddress, 'to the old address');
    await assert.rejects(a.flush(), (e: unknown) => e instanceof MemoryTransportError && e.code === 'not_connected');
    await broker.idle();
    assert.deepEqual(framesOf(log, b.address!), ['sent before the cut']);
    assert.deepEqual(framesOf(log, oldAddress), []);

    const up = next(a, 'up');
    broker.reconnect('a');
    const newAddress = await up;
    assert.equal(a.state, 'up');
    assert.equal(a.address, newAddress);
    assert.notEqual(newAddress, oldAddress);
    assert.deepEqual(events, ['down disconnected', `up ${String(newAddress)}`]);
    b.send(oldAddress, 'old address, still gone');
    b.send(a.address!, 'new address');
    a.broadcast('back');
    await broker.idle();
    assert.deepEqual(framesOf(log, a.address!), ['new address', 'back']);
    assert.deepEqual(framesOf(log, b.address!), ['sent before the cut', 'back']);
    await closeAll(transports);
  });

  it('a transport closed while disconnected is not brought back', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports } = await connectAll(broker, 'c', ['a']);
    const a = transports[0]!;
    broker.disconnect('a');
    await a.close();
    let events = 0;
    a.on('up', () => events++);
    a.on('down', () => events++);
    broker.reconnect('a');
    await broker.idle();
    assert.equal(a.state, 'closed');
    assert.equal(events, 0);
    assert.deepEqual(broker.connections(), []);
  });

  it('crash makes a node vanish silently', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b', 'c']);
    const [a, b, c] = transports as [MemoryTransport, MemoryTransport, MemoryTransport];
    const others: string[] = [];
    for (const t of [b, c]) {
      t.on('down', () => others.push('down'));
      t.on('up', () => others.push('up'));
    }
    a.broadcast('in flight from a');
    b.send(a.address!, 'in flight to a');
    const down = next(a, 'down');
    broker.crash('a');
    assert.equal(a.state, 'closed');
    const error = await down;
    assert.ok(error instanceof MemoryTransportError && error.code === 'crashed');
    a.broadcast('after the crash');
    b.broadcast('from b');
    await broker.idle();
    assert.deepEqual(others, []);
    assert.deepEqual(framesOf(log, b.address!), ['from b']);
    assert.deepEqual(framesOf(log, c.address!), ['from b']);
    assert.equal(log.length, 2);
    assert.deepEqual(
      broker.connections().map((x) => x.node),
      ['b', 'c'],
    );
    await assert.rejects(a.connect({ cluster: 'c', node: 'a' }), MemoryTransportError);
    // a fresh incarnation of the same node joins again
    const { transports: again } = await connectAll(broker, 'c', ['a']);
    await closeAll([...transports, ...again]);
  });

  it('idle() waits for answers sent after an await, and resolves at once when nothing is in flight', async () => {
    const broker = new MemoryBroker({ seed: 1 });
    await broker.idle();
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b']);
    const [a, b] = transports as [MemoryTransport, MemoryTransport];
    b.on('frame', async (frame) => {
      const n = Number(frame);
      await Promise.resolve();
      await Promise.resolve();
      if (n < 50) b.send(a.address!, String(n + 1));
    });
    a.on('frame', async (frame) => {
      await null;
      a.send(b.address!, String(Number(frame) + 1));
    });
    a.send(b.address!, '0');
    await broker.idle();
    assert.equal(log.length, 51);
    assert.equal(log.at(-1)?.frame, '50');
    assert.equal(broker.stats.inFlight, 0);
    await closeAll(transports);
  });

  it('rejects bad fault options and non-string frames', async () => {
    assert.throws(() => new MemoryBroker({ faults: { dropRate: 1.5 } }), RangeError);
    assert.throws(() => new MemoryBroker({ faults: { delayMs: [10, 5] } }), RangeError);
    assert.throws(() => new MemoryBroker({ faults: { delayMs: [-1, 5] } }), RangeError);
    assert.throws(() => new MemoryBroker({ timeScale: -1 }), RangeError);
    const broker = new MemoryBroker({ seed: 3, faults: { dropRate: 0.5, delayMs: [1, 2] } });
    assert.deepEqual(broker.faults, { dropRate: 0.5, delayMs: [1, 2] });
    broker.setFaults({});
    assert.deepEqual(broker.faults, {});
    assert.equal(broker.seed, 3);
    const t = new MemoryTransport({ broker });
    await t.connect({ cluster: 'c', node: 'a' });
    assert.throws(() => t.broadcast(42 as unknown as string), TypeError);
    await t.close();
  });
});

describe('MemoryBroker faults', () => {
  /**
   * A fixed workload: 4 nodes interleave broadcasts and direct sends, and each
   * node answers some frames (after an await), so the order also depends on
   * what the fault schedule delivered first. Returns the delivery order.
   */
  async function workload(seed: number, faults: FaultOptions, timeScale: number): Promise<{ order: string[]; stats: unknown }> {
    const broker = new MemoryBroker({ seed, faults, timeScale });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b', 'c', 'd']);
    for (const t of transports) {
      t.on('frame', async (frame) => {
        const [kind, from, hops] = frame.split('|') as [string, string, string];
        if (kind !== 'ping' || Number(hops) >= 3) return;
        await Promise.resolve();
        t.send(from, `ping|${t.address!}|${Number(hops) + 1}`);
      });
    }
    for (let i = 0; i < 300; i++) {
      const t = transports[(i * 7) % 4]!;
      if (i % 5 === 0) t.broadcast(`b|${i}`);
      else if (i % 5 === 1) t.send(transports[(i * 3) % 4]!.address!, `ping|${t.address!}|0`);
      else t.send(transports[(i * 3 + 1) % 4]!.address!, `d|${i}`);
      if (i === 150) broker.setFaults({ ...faults, reorderRate: 0 });
    }
    await broker.idle();
    await closeAll(transports);
    return { order: log.map((r) => `${r.to}<-${r.frame}`), stats: broker.stats };
  }

  const faults: FaultOptions = { delayMs: [0, 20], dropRate: 0.1, duplicateRate: 0.1, reorderRate: 0.2 };

  it('the same seed gives the same delivery order under delay, drop, duplicate and reorder', async () => {
    const first = await workload(42, faults, 0);
    const second = await workload(42, faults, 0);
    assert.deepEqual(second.order, first.order);
    assert.deepEqual(second.stats, first.stats);
    const s = first.stats as { dropped: number; duplicated: number; reordered: number };
    assert.ok(s.dropped > 0 && s.duplicated > 0 && s.reordered > 0, JSON.stringify(s));
    const other = await workload(43, faults, 0);
    assert.notDeepEqual(other.order, first.order);
  });

  it('real-time pacing changes when frames arrive, never their order', async () => {
    const paced = { ...faults, delayMs: [0, 4] as const };
    const fast = await workload(7, paced, 0);
    const real = await workload(7, paced, 1);
    const slow = await workload(7, paced, 2);
    assert.deepEqual(real.order, fast.order);
    assert.deepEqual(slow.order, fast.order);
  });

  it('delays are paced in real time at timeScale 1', async () => {
    const broker = new MemoryBroker({ seed: 5, faults: { delayMs: [30, 30] } });
    const { transports } = await connectAll(broker, 'c', ['a']);
    const a = transports[0]!;
    const started = performance.now();
    const got = next(a, 'frame');
    a.broadcast('slow');
    await got;
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 28, `arrived after ${elapsed.toFixed(1)} ms`);
    assert.equal(broker.virtualTime, 30);
    await closeAll(transports);
  });

  it('latency alone never reorders a pair, even when switched off mid-flight', async () => {
    const broker = new MemoryBroker({ seed: 11, faults: { delayMs: [0, 50] }, timeScale: 0 });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b', 'c']);
    const [a, b, c] = transports as [MemoryTransport, MemoryTransport, MemoryTransport];
    for (let i = 0; i < 1000; i++) {
      if (i === 500) broker.setFaults({});
      a.send(c.address!, `a|${i}`);
      b.send(c.address!, `b|${i}`);
    }
    await broker.idle();
    const got = framesOf(log, c.address!);
    assert.deepEqual(
      got.filter((f) => f.startsWith('a|')),
      Array.from({ length: 1000 }, (_, i) => `a|${i}`),
    );
    assert.deepEqual(
      got.filter((f) => f.startsWith('b|')),
      Array.from({ length: 1000 }, (_, i) => `b|${i}`),
    );
    assert.notDeepEqual(got.slice(0, 10), ['a|0', 'b|0', 'a|1', 'b|1', 'a|2', 'b|2', 'a|3', 'b|3', 'a|4', 'b|4']);
    await closeAll(transports);
  });

  it('drop rate 1 loses everything, and faults off restores plain delivery', async () => {
    const broker = new MemoryBroker({ seed: 2, faults: { dropRate: 1 } });
    const { transports, log } = await connectAll(broker, 'c', ['a', 'b']);
    transports[0]!.broadcast('gone');
    await broker.idle();
    assert.deepEqual(log, []);
    assert.equal(broker.stats.dropped, 2);
    broker.setFaults({});
    transports[0]!.broadcast('here');
    await broker.idle();
    assert.equal(log.length, 2);
    await closeAll(transports);
  });
});

describe('MemoryBroker properties', () => {
  type Op = { kind: 'send'; from: number; to: number } | { kind: 'broadcast'; from: number } | { kind: 'yield' };
  const opArb = (nodes: number): fc.Arbitrary<Op> =>
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), from: fc.nat(nodes - 1), to: fc.nat(nodes - 1) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('broadcast' as const), from: fc.nat(nodes - 1) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'yield' as const }) },
    );
  const scenario = fc.integer({ min: 2, max: 5 }).chain((nodes) =>
    fc.record({ nodes: fc.constant(nodes), ops: fc.array(opArb(nodes), { maxLength: 150 }) }),
  );

  /** Runs `ops`; returns, per (sender, receiver) pair, the frames sent and the frames received, in order. */
  async function run(
    broker: MemoryBroker,
    nodes: number,
    ops: readonly Op[],
  ): Promise<{ sent: Map<string, number[]>; received: Map<string, number[]>; order: string[] }> {
    const { transports, log } = await connectAll(
      broker,
      'p',
      Array.from({ length: nodes }, (_, i) => `n${i}`),
    );
    const indexOf = new Map(transports.map((t, i) => [t.address!, i]));
    const sent = new Map<string, number[]>();
    const push = (map: Map<string, number[]>, key: string, n: number): void => {
      const list = map.get(key) ?? [];
      list.push(n);
      map.set(key, list);
    };
    let counter = 0;
    for (const op of ops) {
      if (op.kind === 'yield') {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const n = counter++;
      const from = transports[op.from]!;
      if (op.kind === 'broadcast') {
        from.broadcast(`${op.from}|${n}`);
        for (let to = 0; to < nodes; to++) push(sent, `${op.from}->${to}`, n);
      } else {
        from.send(transports[op.to]!.address!, `${op.from}|${n}`);
        push(sent, `${op.from}->${op.to}`, n);
      }
    }
    await broker.idle();
    const received = new Map<string, number[]>();
    for (const { to, frame } of log) {
      const [from, n] = frame.split('|') as [string, string];
      push(received, `${from}->${String(indexOf.get(to))}`, Number(n));
    }
    await closeAll(transports);
    return { sent, received, order: log.map((r) => `${r.to}<-${r.frame}`) };
  }

  it('without faults, every frame arrives exactly once and in order per pair, for any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ nodes, ops }) => {
        const { sent, received } = await run(new MemoryBroker({ seed: 0 }), nodes, ops);
        assert.deepEqual(received, sent);
      }),
      { numRuns: 100, ...fcParams },
    );
  });

  it('with latency and loss, what arrives is an in-order subsequence per pair', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, fc.integer(), async ({ nodes, ops }, seed) => {
        const broker = new MemoryBroker({ seed, faults: { delayMs: [0, 30], dropRate: 0.3 }, timeScale: 0 });
        const { sent, received } = await run(broker, nodes, ops);
        for (const [pair, got] of received) {
          const all = sent.get(pair) ?? [];
          let i = 0;
          for (const n of got) {
            while (i < all.length && all[i] !== n) i++;
            assert.ok(i < all.length, `pair ${pair}: ${got.join(',')} is not an in-order subsequence of ${all.join(',')}`);
            i++;
          }
        }
      }),
      { numRuns: 100, ...fcParams },
    );
  });

  it('any seed replays identically under every fault', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, fc.integer(), async ({ nodes, ops }, seed) => {
        const f: FaultOptions = { delayMs: [0, 10], dropRate: 0.1, duplicateRate: 0.2, reorderRate: 0.3 };
        const once = async (): Promise<string> => {
          const broker = new MemoryBroker({ seed, faults: f, timeScale: 0 });
          const { order } = await run(broker, nodes, ops);
          return JSON.stringify(order);
        };
        assert.equal(await once(), await once());
      }),
      { numRuns: 50, ...fcParams },
    );
  });
});
