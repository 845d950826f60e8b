/**
 * Nodes in separate OS processes over RabbitMQ (`startNodeProcesses`),
 * mixed with a node of this process: the IPC protocol of the harness
 * (spawn, call, register and resolve names through a registry installed in
 * the children, exit signals), a graceful stop and an abrupt exit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CallError, GenServer, type Pid } from '@roster/core';
import { GlobalsRegistry } from '@roster/globals';
import { EchoServer, NodeProcessError, startCluster, startNodeProcesses, startRabbitMQ, stopNodeProcesses, type NodeProcess, type RabbitMQ } from '@roster/testkit';
import { clusterEvent, probe } from './cluster-suite.js';

let rabbit: RabbitMQ | undefined;

before(async () => {
  rabbit = await startRabbitMQ();
});

after(async () => {
  await rabbit?.stop();
});

describe('node processes over amqp', () => {
  it('children join a cluster with in-process nodes and do what the parent asks over IPC', async () => {
    const W = 10_000;
    const h = await startCluster({
      nodes: ['parent'],
      transport: 'amqp',
      amqpUrl: rabbit!.url,
      heartbeatInterval: 200,
      failureTimeout: 1500,
      // Every member of a globals cluster runs the registry.
      registries: () => ({ globals: new GlobalsRegistry() }),
    });
    let children: NodeProcess[] = [];
    try {
      children = await startNodeProcesses({
        count: 2,
        amqpUrl: rabbit!.url,
        clusterId: h.id,
        heartbeatInterval: 200,
        failureTimeout: 1500,
        registries: [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry', options: {} }],
      });
      const [one, two] = children as [NodeProcess, NodeProcess];
      assert.deepEqual(
        children.map((c) => c.name),
        ['proc1', 'proc2'],
      );
      assert.ok(children.every((c) => c.running && c.pid > 0 && c.pid !== process.pid && c.creation.length > 0));
      await h.waitForMembership({ also: ['proc1', 'proc2'], timeout: W });
      await Promise.all([one.waitForPeer('parent'), one.waitForPeer('proc2'), two.waitForPeer('parent'), two.waitForPeer('proc1')]);
      assert.deepEqual((await one.request({ cmd: 'nodes' })).sort(), ['parent', 'proc2']);

      // An echo server in a child, called from here: the callee sees this process's caller.
      const echo = await one.spawnEcho('echo');
      assert.equal(echo.node, 'proc1');
      assert.equal(echo.creation, one.creation);
      const parent = h.node('parent');
      const reply = await parent.call<{ request: unknown; from: Pid }>(echo, { hi: 1 });
      assert.deepEqual(reply.request, { hi: 1 });
      assert.equal((await one.request({ cmd: 'whereis', name: 'echo' }))?.id, echo.id);

      // A child calls a server of this process.
      const local = await GenServer.start(parent, EchoServer, undefined);
      const fields = { node: local.node, creation: local.creation, id: local.id };
      assert.equal(await two.request({ cmd: 'call', to: fields, request: 'ping' }), 'pong');
      await assert.rejects(
        two.request({ cmd: 'call', to: { ...fields, id: 999_999 }, request: 'ping' }),
        (error: unknown) => error instanceof NodeProcessError && error.remoteName === 'CallError' && error.reason === 'noproc',
      );

      // Names registered in one child's registry resolve in the other.
      assert.equal(await one.request({ cmd: 'register', key: 'globals', name: 'svc' }), 'yes');
      assert.equal(await two.request({ cmd: 'register', key: 'globals', name: 'svc' }), 'no');
      const held = await one.request({ cmd: 'whereis', key: 'globals', name: 'svc' });
      assert.equal(held?.node, 'proc1');
      await h.node('parent').registry<GlobalsRegistry>('globals').sync?.();
      assert.equal(parent.whereis({ via: 'globals', name: 'svc' })?.id, held?.id);

      // Exit signals from a child reach a process here.
      const victim = parent.spawn((self) => self.receive());
      const watcher = await probe(parent, W, (self) => void self.monitor(victim));
      await two.request({ cmd: 'exitProcess', to: { node: victim.node, creation: victim.creation, id: victim.id }, reason: 'from a child' });
      assert.equal((await watcher.next<{ reason: unknown }>()).reason, 'from a child');

      // A graceful stop is seen at once; an abrupt exit by the failure detector.
      const gone = clusterEvent(h.clusterOf('parent'), 'nodedown', 'proc2', W);
      await two.stop();
      assert.equal(await gone, 'leave');
      assert.equal((await two.exited).code, 0);
      const lost = clusterEvent(h.clusterOf('parent'), 'nodedown', 'proc1', W);
      await one.request({ cmd: 'exit', code: 3 });
      assert.equal((await one.exited).code, 3);
      assert.equal(await lost, 'timeout');
      await assert.rejects(parent.call(echo, 'ping'), (error: unknown) => error instanceof CallError && error.failure === 'noconnection');
      await assert.rejects(one.request({ cmd: 'nodes' }), /not running/);
    } finally {
      await stopNodeProcesses(children);
      await h.stopAll();
    }
  });
});
