/**
 * GenServer.multiCall and GenServer.abcast across nodes of one cluster in
 * this process (MemoryTransport on a fresh MemoryBroker per test), as
 * gen_server_SUITE's multicall and abcast cases: a server registered under a
 * node-local name on several nodes, called or cast to from one of them.
 * Bad nodes are asserted with `timeout: Infinity` (or far past the test's
 * bound) wherever the point is that they come back without waiting for a
 * timeout: a test that hung would fail on its own bound.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { GenServer, Node, noreply, reply, type GenServer as Behaviour, type Pid } from '@roster/core';
import { WireEncodeError } from '@roster/cluster';
import { startCluster, type ClusterHarness } from '@roster/testkit';

const NAME = 'svc';
const BOUND = { timeout: 10_000 };

/** What the test server saw: calls by node, so a test can wait for a call to arrive. */
interface Seen {
  readonly calls: string[];
  onCall?: (node: string, request: unknown) => void;
}

/**
 * Replies `{ node, request, from }`; `'hold'` (or `{ holdOn: node }` on that
 * node) is never answered; `'later'` is
 * answered with GenServer.reply from a timer; `'crash'` makes the server
 * exit before replying; a cast `{ forward: pid }` sends `{ node, request }` to `pid`.
 */
function server(seen: Seen): Behaviour<null, undefined> {
  return {
    init: () => null,
    handleCall(request, from, state, self) {
      seen.calls.push(self.pid.node);
      seen.onCall?.(self.pid.node, request);
      if (request === 'hold' || (request as { holdOn?: unknown } | null)?.holdOn === self.pid.node) return noreply(state);
      if (request === 'crash') throw new Error('crashed before replying');
      const answer = { node: self.pid.node, request, from: from.pid };
      if (request === 'later') {
        setTimeout(() => GenServer.reply(self, from, answer), 10);
        return noreply(state);
      }
      return reply(answer, state);
    },
    handleCast(message, state, self) {
      const forward = (message as { forward?: Pid }).forward;
      if (forward !== undefined) self.send(forward, { node: self.pid.node, request: message });
      return noreply(state);
    },
  };
}

let harness: ClusterHarness | undefined;

afterEach(async () => {
  await harness?.stopAll();
  harness = undefined;
});

async function cluster(names: string[], serving: string[] = names): Promise<{ h: ClusterHarness; seen: Seen }> {
  const h = await startCluster({ nodes: names, transport: 'memory', heartbeatInterval: 50, failureTimeout: 300 });
  harness = h;
  await h.waitForMembership({ timeout: 5000 });
  const seen: Seen = { calls: [] };
  for (const name of serving) await GenServer.start(h.node(name), server(seen), undefined, { name: NAME });
  return { h, seen };
}

describe('GenServer.multiCall (gen_server_SUITE multicall)', () => {
  it('multicall: every listed node answers, this node included, in the order listed', BOUND, async () => {
    const { h } = await cluster(['a', 'b', 'c']);
    const a = h.node('a');
    const result = await GenServer.multiCall(a, ['c', 'a', 'b'], NAME, 'hello');
    assert.deepEqual(result.badNodes, []);
    assert.deepEqual(
      result.replies.map(([node, answer]) => [node, (answer as { node: string }).node, (answer as { request: unknown }).request]),
      [
        ['c', 'c', 'hello'],
        ['a', 'a', 'hello'],
        ['b', 'b', 'hello'],
      ],
    );
  });

  it('multicall: a reply given later with GenServer.reply is the node\'s answer', BOUND, async () => {
    const { h } = await cluster(['a', 'b']);
    const { replies, badNodes } = await GenServer.multiCall(h.node('a'), ['a', 'b'], NAME, 'later', { timeout: Infinity });
    assert.deepEqual(badNodes, []);
    assert.deepEqual(replies.map(([node]) => node), ['a', 'b']);
  });

  it('multicall from a process: the servers see that process as the caller; each node is called once', BOUND, async () => {
    const { h, seen } = await cluster(['a', 'b']);
    const a = h.node('a');
    const result = await new Promise<unknown>((resolve, reject) => {
      a.spawn(async (self) => {
        const answer = await GenServer.multiCall(self, ['b', 'a', 'b'], NAME, 'who');
        resolve({ self: self.pid, answer });
      });
      setTimeout(() => reject(new Error('no answer')), 5000).unref();
    });
    const { self, answer } = result as { self: Pid; answer: Awaited<ReturnType<typeof GenServer.multiCall>> };
    assert.deepEqual(answer.replies.map(([node]) => node), ['b', 'a']);
    for (const [, value] of answer.replies) assert.ok((value as { from: Pid }).from.equals(self));
    assert.deepEqual(seen.calls.sort(), ['a', 'b']);
  });

  it('multicall_down: a node without a process under the name is bad at once, not at the timeout', BOUND, async () => {
    const { h } = await cluster(['a', 'b', 'c'], ['a', 'b']);
    const result = await GenServer.multiCall(h.node('a'), ['a', 'b', 'c'], NAME, 'hello', { timeout: Infinity });
    assert.deepEqual(result.replies.map(([node]) => node), ['a', 'b']);
    assert.deepEqual(result.badNodes, ['c']);
    // This node without the name too.
    const local = await GenServer.multiCall(h.node('c'), ['c', 'a'], NAME, 'hello', { timeout: Infinity });
    assert.deepEqual(local.badNodes, ['c']);
    assert.deepEqual(local.replies.map(([node]) => node), ['a']);
  });

  it('multicall: a node that is no member is bad at once; an unclustered node has only itself', BOUND, async () => {
    const { h } = await cluster(['a', 'b']);
    const result = await GenServer.multiCall(h.node('a'), ['nosuch', 'b', 'a'], NAME, 'hello', { timeout: Infinity });
    assert.deepEqual(result.badNodes, ['nosuch']);
    assert.deepEqual(result.replies.map(([node]) => node), ['b', 'a']);

    const solo = await Node.start({ name: 'solo' });
    try {
      await GenServer.start(solo, server({ calls: [] }), undefined, { name: NAME });
      const alone = await GenServer.multiCall(solo, ['solo', 'a'], NAME, 'hello', { timeout: Infinity });
      assert.deepEqual(alone.replies.map(([node]) => node), ['solo']);
      assert.deepEqual(alone.badNodes, ['a']);
      assert.deepEqual(await GenServer.multiCall(solo, [], NAME, 'hello'), { replies: [], badNodes: [] });
    } finally {
      await solo.stop();
    }
  });

  it('multicall: a node that crashes during the call is bad', BOUND, async () => {
    const { h, seen } = await cluster(['a', 'b']);
    // b's server has the call when b is lost; a's answers.
    seen.onCall = (node, request) => {
      if (node === 'b') h.broker!.crash('b');
    };
    // A timeout far past the test's bound (and a timer that keeps the event loop alive while a's failure detector notices).
    const result = await GenServer.multiCall(h.node('a'), ['a', 'b'], NAME, { holdOn: 'b' }, { timeout: 60_000 });
    assert.deepEqual(result.badNodes, ['b']);
    assert.deepEqual(result.replies.map(([node]) => node), ['a']);
  });

  it('multicall: a server that exits before replying makes its node bad (the port monitors it)', BOUND, async () => {
    const { h } = await cluster(['a', 'b']);
    const result = await GenServer.multiCall(h.node('a'), ['b'], NAME, 'crash', { timeout: Infinity });
    assert.deepEqual(result, { replies: [], badNodes: ['b'] });
  });

  it('multicall: a node whose server does not answer within the timeout is bad', BOUND, async () => {
    const { h } = await cluster(['a', 'b']);
    const held = GenServer.multiCall(h.node('a'), ['b'], NAME, 'hold', { timeout: 100 });
    const answered = GenServer.multiCall(h.node('a'), ['a', 'b'], NAME, 'hello', { timeout: 100 });
    assert.deepEqual(await held, { replies: [], badNodes: ['b'] });
    assert.deepEqual((await answered).badNodes, []);
  });

  it('multicall: a request that cannot cross the wire rejects with WireEncodeError naming it, and no node gets it', BOUND, async () => {
    const { h, seen } = await cluster(['a', 'b']);
    await assert.rejects(
      GenServer.multiCall(h.node('a'), ['a', 'b'], NAME, { fn: () => 1 }),
      (error: unknown) => error instanceof WireEncodeError && error.path === '$.request.fn' && error.message.includes('$.request.fn'),
    );
    // A later call overtakes nothing: the refused one reached no server.
    await GenServer.multiCall(h.node('a'), ['a', 'b'], NAME, 'hello');
    assert.deepEqual(seen.calls.sort(), ['a', 'b']);
  });

  it('multicall: bad arguments are a TypeError naming the argument', BOUND, async () => {
    const { h } = await cluster(['a']);
    const a = h.node('a');
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => GenServer.multiCall({} as Node, ['a'], NAME, 1), /caller must be a Node or a process/],
      [() => GenServer.multiCall(a, 'a' as unknown as string[], NAME, 1), /nodes must be an array/],
      [() => GenServer.multiCall(a, ['a', ''], NAME, 1), /nodes\[1\] must be a non-empty string/],
      [() => GenServer.multiCall(a, ['a'], 7 as unknown as string, 1), /name must be a non-empty string, got number/],
      [() => GenServer.multiCall(a, ['a'], NAME, 1, { timeout: -1 }), /timeout must be a number >= 0/],
    ];
    for (const [run, message] of cases) {
      await assert.rejects(run(), (error: unknown) => error instanceof TypeError && message.test(error.message) && error.message.startsWith('GenServer.multiCall:'));
    }
  });
});

describe('GenServer.abcast (gen_server_SUITE abcast)', () => {
  it('abcast: every listed node\'s server gets the cast; unknown nodes and names never fail it', BOUND, async () => {
    const { h } = await cluster(['a', 'b', 'c'], ['a', 'b', 'c']);
    const a = h.node('a');
    const got = new Promise<string[]>((resolve) => {
      a.spawn(async (self) => {
        const forward = self.pid;
        assert.equal(GenServer.abcast(a, ['a', 'b', 'c', 'nosuch'], NAME, { forward, hi: 1 }), 'abcast');
        assert.equal(GenServer.abcast(a, ['a', 'b'], 'no-such-name', { forward }), 'abcast');
        assert.equal(GenServer.abcast(a, ['a', 'b'], NAME, { forward, fn: () => 1 }), 'abcast', 'a value that cannot cross is dropped for b');
        const nodes: string[] = [];
        for (let count = 0; count < 4; count++) {
          const message = (await self.receive()) as { node: string; request: { hi?: number } };
          nodes.push(`${message.node}${message.request.hi === 1 ? '' : '!'}`);
        }
        resolve(nodes.sort());
      });
    });
    // Three casts that crossed, and a's own copy of the one that could not.
    assert.deepEqual(await got, ['a', 'a!', 'b', 'c']);
  });

  it('abcast from a process, and bad arguments throw a TypeError naming the argument', BOUND, async () => {
    const { h } = await cluster(['a', 'b'], ['b']);
    const a = h.node('a');
    const got = new Promise<unknown>((resolve) => {
      a.spawn(async (self) => {
        GenServer.abcast(self, ['b'], NAME, { forward: self.pid });
        resolve(await self.receive());
      });
    });
    assert.equal((await got as { node: string }).node, 'b');
    assert.throws(() => GenServer.abcast(a, [3] as unknown as string[], NAME, 1), /GenServer\.abcast: nodes\[0\] must be a non-empty string, got number/);
    assert.throws(() => GenServer.abcast(a, ['b'], '', 1), /GenServer\.abcast: name must be a non-empty string/);
    assert.throws(() => GenServer.abcast(null as unknown as Node, ['b'], NAME, 1), /GenServer\.abcast: caller must be a Node or a process, got null/);
  });
});
