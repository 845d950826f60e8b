/**
 * A node OS process restarted under its name over RabbitMQ (issue 7 point 1,
 * DESIGN.md §3.1 "Joining"), at the shipped default timings (heartbeat 1 s,
 * failure timeout 3 s, anti-entropy 30 s: nothing is overridden).
 *
 * Two nodes in this process (x, y) and two node processes (p1, p2), all
 * holding names. p1 is SIGKILLed: its names go on every node within the
 * failure timeout (plus a heartbeat or so of detection jitter). It is then
 * started again under its name, and at the very instant its `Node.start`
 * resolves (a snapshot the child takes synchronously then) it must already
 * resolve every name the others hold — no sync(), no waiting — and none of
 * the names its dead incarnation held.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { canonicalName, type Name, type Pid } from '@roster/core';
import { pidOf, startNodeProcesses, startRabbitMQ, type NodeProcess, type NodeProcessResults, type RabbitMQ } from '@roster/testkit';
import { World, nodeEvent, unregisteredEvent, waitFor, within } from './globals-helpers.js';

const HEARTBEAT = 1000;
const FAILURE_TIMEOUT = 3000;
const GLOBALS = [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry' }] as const;

let rabbit: RabbitMQ | undefined;

before(async () => {
  rabbit = await startRabbitMQ();
});
after(async () => {
  await rabbit?.stop();
});

type Snapshot = NodeProcessResults['startSnapshot'];

function asMap(snapshot: Snapshot): Map<string, string | null> {
  return new Map(snapshot.map(({ name, pid }) => [canonicalName(name as Name), pid === null ? null : pidOf(pid).key]));
}

/** Polls a node process until `predicate` holds for its `whereis` of `name` (nothing in the child emits to us). Bounded. */
async function childWhereis(child: NodeProcess, name: string, predicate: (pid: Pid | undefined) => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const fields = await child.request({ cmd: 'whereis', key: 'globals', name });
    const pid = fields === null ? undefined : pidOf(fields);
    if (predicate(pid)) return;
    if (Date.now() > deadline) throw new Error(`${child.name}: ${what}: whereis(${name}) is ${pid?.key ?? 'nothing'} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('globals over RabbitMQ: a SIGKILLed node process restarted under its name', () => {
  let world: World;
  let children: NodeProcess[] = [];

  before(async () => {
    world = await World.start({ transport: 'amqp', nodes: ['x', 'y'], amqpUrl: rabbit!.url, membershipTimeout: 20_000 });
  });
  after(async () => {
    await Promise.all(children.map((child) => child.stop(3000)));
    await world?.stop();
  });

  test('knows every name when Node.start resolves; the dead incarnation held none after the failure timeout', async () => {
    const spawnChildren = (names: string[]): Promise<NodeProcess[]> =>
      startNodeProcesses({ count: names.length, names, amqpUrl: rabbit!.url, clusterId: world.harness.id, registries: GLOBALS });
    const [p1, p2] = (children = await spawnChildren(['p1', 'p2'])) as [NodeProcess, NodeProcess];
    await world.harness.waitForMembership({ also: ['p1', 'p2'], timeout: 20_000 });
    await Promise.all([p1.waitForPeer('p2', 20_000), p2.waitForPeer('p1', 20_000)]);
    for (const child of [p1, p2]) for (const peer of ['x', 'y']) await child.waitForPeer(peer, 20_000);

    // Names everywhere: two held by x, one by y, two by p2, three by p1 (the one to die).
    const held = new Map<string, Pid>();
    for (const [at, names] of [['x', ['x-a', 'x-b']], ['y', ['y-a']]] as const) {
      const probe = await world.spawn(at);
      for (const name of names) {
        assert.equal(await world.registry(at).registerName(name, probe.pid), 'yes');
        held.set(name, probe.pid);
      }
    }
    for (const name of ['p2-a', 'p2-b']) {
      assert.equal(await p2.request({ cmd: 'register', key: 'globals', name }), 'yes');
      const fields = await p2.request({ cmd: 'whereis', key: 'globals', name });
      held.set(name, pidOf(fields!));
    }
    const doomed = ['p1-a', 'p1-b', 'p1-c'];
    for (const name of doomed) assert.equal(await p1.request({ cmd: 'register', key: 'globals', name }), 'yes');
    // Baseline: every node resolves every name (bounded: the commits are on their way; no sync()).
    for (const name of [...held.keys(), ...doomed]) {
      for (const node of ['x', 'y']) await waitFor(() => world.registry(node).whereisName(name) !== undefined, 2000, `${node} to learn ${name}`);
      await childWhereis(p2, name, (pid) => pid !== undefined, 2000, 'the baseline');
    }

    // SIGKILL p1: nobody hears a word. Its names go everywhere within the failure timeout.
    const gone = ['x', 'y'].flatMap((node) =>
      doomed.map((name) => unregisteredEvent(world.registry(node), name, FAILURE_TIMEOUT + 3 * HEARTBEAT, `${node}: ${name} of the SIGKILLed p1 to go`)),
    );
    const killedAt = Date.now();
    p1.kill('SIGKILL');
    await p1.exited;
    await Promise.all(gone);
    const took = Date.now() - killedAt;
    assert.ok(took <= FAILURE_TIMEOUT + 2 * HEARTBEAT, `p1's names went after ${took} ms`);
    for (const name of doomed) await childWhereis(p2, name, (pid) => pid === undefined, HEARTBEAT * 2, `${name} of the dead p1 to go`);
    // Everyone has dropped the old incarnation (else the new one would be refused its name).
    await Promise.all(['x', 'y'].map((node) => nodeEvent(world.node(node), 'nodedown', 'p1', () => !world.node(node).nodes().includes('p1'), FAILURE_TIMEOUT * 3)));
    await waitFor(() => !p2.peers.has('p1'), FAILURE_TIMEOUT * 3, 'p2 to drop p1');

    // p1 again, under its name: when its Node.start resolves it knows every name the others hold.
    const [again] = await spawnChildren(['p1']);
    children.push(again!);
    const known = asMap(await again!.request({ cmd: 'startSnapshot', key: 'globals' }));
    const missing = [...held].filter(([name, pid]) => known.get(canonicalName(name)) !== pid.key);
    assert.deepEqual(
      missing.map(([name, pid]) => `${name} -> ${pid.key} (knew ${known.get(canonicalName(name)) ?? 'nothing'})`),
      [],
      `the restarted p1 did not know these names when Node.start resolved (it knew [${[...known.keys()].join(', ')}])`,
    );
    for (const name of doomed) assert.equal(known.has(canonicalName(name)), false, `the restarted p1 resolved ${name} of its dead incarnation`);
    // And it answers by name at once: a whereis straight after start, no waiting.
    for (const [name, pid] of held) {
      const fields = await again!.request({ cmd: 'whereis', key: 'globals', name });
      assert.equal(fields === null ? undefined : pidOf(fields).key, pid.key, `the restarted p1: whereis(${name})`);
    }
    // Nobody resolves the dead incarnation's names, and the new one can take them again.
    for (const name of doomed) {
      for (const node of ['x', 'y']) assert.equal(world.registry(node).whereisName(name), undefined, `${node} still resolves ${name}`);
      assert.equal(await p2.request({ cmd: 'whereis', key: 'globals', name }), null, `p2 still resolves ${name}`);
    }
    await within(
      Promise.all(['x', 'y'].map((node) => nodeEvent(world.node(node), 'nodeup', 'p1', () => world.node(node).nodes().includes('p1'), 10_000))),
      11_000,
      'x and y to see the new p1',
    );
    assert.equal(await again!.request({ cmd: 'register', key: 'globals', name: 'p1-a' }), 'yes', 'the new p1 takes back a name of its dead incarnation');
  });
});
