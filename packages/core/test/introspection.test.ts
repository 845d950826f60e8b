/**
 * Per-node introspection: `node.stats` counters moving exactly as spawns,
 * exits, messages and calls happen; `node.processInfo`; `node.snapshot()`
 * (mailbox lengths of blocked processes, top-N ordering, supervision trees
 * with their restart history and parents, options checked by name); and
 * `LatencyHistogram`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CallError,
  DynamicSupervisor,
  GenServer,
  LatencyHistogram,
  Node,
  Supervisor,
  noreply,
  reply,
  type GenServer as Behaviour,
  type NodeStats,
  type Pid,
  type Process,
  type SupervisorInfo,
} from '@roster/core';
import { loopSamplerUsers } from '../src/internal/introspect.js';
import { deferred, monitorFromProbe, within } from './helpers.js';

/** Answers every call with its request; cast `crash` throws; cast `sleep` blocks the server until `wake` resolves. */
const wake = { promise: Promise.resolve() };
const Echo: Behaviour<number, void> = {
  init: () => 0,
  handleCall: (request, _from, state) => reply(request, state + 1),
  async handleCast(message, state) {
    if (message === 'crash') throw new Error('crashed on purpose');
    if (message === 'sleep') await wake.promise;
    return noreply(state);
  },
};

/** A process that receives nothing (its mailbox only grows) until told `go`. */
function blocked(node: Node): { pid: Pid; release: () => void } {
  const pid = node.spawn(async (self: Process) => {
    await self.receive((message) => message === 'go');
  });
  return { pid, release: () => node.send(pid, 'go') };
}

/** The difference of two stats readings, counters only. */
function delta(before: NodeStats, after: NodeStats): Record<string, number> {
  return {
    spawned: after.spawned - before.spawned,
    exited: after.exited - before.exited,
    messagesIn: after.messagesIn - before.messagesIn,
    messagesOut: after.messagesOut - before.messagesOut,
    calls: after.calls - before.calls,
    callsFailed: after.callsFailed - before.callsFailed,
    answered: after.callLatency.count - before.callLatency.count,
  };
}

/** Resolves once `pid` has exited. */
async function exited(node: Node, pid: Pid): Promise<void> {
  const { down } = await monitorFromProbe(node, pid);
  await down;
}

let node: Node;

before(async () => {
  node = await Node.start({ name: 'introspection' });
});

after(async () => {
  await node.stop();
});

describe('node.stats', () => {
  test('spawns, exits and messages are counted as they happen', async () => {
    const start = node.stats;
    const { pid, release } = blocked(node);
    for (let index = 0; index < 7; index++) node.send(pid, index);
    // Counted at delivery: synchronously, before the process has run.
    assert.deepEqual(delta(start, node.stats), { spawned: 1, exited: 0, messagesIn: 7, messagesOut: 7, calls: 0, callsFailed: 0, answered: 0 });
    const gone = exited(node, pid);
    const afterProbe = node.stats;
    release();
    await within(gone, 'the blocked process to exit');
    const end = node.stats;
    // The monitor probe is a process of its own: it was spawned, got the DOWN and ended.
    assert.equal(end.spawned - afterProbe.spawned, 0);
    assert.ok(end.exited - start.exited >= 1);
    assert.equal(end.messagesIn - afterProbe.messagesIn, 2, "'go' into the process, DOWN into the probe");
  });

  test('a message to a dead process is sent but not delivered', async () => {
    const pid = node.spawn(() => undefined);
    await within(exited(node, pid), 'the process to end');
    const start = node.stats;
    node.send(pid, 'lost');
    assert.deepEqual(delta(start, node.stats), { spawned: 0, exited: 0, messagesIn: 0, messagesOut: 1, calls: 0, callsFailed: 0, answered: 0 });
  });

  test('calls: each answered one has a latency, failures are counted and not timed', async () => {
    const server = await GenServer.start(node, Echo, undefined);
    const start = node.stats;
    for (let index = 0; index < 25; index++) assert.equal(await node.call(server, index), index);
    const answered = node.stats;
    const { answered: timed, ...counts } = delta(start, answered);
    assert.deepEqual(counts, { spawned: 0, exited: 0, messagesIn: 25, messagesOut: 50, calls: 25, callsFailed: 0 });
    // Local calls are sampled, one in 16: 25 in a row give one or two.
    assert.ok(timed === 1 || timed === 2, `${timed} timed`);
    const latency = answered.callLatency;
    assert.equal(latency.counts.reduce((sum, count) => sum + count, 0), latency.count);
    assert.ok(latency.sum > 0 && latency.sum - start.callLatency.sum < 5000);
    // 32 more in a row: exactly two sampled, whatever the phase.
    for (let index = 0; index < 32; index++) await node.call(server, index);
    assert.equal(node.stats.callLatency.count - answered.callLatency.count, 2);

    // noproc at once (a name nobody holds), noproc of a dead pid, a timeout.
    await assert.rejects(node.call('nobody-here', 1), CallError);
    const dead = node.spawn(() => undefined);
    await within(exited(node, dead), 'the process to end');
    await assert.rejects(node.call(dead, 1), (error: unknown) => error instanceof CallError && error.reason === 'noproc');
    const mute = blocked(node);
    await assert.rejects(node.call(mute.pid, 1, { timeout: 20 }), (error: unknown) => error instanceof CallError && error.reason === 'timeout');
    mute.release();
    const end = node.stats;
    assert.equal(end.calls - answered.calls, 32 + 3);
    assert.equal(end.callsFailed - answered.callsFailed, 3);
    assert.equal(end.callLatency.count, answered.callLatency.count + 2, 'failed calls are not in the latency histogram');
    await GenServer.stop(node, server);
  });

  test('a call from inside a process counts as the node\'s call', async () => {
    const server = await GenServer.start(node, Echo, undefined);
    const start = node.stats;
    const done = deferred<unknown>();
    node.spawn(async (self) => done.resolve(await self.call(server, 'hi')));
    assert.equal(await within(done.promise, 'the call'), 'hi');
    const end = node.stats;
    assert.equal(end.calls - start.calls, 1);
    await GenServer.stop(node, server);
  });

  test('stats is a fresh reading each time, not a live object', () => {
    const first = node.stats;
    node.spawn(() => undefined);
    assert.equal(node.stats.spawned, first.spawned + 1);
    assert.notEqual(node.stats.callLatency.counts, node.stats.callLatency.counts);
  });
});

describe('node.processInfo', () => {
  test('a live process: kind, name, mailbox, links, monitors, trapExit, startedAt', async () => {
    // startedAt is the clock as of the spawning event-loop turn: start in a fresh one.
    await new Promise((resolve) => setImmediate(resolve));
    const before = Date.now();
    const server = await GenServer.start(node, Echo, undefined, { name: 'info-echo' });
    const ready = deferred();
    const watcher = node.spawn(
      async (self) => {
        self.link(server);
        self.monitor(server);
        ready.resolve();
        await self.receive((message) => message === 'go');
      },
      { trapExit: true },
    );
    await within(ready.promise, 'the watcher to link and monitor');
    for (let index = 0; index < 3; index++) node.send(watcher, index);
    const serverInfo = node.processInfo(server)!;
    assert.equal(serverInfo.kind, 'gen_server');
    assert.equal(serverInfo.name, 'info-echo');
    assert.equal(serverInfo.links, 1);
    assert.equal(serverInfo.monitors, 0);
    assert.equal(serverInfo.monitoredBy, 1, "the watcher's monitor");
    assert.ok(serverInfo.startedAt >= before && serverInfo.startedAt <= Date.now());
    const watcherInfo = node.processInfo(watcher)!;
    assert.deepEqual(
      { kind: watcherInfo.kind, name: watcherInfo.name, mailboxLength: watcherInfo.mailboxLength, messagesIn: watcherInfo.messagesIn, trapExit: watcherInfo.trapExit, links: watcherInfo.links, monitors: watcherInfo.monitors },
      { kind: 'process', name: undefined, mailboxLength: 3, messagesIn: 3, trapExit: true, links: 1, monitors: 1 },
    );
    assert.ok(!('name' in watcherInfo), 'no name key for a process without one');
    node.send(watcher, 'go');
    await within(exited(node, watcher), 'the watcher to end');
    await GenServer.stop(node, server);
  });

  test('undefined for a dead process, a reply port and a pid of another node', async () => {
    const pid = node.spawn(() => undefined);
    await within(exited(node, pid), 'the process to end');
    assert.equal(node.processInfo(pid), undefined);
    const other = await Node.start({ name: 'introspection-other' });
    const foreign = other.spawn(async (self) => {
      await self.receive();
    });
    assert.equal(node.processInfo(foreign), undefined);
    assert.ok(other.processInfo(foreign) !== undefined);
    await other.stop();
    assert.equal(node.processInfo(node.pid), undefined, 'the node pid is no process');
  });
});

describe('node.snapshot', () => {
  test('longest mailboxes: longest first, ties oldest first, bounded by longestMailboxes', async () => {
    const fresh = await Node.start({ name: 'snapshot-top' });
    try {
      const processes = [3, 9, 1, 9, 0, 5].map((count) => {
        const process = blocked(fresh);
        for (let index = 0; index < count; index++) fresh.send(process.pid, index);
        return { ...process, count };
      });
      const snapshot = fresh.snapshot({ longestMailboxes: 3 });
      assert.equal(snapshot.processCount, 6);
      assert.equal(snapshot.mailboxMax, 9);
      assert.deepEqual(
        snapshot.longestMailboxes.map((info) => [info.pid.key, info.mailboxLength]),
        [processes[1]!, processes[3]!, processes[5]!].map((process) => [process.pid.key, process.count]),
      );
      assert.equal(fresh.snapshot({ longestMailboxes: 0 }).longestMailboxes.length, 0);
      assert.equal(fresh.snapshot().longestMailboxes.length, 6, 'default 10: every process of six, idle ones included');
      const all = fresh.snapshot({ processes: true });
      assert.deepEqual(all.processes?.map((info) => info.pid.key), processes.map((process) => process.pid.key), 'every process, oldest first');
      assert.equal(fresh.snapshot().processes, undefined);
      for (const process of processes) process.release();
    } finally {
      await fresh.stop();
    }
  });

  test('a blocked GenServer: its mailbox grows while it is busy, and drains after', async () => {
    const server = await GenServer.start(node, Echo, undefined);
    const gate = deferred();
    wake.promise = gate.promise;
    node.cast(server, 'sleep');
    for (let index = 0; index < 40; index++) node.cast(server, index);
    await new Promise((resolve) => setImmediate(resolve));
    const busy = node.snapshot({ longestMailboxes: 1 });
    assert.equal(busy.longestMailboxes[0]!.pid.key, server.key);
    assert.equal(busy.longestMailboxes[0]!.mailboxLength, 40);
    assert.ok(busy.mailboxMax >= 40);
    gate.resolve();
    assert.equal(await node.call(server, 'after'), 'after');
    assert.equal(node.processInfo(server)!.mailboxLength, 0);
    assert.equal(node.processInfo(server)!.messagesIn, 42);
    wake.promise = Promise.resolve();
    await GenServer.stop(node, server);
  });

  test('supervision trees: strategy, children, restarts with reasons (the last 20), parents', async () => {
    const fresh = await Node.start({ name: 'snapshot-sup' });
    try {
      const top = await Supervisor.start(
        fresh,
        {
          strategy: 'one_for_all',
          intensity: 100,
          period: 60_000,
          children: [
            Supervisor.worker('alpha', Echo, undefined, { name: 'alpha' }),
            Supervisor.supervisor('inner', { strategy: 'rest_for_one', intensity: 100, period: 60_000, children: [Supervisor.worker('beta', Echo, undefined, { name: 'beta', restart: 'transient' })] }, { name: 'inner' }),
          ],
        },
        { name: 'top' },
      );
      const dynamic = await DynamicSupervisor.start(fresh, { intensity: 100, period: 60_000 });
      const child = await DynamicSupervisor.startChild(fresh, dynamic, { id: 'gamma', start: (self) => GenServer.startLink(self, Echo, undefined) });

      // 22 crashes of beta (restarted by inner alone), then one of alpha (all of top restarted).
      for (let index = 0; index < 22; index++) {
        const beta = fresh.whereis('beta')!;
        const gone = exited(fresh, beta);
        fresh.cast(beta, 'crash');
        await within(gone, `beta's crash ${index}`);
        await within(waitFor(() => fresh.whereis('beta') !== undefined && !fresh.whereis('beta')!.equals(beta)), `beta's restart ${index}`);
      }
      fresh.exit(child!, 'boom');
      await within(waitFor(() => findSupervisor(fresh, dynamic).restarts === 1), 'gamma restarted');

      const snapshot = fresh.snapshot();
      const topInfo = findSupervisor(fresh, top, snapshot.supervisors);
      const innerInfo = findSupervisor(fresh, fresh.whereis('inner')!, snapshot.supervisors);
      const dynamicInfo = findSupervisor(fresh, dynamic, snapshot.supervisors);
      assert.equal(snapshot.supervisors.length, 3);
      assert.ok(snapshot.supervisors.indexOf(topInfo) < snapshot.supervisors.indexOf(innerInfo), 'a parent before its child');

      assert.deepEqual({ name: topInfo.name, parent: topInfo.parent, strategy: topInfo.strategy, restarts: topInfo.restarts }, { name: 'top', parent: undefined, strategy: 'one_for_all', restarts: 0 });
      assert.deepEqual(
        topInfo.children.map((entry) => [entry.id, entry.pid?.key, entry.type, entry.restart]),
        [
          ['alpha', fresh.whereis('alpha')!.key, 'worker', 'permanent'],
          ['inner', fresh.whereis('inner')!.key, 'supervisor', 'permanent'],
        ],
      );
      assert.equal(innerInfo.parent?.key, top.key);
      assert.equal(innerInfo.strategy, 'rest_for_one');
      assert.equal(innerInfo.restarts, 22);
      assert.equal(innerInfo.recentRestarts.length, 20, 'the last 20 only');
      assert.ok(innerInfo.recentRestarts.every((record) => record.childId === 'beta' && record.reason === 'Error: crashed on purpose'));
      const times = innerInfo.recentRestarts.map((record) => record.at);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first');
      assert.equal(dynamicInfo.strategy, 'simple_one_for_one');
      assert.equal(dynamicInfo.parent, undefined);
      assert.deepEqual(dynamicInfo.recentRestarts.map((record) => [record.childId, record.reason]), [['gamma', 'boom']]);
      assert.equal(dynamicInfo.children.length, 1);
      assert.ok(dynamicInfo.children[0]!.pid !== undefined && !dynamicInfo.children[0]!.pid.equals(child!));
      assert.equal(fresh.processInfo(top)!.kind, 'supervisor');
      assert.equal(fresh.processInfo(dynamic)!.kind, 'dynamic_supervisor');
      assert.deepEqual([...snapshot.registered].sort(), ['alpha', 'beta', 'inner', 'top']);

      // A stopped child shows without a pid; a restart of the whole group counts once at top.
      await Supervisor.terminateChild(fresh, 'inner', 'beta');
      assert.equal(findSupervisor(fresh, fresh.whereis('inner')!).children[0]!.pid, undefined);
      const alpha = fresh.whereis('alpha')!;
      fresh.exit(alpha, 'kill');
      await within(waitFor(() => findSupervisor(fresh, top).restarts === 1), 'top restarted its group');
      assert.deepEqual(findSupervisor(fresh, top).recentRestarts.map((record) => [record.childId, record.reason]), [['alpha', 'killed']]);
    } finally {
      await fresh.stop();
    }
  });

  test('plain data: memory, event-loop delay, and JSON-safe', async () => {
    const fresh = await Node.start({ name: 'snapshot-plain' });
    try {
      const first = fresh.snapshot();
      assert.ok(first.memory.rss > 0 && first.memory.heapUsed > 0 && first.memory.heapTotal >= first.memory.heapUsed);
      for (const value of Object.values(first.eventLoopDelay)) assert.ok(Number.isFinite(value) && value >= 0);
      assert.ok(Math.abs(first.at - Date.now()) < 1000);
      assert.equal(first.node, 'snapshot-plain');
      const copy = JSON.parse(JSON.stringify(first)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(copy).sort(), ['at', 'eventLoopDelay', 'longestMailboxes', 'mailboxMax', 'memory', 'node', 'processCount', 'registered', 'registries', 'stats', 'supervisors']);
    } finally {
      await fresh.stop();
    }
  });

  test('event-loop delay: a blocked loop shows in the next window; the sampler runs only while a node that asked is up', async () => {
    const users = loopSamplerUsers();
    const fresh = await Node.start({ name: 'snapshot-loop' });
    assert.equal(loopSamplerUsers(), users, 'no sampler for a node never asked');
    try {
      fresh.snapshot();
      assert.equal(loopSamplerUsers(), users + 1);
      fresh.snapshot();
      assert.equal(loopSamplerUsers(), users + 1, 'one use per node');
      // Block the loop for 120 ms, then let the 1 s window close with timers running.
      const until = performance.now() + 120;
      while (performance.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const delay = fresh.snapshot().eventLoopDelay;
      assert.ok(delay.max >= 80, `max ${delay.max} ms`);
      assert.ok(delay.p99 >= delay.p50 && delay.max >= delay.p99 && delay.mean > 0);
    } finally {
      await fresh.stop();
    }
    assert.equal(loopSamplerUsers(), users, 'released when the node stops');
  });

  test('bad options are TypeErrors naming them', () => {
    assert.throws(() => node.snapshot({ longestMailboxes: -1 }), /longestMailboxes must be an integer from 0 to 1000, got -1/);
    assert.throws(() => node.snapshot({ longestMailboxes: 1.5 }), /longestMailboxes/);
    assert.throws(() => node.snapshot({ longestMailboxes: 1001 }), /longestMailboxes/);
    assert.throws(() => node.snapshot({ processes: 'yes' as unknown as boolean }), /processes must be a boolean, got string/);
    assert.throws(() => node.snapshot({ longest: 3 } as never), /unknown option "longest"/);
    assert.throws(() => node.snapshot(null as never), TypeError);
  });
});

describe('LatencyHistogram', () => {
  test('each value lands in the first bucket whose bound it does not pass; above all, in +Inf', () => {
    const histogram = new LatencyHistogram();
    const bounds = LatencyHistogram.BOUNDS;
    assert.deepEqual([...bounds], [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);
    const values = [0, 0.1, 0.1000001, 1, 3, 10000, 10000.5, 1e9];
    for (const value of values) histogram.observe(value);
    const snapshot = histogram.snapshot();
    const expected = new Array<number>(bounds.length + 1).fill(0);
    for (const value of values) {
      const index = bounds.findIndex((bound) => value <= bound);
      expected[index === -1 ? bounds.length : index]!++;
    }
    assert.deepEqual(snapshot.counts, expected);
    assert.equal(snapshot.counts[0], 2, '0 and 0.1 (le 0.1)');
    assert.equal(snapshot.counts[bounds.length], 2, 'past 10000 ms');
    assert.equal(snapshot.count, values.length);
    assert.equal(snapshot.sum, values.reduce((sum, value) => sum + value, 0));
  });

  test('a snapshot is a copy', () => {
    const histogram = new LatencyHistogram();
    const before = histogram.snapshot();
    histogram.observe(1);
    assert.equal(before.count, 0);
    assert.equal(before.counts[3], 0);
    assert.equal(histogram.snapshot().counts[3], 1);
  });

  test('bad input is a TypeError naming ms', () => {
    const histogram = new LatencyHistogram();
    for (const bad of [-1, -0.001, NaN, Infinity, '3' as unknown as number, undefined as unknown as number]) {
      assert.throws(() => histogram.observe(bad), (error: unknown) => error instanceof TypeError && /LatencyHistogram\.observe: ms must be/.test(error.message));
    }
    assert.equal(histogram.snapshot().count, 0);
  });
});

/** The info of the supervisor `pid` in `supervisors` (default: a fresh snapshot of `on`). */
function findSupervisor(on: Node, pid: Pid, supervisors: readonly SupervisorInfo[] = on.snapshot().supervisors): SupervisorInfo {
  const info = supervisors.find((candidate) => candidate.pid.equals(pid));
  assert.ok(info !== undefined, `supervisor ${pid.key} in the snapshot`);
  return info;
}

/** Resolves once `condition` holds, checked on every event-loop turn (bounded by the caller's `within`). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
}
