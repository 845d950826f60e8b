/**
 * A cluster observer (`cluster: { role: 'observer' }`): a member for
 * messages, that the globals registry never counts. It sees every name (those
 * held before it joined, and every registration and release after), holds
 * none, and cannot slow or block a registration: one cut off mid-flight or
 * silent is no voter anyone waits for. Shipped default timings.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Node, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, clusterOf, type ClusterRole } from '@roster/cluster';
import { GlobalsRegistry, RegistryUnavailableError } from '@roster/globals';
import { within } from '@roster/testkit';

const running: Node[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((node) => node.stop()));
});

async function start(broker: MemoryBroker, name: string, role: ClusterRole = 'member'): Promise<Node> {
  const node = await Node.start({
    name,
    logLevel: 'silent',
    cluster: { transport: new MemoryTransport({ broker }), role },
    registries: { globals: new GlobalsRegistry() },
  });
  running.push(node);
  return node;
}

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');
const idle = (node: Node): Pid => node.spawn(async (self) => void (await self.receive()));

function resolved(node: Node, name: string, pid: Pid | undefined): Promise<void> {
  const check = (): boolean => (pid === undefined ? globals(node).whereisName(name) === undefined : globals(node).whereisName(name)?.equals(pid) === true);
  if (check()) return Promise.resolve();
  return within(
    new Promise<void>((resolve) => {
      const listener = (): void => {
        if (!check()) return;
        globals(node).off('registered', listener);
        globals(node).off('unregistered', listener);
        resolve();
      };
      globals(node).on('registered', listener);
      globals(node).on('unregistered', listener);
    }),
    `${node.name}: ${name} -> ${pid?.key ?? 'nothing'}`,
    3000,
  );
}

describe('a cluster observer and the globals registry', () => {
  test('sees names held before it joined and every change after; holds none; is no voter', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    const early = idle(a);
    assert.equal(await globals(a).registerName('early', early), 'yes');
    const watcher = await start(broker, 'watcher', 'observer');
    assert.equal(clusterOf(watcher)!.role, 'observer');
    assert.equal(clusterOf(a)!.isObserver('watcher'), true);
    // Node.start resolved knowing the names its view holds.
    assert.ok(globals(watcher).whereisName('early')?.equals(early));
    assert.deepEqual(globals(a).members().sort(), ['a', 'b']);
    assert.deepEqual(globals(watcher).members().sort(), ['a', 'b']);
    const late = idle(b);
    assert.equal(await globals(b).registerName('late', late), 'yes');
    await resolved(watcher, 'late', late);
    await globals(a).unregisterName('late');
    await resolved(watcher, 'late', undefined);
    await assert.rejects(globals(watcher).registerName('mine', idle(watcher)), RegistryUnavailableError);
    assert.equal(globals(watcher).whereisName('mine'), undefined);
  });

  test('an observer cut off from everyone neither slows nor blocks registrations', async () => {
    const broker = new MemoryBroker();
    const a = await start(broker, 'a');
    const b = await start(broker, 'b');
    await start(broker, 'watcher', 'observer');
    broker.partition(['watcher'], ['a', 'b']);
    const started = Date.now();
    const pids = Array.from({ length: 20 }, () => idle(a));
    const answers = await Promise.all(pids.map((pid, index) => globals(a).registerName(`n${index}`, pid)));
    assert.deepEqual(new Set(answers), new Set(['yes']));
    assert.ok(Date.now() - started < 1000, `registrations took ${Date.now() - started} ms with a silent observer`);
    assert.ok(globals(b).whereisName('n7')?.equals(pids[7]!));
  });
});
