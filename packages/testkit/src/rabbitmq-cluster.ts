/**
 * A throwaway RabbitMQ cluster for tests: N brokers of Debian's
 * `rabbitmq-server`, each a private node as {@link startRabbitMQ} starts one
 * (own directory, node name and free ports, slim plugin set, watchdog), with
 * one Erlang cookie between them, joined into one cluster with
 * `rabbitmqctl stop_app; join_cluster; start_app`. Each broker can be
 * stopped gracefully, SIGKILLed, started again (it rejoins from its data
 * directory), frozen with SIGSTOP and thawed with SIGCONT.
 *
 * **When to use**: tests of broker failover and of partitions between
 * brokers. Start it once per test file: booting three brokers on a 2-core
 * machine takes 11-16 s (boot in parallel, then two joins).
 *
 * **External cluster**: `AMQP_CLUSTER_URLS=url1,url2,url3` makes
 * {@link startRabbitMQCluster} use those brokers and start nothing; the
 * fault verbs then need `ROSTER_RABBITMQ_CLUSTER_CTL` (see
 * {@link StartRabbitMQClusterOptions.env}). `AMQP_URL` is not read: one
 * broker is not a cluster.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { redactUrl } from '@roster/amqp';
import { runClusterControl, type ClusterControlAction } from './internal/rabbitmq-cluster-control.js';
import { installRabbitMQ, locateRabbitMQ, type RabbitMQInstallation } from './internal/rabbitmq-install.js';
import { PrivateNode, type BrokerLogLevel, type CtlResult } from './internal/rabbitmq-node.js';
import { probeAmqp } from './internal/rabbitmq-probe.js';
import type { StartRabbitMQOptions } from './rabbitmq.js';

/** Options of {@link startRabbitMQCluster}; `serverPath`, `slimPlugins`, `install`, `logLevel` (of each broker) and `log` as for {@link startRabbitMQ}. */
export interface StartRabbitMQClusterOptions extends Pick<StartRabbitMQOptions, 'serverPath' | 'slimPlugins' | 'install' | 'logLevel' | 'log'> {
  /** How many brokers. Default 3. */
  readonly nodes?: number;
  /**
   * Where to read the environment from. Default `process.env`. Read:
   * - `AMQP_CLUSTER_URLS`: comma-separated broker URLs of an external
   *   cluster; when set (and not `forcePrivate`) nothing is started;
   * - `ROSTER_RABBITMQ_CLUSTER_CTL`: for an external cluster, a shell command
   *   run as `<ctl> <stop|kill|start|pause|resume> <index>` (index from 0, in
   *   the order of `AMQP_CLUSTER_URLS`); without it the fault verbs throw;
   * - `ROSTER_RABBITMQ_SERVER`, `ROSTER_RABBITMQ_SLIM`: as for {@link startRabbitMQ}.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Start a private cluster even when `AMQP_CLUSTER_URLS` is set. Default false. */
  readonly forcePrivate?: boolean;
  /** How long one broker may take to accept AMQP connections (boot, join, `start`). Default 90 000 ms. */
  readonly startTimeoutMs?: number;
  /**
   * Extra `rabbitmq.conf` settings of every broker. They override the
   * cluster defaults, `cluster_partition_handling = autoheal` (a broker that
   * was cut off or frozen rejoins by itself) and `net_ticktime = 10` (brokers
   * notice a frozen peer within about 10 s instead of 60).
   */
  readonly config?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A broker of a {@link RabbitMQCluster}:
 * - `running`: up (or booting, while `start` has not resolved);
 * - `paused`: frozen by {@link RabbitMQCluster.pause} (SIGSTOP): its sockets
 *   stay open and nothing answers;
 * - `stopped`: by {@link RabbitMQCluster.stop} or {@link RabbitMQCluster.kill}; `start` brings it back.
 */
export type BrokerState = 'running' | 'paused' | 'stopped';

/** A RabbitMQ cluster for tests; see {@link startRabbitMQCluster}. */
export interface RabbitMQCluster {
  /** True when the brokers came from `AMQP_CLUSTER_URLS`: nothing was started, `stopAll()` leaves them alone. */
  readonly external: boolean;
  /** How many brokers. */
  readonly size: number;
  /** Every broker's URL, index order, e.g. `amqp://guest:guest@127.0.0.1:34567`. */
  readonly urls: readonly string[];
  /** Erlang node names (`rabbit-<hex>-<i>@localhost`) of a private cluster; empty when external. */
  readonly nodeNames: readonly string[];
  /** Milliseconds from the call until every broker had joined and accepted AMQP connections; 0 when external. */
  readonly startupMs: number;
  /** Broker `i`'s URL (throws a RangeError for an index out of range). */
  url(i: number): string;
  /** Broker `i`'s state as this object knows it. */
  state(i: number): BrokerState;
  /**
   * The URLs starting at broker `i` and wrapping around: what a client that
   * should prefer broker `i` but fail over to the others is given.
   */
  rotatedUrls(i: number): string[];
  /**
   * Stops broker `i` gracefully (SIGTERM: it closes client connections with
   * `connection.close` 320 CONNECTION_FORCED, tells its peers, and exits; a
   * few seconds). Resolves once its AMQP port refuses. No-op when stopped.
   */
  stop(i: number): Promise<void>;
  /** SIGKILLs broker `i`'s process group, like a crash; resolves once its port refuses. No-op when stopped. */
  kill(i: number): Promise<void>;
  /**
   * Starts a stopped broker `i` on the same ports and data directory; it
   * rejoins the cluster (syncing with a running peer before it opens its
   * listeners) and this resolves once it accepts AMQP connections. Resumes a
   * paused broker; no-op when running.
   */
  start(i: number): Promise<void>;
  /** Freezes broker `i` (SIGSTOP to its process group). No-op when paused; throws when stopped. */
  pause(i: number): Promise<void>;
  /** Thaws a paused broker `i` (SIGCONT). No-op when running; throws when stopped. */
  resume(i: number): Promise<void>;
  /**
   * The running members of the cluster as broker `i` reports them
   * (`rabbitmqctl cluster_status`), sorted. Private clusters only.
   */
  runningNodes(i: number): Promise<string[]>;
  /** Runs `rabbitmqctl -n <broker i> ...args` and resolves with its stdout; rejects on a non-zero exit. Private clusters only. */
  rabbitmqctl(i: number, ...args: string[]): Promise<string>;
  /** The last lines of broker `i`'s log and stdout; '' when external. */
  logTail(i: number, lines?: number): Promise<string>;
  /** Kills every broker of a private cluster and removes their directories. Idempotent; a no-op when external. */
  stopAll(): Promise<void>;
}

const DEFAULT_NODES = 3;
const DEFAULT_START_TIMEOUT_MS = 90_000;
const CLUSTER_CONFIG: Readonly<Record<string, string | number | boolean>> = Object.freeze({
  cluster_partition_handling: 'autoheal',
  net_ticktime: 10,
});
const OPTION_KEYS = new Set(['nodes', 'env', 'forcePrivate', 'startTimeoutMs', 'serverPath', 'slimPlugins', 'install', 'logLevel', 'config', 'log']);

/**
 * Gives the tests a RabbitMQ cluster.
 *
 * - With `AMQP_CLUSTER_URLS` set (and not `forcePrivate`): resolves at once
 *   with those brokers (`external: true`, `size` = the number of URLs;
 *   `nodes` is not checked against it); the fault verbs go through
 *   `ROSTER_RABBITMQ_CLUSTER_CTL` and throw without it.
 * - Otherwise: boots `nodes` private brokers in parallel on 127.0.0.1, each
 *   with free AMQP and distribution ports (`RABBITMQ_DIST_PORT`, hence
 *   `inet_dist_listen_min = max`), node name `rabbit-<hex>-<i>@localhost`,
 *   its own directory, one shared Erlang cookie, `guest`/`guest`; then joins
 *   brokers 1..N-1 to broker 0, one at a time (`rabbitmqctl stop_app`,
 *   `join_cluster`, `start_app`), and resolves once every broker accepts AMQP
 *   connections. Any failure stops every broker and the error quotes the log
 *   tail of the one that failed.
 *
 * Like {@link startRabbitMQ}, the brokers never outlive this process: exit
 * and signal hooks and a watchdog per broker (even on SIGKILL of this process).
 *
 * Measured on a 2-vCPU container with RabbitMQ 3.10 / Erlang 25, 3 brokers:
 * 11-16 s to boot and join (the first boot in parallel, CPU-bound), `kill(i)`
 * ~40 ms, `stop(i)` ~1.1 s, `start(i)` 3.5-5.7 s, `runningNodes(i)` ~1 s (a
 * `rabbitmqctl` run); see docs/operating-rabbitmq.md ("Test clusters").
 */
export async function startRabbitMQCluster(options: StartRabbitMQClusterOptions = {}): Promise<RabbitMQCluster> {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`startRabbitMQCluster: unknown option ${JSON.stringify(key)}`);
  }
  const size = options.nodes ?? DEFAULT_NODES;
  if (!Number.isInteger(size) || size < 1 || size > 16) {
    throw new TypeError(`startRabbitMQCluster: option nodes must be an integer from 1 to 16, got ${String(size)}`);
  }
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  if (!(typeof timeoutMs === 'number' && timeoutMs > 0)) {
    throw new TypeError(`startRabbitMQCluster: option startTimeoutMs must be a number of ms > 0, got ${String(timeoutMs)}`);
  }
  const env = options.env ?? process.env;
  const external = env['AMQP_CLUSTER_URLS'];
  if (external !== undefined && external.trim() !== '' && options.forcePrivate !== true) {
    const urls = external
      .split(',')
      .map((url) => url.trim())
      .filter((url) => url !== '');
    for (const url of urls) {
      if (!/^amqps?:\/\//i.test(url)) throw new TypeError(`startRabbitMQCluster: AMQP_CLUSTER_URLS holds a non-AMQP URL: ${redactUrl(url)}`);
    }
    const ctl = env['ROSTER_RABBITMQ_CLUSTER_CTL'];
    return new ExternalCluster(urls, ctl === undefined || ctl === '' ? undefined : ctl, timeoutMs);
  }

  const began = performance.now();
  const installation = await findInstallation(options, env);
  const id = randomBytes(4).toString('hex');
  const cookie = randomBytes(20).toString('hex').toUpperCase();
  const settings = {
    installation,
    slim: options.slimPlugins ?? env['ROSTER_RABBITMQ_SLIM'] !== '0',
    logLevel: options.logLevel ?? 'info',
    config: { ...CLUSTER_CONFIG, ...options.config },
    cookie,
  } as const;
  const created = await Promise.allSettled(
    Array.from({ length: size }, (_, i) => PrivateNode.create({ ...settings, nodeName: `rabbit-${id}-${i}@localhost` })),
  );
  const nodes = created.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failedCreate = created.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failedCreate !== undefined) {
    await Promise.all(nodes.map((node) => node.destroy()));
    throw failedCreate.reason;
  }
  try {
    const booted = await Promise.allSettled(nodes.map((node) => node.start(timeoutMs)));
    const failedBoot = booted.findIndex((result) => result.status === 'rejected');
    if (failedBoot >= 0) throw (booted[failedBoot] as PromiseRejectedResult).reason;
    const seed = nodes[0] as PrivateNode;
    for (const node of nodes.slice(1)) await join(node, seed, timeoutMs);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.destroy()));
    throw error;
  }
  return new PrivateCluster(nodes, timeoutMs, Math.round(performance.now() - began));
}

async function findInstallation(options: StartRabbitMQClusterOptions, env: Readonly<Record<string, string | undefined>>): Promise<RabbitMQInstallation> {
  const explicit = options.serverPath ?? env['ROSTER_RABBITMQ_SERVER'];
  const found = await locateRabbitMQ(explicit);
  if (found !== undefined) return found;
  if (options.install === false) {
    throw new Error(
      'startRabbitMQCluster: RabbitMQ is not installed. Install it (Debian/Ubuntu: `sudo apt-get install rabbitmq-server`) or set AMQP_CLUSTER_URLS.',
    );
  }
  await installRabbitMQ(options.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const installed = await locateRabbitMQ(explicit);
  if (installed === undefined) throw new Error('startRabbitMQCluster: rabbitmq-server is still not found after installing it');
  return installed;
}

/** `rabbitmqctl` on `node`, throwing with its output and the broker's log tail on a non-zero exit. */
async function ctlOrThrow(node: PrivateNode, args: readonly string[], timeoutMs: number): Promise<string> {
  const result: CtlResult = await node.ctl(args, timeoutMs);
  if (result.code === 0) return result.stdout;
  throw new Error(
    `startRabbitMQCluster: rabbitmqctl ${args.join(' ')} on ${node.nodeName} failed (exit ${String(result.code)}):\n` +
      `${(result.stderr || result.stdout).trim().slice(-2000)}\n${await node.logTail(30)}`,
  );
}

/** Joins `node` (running, fresh) to the cluster of `seed`, then waits until it accepts AMQP connections again. */
async function join(node: PrivateNode, seed: PrivateNode, timeoutMs: number): Promise<void> {
  await ctlOrThrow(node, ['stop_app'], timeoutMs);
  await ctlOrThrow(node, ['join_cluster', seed.nodeName], timeoutMs);
  await ctlOrThrow(node, ['start_app'], timeoutMs);
  await waitReady({ host: '127.0.0.1', port: node.port, tls: false }, timeoutMs, node.nodeName);
}

async function waitReady(target: { host: string; port: number; tls: boolean }, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let delay = 50;
  while ((await probeAmqp(target, 1000)) !== 'ready') {
    if (performance.now() > deadline) throw new Error(`RabbitMQCluster: ${what} did not accept AMQP connections within ${timeoutMs} ms`);
    await sleep(delay);
    delay = Math.min(250, Math.round(delay * 1.5));
  }
}

/** Runs steps one after another (per broker: stop, start, pause never interleave on one broker). */
class Serial {
  #chain: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(step, step);
    this.#chain = result.catch(() => {});
    return result;
  }
}

abstract class BaseCluster {
  abstract readonly urls: readonly string[];

  get size(): number {
    return this.urls.length;
  }

  url(i: number): string {
    return this.urls[this.index(i, 'url')] as string;
  }

  rotatedUrls(i: number): string[] {
    const start = this.index(i, 'rotatedUrls');
    return [...this.urls.slice(start), ...this.urls.slice(0, start)];
  }

  protected index(i: number, method: string): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.urls.length) {
      throw new RangeError(`RabbitMQCluster.${method}: no broker ${String(i)} (the cluster has ${this.urls.length}, from 0)`);
    }
    return i;
  }
}

class PrivateCluster extends BaseCluster implements RabbitMQCluster {
  readonly external = false;
  readonly urls: readonly string[];
  readonly nodeNames: readonly string[];
  readonly startupMs: number;
  readonly #nodes: readonly PrivateNode[];
  readonly #states: BrokerState[];
  readonly #serials: Serial[];
  readonly #timeoutMs: number;
  #stopping: Promise<void> | undefined;

  constructor(nodes: readonly PrivateNode[], timeoutMs: number, startupMs: number) {
    super();
    this.#nodes = nodes;
    this.urls = nodes.map((node) => node.url);
    this.nodeNames = nodes.map((node) => node.nodeName);
    this.#states = nodes.map(() => 'running');
    this.#serials = nodes.map(() => new Serial());
    this.#timeoutMs = timeoutMs;
    this.startupMs = startupMs;
  }

  state(i: number): BrokerState {
    return this.#states[this.index(i, 'state')] as BrokerState;
  }

  stop(i: number): Promise<void> {
    return this.#step(i, 'stop', async (node) => {
      if (this.#states[i] === 'stopped') return;
      // A frozen broker handles SIGTERM only once thawed.
      if (this.#states[i] === 'paused') node.signal('SIGCONT');
      await node.kill(true);
      this.#states[i] = 'stopped';
    });
  }

  kill(i: number): Promise<void> {
    return this.#step(i, 'kill', async (node) => {
      if (this.#states[i] === 'stopped') return;
      await node.kill(false);
      this.#states[i] = 'stopped';
    });
  }

  start(i: number): Promise<void> {
    return this.#step(i, 'start', async (node) => {
      if (this.#states[i] === 'paused') {
        node.signal('SIGCONT');
        this.#states[i] = 'running';
        return;
      }
      if (this.#states[i] === 'running' && node.running) return;
      await node.start(this.#timeoutMs);
      this.#states[i] = 'running';
    });
  }

  pause(i: number): Promise<void> {
    return this.#step(i, 'pause', async (node) => {
      if (this.#states[i] === 'paused') return;
      if (this.#states[i] === 'stopped' || !node.signal('SIGSTOP')) throw new Error(`RabbitMQCluster.pause: broker ${i} is stopped; start() it`);
      this.#states[i] = 'paused';
    });
  }

  resume(i: number): Promise<void> {
    return this.#step(i, 'resume', async (node) => {
      if (this.#states[i] === 'running') return;
      if (this.#states[i] === 'stopped') throw new Error(`RabbitMQCluster.resume: broker ${i} is stopped; start() it`);
      node.signal('SIGCONT');
      this.#states[i] = 'running';
    });
  }

  async runningNodes(i: number): Promise<string[]> {
    const out = await this.rabbitmqctl(i, 'cluster_status', '--formatter', 'json');
    const status = JSON.parse(out.slice(out.indexOf('{'))) as { running_nodes?: unknown };
    if (!Array.isArray(status.running_nodes)) throw new Error(`RabbitMQCluster.runningNodes: unexpected cluster_status output: ${out.slice(0, 500)}`);
    return status.running_nodes.map(String).sort();
  }

  async rabbitmqctl(i: number, ...args: string[]): Promise<string> {
    const node = this.#nodes[this.index(i, 'rabbitmqctl')] as PrivateNode;
    const result = await node.ctl(args, this.#timeoutMs);
    if (result.code !== 0) {
      throw new Error(`RabbitMQCluster.rabbitmqctl ${args.join(' ')} on broker ${i} failed (exit ${String(result.code)}): ${(result.stderr || result.stdout).trim().slice(-2000)}`);
    }
    return result.stdout;
  }

  logTail(i: number, lines?: number): Promise<string> {
    return (this.#nodes[this.index(i, 'logTail')] as PrivateNode).logTail(lines);
  }

  stopAll(): Promise<void> {
    this.#stopping ??= Promise.all(
      this.#nodes.map((node, i) =>
        (this.#serials[i] as Serial).run(async () => {
          await node.destroy();
          this.#states[i] = 'stopped';
        }),
      ),
    ).then(() => undefined);
    return this.#stopping;
  }

  #step(i: number, method: string, step: (node: PrivateNode) => Promise<void>): Promise<void> {
    const index = this.index(i, method);
    if (this.#stopping !== undefined) return Promise.reject(new Error(`RabbitMQCluster.${method}: the cluster was stopped`));
    return (this.#serials[index] as Serial).run(() => step(this.#nodes[index] as PrivateNode));
  }
}

class ExternalCluster extends BaseCluster implements RabbitMQCluster {
  readonly external = true;
  readonly urls: readonly string[];
  readonly nodeNames: readonly string[] = [];
  readonly startupMs = 0;
  readonly #ctl: string | undefined;
  readonly #timeoutMs: number;
  readonly #states: BrokerState[];
  readonly #serials: Serial[];

  constructor(urls: readonly string[], ctl: string | undefined, timeoutMs: number) {
    super();
    if (urls.length === 0) throw new TypeError('startRabbitMQCluster: AMQP_CLUSTER_URLS names no broker');
    this.urls = urls;
    this.#ctl = ctl;
    this.#timeoutMs = timeoutMs;
    this.#states = urls.map(() => 'running');
    this.#serials = urls.map(() => new Serial());
  }

  state(i: number): BrokerState {
    return this.#states[this.index(i, 'state')] as BrokerState;
  }

  stop(i: number): Promise<void> {
    return this.#control(i, 'stop', 'stopped');
  }

  kill(i: number): Promise<void> {
    return this.#control(i, 'kill', 'stopped');
  }

  start(i: number): Promise<void> {
    return this.#control(i, 'start', 'running');
  }

  pause(i: number): Promise<void> {
    return this.#control(i, 'pause', 'paused');
  }

  resume(i: number): Promise<void> {
    return this.#control(i, 'resume', 'running');
  }

  runningNodes(): Promise<string[]> {
    return Promise.reject(new Error('RabbitMQCluster.runningNodes: not available for an external cluster (AMQP_CLUSTER_URLS)'));
  }

  rabbitmqctl(): Promise<string> {
    return Promise.reject(new Error('RabbitMQCluster.rabbitmqctl: not available for an external cluster (AMQP_CLUSTER_URLS)'));
  }

  logTail(): Promise<string> {
    return Promise.resolve('');
  }

  stopAll(): Promise<void> {
    return Promise.resolve();
  }

  #control(i: number, action: ClusterControlAction, after: BrokerState): Promise<void> {
    const index = this.index(i, action);
    return (this.#serials[index] as Serial).run(async () => {
      if (this.#ctl === undefined) {
        throw new Error(
          `RabbitMQCluster.${action}: AMQP_CLUSTER_URLS names an external cluster this process cannot control. ` +
            'Set ROSTER_RABBITMQ_CLUSTER_CTL to a command run as `<ctl> <stop|kill|start|pause|resume> <index>`, ' +
            'or start a private cluster (unset AMQP_CLUSTER_URLS, or pass { forcePrivate: true }).',
        );
      }
      await runClusterControl(this.#ctl, action, index, this.#timeoutMs);
      if (action === 'start' || action === 'resume') {
        const parsed = new URL(this.urls[index] as string);
        const tls = parsed.protocol === 'amqps:';
        const port = parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port);
        await waitReady({ host: parsed.hostname.replace(/^\[|\]$/g, ''), port, tls }, this.#timeoutMs, redactUrl(this.urls[index] as string));
      }
      this.#states[index] = after;
    });
  }
}
