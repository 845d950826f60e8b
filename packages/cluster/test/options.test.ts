/**
 * `Node.start({ cluster })` is typed by @roster/cluster's `ClusterOptions`
 * (a misspelt option fails to compile: the `@ts-expect-error` lines below
 * are checked by `npm run typecheck`) and checked at start (an unknown key
 * is a `TypeError` naming it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Node, type NodeOptions } from '@roster/core';
import { MemoryBroker, MemoryTransport } from '@roster/cluster';

// @ts-expect-error a misspelt cluster option does not compile
const misspelt: NodeOptions = { name: 'typo', cluster: { heartbeatIntervl: 5 } };
const spelt: NodeOptions = { name: 'ok', cluster: { heartbeatInterval: 5, failureTimeout: 50, role: 'observer' } };

describe('cluster options', () => {
  test('an unknown key is a TypeError naming it, and nothing is left running', async () => {
    await assert.rejects(Node.start({ ...misspelt, logLevel: 'silent' }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /unknown option "heartbeatIntervl"/);
      return true;
    });
    assert.equal(spelt.name, 'ok');
  });

  test('a bad role is refused', async () => {
    await assert.rejects(Node.start({ name: 'r', logLevel: 'silent', cluster: { role: 'boss' as never, transport: new MemoryTransport({ broker: new MemoryBroker() }) } }), /role must be member or observer/);
  });
});
