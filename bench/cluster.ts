/**
 * The cluster suite: remote call round trip, remote spawn round trip
 * (`GenServer.startOn`) and one-way remote send throughput between two nodes, over a private RabbitMQ (two connections in
 * this process) and over the MemoryTransport, against raw amqplib measured in
 * the same run.
 */
import '@roster/cluster';
import { GenServer, Node, noreply, reply, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { startNodeProcesses, startRabbitMQ, stopNodeProcesses, type RabbitMQ } from '@roster/testkit';
import { CpuMeter, cpuNote, cpuSources, rawCpuSources } from './cpu.js';
import { rawRequestReply, rawThroughput } from './amqp-baseline.js';
import { measure, measureInterleaved, microsPerOp, perSecond, result, timeIt, type BenchResult, type Measurement, type Suite } from './report.js';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const CALLS = 2000;
const SPAWNS = 500;
const SENDS = 100_000;
const PAYLOAD = 'x'.repeat(100);

const Echo: GenServer<undefined, undefined> = {
  init: () => undefined,
  handleCall: (request, _from, state) => reply(request, state),
};

/** Counts what it gets and calls `done` when `expected` arrived (started locally, so its args are passed by reference). */
const Sink: GenServer<{ seen: number; readonly expected: number; readonly done: () => void }, { expected: number; done: () => void }> = {
  init: ({ expected, done }) => ({ seen: 0, expected, done }),
  handleInfo: (_message, state) => {
    state.seen++;
    if (state.seen === state.expected) state.done();
    return noreply(state);
  },
};

async function pair(makeTransport: () => Transport, id: string): Promise<[Node, Node]> {
  const options = (): object => ({ transport: makeTransport(), id, joinWindow: 50 });
  const a = await Node.start({ name: 'bench-a', cluster: options() });
  const b = await Node.start({ name: 'bench-b', cluster: options() });
  while (!a.nodes().includes('bench-b') || !b.nodes().includes('bench-a')) await new Promise((resolve) => setTimeout(resolve, 10));
  return [a, b];
}

async function remoteCall(a: Node, echo: Pid, count: number): Promise<number> {
  for (let n = 0; n < 100; n++) await a.call(echo, n);
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) await a.call(echo, n);
  });
  return microsPerOp(count, ms);
}

/**
 * Remote spawns of the Echo behaviour by key from `a` on `b`, one after the
 * other (each resolves after the child's init); the children are stopped
 * after the timing.
 */
async function remoteSpawn(a: Node, count: number): Promise<number> {
  const children: Pid[] = [];
  for (let n = 0; n < 20; n++) children.push(await GenServer.startOn(a, 'bench-b', 'echo', undefined));
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) children.push(await GenServer.startOn(a, 'bench-b', 'echo', undefined));
  });
  for (const child of children) a.exit(child, 'kill');
  return microsPerOp(count, ms);
}

/** One-way sends from a process on `a` to a process on `b`, yielding to the event loop every 1000 sends. */
async function remoteSend(a: Node, b: Node, count: number): Promise<number> {
  let finished!: () => void;
  const received = new Promise<void>((resolve) => (finished = resolve));
  const sink = await GenServer.start(b, Sink, { expected: count, done: finished });
  const ms = await timeIt(async () => {
    a.spawn(async (self) => {
      for (let n = 0; n < count; n++) {
        self.send(sink, PAYLOAD);
        if (n % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
      }
    });
    await received;
  });
  await GenServer.stop(b, sink);
  return perSecond(count, ms);
}

/** Two nodes over `makeTransport`; with `url`, each figure is measured interleaved with its raw amqplib baseline. */
async function figures(
  makeTransport: () => Transport,
  id: string,
  url?: string,
): Promise<{ call: Measurement; spawn: Measurement; send: Measurement; rawCall?: Measurement; rawSend?: Measurement }> {
  const [a, b] = await pair(makeTransport, id);
  try {
    const echo = await GenServer.start(b, Echo, undefined);
    b.behaviours.register('echo', Echo);
    if (url === undefined) {
      const call = await measure(() => remoteCall(a, echo, CALLS), { runs: 5 });
      const spawn = await measure(() => remoteSpawn(a, SPAWNS), { runs: 5 });
      const send = await measure(() => remoteSend(a, b, SENDS), { runs: 3 });
      return { call, spawn, send };
    }
    const [call, rawCall] = await measureInterleaved([() => remoteCall(a, echo, CALLS), () => rawRequestReply(url, CALLS)], { runs: 5 });
    const spawn = await measure(() => remoteSpawn(a, SPAWNS), { runs: 5 });
    const [send, rawSend] = await measureInterleaved([() => remoteSend(a, b, SENDS), () => rawThroughput(url, SENDS)], { runs: 3 });
    return { call, spawn, send, rawCall, rawSend };
  } finally {
    await b.stop();
    await a.stop();
  }
}

/**
 * Remote calls as deployed: the callee's node in its own OS process (the
 * in-process pair shares one thread, so every hop waits behind the other
 * node's work), interleaved run for run with raw request/reply.
 */
async function callAcrossProcesses(url: string, broker: RabbitMQ): Promise<[Measurement, Measurement, Record<string, number>, Record<string, number>]> {
  const id = `bench-cluster-procs-${process.pid}`;
  const node = await Node.start({ name: 'caller', cluster: { transport: new AmqpTransport({ urls: url }), id, joinWindow: 50 } });
  const [peer] = await startNodeProcesses({ count: 1, names: ['callee'], amqpUrl: url, clusterId: id });
  try {
    while (!node.nodes().includes('callee')) await new Promise((resolve) => setTimeout(resolve, 10));
    const echo = await peer!.spawnEcho();
    const meter = new CpuMeter(cpuSources(node, [peer!], broker));
    const rawMeter = new CpuMeter(rawCpuSources(broker));
    const [call, raw] = await measureInterleaved(
      [() => meter.around(CALLS, () => remoteCall(node, echo, CALLS)), () => rawMeter.around(CALLS, () => rawRequestReply(url, CALLS))],
      { runs: 5 },
    );
    return [call, raw, meter.perOp(), rawMeter.perOp()];
  } finally {
    await stopNodeProcesses(peer === undefined ? [] : [peer]);
    await node.stop();
  }
}

export const suite: Suite = {
  name: 'cluster',
  description: 'remote call and send between two nodes, over RabbitMQ and in memory, against raw amqplib',
  async run(): Promise<BenchResult[]> {
    const broker = await startRabbitMQ();
    try {
      const url = broker.url;
      const [callAcross, rawCallAcross, callCpu, rawCallCpu] = await callAcrossProcesses(url, broker);
      const amqp = await figures(() => new AmqpTransport({ urls: url }), `bench-cluster-${process.pid}`, url);
      const rawCall = amqp.rawCall!;
      const rawSend = amqp.rawSend!;
      const memoryBroker = new MemoryBroker({ seed: 1 });
      const memory = await figures(() => new MemoryTransport({ broker: memoryBroker }), `bench-cluster-mem-${process.pid}`);
      return [
        result({
          name: 'remote call round trip (RabbitMQ, callee in its own process)',
          unit: 'us/call',
          better: 'lower',
          value: callAcross,
          baseline: { name: 'raw amqplib request/reply', value: rawCallAcross },
          target: { op: '<=', value: rawCallAcross.median * 1.2, source: '1.2x raw request/reply' },
          note: `one frame each way (the request carries the monitor, the reply drops it); roster ${cpuNote(callCpu)}; raw amqplib (both ends in one process) ${cpuNote(rawCallCpu)}`,
        }),
        result({
          name: 'remote call round trip (RabbitMQ, both nodes in one process)',
          unit: 'us/call',
          better: 'lower',
          value: amqp.call,
          baseline: { name: 'raw amqplib request/reply', value: rawCall },
          note: 'both nodes share this process: each hop waits behind the other node\'s work',
        }),
        result({
          name: 'remote spawn round trip (GenServer.startOn, RabbitMQ, both nodes in one process)',
          unit: 'us/spawn',
          better: 'lower',
          value: amqp.spawn,
          baseline: { name: 'remote call round trip, same pair', value: amqp.call },
          note: 'a start by key: one request and one answer, plus the child\'s creation and init',
        }),
        result({
          name: 'remote send 1 -> 1, 100 B (RabbitMQ)',
          unit: 'msg/s',
          better: 'higher',
          value: amqp.send,
          baseline: { name: 'raw amqplib, 1 msg per send', value: rawSend },
          target: { op: '>=', value: rawSend.median * 1.5, source: '1.5x raw amqplib' },
        }),
        result({
          name: 'remote call round trip (memory)',
          unit: 'us/call',
          better: 'lower',
          value: memory.call,
          baseline: { name: 'raw amqplib request/reply', value: rawCall },
          note: 'in-process transport; the baseline is the broker round trip it avoids',
        }),
        result({
          name: 'remote spawn round trip (GenServer.startOn, memory)',
          unit: 'us/spawn',
          better: 'lower',
          value: memory.spawn,
          baseline: { name: 'remote call round trip, same pair', value: memory.call },
          note: 'in-process transport; a start by key: one request and one answer, plus the child\'s creation and init',
        }),
        result({
          name: 'remote send 1 -> 1, 100 B (memory)',
          unit: 'msg/s',
          better: 'higher',
          value: memory.send,
          baseline: { name: 'raw amqplib, 1 msg per send', value: rawSend },
          note: 'in-process transport',
        }),
      ];
    } finally {
      await broker.stop();
    }
  },
};

