/**
 * A chaos run against real RabbitMQ: roster node OS processes
 * (`startNodeProcesses`, each with a GlobalsRegistry and the chaos agent as
 * its setup module), each behind its own TCP fault proxy to its broker of a
 * private RabbitMQ cluster (`startRabbitMQCluster`); a workload on every
 * node (register / unregister / whereis / calls by name / holder kills) and
 * a sampler of every node's table, all recorded in a {@link History}; and a
 * seeded {@link Nemesis} that SIGKILLs and restarts node processes, kills
 * and restarts brokers, and cuts, blackholes and delays node links.
 *
 * The run ends quietly: the nemesis stops (its last fault recovered),
 * every node runs again, the run waits `settle`, and each node reads every
 * name once more (`final: true` whereis). Then the checker runs and the
 * report is built.
 *
 * **Topology**: node `i` (from 0) is given every broker, in the rotated
 * order `rotatedUrls(i mod brokers)` (its preferred broker first), each URL
 * through its own proxy of the node's {@link FaultLink}: a cut or blackhole
 * of node `i` cuts all its brokers at once, while a broker kill lets the
 * nodes on that broker fail over to the next URL of their lists (AmqpTransport
 * tries the others first). The runner follows which broker each node is on
 * (the agent's `connected` / `reconnected` events carry the proxy URL, mapped
 * back to a broker index): a `broker-kill` `affects` the nodes on it at that
 * moment, and `reconnected` node events say which broker the node came back
 * on, so the report counts reconnections by cause and failovers.
 *
 * **Gotchas**: a run needs `rabbitmq-server` (installed on demand on
 * Debian as root) and about 150 MB per node process; booting 3 brokers
 * takes 15-25 s on 2 cores.
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeProcessError, startNodeProcesses, uniqueClusterId, type NodeProcess } from '../cluster-harness.js';
import { startFaultLink, type FaultLink } from '../fault-proxy.js';
import { startRabbitMQCluster, type RabbitMQCluster } from '../rabbitmq-cluster.js';
import { defaultWindows } from './connectivity.js';
import { checkHistory, type CheckerOptions, type CheckResult } from './checker.js';
import { HistoryRecorder, type History, type Millis, type OpHandle, type Operation } from './history.js';
import { Nemesis, seededRandom, type NemesisOptions, type PlannedFault } from './nemesis.js';
import { buildReport, renderReport, type ChaosReport } from './report.js';

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  /** How long the nemesis runs, in minutes (the quiet ending comes on top). Required. */
  readonly minutes: number;
  /** Roster node processes. Default 5. */
  readonly nodes?: number;
  /** Brokers of the private RabbitMQ cluster. Default 3. */
  readonly brokers?: number;
  /** The nemesis (and workload) seed. Default: from the clock. */
  readonly seed?: number;
  /** Size of the pool of global names. Default 10. */
  readonly names?: number;
  /** Cluster heartbeat, ms. Default the shipped 1000. */
  readonly heartbeatInterval?: Millis;
  /** Cluster failure timeout, ms. Default the shipped 3000. */
  readonly failureTimeout?: Millis;
  /** Pause between one worker's operations, [min, max] ms. Default [40, 160]. */
  readonly think?: readonly [Millis, Millis];
  /** Sampling period of every node's table, ms. Default 500. */
  readonly sampleEvery?: Millis;
  /** Checker windows (defaults: derived from the timings, see connectivity.ts; stale slack one heartbeat + 500 ms). */
  readonly checker?: CheckerOptions;
  /** Nemesis tuning (seed, nodes and brokers come from here). */
  readonly nemesis?: Omit<NemesisOptions, 'seed' | 'nodes' | 'brokers'>;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

/** What {@link runChaos} produced. */
export interface ChaosRun {
  readonly history: History;
  readonly check: CheckResult;
  readonly report: ChaosReport;
  /** The report as Markdown. */
  readonly text: string;
}

const AGENT = fileURLToPath(new URL(`./agent.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));
const REGISTRY = { key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry', options: {} } as const;

/** Whether an invoke's failure is the child's own answer (definite) rather than silence (the op may or may not have happened). */
const answered = (error: unknown): error is NodeProcessError => error instanceof NodeProcessError;
const codeOf = (error: NodeProcessError): string => {
  const code = error.code ?? error.remoteName;
  return typeof error.reason === 'string' && error.reason.length <= 40 ? `${code}: ${error.reason}` : code;
};

/** Runs a chaos run; see the module header. Resolves with the history, the checker's verdict and the report. */
export async function runChaos(options: ChaosOptions): Promise<ChaosRun> {
  if (!(typeof options.minutes === 'number' && options.minutes > 0)) throw new TypeError(`runChaos: minutes must be a number > 0, got ${String(options.minutes)}`);
  const nodeCount = options.nodes ?? 5;
  const brokerCount = options.brokers ?? 3;
  if (!(Number.isInteger(nodeCount) && nodeCount >= 2)) throw new TypeError(`runChaos: nodes must be an integer >= 2, got ${String(nodeCount)}`);
  if (!(Number.isInteger(brokerCount) && brokerCount >= 1)) throw new TypeError(`runChaos: brokers must be an integer >= 1, got ${String(brokerCount)}`);
  const seed = options.seed ?? Date.now() % 2_147_483_647;
  const heartbeatInterval = options.heartbeatInterval ?? 1000;
  const failureTimeout = options.failureTimeout ?? 3000;
  const sampleEvery = options.sampleEvery ?? 500;
  const think = options.think ?? [40, 160];
  const log = options.log ?? (() => {});
  const checker: CheckerOptions = { staleSlack: heartbeatInterval + 500, ...options.checker };
  const settle = checker.settle ?? defaultWindows({ nodes: [], failureTimeout, heartbeatInterval, amqpHeartbeat: 5, startedAt: 0, endedAt: 0 }).settle;
  const names = Array.from({ length: options.names ?? 10 }, (_, i) => `name${i}`);
  const nodeNames = Array.from({ length: nodeCount }, (_, i) => `n${i + 1}`);
  const preferredBroker = (node: string): number => nodeNames.indexOf(node) % brokerCount;
  /** The broker each node is on now (from the agent's events); its preferred one until known. */
  const currentBroker = new Map<string, number>();
  /** Proxy port -> broker index. */
  const brokerOfPort = new Map<string, number>();
  const brokerOfUrl = (url: unknown): number | undefined => {
    if (typeof url !== 'string') return undefined;
    try {
      return brokerOfPort.get(new URL(url).port);
    } catch {
      return undefined;
    }
  };

  const recorder = new HistoryRecorder();
  const children = new Map<string, NodeProcess>();
  const holders = new Map<string, Set<string>>(nodeNames.map((n) => [n, new Set<string>()]));
  const links = new Map<string, FaultLink>();
  let rabbit: RabbitMQCluster | undefined;
  const clusterId = uniqueClusterId('chaos');
  const plannedExits = new Set<NodeProcess>();
  let shuttingDown = false;
  const started = Date.now();

  const onCustom = (from: string, event: string, data: unknown): void => {
    const d = data as { pid?: string; at?: number; reason?: string; broker?: string | null };
    if (event === 'death' && typeof d.pid === 'string') {
      recorder.death(d.pid, d.reason, d.at);
      holders.get(from)?.delete(d.pid);
    } else if (event === 'reconnected') {
      const broker = brokerOfUrl(d.broker);
      if (broker !== undefined) currentBroker.set(from, broker);
      recorder.node('reconnected', from, undefined, d.at, broker);
    } else if (event === 'connected') {
      const broker = brokerOfUrl(d.broker);
      if (broker !== undefined) currentBroker.set(from, broker);
    }
  };

  const startNode = async (name: string): Promise<NodeProcess> => {
    let lastError: unknown;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        const [child] = await startNodeProcesses({
          count: 1,
          names: [name],
          amqpUrls: links.get(name)!.urls,
          clusterId,
          heartbeatInterval,
          failureTimeout,
          registries: [REGISTRY],
          setup: { module: AGENT },
          onCustomEvent: onCustom,
          startTimeout: 90_000,
          env: { ROSTER_LOG_LEVEL: process.env['ROSTER_LOG_LEVEL'] ?? 'silent' },
        });
        const handle = child!;
        handle.once('exit', (code, signal) => {
          if (plannedExits.delete(handle) || shuttingDown) return;
          log(`chaos: ${name} exited unexpectedly (${signal ?? code})`);
          recorder.node('kill', name, handle.creation);
        });
        return handle;
      } catch (error) {
        lastError = error;
        log(`chaos: ${name} did not start (${(error as Error).message}); retrying`);
        await sleep(1000 + attempt * 1000);
      }
    }
    throw lastError;
  };

  try {
    rabbit = await startRabbitMQCluster({ nodes: brokerCount, forcePrivate: true });
    log(`chaos: ${brokerCount} broker(s) up in ${rabbit.startupMs} ms`);
    for (const name of nodeNames) {
      const first = preferredBroker(name);
      const link = await startFaultLink({ urls: rabbit.rotatedUrls(first) });
      link.urls.forEach((url, j) => brokerOfPort.set(new URL(url).port, (first + j) % brokerCount));
      links.set(name, link);
    }
    const first = await Promise.all(nodeNames.map((name) => startNode(name)));
    for (const child of first) children.set(child.name, child);
    await Promise.all(first.map((child) => Promise.all(nodeNames.filter((n) => n !== child.name).map((peer) => child.waitForPeer(peer, 60_000)))));
    log(`chaos: ${nodeCount} nodes up and meshed after ${Date.now() - started} ms; seed ${seed}`);
    const startedAt = recorder.now();
    const faultsUntil = startedAt + options.minutes * 60_000;
    let stopping = false;

    // ---- the workload: one worker per node, one operation at a time -------------------
    const workRandom = seededRandom(seed ^ 0x5bd1e995);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(workRandom() * items.length)]!;
    const running = (name: string): NodeProcess | undefined => {
      const child = children.get(name);
      return child?.running === true ? child : undefined;
    };
    const perform = async <O extends Operation>(op: OpHandle<O>, run: () => Promise<O['result']>): Promise<O['result'] | undefined> => {
      try {
        const value = await run();
        op.complete(value);
        return value;
      } catch (error) {
        // An answer that says it failed is definite; silence (timeout, exit) leaves the op open: indeterminate.
        if (answered(error)) op.complete('error' as O['result'], { error: codeOf(error) });
        return undefined;
      }
    };
    const step = async (name: string, child: NodeProcess): Promise<void> => {
      const roll = workRandom();
      const target = pick(names);
      if (roll < 0.3) {
        let pid: string;
        try {
          pid = await child.invoke<string>('spawn', undefined, 5000);
        } catch {
          return;
        }
        holders.get(name)!.add(pid);
        const op = recorder.invoke('register', { process: name, name: target, pid });
        const result = await perform(op, () => child.invoke<'yes' | 'no'>('register', { name: target, pid }, 15_000));
        if (result !== 'yes' && child.running) await child.invoke('kill', { pid }, 5000).catch(() => {});
      } else if (roll < 0.4) {
        await perform(recorder.invoke('unregister', { process: name, name: target }), async () => {
          await child.invoke('unregister', { name: target }, 15_000);
          return 'ok' as const;
        });
      } else if (roll < 0.75) {
        await perform(recorder.invoke('whereis', { process: name, name: target }), () => child.invoke<string | null>('whereis', { name: target }, 5000));
      } else if (roll < 0.9) {
        const op = recorder.invoke('call', { process: name, name: target });
        try {
          const reply = await child.invoke<string>('call', { name: target, timeout: 2000 }, 8000);
          op.complete('ok', { reply, pid: reply });
        } catch (error) {
          if (answered(error)) op.complete('error', { error: codeOf(error) });
        }
      } else {
        const mine = [...holders.get(name)!];
        if (mine.length === 0) return;
        await child.invoke('kill', { pid: pick(mine) }, 5000).catch(() => {});
      }
    };
    const worker = async (name: string): Promise<void> => {
      while (!stopping) {
        const child = running(name);
        if (child === undefined) {
          await sleep(200);
          continue;
        }
        await step(name, child);
        await sleep(think[0] + workRandom() * (think[1] - think[0]));
      }
    };

    // ---- the sampler -----------------------------------------------------------------------
    let sampling = true;
    const takeSample = async (): Promise<void> => {
      const at = recorder.now();
      const views: Record<string, Record<string, string>> = {};
      await Promise.all(
        nodeNames.map(async (name) => {
          const child = running(name);
          if (child === undefined) return;
          try {
            views[name] = await child.invoke<Record<string, string>>('table', undefined, 1000);
          } catch {
            // No answer: absent from this sample.
          }
        }),
      );
      recorder.sample({ at, endAt: recorder.now(), views });
    };
    const sampler = async (): Promise<void> => {
      while (sampling) {
        const next = Date.now() + sampleEvery;
        await takeSample();
        await sleep(Math.max(0, next - Date.now()));
      }
    };

    // ---- the nemesis ------------------------------------------------------------------------
    const nemesis = new Nemesis({ seed, nodes: nodeNames, brokers: brokerCount, ...options.nemesis });
    let faults = 0;
    const inject = async (plan: PlannedFault): Promise<void> => {
      faults++;
      if (plan.fault === 'kill-node') {
        const name = plan.target as string;
        const child = children.get(name)!;
        recorder.fault('kill-node', name);
        recorder.node('kill', name, child.creation);
        plannedExits.add(child);
        child.kill('SIGKILL');
        await child.exited;
        holders.get(name)!.clear();
        await sleep(plan.duration);
        recorder.fault('restart-node', name);
        const fresh = await startNode(name);
        children.set(name, fresh);
        recorder.node('restart', name, fresh.creation, undefined, currentBroker.get(name));
      } else if (plan.fault === 'broker-kill') {
        const index = plan.target as number;
        recorder.fault('broker-kill', `broker${index}`, { affects: nodeNames.filter((n) => (currentBroker.get(n) ?? preferredBroker(n)) === index) });
        await rabbit!.kill(index);
        await sleep(plan.duration);
        await rabbit!.start(index);
        recorder.fault('broker-restart', `broker${index}`);
      } else {
        const name = plan.target as string;
        const link = links.get(name)!;
        if (plan.fault === 'cut') {
          recorder.fault('cut', name);
          await link.cut();
        } else if (plan.fault === 'blackhole') {
          recorder.fault('blackhole', name);
          link.blackhole();
        } else {
          link.delay(plan.delayMs!);
          recorder.fault('delay', name, { ms: plan.delayMs! });
        }
        await sleep(plan.duration);
        await link.heal();
        recorder.fault('heal', name);
      }
    };
    const nemesisLoop = async (): Promise<void> => {
      while (true) {
        const plan = nemesis.next();
        if (Date.now() + plan.quietBefore >= faultsUntil) return;
        await sleep(plan.quietBefore);
        log(`chaos: +${Math.round((Date.now() - startedAt) / 1000)} s ${plan.fault} ${plan.target}${plan.delayMs === undefined ? '' : ` ${plan.delayMs} ms`} for ${plan.duration} ms`);
        await inject(plan);
      }
    };

    const workers = nodeNames.map((name) => worker(name));
    const sampling$ = sampler();
    await nemesisLoop();
    await sleep(Math.max(0, faultsUntil - Date.now()));

    // ---- the quiet ending ----------------------------------------------------------------------
    stopping = true;
    await Promise.all(workers);
    for (const name of nodeNames) {
      if (running(name) === undefined) {
        log(`chaos: ${name} was not running at the end; restarting it`);
        const fresh = await startNode(name);
        children.set(name, fresh);
        recorder.node('restart', name, fresh.creation, undefined, currentBroker.get(name));
      }
    }
    log(`chaos: ${faults} faults; settling ${settle} ms`);
    await sleep(settle);
    for (const name of nodeNames) {
      const child = running(name)!;
      for (const target of names) {
        await perform(recorder.invoke('whereis', { process: name, name: target, final: true }), () => child.invoke<string | null>('whereis', { name: target }, 5000));
      }
    }
    sampling = false;
    await sampling$;
    await takeSample();

    const history = recorder.history({
      nodes: nodeNames,
      brokers: brokerCount,
      failureTimeout,
      heartbeatInterval,
      amqpHeartbeat: 5,
      seed,
      startedAt,
      notes: { names: names.length, sampleEvery, think, minutes: options.minutes, topology: 'node i -> rotatedUrls(i mod brokers): every broker, its preferred first, one fault proxy per node and broker (a FaultLink)' },
    });
    const check = checkHistory(history, checker);
    const report = buildReport(history, { check });
    return { history, check, report, text: renderReport(report) };
  } finally {
    shuttingDown = true;
    await Promise.all([...children.values()].map((child) => child.stop(3000).catch(() => {})));
    await Promise.all([...links.values()].map((link) => link.close().catch(() => {})));
    await rabbit?.stopAll();
  }
}
