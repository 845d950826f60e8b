import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSlimHome, ensureEpmd, type RabbitMQInstallation } from './rabbitmq-install.js';
import { freePorts, probeAmqp } from './rabbitmq-probe.js';

/** Levels RabbitMQ's file log accepts. */
export type BrokerLogLevel = 'debug' | 'info' | 'warning' | 'error';

/** How to build a private node. */
export interface PrivateNodeSettings {
  readonly installation: RabbitMQInstallation;
  /** Boot with only the plugins `rabbit` needs (faster); see `buildSlimHome`. */
  readonly slim: boolean;
  readonly logLevel: BrokerLogLevel;
  /** Extra `rabbitmq.conf` lines, `key = value`. */
  readonly config: Readonly<Record<string, string | number | boolean>>;
  /** Erlang cookie; default a fresh random one (nodes of one RabbitMQ cluster must share theirs). */
  readonly cookie?: string;
  /** Erlang node name; default `roster-<hex>@localhost`. */
  readonly nodeName?: string;
}

/** What {@link PrivateNode.ctl} gives back. */
export interface CtlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Environment variables never inherited by the broker: they would point it at the system's files. */
const SCRUBBED = new Set(['ERL_LIBS', 'ERL_FLAGS', 'ERL_AFLAGS', 'ERL_ZFLAGS', 'ERL_CRASH_DUMP', 'HOME', 'NOTIFY_SOCKET']);

/**
 * Kills what a private node left behind when the test process dies without
 * calling `stop()` (even by SIGKILL): it waits for EOF on its stdin, a pipe
 * only this process holds, then kills the broker's process group (read from
 * `broker.pgid`) and removes the node's directory.
 */
// (No "--" after the signal: the kill builtin of dash rejects it.)
const WATCHDOG_SCRIPT = `cat >/dev/null 2>&1
p=$(cat "$1/broker.pgid" 2>/dev/null)
[ -n "$p" ] && kill -KILL "-$p" 2>/dev/null
rm -rf "$1"`;

/** Live nodes, killed by the exit and signal hooks. */
const live = new Set<PrivateNode>();
const EXIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();

function onExit(): void {
  for (const node of live) node.destroySync();
}

function track(node: PrivateNode): void {
  live.add(node);
  if (live.size !== 1) return;
  process.on('exit', onExit);
  for (const signal of EXIT_SIGNALS) {
    const handler = (): void => {
      // Alone on this signal: keep its default behaviour (die by it) instead of swallowing it.
      // (Counted first: destroying the last node removes this very handler.)
      const alone = process.listenerCount(signal) === 1;
      for (const each of [...live]) each.destroySync();
      untrackAll();
      if (alone) process.kill(process.pid, signal);
    };
    signalHandlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function untrackAll(): void {
  process.removeListener('exit', onExit);
  for (const [signal, handler] of signalHandlers) process.removeListener(signal, handler);
  signalHandlers.clear();
}

function untrack(node: PrivateNode): void {
  if (!live.delete(node)) return;
  if (live.size === 0) untrackAll();
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/**
 * True when `promise` settles within `ms`, false otherwise. The timer is
 * cleared as soon as it does: a pending timer would keep the process alive
 * long after the broker is gone.
 */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The last `lines` lines of a file, or '' when it cannot be read. */
async function tail(path: string, lines: number): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '';
  }
}

/**
 * One private RabbitMQ node: its own directory (data, logs, config, cookie),
 * its own ports, its own process group. `start` and `kill` may alternate
 * (pause/resume keep the directory and ports); `destroy` ends it for good.
 */
export class PrivateNode {
  readonly dir: string;
  readonly port: number;
  readonly distPort: number;
  readonly nodeName: string;
  readonly url: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #script: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #watchdog: ChildProcess | undefined;
  #destroyed = false;

  private constructor(dir: string, port: number, distPort: number, nodeName: string, env: NodeJS.ProcessEnv, script: string) {
    this.dir = dir;
    this.port = port;
    this.distPort = distPort;
    this.nodeName = nodeName;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.#env = env;
    this.#script = script;
  }

  /** Lays out the node's directory and files; starts nothing yet. */
  static async create(settings: PrivateNodeSettings): Promise<PrivateNode> {
    const dir = await mkdtemp(join(tmpdir(), 'roster-rabbitmq-'));
    try {
      const [port, distPort] = await freePorts(2);
      if (port === undefined || distPort === undefined) throw new Error('startRabbitMQ: could not reserve two free ports');
      const nodeName = settings.nodeName ?? `roster-${randomBytes(5).toString('hex')}@localhost`;
      const home = join(dir, 'home');
      await Promise.all([mkdir(home), mkdir(join(dir, 'mnesia')), mkdir(join(dir, 'log'))]);
      await writeFile(join(home, '.erlang.cookie'), settings.cookie ?? randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
      const config: Record<string, string | number | boolean> = {
        'listeners.tcp.default': `127.0.0.1:${port}`,
        // guest may log in from loopback only (RabbitMQ's default); we only ever connect over 127.0.0.1.
        'loopback_users.guest': true,
        // A dev box's disk or memory must never trip the alarms that block publishers.
        'disk_free_limit.absolute': '1MB',
        'vm_memory_high_watermark.relative': 0.9,
        'log.console': false,
        'log.file.level': settings.logLevel,
        ...settings.config,
      };
      await writeFile(
        join(dir, 'rabbitmq.conf'),
        `${Object.entries(config)
          .map(([key, value]) => `${key} = ${String(value)}`)
          .join('\n')}\n`,
      );
      await writeFile(join(dir, 'advanced.config'), '[].\n');
      // No plugins: no management listener, no prometheus endpoint, nothing else to bind.
      await writeFile(join(dir, 'enabled_plugins'), '[].\n');
      // Shadows /etc/rabbitmq/rabbitmq-env.conf.
      await writeFile(join(dir, 'rabbitmq-env.conf'), '');

      let slimHome: string | undefined;
      let script = settings.installation.serverScript;
      if (settings.slim) {
        slimHome = await buildSlimHome(settings.installation, join(dir, 'rabbitmq-home'));
        if (slimHome !== undefined) script = join(slimHome, 'sbin', 'rabbitmq-server');
      }

      const env: NodeJS.ProcessEnv = {};
      for (const [key, value] of Object.entries(process.env)) {
        if (value !== undefined && !key.startsWith('RABBITMQ_') && !SCRUBBED.has(key)) env[key] = value;
      }
      Object.assign(env, {
        HOME: home,
        RABBITMQ_NODENAME: nodeName,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(port),
        RABBITMQ_DIST_PORT: String(distPort),
        RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(dir, 'log'),
        RABBITMQ_LOGS: join(dir, 'log', 'rabbit.log'),
        RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
        RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
        RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
        RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
        ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
      });
      if (slimHome !== undefined) {
        // rabbitmq-env derives RABBITMQ_HOME (and ERL_LIBS = $RABBITMQ_HOME/plugins) from the scripts directory.
        env['RABBITMQ_SCRIPTS_DIR'] = join(slimHome, 'sbin');
        env['RABBITMQ_PLUGINS_DIR'] = join(slimHome, 'plugins');
      }
      const node = new PrivateNode(dir, port, distPort, nodeName, env, script);
      node.#startWatchdog();
      track(node);
      return node;
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** True while the broker process runs (it may still be booting). */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Spawns the broker and resolves once it accepts AMQP connections, with the
   * time that took in ms. On failure the broker is killed and the error
   * carries the tail of its logs.
   */
  async start(timeoutMs: number): Promise<number> {
    if (this.#destroyed) throw new Error('startRabbitMQ: this broker was stopped');
    if (this.#child !== undefined) return 0;
    await ensureEpmd(this.#env);
    const began = performance.now();
    const out = openSync(join(this.dir, 'stdout.log'), 'a');
    let child: ChildProcess;
    try {
      // Own process group (detached) so that one kill reaches the script, beam and its helpers.
      child = spawn(this.#script, [], { cwd: this.dir, env: this.#env, detached: true, stdio: ['ignore', out, out] });
    } finally {
      closeSync(out);
    }
    // The exit hooks kill it; it must not keep the event loop alive on its own.
    child.unref();
    this.#child = child;
    let exitInfo: string | undefined;
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (error) => {
        spawnError = error;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitInfo = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    if (child.pid !== undefined) writeFileSync(join(this.dir, 'broker.pgid'), String(child.pid));

    const deadline = began + timeoutMs;
    let delay = 50;
    for (;;) {
      if (spawnError !== undefined) {
        throw new Error(`startRabbitMQ: could not run ${this.#script}: ${spawnError.message}`);
      }
      if (exitInfo !== undefined) {
        throw new Error(`startRabbitMQ: the broker exited during start-up (${exitInfo}).\n${await this.logTail(40)}`);
      }
      const result = await probeAmqp({ host: '127.0.0.1', port: this.port }, 1000);
      if (result === 'ready') return Math.round(performance.now() - began);
      if (performance.now() > deadline) {
        const logs = await this.logTail(40);
        await this.kill(false);
        throw new Error(`startRabbitMQ: the broker did not accept AMQP connections within ${timeoutMs} ms.\n${logs}`);
      }
      await sleep(delay);
      delay = Math.min(250, Math.round(delay * 1.5));
    }
  }

  /**
   * Stops the broker process, keeping its directory. `graceful` sends SIGTERM
   * (RabbitMQ closes client connections with a `connection.close`, then
   * exits; a few seconds) and falls back to SIGKILL after 20 s; otherwise the
   * whole process group is SIGKILLed at once, like a crash or a pulled cable.
   * Resolves once the AMQP port refuses connections.
   */
  async kill(graceful: boolean): Promise<void> {
    const child = this.#child;
    if (child !== undefined) {
      if (graceful) {
        child.kill('SIGTERM');
        const stopped = await settlesWithin(this.#exited, 20_000);
        if (!stopped) killGroup(child.pid, 'SIGKILL');
      } else {
        killGroup(child.pid, 'SIGKILL');
      }
      await settlesWithin(this.#exited, 10_000);
      this.#child = undefined;
      // Everything else of the group (beam and its helpers) goes too.
      killGroup(child.pid, 'SIGKILL');
      try {
        unlinkSync(join(this.dir, 'broker.pgid'));
      } catch {
        // Not there.
      }
    }
    const deadline = performance.now() + 10_000;
    while ((await probeAmqp({ host: '127.0.0.1', port: this.port }, 500)) !== 'refused' && performance.now() < deadline) {
      await sleep(20);
    }
  }

  /**
   * Sends `signal` to the broker's whole process group (script, beam and its
   * helpers; epmd runs on its own). Returns false when no broker runs.
   */
  signal(signal: NodeJS.Signals): boolean {
    const child = this.#child;
    if (child === undefined) return false;
    killGroup(child.pid, signal);
    return true;
  }

  /**
   * Runs `rabbitmqctl -n <this node> ...args` with this node's environment
   * (its cookie through `HOME`) and a free distribution port of its own for
   * the CLI's Erlang node (RabbitMQ's default range, 35672-35682, is shared by
   * every CLI on the machine). Resolves with the exit code and output; killed
   * after `timeoutMs`.
   */
  async ctl(args: readonly string[], timeoutMs = 60_000): Promise<CtlResult> {
    const [cliPort] = await freePorts(1);
    const env = { ...this.#env, RABBITMQ_CTL_DIST_PORT_MIN: String(cliPort), RABBITMQ_CTL_DIST_PORT_MAX: String(cliPort) };
    return new Promise<CtlResult>((resolve) => {
      const child = spawn(join(dirname(this.#script), 'rabbitmqctl'), ['-n', this.nodeName, ...args], {
        cwd: this.dir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout = (stdout + chunk).slice(-64_000)));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-16_000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        resolve({ code: null, stdout, stderr: `${stderr}${error.message}` });
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr: signal === null ? stderr : `${stderr}(killed by ${signal} after ${timeoutMs} ms)` });
      });
    });
  }

  /** Kills the broker and removes its directory. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // Until the port refuses, beam may still be writing into the directory.
    await this.kill(false);
    untrack(this);
    await rm(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    this.#stopWatchdog();
  }

  /** `destroy` for exit hooks: synchronous, best effort. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    killGroup(this.#child?.pid, 'SIGKILL');
    this.#child = undefined;
    untrack(this);
    try {
      rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The watchdog removes it once this process is gone.
    }
    this.#stopWatchdog();
  }

  /** The last lines of the broker's log and of its stdout/stderr, for error messages. */
  async logTail(lines = 40): Promise<string> {
    const log = await tail(join(this.dir, 'log', 'rabbit.log'), lines);
    const out = await tail(join(this.dir, 'stdout.log'), Math.ceil(lines / 2));
    return `--- ${join(this.dir, 'log', 'rabbit.log')} (tail) ---\n${log || '(empty)'}\n--- broker stdout/stderr (tail) ---\n${out || '(empty)'}`;
  }

  #startWatchdog(): void {
    try {
      const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'roster-rabbitmq-watchdog', this.dir], {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      watchdog.on('error', () => {});
      watchdog.stdin?.on('error', () => {});
      watchdog.unref();
      (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      this.#watchdog = watchdog;
    } catch {
      // No /bin/sh: the exit hooks still cover normal exits and signals.
    }
  }

  #stopWatchdog(): void {
    // EOF on its stdin: it runs its (now idempotent) cleanup and exits.
    this.#watchdog?.stdin?.end();
    this.#watchdog = undefined;
  }
}
