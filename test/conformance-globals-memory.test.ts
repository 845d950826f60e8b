/**
 * The NameRegistry conformance suite against GlobalsRegistry (@roster/globals)
 * on 3 nodes of one cluster over a MemoryTransport (in-process broker, no faults).
 */
import { GlobalsRegistry } from '@roster/globals';
import { registryConformance, startCluster, type ClusterHarness } from '@roster/testkit';

let harness: ClusterHarness | undefined;

registryConformance({
  capabilities: { reRegisterName: true },
  name: 'GlobalsRegistry, 3 nodes over MemoryTransport',
  async setup() {
    harness = await startCluster({
      nodes: 3,
      namePrefix: 'globals-mem-',
      transport: 'memory',
      joinWindow: 20,
      registries: () => ({ globals: new GlobalsRegistry() }),
    });
    await harness.waitForMembership();
    return { nodes: harness.nodes, key: 'globals' };
  },
  async teardown() {
    await harness?.stopAll();
  },
});
