/**
 * Cluster-wide supervision through the loss of a node: three nodes run a
 * Singleton (`scheduler`) and a DistributedSupervisor (`workers`) whose nine
 * children are spread over them. Node a, which hosts the singleton and
 * three workers, dies without a word; the survivors notice by their failure
 * detector and start its children again on b and c. It prints where
 * everything runs, each child as it moves, and the time from the kill until
 * every child answers a call again.
 *
 *   node --conditions=development --import tsx examples/singleton-failover.ts
 *   AMQP_URL=amqp://localhost node --conditions=development --import tsx examples/singleton-failover.ts
 *
 * The loss: on the MemoryTransport the broker forgets node a
 * (`broker.crash`) and its processes die with it (`node.stop()`). Over
 * RabbitMQ, node a's transport goes deaf and mute at once (every frame
 * dropped both ways, as with a pulled cable), then the node stops: its
 * goodbye is lost, so b and c learn of it only by their failure detector, as
 * after a crash. The nodes use a 250 ms heartbeat and a 1 s failure timeout
 * (the defaults are 1 s and 3 s) so the run stays short.
 */
import { Node, reply, via, type Name } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport, type TransportEvents } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry, type Epoch } from '@roster/globals';
import { DistributedSupervisor, Singleton, type DistributedBehaviour } from '@roster/supervision';
import type { EventEmitter } from 'eventemitter3';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';
// However it goes, the program ends within 20 s.
setTimeout(() => {
  console.error('singleton-failover: still running after 20 s; giving up');
  process.exit(1);
}, 20_000).unref();

const amqpUrl = process.env['AMQP_URL'];
const broker = amqpUrl === undefined ? new MemoryBroker({ seed: 7 }) : undefined;
const cluster = `singleton-failover-${process.pid}`;
const HEARTBEAT = 250;
const FAILURE_TIMEOUT = 1000;
const WORKERS = 9;
const say = (text: string): void => console.log(`\n» ${text}`);
const show = (text: string): void => console.log(`  ${text}`);

/** An AmqpTransport that can go deaf and mute at once: what a pulled cable looks like to the node's peers. */
class SeverableAmqpTransport extends AmqpTransport {
  #severed = false;

  sever(): void {
    this.#severed = true;
    super.emit('down', new Error('severed'));
  }

  override broadcast(frame: string): void {
    if (!this.#severed) super.broadcast(frame);
  }

  override send(address: string, frame: string): void {
    if (!this.#severed) super.send(address, frame);
  }

  override emit<E extends EventEmitter.EventNames<TransportEvents>>(event: E, ...args: EventEmitter.EventArgs<TransportEvents, E>): boolean {
    return this.#severed ? false : super.emit(event, ...args);
  }
}

const transports = new Map<string, Transport>();

function transport(name: string): Transport {
  const made = broker !== undefined ? new MemoryTransport({ broker }) : new SeverableAmqpTransport({ urls: amqpUrl! });
  transports.set(name, made);
  return made;
}

interface WorkerState {
  readonly id: string;
  readonly epoch: Epoch | undefined;
}

/** A child that says where it runs and with which fencing epoch. */
const Worker: DistributedBehaviour<WorkerState> = {
  init: (_args, _self, context) => ({ id: context?.childId ?? '?', epoch: context?.epoch }),
  handleCall: (request: 'where', _from, state, self) => reply({ node: self.node.name, epoch: state.epoch }, state),
};

const epochText = (epoch: Epoch | undefined): string => (epoch === undefined ? '-' : `${epoch.wall}.${epoch.counter}@${epoch.node}`);

async function start(name: string): Promise<Node> {
  const node = await Node.start({
    name,
    cluster: { transport: transport(name), id: cluster, heartbeatInterval: HEARTBEAT, failureTimeout: FAILURE_TIMEOUT, joinWindow: 100 },
    registries: { globals: new GlobalsRegistry() },
  });
  // Every node that may host a child registers its behaviour before starting its member.
  node.behaviours.register('worker', Worker);
  return node;
}

async function until(check: () => Promise<boolean> | boolean, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Where each worker and the singleton run, as `node` sees it. */
async function layout(node: Node): Promise<void> {
  const children = await DistributedSupervisor.whichChildren(node, 'workers');
  const byNode = new Map<string, string[]>();
  for (const child of children) byNode.set(child.node ?? '(none)', [...(byNode.get(child.node ?? '(none)') ?? []), child.id]);
  for (const [host, ids] of [...byNode].sort()) show(`${host}: ${ids.join(' ')}`);
  const scheduler = (await node.call(via('globals', 'scheduler'), 'where')) as { node: string; epoch: Epoch };
  show(`singleton "scheduler" on ${scheduler.node}, fencing epoch ${epochText(scheduler.epoch)}`);
}

async function main(): Promise<void> {
  say(`Starting nodes a, b and c on ${broker ? 'the MemoryTransport' : 'RabbitMQ'} (heartbeat ${HEARTBEAT} ms, failure timeout ${FAILURE_TIMEOUT} ms)`);
  const [a, b, c] = [await start('a'), await start('b'), await start('c')];
  const nodes = [a, b, c];

  say('A member of each supervisor on every node; clusterSize 3, so nothing starts without 2 of them');
  // local_first: the singleton runs where the first member starts, node a.
  for (const node of nodes) await Singleton.start(node, { name: 'scheduler', key: 'worker', clusterSize: 3 });
  for (const node of nodes) await DistributedSupervisor.start(node, { id: 'workers', clusterSize: 3 });
  for (const node of nodes) await until(async () => (await DistributedSupervisor.members(node, 'workers')).length === 3, `${node.name} to see 3 members`);
  await until(async () => (await Singleton.where(a, 'scheduler'))?.state === 'running', 'the singleton');
  // round_robin (the default placement): three workers on each node.
  await Promise.all(Array.from({ length: WORKERS }, (_, n) => DistributedSupervisor.startChild(a, 'workers', { id: `w${n}`, behaviour: 'worker' })));
  show(`members: ${(await DistributedSupervisor.members(b, 'workers')).join(', ')}`);
  await layout(b);

  const before = await DistributedSupervisor.whichChildren(b, 'workers');
  const lost: { name: Name; label: string }[] = before.filter((child) => child.node === 'a').map((child) => ({ name: child.name, label: child.id }));
  if ((await Singleton.where(b, 'scheduler'))?.node === 'a') lost.push({ name: 'scheduler', label: 'scheduler' });

  // The survivors' view, as it changes.
  let killedAt = 0;
  let watching = true;
  const note = (text: string): void => {
    if (watching) show(`+${String(Date.now() - killedAt).padStart(5)} ms  ${text}`);
  };
  for (const events of [DistributedSupervisor.events(b, 'workers'), Singleton.events(b, 'scheduler')]) {
    events.on('nodeLost', (node, held) => note(`b saw ${node}'s member go; it held ${held.map((id) => (id === 'singleton' ? 'the singleton' : id)).join(' ') || 'nothing'}`));
    events.on('migrated', (child, from) => note(`${child.id === 'singleton' ? 'scheduler' : child.id} moved ${from} -> ${child.node}`));
  }
  b.on('nodedown', (node) => note(`b: nodedown ${node} (its failure detector)`));

  say(`Killing node a (${broker ? 'broker.crash, then node.stop()' : 'its transport severed, then node.stop(), its goodbye lost'}); it held ${lost.map((child) => child.label).join(' ')}`);
  killedAt = Date.now();
  if (broker !== undefined) broker.crash('a');
  else (transports.get('a') as SeverableAmqpTransport).sever();
  const stopped = a.stop();

  // Every lost child answers a call by its global name from a survivor, on a survivor.
  const answered = new Set<string>();
  await until(async () => {
    await Promise.all(
      lost
        .filter((child) => !answered.has(child.label))
        .map(async (child) => {
          const pid = b.registry<GlobalsRegistry>('globals').whereisName(child.name);
          if (pid === undefined || pid.node === 'a') return;
          const where = (await c.call(via('globals', child.name), 'where', { timeout: 1000 }).catch(() => undefined)) as { node: string } | undefined;
          if (where !== undefined && where.node !== 'a') answered.add(child.label);
        }),
    );
    return answered.size === lost.length;
  }, 'every child of a to answer again', 12_000);
  const took = Date.now() - killedAt;
  watching = false;
  await stopped;
  show(`every child of a answers again, ${took} ms after the kill (failure timeout ${FAILURE_TIMEOUT} ms + placement + a registry round trip)`);

  say('Where everything runs now (the singleton has a younger epoch: a fencing token for external stores)');
  await layout(c);

  say('Stopping the nodes');
  await Promise.all([c.stop(), b.stop()]);
  show('done');
}

await main();
