/**
 * The supervision suite: how long a DistributedSupervisor's children are
 * out after their node is lost, for 1 and for 1000 children, in memory and
 * over a private RabbitMQ (or `AMQP_URL`).
 *
 * One repetition: a fresh 3-node cluster (survivors `s1`, `s2` and the
 * victim `v`), a member on each, the children placed on `v` (a preference
 * list `[v, s1, s2]` or `[v, s2, s1]`, alternately, so the survivors share
 * them), then `v` is lost without a word and the clock runs until every
 * child answers a call by its global name from `s2`, on a survivor. The
 * baseline, measured on the same loss, is the failure detection itself
 * (the loss until `nodedown` has fired on both survivors: the new claims
 * need every voter to have seen the loss), so the ratio says what
 * supervision adds on top of detection.
 *
 * The loss: in memory, `broker.crash('v')` then `node.stop()` (as the
 * failover tests do). Over RabbitMQ, `v` runs in an OS process of its own
 * (this file, forked with `ROSTER_BENCH_SUPERVISION_MEMBER` set) that is
 * killed with SIGKILL, as the AMQP cluster tests lose a node: its
 * connection drops, its goodbye is never sent.
 *
 * Shorter timings than the defaults (heartbeat 1 s, failure timeout 3 s),
 * said in every row: heartbeat 100 ms, failure timeout 300 ms.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import '@roster/cluster';
import { Node, reply, via, type GenServer, type Name, type Pid } from '@roster/core';
import { MemoryBroker, MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';
import { DistributedSupervisor } from '@roster/supervision';
import { startRabbitMQ } from '@roster/testkit';
import { median, result, type BenchResult, type Measurement, type Suite } from './report.js';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const HEARTBEAT = 100;
const FAILURE_TIMEOUT = 300;
const JOIN_WINDOW = 100;
const SUPERVISOR = 'bench';
const BEHAVIOUR = 'pinger';
const VICTIM = 'v';
/** Children started at once while setting up (bounded, so a busy event loop never looks like a lost node). */
const WAVE = 100;
/** How long one repetition's failover may take before the suite fails. */
const FAILOVER_LIMIT_MS = 30_000;
const MEMBER_ENV = 'ROSTER_BENCH_SUPERVISION_MEMBER';

const Pinger: GenServer<undefined, unknown> = {
  init: () => undefined,
  handleCall: (_request, _from, state, self) => reply(self.node.name, state),
};

interface MemberConfig {
  readonly url: string;
  readonly cluster: string;
  readonly name: string;
}

async function startMemberNode(name: string, transport: Transport, cluster: string): Promise<Node> {
  const node = await Node.start({
    name,
    cluster: { transport, id: cluster, heartbeatInterval: HEARTBEAT, failureTimeout: FAILURE_TIMEOUT, joinWindow: JOIN_WINDOW },
    registries: { globals: new GlobalsRegistry({ registerTimeout: 30_000 }) },
  });
  node.behaviours.register(BEHAVIOUR, Pinger);
  await DistributedSupervisor.start(node, { id: SUPERVISOR });
  return node;
}

/** In the forked victim: one member node over RabbitMQ, until it is killed (or its parent goes). */
async function victimProcess(config: MemberConfig): Promise<void> {
  await startMemberNode(config.name, new AmqpTransport({ urls: config.url }), config.cluster);
  process.on('disconnect', () => process.exit(0));
  process.send!('ready');
}

/** Forks this file as the victim node; resolves once its member runs. */
function forkVictim(config: MemberConfig): Promise<ChildProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [MEMBER_ENV]: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code, signal) => reject(new Error(`the victim process exited before it was ready (${signal ?? code})`)));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => Promise<boolean> | boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`supervision bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

const childName = (id: string): Name => [SUPERVISOR, id];

interface Sample {
  /** Loss -> every child answered a call on a survivor, ms. */
  readonly failover: number;
  /** Loss -> nodedown on both survivors, ms. */
  readonly detection: number;
}

type Kind = 'memory' | 'amqp';

let round = 0;

/** One loss: a fresh cluster, `count` children on the victim, the victim lost, the clock until every child answers again. */
async function failoverOnce(kind: Kind, count: number, url: string | undefined): Promise<Sample> {
  const cluster = `bench-supervision-${process.pid}-${round++}`;
  const broker = kind === 'memory' ? new MemoryBroker({ seed: round }) : undefined;
  const transport = (): Transport => (broker !== undefined ? new MemoryTransport({ broker }) : new AmqpTransport({ urls: url! }));
  const survivors: Node[] = [];
  let victimNode: Node | undefined;
  let victimProcessHandle: ChildProcess | undefined;
  try {
    survivors.push(await startMemberNode('s1', transport(), cluster));
    survivors.push(await startMemberNode('s2', transport(), cluster));
    if (broker !== undefined) victimNode = await startMemberNode(VICTIM, transport(), cluster);
    else victimProcessHandle = await forkVictim({ url: url!, cluster, name: VICTIM });
    const [s1, s2] = survivors as [Node, Node];
    for (const node of survivors) await until(async () => (await DistributedSupervisor.members(node, SUPERVISOR)).length === 3, `${node.name} to see 3 members`, 15_000);

    const ids = Array.from({ length: count }, (_, n) => `c${n}`);
    for (let start = 0; start < count; start += WAVE) {
      await Promise.all(
        ids.slice(start, start + WAVE).map((id, n) =>
          DistributedSupervisor.startChild(s1, SUPERVISOR, { id, behaviour: BEHAVIOUR, placement: (start + n) % 2 === 0 ? [VICTIM, 's1', 's2'] : [VICTIM, 's2', 's1'] }, { timeout: 30_000 }),
        ),
      );
    }
    for (const node of survivors) {
      await until(async () => (await DistributedSupervisor.countChildren(node, SUPERVISOR)).byNode[VICTIM] === count, `${node.name} to see ${count} children on ${VICTIM}`, 15_000);
    }

    let lostAt = 0n;
    const since = (): number => Number(process.hrtime.bigint() - lostAt) / 1e6;
    // Detection: until both survivors' failure detectors have fired (a new claim needs every voter to see the loss).
    let detection = 0;
    const detected = Promise.all(
      survivors.map(
        (node) =>
          new Promise<void>((resolve) => {
            const listener = (down: string): void => {
              if (down !== VICTIM) return;
              detection = Math.max(detection, since());
              node.off('nodedown', listener);
              resolve();
            };
            node.on('nodedown', listener);
          }),
      ),
    );
    // Each child, as its new claim reaches s2: a call by its global name must answer from a survivor.
    const pending = new Set(ids);
    let failover: number | undefined;
    const registry = s2.registry<GlobalsRegistry>('globals');
    let onRegistered: ((name: Name, pid: Pid) => void) | undefined;
    const everyone = new Promise<void>((resolve, reject) => {
      onRegistered = (name, pid) => {
        if (!Array.isArray(name) || name[0] !== SUPERVISOR || typeof name[1] !== 'string' || pid.node === VICTIM) return;
        const id = name[1];
        if (!pending.has(id)) return;
        s2.call(via('globals', name), 'ping', { timeout: 5000 }).then((node) => {
          if (node === VICTIM || !pending.delete(id) || pending.size > 0) return;
          failover = since();
          resolve();
        }, reject);
      };
      registry.on('registered', onRegistered);
    });
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`supervision bench (${kind}): ${pending.size} of ${count} children did not answer within ${FAILOVER_LIMIT_MS} ms of the loss`)), FAILOVER_LIMIT_MS);
    });

    lostAt = process.hrtime.bigint();
    if (broker !== undefined) {
      broker.crash(VICTIM);
      await victimNode!.stop();
      victimNode = undefined;
    } else {
      victimProcessHandle!.kill('SIGKILL');
    }
    try {
      await Promise.race([Promise.all([everyone, detected]), limit]);
    } finally {
      clearTimeout(timer);
      registry.off('registered', onRegistered);
    }
    return { failover: failover!, detection };
  } finally {
    if (victimProcessHandle !== undefined && victimProcessHandle.exitCode === null && victimProcessHandle.signalCode === null) victimProcessHandle.kill('SIGKILL');
    await victimNode?.stop();
    for (const node of survivors.reverse()) await node.stop();
  }
}

interface Series {
  readonly failover: Measurement;
  readonly detection: Measurement;
}

const series = (samples: readonly Sample[]): Series => {
  const failover = samples.map((sample) => sample.failover);
  const detection = samples.map((sample) => sample.detection);
  return { failover: { median: median(failover), samples: failover }, detection: { median: median(detection), samples: detection } };
};

/**
 * `runs` losses of each kind in turn (memory, then RabbitMQ, then memory
 * again...), after `warmup` of each, so a noisy neighbour lands on both.
 */
async function losses(kinds: readonly Kind[], count: number, url: string, runs: number, warmup: number): Promise<Map<Kind, Series>> {
  for (let n = 0; n < warmup; n++) for (const kind of kinds) await failoverOnce(kind, count, url);
  const samples = new Map<Kind, Sample[]>(kinds.map((kind) => [kind, []]));
  for (let n = 0; n < runs; n++) for (const kind of kinds) samples.get(kind)!.push(await failoverOnce(kind, count, url));
  return new Map(kinds.map((kind) => [kind, series(samples.get(kind)!)]));
}

const LABEL: Record<Kind, string> = { memory: 'memory', amqp: 'RabbitMQ, victim SIGKILLed' };
const DETECTION = `loss -> nodedown on both survivors (heartbeat ${HEARTBEAT} ms, failure timeout ${FAILURE_TIMEOUT} ms)`;

function rows(kind: Kind, count: number, figures: Series): BenchResult[] {
  const what = count === 1 ? 'failover, 1 child: loss -> it answers a call on a survivor' : `failover, ${count} children: loss -> all answer a call on survivors`;
  const max = (measurement: Measurement): number => Math.max(...measurement.samples);
  const note = `${figures.failover.samples.length} losses, each on a fresh 3-node cluster; the baseline is measured on the same loss`;
  return [
    result({
      name: `${what} (${LABEL[kind]}), p50`,
      unit: 'ms',
      better: 'lower',
      value: figures.failover,
      baseline: { name: `${DETECTION}, p50`, value: figures.detection },
      note,
    }),
    result({
      name: `${what} (${LABEL[kind]}), max`,
      unit: 'ms',
      better: 'lower',
      value: max(figures.failover),
      baseline: { name: `${DETECTION}, max`, value: max(figures.detection) },
      note,
    }),
  ];
}

export const suite: Suite = {
  name: 'supervision',
  description: 'DistributedSupervisor failover after a node loss (1 and 1000 children), in memory and over RabbitMQ, against the failure detection',
  async run(): Promise<BenchResult[]> {
    const broker = await startRabbitMQ();
    try {
      const kinds = ['memory', 'amqp'] as const;
      const one = await losses(kinds, 1, broker.url, 5, 1);
      const many = await losses(kinds, 1000, broker.url, 3, 0);
      return kinds.flatMap((kind) => [...rows(kind, 1, one.get(kind)!), ...rows(kind, 1000, many.get(kind)!)]);
    } finally {
      await broker.stop();
    }
  },
};

// Forked as the victim node (see forkVictim): nothing else runs in that process.
if (process.env[MEMBER_ENV] !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  await victimProcess(JSON.parse(process.env[MEMBER_ENV]) as MemberConfig);
}
