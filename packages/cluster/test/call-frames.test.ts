/**
 * A call to a process on another node is one frame each way: the request
 * carries the reply port's monitor (`call`), and a server that replies itself
 * drops that monitor with the reply (`msg` with `d`), so the caller sends no
 * demonitor. What must still hold: no monitor is ever left on the server (a
 * deferred reply from another process or node, a timeout with a late reply,
 * a request that cannot cross), the server's death fails the call with its
 * reason at once, and a dead pid is `noproc`.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { CallError, GenServer, Pid as PidClass, noreply, reply, type From, type GenServer as Behaviour, type Node, type Pid } from '@roster/core';
import { WireEncodeError } from '../src/index.js';
import { deferred, type Deferred } from '../../core/test/helpers.js';
import { EditingTransport, TestNet, within } from './helpers.js';

/** What the servers below reach from the running test. */
const hooks: { gate: Deferred<void>; forward: Pid | undefined } = { gate: deferred(), forward: undefined };

/** Answers `echo`, crashes on `crash`, waits for the gate on `slow`, hands `defer` to `hooks.forward`. */
const Server: Behaviour<null, null> = {
  init: () => null,
  async handleCall(request, from, state, self) {
    const [verb, value] = request as [string, unknown];
    if (verb === 'crash') throw new Error('asked to crash');
    if (verb === 'slow') await hooks.gate.promise;
    if (verb === 'defer') {
      self.send(hooks.forward!, { from, value });
      return noreply(state);
    }
    return reply(value, state);
  },
};

/** Replies, on behalf of the server, to every call handed to it. */
function forwarder(node: Node): Pid {
  return node.spawn(async (self) => {
    for (;;) {
      const { from, value } = (await self.receive()) as { from: From; value: unknown };
      GenServer.reply(self, from, value);
    }
  });
}

/** Frames `node` has sent so far. */
const sent = (net: TestNet, node: Node): number => net.cluster(node).stats.sent;
/** Monitors held on `pid` (its node's view). */
const monitoredBy = (node: Node, pid: Pid): number | undefined => node.processInfo(pid)?.monitoredBy;

describe('remote calls: one frame each way', () => {
  let net: TestNet;
  let a: Node;
  let b: Node;
  let c: Node;
  let server: Pid;

  beforeEach(async () => {
    hooks.gate = deferred();
    // No heartbeat during a test: every frame counted is the calls'.
    net = await new TestNet({ heartbeatInterval: 60_000, failureTimeout: 120_000 }).open();
    [a, b, c] = (await net.startAll('a', 'b', 'c')) as [Node, Node, Node];
    server = await GenServer.start(b, Server, null);
    await within(net.broker.idle(), 'idle', 3000);
  });

  afterEach(async () => {
    await net.close();
  });

  test('50 sequential calls: 50 frames from the caller, 50 from the server, no monitor left', async () => {
    const [fromA, fromB] = [sent(net, a), sent(net, b)];
    for (let n = 0; n < 50; n++) assert.equal(await a.call(server, ['echo', n]), n);
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(sent(net, a) - fromA, 50, 'the caller sent a monitor or demonitor frame besides its requests');
    assert.equal(sent(net, b) - fromB, 50);
    assert.equal(monitoredBy(b, server), 0, 'a monitor of a finished call stayed on the server');
  });

  test('concurrent calls from two nodes: every reply reaches its caller, no monitor left', async () => {
    const replies = await Promise.all([
      ...Array.from({ length: 100 }, (_, n) => a.call(server, ['echo', `a${n}`])),
      ...Array.from({ length: 100 }, (_, n) => c.call(server, ['echo', `c${n}`])),
    ]);
    assert.deepEqual(replies, [...Array.from({ length: 100 }, (_, n) => `a${n}`), ...Array.from({ length: 100 }, (_, n) => `c${n}`)]);
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(monitoredBy(b, server), 0);
  });

  test('a reply from another process, on the server node or a third node, still frees the monitor', async () => {
    for (const host of [b, c]) {
      hooks.forward = forwarder(host);
      assert.equal(await a.call(server, ['defer', host.name]), host.name);
      await within(net.broker.idle(), 'idle', 3000);
      assert.equal(monitoredBy(b, server), 0, `deferred reply from ${host.name}: the caller must demonitor`);
    }
  });

  test('a call that timed out and is answered late leaves no monitor on the server', async () => {
    await assert.rejects(a.call(server, ['slow', 1], { timeout: 50 }), (error: unknown) => error instanceof CallError && error.reason === 'timeout');
    hooks.gate.resolve();
    assert.equal(await a.call(server, ['echo', 2]), 2, 'the server still answers after its late reply');
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(monitoredBy(b, server), 0);
  });

  test("the server's crash fails the call with its reason, at once", async () => {
    const started = performance.now();
    await assert.rejects(
      a.call(server, ['crash', 0], { timeout: 10_000 }),
      (error: unknown) => error instanceof CallError && error.reason instanceof Error && error.reason.message === 'asked to crash',
    );
    assert.ok(performance.now() - started < 2000, 'the call waited for its timeout instead of the DOWN');
  });

  test('a dead pid on a live node is noproc; a pid of an unknown node is noconnection', async () => {
    await GenServer.stop(a, server);
    await assert.rejects(a.call(server, ['echo', 1]), (error: unknown) => error instanceof CallError && error.reason === 'noproc');
    const stranger = new PidClass('nowhere', 'x', 1);
    await assert.rejects(a.call(stranger, ['echo', 1]), (error: unknown) => error instanceof CallError && error.reason === 'noconnection');
  });

  test('a request that cannot cross rejects with WireEncodeError, sends nothing and places no monitor', async () => {
    const before = sent(net, a);
    await assert.rejects(a.call(server, ['echo', () => 1]), WireEncodeError);
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(sent(net, a), before);
    assert.equal(monitoredBy(b, server), 0);
  });

  test('a reply that cannot cross crashes the server with WireEncodeError, and the caller learns it at once', async () => {
    const Unanswerable: Behaviour<null, null> = { init: () => null, handleCall: (_request, _from, state) => reply(() => 1, state) };
    const target = await GenServer.start(b, Unanswerable, null);
    const started = performance.now();
    await assert.rejects(a.call(target, 'any', { timeout: 10_000 }), (error: unknown) => error instanceof CallError && error.reason instanceof Error && error.reason.name === 'WireEncodeError');
    assert.ok(performance.now() - started < 2000, 'the caller waited for its timeout');
    assert.equal(b.isAlive(target), false);
  });
});

/**
 * The carrier of a node as an older roster's would be on the wire: its
 * membership frames say no features (no `f`), and it drops what it cannot
 * read: `call` frames and plain channel bodies (`j`), as an older decoder
 * drops an unknown kind or a `ch` without `m`.
 */
function olderRosterTransport(net: TestNet): EditingTransport {
  const carrier = new EditingTransport({ broker: net.broker });
  carrier.edit = (envelope) => {
    if (envelope['k'] === 'hello' || envelope['k'] === 'hb') delete envelope.b['f'];
  };
  carrier.refuse = (envelope) => envelope['k'] === 'call' || (envelope['k'] === 'ch' && 'j' in envelope.b);
  return carrier;
}

describe('remote calls with a node of an older roster, which reads no call frame', () => {
  let net: TestNet;
  let a: Node;
  let older: Node;
  let c: Node;
  let carrier: EditingTransport;

  beforeEach(async () => {
    net = await new TestNet({ heartbeatInterval: 60_000, failureTimeout: 120_000 }).open();
    a = await net.start('a');
    carrier = olderRosterTransport(net);
    older = await net.start('older', { transport: carrier });
    c = await net.start('c');
    await within(net.broker.idle(), 'membership', 3000);
  });

  afterEach(async () => {
    await net.close();
  });

  test('a call from a current node to a server on the older one is answered, and leaves no monitor', async () => {
    const server = await GenServer.start(older, Server, null);
    for (let n = 0; n < 20; n++) assert.equal(await a.call(server, ['echo', n], { timeout: 2000 }), n);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, n) => c.call(server, ['echo', `c${n}`], { timeout: 2000 })));
    assert.deepEqual(replies, Array.from({ length: 50 }, (_, n) => `c${n}`));
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(carrier.refused, 0, 'the older node was sent a frame it cannot read');
    assert.equal(monitoredBy(older, server), 0, 'a monitor of a finished call stayed on the server');
  });

  test("the older server's death and a dead pid there still end a call at once", async () => {
    const server = await GenServer.start(older, Server, null);
    const started = performance.now();
    await assert.rejects(
      a.call(server, ['crash', 0], { timeout: 10_000 }),
      (error: unknown) => error instanceof CallError && error.reason instanceof Error && error.reason.message === 'asked to crash',
    );
    await assert.rejects(a.call(server, ['echo', 1], { timeout: 10_000 }), (error: unknown) => error instanceof CallError && error.reason === 'noproc');
    assert.ok(performance.now() - started < 2000, 'a call waited for its timeout instead of the DOWN');
    assert.equal(carrier.refused, 0);
  });

  test('between two current nodes a call is still one frame each way', async () => {
    const server = await GenServer.start(c, Server, null);
    await within(net.broker.idle(), 'idle', 3000);
    const [fromA, fromC] = [sent(net, a), sent(net, c)];
    for (let n = 0; n < 20; n++) assert.equal(await a.call(server, ['echo', n]), n);
    await within(net.broker.idle(), 'idle', 3000);
    assert.equal(sent(net, a) - fromA, 20);
    assert.equal(sent(net, c) - fromC, 20);
  });

  test('a plain channel message to the older node arrives, tagged, as JSON.parse would give it', async () => {
    const got: unknown[] = [];
    const arrived = deferred<void>();
    net.cluster(older).channel('plain-test', (_from, message) => {
      got.push(message);
      if (got.length === 2) arrived.resolve();
    });
    const message = { $pid: ['x', 'y', 1], list: [1, 'two', null, { nested: true }], gone: undefined };
    assert.equal(net.cluster(a).channel('plain-test', () => {}).sendPlain('older', message), true);
    assert.equal(net.cluster(c).channel('plain-test', () => {}).sendPlain('older', [1, 2, 3]), true);
    await within(arrived.promise, 'both plain messages', 3000);
    assert.deepEqual(got, [JSON.parse(JSON.stringify(message)), [1, 2, 3]]);
    assert.equal(carrier.refused, 0, 'a plain body went to a node that cannot read it');
  });
});
