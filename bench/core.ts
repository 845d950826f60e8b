/**
 * The actor core on one node: roster against nact 7.6, measured in the same
 * run with the same message shapes, warm-up and median of 5 runs, the two
 * measured in alternation so a noisy neighbour weighs on both.
 *
 *   send 1 -> 1        1M messages `{ n }` sent in a loop to one receiver that
 *                      counts them (a GenServer's handleInfo; a stateful nact
 *                      actor); timed until the receiver has seen the last one.
 *   send process -> 1  the same with the sender a process (a nact actor; nact
 *                      on a quarter of the batch, see NACT_FROM_ACTOR_COUNT).
 *   call round trip    sequential `node.call(pid, n)` answered by handleCall
 *                      with `reply(n, state)`, and the same from inside a
 *                      process (`self.call`); nact: sequential `query` to an
 *                      actor that dispatches `n` back to the temporary sender.
 *   spawn + exit       processes whose body returns at once (each runs and
 *                      exits `normal`), in waves of 1k (spawned in a loop,
 *                      awaited until all have exited), and as one burst of
 *                      50k; nact: spawn an actor and stop it, timed until
 *                      every `afterStop` has run, in the same waves.
 *
 * Every run starts after a full garbage collection (see `settle`), on a cold
 * heap: a send run's 1M-message backlog is paid in full by the collector
 * (scavenges and a mark-compact of ~40 MB), as it would be by any runtime on
 * a single V8 heap. Targets are Erlang/OTP 25's figures on the reference
 * machine (/work/shared/reference/anchors.md). The whole suite takes ~40 s.
 */
import { dispatch, query, spawn as nactSpawn, start as nactStart, stop as nactStop, type Ref as NactRef } from 'nact';
import { GenServer, Node, noreply, reply, type Pid } from '@roster/core';
import { measureInterleaved, microsPerOp, perSecond, result, timeIt, type BenchResult, type Suite } from './report.js';

const SEND_COUNT = 1_000_000;
const CALL_COUNT = 100_000;
const SPAWN_COUNT = 50_000;
/**
 * Processes alive at once in the spawn + exit row: spawned in a loop, then
 * awaited until they have all exited, wave after wave. A second row runs the
 * whole batch as one burst, where the 50k live processes make the garbage
 * collector, not the runtime, the cost (V8 has one heap; Erlang collects
 * per process).
 */
const SPAWN_WAVE = 1_000;
/**
 * nact's actor -> actor baseline runs a quarter of the batch to keep the suite
 * under a minute: nact pays one setImmediate per message, so its rate does not
 * depend on the batch size, and a smaller mailbox only spares it garbage
 * collection (the comparison leans, if anything, in nact's favour).
 */
const NACT_FROM_ACTOR_COUNT = 250_000;
/** Warm-up runs use a fifth of the batch: enough for the JIT, and nact's warm-up stays short. */
const warmupSize = (count: number, warmup: boolean): number => (warmup ? Math.ceil(count / 5) : count);

interface Counted {
  readonly n: number;
}

type Latch = { readonly done: Promise<void>; open(): void };

function latch(): Latch {
  let open!: () => void;
  const done = new Promise<void>((resolve) => (open = resolve));
  return { done, open };
}

// ---- roster --------------------------------------------------------------------

/** A GenServer counting `info` messages; opens `latch` at the `count`th. */
function counter(node: Node, count: number, finished: Latch): Promise<Pid> {
  return GenServer.start(
    node,
    {
      init: () => 0,
      handleInfo: (_message: unknown, seen: number) => {
        const next = seen + 1;
        if (next === count) finished.open();
        return noreply(next);
      },
    },
    undefined,
  );
}

async function rosterSend(node: Node, count: number): Promise<number> {
  const finished = latch();
  const receiver = await counter(node, count, finished);
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) node.send(receiver, { n });
    await finished.done;
  });
  await GenServer.stop(node, receiver);
  return perSecond(count, ms);
}

async function rosterSendFromProcess(node: Node, count: number): Promise<number> {
  const finished = latch();
  const receiver = await counter(node, count, finished);
  const ms = await timeIt(async () => {
    node.spawn((self) => {
      for (let n = 0; n < count; n++) self.send(receiver, { n });
    });
    await finished.done;
  });
  await GenServer.stop(node, receiver);
  return perSecond(count, ms);
}

const echo: GenServer<number, undefined, number> = {
  init: () => 0,
  handleCall: (request, _from, state) => reply(request, state),
};

async function rosterCall(node: Node, server: Pid, count: number): Promise<number> {
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) await node.call<number>(server, n);
  });
  return microsPerOp(count, ms);
}

async function rosterCallFromProcess(node: Node, server: Pid, count: number): Promise<number> {
  const finished = latch();
  const ms = await timeIt(async () => {
    node.spawn(async (self) => {
      for (let n = 0; n < count; n++) await self.call<number>(server, n);
      finished.open();
    });
    await finished.done;
  });
  return microsPerOp(count, ms);
}

/** Spawns `count` processes in waves of `wave`, each wave spawned in a loop and awaited until all have exited. */
async function rosterSpawnExit(node: Node, count: number, wave: number): Promise<number> {
  const before = node.processes().length;
  const ms = await timeIt(async () => {
    for (let started = 0; started < count; started += wave) {
      const size = Math.min(wave, count - started);
      const finished = latch();
      let exited = 0;
      const body = (): void => {
        if (++exited === size) finished.open();
      };
      for (let index = 0; index < size; index++) node.spawn(body);
      await finished.done;
    }
  });
  const left = node.processes().length - before;
  if (left !== 0) throw new Error(`spawn + exit: ${left} processes still alive after their bodies returned`);
  return perSecond(count, ms);
}

// ---- nact ------------------------------------------------------------------------

type NactSystem = ReturnType<typeof nactStart>;

function nactCounter(system: NactSystem, count: number, finished: Latch): NactRef<Counted> {
  return nactSpawn(
    system,
    (seen: number, _message: Counted) => {
      const next = seen + 1;
      if (next === count) finished.open();
      return next;
    },
    undefined,
    { initialState: 0 },
  );
}

async function nactSend(system: NactSystem, count: number): Promise<number> {
  const finished = latch();
  const receiver = nactCounter(system, count, finished);
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) dispatch(receiver, { n });
    await finished.done;
  });
  nactStop(receiver);
  return perSecond(count, ms);
}

async function nactSendFromActor(system: NactSystem, count: number): Promise<number> {
  const finished = latch();
  const receiver = nactCounter(system, count, finished);
  const sender = nactSpawn(
    system,
    (state: number, _go: 'go') => {
      for (let n = 0; n < count; n++) dispatch(receiver, { n });
      return state;
    },
    undefined,
    { initialState: 0 },
  );
  const ms = await timeIt(async () => {
    dispatch(sender, 'go');
    await finished.done;
  });
  nactStop(sender);
  nactStop(receiver);
  return perSecond(count, ms);
}

interface NactQuery {
  readonly sender: NactRef<number>;
  readonly n: number;
}

async function nactQuery(server: NactRef<NactQuery>, count: number): Promise<number> {
  const ms = await timeIt(async () => {
    for (let n = 0; n < count; n++) await query(server, (sender: NactRef<number>) => ({ sender, n }), 5000);
  });
  return microsPerOp(count, ms);
}

async function nactSpawnStop(system: NactSystem, count: number, wave: number): Promise<number> {
  const ms = await timeIt(async () => {
    for (let started = 0; started < count; started += wave) {
      const size = Math.min(wave, count - started);
      const finished = latch();
      let stopped = 0;
      const afterStop = (): void => {
        if (++stopped === size) finished.open();
      };
      for (let index = 0; index < size; index++) {
        nactStop(nactSpawn(system, (state: number) => state, undefined, { initialState: 0, afterStop }));
      }
      await finished.done;
    }
  });
  return perSecond(count, ms);
}

// ---- the suite -----------------------------------------------------------------------

async function run(): Promise<BenchResult[]> {
  const node = await Node.start({ name: 'bench-core', logLevel: 'silent' });
  const system = nactStart();
  const results: BenchResult[] = [];
  try {
    // Each row runs roster and nact in alternation (see measureInterleaved).
    const [send, nactSendRate] = await measureInterleaved([
      (warm) => rosterSend(node, warmupSize(SEND_COUNT, warm)),
      (warm) => nactSend(system, warmupSize(SEND_COUNT, warm)),
    ]);
    results.push(
      result({
        name: 'send 1 -> 1 (1M msgs)',
        unit: 'msg/s',
        better: 'higher',
        value: send,
        baseline: { name: 'nact dispatch', value: nactSendRate },
        target: { op: '>=', value: 3_000_000, source: 'Erlang/OTP 25' },
      }),
    );

    const [fromProcess, nactFromActor] = await measureInterleaved([
      (warm) => rosterSendFromProcess(node, warmupSize(SEND_COUNT, warm)),
      (warm) => nactSendFromActor(system, warmupSize(NACT_FROM_ACTOR_COUNT, warm)),
    ]);
    results.push(
      result({
        name: 'send process -> process (1M msgs)',
        unit: 'msg/s',
        better: 'higher',
        value: fromProcess,
        baseline: { name: 'nact actor -> actor', value: nactFromActor },
        target: { op: '>=', value: 3_000_000, source: 'Erlang/OTP 25' },
        note: `nact measured on ${NACT_FROM_ACTOR_COUNT} messages per run (its rate is flat in the batch size)`,
      }),
    );

    const server = await GenServer.start(node, echo, undefined);
    const nactServer = nactSpawn(
      system,
      (state: number, message: NactQuery) => {
        dispatch(message.sender, message.n);
        return state;
      },
      undefined,
      { initialState: 0 },
    );
    const [call, callFromProcess, nactCall] = await measureInterleaved([
      (warm) => rosterCall(node, server, warmupSize(CALL_COUNT, warm)),
      (warm) => rosterCallFromProcess(node, server, warmupSize(CALL_COUNT, warm)),
      (warm) => nactQuery(nactServer, warmupSize(CALL_COUNT, warm)),
    ]);
    await GenServer.stop(node, server);
    nactStop(nactServer);
    results.push(
      result({
        name: 'call round trip (node -> GenServer)',
        unit: 'us/call',
        better: 'lower',
        value: call,
        baseline: { name: 'nact query', value: nactCall },
        target: { op: '<=', value: 1.5, source: 'Erlang/OTP 25' },
      }),
      result({
        name: 'call round trip (process -> GenServer)',
        unit: 'us/call',
        better: 'lower',
        value: callFromProcess,
        baseline: { name: 'nact query', value: nactCall },
        target: { op: '<=', value: 1.5, source: 'Erlang/OTP 25' },
      }),
    );

    const [spawnExit, nactSpawnRate] = await measureInterleaved([
      (warm) => rosterSpawnExit(node, warmupSize(SPAWN_COUNT, warm), SPAWN_WAVE),
      (warm) => nactSpawnStop(system, warmupSize(SPAWN_COUNT, warm), SPAWN_WAVE),
    ]);
    const [spawnBurst, nactSpawnBurst] = await measureInterleaved([
      (warm) => rosterSpawnExit(node, warmupSize(SPAWN_COUNT, warm), SPAWN_COUNT),
      (warm) => nactSpawnStop(system, warmupSize(SPAWN_COUNT, warm), SPAWN_COUNT),
    ]);
    results.push(
      result({
        name: `spawn + exit (waves of ${SPAWN_WAVE / 1000}k)`,
        unit: 'procs/s',
        better: 'higher',
        value: spawnExit,
        baseline: { name: 'nact spawn + stop', value: nactSpawnRate },
        target: { op: '>=', value: 400_000, source: 'Erlang/OTP 25' },
      }),
      result({
        name: `spawn + exit (one burst of ${SPAWN_COUNT / 1000}k)`,
        unit: 'procs/s',
        better: 'higher',
        value: spawnBurst,
        baseline: { name: 'nact spawn + stop', value: nactSpawnBurst },
        target: { op: '>=', value: 400_000, source: 'Erlang/OTP 25' },
      }),
    );
  } finally {
    nactStop(system);
    await node.stop();
  }
  return results;
}

export const suite: Suite = {
  name: 'core',
  description: 'actor core on one node: roster vs nact 7.6',
  run,
};
