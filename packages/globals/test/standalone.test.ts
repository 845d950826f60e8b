/** A GlobalsRegistry on a node without a cluster would be a local registry in disguise: it is refused, saying what to add. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Node } from '@roster/core';
import '@roster/cluster';
import { GlobalsRegistry } from '@roster/globals';

test('a GlobalsRegistry on a standalone node is refused with what to add', async () => {
  await assert.rejects(Node.start({ name: 'alone', logLevel: 'silent', registries: { globals: new GlobalsRegistry() } }), (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /not clustered; give Node\.start a cluster \(cluster: \{\} for the in-process MemoryTransport/);
    return true;
  });
  // With `cluster: {}` it joins the in-process transport and works.
  const node = await Node.start({ name: 'embedded', logLevel: 'silent', cluster: {}, registries: { globals: new GlobalsRegistry() } });
  try {
    const pid = node.spawn(async (self) => void (await self.receive()));
    assert.equal(await node.registry<GlobalsRegistry>('globals').registerName('x', pid), 'yes');
  } finally {
    await node.stop();
  }
});
