/**
 * The observer suite: what watching costs. Three member nodes and one node
 * started with `role: 'observer'` in this process; sequential `registerName`
 * on a member, timed with the observer serving (polling every node each
 * 250 ms, one page's event stream open and read) and without it (the same
 * observer node, no `startObserver`), interleaved run for run in the same
 * run. On the MemoryTransport, and over RabbitMQ too when `AMQP_URL` is set.
 *
 *   npm run bench -- observer
 *   ROSTER_BENCH_QUICK=1 npm run bench -- observer    # one short run: checks the suite works, measures nothing
 */
import '@roster/cluster';
import { Node, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';
import { startObserver, type RunningObserver } from '@roster/observer';
import { startNodeProcesses, startRabbitMQ, stopNodeProcesses } from '@roster/testkit';
import { measureInterleaved, microsPerOp, result, timeIt, type BenchResult, type Measurement, type Suite } from './report.js';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const QUICK = process.env['ROSTER_BENCH_QUICK'] === '1';
const SEQUENTIAL = QUICK ? 20 : 500;
const RUNS = QUICK ? 1 : 7;
const WARMUP = QUICK ? 0 : 1;
const INTERVAL = 250;

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');

function idlers(node: Node, count: number): Pid[] {
  return Array.from({ length: count }, () =>
    node.spawn(async (self) => {
      await self.receive();
    }),
  );
}

/** An observer serving with one page connected, reading its stream as a browser would. */
async function watch(node: Node): Promise<{ stop(): Promise<void> }> {
  const observer: RunningObserver = await startObserver(node, { interval: INTERVAL });
  const controller = new AbortController();
  const stream = await fetch(new URL('/events', observer.url), { signal: controller.signal });
  const reader = stream.body!.getReader();
  const reading = (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  return {
    async stop() {
      controller.abort();
      await reading;
      await observer.close();
    },
  };
}

/** One timed run of SEQUENTIAL registrations on `node` (fresh names each run, their processes ended after), in µs per registration. */
function sequentialRegistrations(node: Node, prefix: string): () => Promise<number> {
  let round = 0;
  return async () => {
    const tag = round++;
    const pids = idlers(node, SEQUENTIAL);
    const ms = await timeIt(async () => {
      for (let n = 0; n < SEQUENTIAL; n++) await globals(node).registerName([prefix, tag, n], pids[n]!);
    });
    for (const pid of pids) node.exit(pid, 'kill');
    return microsPerOp(SEQUENTIAL, ms);
  };
}

async function figures(makeTransport: () => Transport, id: string): Promise<[Measurement, Measurement]> {
  const cluster = { id, joinWindow: 200, failureTimeout: 10_000, heartbeatInterval: 1000 };
  const members: Node[] = [];
  for (const name of ['m1', 'm2', 'm3']) {
    members.push(await Node.start({ name, cluster: { ...cluster, transport: makeTransport() }, registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) } }));
  }
  const watcher = await Node.start({
    name: 'watcher',
    cluster: { ...cluster, transport: makeTransport(), role: 'observer' },
    registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) },
  });
  try {
    while ([...members, watcher].some((node) => node.nodes().length < 3)) await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.all(members.map((node) => globals(node).sync()));
    const [a] = members as [Node];
    const sequential = sequentialRegistrations(a, 'obs-bench');
    const watched = async (): Promise<number> => {
      const observer = await watch(watcher);
      try {
        // Let it take its first snapshots before timing.
        await new Promise((resolve) => setTimeout(resolve, INTERVAL * 2));
        return await sequential();
      } finally {
        await observer.stop();
      }
    };
    const [without, withObserver] = await measureInterleaved([sequential, watched], { runs: RUNS, warmup: WARMUP });
    return [without, withObserver];
  } finally {
    for (const node of [watcher, ...members].reverse()) await node.stop();
  }
}

const OBSERVER_WORKER = new URL('./fixtures/observer-worker.ts', import.meta.url).href;

/**
 * As deployed: three members in this process over RabbitMQ, the observer
 * node in its own OS process (`role: 'observer'`), timed serving the page
 * and not serving, run for run. The members pay for being watched (the
 * snapshots they answer, the commits the observer also receives), the
 * observer's own work runs elsewhere.
 */
async function observerInItsOwnProcess(url: string): Promise<[Measurement, Measurement]> {
  const id = `bench-observer-procs-${process.pid}`;
  const cluster = { id, joinWindow: 200, failureTimeout: 10_000, heartbeatInterval: 1000 };
  const members: Node[] = [];
  for (const name of ['m1', 'm2', 'm3']) {
    members.push(await Node.start({ name, cluster: { ...cluster, transport: new AmqpTransport({ urls: url }) }, registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) } }));
  }
  const [watcher] = await startNodeProcesses({
    count: 1,
    names: ['watcher'],
    amqpUrl: url,
    clusterId: id,
    role: 'observer',
    failureTimeout: 10_000,
    heartbeatInterval: 1000,
    registries: [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry', options: {} }],
    setup: { module: OBSERVER_WORKER },
  });
  try {
    while (members.some((node) => node.nodes().length < 3)) await new Promise((resolve) => setTimeout(resolve, 10));
    await Promise.all(members.map((node) => globals(node).sync()));
    const [a] = members as [Node];
    const sequential = sequentialRegistrations(a, 'obs-procs');
    const idle = async (): Promise<number> => {
      await watcher!.invoke('stopWatching');
      return sequential();
    };
    const watched = async (): Promise<number> => {
      await watcher!.invoke('startWatching', { interval: INTERVAL });
      return sequential();
    };
    return await measureInterleaved([idle, watched], { runs: RUNS, warmup: WARMUP });
  } finally {
    await stopNodeProcesses(watcher === undefined ? [] : [watcher]);
    for (const node of [...members].reverse()) await node.stop();
  }
}

export const suite: Suite = {
  name: 'observer',
  description: 'registerName latency on 3 nodes with and without an observer serving the page',
  async run(): Promise<BenchResult[]> {
    const rows: BenchResult[] = [];
    const memoryBroker = new MemoryBroker({ seed: 3 });
    const [without, withObserver] = await figures(() => new MemoryTransport({ broker: memoryBroker }), `bench-observer-mem-${process.pid}`);
    rows.push(
      result({
        name: 'register, sequential, observer serving (memory, observer in the same JS thread)',
        unit: 'us/op',
        better: 'lower',
        value: withObserver,
        baseline: { name: 'the same, no observer', value: without },
        target: { op: '<=', value: without.median * 1.1, source: 'watching costs at most 10%' },
        note: `observer polling every ${INTERVAL} ms with one page connected; its own work (snapshots of every node, the view, the page's stream) runs on the thread the three members share${QUICK ? '; QUICK run: not a measurement' : ''}`,
      }),
    );
    const broker = await startRabbitMQ();
    try {
      const [idle, watched] = await observerInItsOwnProcess(broker.url);
      rows.push(
        result({
          name: 'register, sequential, observer serving (RabbitMQ, observer node in its own OS process)',
          unit: 'us/op',
          better: 'lower',
          value: watched,
          baseline: { name: 'the same observer node, not serving', value: idle },
          target: { op: '<=', value: idle.median * 1.1, source: 'watching costs at most 10%' },
          note: `as deployed: members in this process, the observer polling them every ${INTERVAL} ms with one page connected${QUICK ? '; QUICK run: not a measurement' : ''}`,
        }),
      );
    } finally {
      await broker.stop();
    }
    const url = process.env['AMQP_URL'];
    if (url !== undefined && url !== '') {
      const [amqpWithout, amqpWith] = await figures(() => new AmqpTransport({ urls: url }), `bench-observer-amqp-${process.pid}`);
      rows.push(
        result({
          name: 'register, sequential, observer serving (RabbitMQ)',
          unit: 'us/op',
          better: 'lower',
          value: amqpWith,
          baseline: { name: 'the same, no observer', value: amqpWithout },
          target: { op: '<=', value: amqpWithout.median * 1.1, source: 'watching costs at most 10%' },
          note: `observer polling every ${INTERVAL} ms with one page connected${QUICK ? '; QUICK run: not a measurement' : ''}`,
        }),
      );
    }
    return rows;
  },
};
