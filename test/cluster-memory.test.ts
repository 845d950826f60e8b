/**
 * The cluster suite over MemoryTransport: every node in this process, one
 * fresh MemoryBroker per test; a node is lost without warning with
 * `broker.crash(name)`, raw frames come from a bare MemoryTransport on the
 * same broker and cluster id.
 */
import { GenServer } from '@roster/core';
import { MemoryTransport } from '@roster/cluster';
import { EchoServer, startCluster } from '@roster/testkit';
import { clusterSuite, type Carrier } from './cluster-suite.js';

const carrier: Carrier = {
  kind: 'memory',
  waitMs: 3000,
  start: (options) => startCluster({ ...options, transport: 'memory' }),
  async startLosable(harness, name) {
    const node = await harness.startNode(name);
    const echo = await GenServer.start(node, EchoServer, undefined);
    return {
      name,
      echo,
      ready: () => harness.waitForMembership({ timeout: 3000 }),
      lose: () => harness.broker!.crash(name),
      close: () => node.stop(),
    };
  },
  async injector(harness) {
    const transport = new MemoryTransport({ broker: harness.broker! });
    const address = await transport.connect({ cluster: harness.id, node: 'injector' });
    return {
      address,
      publish: (frame) => {
        transport.broadcast(frame);
        return Promise.resolve();
      },
      close: () => transport.close(),
    };
  },
  partition(harness, a, b) {
    harness.broker!.partition([a], [b]);
    return () => harness.broker!.heal([a], [b]);
  },
};

clusterSuite('memory', carrier);
