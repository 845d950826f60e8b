/**
 * The registry suite: three nodes of one cluster in this process, over a
 * private RabbitMQ (one connection each) and over the MemoryTransport, with
 * raw amqplib baselines measured in the same run.
 */
import { readFileSync } from 'node:fs';
import '@roster/cluster';
import { Node, canonicalName, type Name, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';
import { startNodeProcesses, startRabbitMQ, stopNodeProcesses, type NodeProcess, type RabbitMQ } from '@roster/testkit';
import { CpuMeter, cpuNote, cpuSources, rawCpuSources } from './cpu.js';
import { registerMany, unregisterMany } from './fixtures/registry-worker.js';
import { heapPerName } from './heap.js';
import { rawBroadcastCollect, rawRequestReply, rawThroughput, startRawRegistry } from './amqp-baseline.js';
import { measure, measureInterleaved, microsPerOp, perSecond, result, timeIt, type BenchResult, type Measurement, type Suite } from './report.js';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const SEQUENTIAL = 500;
const CONCURRENT_PER_NODE = 5000;
const WAVE = 1000;
const LOOKUPS = 1_000_000;
const DEATHS = 200;
const JOIN_NAMES = 10_000;
const HEAP_NAMES = 20_000;

interface Figures {
  register: Measurement;
  /** `Node.start` of a fourth node, until it resolves knowing the JOIN_NAMES names the others hold. */
  join: Measurement;
  /** The same start with no name held: what joining costs before there is anything to learn. */
  joinEmpty: Measurement;
  concurrent: Measurement;
  unregister: Measurement;
  whereis: Measurement;
  whereisTuple: Measurement;
  death: Measurement;
  /** The raw broadcast-and-collect measured interleaved with `register` (RabbitMQ only). */
  broadcast?: Measurement;
}

/** Lookups of `name` on `node`, in microseconds each; every one must find it. */
function lookups(node: Node, name: Name): number {
  const registry = globals(node);
  let found = 0;
  const start = process.hrtime.bigint();
  for (let n = 0; n < LOOKUPS; n++) if (registry.whereisName(name) !== undefined) found++;
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (found !== LOOKUPS) throw new Error('whereisName missed a registered name');
  return microsPerOp(LOOKUPS, ms);
}

const clusterOptions = (makeTransport: () => Transport, id: string): object => ({
  transport: makeTransport(),
  id,
  joinWindow: 200,
  failureTimeout: 10_000,
  heartbeatInterval: 1000,
});

/**
 * Starts (and stops) a fourth node; the time until `Node.start` resolves, in
 * ms. It must know every one of `expected` by then: the join guarantee.
 */
async function joinOnce(makeTransport: () => Transport, id: string, expected: readonly Name[]): Promise<number> {
  let joined: Node | undefined;
  const ms = await timeIt(async () => {
    joined = await Node.start({
      name: `joiner-${round++}`,
      cluster: clusterOptions(makeTransport, id),
      registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) },
    });
  });
  const registry = globals(joined!);
  const missing = expected.filter((name) => registry.whereisName(name) === undefined).length;
  const members = joined!.nodes();
  await joined!.stop();
  if (missing > 0) {
    throw new Error(`a joining node missed ${missing} of ${expected.length} names when Node.start resolved (it knew ${registry.registered().length}, in ${ms.toFixed(0)} ms, members ${members.join(', ') || 'none'})`);
  }
  return ms;
}

async function joinFigures(nodes: Node[], makeTransport: () => Transport, id: string): Promise<[Measurement, Measurement]> {
  const joinEmpty = await measure(() => joinOnce(makeTransport, id, []), { runs: 3 });
  const names: Name[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      const pids = idlers(node, Math.ceil(JOIN_NAMES / nodes.length));
      await Promise.all(pids.map((pid, n) => {
        const name: Name = ['join', node.name, n];
        names.push(name);
        return globals(node).registerName(name, pid);
      }));
    }),
  );
  const join = await measure(() => joinOnce(makeTransport, id, names), { runs: 3 });
  return [join, joinEmpty];
}

async function cluster(makeTransport: () => Transport, id: string): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const name of ['r1', 'r2', 'r3']) {
    nodes.push(
      await Node.start({
        name,
        cluster: clusterOptions(makeTransport, id),
        registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) },
      }),
    );
  }
  while (nodes.some((node) => node.nodes().length < 2)) await new Promise((resolve) => setTimeout(resolve, 10));
  await Promise.all(nodes.map((node) => globals(node).sync()));
  return nodes;
}

const globals = (node: Node): GlobalsRegistry => node.registry<GlobalsRegistry>('globals');

/** Processes that only wait, to be registered. */
function idlers(node: Node, count: number): Pid[] {
  return Array.from({ length: count }, () =>
    node.spawn(async (self) => {
      await self.receive();
    }),
  );
}

let round = 0;

async function figures(nodes: Node[], makeTransport: () => Transport, id: string, url?: string): Promise<Figures> {
  const [a, b] = nodes as [Node, Node, Node];
  // First, on a fresh cluster: after the heavy phases below, a joiner over RabbitMQ was seen to get no answer
  // within its join window (under investigation; see the issue note).
  const [join, joinEmpty] = await joinFigures(nodes, makeTransport, id);
  const sequential = async (): Promise<number> => {
    const tag = round++;
    const pids = idlers(a, SEQUENTIAL);
    const ms = await timeIt(async () => {
      for (let n = 0; n < SEQUENTIAL; n++) await globals(a).registerName(['seq', tag, n], pids[n]!);
    });
    for (const pid of pids) a.exit(pid, 'kill');
    return microsPerOp(SEQUENTIAL, ms);
  };
  // Over RabbitMQ, interleaved run for run with the raw broadcast-and-collect it is compared to.
  const [register, broadcast] =
    url === undefined
      ? [await measure(sequential, { runs: 3 }), undefined]
      : await measureInterleaved([sequential, () => rawBroadcastCollect(url, 3, SEQUENTIAL)], { runs: 5 });

  let names: { node: Node; name: Name[] }[] = [];
  const concurrent = await measure(async () => {
    const tag = round++;
    names = [];
    const ms = await timeIt(async () => {
      await Promise.all(
        nodes.map(async (node) => {
          for (let start = 0; start < CONCURRENT_PER_NODE; start += WAVE) {
            const pids = idlers(node, WAVE);
            await Promise.all(
              pids.map((pid, n) => {
                const name: Name[] = ['conc', tag, node.name, start + n];
                names.push({ node, name });
                return globals(node).registerName(name, pid);
              }),
            );
          }
        }),
      );
    });
    return perSecond(nodes.length * CONCURRENT_PER_NODE, ms);
  }, { runs: 3, warmup: 0 });

  const unregister = await measure(async () => {
    // Register a fresh set, then time unregistering all of it from every node at once until every peer has seen it.
    const tag = round++;
    const held: { node: Node; name: Name[] }[] = [];
    await Promise.all(
      nodes.map(async (node) => {
        const pids = idlers(node, CONCURRENT_PER_NODE);
        await Promise.all(pids.map((pid, n) => {
          const name: Name[] = ['unreg', tag, node.name, n];
          held.push({ node, name });
          return globals(node).registerName(name, pid);
        }));
      }),
    );
    await Promise.all(nodes.map((node) => globals(node).sync()));
    const remaining = new Map(nodes.map((node) => [node, held.length] as const));
    const allGone = Promise.all(
      nodes.map(
        (node) =>
          new Promise<void>((resolve) => {
            const listener = (name: unknown): void => {
              if (!Array.isArray(name) || name[0] !== 'unreg' || name[1] !== tag) return;
              const left = remaining.get(node)! - 1;
              remaining.set(node, left);
              if (left === 0) {
                globals(node).off('unregistered', listener);
                resolve();
              }
            };
            globals(node).on('unregistered', listener);
          }),
      ),
    );
    const ms = await timeIt(async () => {
      await Promise.all(held.map(({ node, name }) => globals(node).unregisterName(name)));
      await allGone;
    });
    return perSecond(held.length, ms);
  }, { runs: 3, warmup: 0 });

  // The common name is a string (via('globals', 'billing')); a tuple name pays for its canonical encoding.
  const [counter] = idlers(a, 1);
  await globals(a).registerName('whereis-bench', counter!);
  await globals(b).sync();
  const whereis = await measure(() => lookups(b, 'whereis-bench'));
  const whereisTuple = await measure(() => lookups(b, names[0]!.name));

  const death = await measure(async () => {
    const tag = round++;
    const pids = idlers(a, DEATHS);
    for (let n = 0; n < DEATHS; n++) await globals(a).registerName(['death', tag, n], pids[n]!);
    await globals(b).sync();
    let total = 0;
    for (let n = 0; n < DEATHS; n++) {
      const name = canonicalName(['death', tag, n]);
      const gone = new Promise<void>((resolve) => {
        const listener = (seen: unknown): void => {
          if (canonicalName(seen) !== name) return;
          globals(b).off('unregistered', listener);
          resolve();
        };
        globals(b).on('unregistered', listener);
      });
      total += await timeIt(async () => {
        a.exit(pids[n]!, 'kill');
        await gone;
      });
    }
    return (total * 1000) / DEATHS;
  }, { runs: 3 });

  return { register, join, joinEmpty, concurrent, unregister, whereis, whereisTuple, death, ...(broadcast !== undefined ? { broadcast } : {}) };
}

/**
 * Sequential registration as deployed: this node registers, its two peers
 * vote from their own OS processes (as Erlang's figures come from three VMs),
 * interleaved run for run with the raw broadcast-and-collect.
 */
/** What the 3-processes cluster measured: sequential registration and its baseline, concurrent registration and unregistration with CPU per operation. */
interface AcrossProcesses {
  readonly sequential: Measurement;
  readonly broadcast: Measurement;
  readonly sequentialCpu: Record<string, number>;
  /** The raw broadcast-and-collect's CPU per operation (all its ends in this process) and the broker's. */
  readonly rawCpu: Record<string, number>;
  readonly register: Measurement;
  readonly unregister: Measurement;
  readonly registerCpu: Record<string, number>;
  readonly unregisterCpu: Record<string, number>;
  /** The raw registry floor's concurrent registration (same nodes, names, waves), interleaved with `register`, and its CPU per operation. */
  readonly floorRegister: Measurement;
  readonly floorRegisterCpu: Record<string, number>;
  /** The floor's unregistration of those names (release and ack, all at once), interleaved with `unregister`, and its CPU per operation. */
  readonly floorUnregister: Measurement;
  readonly floorUnregisterCpu: Record<string, number>;
}

const WORKER = new URL('./fixtures/registry-worker.ts', import.meta.url).href;

/**
 * Every node registers CONCURRENT_PER_NODE names at once (WAVE at a time),
 * this process's node directly and the two others through `invoke`; then
 * every node unregisters its names at once (each `unregisterName` resolves
 * when every member has dropped the name). Each phase interleaved run for
 * run with the raw registry floor doing the same. Ops/s over the wall time
 * of the slowest node; CPU per operation of each process and of the broker.
 */
async function concurrentAcrossProcesses(node: Node, peers: readonly NodeProcess[], broker: RabbitMQ): Promise<Omit<AcrossProcesses, 'sequential' | 'broadcast' | 'sequentialCpu' | 'rawCpu'>> {
  const sources = cpuSources(node, peers, broker);
  const registerMeter = new CpuMeter(sources);
  const unregisterMeter = new CpuMeter(sources);
  const ops = (peers.length + 1) * CONCURRENT_PER_NODE;
  let round = 0;
  const tags: string[] = [];
  /** `run`, CPU-metered unless it is a warm-up (JIT, heap sizing: the first rounds run at a third of the later ones' rate). */
  const metered = (meter: CpuMeter, warm: boolean, run: () => Promise<number>): Promise<number> => (warm ? run() : meter.around(ops, run));
  /** Every node at once runs the worker's `fn` (this one directly, the others through invoke); ops/s over the slowest. */
  const everyNode = async <A>(meter: CpuMeter, warm: boolean, fn: 'registerMany' | 'unregisterMany', args: A, local: (node: Node, args: A) => Promise<number>): Promise<number> => {
    const run = (): Promise<number> => timeIt(() => Promise.all([local(node, args), ...peers.map((peer) => peer.invoke(fn, args, 120_000))]));
    return perSecond(ops, await metered(meter, warm, run));
  };
  const rosterRegister = (warm: boolean): Promise<number> => {
    const tag = `cross-${round++}`;
    tags.push(tag);
    return everyNode(registerMeter, warm, 'registerMany', { tag, count: CONCURRENT_PER_NODE, wave: WAVE }, registerMany);
  };
  // As many rounds as registered ones, oldest first: the warm-up's names are unregistered by the warm-up.
  const rosterUnregister = (warm: boolean): Promise<number> => {
    const tag = tags.shift();
    if (tag === undefined) throw new Error('no registered round left to unregister');
    return everyNode(unregisterMeter, warm, 'unregisterMany', { tag, count: CONCURRENT_PER_NODE }, unregisterMany);
  };
  // The floor's voters live through both phases (its unregister rounds release what its register rounds left)
  // and no longer: idle, they would still be 3 more processes on 2 cores.
  const floorNodes = await startRawRegistry(broker.url, broker, peers.length + 1);
  try {
    const floorRegisterMeter = new CpuMeter(floorNodes.cpuSources());
    const floorUnregisterMeter = new CpuMeter(floorNodes.cpuSources());
    const floorRegisterRound = (warm: boolean): Promise<number> => metered(floorRegisterMeter, warm, () => floorNodes.round(CONCURRENT_PER_NODE, WAVE));
    const floorUnregisterRound = (warm: boolean): Promise<number> => metered(floorUnregisterMeter, warm, () => floorNodes.unregisterRound());
    const [register, floorRegister] = await measureInterleaved([rosterRegister, floorRegisterRound], { runs: 3, warmup: 1 });
    const [unregister, floorUnregister] = await measureInterleaved([rosterUnregister, floorUnregisterRound], { runs: 3, warmup: 1 });
    return {
      register,
      unregister,
      registerCpu: registerMeter.perOp(),
      unregisterCpu: unregisterMeter.perOp(),
      floorRegister,
      floorRegisterCpu: floorRegisterMeter.perOp(),
      floorUnregister,
      floorUnregisterCpu: floorUnregisterMeter.perOp(),
    };
  } finally {
    await floorNodes.stop();
  }
}

async function acrossProcesses(url: string, broker: RabbitMQ): Promise<AcrossProcesses> {
  const id = `bench-registry-procs-${process.pid}`;
  const node = await Node.start({
    name: 'q1',
    cluster: { transport: new AmqpTransport({ urls: url }), id, joinWindow: 50, failureTimeout: 10_000 },
    registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) },
  });
  const peers = await startNodeProcesses({
    count: 2,
    names: ['q2', 'q3'],
    amqpUrl: url,
    clusterId: id,
    failureTimeout: 10_000,
    registries: [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry', options: { registerTimeout: 30_000 } }],
    setup: { module: WORKER },
  });
  try {
    while (node.nodes().length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await globals(node).sync();
    let tag = 0;
    const sequential = async (): Promise<number> => {
      const run = tag++;
      const pids = idlers(node, SEQUENTIAL);
      const ms = await timeIt(async () => {
        for (let n = 0; n < SEQUENTIAL; n++) await globals(node).registerName(['procs', run, n], pids[n]!);
      });
      for (const pid of pids) node.exit(pid, 'kill');
      return microsPerOp(SEQUENTIAL, ms);
    };
    const meter = new CpuMeter(cpuSources(node, peers, broker));
    const rawMeter = new CpuMeter(rawCpuSources(broker));
    const [measured, broadcast] = await measureInterleaved(
      [() => meter.around(SEQUENTIAL, sequential), () => rawMeter.around(SEQUENTIAL, () => rawBroadcastCollect(url, 3, SEQUENTIAL))],
      { runs: 5 },
    );
    return { sequential: measured, broadcast, sequentialCpu: meter.perOp(), rawCpu: rawMeter.perOp(), ...(await concurrentAcrossProcesses(node, peers, broker)) };
  } finally {
    await stopNodeProcesses(peers);
    await node.stop();
  }
}

/** The floor for a lookup: a Map read under the name's canonical encoding. */
function mapLookup(name: Name): number {
  const map = new Map<string, object>([[canonicalName(name), {}]]);
  const start = process.hrtime.bigint();
  let found = 0;
  for (let n = 0; n < LOOKUPS; n++) if (map.get(canonicalName(name)) !== undefined) found++;
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (found !== LOOKUPS) throw new Error('unreachable');
  return microsPerOp(LOOKUPS, ms);
}

async function run(makeTransport: () => Transport, id: string, url?: string): Promise<Figures> {
  const nodes = await cluster(makeTransport, id);
  try {
    return await figures(nodes, makeTransport, id, url);
  } finally {
    for (const node of [...nodes].reverse()) await node.stop();
  }
}

/** The figure the last recorded run had for `name` (before read-your-writes, for the first run after it). */
function previous(name: string): string {
  try {
    const recorded = JSON.parse(readFileSync(new URL('./results/registry.json', import.meta.url), 'utf8')) as { results: { name: string; value: number }[] };
    const figure = recorded.results.find((entry) => entry.name === name)?.value;
    return figure === undefined ? '' : `; the previous recorded run: ${figure.toFixed(0)} us`;
  } catch {
    return '';
  }
}

export const suite: Suite = {
  name: 'registry',
  description: 'the globals registry on 3 nodes, over RabbitMQ and in memory, against raw amqplib',
  async run(): Promise<BenchResult[]> {
    const broker = await startRabbitMQ();
    try {
      const url = broker.url;
      const requestReply = await measure(() => rawRequestReply(url, SEQUENTIAL), { runs: 3 });
      const throughput = await measure(() => rawThroughput(url, 100_000), { runs: 3 });
      const lookup = await measure(() => mapLookup('whereis-bench'));
      const lookupTuple = await measure(() => mapLookup(['conc', 0, 'r1', 0]));
      const across = await acrossProcesses(url, broker);
      const amqp = await run(() => new AmqpTransport({ urls: url }), `bench-registry-${process.pid}`, url);
      const broadcast = amqp.broadcast!;
      const memoryBroker = new MemoryBroker({ seed: 7 });
      const memory = await run(() => new MemoryTransport({ broker: memoryBroker }), `bench-registry-mem-${process.pid}`);
      const heap = await heapPerName(HEAP_NAMES);
      const rows = (label: string, figures: Figures, targets: boolean): BenchResult[] => [
        result({
          name: `register, sequential (${label}${targets ? ', 3 nodes in one process' : ''})`,
          unit: 'us/op',
          better: 'lower',
          value: figures.register,
          baseline: { name: 'raw broadcast to 3 queues + 2 replies', value: broadcast },
          note: `all three nodes share this process: every hop waits behind the other nodes' work; read-your-writes (the commit is acknowledged by every voter before yes)${previous(`register, sequential (${label}${targets ? ', 3 nodes in one process' : ''})`)}`,
        }),
        result({
          name: `join -> knows all ${JOIN_NAMES} names (${label})`,
          unit: 'ms',
          better: 'lower',
          value: figures.join,
          baseline: { name: 'the same join with no name held', value: figures.joinEmpty },
          note: 'Node.start of a 4th node until it resolves; every name is checked to resolve then',
        }),
        result({
          name: `register, concurrent from 3 nodes (${label}${targets ? ', 3 nodes in one JS thread: one core' : ''})`,
          unit: 'ops/s',
          better: 'higher',
          value: figures.concurrent,
          baseline: { name: 'raw amqplib 1 -> 1 msg/s', value: throughput },
        }),
        result({
          name: `unregister, concurrent from 3 nodes (${label}${targets ? ', 3 nodes in one JS thread: one core' : ''})`,
          unit: 'ops/s',
          better: 'higher',
          value: figures.unregister,
          baseline: { name: 'raw amqplib 1 -> 1 msg/s', value: throughput },
        }),
        result({
          name: `whereisName, string name (${label})`,
          unit: 'us/op',
          better: 'lower',
          value: figures.whereis,
          baseline: { name: 'Map.get(canonicalName(name))', value: lookup },
          ...(targets ? { target: { op: '<=' as const, value: 0.2, source: 'issue #4' } } : {}),
        }),
        result({
          name: `whereisName, 4-tuple name (${label})`,
          unit: 'us/op',
          better: 'lower',
          value: figures.whereisTuple,
          baseline: { name: 'Map.get(canonicalName(name))', value: lookupTuple },
          ...(targets ? { target: { op: '<=' as const, value: 0.4, source: 'issue 11' } } : {}),
        }),
        result({
          name: `death -> gone on a peer (${label})`,
          unit: 'us',
          better: 'lower',
          value: figures.death,
          baseline: { name: 'raw amqplib request/reply', value: requestReply },
          note: 'one-way release vs a full round trip',
        }),
      ];
      return [
        result({
          name: 'register, sequential (RabbitMQ, peers in their own processes)',
          unit: 'us/op',
          better: 'lower',
          value: across.sequential,
          baseline: { name: 'raw broadcast to 3 queues + 2 replies', value: across.broadcast },
          target: { op: '<=', value: across.broadcast.median * 1.3, source: '1.3x raw broadcast-and-collect' },
          note: `read-your-writes: a claim round trip, then a commit round trip (every voter acknowledges before yes); roster ${cpuNote(across.sequentialCpu)} (with each name's release when its process is ended after the run); raw ${cpuNote(across.rawCpu)}`,
        }),
        result({
          name: 'register, concurrent from 3 nodes (RabbitMQ, each node in its own OS process)',
          unit: 'ops/s',
          better: 'higher',
          value: across.register,
          baseline: { name: 'raw amqplib, the same 4 messages per registration batched (floor)', value: across.floorRegister },
          target: { op: '>=', value: 64_474, source: 'syn 3.4 (anchors.md)' },
          note: `roster ${cpuNote(across.registerCpu)}; the floor (claim, vote, commit, ack as packed JSON, batched per peer per turn, plain publishing, its 3 nodes f1-f3 each in a child process where roster's q1 is this one) ${cpuNote(across.floorRegisterCpu)}`,
        }),
        result({
          name: 'unregister, concurrent from 3 nodes (RabbitMQ, each node in its own OS process)',
          unit: 'ops/s',
          better: 'higher',
          value: across.unregister,
          baseline: { name: 'raw amqplib, release + ack per unregistration batched (floor)', value: across.floorUnregister },
          target: { op: '>=', value: 68_213, source: 'syn 3.4 (anchors.md)' },
          note: `roster ${cpuNote(across.unregisterCpu)}; the floor (release, ack as packed JSON, batched per peer per turn, plain publishing, f1-f3 as for registration) ${cpuNote(across.floorUnregisterCpu)}`,
        }),
        ...rows('RabbitMQ', amqp, true),
        ...rows('memory', memory, false),
        result({
          name: `heap per held name, at its owner and one peer together (memory, ${HEAP_NAMES} 3-tuple names)`,
          unit: 'bytes',
          better: 'lower',
          value: heap.perName,
          baseline: { name: 'a Map<string, Pid> entry for the same name', value: heap.perMapEntry },
          note: `after full collections, the registrants spawned and idle before; once all are unregistered, ${heap.perReleasedName.toFixed(0)} bytes per name stay for up to 60 s (release fences and votes)`,
        }),
      ];
    } finally {
      await broker.stop();
    }
  },
};
