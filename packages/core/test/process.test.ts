import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { GenServer, Node, TIMEOUT, type Pid } from '@roster/core';
import { deferred, monitorFromProbe, probe, within } from './helpers.js';

describe('processes', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'processes' });
  });
  after(async () => {
    await node.stop();
  });

  test('spawn + selective receive: unmatched messages stay in the mailbox, in order', async () => {
    const result = deferred<unknown[]>();
    const gotGo = deferred();
    const pid = node.spawn(async (self) => {
      const seen: unknown[] = [];
      await self.receive((m) => m === 'go');
      gotGo.resolve();
      // Already in the mailbox, behind non-matching ones.
      seen.push(await self.receive((m) => m === 3));
      // Not there yet: the receive waits while others arrive.
      seen.push(await self.receive((m) => m === 'late'));
      seen.push('|');
      for (let i = 0; i < 4; i++) seen.push(await self.receive());
      result.resolve(seen);
    });
    for (const m of [1, 2, 3, 'go', 4]) node.send(pid, m);
    await within(gotGo.promise, 'the process to take "go"');
    node.send(pid, 5);
    node.send(pid, 'late');
    assert.deepEqual(await within(result.promise, 'the process to finish'), [3, 'late', '|', 1, 2, 4, 5]);
  });

  test('receive with a timeout resolves TIMEOUT, and a later message is not lost', async () => {
    const result = deferred<unknown[]>();
    const timedOut = deferred();
    const pid = node.spawn(async (self) => {
      const started = performance.now();
      const first = await self.receive((m) => m === 'never', 30);
      const waited = performance.now() - started;
      timedOut.resolve();
      const second = await self.receive(undefined, 2000);
      result.resolve([first, waited >= 25, second]);
    });
    node.send(pid, 'other');
    await within(timedOut.promise, 'the receive to time out');
    const [first, waitedLongEnough, second] = await within(result.promise, 'the second receive');
    assert.equal(first, TIMEOUT);
    assert.ok(waitedLongEnough, 'the timeout did not fire early');
    assert.equal(second, 'other', 'the unmatched message stayed in the mailbox');
  });

  test('receive(match, 0) polls: TIMEOUT at once when nothing matches, the message when one does', async () => {
    const result = deferred<unknown[]>();
    const polledEmpty = deferred();
    const pid = node.spawn(async (self) => {
      const out: unknown[] = [];
      out.push(await self.receive(undefined, 0)); // empty mailbox
      polledEmpty.resolve();
      await self.receive((m) => m === 'ready');
      out.push(await self.receive((m) => m === 'absent', 0)); // non-matching present
      out.push(await self.receive((m) => typeof m === 'number', 0));
      out.push(await self.receive(undefined, 0));
      out.push(await self.receive(undefined, 0));
      result.resolve(out);
    });
    await within(polledEmpty.promise, 'the first poll');
    node.send(pid, 'x');
    node.send(pid, 7);
    node.send(pid, 'ready');
    assert.deepEqual(await within(result.promise, 'the polls'), [TIMEOUT, TIMEOUT, 7, 'x', TIMEOUT]);
  });

  test('messages from one sender arrive in the order sent (FIFO per sender)', async () => {
    const N = 2000;
    const senders = 3;
    const done = deferred<Map<string, number[]>>();
    const receiver = node.spawn(async (self) => {
      const bySender = new Map<string, number[]>();
      for (let i = 0; i < N * (senders + 1); i++) {
        const m = (await self.receive()) as { from: string; seq: number };
        let list = bySender.get(m.from);
        if (list === undefined) bySender.set(m.from, (list = []));
        list.push(m.seq);
      }
      done.resolve(bySender);
    });
    for (let s = 0; s < senders; s++) {
      node.spawn(async (self) => {
        for (let seq = 0; seq < N; seq++) {
          self.send(receiver, { from: self.pid.key, seq });
          // Interleave with the other senders.
          if (seq % 97 === 0) await Promise.resolve();
        }
      });
    }
    for (let seq = 0; seq < N; seq++) node.send(receiver, { from: 'root', seq });
    const bySender = await within(done.promise, 'all messages');
    assert.equal(bySender.size, senders + 1);
    const expected = Array.from({ length: N }, (_, i) => i);
    for (const [from, seqs] of bySender) assert.deepEqual(seqs, expected, `messages from ${from} out of order`);
  });

  test('sendAfter delivers after its delay, and its canceller stops it', async () => {
    const p = await probe(node);
    const started = performance.now();
    const cancel = await p.run((self) => {
      self.sendAfter(self.pid, 'late', 30);
      return self.sendAfter(self.pid, 'cancelled', 10);
    });
    cancel();
    assert.equal(await p.next(), 'late');
    assert.ok(performance.now() - started >= 25, 'not before its delay');
    // Two round trips later the cancelled one has not come either.
    await p.run(() => undefined);
    assert.deepEqual(p.received, ['late']);
    p.stop();
  });

  test('a thrown error is a crash whose reason is that very Error', async () => {
    const error = new Error('sync throw');
    const started = deferred();
    const pid = node.spawn(async (self) => {
      started.resolve();
      await self.receive((m) => m === 'go');
      throw error;
    });
    await started.promise;
    const { down } = await monitorFromProbe(node, pid);
    node.send(pid, 'go');
    const message = await down;
    assert.equal(message.reason, error);
    assert.ok(message.pid.equals(pid));
    assert.ok(!node.isAlive(pid));

    // A body that throws synchronously, before returning any promise: monitored
    // from the spawning process before the body gets to run.
    const syncError = new Error('thrown before any await');
    const reason = deferred<unknown>();
    node.spawn(async (self) => {
      const child = self.spawn(() => {
        throw syncError;
      });
      const ref = self.monitor(child);
      const down = await self.receive((m) => (m as { ref?: unknown }).ref === ref || ref.equals((m as { ref?: unknown }).ref), 2000);
      reason.resolve(down === TIMEOUT ? TIMEOUT : (down as { reason: unknown }).reason);
    });
    assert.equal(await within(reason.promise, 'the DOWN of the sync crasher'), syncError);
  });

  test('a rejected promise is a crash whose reason is the rejection Error', async () => {
    const error = new Error('rejected');
    const gate = deferred();
    const pid = node.spawn(async () => {
      await gate.promise;
      return Promise.reject(error);
    });
    const { down } = await monitorFromProbe(node, pid);
    gate.resolve();
    assert.equal((await down).reason, error);
  });

  test('a crash is logged exactly once (plain process and GenServer)', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    // ROSTER_LOG_LEVEL overrides the logger's level; unset it while the node is made.
    const saved = process.env['ROSTER_LOG_LEVEL'];
    delete process.env['ROSTER_LOG_LEVEL'];
    let logged: Node;
    try {
      logged = await Node.start({ name: 'processes-logged', logger });
    } finally {
      if (saved !== undefined) process.env['ROSTER_LOG_LEVEL'] = saved;
    }
    try {
      // A plain process crashing, with a linked process that dies of it (that death is not a second crash).
      const gate = deferred();
      const linkedReady = deferred<Pid>();
      const crasher = logged.spawn(async (self) => {
        linkedReady.resolve(self.spawnLink((inner) => inner.receive()));
        await gate.promise;
        throw new Error('kaboom-plain');
      });
      const linked = await within(linkedReady.promise, 'the linked process');
      const { down } = await monitorFromProbe(logged, crasher);
      const { down: linkedDown } = await monitorFromProbe(logged, linked);
      gate.resolve();
      assert.equal(((await down).reason as Error).message, 'kaboom-plain');
      assert.equal(((await linkedDown).reason as Error).message, 'kaboom-plain');

      // A GenServer whose callback crashes.
      const server = await GenServer.start(logged, {
        init: () => null,
        handleCast: () => {
          throw new Error('kaboom-server');
        },
      }, undefined);
      const { down: serverDown } = await monitorFromProbe(logged, server);
      logged.cast(server, 'boom');
      assert.equal(((await serverDown).reason as Error).message, 'kaboom-server');

      const count = (needle: string): number => lines.filter((line) => line.includes(needle)).length;
      assert.equal(count('kaboom-plain'), 1, `plain crash lines:\n${lines.join('')}`);
      assert.equal(count('kaboom-server'), 1, `server crash lines:\n${lines.join('')}`);
      for (const line of lines) assert.equal(JSON.parse(line).node, 'processes-logged', 'the node child logger is used');
    } finally {
      await logged.stop();
    }
  });
});
