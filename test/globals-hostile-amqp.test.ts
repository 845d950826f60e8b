/**
 * Hostile frames straight onto a cluster's RabbitMQ exchange (issue 7 points
 * 9-12, DESIGN.md §3.1 "Hostile members and broker clients"), at the shipped
 * default timings. A raw amqplib client speaks the wire format of
 * docs/protocol.md §1-2 and §5 itself: the fanout exchange `roster.<id>`
 * reaches every node, the default exchange with a node's queue name reaches
 * one.
 *
 * Without a secret (any broker client can forge any member): a forged old
 * `commit` with no claim, a claim with epoch counter 2^53-1, a claim stamped
 * ten years ahead, an oversized frame, 1 MiB of nested arrays, a batch of
 * 1000 `sync{want:true}`, 40 unfinished sync parts, 2000 releases of
 * never-held 16 Ki-character names. With a secret: replays of captured,
 * validly signed heartbeats (a live node's older ones, and a departed
 * node's). Afterwards nothing changed (names, owners, liveness, membership,
 * no conflicts), the node's later claims still succeed, every attack is
 * counted in `clusterOf(node).stats.dropped` and/or `registry.stats.dropped`,
 * and the heap (after a forced GC) stays within a small bound of where it
 * started.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, afterEach, before, describe, test } from 'node:test';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { canonicalName, type Node, type Pid } from '@roster/core';
import { clusterOf } from '@roster/cluster';
import { startRabbitMQ, type RabbitMQ } from '@roster/testkit';
import { World, waitFor } from './globals-helpers.js';

const HEARTBEAT = 1000;
const MiB = 1024 * 1024;
/** Heap growth allowed across all the memory attacks (which send well over 60 MiB decoded). */
const HEAP_BOUND = 16 * MiB;

// A forced GC without a command-line flag (the test runner's node arguments are fixed): expose it, then fetch it.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let rabbit: RabbitMQ | undefined;
let amqp: ChannelModel | undefined;
let channel: Channel | undefined;

before(async () => {
  rabbit = await startRabbitMQ();
  amqp = await connect(rabbit.url);
  channel = await amqp.createChannel();
});
after(async () => {
  await amqp?.close().catch(() => {});
  await rabbit?.stop();
});

const wirePid = (pid: Pid): unknown => ({ $pid: [pid.node, pid.creation, pid.id] });

/** An unsigned envelope (docs/protocol.md §2) claiming to come from `as`. */
function envelope(clusterId: string, as: Node, kind: string, body: unknown): string {
  return JSON.stringify({ v: 1, c: clusterId, f: as.name, i: as.creation, k: kind, b: body });
}
const globals = (clusterId: string, as: Node, message: unknown): string => envelope(clusterId, as, 'ch', { n: 'globals', m: message });
/** A registry message as plain JSON (`j`), the form packed batches travel in. */
const plainGlobals = (clusterId: string, as: Node, message: unknown): string => envelope(clusterId, as, 'ch', { n: 'globals', j: message });

/** Sum of every drop counter a node has: the cluster's by reason and the registry's. */
function drops(world: World, name: string): number {
  const cluster = clusterOf(world.node(name))!;
  const byReason = Object.values(cluster.stats.dropped as Record<string, number>).reduce((sum, n) => sum + n, 0);
  const registryDropped = (world.registry(name).stats as { dropped: number }).dropped;
  return byReason + registryDropped;
}

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A fresh 3-node cluster per attack (one attack that succeeds must not hide the next), names held on each node. */
class Target {
  readonly id: string;
  readonly exchange: string;
  /** Owners by name before the attacks. */
  readonly baseline = new Map<string, Pid>();
  membership = 0;
  #barriers = 0;

  private constructor(readonly world: World) {
    this.id = world.harness.id;
    this.exchange = `roster.${this.id}`;
  }

  static async start(): Promise<Target> {
    const world = await World.start({ transport: 'amqp', nodes: ['h1', 'h2', 'h3'], amqpUrl: rabbit!.url, membershipTimeout: 20_000 });
    const target = new Target(world);
    try {
      const pa = await world.spawn('h1');
      const pb = await world.spawn('h2');
      const pc = await world.spawn('h3');
      for (const [at, probe, names] of [
        ['h1', pa, ['held']],
        ['h2', pb, ['other']],
        ['h3', pc, Array.from({ length: 50 }, (_, i) => `h3-${i}`)],
      ] as const) {
        for (const name of names) {
          assert.equal(await world.registry(at).registerName(name, probe.pid), 'yes');
          target.baseline.set(name, probe.pid);
        }
      }
      for (const [name] of target.baseline) {
        for (const node of world.names) await waitFor(() => world.registry(node).whereisName(name) !== undefined, 3000, `${node} to learn ${name}`);
      }
      target.membership = world.membershipEvents;
      return target;
    } catch (error) {
      await world.stop();
      throw error;
    }
  }

  toAll(frame: string): void {
    channel!.publish(this.exchange, '', Buffer.from(frame));
  }

  toNode(node: string, frame: string): void {
    const address = this.world.harness.transportOf(node).address;
    assert.ok(address !== undefined, `${node} has no queue`);
    channel!.publish('', address, Buffer.from(frame));
  }

  received(node: string): number {
    return clusterOf(this.world.node(node))!.stats.received;
  }

  /**
   * Waits until `node` has received (or dropped) `frames` more frames than
   * `received`, then registers a fresh name there: the registry actor handles
   * its mailbox in order, so once that answers, every hostile message before
   * it was handled.
   */
  async settled(node: string, received: number, frames: number, droppedBefore: number): Promise<void> {
    const world = this.world;
    const cluster = clusterOf(world.node(node))!;
    await waitFor(() => cluster.stats.received + (drops(world, node) - droppedBefore) >= received + frames, 10_000, `${node} to receive ${frames} frames`);
    const probe = await world.spawn(node);
    assert.equal(await world.registry(node).registerName(`barrier-${++this.#barriers}`, probe.pid), 'yes', `${node}: a claim after the attack`);
  }

  assertUnchanged(what: string): void {
    const world = this.world;
    for (const node of world.names) {
      for (const [name, pid] of this.baseline) {
        assert.equal(world.registry(node).whereisName(name)?.key, pid.key, `${what}: ${node} resolves ${name}`);
      }
    }
    for (const pid of new Set(this.baseline.values())) assert.ok(world.isAlive(pid), `${what}: ${pid.key} was killed`);
    assert.equal(world.conflicts.length, 0, `${what}: conflicts: ${JSON.stringify(world.conflicts.map((c) => canonicalName(c.outcome.name)))}`);
    assert.equal(world.membershipEvents, this.membership, `${what}: membership changed`);
  }
}

describe('hostile frames on the exchange of a cluster without a secret', () => {
  let target: Target | undefined;
  afterEach(async () => {
    await target?.world.stop();
    target = undefined;
  });
  const start = async (): Promise<Target> => (target = await Target.start());

  test('a forged old commit with no claim steals nothing and kills nobody; it is counted', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const victim = t.baseline.get('other')!; // a real process of h2, so the commit looks plausible
    const before = { h1: drops(world, 'h1'), h3: drops(world, 'h3') };
    const received = { h1: clusterOf(world.node('h1'))!.stats.received, h3: clusterOf(world.node('h3'))!.stats.received };
    t.toAll(globals(id, h2, { op: 'commit', name: 'held', pid: wirePid(victim), epoch: [1, 0, 'h2'] }));
    await t.settled('h1', received.h1, 1, before.h1);
    await t.settled('h3', received.h3, 1, before.h3);
    t.assertUnchanged('after a forged commit');
    assert.ok(drops(world, 'h1') > before.h1, 'h1 (the owner) counted the forged commit as dropped');
    assert.ok(drops(world, 'h3') > before.h3, 'h3 counted the forged commit as dropped');
  });

  test('packed batches: a forged commit steals nothing, malformed entries and a name nested 5000 deep in a small frame are dropped; all counted', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const victim = t.baseline.get('other')!;
    const before = drops(world, 'h3');
    const malformedBefore = world.registry('h3').stats.drops.malformed;
    const received = clusterOf(world.node('h3'))!.stats.received;
    const commit = (name: string): unknown[] => [4, name, victim.node, victim.creation, victim.id, Date.now(), 0];
    // Commits of a held name and of a free one, with no claim h3 voted for; the packed form cannot name another epoch node.
    t.toNode('h3', plainGlobals(id, h2, { op: 'packed', m: [commit('held'), commit('stolen')] }));
    t.toNode('h3', plainGlobals(id, h2, { op: 'packed', m: [[10, 'x', 1, 0]] }));
    // Written by hand: JSON.stringify itself would run out of stack on it. About 10 KB: under the frame size from which nesting is scanned.
    const deepName = `${'['.repeat(5000)}"x"${']'.repeat(5000)}`;
    t.toNode('h3', plainGlobals(id, h2, { op: 'packed', m: [] }).replace('"m":[]', `"m":[[5,${deepName},${Date.now()},0]]`));
    // A packed batch in the tagged form: its pid fields arrive as tags, not strings.
    t.toNode('h3', globals(id, h2, { op: 'packed', m: [[4, 'stolen', { $pid: ['h2', h2.creation, 1] }, h2.creation, 1, Date.now(), 0]] }));
    await t.settled('h3', received, 4, before);
    t.assertUnchanged('after hostile packed batches');
    for (const node of world.names) assert.equal(world.registry(node).whereisName('stolen'), undefined, `${node} resolves the forged name`);
    assert.equal(world.registry('h3').stats.drops.malformed - malformedBefore, 3, 'the three malformed batches are counted as malformed');
    assert.ok(drops(world, 'h3') >= before + 5, `each forged commit and each malformed batch is counted (drops went from ${before} to ${drops(world, 'h3')})`);
  });

  test('a claim with epoch counter 2^53-1, and one stamped 10 years ahead: the node claims on, peers accept its claims', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const pid = wirePid(t.baseline.get('other')!);
    for (const [label, epoch] of [
      ['counter 2^53-1', [Date.now(), Number.MAX_SAFE_INTEGER, 'h2']],
      ['wall +10 years', [Date.now() + 10 * 365 * 24 * 3600 * 1000, 0, 'h2']],
    ] as const) {
      const before = drops(world, 'h3');
      const peerDrops = { h1: drops(world, 'h1'), h2: drops(world, 'h2') };
      const received = clusterOf(world.node('h3'))!.stats.received;
      t.toNode('h3', globals(id, h2, { op: 'claim', name: `forged-${label}`, pid, epoch }));
      await t.settled('h3', received, 1, before);
      // Later claims of h3 go through and reach every peer, which drops none of them.
      const probe = await world.spawn('h3');
      for (let i = 0; i < 5; i++) {
        const name = `after ${label} ${i}`;
        assert.equal(await world.registry('h3').registerName(name, probe.pid), 'yes', `${label}: h3's claim ${i} after it`);
        for (const node of ['h1', 'h2']) await waitFor(() => world.registry(node).whereisName(name)?.equals(probe.pid) === true, 3000, `${node} to learn ${name}`);
      }
      assert.equal(drops(world, 'h1'), peerDrops.h1, `${label}: h1 dropped claims of h3`);
      assert.equal(drops(world, 'h2'), peerDrops.h2, `${label}: h2 dropped claims of h3`);
      for (const node of world.names) assert.equal(world.registry(node).whereisName(`forged-${label}`), undefined, `${label}: ${node} holds the forged claim`);
      assert.ok(drops(world, 'h3') > before, `${label}: h3 counted the forged epoch as dropped`);
    }
    t.assertUnchanged('after forged epochs');
  });

  test('an oversized frame and 1 MiB of nested arrays are dropped and counted; nothing changes', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const before = drops(world, 'h3');
    const received = clusterOf(world.node('h3'))!.stats.received;
    const oversizedBefore = clusterOf(world.node('h3'))!.stats.dropped.oversized;
    t.toNode('h3', globals(id, h2, { op: 'release', name: 'x'.repeat(2 * MiB), epoch: [1, 0, 'h2'], reason: 'normal' }));
    const depth = MiB / 2 - 200;
    t.toNode('h3', `{"v":1,"c":${JSON.stringify(id)},"f":"h2","i":${JSON.stringify(h2.creation)},"k":"ch","b":{"n":"globals","m":${'['.repeat(depth)}${']'.repeat(depth)}}}`);
    await t.settled('h3', received, 2, before);
    assert.ok(clusterOf(world.node('h3'))!.stats.dropped.oversized > oversizedBefore, 'the oversized frame is counted as oversized');
    assert.ok(drops(world, 'h3') >= before + 2, `both frames counted (drops went from ${before} to ${drops(world, 'h3')})`);
    t.assertUnchanged('after oversized and nested frames');
  });

  test('a batch of 1000 sync{want:true} does not make the node answer 1000 syncs', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const h3 = clusterOf(world.node('h3'))!;
    const before = drops(world, 'h3');
    const received = h3.stats.received;
    const sentBefore = h3.stats.sent;
    const messages = Array.from({ length: 1000 }, (_, sid) => ({ op: 'sync', claims: [], want: true, sid: sid + 1 }));
    t.toNode('h3', globals(id, h2, { op: 'batch', messages }));
    await t.settled('h3', received, 1, before);
    const sent = h3.stats.sent - sentBefore;
    // h3 holds 50 names: each answered sync would carry them all. A handful of frames (heartbeats, the barrier claim) is fine.
    assert.ok(sent < 50, `h3 sent ${sent} frames after one batch of 1000 sync requests`);
    assert.ok(drops(world, 'h3') > before, 'the excess sync requests are counted as dropped');
    t.assertUnchanged('after a sync amplification attempt');
  });

  test('unfinished sync parts and releases of never-held big names: counted, and the heap stays flat', async () => {
    const t = await start();
    const world = t.world;
    const id = t.id;
    const h2 = world.node('h2');
    const victim = wirePid(t.baseline.get('other')!);
    const h3 = clusterOf(world.node('h3'))!;
    const heapAtStart = heap();
    const before = drops(world, 'h3');
    let received = h3.stats.received;
    // 40 sync parts of ~0.9 MiB, each `more: true`, each a different sync, none ever finished.
    for (let part = 0; part < 40; part++) {
      const claims = Array.from({ length: 55 }, (_, i) => ({ name: `p${part}-${i}-${'y'.repeat(16_000)}`, pid: victim, epoch: [Date.now(), i, 'h2'] }));
      t.toNode('h3', globals(id, h2, { op: 'sync', claims, want: false, sid: 1000 + part, more: true }));
    }
    await t.settled('h3', received, 40, before);
    t.assertUnchanged('after 40 unfinished sync parts');
    received = h3.stats.received;
    const dropsMid = drops(world, 'h3');
    // 2000 releases of 16,000-character names nobody ever held, in batches that fit a frame.
    let frames = 0;
    for (let first = 0; first < 2000; first += 50) {
      const messages = Array.from({ length: 50 }, (_, i) => ({ op: 'release', name: `never-${first + i}-${'z'.repeat(16_000)}`, epoch: [Date.now(), first + i, 'h2'], reason: 'normal' }));
      t.toNode('h3', globals(id, h2, { op: 'batch', messages }));
      frames++;
    }
    await t.settled('h3', received, frames, dropsMid);
    t.assertUnchanged('after 2000 releases of never-held names');
    const grown = heap() - heapAtStart;
    console.error(`hostile: heap grew ${(grown / MiB).toFixed(1)} MiB across ~36 MiB of sync parts and ~31 MiB of released names`);
    assert.ok(grown < HEAP_BOUND, `the heap grew ${(grown / MiB).toFixed(1)} MiB (bound ${HEAP_BOUND / MiB} MiB): pending sync parts or tombstones are pinned`);
    assert.ok(drops(world, 'h3') > before, 'the unfinished parts (past their bound) are counted as dropped');
  });
});

describe('replayed signed frames on a cluster with a secret', () => {
  let world: World;
  let id: string;
  let captured: { from: string; frame: string }[];

  before(async () => {
    world = await World.start({ transport: 'amqp', nodes: ['r1', 'r2', 'r3'], amqpUrl: rabbit!.url, secret: 'hostile-test-secret', membershipTimeout: 20_000 });
    id = world.harness.id;
    captured = [];
    // Our own queue on the cluster's fanout: a copy of every broadcast (heartbeats included).
    const { queue } = await channel!.assertQueue('', { exclusive: true, autoDelete: true });
    await channel!.bindQueue(queue, `roster.${id}`, '');
    await channel!.consume(
      queue,
      (message) => {
        if (message === null) return;
        for (const frame of message.content.toString('utf8').split('\n')) {
          const json = frame.startsWith('~') ? frame.slice(44) : frame;
          try {
            const parsed = JSON.parse(json) as { f?: string; k?: string };
            if (parsed.k === 'hb' || parsed.k === 'hello') captured.push({ from: parsed.f ?? '', frame });
          } catch {
            // not ours to judge
          }
        }
      },
      { noAck: true },
    );
  });
  after(async () => {
    await world?.stop();
  });

  test("a live node's old heartbeats and a departed node's heartbeats, replayed: no membership change, counted", async () => {
    const probe = await world.spawn('r1');
    assert.equal(await world.registry('r1').registerName('kept', probe.pid), 'yes');
    // A fourth node that will leave: capture its heartbeats first.
    await world.join('r4');
    await world.waitForMembership(10_000);
    await waitFor(() => captured.filter((c) => c.from === 'r4').length >= 3 && captured.filter((c) => c.from === 'r1').length >= 3, 6 * HEARTBEAT, 'heartbeats to capture');
    const oldR1 = captured.filter((c) => c.from === 'r1').map((c) => c.frame);
    const oldR4 = captured.filter((c) => c.from === 'r4').map((c) => c.frame);
    await world.stopNode('r4');
    await waitFor(() => ['r1', 'r2', 'r3'].every((n) => !world.node(n).nodes().includes('r4')), 2000, 'peers to drop r4 on its leave');
    await waitFor(() => captured.filter((c) => c.from === 'r1').length > oldR1.length, 3 * HEARTBEAT, 'a newer heartbeat of r1');
    const events = world.membershipEvents;
    const before = drops(world, 'r2');
    const received = clusterOf(world.node('r2'))!.stats.received;
    let sent = 0;
    for (let round = 0; round < 5; round++) {
      for (const frame of [...oldR1, ...oldR4]) {
        channel!.publish(`roster.${id}`, '', Buffer.from(frame));
        sent++;
      }
    }
    const r2 = clusterOf(world.node('r2'))!;
    await waitFor(() => r2.stats.received + (drops(world, 'r2') - before) >= received + sent, 10_000, 'r2 to receive the replays');
    // Heartbeats are handled as they arrive (no actor in between): one more heartbeat interval lets any nodeup/nodedown they cause fire.
    const settleAt = Date.now() + HEARTBEAT;
    await waitFor(() => Date.now() >= settleAt || world.membershipEvents !== events, 2 * HEARTBEAT, 'a membership change (or a heartbeat interval)');
    for (const node of ['r1', 'r2', 'r3']) assert.equal(world.node(node).nodes().includes('r4'), false, `${node} took the departed r4 back on a replayed heartbeat`);
    assert.equal(world.membershipEvents, events, 'replayed heartbeats changed membership');
    assert.ok(drops(world, 'r2') >= before + sent - oldR1.length, `replays counted as dropped: ${drops(world, 'r2') - before} of ${sent}`);
    for (const node of ['r1', 'r2', 'r3']) assert.ok(world.registry(node).whereisName('kept')?.equals(probe.pid), `${node} lost 'kept'`);
    assert.ok(world.isAlive(probe.pid));
  });
});

