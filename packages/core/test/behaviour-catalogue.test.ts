/**
 * The behaviour catalogue (`node.behaviours`) and starts from it on the
 * local node: `startFromCatalogue`, and `GenServer.startOn` / `spawnOn`
 * aimed at the caller's own node (the remote half is in
 * packages/cluster/test/remote-spawn.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AlreadyStartedError,
  BadArgError,
  BehaviourCatalogue,
  GenServer,
  Node,
  SpawnError,
  StartError,
  isDownMessage,
  isExitMessage,
  ignore,
  noreply,
  reply,
  spawnOn,
  startFromCatalogue,
  stop,
  type DownMessage,
  type ExitMessage,
  type GenServer as Behaviour,
  type Pid,
} from '@roster/core';
import { deferred, monitorFromProbe, probe, within } from './helpers.js';

/** Answers `get` with the args it was started with. */
const Holder: Behaviour<unknown, unknown> = {
  init: (args) => args,
  handleCall: (request, _from, state) => (request === 'get' ? reply(state, state) : reply('?', state)),
  handleCast: (request, state) => {
    if (request === 'crash') throw new Error('asked to crash');
    return noreply(state);
  },
};

const Refuser: Behaviour<unknown, unknown> = { init: () => stop('refused') };

describe('BehaviourCatalogue', () => {
  test('register, get, has, keys (sorted), unregister', () => {
    const catalogue = new BehaviourCatalogue();
    const body = (): void => {};
    catalogue.register('zeta', Holder);
    catalogue.register('alpha', body);
    assert.deepEqual(catalogue.keys(), ['alpha', 'zeta']);
    assert.equal(catalogue.has('zeta'), true);
    assert.deepEqual(catalogue.get('zeta'), { key: 'zeta', kind: 'gen_server', behaviour: Holder });
    assert.deepEqual(catalogue.get('alpha'), { key: 'alpha', kind: 'process', body });
    assert.equal(catalogue.get('missing'), undefined);
    assert.equal(catalogue.unregister('alpha'), true);
    assert.equal(catalogue.unregister('alpha'), false);
    assert.deepEqual(catalogue.keys(), ['zeta']);
  });

  test('the same behaviour again under its key is a no-op; another one is BadArgError', () => {
    const catalogue = new BehaviourCatalogue();
    catalogue.register('holder', Holder);
    catalogue.register('holder', Holder);
    assert.throws(() => catalogue.register('holder', Refuser), BadArgError);
    assert.throws(() => catalogue.register('holder', () => {}), /already registered/);
    assert.equal(catalogue.get('holder')?.kind, 'gen_server');
  });

  test('bad keys and behaviours are TypeErrors naming the argument', () => {
    const catalogue = new BehaviourCatalogue();
    for (const key of ['', 'k'.repeat(256), 42, undefined, null]) {
      assert.throws(() => catalogue.register(key as string, Holder), (error: unknown) => error instanceof TypeError && /key must be/.test(error.message), String(key));
    }
    catalogue.register('k'.repeat(255), Holder);
    for (const behaviour of [undefined, null, 7, 'init', {}, { init: 'no' }]) {
      assert.throws(
        () => catalogue.register('bad', behaviour as never),
        (error: unknown) => error instanceof TypeError && /behaviour must be/.test(error.message),
      );
    }
    assert.equal(catalogue.has('bad'), false);
  });

  test('every node has its own, empty at start', async () => {
    const a = await Node.start({ name: 'catalogue-a' });
    const b = await Node.start({ name: 'catalogue-b' });
    try {
      assert.ok(a.behaviours instanceof BehaviourCatalogue);
      assert.deepEqual(a.behaviours.keys(), []);
      a.behaviours.register('holder', Holder);
      assert.deepEqual(b.behaviours.keys(), []);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('starting from the catalogue on the local node', () => {
  let node: Node;
  const ran: { args: unknown; self: Pid }[] = [];
  let bodyRan = deferred();

  before(async () => {
    node = await Node.start({ name: 'catalogue-local' });
    node.behaviours.register('holder', Holder);
    node.behaviours.register('refuser', Refuser);
    node.behaviours.register('ignorer', { init: () => ignore() as never });
    node.behaviours.register('worker', async (self, args) => {
      ran.push({ args, self: self.pid });
      bodyRan.resolve();
      await self.receive((message) => message === 'quit');
    });
    node.behaviours.register('dies-at-once', (_self, args: { reason: unknown }) => {
      throw args.reason;
    });
    node.behaviours.register('slow-init', { init: () => new Promise(() => {}) });
  });

  after(() => node.stop());

  test('startFromCatalogue: a GenServer by key, with args and a name', async () => {
    const pid = await startFromCatalogue(node, 'holder', { n: 1 }, { name: 'held' });
    assert.deepEqual(await node.call('held', 'get'), { n: 1 });
    assert.equal(node.whereis('held')?.key, pid.key);
    await GenServer.stop(node, pid);
  });

  test('startFromCatalogue: a process body gets self and args; its name is registered first', async () => {
    bodyRan = deferred();
    const args = { job: 7 };
    const pid = await startFromCatalogue(node, 'worker', args, { name: 'worker-1' });
    assert.equal(node.whereis('worker-1')?.key, pid.key);
    await within(bodyRan.promise, 'the body to run');
    const last = ran.at(-1)!;
    assert.equal(last.args, args); // locally, by reference
    assert.equal(last.self.key, pid.key);
    await assert.rejects(startFromCatalogue(node, 'worker', {}, { name: 'worker-1' }), (error: unknown) => {
      return error instanceof AlreadyStartedError && error.pid?.key === pid.key;
    });
    node.send(pid, 'quit');
  });

  test('startFromCatalogue: unknown key, init failure, ignore', async () => {
    await assert.rejects(startFromCatalogue(node, 'nope', undefined), (error: unknown) => {
      return error instanceof SpawnError && error.code === 'unknown_behaviour' && error.key === 'nope' && error.node === node.name;
    });
    await assert.rejects(startFromCatalogue(node, 'refuser', undefined), (error: unknown) => error instanceof StartError && error.reason === 'refused');
    await assert.rejects(startFromCatalogue(node, 'ignorer', undefined), (error: unknown) => error instanceof StartError && error.reason === 'ignore');
    await assert.rejects(startFromCatalogue(node, 'slow-init', undefined, { timeout: 20 }), (error: unknown) => error instanceof StartError && error.reason === 'timeout');
  });

  test('startFromCatalogue with link: the child is linked to the given process', async () => {
    const parent = await probe(node, undefined, { trapExit: true });
    const pid = await parent.run((self) => startFromCatalogue(node, 'holder', 1, { link: self }));
    node.cast(pid, 'crash');
    const exit = await parent.next<ExitMessage>((m) => isExitMessage(m) && m.from.equals(pid));
    assert.match(String((exit.reason as Error).message), /asked to crash/);
    parent.stop();
  });

  test('GenServer.startOn to the own node: starts from the catalogue, args by reference', async () => {
    const args = { shared: true };
    const pid = await GenServer.startOn(node, node.name, 'holder', args);
    assert.equal(await node.call(pid, 'get'), args);
    await GenServer.stop(node, pid);
  });

  test('spawnOn to the own node with link: child crash gives the trapping caller its EXIT; the caller exiting kills the child', async () => {
    const caller = await probe(node, undefined, { trapExit: true });
    const pid = await caller.run((self) => spawnOn(self, node.name, 'holder', 0, { link: true }));
    node.cast(pid, 'crash');
    await caller.next<ExitMessage>((m) => isExitMessage(m) && m.from.equals(pid));

    const second = await probe(node);
    const child = await second.run((self) => spawnOn(self, node.name, 'holder', 0, { link: true }));
    const { down } = await monitorFromProbe(node, child);
    node.exit(second.pid, 'boom');
    assert.equal((await down).reason, 'boom');
    caller.stop();
  });

  test('spawnOn with monitor resolves to { pid, ref }: a body that dies in its first turn still gives DOWN with its reason', async () => {
    const caller = await probe(node);
    const started = await caller.run((self) => spawnOn(self, node.name, 'dies-at-once', { reason: 'first-turn' }, { monitor: true }));
    const down = await caller.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(started.ref));
    assert.equal(down.reason, 'first-turn');
    assert.equal(down.pid?.key, started.pid.key);
    caller.stop();
  });

  test('GenServer.startOn errors on the own node: SpawnError codes, AlreadyStartedError, and no DOWN for a failed start', async () => {
    await assert.rejects(GenServer.startOn(node, node.name, 'nope', undefined), (error: unknown) => error instanceof SpawnError && error.code === 'unknown_behaviour');
    const caller = await probe(node);
    // Caught inside: a probe whose run throws crashes.
    const failed = await caller.run((self) => GenServer.startOn(self, node.name, 'refuser', undefined, { monitor: true }).catch((error: unknown) => error));
    assert.ok(failed instanceof SpawnError && failed.code === 'start_failed' && failed.reason === 'refused', String(failed));
    await assert.rejects(
      GenServer.startOn(node, node.name, 'slow-init', undefined, { timeout: 20 }),
      (error: unknown) => error instanceof SpawnError && error.code === 'timeout',
    );
    const holder = await GenServer.startOn(node, node.name, 'holder', 1, { name: 'taken' });
    await assert.rejects(GenServer.startOn(node, node.name, 'holder', 2, { name: 'taken' }), (error: unknown) => {
      return error instanceof AlreadyStartedError && error.pid?.key === holder.key;
    });
    // A message after the failed monitored start comes first: no DOWN was left in the mailbox.
    node.send(caller.pid, 'marker');
    assert.equal(await caller.next(), 'marker');
    caller.stop();
  });

  test('bad arguments are TypeErrors naming them; a standalone node cannot reach another', async () => {
    const bad: [unknown[], RegExp][] = [
      [[node, '', 'holder', 1], /node must be/],
      [[node, node.name, '', 1], /key must be/],
      [[node, node.name, 'holder', 1, { timeout: 0 }], /options.timeout/],
      [[node, node.name, 'holder', 1, { timeout: Infinity }], /options.timeout/],
      [[node, node.name, 'holder', 1, { link: true }], /link needs the caller to be a process/],
      [[node, node.name, 'holder', 1, { monitor: true }], /monitor needs the caller to be a process/],
      [[node, node.name, 'holder', 1, { linked: true }], /unknown option "linked"/],
      [[node, node.name, 'holder', 1, { name: 5 }], /options.name/],
      [[{}, node.name, 'holder', 1], /caller must be a Node or a process/],
    ];
    for (const [args, message] of bad) {
      await assert.rejects((GenServer.startOn as (...a: unknown[]) => Promise<unknown>)(...args), (error: unknown) => error instanceof TypeError && message.test(error.message), String(message));
    }
    await assert.rejects(spawnOn(node, 'elsewhere', 'holder', 1), (error: unknown) => {
      return error instanceof SpawnError && error.code === 'noconnection' && error.node === 'elsewhere' && /not clustered/.test(error.message);
    });
  });
});
