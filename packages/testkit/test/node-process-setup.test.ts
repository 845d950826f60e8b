/**
 * Node processes over RabbitMQ (AMQP) that run user setup code: the
 * `setup` option of `startNodeProcesses` (a module's start function awaited
 * after `Node.start`, a throw failing the start), `NodeProcess.invoke`
 * (the module's other exports, JSON in and out, coded errors), and `emit`
 * (unsolicited `custom` events, also those of the setup's time through
 * `onCustomEvent`), next to the membership events that were there before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NodeProcessError, startNodeProcesses, startRabbitMQ, stopNodeProcesses, uniqueClusterId, within, type NodeProcess, type RabbitMQ } from '@roster/testkit';

const MODULE = fileURLToPath(new URL('./fixtures/setup-module.ts', import.meta.url));
const W = 20_000;

let rabbit: RabbitMQ | undefined;
const started: NodeProcess[] = [];

before(async () => {
  rabbit = await startRabbitMQ();
});

after(async () => {
  await stopNodeProcesses(started, 3000);
  await rabbit?.stop();
});

async function spawn(options: Omit<Parameters<typeof startNodeProcesses>[0], 'amqpUrl' | 'clusterId' | 'count'> & { count?: number }): Promise<NodeProcess[]> {
  const children = await startNodeProcesses({ count: 1, amqpUrl: rabbit!.url, clusterId: uniqueClusterId(), ...options });
  started.push(...children);
  return children;
}

function nextCustom(child: NodeProcess, name: string, ms: number): Promise<unknown> {
  return within(
    new Promise<unknown>((resolve) => {
      const listener = (event: string, data: unknown): void => {
        if (event !== name) return;
        child.off('custom', listener);
        resolve(data);
      };
      child.on('custom', listener);
    }),
    `${child.name}: a custom ${name} event`,
    ms,
  );
}

const coded = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof NodeProcessError && error.code === code && (pattern === undefined || pattern.test(error.message));

describe('node processes with a setup module', () => {
  it('runs setup(node, args, emit) before the start resolves; invoke calls the exports; emit reaches the parent', async () => {
    const early: [string, string, unknown][] = [];
    const children = await spawn({
      count: 2,
      setup: { module: MODULE, args: { echo: 'echo' } },
      onCustomEvent: (from, event, data) => early.push([from, event, data]),
    });
    const [one, two] = children as [NodeProcess, NodeProcess];
    // Emitted while setup ran (no NodeProcess existed yet): delivered to onCustomEvent.
    assert.deepEqual(
      early.filter(([, event]) => event === 'setup').sort(([a], [b]) => a.localeCompare(b)),
      [
        ['proc1', 'setup', { node: 'proc1', args: { echo: 'echo' } }],
        ['proc2', 'setup', { node: 'proc2', args: { echo: 'echo' } }],
      ],
    );
    // The membership events of before still work (their replay starts at ready).
    await Promise.all([one.waitForPeer('proc2', W), two.waitForPeer('proc1', W)]);

    const described = await one.invoke<{ name: string; setupArgs: unknown; echo: string | null }>('describe');
    assert.equal(described.name, 'proc1');
    assert.deepEqual(described.setupArgs, { echo: 'echo' });
    assert.match(described.echo ?? '', /proc1/, 'the echo server setup started runs on the child');
    assert.equal(await two.invoke('add', { a: 2, b: 3 }), 5);
    assert.equal(await one.invoke('nothing'), null, 'undefined arrives as null');

    // Events emitted during an invoke arrive before its reply (one channel, in order), to both listeners.
    const ticks: unknown[] = [];
    const listener = (event: string, data: unknown): void => {
      if (event === 'tick') ticks.push(data);
    };
    one.on('custom', listener);
    const before = early.length;
    assert.equal(await one.invoke('ticks', { count: 4 }), 4);
    one.off('custom', listener);
    assert.deepEqual(ticks, [0, 1, 2, 3].map((index) => ({ index })));
    assert.deepEqual(early.slice(before).map(([from, event]) => `${from}:${event}`), ['proc1:tick', 'proc1:tick', 'proc1:tick', 'proc1:tick']);

    // Unsolicited: an event emitted later, from a timer of the setup module.
    const later = nextCustom(two, 'later', 5000);
    await two.invoke('later', { ms: 50 });
    assert.deepEqual(await later, { node: 'proc2', peers: ['proc1'] });

    // Coded failures, and the child lives on after each.
    await assert.rejects(one.invoke('explode', { message: 'kaboom' }), coded('boom', /kaboom/));
    await assert.rejects(one.invoke('noSuchFunction'), coded('no_such_export', /noSuchFunction/));
    await assert.rejects(one.invoke('notAFunction'), coded('no_such_export'));
    await assert.rejects(one.invoke('unsendable'), (error: unknown) => error instanceof NodeProcessError && /cannot cross IPC/.test(error.message));
    await assert.rejects(one.invoke(''), TypeError);
    assert.equal(await one.invoke('add', { a: 1, b: 1 }), 2);
  });

  it("passes the cluster role: a child started with role 'observer' is one, and its peers see it so", async () => {
    const clusterId = uniqueClusterId();
    const common = { count: 1, amqpUrl: rabbit!.url, clusterId, setup: { module: MODULE } };
    const [member] = await startNodeProcesses({ ...common, names: ['member'] });
    started.push(member!);
    const [watcher] = await startNodeProcesses({ ...common, names: ['watcher'], role: 'observer' });
    started.push(watcher!);
    await Promise.all([member!.waitForPeer('watcher', W), watcher!.waitForPeer('member', W)]);
    assert.deepEqual(await watcher!.invoke('roles', { peer: 'member' }), { self: true, peer: 'member' });
    assert.deepEqual(await member!.invoke('roles', { peer: 'watcher' }), { self: false, peer: 'observer' });
  });

  it('takes another export and a file: URL; a child without setup refuses invoke with no_setup', async () => {
    const [custom, plain] = await Promise.all([
      spawn({ names: ['custom'], setup: { module: pathToFileURL(MODULE).href, exportName: 'otherSetup', args: [1, 'two'] } }),
      spawn({ names: ['plain'] }),
    ]);
    const described = await custom[0]!.invoke<{ setupArgs: unknown }>('describe');
    assert.deepEqual(described.setupArgs, { other: [1, 'two'] });
    await assert.rejects(plain[0]!.invoke('describe'), coded('no_setup'));
  });

  it('a setup that throws fails the start with its error; a bad setup option is refused before forking', async () => {
    await assert.rejects(
      spawn({ names: ['broken'], setup: { module: MODULE, exportName: 'failingSetup', args: { message: 'no database' } } }),
      (error: unknown) => error instanceof NodeProcessError && error.code === 'setup_broke' && /no database/.test(error.message),
    );
    await assert.rejects(spawn({ names: ['missing'], setup: { module: MODULE, exportName: 'absent' } }), coded('no_such_export', /absent/));
    await assert.rejects(spawn({ names: ['unloadable'], setup: { module: '/nonexistent/setup.ts' } }), NodeProcessError);
    await assert.rejects(spawn({ names: ['relative'], setup: { module: './fixtures/setup-module.ts' } }), (error: unknown) => error instanceof TypeError && /relative/.test(error.message));
  });
});
