/**
 * roster's narrated demo: a 3-node cluster in one process.
 *
 *   npm run demo                      # on the embedded MemoryTransport: nothing to install
 *   AMQP_URL=amqp://localhost npm run demo   # the same cluster over RabbitMQ
 *   npm run demo -- --observe         # also an observer node serving the live page; runs until Ctrl-C
 *
 * It shows a named actor started with via('globals', ...), called from another
 * node, killed, its name gone everywhere, restarted by its supervisor with the
 * name back, and (on the memory transport, which can simulate a partition) a
 * name claimed on both sides of a partition, settled when it heals.
 */
import { GenServer, Node, Supervisor, noreply, reply, via, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry, type ConflictOutcome } from '@roster/globals';
import { startObserver } from '@roster/observer';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const amqpUrl = process.env['AMQP_URL'];
const broker = amqpUrl === undefined ? new MemoryBroker({ seed: 42 }) : undefined;
const cluster = `demo-${process.pid}`;
const say = (text: string): void => console.log(`\n» ${text}`);
const show = (text: string): void => console.log(`  ${text}`);
const observe = process.argv.slice(2).includes('--observe');

function transport(): Transport {
  return broker !== undefined ? new MemoryTransport({ broker }) : new AmqpTransport({ urls: amqpUrl! });
}

/** A counter: the actor we name globally. */
const Counter: GenServer<number, number> = {
  init: (start) => start,
  handleCall: (request, _from, count) => (request === 'get' ? reply(count, count) : reply('unknown request', count)),
  handleCast: (_message, count) => noreply(count + 1),
};

function registryOf(node: Node): GlobalsRegistry {
  return node.registry<GlobalsRegistry>('globals');
}

/** Resolves when `name` is registered (or unregistered) as seen from `node`. */
function nameEvent(node: Node, name: string, event: 'registered' | 'unregistered'): Promise<Pid> {
  return new Promise((resolve) => {
    const registry = registryOf(node);
    const listener = (seen: unknown, pid: Pid): void => {
      if (seen !== name) return;
      registry.off('registered', listener);
      registry.off('unregistered', listener);
      resolve(pid);
    };
    if (event === 'registered') registry.on('registered', listener);
    else registry.on('unregistered', listener);
  });
}

async function main(): Promise<void> {
  say(`Starting nodes a, b and c on ${broker ? 'the embedded MemoryTransport' : `RabbitMQ`} (cluster ${cluster})`);
  const start = (name: string): Promise<Node> =>
    Node.start({
      name,
      cluster: { transport: transport(), id: cluster, heartbeatInterval: 150, failureTimeout: 800, joinWindow: 100 },
      registries: { globals: new GlobalsRegistry({ registerTimeout: 2000 }) },
    });
  const a = await start('a');
  const b = await start('b');
  const c = await start('c');
  show(`a sees ${a.nodes().join(', ')}; b sees ${b.nodes().join(', ')}; c sees ${c.nodes().join(', ')}`);

  let watcher: Node | undefined;
  let observer: Awaited<ReturnType<typeof startObserver>> | undefined;
  if (observe) {
    say('Starting node "observer" (cluster role observer: it never votes and holds no names) and the observer page on it');
    watcher = await Node.start({
      name: 'observer',
      cluster: { transport: transport(), id: cluster, heartbeatInterval: 150, failureTimeout: 800, joinWindow: 100, role: 'observer' },
      registries: { globals: new GlobalsRegistry({ registerTimeout: 2000 }) },
    });
    observer = await startObserver(watcher, {
      port: Number(process.env['OBSERVER_PORT'] ?? 0),
      ...(amqpUrl === undefined ? {} : { broker: amqpUrl }),
    });
    show(`observer: ${observer.url}  (metrics at ${observer.url}metrics)`);
  }

  say(`On node a, a supervisor starts a counter named via('globals', 'counter')`);
  const counterOnB = nameEvent(b, 'counter', 'registered');
  await Supervisor.start(a, {
    strategy: 'one_for_one',
    intensity: 3,
    period: 5000,
    children: [Supervisor.worker('counter', Counter, 0, { name: via('globals', 'counter') })],
  });
  const first = await counterOnB;
  show(`b learned the name: counter -> ${first.key} (a process of node ${first.node})`);

  say('Node b casts twice and calls the counter; the call goes straight to node a');
  b.cast(via('globals', 'counter'), 'inc');
  b.cast(via('globals', 'counter'), 'inc');
  show(`b: call(via('globals', 'counter'), 'get') = ${await b.call(via('globals', 'counter'), 'get')}`);

  say('Kill the counter on node a: its name is cleared on every node');
  const goneOnB = nameEvent(b, 'counter', 'unregistered');
  const goneOnC = nameEvent(c, 'counter', 'unregistered');
  const backOnC = nameEvent(c, 'counter', 'registered');
  a.exit(first, 'kill');
  await Promise.all([goneOnB, goneOnC]);
  show(`the name was gone on b and c: whereisName went undefined on each`);

  say('Its supervisor restarts it, and the name comes back everywhere');
  const second = await backOnC;
  show(`c sees counter -> ${second.key} (a new pid), and calls it: ${await c.call(via('globals', 'counter'), 'get')}`);

  if (broker !== undefined) {
    say('Partition: {a} | {b, c}. Each side claims the name "leader" for a process of its own');
    broker.partition(['a'], ['b', 'c']);
    await Promise.all([waitNodedown(a, 'b'), waitNodedown(b, 'a')]);
    show('the failure detector saw the partition: a sees nobody, b sees only c');
    const leaderA = a.spawn(async (self) => {
      await self.receive();
    });
    const leaderB = b.spawn(async (self) => {
      await self.receive();
    });
    show(`a registers leader -> ${await registryOf(a).registerName('leader', leaderA)}`);
    show(`b registers leader -> ${await registryOf(b).registerName('leader', leaderB)}`);

    say('Heal: anti-entropy finds the name on both sides; keep-oldest keeps the older claim and stops the other');
    const conflict = new Promise<ConflictOutcome>((resolve) => registryOf(a).once('conflict', resolve));
    const loserDown = new Promise<unknown>((resolve) =>
      c.spawn(async (self) => {
        self.monitor(leaderB);
        resolve(((await self.receive()) as { reason: unknown }).reason);
      }),
    );
    broker.heal();
    const outcome = await conflict;
    show(`conflict on "${String(outcome.name)}": winner ${outcome.winner?.pid.key} (node ${outcome.winner?.node}), loser ${outcome.losers.map((l) => l.pid.key).join(', ')}`);
    show(`the loser exited with reason ${JSON.stringify(await loserDown)}`);
    await Promise.all([a, b, c].map((node) => registryOf(node).sync()));
    show(`every node agrees: leader -> ${[a, b, c].map((node) => registryOf(node).whereisName('leader')?.key).join(' / ')}`);
  } else {
    say('(The partition step needs the MemoryBroker, which can cut the network; it is skipped over RabbitMQ.)');
  }

  if (observer !== undefined && watcher !== undefined) {
    say(`The cluster keeps running, with a little traffic, for the observer at ${observer.url}: Ctrl-C to stop`);
    const traffic = setInterval(() => {
      b.cast(via('globals', 'counter'), 'inc');
      c.call(via('globals', 'counter'), 'get').catch(() => {});
    }, 250);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    clearInterval(traffic);
    await observer.close();
    await watcher.stop();
  }

  say('Stopping the nodes');
  await Promise.all([c, b, a].map((node) => node.stop()));
  show('done');
}

function waitNodedown(node: Node, peer: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (down: string): void => {
      if (down !== peer) return;
      node.off('nodedown', listener);
      resolve();
    };
    node.on('nodedown', listener);
  });
}

await main();
