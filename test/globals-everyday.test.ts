/**
 * The globals registry through an operator's ordinary day (DESIGN.md §3.1),
 * one test per promise, at the shipped default timings (heartbeat 1 s,
 * failure timeout 3 s, anti-entropy every 30 s) and without `sync()`:
 * joins and restarts, a restarting registry actor, a listener that throws,
 * a registry down for good, frames lost on a link, read-your-writes,
 * unregistering from any node, and a one-link cut among three nodes.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { GenServer, Node, reply, via, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, clusterOf } from '@roster/cluster';
import { GlobalsRegistry, type GlobalsRegistryOptions } from '@roster/globals';
import { within } from '@roster/testkit';

const running: Node[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.stop()));
});

async function start(broker: MemoryBroker, name: string, options: GlobalsRegistryOptions = {}, transport = new MemoryTransport({ broker })): Promise<Node> {
  const node = await Node.start({
    name,
    logLevel: 'silent',
    cluster: { transport },
    registries: { globals: new GlobalsRegistry(options) },
  });
  running.push(node);
  return node;
}

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');

/**
 * The carrier of a node of an older roster, as far as the registry's wire
 * goes: it never says in a sync that it reads packed batches, never hears
 * that others do (so it sends none), and drops any it is sent (an older
 * node's registry refuses them as malformed).
 */
class OlderRosterTransport extends MemoryTransport {
  packedDropped = 0;

  override emit(event: 'up' | 'down' | 'frame', ...args: unknown[]): boolean {
    if (event === 'frame' && String(args[0]).includes('"op":"packed"')) {
      this.packedDropped++;
      return false;
    }
    const emit = super.emit as (event: string, ...args: unknown[]) => boolean;
    return event === 'frame' ? emit.call(this, event, String(args[0]).replace(',"packed":true', '')) : emit.call(this, event, ...args);
  }

  override send(address: string, frame: string): void {
    super.send(address, frame.replace(',"packed":true', ''));
  }

  override broadcast(frame: string): void {
    super.broadcast(frame.replace(',"packed":true', ''));
  }
}

/** Counts the frames `transport` receives that `matches`. */
function counted(transport: MemoryTransport, matches: (frame: string) => boolean): { readonly count: number } {
  const counter = { count: 0 };
  transport.on('frame', (frame) => {
    if (matches(frame)) counter.count++;
  });
  return counter;
}

/** Whether `frame` is a packed registry batch holding a run of acks (entry code 9). */
function holdsAckRun(frame: string): boolean {
  const body = (JSON.parse(frame) as { b?: { j?: { op?: string; m?: unknown[][] } } }).b?.j;
  return body?.op === 'packed' && (body.m ?? []).some((entry) => entry[0] === 9);
}

/**
 * The carrier of a node of the previous roster, which reads packed batches
 * but not runs of acks: its syncs never say `ackRuns`, and it drops a packed
 * frame holding a run as its decoder would (an unknown entry code).
 */
class PreviousRosterTransport extends MemoryTransport {
  ackRunsDropped = 0;

  override emit(event: 'up' | 'down' | 'frame', ...args: unknown[]): boolean {
    if (event === 'frame' && holdsAckRun(String(args[0]))) {
      this.ackRunsDropped++;
      return false;
    }
    const emit = super.emit as (event: string, ...args: unknown[]) => boolean;
    return emit.call(this, event, ...args);
  }

  override send(address: string, frame: string): void {
    super.send(address, frame.replace(',"ackRuns":true', ''));
  }
}

/** A process that waits until told to stop. */
function idle(node: Node): Pid {
  return node.spawn(async (self) => {
    await self.receive();
  });
}

/** Resolves when `node` sees `event` for `peer`. */
function membership(node: Node, event: 'nodeup' | 'nodedown', peer: string, ms: number): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const listener = (name: string): void => {
        if (name !== peer) return;
        node.off(event, listener);
        resolve();
      };
      node.on(event, listener);
    }),
    `${node.name}: ${event} ${peer}`,
    ms,
  );
}

/** Resolves when `node`'s registry stops resolving `name`. */
function gone(node: Node, name: string, ms: number): Promise<void> {
  if (globals(node).whereisName(name) === undefined) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const listener = (unregistered: unknown): void => {
        if (unregistered !== name || globals(node).whereisName(name) !== undefined) return;
        globals(node).off('unregistered', listener);
        resolve();
      };
      globals(node).on('unregistered', listener);
    }),
    `${node.name}: ${name} gone`,
    ms,
  );
}

const Echo: GenServer<null, null, string> = {
  init: () => null,
  handleCall: (request) => reply(request, null),
};

describe('globals in everyday operation (shipped defaults, no sync())', () => {
  test('a node that joins a running cluster knows every name when Node.start resolves', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const names = Array.from({ length: 50 }, (_, i) => `svc-${i}`);
    const holders = new Map<string, Pid>();
    for (const [i, name] of names.entries()) {
      const owner = i % 2 === 0 ? a : b;
      const pid = idle(owner);
      holders.set(name, pid);
      assert.equal(await globals(owner).registerName(name, pid), 'yes');
    }
    const c = await start(broker, 'c');
    for (const name of names) assert.ok(globals(c).whereisName(name)?.equals(holders.get(name)!), `c resolves ${name} at once`);
    assert.equal(globals(c).registered().length, names.length);
    assert.doesNotThrow(() => c.send(via('globals', 'svc-1'), 'hello'));
  });

  test('a crashed node restarted under its name knows every name when Node.start resolves', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const pid = idle(a);
    assert.equal(await globals(a).registerName('kept', pid), 'yes');
    const held = idle(b);
    assert.equal(await globals(b).registerName('lost-with-b', held), 'yes');
    const down = membership(a, 'nodedown', 'b', 10_000);
    broker.crash('b');
    await down;
    assert.equal(globals(a).whereisName('lost-with-b'), undefined, "the crashed node's names are gone");
    const again = await start(broker, 'b');
    assert.ok(globals(again).whereisName('kept')?.equals(pid), 'the restarted node resolves the name at once');
  });

  test('names sent by peers before the registry attached are not lost (the cluster holds early frames)', async () => {
    const broker = new MemoryBroker({ faults: { delayMs: [20, 40] } });
    const a = await start(broker, 'a');
    const pid = idle(a);
    assert.equal(await globals(a).registerName('early', pid), 'yes');
    const b = await start(broker, 'b');
    assert.ok(globals(b).whereisName('early')?.equals(pid));
    assert.equal(globals(b).stats.dropped, 0);
  });

  test('a restarted registry actor keeps every name and learns what arrived while it restarted', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const pb = idle(b);
    assert.equal(await globals(b).registerName('before', pb), 'yes');
    const server = a.whereis(globals(a).serverName);
    assert.ok(server !== undefined, 'the registry actor is registered locally');
    a.exit(server, 'kill');
    // No blind window: the names it knew stay, and a request made before the restart waits for it.
    assert.ok(globals(a).whereisName('before')?.equals(pb));
    const own = idle(a);
    assert.equal(await globals(a).registerName('right-after-the-crash', own), 'yes');
    const later = idle(b);
    assert.equal(await globals(b).registerName('during', later), 'yes');
    assert.ok(globals(a).whereisName('during')?.equals(later), 'a commit sent while it restarted reached the new actor');
    const restarted = a.whereis(globals(a).serverName);
    assert.ok(restarted !== undefined && !restarted.equals(server), 'a new actor runs');
  });

  test('a throwing event listener never crashes the registry', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    for (const event of ['registered', 'unregistered'] as const) {
      globals(b).on(event, () => {
        throw new Error(`listener of ${event} fails`);
      });
    }
    const server = b.whereis(globals(b).serverName);
    for (let i = 0; i < 15; i++) {
      const pid = idle(a);
      assert.equal(await globals(a).registerName(`n${i}`, pid), 'yes');
      await globals(a).unregisterName(`n${i}`);
    }
    assert.ok(b.whereis(globals(b).serverName)?.equals(server!), 'the same registry actor still runs');
    assert.ok(globals(b).stats.listenerErrors >= 30);
    const pid = idle(b);
    assert.equal(await globals(b).registerName('still-works', pid), 'yes');
  });

  test('a node whose registry is down for good stops counting as a voter', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const c = await start(broker, 'c');
    const held = idle(b);
    assert.equal(await globals(b).registerName('held-by-b', held), 'yes');
    // Exhaust the registry supervisor's intensity (10 restarts in 10 s).
    for (let i = 0; i < 12; i++) {
      const server = b.whereis(globals(b).serverName);
      if (server === undefined) break;
      b.exit(server, 'kill');
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await within(
      (async () => {
        while (globals(a).members().includes('b') || globals(c).members().includes('b')) await new Promise((r) => setTimeout(r, 10));
      })(),
      'peers drop b from the voters',
      5000,
    );
    assert.equal(globals(a).whereisName('held-by-b'), undefined, "its names are gone from the peers");
    const pid = idle(a);
    assert.equal(await globals(a).registerName('without-b', pid), 'yes', 'registrations no longer wait for b');
    assert.ok(globals(c).whereisName('without-b')?.equals(pid));
    assert.ok(b.nodes().includes('a'), 'b is still a member of the cluster');
  });

  test('a release lost on a link is repaired within a heartbeat of the link working again', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const pid = idle(a);
    assert.equal(await globals(a).registerName('lost-release', pid), 'yes');
    assert.ok(globals(b).whereisName('lost-release')?.equals(pid));
    broker.partition(['a'], ['b']);
    a.exit(pid, 'kill');
    await within(new Promise((resolve) => setTimeout(resolve, 1500)), 'a short cut', 2000);
    assert.ok(b.nodes().includes('a'), 'the cut was shorter than the failure timeout');
    assert.ok(globals(b).whereisName('lost-release') !== undefined, 'b has not heard the release');
    broker.heal();
    const healedAt = Date.now();
    await gone(b, 'lost-release', 2500);
    assert.ok(Date.now() - healedAt < 2500);
    assert.ok(b.nodes().includes('a'), 'no nodedown was needed');
  });

  test('read-your-writes: when registerName resolves yes every member resolves the name; when unregisterName resolves none does', async () => {
    const broker = new MemoryBroker({ faults: { delayMs: [5, 15] } });
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const c = await start(broker, 'c');
    for (let i = 0; i < 5; i++) {
      const pid = await GenServer.start(a, Echo, null, { name: via('globals', `echo-${i}`) });
      for (const node of [b, c]) assert.ok(globals(node).whereisName(`echo-${i}`)?.equals(pid), `${node.name} resolves echo-${i} at once`);
      assert.equal(await c.call(via('globals', `echo-${i}`), 'ping', { timeout: 1000 }), 'ping');
      await globals(a).unregisterName(`echo-${i}`);
      for (const node of [a, b, c]) assert.equal(globals(node).whereisName(`echo-${i}`), undefined, `${node.name}: gone when unregisterName resolves`);
      const again = idle(c);
      assert.equal(await globals(c).registerName(`echo-${i}`, again), 'yes', 'and free for another node at once');
    }
  });

  test('long names registered at once, more than one frame holds: every one yes and resolved everywhere, then released everywhere', async () => {
    // 100 names of 15,000 characters batched in one turn are ~1.5 MB, past the 1 MiB frame: the batch must split, not fail.
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const c = await start(broker, 'c');
    const names = Array.from({ length: 100 }, (_, i) => `${i}-${'n'.repeat(15_000)}`);
    const pids = names.map(() => idle(a));
    const answers = await Promise.all(names.map((name, i) => globals(a).registerName(name, pids[i]!)));
    assert.deepEqual(new Set(answers), new Set(['yes']));
    for (const node of [b, c]) {
      const missing = names.filter((name, i) => globals(node).whereisName(name)?.equals(pids[i]!) !== true).length;
      assert.equal(missing, 0, `${node.name} resolves every long name when registerName resolves`);
    }
    await Promise.all(names.map((name) => globals(a).unregisterName(name)));
    for (const node of [a, b, c]) assert.equal(names.filter((name) => globals(node).whereisName(name) !== undefined).length, 0, `${node.name}: none left`);
  });

  test('a rolling upgrade: nodes that read packed batches send an older node only the tagged form, and every registration goes through', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const bTransport = new MemoryTransport({ broker });
    const packedAtB = counted(bTransport, (frame) => frame.includes('"op":"packed"'));
    const b = await start(broker, 'b', {}, bTransport);
    const older = new OlderRosterTransport({ broker });
    const c = await start(broker, 'c', {}, older);
    const register = (node: Node, prefix: string): Promise<('yes' | 'no')[]> =>
      Promise.all(Array.from({ length: 200 }, (_, i) => globals(node).registerName(`${prefix}-${i}`, idle(node))));
    const answers = (await Promise.all([register(a, 'from-a'), register(b, 'from-b'), register(c, 'from-c')])).flat();
    assert.deepEqual(new Set(answers), new Set(['yes']), 'every registration is granted, the older node voting on each');
    for (const node of [a, b, c]) {
      for (const prefix of ['from-a', 'from-b', 'from-c']) {
        const missing = Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`).filter((name) => globals(node).whereisName(name) === undefined).length;
        assert.equal(missing, 0, `${node.name} resolves every ${prefix} name`);
      }
    }
    assert.equal(older.packedDropped, 0, 'the older node was never sent a packed batch');
    assert.ok(packedAtB.count > 0, 'the two newer nodes do use packed batches between them');
  });

  test('a rolling upgrade from the previous roster: runs of acks go only to nodes that read them, and every registration and unregistration completes', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const bTransport = new MemoryTransport({ broker });
    const runsAtB = counted(bTransport, holdsAckRun);
    const b = await start(broker, 'b', {}, bTransport);
    const previous = new PreviousRosterTransport({ broker });
    const c = await start(broker, 'c', {}, previous);
    const names = (prefix: string): string[] => Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`);
    const nodes = [a, b, c];
    const answers = (await Promise.all(nodes.map((node) => Promise.all(names(node.name).map((name) => globals(node).registerName(name, idle(node))))))).flat();
    assert.deepEqual(new Set(answers), new Set(['yes']));
    await Promise.all(nodes.map((node) => Promise.all(names(node.name).map((name) => globals(node).unregisterName(name)))));
    for (const node of nodes) {
      const left = nodes.flatMap((owner) => names(owner.name)).filter((name) => globals(node).whereisName(name) !== undefined).length;
      assert.equal(left, 0, `${node.name} resolves no name once every unregisterName resolved`);
    }
    assert.equal(previous.ackRunsDropped, 0, 'the previous-version node was never sent a run of acks');
    assert.ok(runsAtB.count > 0, 'the two current nodes do acknowledge in runs between them');
  });

  test('unregisterName works from any node (global:unregister_name)', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const pid = idle(a);
    assert.equal(await globals(a).registerName('remote-unreg', pid), 'yes');
    await globals(b).unregisterName('remote-unreg');
    assert.equal(globals(a).whereisName('remote-unreg'), undefined);
    assert.equal(globals(b).whereisName('remote-unreg'), undefined);
    assert.ok(a.isAlive(pid), 'unregistering is not killing');
    const other = idle(b);
    assert.equal(await globals(b).registerName('remote-unreg', other), 'yes');
  });

  test('reRegisterName moves a name at once on every member (global:re_register_name), from its holder\'s node or another', async () => {
    const broker = new MemoryBroker({ faults: { delayMs: [5, 15] } });
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const first = idle(a);
    const second = idle(a);
    assert.equal(await globals(a).registerName('moved', first), 'yes');
    assert.equal(await globals(a).reRegisterName('moved', second), 'yes');
    for (const node of [a, b]) assert.ok(globals(node).whereisName('moved')?.equals(second), `${node.name}: the new holder at once`);
    a.exit(first, 'kill');
    const third = idle(b);
    assert.equal(await globals(b).reRegisterName('moved', third), 'yes', 'held on another node: its owner releases it first');
    for (const node of [a, b]) assert.ok(globals(node).whereisName('moved')?.equals(third), `${node.name}: moved to b`);
    assert.ok(a.isAlive(second), 'the former holder runs on');
  });

  test('a one-link cut never grants a name twice: a remote vote is not excused by the owner leaving the view', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const c = await start(broker, 'c');
    broker.partition(['a'], ['b']);
    // a claims while b is still in its view (and silent): the claim waits for b's vote.
    const pa = idle(a);
    const claim = globals(a).registerName('svc', pa);
    await Promise.all([membership(a, 'nodedown', 'b', 10_000), membership(b, 'nodedown', 'a', 10_000)]);
    const pb = idle(b);
    const fromB = await globals(b).registerName('svc', pb).catch((error: unknown) => error);
    const fromA = await claim.catch((error: unknown) => error);
    const yes = [fromA, fromB].filter((answer) => answer === 'yes');
    assert.ok(yes.length <= 1, `granted twice: a ${String(fromA)}, b ${String(fromB)}`);
    // Nodes that reach each other agree: a with c, and b with c.
    const atC = globals(c).whereisName('svc');
    for (const node of [a, b]) {
      const here = globals(node).whereisName('svc');
      if (here !== undefined && a.isAlive(pa) && b.isAlive(pb)) assert.ok(atC?.equals(here), `${node.name} and c disagree on svc`);
    }
    const after = idle(a);
    assert.equal(await globals(a).registerName('svc', after).catch(() => 'no'), atC === undefined ? 'yes' : 'no');
    assert.ok(clusterOf(c)!.nodes().length === 2);
  });
});
