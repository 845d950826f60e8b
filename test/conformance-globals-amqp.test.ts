/**
 * The NameRegistry conformance suite against GlobalsRegistry (@roster/globals)
 * on 3 nodes of one cluster over RabbitMQ: the broker at `AMQP_URL`, or a
 * private one started for this file (`startRabbitMQ`).
 */
import { Node } from '@roster/core';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';
import { registryConformance, startRabbitMQ, uniqueClusterId, type RabbitMQ } from '@roster/testkit';

let broker: RabbitMQ | undefined;
const nodes: Node[] = [];

registryConformance({
  capabilities: { reRegisterName: true },
  name: 'GlobalsRegistry, 3 nodes over RabbitMQ',
  waitMs: 10_000,
  testTimeoutMs: 120_000,
  async setup() {
    broker = await startRabbitMQ();
    const id = uniqueClusterId('roster-conformance');
    const started = await Promise.all(
      ['globals-amqp-1', 'globals-amqp-2', 'globals-amqp-3'].map((name) =>
        Node.start({
          name,
          cluster: { id, transport: new AmqpTransport({ urls: broker!.url }) },
          registries: { globals: new GlobalsRegistry() },
        }),
      ),
    );
    nodes.push(...started);
    await membership(nodes, 20_000);
    return { nodes, key: 'globals' };
  },
  async teardown() {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await broker?.stop();
  },
});

/** Resolves once every node sees every other one (on `nodeup` events); rejects after `ms` naming who is missing whom. */
function membership(members: readonly Node[], ms: number): Promise<void> {
  const missing = (): string[] =>
    members.flatMap((node) => members.filter((other) => other !== node && !node.nodes().includes(other.name)).map((other) => `${node.name} does not see ${other.name}`));
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (missing().length > 0) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`membership incomplete after ${ms} ms: ${missing().join('; ')}`));
    }, ms);
    const done = (): void => {
      clearTimeout(timer);
      for (const node of members) node.off('nodeup', check);
    };
    for (const node of members) node.on('nodeup', check);
    check();
  });
}
