/**
 * The NameRegistry conformance suite against LocalRegistry (@roster/core):
 * one node, names in memory.
 */
import { LocalRegistry, Node } from '@roster/core';
import { registryConformance } from '@roster/testkit';

registryConformance({
  name: 'LocalRegistry, 1 node',
  // One node, and of the optional capabilities only reRegisterName: the others' tests are not part of this suite.
  capabilities: { multiNode: false, whereisNameConsistent: false, members: false, reRegisterName: true },
  async setup() {
    const node = await Node.start({ name: 'conformance-local' });
    await node.installRegistry('names', new LocalRegistry());
    return { nodes: [node], key: 'names' };
  },
});
