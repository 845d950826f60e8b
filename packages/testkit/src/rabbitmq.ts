/**
 * A throwaway RabbitMQ for tests and benchmarks.
 *
 * `startRabbitMQ()` honours `AMQP_URL` (use that broker, start nothing);
 * otherwise it boots a private broker node: its own temporary directory
 * (data, logs, config, Erlang cookie), free ports, no plugins, tuned so that
 * resource alarms never block publishers on a dev box. The broker never
 * outlives the process that started it: `stop()` kills it and removes its
 * directory, exit and signal hooks do the same if `stop()` is never called,
 * and a watchdog process does it even when the test process is SIGKILLed.
 *
 * @module
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runControl, serveControl, type ControlServer } from './internal/rabbitmq-control.js';
import { installRabbitMQ, locateRabbitMQ } from './internal/rabbitmq-install.js';
import { PrivateNode, type BrokerLogLevel } from './internal/rabbitmq-node.js';
import { redactUrl } from '@roster/amqp';
import { probeAmqp } from './internal/rabbitmq-probe.js';

export type { BrokerLogLevel } from './internal/rabbitmq-node.js';

/** Options of {@link startRabbitMQ}. */
export interface StartRabbitMQOptions {
  /**
   * Where to read `AMQP_URL`, `ROSTER_RABBITMQ_CTL`, `ROSTER_RABBITMQ_SERVER`
   * and `ROSTER_RABBITMQ_SLIM` from. Default `process.env`.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Start a private broker even when `AMQP_URL` is set. Default false. */
  readonly forcePrivate?: boolean;
  /** How long a private broker may take to accept AMQP connections (start and resume). Default 60 000 ms. */
  readonly startTimeoutMs?: number;
  /**
   * The `rabbitmq-server` script to run. Default `$ROSTER_RABBITMQ_SERVER`,
   * else the first of the usual install locations and `$PATH`.
   */
  readonly serverPath?: string;
  /**
   * Boot with only the Erlang applications the core broker needs instead of
   * all ~70 shipped plugins; RabbitMQ scans every application on its code path
   * at boot, so this cuts start-up time. Default true, unless
   * `ROSTER_RABBITMQ_SLIM=0`. Falls back to the full install when its layout
   * is unexpected.
   */
  readonly slimPlugins?: boolean;
  /** When RabbitMQ is missing and this process is root on Debian/Ubuntu, install it with apt-get. Default true. */
  readonly install?: boolean;
  /** Level of the broker's own log file (kept in its directory, quoted in start-up errors). Default 'info'. */
  readonly logLevel?: BrokerLogLevel;
  /** Extra `rabbitmq.conf` settings, e.g. `{ 'heartbeat': 10 }`. They override the defaults. */
  readonly config?: Readonly<Record<string, string | number | boolean>>;
  /** Progress notes (only the apt-get install prints any). Default: to stderr. */
  readonly log?: (line: string) => void;
}

/** Options of {@link RabbitMQ.pause}. */
export interface PauseOptions {
  /**
   * `false` (default): SIGKILL the broker's whole process group, like a crash
   * or a pulled cable; clients see their sockets close. `true`: SIGTERM, so
   * RabbitMQ closes client connections with `connection.close` (320
   * CONNECTION_FORCED) before exiting; slower (a few seconds).
   */
  readonly graceful?: boolean;
}

/** A broker for tests: a private node, or an external one from `AMQP_URL`. */
export interface RabbitMQ {
  /** Where to connect, e.g. `amqp://guest:guest@127.0.0.1:34567`. */
  readonly url: string;
  /** True when the broker came from `AMQP_URL`: this object started nothing and `stop()` leaves it alone. */
  readonly external: boolean;
  /** `running`, `paused` (by {@link RabbitMQ.pause}) or `stopped`. */
  readonly state: 'running' | 'paused' | 'stopped';
  /** AMQP port of a private broker; `undefined` when external. */
  readonly port: number | undefined;
  /** Erlang node name of a private broker (`roster-<hex>@localhost`); `undefined` when external. */
  readonly nodeName: string | undefined;
  /** Private broker's directory (data, logs, config); removed by `stop()`. `undefined` when external. */
  readonly dir: string | undefined;
  /** Milliseconds the last start or resume took until the broker accepted AMQP connections; 0 when external. */
  readonly startupMs: number;
  /**
   * Takes the broker away: stops its process, keeping its data directory and
   * port, and resolves once the port refuses connections. No-op when paused.
   * For an external broker this needs `ROSTER_RABBITMQ_CTL`, otherwise it throws.
   */
  pause(options?: PauseOptions): Promise<void>;
  /**
   * Starts the paused (or crashed) broker again on the same port and resolves
   * once it accepts AMQP connections. No-op when running.
   * For an external broker this needs `ROSTER_RABBITMQ_CTL`, otherwise it throws.
   */
  resume(): Promise<void>;
  /** Kills a private broker and removes its directory. Idempotent; a no-op for an external broker. */
  stop(): Promise<void>;
  /**
   * Lets other processes pause and resume this broker: returns the value to
   * export as `ROSTER_RABBITMQ_CTL` next to `AMQP_URL` (for a private broker,
   * `unix:<socket>` served by this process until `stop()`), or `undefined`
   * for an external broker without `ROSTER_RABBITMQ_CTL`.
   */
  shareControl(): Promise<string | undefined>;
  /** The last lines of a private broker's log and stdout; '' when external. */
  logTail(lines?: number): Promise<string>;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;

/**
 * Gives the tests a RabbitMQ.
 *
 * - With `AMQP_URL` set (and not `forcePrivate`): resolves at once with that
 *   broker (`external: true`); `pause`/`resume` go through
 *   `ROSTER_RABBITMQ_CTL` when set (see {@link RabbitMQ.shareControl}) and
 *   throw otherwise.
 * - Otherwise: boots a private broker node on 127.0.0.1 with free ports for
 *   AMQP and Erlang distribution, a unique node name, its own directory under
 *   the OS temp dir (`RABBITMQ_MNESIA_BASE`, `RABBITMQ_LOG_BASE`,
 *   `RABBITMQ_CONFIG_FILE`, an empty `RABBITMQ_ENABLED_PLUGINS_FILE`, an
 *   `.erlang.cookie` under its own `HOME`), `disk_free_limit.absolute = 1MB`
 *   and a 0.9 memory watermark; starts `epmd -daemon` if needed; resolves
 *   once the broker accepts AMQP connections (a raw protocol handshake,
 *   polled with backoff), with user `guest`/`guest` (loopback only, RabbitMQ's
 *   default). A broker that fails to come up within `startTimeoutMs` is killed
 *   and the error quotes the tail of its log.
 * - RabbitMQ missing: installed with apt-get when running as root on
 *   Debian/Ubuntu; otherwise the error says how to install it or to set `AMQP_URL`.
 *
 * Measured on a 2-vCPU container with RabbitMQ 3.10 / Erlang 25: 3.8-6 s to
 * accept connections with `slimPlugins` (the default; up to ~11 s while the
 * machine is busy with other test runs), about 6.2 s without; `resume()`
 * takes about as long as a first start, `pause()` ~30 ms (SIGKILL) or ~1.1 s
 * (graceful), `stop()` ~20-40 ms. Boot is CPU-bound (BEAM loads and JITs
 * every module it scans), so little else helps.
 */
export async function startRabbitMQ(options: StartRabbitMQOptions = {}): Promise<RabbitMQ> {
  const env = options.env ?? process.env;
  const amqpUrl = env['AMQP_URL'];
  if (amqpUrl !== undefined && amqpUrl !== '' && options.forcePrivate !== true) {
    const ctl = env['ROSTER_RABBITMQ_CTL'];
    return new ExternalRabbitMQ(amqpUrl, ctl === '' ? undefined : ctl, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const explicit = options.serverPath ?? env['ROSTER_RABBITMQ_SERVER'];
  let installation = await locateRabbitMQ(explicit);
  if (installation === undefined) {
    if (options.install === false) {
      throw new Error(
        'startRabbitMQ: RabbitMQ is not installed. Install it (Debian/Ubuntu: `sudo apt-get install rabbitmq-server`) or set AMQP_URL.',
      );
    }
    await installRabbitMQ(log);
    installation = await locateRabbitMQ(explicit);
    if (installation === undefined) throw new Error('startRabbitMQ: rabbitmq-server is still not found after installing it');
  }
  const node = await PrivateNode.create({
    installation,
    slim: options.slimPlugins ?? env['ROSTER_RABBITMQ_SLIM'] !== '0',
    logLevel: options.logLevel ?? 'info',
    config: options.config ?? {},
  });
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  let startupMs: number;
  try {
    startupMs = await node.start(timeoutMs);
  } catch (error) {
    await node.destroy();
    throw error;
  }
  return new PrivateRabbitMQ(node, timeoutMs, startupMs);
}

/** Runs `step` after every step queued before it, so pause/resume/stop never interleave. */
class Serial {
  #chain: Promise<unknown> = Promise.resolve();

  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(step, step);
    this.#chain = result.catch(() => {});
    return result;
  }
}

class PrivateRabbitMQ implements RabbitMQ {
  readonly external = false;
  readonly url: string;
  readonly port: number;
  readonly nodeName: string;
  readonly dir: string;
  readonly #node: PrivateNode;
  readonly #timeoutMs: number;
  readonly #serial = new Serial();
  #state: 'running' | 'paused' | 'stopped' = 'running';
  #startupMs: number;
  #control: ControlServer | undefined;

  constructor(node: PrivateNode, timeoutMs: number, startupMs: number) {
    this.#node = node;
    this.url = node.url;
    this.port = node.port;
    this.nodeName = node.nodeName;
    this.dir = node.dir;
    this.#timeoutMs = timeoutMs;
    this.#startupMs = startupMs;
  }

  get state(): 'running' | 'paused' | 'stopped' {
    return this.#state;
  }

  get startupMs(): number {
    return this.#startupMs;
  }

  pause(options: PauseOptions = {}): Promise<void> {
    return this.#serial.run(async () => {
      if (this.#state === 'stopped') throw new Error('RabbitMQ.pause: the broker was stopped');
      if (this.#state === 'paused') return;
      await this.#node.kill(options.graceful === true);
      this.#state = 'paused';
    });
  }

  resume(): Promise<void> {
    return this.#serial.run(async () => {
      if (this.#state === 'stopped') throw new Error('RabbitMQ.resume: the broker was stopped');
      if (this.#node.running) return;
      this.#startupMs = await this.#node.start(this.#timeoutMs);
      this.#state = 'running';
    });
  }

  stop(): Promise<void> {
    return this.#serial.run(async () => {
      if (this.#state === 'stopped') return;
      this.#state = 'stopped';
      await this.#control?.close();
      this.#control = undefined;
      await this.#node.destroy();
    });
  }

  shareControl(): Promise<string | undefined> {
    return this.#serial.run(async () => {
      if (this.#state === 'stopped') throw new Error('RabbitMQ.shareControl: the broker was stopped');
      this.#control ??= await serveControl(
        {
          // Queued behind local steps like any other call; no local step ever waits for a remote request.
          pause: (graceful) => this.pause({ graceful }),
          resume: () => this.resume(),
        },
        join(this.dir, 'control.sock'),
      );
      return this.#control.endpoint;
    });
  }

  logTail(lines?: number): Promise<string> {
    return this.#node.logTail(lines);
  }
}

class ExternalRabbitMQ implements RabbitMQ {
  readonly external = true;
  readonly url: string;
  readonly port = undefined;
  readonly nodeName = undefined;
  readonly dir = undefined;
  readonly startupMs = 0;
  readonly #ctl: string | undefined;
  readonly #timeoutMs: number;
  readonly #serial = new Serial();
  #state: 'running' | 'paused' | 'stopped' = 'running';

  constructor(url: string, ctl: string | undefined, timeoutMs: number) {
    this.url = url;
    this.#ctl = ctl;
    this.#timeoutMs = timeoutMs;
  }

  get state(): 'running' | 'paused' | 'stopped' {
    return this.#state;
  }

  #control(action: string): string {
    if (this.#ctl !== undefined) return this.#ctl;
    throw new Error(
      `RabbitMQ.${action}: AMQP_URL points at an external broker (${redactUrl(this.url)}) that this process cannot stop or start. ` +
        'Pausing needs a private broker (unset AMQP_URL, or pass { forcePrivate: true }) or a control endpoint in ROSTER_RABBITMQ_CTL ' +
        '(scripts/run-tests.mjs exports one for the broker it starts).',
    );
  }

  pause(options: PauseOptions = {}): Promise<void> {
    return this.#serial.run(async () => {
      const ctl = this.#control('pause');
      await runControl(ctl, 'pause', options.graceful === true);
      this.#state = 'paused';
    });
  }

  resume(): Promise<void> {
    return this.#serial.run(async () => {
      const ctl = this.#control('resume');
      await runControl(ctl, 'resume', false);
      await this.#waitReady();
      this.#state = 'running';
    });
  }

  stop(): Promise<void> {
    this.#state = 'stopped';
    return Promise.resolve();
  }

  shareControl(): Promise<string | undefined> {
    return Promise.resolve(this.#ctl);
  }

  logTail(): Promise<string> {
    return Promise.resolve('');
  }

  async #waitReady(): Promise<void> {
    let target: { host: string; port: number; tls: boolean };
    try {
      const parsed = new URL(this.url);
      const tls = parsed.protocol === 'amqps:';
      target = { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port), tls };
    } catch {
      return;
    }
    const deadline = performance.now() + this.#timeoutMs;
    let delay = 50;
    while ((await probeAmqp(target, 1000)) !== 'ready') {
      if (performance.now() > deadline) {
        throw new Error(`RabbitMQ.resume: ${redactUrl(this.url)} did not accept AMQP connections within ${this.#timeoutMs} ms`);
      }
      await sleep(delay);
      delay = Math.min(250, Math.round(delay * 1.5));
    }
  }
}
