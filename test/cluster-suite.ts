/**
 * The cluster suite: distribution semantics (remote send, call, cast, links,
 * monitors, exit signals, node loss, hostile frames, wire values, ordering)
 * checked the same way over any carrier. `cluster-memory.test.ts` and
 * `cluster-amqp.test.ts` run it over MemoryTransport and RabbitMQ.
 *
 * Waits are event-driven (nodeup/nodedown, DOWN/EXIT through probe
 * processes, call replies as barriers) and every one is bounded.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  CallError,
  GenServer,
  Pid,
  Ref,
  isDownMessage,
  isExitMessage,
  type DownMessage,
  type ExitMessage,
  type Node,
  type Process,
} from '@roster/core';
import { NodeNameTakenError, WIRE_VERSION, WireEncodeError, clusterOf, type Cluster, type ClusterStats, type DropReason } from '@roster/cluster';
import { EchoServer, type ClusterHarness, type StartClusterOptions } from '@roster/testkit';

// ---- what a carrier must provide ------------------------------------------------------

export type SuiteClusterOptions = Omit<StartClusterOptions, 'transport' | 'amqpUrl' | 'broker'>;

/** A node of the cluster that can be lost without a word (crash, kill -9), running an echo server. */
export interface LosablePeer {
  readonly name: string;
  /** An {@link EchoServer} on the peer. */
  readonly echo: Pid;
  /** Resolves once the peer and the harness's nodes see each other. */
  ready(): Promise<void>;
  /** Takes the peer away without warning. */
  lose(): void;
  /** Cleans up (the harness's stopAll covers in-process peers). */
  close(): Promise<void>;
}

/** Publishes raw frames onto a cluster's carrier as broadcasts, FIFO, reaching every node. */
export interface Injector {
  /** An address on the carrier where frames to the injector go (for forged hellos). */
  readonly address: string;
  publish(frame: string): Promise<void>;
  close(): Promise<void>;
}

export interface Carrier {
  readonly kind: 'memory' | 'amqp';
  /** Bound of one wait (a DOWN, a nodeup...). */
  readonly waitMs: number;
  start(options: SuiteClusterOptions): Promise<ClusterHarness>;
  startLosable(harness: ClusterHarness, name: string): Promise<LosablePeer>;
  injector(harness: ClusterHarness): Promise<Injector>;
  /** Cuts frames between two nodes both ways until the returned function heals it (memory only). */
  partition?(harness: ClusterHarness, a: string, b: string): () => void;
}

// ---- helpers ----------------------------------------------------------------------------

import { deferred, within } from '@roster/testkit';

export { within, deferred };

/** A process that runs `setup`, then collects every message it receives; `next(match)` takes one (bounded). */
export interface Probe {
  readonly pid: Pid;
  next<T = unknown>(match?: (message: unknown) => boolean, what?: string): Promise<T>;
  /** Messages received and not taken yet. */
  readonly pending: unknown[];
}

export async function probe(
  node: Node,
  waitMs: number,
  setup?: (self: Process) => void | Promise<void>,
  options: { trapExit?: boolean } = {},
): Promise<Probe> {
  const pending: unknown[] = [];
  const waiters: { match: (message: unknown) => boolean; resolve: (message: unknown) => void }[] = [];
  const ready = deferred();
  const pid = node.spawn(
    async (self) => {
      try {
        await setup?.(self);
        ready.resolve();
      } catch (error) {
        ready.reject(error);
        throw error;
      }
      for (;;) {
        const message = await self.receive();
        // A trapping probe still stops with its node.
        if (isExitMessage(message) && message.from.equals(node.pid)) self.exit(message.reason);
        const index = waiters.findIndex((waiter) => waiter.match(message));
        if (index === -1) pending.push(message);
        else waiters.splice(index, 1)[0]!.resolve(message);
      }
    },
    options.trapExit === true ? { trapExit: true } : undefined,
  );
  await within(ready.promise, `probe setup on ${node.name}`, waitMs);
  return {
    pid,
    pending,
    next<T>(match: (message: unknown) => boolean = () => true, what = 'a message'): Promise<T> {
      const index = pending.findIndex(match);
      if (index !== -1) return Promise.resolve(pending.splice(index, 1)[0] as T);
      const got = deferred<unknown>();
      waiters.push({ match, resolve: got.resolve });
      return within(got.promise as Promise<T>, `${what} at ${pid.key}`, waitMs);
    },
  };
}

const downOf = (pid: Pid) => (message: unknown): boolean => isDownMessage(message) && message.pid?.equals(pid) === true;
const exitFrom = (pid: Pid) => (message: unknown): boolean => isExitMessage(message) && message.from.equals(pid);

/** Resolves with the reason of the next cluster `event` about `peer`. */
export function clusterEvent(cluster: Cluster, event: 'nodeup' | 'nodedown', peer: string, ms: number): Promise<string | undefined> {
  const got = deferred<string | undefined>();
  const listener = (who: { node: string }, reason?: string): void => {
    if (who.node !== peer) return;
    cluster.off(event, listener);
    got.resolve(reason);
  };
  cluster.on(event, listener);
  return within(got.promise, `${event} of ${peer}`, ms).finally(() => cluster.off(event, listener));
}

/** A process that waits for one command: `{ crash: message }` throws, `{ die: reason }` exits with `reason`. */
function spawnTarget(node: Node): Pid {
  return node.spawn(async (self) => {
    const command = (await self.receive()) as { crash?: string; die?: unknown };
    if (command.crash !== undefined) throw new Error(command.crash);
    self.exit(command.die);
  });
}

function assertErrorReason(reason: unknown, message: string): void {
  assert.ok(reason instanceof Error, `expected an Error reason, got ${String(reason)}`);
  assert.equal(reason.message, message);
}

async function withCluster(carrier: Carrier, options: SuiteClusterOptions, body: (h: ClusterHarness) => Promise<void>): Promise<void> {
  const harness = await carrier.start(options);
  try {
    await harness.waitForMembership({ timeout: carrier.waitMs });
    await body(harness);
  } finally {
    await harness.stopAll();
  }
}

function droppedSnapshot(stats: ClusterStats): Record<string, number> {
  return { ...stats.dropped };
}

function droppedDelta(before: Record<string, number>, stats: ClusterStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [reason, count] of Object.entries(stats.dropped)) {
    const delta = count - (before[reason] ?? 0);
    if (delta !== 0) out[reason] = delta;
  }
  return out;
}

/** A raw envelope as a peer (or an attacker) would write it. */
export function rawFrame(fields: { v?: unknown; c?: unknown; f?: unknown; i?: unknown; k?: unknown; b?: unknown }, secret?: string): string {
  const json = JSON.stringify({ v: WIRE_VERSION, ...fields });
  return secret === undefined ? json : `~${createHmac('sha256', secret).update(json).digest('base64url')}${json}`;
}

const wirePid = (pid: Pid) => ({ $pid: [pid.node, pid.creation, pid.id] });

// ---- the suite ----------------------------------------------------------------------------

export function clusterSuite(name: string, carrier: Carrier): void {
  const W = carrier.waitMs;

  describe(`cluster over ${name}`, () => {
    it('remote send: from the node and from a process, to a process on another node', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const inbox = await probe(h.node('b'), W);
        a.send(inbox.pid, { hello: 'from node a', list: [1, 'two', null] });
        assert.deepEqual(await inbox.next(), { hello: 'from node a', list: [1, 'two', null] });
        const sender = a.spawn((self) => self.send(inbox.pid, { from: self.pid }));
        const message = await inbox.next<{ from: Pid }>();
        assert.ok(message.from instanceof Pid && message.from.equals(sender), 'the sender pid crosses as a Pid');
        assert.equal(sender.node, 'a');
      });
    });

    it('call: the callee sees the real caller pid, and the reply comes back', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const echo = await GenServer.start(h.node('b'), EchoServer, undefined);
        assert.equal(await a.call(echo, 'ping'), 'pong');
        const result = deferred<{ caller: Pid; reply: { request: unknown; from: Pid } }>();
        a.spawn(async (self) => {
          const reply = await self.call<{ request: unknown; from: Pid }>(echo, { n: 42, nested: { ok: true } });
          result.resolve({ caller: self.pid, reply });
        });
        const { caller, reply } = await within(result.promise, 'the call from a process', W);
        assert.deepEqual(reply.request, { n: 42, nested: { ok: true } });
        assert.ok(reply.from instanceof Pid);
        assert.ok(reply.from.equals(caller), `callee saw ${reply.from.key}, caller is ${caller.key}`);
        // Many calls in flight at once each get their own reply.
        const replies = await within(
          Promise.all(Array.from({ length: 50 }, (_, i) => a.call<{ request: number }>(echo, i))),
          '50 concurrent calls',
          W,
        );
        assert.deepEqual(
          replies.map((r) => r.request),
          Array.from({ length: 50 }, (_, i) => i),
        );
        // A callee that crashes ends the call with its real reason.
        await assert.rejects(a.call(echo, { crash: 'callee exploded' }), (error: unknown) => {
          assert.ok(error instanceof CallError, String(error));
          assert.equal(error.failure, 'exit');
          assertErrorReason(error.reason, 'callee exploded');
          return true;
        });
      });
    });

    it('cast reaches a remote GenServer', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const echo = await GenServer.start(h.node('b'), EchoServer, undefined);
        const inbox = await probe(a, W);
        a.cast(echo, { forward: inbox.pid, message: { cast: 'round trip' } });
        assert.deepEqual(await inbox.next(), { cast: 'round trip' });
      });
    });

    it('link: a remote crash kills the linked local process; a trapping one gets EXIT with the remote reason', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        // Not trapping: dies with the remote reason.
        const target1 = spawnTarget(b);
        const linked = a.spawn(async (self) => {
          self.link(target1);
          // Same sender-receiver pair as the link: it arrives after it.
          self.send(target1, { crash: 'remote boom' });
          await self.receive();
        });
        const watcher = await probe(a, W, (self) => void self.monitor(linked));
        const down = await watcher.next<DownMessage>(downOf(linked), 'DOWN of the linked process');
        assertErrorReason(down.reason, 'remote boom');

        // Trapping: gets EXIT from the remote pid with its reason, and lives on.
        const target2 = spawnTarget(b);
        const trapper = await probe(
          a,
          W,
          (self) => {
            self.link(target2);
            self.send(target2, { die: { custom: 'bye', n: 1 } });
          },
          { trapExit: true },
        );
        const exit = await trapper.next<ExitMessage>(exitFrom(target2), 'EXIT from the remote process');
        assert.ok(exit.from instanceof Pid && exit.from.equals(target2));
        assert.deepEqual(exit.reason, { custom: 'bye', n: 1 });
        assert.ok(a.isAlive(trapper.pid));

        // And the other way round: a local crash kills the linked remote process.
        const remote = spawnTarget(b);
        const remoteWatch = await probe(b, W, (self) => void self.monitor(remote));
        a.spawn(async (self) => {
          self.link(remote);
          await self.call(await GenServer.start(b, EchoServer, undefined), 'ping'); // the link is in place
          throw new Error('local boom');
        });
        const remoteDown = await remoteWatch.next<DownMessage>(downOf(remote), 'DOWN of the remote linked process');
        assertErrorReason(remoteDown.reason, 'local boom');
      });
    });

    it('monitor: DOWN carries the real reason; an Error reason comes back as an Error with its message', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const echo1 = await GenServer.start(b, EchoServer, undefined);
        const echo2 = await GenServer.start(b, EchoServer, undefined);
        const echo3 = await GenServer.start(b, EchoServer, undefined);
        let ref3: Ref | undefined;
        const watcher = await probe(a, W, (self) => {
          self.monitor(echo1);
          self.monitor(echo2);
          ref3 = self.monitor(echo3);
          self.demonitor(ref3);
        });
        assert.ok(ref3 instanceof Ref);
        // The monitors were sent before this call on the same pair: they are in place.
        assert.equal(await a.call(echo1, 'ping'), 'pong');

        assert.equal(await a.call(echo1, { stop: { shutdown: 'custom', at: 3 } }), 'ok');
        const down1 = await watcher.next<DownMessage>(downOf(echo1), 'DOWN of echo1');
        assert.ok(down1.pid.equals(echo1));
        assert.ok(down1.ref instanceof Ref);
        assert.deepEqual(down1.reason, { shutdown: 'custom', at: 3 });

        await assert.rejects(a.call(echo2, { crash: 'monitored boom' }), CallError);
        const down2 = await watcher.next<DownMessage>(downOf(echo2), 'DOWN of echo2');
        assertErrorReason(down2.reason, 'monitored boom');

        // Demonitored: its death sends nothing (a DOWN would arrive before the reply to the next call).
        assert.equal(await a.call(echo3, { stop: 'normal' }), 'ok');
        const other = await GenServer.start(b, EchoServer, undefined);
        assert.equal(await a.call(other, 'ping'), 'pong');
        assert.ok(!watcher.pending.some(downOf(echo3)), 'no DOWN after demonitor');
      });
    });

    it('exit/2 across nodes: kills a non-trapping process, reaches a trapping one as EXIT, kill is untrappable', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const victim = spawnTarget(b);
        const trapper = await probe(b, W, undefined, { trapExit: true });
        const watcher = await probe(a, W, (self) => {
          self.monitor(victim);
          self.monitor(trapper.pid);
        });
        a.exit(victim, { told: 'to go' });
        const down = await watcher.next<DownMessage>(downOf(victim), 'DOWN of the victim');
        assert.deepEqual(down.reason, { told: 'to go' });

        const sender = a.spawn((self) => self.exit(trapper.pid, 'please stop'));
        const exit = await trapper.next<ExitMessage>(exitFrom(sender), 'EXIT at the trapping process');
        assert.equal(exit.reason, 'please stop');
        assert.ok(b.isAlive(trapper.pid));

        a.exit(trapper.pid, 'kill');
        const killed = await watcher.next<DownMessage>(downOf(trapper.pid), 'DOWN of the killed trapper');
        assert.equal(killed.reason, 'killed');
      });
    });

    it('monitor, link and call of a dead remote pid: noproc', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const dead = await GenServer.start(h.node('b'), EchoServer, undefined);
        assert.equal(await a.call(dead, { stop: 'normal' }), 'ok');
        assert.ok(!h.node('b').isAlive(dead));

        const watcher = await probe(a, W, (self) => void self.monitor(dead));
        const down = await watcher.next<DownMessage>(downOf(dead), 'DOWN noproc');
        assert.equal(down.reason, 'noproc');

        const trapper = await probe(a, W, (self) => self.link(dead), { trapExit: true });
        const exit = await trapper.next<ExitMessage>(exitFrom(dead), 'EXIT noproc');
        assert.equal(exit.reason, 'noproc');

        await assert.rejects(a.call(dead, 'ping'), (error: unknown) => error instanceof CallError && error.reason === 'noproc');
        // A send to a dead pid is silently dropped.
        a.send(dead, 'into the void');
      });
    });

    it('a node stopped gracefully: peers see nodedown at once, watchers get the real exit reasons', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'], heartbeatInterval: 1000, failureTimeout: 10_000 }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const echo = await GenServer.start(b, EchoServer, undefined);
        const watcher = await probe(a, W, (self) => void self.monitor(echo));
        const trapper = await probe(a, W, (self) => self.link(echo), { trapExit: true });
        const held = a.call(echo, { hold: true }, { timeout: 60_000 });
        held.catch(() => {});
        // Every monitor and link above (the held call's too) is in place once this returns.
        assert.equal(await a.call(echo, 'ping'), 'pong');

        const nodedown = clusterEvent(h.clusterOf('a'), 'nodedown', 'b', W);
        const started = Date.now();
        await b.stop();
        const reason = await nodedown;
        const elapsed = Date.now() - started;
        assert.equal(reason, 'leave');
        assert.ok(elapsed < 2000, `nodedown after ${elapsed} ms (failureTimeout is 10 s)`);
        assert.ok(!a.nodes().includes('b'));
        // b's processes exited with `shutdown` before b left: that is what its watchers hear.
        assert.equal((await watcher.next<DownMessage>(downOf(echo), 'DOWN')).reason, 'shutdown');
        assert.equal((await trapper.next<ExitMessage>(exitFrom(echo), 'EXIT')).reason, 'shutdown');
        await assert.rejects(within(held, 'the held call', W), (error: unknown) => error instanceof CallError && error.reason === 'shutdown');
      });
    });

    it('a node that leaves with live processes: nodedown at once, every watcher gets noconnection, both ways', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'], heartbeatInterval: 1000, failureTimeout: 10_000 }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const echo = await GenServer.start(b, EchoServer, undefined);
        const watcher = await probe(a, W, (self) => void self.monitor(echo));
        const trapper = await probe(a, W, (self) => self.link(echo), { trapExit: true });
        const linked = a.spawn(async (self) => {
          self.link(echo);
          await self.receive();
        });
        const linkedWatch = await probe(a, W, (self) => void self.monitor(linked));
        const localOnA = await GenServer.start(a, EchoServer, undefined);
        const watcherOnB = await probe(b, W, (self) => void self.monitor(localOnA));
        const held = a.call(echo, { hold: true }, { timeout: 60_000 });
        held.catch(() => {});
        assert.equal(await a.call(echo, 'ping'), 'pong');
        assert.equal(await b.call(localOnA, 'ping'), 'pong');

        const nodedown = clusterEvent(h.clusterOf('a'), 'nodedown', 'b', W);
        const started = Date.now();
        await h.clusterOf('b').leave();
        assert.equal(await nodedown, 'leave');
        assert.ok(Date.now() - started < 2000);
        assert.equal((await watcher.next<DownMessage>(downOf(echo), 'DOWN')).reason, 'noconnection');
        assert.equal((await trapper.next<ExitMessage>(exitFrom(echo), 'EXIT')).reason, 'noconnection');
        assert.equal((await linkedWatch.next<DownMessage>(downOf(linked), 'DOWN of linked')).reason, 'noconnection');
        await assert.rejects(within(held, 'the held call', W), (error: unknown) => error instanceof CallError && error.failure === 'noconnection');
        // b's side of it: its watchers of a's processes.
        assert.equal((await watcherOnB.next<DownMessage>(downOf(localOnA), 'DOWN on b')).reason, 'noconnection');
        // Leaving stops no process by itself: b's echo died of its links to a's processes (noconnection).
        assert.ok(b.isAlive(watcherOnB.pid));
        assert.ok(!b.isAlive(echo));
      });
    });

    it('a node lost without warning: nodedown within failureTimeout, noconnection to every watcher', async () => {
      const heartbeatInterval = 200;
      const failureTimeout = 1000;
      const harness = await carrier.start({ nodes: ['a'], heartbeatInterval, failureTimeout });
      let peer: LosablePeer | undefined;
      try {
        peer = await carrier.startLosable(harness, 'lost');
        await peer.ready();
        const a = harness.node('a');
        const echo = peer.echo;
        const watcher = await probe(a, W, (self) => void self.monitor(echo));
        const trapper = await probe(a, W, (self) => self.link(echo), { trapExit: true });
        const linked = a.spawn(async (self) => {
          self.link(echo);
          await self.receive();
        });
        const linkedWatch = await probe(a, W, (self) => void self.monitor(linked));
        const held = a.call(echo, { hold: true }, { timeout: 60_000 });
        held.catch(() => {});
        assert.equal(await a.call(echo, 'ping'), 'pong');

        const nodedown = clusterEvent(harness.clusterOf('a'), 'nodedown', 'lost', failureTimeout + 5000);
        const started = Date.now();
        peer.lose();
        assert.equal(await nodedown, 'timeout');
        const elapsed = Date.now() - started;
        const bound = failureTimeout + heartbeatInterval + 400;
        assert.ok(elapsed <= bound, `nodedown after ${elapsed} ms, bound ${bound} ms`);
        assert.ok(elapsed >= failureTimeout - 2 * heartbeatInterval, `nodedown after only ${elapsed} ms: nobody should have told`);
        assert.equal((await watcher.next<DownMessage>(downOf(echo), 'DOWN')).reason, 'noconnection');
        assert.equal((await trapper.next<ExitMessage>(exitFrom(echo), 'EXIT')).reason, 'noconnection');
        assert.equal((await linkedWatch.next<DownMessage>(downOf(linked), 'DOWN of linked')).reason, 'noconnection');
        await assert.rejects(within(held, 'the held call', W), (error: unknown) => error instanceof CallError && error.failure === 'noconnection');
        assert.ok(!a.nodes().includes('lost'));
        // A call to a pid of the lost node now fails at once.
        await assert.rejects(a.call(echo, 'ping'), (error: unknown) => error instanceof CallError && error.failure === 'noconnection');
      } finally {
        await peer?.close();
        await harness.stopAll();
      }
    });

    const partition = carrier.partition;
    if (partition !== undefined) {
      it('a node that declared a peer down and finds it again makes the peer drop it too (no silently dead monitors)', async () => {
        // a gives up on b after 500 ms; b would wait 30 s: when the cut heals, only a has seen a nodedown.
        const h = await carrier.start({ nodes: ['a'], heartbeatInterval: 100, failureTimeout: 500 });
        try {
          const a = h.node('a');
          const b = await h.startNode('b', { heartbeatInterval: 100, failureTimeout: 30_000 });
          await h.waitForMembership({ timeout: W });
          const onA = await GenServer.start(a, EchoServer, undefined);
          const onB = await GenServer.start(b, EchoServer, undefined);
          const watcherOnB = await probe(b, W, (self) => void self.monitor(onA));
          const trapperOnB = await probe(b, W, (self) => self.link(onA), { trapExit: true });
          const watcherOnA = await probe(a, W, (self) => void self.monitor(onB));
          assert.equal(await b.call(onA, 'ping'), 'pong');
          assert.equal(await a.call(onB, 'ping'), 'pong');

          const downOnA = clusterEvent(h.clusterOf('a'), 'nodedown', 'b', W);
          const downOnB = clusterEvent(h.clusterOf('b'), 'nodedown', 'a', W);
          const heal = partition(h, 'a', 'b');
          assert.equal(await downOnA, 'timeout');
          assert.equal((await watcherOnA.next<DownMessage>(downOf(onB), 'DOWN on a')).reason, 'noconnection');
          const upOnA = clusterEvent(h.clusterOf('a'), 'nodeup', 'b', W);
          heal();
          await upOnA;
          // b never timed a out, but must learn that a dropped everything between them.
          await downOnB;
          assert.equal((await watcherOnB.next<DownMessage>(downOf(onA), 'DOWN on b')).reason, 'noconnection');
          assert.equal((await trapperOnB.next<ExitMessage>(exitFrom(onA), 'EXIT on b')).reason, 'noconnection');
          await h.waitForMembership({ timeout: W });
          // onA died of its link to b's trapper when a dropped b; the two are whole again otherwise.
          assert.ok(!a.isAlive(onA));
          const fresh = await GenServer.start(a, EchoServer, undefined);
          const again = await probe(b, W, (self) => void self.monitor(fresh));
          assert.equal(await b.call(fresh, { stop: 'normal' }), 'ok');
          assert.equal((await again.next<DownMessage>(downOf(fresh), 'DOWN after healing')).reason, 'normal');
        } finally {
          await h.stopAll();
        }
      });
    }

    it('malformed, oversized, foreign-cluster, unknown and misrouted frames are dropped, counted, harmless', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'], maxFrameBytes: 4096 }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const echoOnA = await GenServer.start(a, EchoServer, undefined);
        const inj = await carrier.injector(h);
        try {
          const target = wirePid(echoOnA);
          const base = { c: h.id, f: 'ghost', i: 'ghostcreation', k: 'msg', b: { t: target, m: 'hi' } };
          const before = droppedSnapshot(h.clusterOf('a').stats);
          const frames: [string, DropReason][] = [
            ['{definitely not json', 'malformed'],
            ['[1,2,3]', 'malformed'],
            [rawFrame({ ...base, k: 'bogus' }), 'malformed'],
            [rawFrame({ ...base, b: { m: 'no target' } }), 'malformed'],
            [rawFrame({ ...base, b: { t: { $pid: ['a'] }, m: 1 } }), 'malformed'],
            [rawFrame({ ...base, v: 99 }), 'version'],
            [rawFrame({ ...base, b: { t: target, m: 'x'.repeat(5000) } }), 'oversized'],
            [rawFrame({ ...base, c: `${h.id}-elsewhere` }), 'foreign_cluster'],
            [rawFrame(base), 'unknown_peer'],
            // Claims to come from b (its real incarnation) but targets a pid of a node that is not a.
            [rawFrame({ ...base, f: 'b', i: b.creation, b: { t: { $pid: ['zed', 'zzz', 1] }, m: 'lost' } }), 'misrouted'],
            [rawFrame(base, 'a secret nobody has'), 'bad_signature'],
          ];
          for (const [frame] of frames) await inj.publish(frame);
          // A marker after them on the same path: when a sees it, a has handled every frame above.
          const marker = `marker-${Date.now()}`;
          const seen = clusterEvent(h.clusterOf('a'), 'nodeup', marker, W);
          await inj.publish(rawFrame({ c: h.id, f: marker, i: 'm1', k: 'hello', b: { a: inj.address, s: 0 } }));
          await seen;
          const expected: Record<string, number> = {};
          for (const [, reason] of frames) expected[reason] = (expected[reason] ?? 0) + 1;
          assert.deepEqual(droppedDelta(before, h.clusterOf('a').stats), expected);
          await inj.publish(rawFrame({ c: h.id, f: marker, i: 'm1', k: 'leave', b: {} }));
          // Still serving.
          assert.equal(await b.call(echoOnA, 'ping'), 'pong');
          assert.ok(a.nodes().includes('b') && b.nodes().includes('a'));
          assert.ok(a.isAlive(echoOnA));
        } finally {
          await inj.close();
        }
      });
    });

    it('with a secret: unsigned, forged and wrongly signed frames are dropped as bad_signature', async () => {
      const secret = 'the cluster secret';
      await withCluster(carrier, { nodes: ['a', 'b'], secret }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        const echoOnA = await GenServer.start(a, EchoServer, undefined);
        assert.equal(await b.call(echoOnA, 'ping'), 'pong', 'signed traffic flows');
        const inj = await carrier.injector(h);
        try {
          const hello = { c: h.id, f: 'intruder', i: 'i1', k: 'hello', b: { a: inj.address, s: 0 } };
          const json = rawFrame(hello);
          const signed = rawFrame(hello, secret);
          const before = droppedSnapshot(h.clusterOf('a').stats);
          const frames = [
            json, // unsigned
            `~${'A'.repeat(43)}${json}`, // forged signature
            rawFrame(hello, 'not the secret'), // wrong secret
            `${signed.slice(0, 44)}${json.replace('intruder', 'intrudex')}`, // valid signature, tampered body
            `~${signed.slice(1, 20)}${json}`, // truncated signature
          ];
          for (const frame of frames) await inj.publish(frame);
          const marker = `marker-${Date.now()}`;
          const seen = clusterEvent(h.clusterOf('a'), 'nodeup', marker, W);
          await inj.publish(rawFrame({ ...hello, f: marker }, secret));
          await seen;
          assert.deepEqual(droppedDelta(before, h.clusterOf('a').stats), { bad_signature: frames.length });
          assert.ok(!a.nodes().includes('intruder') && !a.nodes().includes('intrudex'));
          await inj.publish(rawFrame({ ...hello, f: marker, k: 'leave', b: {} }, secret));
          assert.equal(await b.call(echoOnA, 'ping'), 'pong');
        } finally {
          await inj.close();
        }
      });
    });

    it('a node whose name is already live is refused at start with NodeNameTakenError', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const b = h.node('b');
        await assert.rejects(h.startNode('a'), (error: unknown) => {
          assert.ok(error instanceof NodeNameTakenError, String(error));
          assert.match(error.message, /"a"/);
          return true;
        });
        // The live one keeps its name, undisturbed.
        assert.deepEqual(
          clusterOf(b)!.members().find((m) => m.node === 'a'),
          { node: 'a', creation: a.creation, role: 'member' },
        );
        const echo = await GenServer.start(a, EchoServer, undefined);
        assert.equal(await b.call(echo, 'ping'), 'pong');
      });
    });

    it('values that cannot cross are refused at the sender; pids, refs, Errors, undefined and Dates round-trip', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const a = h.node('a');
        const echo = await GenServer.start(h.node('b'), EchoServer, undefined);
        assert.throws(
          () => a.send(echo, { handler: () => 1 }),
          (error: unknown) => error instanceof WireEncodeError && error.path === '$.handler' && /function/.test(error.message),
        );
        assert.throws(
          () => a.send(echo, { deep: [0, { table: new Map([['k', 1]]) }] }),
          (error: unknown) => error instanceof WireEncodeError && error.path === '$.deep[1].table' && /Map/.test(error.message),
        );
        const inProcess = deferred<unknown>();
        a.spawn((self) => {
          try {
            self.send(echo, new Set([1]));
            inProcess.resolve(undefined);
          } catch (error) {
            inProcess.resolve(error);
          }
        });
        const refused = await within(inProcess.promise, 'a send from a process', W);
        assert.ok(refused instanceof WireEncodeError && refused.path === '$', String(refused));

        const when = new Date('2030-01-02T03:04:05.678Z');
        const result = deferred<{ self: Pid; ref: Ref; reply: { request: Record<string, unknown>; from: Pid } }>();
        a.spawn(async (self) => {
          const ref = self.monitor(echo);
          const request = { pid: self.pid, ref, error: new RangeError('out of range'), nothing: undefined, when, list: [undefined, when, [self.pid]] };
          const reply = await self.call<{ request: Record<string, unknown>; from: Pid }>(echo, request);
          result.resolve({ self: self.pid, ref, reply });
        });
        const { self, ref, reply } = await within(result.promise, 'the round trip', W);
        const back = reply.request;
        assert.ok(back['pid'] instanceof Pid && back['pid'].equals(self));
        assert.ok(back['ref'] instanceof Ref && back['ref'].equals(ref));
        assert.ok(back['error'] instanceof Error);
        assert.equal(back['error'].name, 'RangeError');
        assert.equal(back['error'].message, 'out of range');
        assert.ok('nothing' in back && back['nothing'] === undefined);
        assert.ok(back['when'] instanceof Date && back['when'].getTime() === when.getTime());
        const list = back['list'] as unknown[];
        assert.equal(list.length, 3);
        assert.equal(list[0], undefined);
        assert.ok(list[1] instanceof Date && list[1].getTime() === when.getTime());
        assert.ok((list[2] as unknown[])[0] instanceof Pid && ((list[2] as Pid[])[0] as Pid).equals(self));
        assert.ok(reply.from.equals(self));
      });
    });

    it('per-pair ordering: 10k messages from one process to a remote process arrive in order', async () => {
      await withCluster(carrier, { nodes: ['a', 'b'] }, async (h) => {
        const total = 10_000;
        const outcome = deferred<{ count: number; firstBad: number | undefined }>();
        const receiver = h.node('b').spawn(async (self) => {
          let firstBad: number | undefined;
          for (let expected = 0; expected < total; expected++) {
            const message = await self.receive();
            if (message !== expected && firstBad === undefined) firstBad = expected;
          }
          outcome.resolve({ count: total, firstBad });
        });
        h.node('a').spawn((self) => {
          for (let i = 0; i < total; i++) self.send(receiver, i);
        });
        const { count, firstBad } = await within(outcome.promise, `${total} ordered messages`, carrier.kind === 'amqp' ? 30_000 : 10_000);
        assert.equal(count, total);
        assert.equal(firstBad, undefined, `message ${String(firstBad)} arrived out of order`);
      });
    });
  });
}
