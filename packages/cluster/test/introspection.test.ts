/**
 * `cluster.snapshotOf(node)` on a private MemoryBroker: a peer's snapshot
 * and this node's own, an observer's (and an observer asking), the
 * failures (`unknown_node` at once, `noconnection` the moment the node is
 * lost and not at the timeout, `timeout` from a silent member), hostile
 * requests and answers dropped and counted (a fake member speaking the
 * envelope format), the per-peer rate limit, and the caps on a process list
 * (10 000 processes, then `maxFrameBytes`); what a peer's cluster layer
 * and registries report in its snapshot, checked (a globals registry's shape,
 * any other registry's as small plain JSON) and counted when malformed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BadArgError, GenServer, Pid, Supervisor, noreply, reply, type GenServer as Behaviour, type NameRegistry, type Node, type NodeSnapshot } from '@roster/core';
import { IntrospectionError, MemoryTransport, type Cluster } from '../src/index.js';
import { EnvelopeCodec, type Envelope } from '../src/internal/envelope.js';
import {
  INTROSPECTION_CHANNEL,
  MAX_PROCESSES,
  MAX_REGISTRIES,
  MAX_REPORT_DEPTH,
  MAX_REPORT_KEYS,
  MAX_REPORT_STRING,
  MAX_REPORT_VALUES,
} from '../src/internal/introspection.js';
import { TestNet, nextEvent, within } from './helpers.js';

const Echo: Behaviour<number, void> = {
  init: () => 0,
  handleCall: (request, _from, state) => reply(request, state),
  handleCast: (_message, state) => noreply(state),
};

const isIntrospectionError =
  (code: string, node?: string) =>
  (error: unknown): boolean =>
    error instanceof IntrospectionError && error.code === code && (node === undefined || error.node === node);

/** A process that never reads its mailbox, with `count` messages in it. */
function stuffed(node: Node, count: number): Pid {
  const pid = node.spawn(async (self) => {
    await self.receive(() => false);
  });
  for (let index = 0; index < count; index++) node.send(pid, index);
  return pid;
}

/**
 * A member of the cluster made of a bare transport and the envelope codec:
 * it says hello and sends heartbeats, never answers anything by itself, and
 * sends whatever the test wants on the introspection channel.
 */
class FakeMember {
  readonly transport: MemoryTransport;
  readonly creation = 'fake0001';
  readonly codec: EnvelopeCodec;
  readonly received: Envelope[] = [];
  readonly #seq = new Map<string, number>();
  #broadcastSeq = 0;
  #waiters: { match: (envelope: Envelope) => boolean; resolve: (envelope: Envelope) => void }[] = [];

  constructor(
    readonly net: TestNet,
    readonly name: string,
  ) {
    this.transport = new MemoryTransport({ broker: net.broker });
    this.codec = new EnvelopeCodec({ cluster: net.id, node: name, creation: this.creation, secret: undefined, maxFrameBytes: 1 << 20 });
    this.transport.on('frame', (frame: string) => {
      let envelope: Envelope;
      try {
        envelope = this.codec.decode(frame);
      } catch {
        return;
      }
      if (envelope.from === name) return;
      this.received.push(envelope);
      for (const waiter of [...this.#waiters]) {
        if (!waiter.match(envelope)) continue;
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(envelope);
      }
    });
  }

  /** Connects and says hello; resolves once every node in `peers` has taken it on. */
  async join(peers: readonly Node[]): Promise<void> {
    await this.transport.connect({ cluster: this.net.id, node: this.name });
    const ups = peers.map((peer) => nextEvent(this.net.cluster(peer), 'nodeup', this.name, 2000));
    this.#broadcast('hello');
    await Promise.all(ups);
  }

  #broadcast(kind: 'hello' | 'hb'): void {
    this.transport.broadcast(this.codec.encode(kind, { a: this.transport.address, s: 0, t: Date.now() }, ++this.#broadcastSeq));
  }

  /** A message on the introspection channel to `to`. */
  send(to: Node, message: unknown): void {
    const seq = (this.#seq.get(to.name) ?? 0) + 1;
    this.#seq.set(to.name, seq);
    const frame = this.codec.encode('ch', { n: INTROSPECTION_CHANNEL, m: message }, seq, JSON.stringify(to.creation));
    this.transport.send(this.net.address(to.name), frame);
  }

  /** The next introspection message that arrives, whose body `match` accepts. */
  next(match: (message: Record<string, unknown>) => boolean, ms = 2000): Promise<Record<string, unknown>> {
    const isOurs = (envelope: Envelope): boolean =>
      envelope.kind === 'ch' && envelope.body['n'] === INTROSPECTION_CHANNEL && match(envelope.body['m'] as Record<string, unknown>);
    return within(
      new Promise<Record<string, unknown>>((resolve) => {
        this.#waiters.push({ match: isOurs, resolve: (envelope) => resolve(envelope.body['m'] as Record<string, unknown>) });
      }),
      'an introspection message',
      ms,
    );
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

describe('snapshotOf', () => {
  let net: TestNet;
  let a: Node;
  let b: Node;
  let watcher: Node;

  before(async () => {
    net = await new TestNet().open();
    [a, b] = (await net.startAll('snap-a', 'snap-b')) as [Node, Node];
    watcher = await net.start('snap-watcher', { role: 'observer' });
    await within(net.broker.idle(), 'membership', 3000);
  });

  after(async () => {
    await net.close();
  });

  test("a peer's snapshot: its processes, supervisors and names, with pids that are its own", async () => {
    const supervisor = await Supervisor.start(b, { children: [Supervisor.worker('echo', Echo, undefined, { name: 'snap-echo' })] }, { name: 'snap-sup' });
    const busy = stuffed(b, 25);
    for (let index = 0; index < 5; index++) await b.call('snap-echo', index);
    const local = b.snapshot();
    const snapshot = await net.cluster(a).snapshotOf('snap-b', { longestMailboxes: 2 });
    assert.equal(snapshot.node, 'snap-b');
    assert.equal(snapshot.processCount, local.processCount);
    assert.equal(snapshot.longestMailboxes.length, 2);
    assert.ok(snapshot.longestMailboxes[0]!.pid instanceof Pid, 'pids arrive as pids');
    assert.ok(snapshot.longestMailboxes[0]!.pid.equals(busy));
    assert.equal(snapshot.longestMailboxes[0]!.mailboxLength, 25);
    assert.equal(snapshot.mailboxMax, 25);
    assert.ok(snapshot.stats.calls >= 5);
    assert.deepEqual(snapshot.stats, b.stats, "its counters as they are (nothing happened on it since)");
    assert.equal(snapshot.supervisors.length, 1);
    assert.ok(snapshot.supervisors[0]!.pid.equals(supervisor));
    assert.deepEqual(snapshot.supervisors[0]!.children.map((child) => [child.id, child.pid?.key]), [['echo', b.whereis('snap-echo')!.key]]);
    assert.deepEqual([...snapshot.registered].sort(), ['snap-echo', 'snap-sup']);
    assert.equal(snapshot.processes, undefined);
    assert.equal(snapshot.truncated, undefined);
    b.exit(busy, 'kill');
    await GenServer.stop(b, supervisor);
  });

  test("calls to another node are all timed, and counted on the caller's node", async () => {
    const server = await GenServer.start(b, Echo, undefined);
    const before = a.stats;
    for (let index = 0; index < 10; index++) assert.equal(await a.call(server, index), index);
    const after = a.stats;
    assert.equal(after.calls - before.calls, 10);
    assert.equal(after.callLatency.count - before.callLatency.count, 10);
    assert.equal(after.callsFailed, before.callsFailed);
    await GenServer.stop(b, server);
  });

  test("a peer's cluster layer and registries come with its snapshot", async () => {
    let hits = 0;
    await b.installRegistry('stub', stubRegistry(() => ({ kind: 'stub', hits: ++hits, nested: { list: [1, 'two', null, true] } })));
    const snapshot = await net.cluster(a).snapshotOf('snap-b');
    assert.deepEqual(snapshot.registries, { stub: { kind: 'stub', hits: 1, nested: { list: [1, 'two', null, true] } } });
    const distribution = snapshot.distribution as Record<string, unknown>;
    assert.equal(distribution['role'], 'member');
    assert.equal(distribution['peers'], b.nodes().length);
    assert.ok((distribution['sent'] as number) > 0 && (distribution['received'] as number) > 0);
    assert.deepEqual(Object.keys(distribution['dropped'] as object).sort(), Object.keys(net.cluster(b).stats.dropped).sort());
    // An observer says so.
    const ofWatcher = await net.cluster(a).snapshotOf('snap-watcher');
    assert.equal((ofWatcher.distribution as Record<string, unknown>)['role'], 'observer');
  });

  test('Cluster.introspect: a copy of the stats, the live peers and the role', () => {
    const cluster = net.cluster(a);
    const report = cluster.introspect();
    assert.equal(report.role, 'member');
    assert.equal(report.peers, a.nodes().length);
    assert.deepEqual(report.dropped, cluster.stats.dropped);
    (report.dropped as Record<string, number>)['malformed'] = 1e6;
    assert.notEqual(cluster.stats.dropped.malformed, 1e6, 'a copy, not the live counters');
    assert.deepEqual(a.snapshot().distribution?.['dropped'], cluster.stats.dropped, "it is the node's own snapshot's distribution");
  });

  test('with processes: every process of the peer', async () => {
    const snapshot = await net.cluster(a).snapshotOf('snap-b', { processes: true });
    assert.deepEqual(
      snapshot.processes?.map((info) => info.pid.key),
      b.processes().map((pid) => pid.key),
    );
    assert.equal(snapshot.truncated, undefined);
  });

  test('this node: answered locally, nothing sent', async () => {
    const sent = net.cluster(a).stats.sent;
    const snapshot = await net.cluster(a).snapshotOf('snap-a');
    assert.equal(snapshot.node, 'snap-a');
    assert.equal(net.cluster(a).stats.sent, sent);
  });

  test('an observer answers, and asks', async () => {
    const ofWatcher = await net.cluster(a).snapshotOf('snap-watcher');
    assert.equal(ofWatcher.node, 'snap-watcher');
    const fromWatcher = await net.cluster(watcher).snapshotOf('snap-b');
    assert.equal(fromWatcher.node, 'snap-b');
  });

  test('unknown_node at once for a node that is not a live member', async () => {
    const started = performance.now();
    await assert.rejects(net.cluster(a).snapshotOf('nobody'), isIntrospectionError('unknown_node', 'nobody'));
    assert.ok(performance.now() - started < 50);
  });

  test('bad arguments are TypeErrors naming them', async () => {
    const cluster = net.cluster(a);
    await assert.rejects(cluster.snapshotOf('', {}), /node must be a non-empty string/);
    await assert.rejects(cluster.snapshotOf('snap-b', { timeout: 0 }), /option timeout must be a number of ms > 0/);
    await assert.rejects(cluster.snapshotOf('snap-b', { timeout: NaN }), /option timeout/);
    await assert.rejects(cluster.snapshotOf('snap-b', { longestMailboxes: -2 }), /option longestMailboxes must be an integer from 0 to 1000, got -2/);
    await assert.rejects(cluster.snapshotOf('snap-b', { processes: 1 as unknown as boolean }), /option processes must be a boolean/);
    await assert.rejects(cluster.snapshotOf('snap-b', { process: true } as never), /unknown option "process"/);
    await assert.rejects(cluster.snapshotOf('snap-a', { longestMailboxes: 5000 }), /longestMailboxes/, 'checked for this node too');
  });
});

describe('snapshotOf: a lost node, a silent one, hostile ones', () => {
  let net: TestNet;
  let a: Node;
  let b: Node;

  before(async () => {
    net = await new TestNet().open();
    [a, b] = (await net.startAll('lost-a', 'lost-b')) as [Node, Node];
  });

  after(async () => {
    await net.close();
  });

  test('a silent member: timeout at the timeout', async () => {
    const fake = new FakeMember(net, 'silent');
    await fake.join([a]);
    const started = performance.now();
    const request = fake.next((message) => message['t'] === 'q');
    await assert.rejects(net.cluster(a).snapshotOf('silent', { timeout: 250 }), isIntrospectionError('timeout', 'silent'));
    const took = performance.now() - started;
    assert.ok(took >= 245 && took < 1000, `took ${took} ms`);
    assert.deepEqual(await request, { t: 'q', i: (await request)['i'], l: 10, p: false });
    await fake.close();
  });

  test('the node crashing mid-request: noconnection at its nodedown, well before the timeout (shipped failure timeout)', async () => {
    const fake = new FakeMember(net, 'doomed');
    await fake.join([a]);
    const cluster = net.cluster(a);
    const started = performance.now();
    const asked = fake.next((message) => message['t'] === 'q');
    const request = cluster.snapshotOf('doomed', { timeout: 30_000 });
    await asked;
    net.broker.crash('doomed');
    await assert.rejects(request, isIntrospectionError('noconnection', 'doomed'));
    const took = performance.now() - started;
    assert.ok(took < cluster.failureTimeout + 2 * cluster.heartbeatInterval, `took ${took} ms`);
  });

  test('a node leaving mid-request: noconnection at once', async () => {
    const leaver = await net.start('leaver');
    await within(net.broker.idle(), 'membership', 3000);
    net.broker.partition(['leaver'], ['lost-a']);
    const request = net.cluster(a).snapshotOf('leaver', { timeout: 30_000 });
    const started = performance.now();
    net.broker.heal();
    await leaver.stop();
    await assert.rejects(request, isIntrospectionError('noconnection', 'leaver'));
    assert.ok(performance.now() - started < 1000);
  });

  test('malformed answers are dropped and counted, and the request still takes the good one', async () => {
    const fake = new FakeMember(net, 'liar');
    await fake.join([a]);
    const cluster = net.cluster(a);
    const asked = fake.next((message) => message['t'] === 'q');
    const request = cluster.snapshotOf('liar', { timeout: 5000 });
    const { i: id } = await asked;
    const good = validSnapshot('liar', fake.creation);
    const own = new Pid('liar', fake.creation, 7);
    const foreign = new Pid('lost-b', b.creation, 1);
    const info = { pid: own, kind: 'process', mailboxLength: 0, messagesIn: 0, trapExit: false, links: 0, monitors: 0, monitoredBy: 0, startedAt: 1 };
    const bad: unknown[] = [
      'not an object',
      { t: 'a' }, // no id
      { t: 'a', i: 0, s: good },
      { t: 'x', i: id },
      { t: 'a', i: id }, // no snapshot
      { t: 'a', i: id, s: { ...good, node: 'lost-b' } }, // someone else's
      { t: 'a', i: id, s: { ...good, processCount: -1 } },
      { t: 'a', i: id, s: { ...good, processCount: 1.5 } },
      { t: 'a', i: id, s: { ...good, memory: { ...good.memory, rss: 'big' } } },
      { t: 'a', i: id, s: { ...good, eventLoopDelay: { ...good.eventLoopDelay, p99: -3 } } },
      { t: 'a', i: id, s: { ...good, longestMailboxes: [{ ...info, pid: foreign }] } }, // another node's process
      { t: 'a', i: id, s: { ...good, longestMailboxes: [{ ...info, kind: 'daemon' }] } },
      { t: 'a', i: id, s: { ...good, longestMailboxes: [{ ...info, trapExit: 'no' }] } },
      { t: 'a', i: id, s: { ...good, stats: { ...good.stats, callLatency: { ...good.stats.callLatency, count: 99 } } } },
      { t: 'a', i: id, s: { ...good, stats: { ...good.stats, callLatency: { ...good.stats.callLatency, bounds: [1, 2, 3] } } } },
      { t: 'a', i: id, s: { ...good, supervisors: [{ pid: own, strategy: 'one_for_most', restarts: 0, recentRestarts: [], children: [] }] } },
      { t: 'a', i: id, s: { ...good, supervisors: [{ pid: own, strategy: 'one_for_one', restarts: 0, recentRestarts: [], children: [{ id: 'c', pid: foreign, type: 'worker', restart: 'permanent' }] }] } },
      { t: 'a', i: id, s: { ...good, registered: [7] } },
      { t: 'a', i: id, s: { ...good, truncated: true } }, // truncated without a list
      { t: 'e', i: id, c: 'because' },
      // The cluster layer's report.
      { t: 'a', i: id, s: { ...good, distribution: 'lots' } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, sent: -1 } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, received: 2 ** 60 } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, peers: 0.5 } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, role: 'king' } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, dropped: { ...goodDistribution.dropped, malformed: 'many' } } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, dropped: withoutKey(goodDistribution.dropped, 'bad_signature') } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, dropped: { ...goodDistribution.dropped, 'Not A Reason': 1 } } } },
      { t: 'a', i: id, s: { ...good, distribution: { ...goodDistribution, dropped: { ...goodDistribution.dropped, ...manyKeys(30, 0) } } } },
      // The registries' reports.
      { t: 'a', i: id, s: { ...good, registries: 'none' } },
      { t: 'a', i: id, s: { ...good, registries: { r: 7 } } },
      { t: 'a', i: id, s: { ...good, registries: { '': {} } } },
      { t: 'a', i: id, s: { ...good, registries: manyKeys(MAX_REGISTRIES + 1, {}) } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, registrations: 1.5 } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, conflicts: -2 } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, names: undefined } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, drops: { forged: -1 } } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, registerLatency: { ...goodGlobals.registerLatency, count: 5 } } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, registerLatency: { ...goodGlobals.registerLatency, bounds: [1] } } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, members: [7] } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, members: 'liar' } } } },
      { t: 'a', i: id, s: { ...good, registries: { g: { ...goodGlobals, members: [''] } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: nested(MAX_REPORT_DEPTH) } } }, // one level too deep
      { t: 'a', i: id, s: { ...good, registries: { other: manyKeys(MAX_REPORT_KEYS + 1, 1) } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { list: new Array<number>(MAX_REPORT_KEYS + 1).fill(0) } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: spread(MAX_REPORT_VALUES) } } }, // many small objects: too many values in all
      { t: 'a', i: id, s: { ...good, registries: { other: { s: 'x'.repeat(MAX_REPORT_STRING + 1) } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { ['k'.repeat(MAX_REPORT_STRING + 1)]: 1 } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { pid: own } } } }, // a pid is not plain JSON
      { t: 'a', i: id, s: { ...good, registries: { other: { at: new Date(0) } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { n: Number.NaN } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { n: 2n } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: { u: undefined } } } },
      { t: 'a', i: id, s: { ...good, registries: { other: [1, 2] } } },
    ];
    const before = cluster.stats.dropped.malformed;
    for (const message of bad) fake.send(a, message);
    await within(net.broker.idle(), 'the answers', 2000);
    assert.equal(cluster.stats.dropped.malformed - before, bad.length);
    // Extra fields are left behind; the checked ones come through.
    // As deep as allowed (the registry's own object, and objects below it, MAX_REPORT_DEPTH in all), the longest string.
    const plain = { ...nested(MAX_REPORT_DEPTH - 1), kind: 'mine', s: 'x'.repeat(MAX_REPORT_STRING), list: [1, 'a', null, false] };
    fake.send(a, {
      t: 'a',
      i: id,
      s: {
        ...good,
        longestMailboxes: [info],
        extra: { lots: 'of it' },
        distribution: { ...goodDistribution, dropped: { ...goodDistribution.dropped, newer_reason: 2 }, extra: 1 },
        registries: { g: { ...goodGlobals, extra: 'left behind' }, plain },
      },
    });
    const snapshot = await within(request, 'the good answer', 2000);
    assert.equal(cluster.stats.dropped.malformed - before, bad.length);
    assert.equal(snapshot.node, 'liar');
    assert.ok(!('extra' in snapshot));
    assert.ok(snapshot.longestMailboxes[0]!.pid.equals(own));
    assert.deepEqual(snapshot.distribution, { ...goodDistribution, dropped: { ...goodDistribution.dropped, newer_reason: 2 } });
    assert.deepEqual(snapshot.registries, { g: goodGlobals, plain });
    // A second answer to a settled request is ignored (not counted).
    fake.send(a, { t: 'a', i: id, s: good });
    await within(net.broker.idle(), 'the late answer', 2000);
    assert.equal(cluster.stats.dropped.malformed - before, bad.length);
    await fake.close();
  });

  test('an answer from another incarnation or a node not asked settles nothing', async () => {
    const fake = new FakeMember(net, 'asked');
    const other = new FakeMember(net, 'meddler');
    await fake.join([a]);
    await other.join([a]);
    const asked = fake.next((message) => message['t'] === 'q');
    const request = net.cluster(a).snapshotOf('asked', { timeout: 400 });
    const { i: id } = await asked;
    other.send(a, { t: 'a', i: id, s: validSnapshot('meddler', other.creation) });
    await assert.rejects(request, isIntrospectionError('timeout'));
    await fake.close();
    await other.close();
  });

  test('malformed requests are dropped and counted; a good one is answered', async () => {
    const fake = new FakeMember(net, 'asker');
    await fake.join([b]);
    const cluster = net.cluster(b);
    stuffed(b, 1);
    const before = cluster.stats.dropped.malformed;
    const bad: unknown[] = [
      { t: 'q', l: 10, p: false }, // no id
      { t: 'q', i: -1, l: 10, p: false },
      { t: 'q', i: 1, l: -1, p: false },
      { t: 'q', i: 1, l: 1001, p: false },
      { t: 'q', i: 1, l: 10, p: 'yes' },
      { t: 'q', i: 1 },
      null,
      [1, 2],
    ];
    for (const message of bad) fake.send(b, message);
    await within(net.broker.idle(), 'the requests', 2000);
    assert.equal(cluster.stats.dropped.malformed - before, bad.length);
    assert.equal(fake.received.filter((envelope) => envelope.kind === 'ch').length, 0, 'none answered');
    const answer = fake.next((message) => message['t'] === 'a' && message['i'] === 42);
    fake.send(b, { t: 'q', i: 42, l: 1, p: false });
    const { s } = await answer;
    assert.equal((s as NodeSnapshot).node, 'lost-b');
    assert.equal((s as NodeSnapshot).longestMailboxes.length, 1);
    await fake.close();
  });

  test('requests beyond the rate limit (bursts of 20 per asking node) are dropped and counted', async () => {
    const fake = new FakeMember(net, 'flooder');
    await fake.join([b]);
    const cluster = net.cluster(b);
    const before = { limited: cluster.stats.dropped.rate_limited, malformed: cluster.stats.dropped.malformed };
    for (let index = 1; index <= 50; index++) fake.send(b, { t: 'q', i: index, l: 0, p: false });
    await within(net.broker.idle(), 'the flood', 2000);
    const answered = fake.received.filter((envelope) => envelope.kind === 'ch' && (envelope.body['m'] as { t: string }).t === 'a').length;
    const limited = cluster.stats.dropped.rate_limited - before.limited;
    assert.equal(answered + limited, 50);
    assert.ok(answered >= 20 && answered <= 22, `answered ${answered}`);
    assert.equal(cluster.stats.dropped.malformed, before.malformed);
    // A request for the whole process list costs 5: a fresh asker gets 4 of them in a burst.
    const lister = new FakeMember(net, 'lister');
    await lister.join([b]);
    const limitedBefore = cluster.stats.dropped.rate_limited;
    for (let index = 1; index <= 8; index++) lister.send(b, { t: 'q', i: index, l: 0, p: true });
    await within(net.broker.idle(), 'the list requests', 2000);
    const lists = lister.received.filter((envelope) => envelope.kind === 'ch' && (envelope.body['m'] as { t: string }).t === 'a').length;
    assert.equal(lists, 4);
    assert.equal(cluster.stats.dropped.rate_limited - limitedBefore, 4);
    await lister.close();
    // Another node has a bucket of its own.
    assert.equal((await net.cluster(a).snapshotOf('lost-b')).node, 'lost-b');
    await fake.close();
  });
});

describe('snapshotOf: a process list past the caps', () => {
  test(`more than ${MAX_PROCESSES} processes: the ${MAX_PROCESSES} with the longest mailboxes, truncated`, async () => {
    // Frames big enough for 10 000 (the default 1 MiB holds about 6 500: the next test).
    const net = await new TestNet({ maxFrameBytes: 4 * 1024 * 1024 }).open();
    try {
      const [a, b] = (await net.startAll('many-a', 'many-b')) as [Node, Node];
      const busy = [stuffed(b, 3), stuffed(b, 1)];
      const idle = Array.from({ length: MAX_PROCESSES + 200 }, () => stuffed(b, 0));
      busy.push(stuffed(b, 2));
      const snapshot = await net.cluster(a).snapshotOf('many-b', { processes: true, timeout: 20_000 });
      assert.equal(snapshot.truncated, true);
      assert.equal(snapshot.processes!.length, MAX_PROCESSES);
      assert.equal(snapshot.processCount, b.processes().length);
      assert.deepEqual(
        snapshot.processes!.slice(0, 3).map((info) => [info.pid.key, info.mailboxLength]),
        [
          [busy[0]!.key, 3],
          [busy[2]!.key, 2],
          [busy[1]!.key, 1],
        ],
      );
      // Among equals, oldest first: the first idle ones are kept, the last ones left out.
      assert.ok(snapshot.processes![3]!.pid.equals(idle[0]!));
      assert.ok(!snapshot.processes!.some((info) => info.pid.equals(idle[idle.length - 1]!)));
      // This node's own snapshot is not capped.
      assert.equal(b.snapshot({ processes: true }).processes!.length, b.processes().length);
    } finally {
      await net.close();
    }
  });

  test('a list too big for one frame is cut to fit (maxFrameBytes)', async () => {
    const net = await new TestNet({ maxFrameBytes: 64 * 1024 }).open();
    try {
      const [a, b] = (await net.startAll('frame-a', 'frame-b')) as [Node, Node];
      for (let index = 0; index < 3000; index++) stuffed(b, index % 7);
      const cluster: Cluster = net.cluster(a);
      const dropped = { ...cluster.stats.dropped };
      const snapshot = await cluster.snapshotOf('frame-b', { processes: true });
      assert.equal(snapshot.truncated, true);
      const kept = snapshot.processes!.length;
      assert.ok(kept > 100 && kept < 3000, `kept ${kept}`);
      assert.ok(snapshot.processes!.slice(0, 10).every((info) => info.mailboxLength === 6), 'the longest mailboxes first');
      assert.deepEqual(cluster.stats.dropped, dropped, 'nothing oversized was sent');
      // Without the list it fits as it is.
      const bare = await cluster.snapshotOf('frame-b');
      assert.equal(bare.truncated, undefined);
    } finally {
      await net.close();
    }
  });
});

/** A well-formed snapshot of the fake member `node`. */
/** A registry that holds nothing, with the `introspect` given. */
function stubRegistry(introspect: () => Readonly<Record<string, unknown>>): NameRegistry {
  return {
    registerName: async () => 'no',
    unregisterName: async () => undefined,
    whereisName: () => undefined,
    send: () => {
      throw new BadArgError('nobody holds it');
    },
    registered: () => [],
    introspect,
  };
}

const BOUNDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** What a cluster layer reports (`Cluster.introspect()`), as a well-behaved peer sends it. */
const goodDistribution = {
  sent: 10,
  received: 12,
  dropped: {
    malformed: 0,
    oversized: 0,
    version: 0,
    foreign_cluster: 0,
    bad_signature: 3,
    unknown_peer: 0,
    misrouted: 0,
    replayed: 0,
    clock_skew: 0,
    no_channel: 0,
    forged: 0,
    no_route: 0,
    rate_limited: 0,
  },
  peers: 2,
  role: 'member',
};

/** What a globals registry reports (`GlobalsRegistry.introspect()`), as a well-behaved peer sends it. */
const goodGlobals = {
  kind: 'globals',
  dropped: 1,
  drops: { malformed: 1, clock_skew: 0, forged: 0, stale: 0, oversized: 0 },
  conflicts: 0,
  listenerErrors: 0,
  registrations: 4,
  unregistrations: 1,
  registerLatency: { bounds: BOUNDS, counts: [0, 0, 0, 4, ...new Array<number>(13).fill(0)], count: 4, sum: 3.2 },
  names: 9,
  members: ['liar', 'lost-a'],
};

function withoutKey<T extends object>(value: T, key: keyof T): Partial<T> {
  const copy = { ...value };
  delete copy[key];
  return copy;
}

/** `{ k0: value, k1: value, … }` with `count` keys. */
function manyKeys<V>(count: number, value: V): Record<string, V> {
  return Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, value]));
}

/** Objects nested `levels` deep below the registry's own object (which is level 1). */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let level = 1; level < levels; level++) value = { down: value };
  return { down: value };
}

/** Many small objects, each within the key cap, that together hold more than `values` values. */
function spread(values: number): Record<string, unknown> {
  const groups = Math.ceil(values / 20) + 1;
  return Object.fromEntries(Array.from({ length: Math.min(groups, MAX_REPORT_KEYS) }, (_, index) => [`g${index}`, manyKeys(20, index)]));
}

function validSnapshot(node: string, _creation: string): NodeSnapshot {
  return {
    node,
    at: Date.now(),
    processCount: 1,
    stats: {
      spawned: 1,
      exited: 0,
      messagesIn: 0,
      messagesOut: 0,
      calls: 1,
      callsFailed: 0,
      callLatency: { bounds: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000], counts: [1, ...new Array<number>(16).fill(0)], count: 1, sum: 0.05 },
    },
    mailboxMax: 0,
    longestMailboxes: [],
    memory: { rss: 1, heapUsed: 1, heapTotal: 1, external: 0 },
    eventLoopDelay: { mean: 0, p50: 0, p99: 0, max: 0 },
    supervisors: [],
    registered: [],
    registries: {},
  };
}
