import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GenServer, Node, noreply, reply, type Pid } from '@roster/core';
import { deferred, probe, within } from './helpers.js';

const FLOOD = 200_000;

describe('scheduler', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'scheduler' });
  });
  after(async () => {
    await node.stop();
  });

  /** Floods `receiver` from another process and reports how far it got when a timer and an immediate fired. */
  async function flood(receiver: Pid, handled: () => number, done: Promise<void>): Promise<{ atTimeout: number; atImmediate: number }> {
    let atTimeout = -1;
    let atImmediate = -1;
    setTimeout(() => (atTimeout = handled()), 0);
    setImmediate(() => (atImmediate = handled()));
    node.spawn((self) => {
      for (let i = 0; i < FLOOD; i++) self.send(receiver, i);
    });
    await within(done, 'the flood to be handled', 10_000);
    return { atTimeout, atImmediate };
  }

  test('under a flood, a GenServer yields to the event loop: a timer set at the start fires before the flood is handled', async () => {
    let count = 0;
    const done = deferred();
    const receiver = await GenServer.start(
      node,
      {
        init: () => null,
        handleInfo: (_message: unknown, state) => {
          if (++count === FLOOD) done.resolve();
          return noreply(state);
        },
      },
      undefined,
    );
    const { atTimeout, atImmediate } = await flood(receiver, () => count, done.promise);
    assert.ok(atImmediate >= 0 && atImmediate < FLOOD, `setImmediate fired after ${atImmediate} of ${FLOOD} messages`);
    assert.ok(atTimeout >= 0 && atTimeout < FLOOD, `setTimeout(0) fired after ${atTimeout} of ${FLOOD} messages`);
    await GenServer.stop(node, receiver);
  });

  test('under a flood, a receive loop yields to the event loop: a timer set at the start fires before the flood is handled', async () => {
    let count = 0;
    const done = deferred();
    const receiver = node.spawn(async (self) => {
      for (; count < FLOOD; count++) await self.receive();
      done.resolve();
    });
    const { atTimeout, atImmediate } = await flood(receiver, () => count, done.promise);
    assert.ok(atImmediate >= 0 && atImmediate < FLOOD, `setImmediate fired after ${atImmediate} of ${FLOOD} messages`);
    assert.ok(atTimeout >= 0 && atTimeout < FLOOD, `setTimeout(0) fired after ${atTimeout} of ${FLOOD} messages`);
  });

  test('a process with a slow async handler does not block delivery to another process', async () => {
    const gate = deferred();
    const entered = deferred();
    let slowHandled = 0;
    const slow = await GenServer.start(
      node,
      {
        init: () => null,
        async handleInfo(_message: unknown, state) {
          entered.resolve();
          await gate.promise;
          slowHandled++;
          return noreply(state);
        },
      },
      undefined,
    );
    const fast = await GenServer.start(node, { init: () => 0, handleCall: (request: unknown, _f, n: number) => reply(request, n + 1) }, undefined);
    for (let i = 0; i < 1000; i++) node.send(slow, i);
    await within(entered.promise, 'the slow handler to start');
    // While the slow one is stuck in its first message, others are served at once.
    for (let i = 0; i < 100; i++) assert.equal(await within(node.call(fast, i), 'a call to the fast server'), i);
    const receiver = await probe(node);
    node.send(receiver.pid, 'hello');
    assert.equal(await receiver.next(), 'hello');
    assert.equal(slowHandled, 0, 'the slow server is still in its first message');
    gate.resolve();
    // Its backlog is then handled in order.
    await within(
      (async () => {
        while (slowHandled < 1000) await node.call(fast, 'tick');
      })(),
      'the slow backlog',
    );
    receiver.stop();
    await GenServer.stop(node, slow);
    await GenServer.stop(node, fast);
  });

  test("a busy process gets at most its budget of messages before another ready process runs", async () => {
    const budgetNode = await Node.start({ name: 'scheduler-budget', scheduler: { budget: 10 } });
    try {
      let busyHandled = 0;
      const busy = await GenServer.start(
        budgetNode,
        {
          init: () => null,
          handleInfo: (_message: unknown, state) => {
            busyHandled++;
            return noreply(state);
          },
        },
        undefined,
      );
      let seenByOther = -1;
      const other = await GenServer.start(
        budgetNode,
        {
          init: () => null,
          handleCall: (_request: unknown, _from, state) => {
            seenByOther = busyHandled;
            return reply('ok', state);
          },
        },
        undefined,
      );
      for (let i = 0; i < 500; i++) budgetNode.send(busy, i);
      const answer = budgetNode.call(other, 'now');
      assert.equal(await within(answer, 'the other call'), 'ok');
      assert.ok(seenByOther >= 0 && seenByOther <= 10, `the other process waited for ${seenByOther} messages of the busy one (budget 10)`);
    } finally {
      await budgetNode.stop();
    }
  });
});
