import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DynamicSupervisor,
  GenServer,
  LocalRegistry,
  Node,
  NodeStoppedError,
  Supervisor,
  formatReason,
  noreply,
  reply,
  via,
  type ExitReason,
  type Pid,
} from '@roster/core';
import { deferred, within } from './helpers.js';

/** A trapping child that records its terminate, so that stop order is visible. */
function recorded(stops: string[], id: string) {
  return Supervisor.worker(
    id,
    {
      init(_args: undefined, self) {
        self.trapExit(true);
        return null;
      },
      handleCall: (request: unknown, _from, state) => reply(request, state),
      terminate(reason: ExitReason) {
        stops.push(`${id}:${formatReason(reason)}`);
      },
    } satisfies GenServer<null, undefined>,
    undefined,
  );
}

const stopped = (error: unknown): boolean => {
  assert.ok(error instanceof NodeStoppedError, `expected NodeStoppedError, got ${String(error)}`);
  assert.equal(error.code, 'node_stopped');
  return true;
};

describe('Node.stop', () => {
  test("stops supervisors' trees in reverse start order and resolves; every process is gone", async () => {
    const node = await Node.start({ name: 'stopping', shutdownTimeout: 2000 });
    const stops: string[] = [];
    const registry = new LocalRegistry();
    await node.installRegistry('local', registry);
    const first = await Supervisor.start(node, { children: [recorded(stops, 'a1'), recorded(stops, 'a2')] }, { name: 'first' });
    const second = await Supervisor.start(node, {
      children: [recorded(stops, 'b1'), Supervisor.supervisor('inner', { children: [recorded(stops, 'c1'), recorded(stops, 'c2')] }), recorded(stops, 'b2')],
    });
    const server = await GenServer.start(
      node,
      {
        init(_args: undefined, self) {
          self.trapExit(true);
          return null;
        },
        terminate(reason: ExitReason) {
          stops.push(`server:${formatReason(reason)}`);
        },
      },
      undefined,
      { name: via('local', 'server') },
    );
    const plain = node.spawn((self) => self.receive(() => false));
    const pids = node.processes();
    assert.ok(pids.length >= 10);
    const exits = new Map<string, ExitReason>();
    for (const pid of pids) node.watchExit(pid, (reason) => exits.set(pid.key, reason));
    const stoppedEvent = deferred();
    node.once('stopped', () => stoppedEvent.resolve());

    await within(node.stop(), 'node.stop', 5000);
    await within(stoppedEvent.promise, "the 'stopped' event");

    // Top-level processes in reverse start order; each tree in reverse child order.
    assert.deepEqual(stops, ['server:shutdown', 'b2:shutdown', 'c2:shutdown', 'c1:shutdown', 'b1:shutdown', 'a2:shutdown', 'a1:shutdown']);
    assert.equal(node.alive, false);
    assert.deepEqual(node.processes(), []);
    for (const pid of [first, second, server, plain, ...pids]) assert.ok(!node.isAlive(pid), `${pid.key} is gone`);
    assert.equal(exits.get(plain.key), 'shutdown');
    assert.equal(exits.get(first.key), 'shutdown');
    assert.deepEqual(node.registered(), []);
    assert.deepEqual(registry.registered(), []);
    // stop() is idempotent.
    await within(node.stop(), 'a second node.stop');
  });

  test('a process ignoring shutdown is killed after shutdownTimeout', async () => {
    const node = await Node.start({ name: 'stopping-stubborn', shutdownTimeout: 100 });
    const stubborn = node.spawn((self) => self.receive(() => false), { trapExit: true });
    const reason = deferred<ExitReason>();
    node.watchExit(stubborn, (r) => reason.resolve(r));
    const started = performance.now();
    await within(node.stop(), 'node.stop');
    assert.equal(await reason.promise, 'killed');
    assert.ok(performance.now() - started >= 95, 'it was given its shutdownTimeout first');
    assert.ok(!node.isAlive(stubborn));
  });

  test('operations after stop reject or throw NodeStoppedError', async () => {
    const node = await Node.start({ name: 'stopped-node' });
    const server = await GenServer.start(node, { init: () => 0, handleCast: (_m: unknown, s: number) => noreply(s) }, undefined, { name: 'server' });
    await node.stop();
    assert.throws(() => node.spawn((self) => self.receive()), stopped);
    await assert.rejects(GenServer.start(node, { init: () => 0 }, undefined), stopped);
    await assert.rejects(Supervisor.start(node, {}), stopped);
    await assert.rejects(DynamicSupervisor.start(node), stopped);
    await assert.rejects(node.call(server, 'x'), stopped);
    await assert.rejects(node.call('server', 'x'), stopped);
    await assert.rejects(GenServer.stop(node, server), stopped);
    // Fire-and-forget operations stay silent, as they are towards any dead process.
    assert.doesNotThrow(() => node.cast(server, 'x'));
    assert.doesNotThrow(() => node.send(server, 'x'));
    assert.doesNotThrow(() => node.exit(server, 'kill'));
    assert.equal(node.isAlive(server as Pid), false);
  });
});
