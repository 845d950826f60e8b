import { AlreadyStartedError, CallError, NodeStoppedError, SpawnError, StartError } from './errors.js';
import { describeDest, type Via } from './dest.js';
import { formatReason, isCleanExit, type ExitMessage, type ExitReason } from './exit-reason.js';
import type { Node } from './node.js';
import type { Pid, Ref } from './pid.js';
import type { CallOptions, Process } from './process.js';
import { Proc, isThenable } from './internal/process.js';
import { RUNTIME } from './internal/runtime-access.js';
import { DEFAULT_CALL_TIMEOUT, type Runtime } from './internal/runtime.js';
import { abcast, checkTargets, multiCall, type MultiCallResult } from './internal/multi-call.js';
import { planStartOn, startRemote, type RemoteStartOptions } from './internal/remote-start.js';
import { checkKey } from './behaviour-catalogue.js';
import { Ignore, NoReply, Ok, Reply, Stop, type Action, type GenServerCallbacks, type IgnorableGenServer, type InitResult } from './gen-server-callbacks.js';
import { ExitSignal, type CallMessage, type CastMessage, type From, type StopMessage } from './internal/signals.js';

export type { From } from './internal/signals.js';
export type { MultiCallResult } from './internal/multi-call.js';
export type { RemoteStartOptions } from './internal/remote-start.js';

/** Options of `GenServer.multiCall`. */
export interface MultiCallOptions {
  /** Milliseconds to wait for every node's answer; a node silent that long is bad. Default 5000; `Infinity` waits for ever. */
  readonly timeout?: number;
}

/**
 * A GenServer behaviour: OTP's gen_server callbacks. Any callback may be
 * async; the server handles its next message only when it has settled.
 * `init` returns the initial state, `ok(state, action)` to follow it with
 * `handleContinue` or a timeout, or `stop(reason)` to refuse to start (a
 * behaviour that may also answer `ignore()` is an `IgnorableGenServer`).
 * `reply` and `noreply` results may carry an {@link Action} too.
 * `terminate` runs when a callback stops the server or crashes, on
 * `GenServer.stop`, and on an exit signal from the parent while trapping
 * exits (`self.trapExit(true)` in `init`), as in OTP.
 */
export interface GenServer<State, Args = undefined, Request = any, Message = any> extends GenServerCallbacks<State, Args, Request, Message> {}

/** Resolves to `unknown` when `S` cannot hold an `Ignore` (the behaviour cannot ignore), else `never`. */
type CannotIgnore<S> = 0 extends 1 & S ? never : [Extract<S, Ignore>] extends [never] ? unknown : never;

/** A server started with a monitor on it (`GenServer.startMonitor`). */
export interface MonitoredStart {
  readonly pid: Pid;
  /** The monitor the starting process holds on the server. */
  readonly ref: Ref;
}

export interface StartOptions {
  /** Registers the server before `init` runs: a node-local string or `via(key, name)`. */
  readonly name?: string | Via;
  /** Milliseconds `init` may take; past it the server is killed and start fails with `timeout`. Default: no limit. */
  readonly timeout?: number;
}

/** Anything that can make calls: a `Node` from outside, a process from inside. */
export type Caller = Pick<Node, 'call' | 'cast'> | Pick<Process, 'call' | 'cast'>;

/** Starts an unlinked server; resolves with its pid after `init`, rejects with `StartError` or `AlreadyStartedError`. */
function start<S, A>(node: Node, behaviour: GenServer<S, A> & CannotIgnore<S>, args: A, options?: StartOptions): Promise<Pid>;
function start<S, A>(node: Node, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<Pid | 'ignore'>;
function start<S, A>(node: Node, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<Pid | 'ignore'> {
  return startServer(node[RUNTIME], behaviour, args, options, undefined, undefined);
}

/** Starts a server linked to the calling process `self` (what supervisors' child specs use). */
function startLink<S, A>(self: Process, behaviour: GenServer<S, A> & CannotIgnore<S>, args: A, options?: StartOptions): Promise<Pid>;
function startLink<S, A>(self: Process, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<Pid | 'ignore'>;
function startLink<S, A>(self: Process, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<Pid | 'ignore'> {
  if (!(self instanceof Proc)) return Promise.reject(new TypeError('GenServer.startLink: self must be a process'));
  return startServer(self.node[RUNTIME], behaviour, args, options, self, undefined);
}

/**
 * Starts an unlinked server monitored by the calling process `self` (OTP's
 * `start_monitor`): resolves with its pid and the monitor's ref. When start
 * fails, `self` also gets the monitor's `DOWN`.
 */
function startMonitor<S, A>(self: Process, behaviour: GenServer<S, A> & CannotIgnore<S>, args: A, options?: StartOptions): Promise<MonitoredStart>;
function startMonitor<S, A>(self: Process, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<MonitoredStart | 'ignore'>;
async function startMonitor<S, A>(self: Process, behaviour: IgnorableGenServer<S, A>, args: A, options?: StartOptions): Promise<MonitoredStart | 'ignore'> {
  if (!(self instanceof Proc)) throw new TypeError('GenServer.startMonitor: self must be a process');
  let ref: Ref | undefined;
  const started = await startServer(self.node[RUNTIME], behaviour, args, options, undefined, { onCreated: (pid) => (ref = self.monitor(pid)) });
  return started === 'ignore' ? started : { pid: started, ref: ref! };
}

/**
 * Starts the catalogue entry `key` of `node` with `args` (OTP's `spawn/4`,
 * `spawn_link/4` and `spawn_monitor/4`, by key instead of module): a
 * GenServer behaviour is started as `GenServer.start` would (resolving after
 * its `init`), a process body is spawned. `caller` is a Node, or a process
 * for `link` or `monitor`; with `monitor: true` it resolves to `{ pid, ref }`.
 * When `node` is this node the child starts here, its args passed by
 * reference; otherwise through the cluster (the args must cross the wire).
 *
 * Link and monitor are in place before the child runs, on its node: a child
 * that dies at once still gives the caller its `EXIT` / `DOWN` with its
 * reason, and a caller that died meanwhile makes the child get an exit
 * signal (`noproc`). A start that fails gives neither: the rejection says it.
 *
 * Rejects with `SpawnError` (see `SpawnErrorCode`: `unknown_behaviour`,
 * `unknown_node`, `noconnection`, `timeout`, `bad_args`, `start_failed`),
 * `AlreadyStartedError` for a name that is taken, `TypeError` for a bad
 * argument. Settles within `timeout` (default 5000 ms, `init` included); a
 * child whose start completes after that is killed.
 */
function startOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions & { readonly monitor?: false }): Promise<Pid>;
function startOn(caller: Node | Process, node: string, key: string, args: unknown, options: RemoteStartOptions & { readonly monitor: true }): Promise<MonitoredStart>;
function startOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions): Promise<Pid | MonitoredStart>;
function startOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions): Promise<Pid | MonitoredStart> {
  return startOnImpl('GenServer.startOn', caller, node, key, args, options);
}

/** `GenServer.startOn` and `spawnOn` under the name `where` used in their errors. */
export async function startOnImpl(
  where: string,
  caller: Node | Process,
  node: string,
  key: string,
  args: unknown,
  options: RemoteStartOptions | undefined,
): Promise<Pid | MonitoredStart> {
  const runtime = runtimeOf(where, caller);
  const plan = planStartOn(where, runtime, caller instanceof Proc ? caller : undefined, node, key, options);
  if (node !== runtime.name) return startRemote(plan, args);
  const proc = plan.proc;
  let ref: Ref | undefined;
  try {
    const pid = await startFromCatalogue(runtime.node, key, args, {
      name: plan.name,
      link: plan.link ? proc : undefined,
      timeout: plan.timeout,
      onCreated: plan.monitor ? (pid) => (ref = proc!.monitor(pid)) : undefined,
      // As on another node: a failed start gives no DOWN, the rejection says it.
      onFailed: plan.monitor ? () => proc!.demonitor(ref!, { flush: true }) : undefined,
    });
    return ref === undefined ? pid : { pid, ref };
  } catch (error) {
    if (error instanceof StartError) {
      const code = error.reason === 'timeout' ? 'timeout' : 'start_failed';
      throw new SpawnError(code, node, key, { reason: error.reason, cause: error });
    }
    throw error;
  }
}

/** Starts and talks to GenServers. */
export const GenServer = {
  start,
  startLink,
  startMonitor,
  startOn,

  call<R = unknown>(caller: Caller, dest: Pid | string | Via, request: unknown, options?: CallOptions): Promise<R> {
    return caller.call<R>(dest, request, options);
  },

  cast(caller: Caller, dest: Pid | string | Via, message: unknown): void {
    caller.cast(dest, message);
  },

  /**
   * Calls the server registered under the node-local `name` on each of
   * `nodes` (this one too when listed; each node once) and waits for all
   * (OTP's `gen_server:multi_call/4`). Resolves with the replies by node and
   * the bad nodes: not a member, down during the call, nothing under `name`
   * there (known at once, not at the timeout), the server exited first, or
   * no answer within `timeout`. Rejects with `TypeError` for a bad argument
   * and with `WireEncodeError` for a request that cannot cross the wire
   * (before any node gets it).
   */
  multiCall<R = unknown>(
    caller: Node | Process,
    nodes: readonly string[],
    name: string,
    request: unknown,
    options?: MultiCallOptions,
  ): Promise<MultiCallResult<R>> {
    const where = 'GenServer.multiCall';
    let runtime: Runtime;
    const timeout = options?.timeout ?? DEFAULT_CALL_TIMEOUT;
    try {
      runtime = runtimeOf(where, caller);
      checkTargets(where, nodes, name);
      if (typeof timeout !== 'number' || !(timeout >= 0)) {
        throw new TypeError(`${where}: timeout must be a number >= 0 or Infinity, got ${String(timeout)}`);
      }
      if (!runtime.alive) throw new NodeStoppedError(`node ${runtime.name} is stopped`);
    } catch (error) {
      return Promise.reject(error);
    }
    const pid = caller instanceof Proc ? caller.pid : undefined;
    return multiCall(runtime, pid, nodes, name, request, timeout) as Promise<MultiCallResult<R>>;
  },

  /**
   * Casts `request` to the server registered under the node-local `name` on
   * each of `nodes` (OTP's `gen_server:abcast/3`). Like `cast`, it never
   * fails for an unknown node or name, nor for a request that cannot cross
   * the wire (that node just does not get it); only a bad argument throws a
   * `TypeError`.
   */
  abcast(caller: Node | Process, nodes: readonly string[], name: string, request: unknown): 'abcast' {
    const where = 'GenServer.abcast';
    const runtime = runtimeOf(where, caller);
    checkTargets(where, nodes, name);
    abcast(runtime, caller instanceof Proc ? caller.pid : runtime.rootPid, nodes, name, request);
    return 'abcast';
  },

  /** Replies to a call a callback answered with `noreply`. */
  reply(sender: Node | Process, from: From, value: unknown): void {
    const runtime = (sender instanceof Proc ? sender.node : (sender as Node))[RUNTIME];
    runtime.reply(undefined, from.replyTo, value);
  },

  /**
   * Stops a server the way `gen_server:stop/3` does: it runs `terminate` with
   * `reason` and exits; resolves once it is gone. Rejects with `CallError`
   * (`noproc`, `timeout`, or the other reason it exited with).
   */
  async stop(sender: Node | Process, dest: Pid | string | Via, reason: ExitReason = 'normal', timeout = Infinity): Promise<void> {
    const runtime = (sender instanceof Proc ? sender.node : (sender as Node))[RUNTIME];
    const caller = sender instanceof Proc ? sender.pid : undefined;
    try {
      await runtime.request(caller, dest, timeout, () => ({ type: '$gen_stop', reason }));
    } catch (error) {
      if (error instanceof CallError && sameReason(error.reason, reason)) return;
      throw error;
    }
  },
};

/** The runtime behind a node or process; a `TypeError` for anything else. */
function runtimeOf(where: string, sender: Node | Process): Runtime {
  if (sender instanceof Proc) return sender.node[RUNTIME];
  const runtime = typeof sender === 'object' && sender !== null ? (sender as Partial<Node>)[RUNTIME] : undefined;
  if (runtime === undefined) throw new TypeError(`${where}: caller must be a Node or a process, got ${sender === null ? 'null' : typeof sender}`);
  return runtime;
}

function sameReason(a: ExitReason, b: ExitReason): boolean {
  return a === b || formatReason(a) === formatReason(b);
}

/** What a start tells its caller along the way (see {@link CatalogueStartOptions}). */
interface StartHooks {
  readonly onCreated?: ((pid: Pid) => void) | undefined;
  readonly onFailed?: ((pid: Pid) => void) | undefined;
  readonly onStarted?: ((pid: Pid) => void) | undefined;
}

/** A new process of `runtime`, not running yet, with its name registered; throws `AlreadyStartedError` when taken. */
async function createNamed(
  runtime: Runtime,
  name: string | Via | undefined,
  parent: Proc | undefined,
  hooks: StartHooks | undefined,
): Promise<{ readonly proc: Proc; readonly abandon: (reason: ExitReason) => void }> {
  const proc = runtime.createProcess(parent, parent !== undefined);
  hooks?.onCreated?.(proc.pid);
  const abandon = (reason: ExitReason): void => {
    // The caller learns of the failure from the rejection, not from an EXIT (OTP 26's init_fail).
    if (proc.alive) hooks?.onFailed?.(proc.pid);
    parent?.unlink(proc.pid);
    proc.terminate(reason);
  };
  if (name !== undefined) {
    let answer: 'yes' | 'no';
    try {
      answer = await runtime.node.registerName(name, proc.pid);
    } catch (error) {
      abandon('normal');
      throw error;
    }
    if (answer === 'no') {
      abandon('normal');
      throw new AlreadyStartedError(safeResolve(runtime, name), describeDest(name));
    }
  }
  return { proc, abandon };
}

async function startServer<S, A>(
  runtime: Runtime,
  behaviour: IgnorableGenServer<S, A>,
  args: A,
  options: { readonly name?: string | Via | undefined; readonly timeout?: number | undefined } | undefined,
  parent: Proc | undefined,
  hooks: StartHooks | undefined,
): Promise<Pid | 'ignore'> {
  if (typeof behaviour?.init !== 'function') throw new TypeError('GenServer.start: behaviour.init must be a function');
  const { proc, abandon } = await createNamed(runtime, options?.name, parent, hooks);
  proc.kind = 'gen_server';
  let state: InitResult<S> | Ignore;
  try {
    const initialised = behaviour.init(args, proc);
    state = isThenable(initialised) ? await withTimeout(initialised, options?.timeout) : initialised;
  } catch (error) {
    const reason = error instanceof ExitSignal ? error.reason : error === INIT_TIMEOUT ? 'timeout' : error;
    if (!proc.alive) throw new StartError(proc.exitReason);
    if (!isCleanExit(reason) && reason !== 'timeout') {
      proc.logger.error({ err: reason }, `${proc.pid.key} failed to start: ${formatReason(reason)}`);
    }
    abandon(reason === 'timeout' ? 'killed' : reason);
    throw new StartError(reason);
  }
  if (!proc.alive) throw new StartError(proc.exitReason);
  if (state instanceof Stop) {
    abandon(state.reason);
    throw new StartError(state.reason);
  }
  if (state instanceof Ignore) {
    // Nothing left behind: the name goes with the process, and a parent sees no EXIT.
    abandon('normal');
    return 'ignore';
  }
  // Before anything the server does: a remote caller hears of the start before any signal of its.
  hooks?.onStarted?.(proc.pid);
  const loop = new ServerLoop(behaviour as GenServer<S, A>, proc, runtime, state instanceof Ok ? (state.state as S) : state);
  const action = state instanceof Ok ? state.action : undefined;
  // A `continue` from init runs before the first message; the loop starts once it has settled.
  const continued = action === undefined ? undefined : loop.act(action);
  if (continued === undefined) proc.startLoop(loop.handle);
  else continued.then(() => proc.startLoop(loop.handle), () => proc.startLoop(loop.handle));
  return proc.pid;
}

/** Options of {@link startFromCatalogue}. */
export interface CatalogueStartOptions {
  /** Registers the child before it runs: a node-local string or `via(key, name)`. */
  readonly name?: string | Via | undefined;
  /** Links the child to this process (a GenServer is then started as by `GenServer.startLink`). */
  readonly link?: Process | undefined;
  /** Milliseconds a GenServer's `init` may take; past it the child is killed and the start fails with `timeout`. Default: no limit. */
  readonly timeout?: number | undefined;
  /**
   * For distribution layers answering a peer's spawn: called with the new pid
   * once the process exists, before its name is registered or it runs (link
   * or monitor a remote caller here, through `DistributionHost.link` / `.monitor`).
   */
  readonly onCreated?: ((pid: Pid) => void) | undefined;
  /** Called when the start fails, before the (still living) child is terminated: undo `onCreated` here. */
  readonly onFailed?: ((pid: Pid) => void) | undefined;
  /**
   * Called once the child runs (a GenServer after `init`, before any
   * `handleContinue`; a process body before its first turn), synchronously,
   * before anything the child does: answer a remote caller here.
   */
  readonly onStarted?: ((pid: Pid) => void) | undefined;
}

/**
 * Starts the entry `key` of `node.behaviours` here with `args`: a GenServer
 * behaviour as `GenServer.start` (or `startLink` with `link`) would, a
 * process body is spawned (its name registered first, as a GenServer's is).
 * Resolves with the pid once the child runs. Rejects with
 * `SpawnError('unknown_behaviour')` for a key nothing is registered under,
 * `AlreadyStartedError` for a name that is taken, `StartError` when a
 * GenServer's `init` fails, stops, times out or answers `ignore()` (reason
 * `'ignore'`), and `TypeError` for a bad argument.
 */
export async function startFromCatalogue(node: Node, key: string, args: unknown, options?: CatalogueStartOptions): Promise<Pid> {
  const where = 'startFromCatalogue';
  const runtime = runtimeOf(where, node);
  if (node instanceof Proc) throw new TypeError(`${where}: node must be a Node, got a process`);
  checkKey(where, key);
  const link = options?.link;
  if (link !== undefined && !(link instanceof Proc)) throw new TypeError(`${where}: options.link must be a process`);
  const entry = runtime.node.behaviours.get(key);
  if (entry === undefined) {
    throw new SpawnError('unknown_behaviour', runtime.name, key, { detail: `nothing is registered under it in ${runtime.name}'s node.behaviours` });
  }
  if (entry.kind === 'process') {
    const { proc } = await createNamed(runtime, options?.name, link, options);
    const body = entry.body;
    proc.start((self) => body(self, args));
    options?.onStarted?.(proc.pid);
    return proc.pid;
  }
  const started = await startServer(runtime, entry.behaviour, args, options, link, options);
  if (started === 'ignore') throw new StartError('ignore');
  return started;
}

function safeResolve(runtime: Runtime, name: string | Via): Pid | undefined {
  try {
    return runtime.resolve(name);
  } catch {
    return undefined;
  }
}

const INIT_TIMEOUT = Symbol('init timeout');

function withTimeout<T>(promise: PromiseLike<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined || ms === Infinity) return Promise.resolve(promise);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(INIT_TIMEOUT), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** What a callback timeout sends the server itself; `generation` tells a stale one from the armed one. */
class CallbackTimeout {
  readonly type = '$gen_timeout';
  constructor(readonly generation: number) {}
}

/** The message loop of one server: dispatches to callbacks and applies their results. */
class ServerLoop<S> {
  /** The generation of the armed callback timeout; 0 when none is. */
  #armed = 0;
  #generations = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly behaviour: GenServer<S, any>,
    readonly proc: Proc,
    /** `proc`'s runtime, which answers calls. */
    readonly runtime: Runtime,
    public state: S,
  ) {}

  handle = (message: unknown): PromiseLike<unknown> | undefined => {
    const { behaviour, proc } = this;
    let result: unknown;
    let from: From | undefined;
    try {
      // One read of `type` routes the message (the checks isCallMessage & co. make one by one).
      const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
      // Any message but the timeout's own comes first: the timeout is off (OTP's callback timeout).
      if (this.#armed !== 0 && type !== '$gen_timeout') this.#disarm();
      if (type === '$gen_call') {
        const call = message as CallMessage;
        from = call.from;
        if (behaviour.handleCall === undefined) throw new TypeError(`${proc.pid.key}: the behaviour has no handleCall`);
        result = behaviour.handleCall(call.request, from, this.state, proc);
      } else if (type === '$gen_cast') {
        if (behaviour.handleCast === undefined) throw new TypeError(`${proc.pid.key}: the behaviour has no handleCast`);
        result = behaviour.handleCast((message as CastMessage).request, this.state, proc);
      } else if (type === '$gen_stop') {
        return this.terminate((message as StopMessage).reason);
      } else if (
        type === 'EXIT' &&
        proc.trapping &&
        proc.parent !== undefined &&
        (message as ExitMessage).from.equals(proc.parent)
      ) {
        return this.terminate((message as ExitMessage).reason);
      } else if (type === '$gen_timeout' && message instanceof CallbackTimeout) {
        if (message.generation !== this.#armed) return undefined;
        this.#armed = 0;
        this.#timer = undefined;
        if (behaviour.handleInfo === undefined) throw new TypeError(`${proc.pid.key}: a callback timeout needs handleInfo`);
        result = behaviour.handleInfo('timeout', this.state, proc);
      } else if (behaviour.handleInfo !== undefined) {
        result = behaviour.handleInfo(message, this.state, proc);
      } else {
        proc.logger.warn({ message: safeFormat(message) }, `${proc.pid.key} received an unexpected message`);
        return undefined;
      }
    } catch (error) {
      return this.crashed(error);
    }
    // The common answers first, without the thenable check (as `apply` would do them).
    if (result instanceof NoReply) {
      if (!proc.alive) return undefined;
      this.state = result.state as S;
      return result.action === undefined ? undefined : this.act(result.action);
    }
    if (result instanceof Reply && from !== undefined) {
      if (!proc.alive) return undefined;
      this.state = result.state as S;
      const failed = this.#sendReply(from, result.value);
      if (failed !== undefined) return this.crashed(failed.error);
      return result.action === undefined ? undefined : this.act(result.action);
    }
    if (isThenable(result)) {
      return result.then(
        (settled) => this.apply(settled, from),
        (error: unknown) => this.crashed(error),
      );
    }
    return this.apply(result, from);
  };

  apply(result: unknown, from: From | undefined): PromiseLike<unknown> | undefined {
    if (!this.proc.alive) return undefined;
    if (result instanceof Reply && from !== undefined) {
      this.state = result.state as S;
      const failed = this.#sendReply(from, result.value);
      if (failed !== undefined) return this.crashed(failed.error);
      return result.action === undefined ? undefined : this.act(result.action);
    }
    if (result instanceof NoReply) {
      this.state = result.state as S;
      return result.action === undefined ? undefined : this.act(result.action);
    }
    if (result instanceof Stop) {
      this.state = result.state as S;
      if (result.reply !== undefined && from !== undefined) {
        const failed = this.#sendReply(from, result.reply.value);
        if (failed !== undefined) return this.crashed(failed.error);
      }
      return this.terminate(result.reason);
    }
    return this.crashed(new TypeError(`${this.proc.pid.key}: bad callback return value ${safeFormat(result)}`));
  }

  /** Carries out a result's action: runs `handleContinue` now, or arms a callback timeout. */
  act(action: Action): PromiseLike<unknown> | undefined {
    const { behaviour, proc } = this;
    if (!proc.alive) return undefined;
    if (typeof action === 'object' && action !== null && 'continue' in action) {
      if (behaviour.handleContinue === undefined) return this.crashed(new TypeError(`${proc.pid.key}: { continue } needs handleContinue`));
      let result: unknown;
      try {
        result = behaviour.handleContinue(action.continue, this.state, proc);
      } catch (error) {
        return this.crashed(error);
      }
      if (isThenable(result)) {
        return result.then(
          (settled) => this.apply(settled, undefined),
          (error: unknown) => this.crashed(error),
        );
      }
      return this.apply(result, undefined);
    }
    const ms = typeof action === 'object' && action !== null ? (action as { timeout?: unknown }).timeout : undefined;
    if (typeof ms !== 'number' || !(ms >= 0)) {
      return this.crashed(new TypeError(`${proc.pid.key}: bad action ${safeFormat(action)}: expected { continue } or { timeout: ms >= 0 }`));
    }
    if (ms === Infinity) return undefined;
    const generation = ++this.#generations;
    this.#armed = generation;
    this.#timer = setTimeout(() => {
      if (this.#armed === generation) proc.deliver(new CallbackTimeout(generation));
    }, ms);
    return undefined;
  }

  #disarm(): void {
    this.#armed = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Sends a call's reply; returns what stopped it (a value that cannot cross
   * the wire to a caller on another node), which crashes the server as a bad
   * return value does: the caller learns of it through its monitor, at once,
   * instead of waiting for its timeout.
   */
  #sendReply(from: From, value: unknown): { readonly error: unknown } | undefined {
    try {
      this.runtime.reply(this.proc.pid, from.replyTo, value, from.tag);
      return undefined;
    } catch (error) {
      return { error };
    }
  }

  crashed(error: unknown): PromiseLike<unknown> | undefined {
    if (error instanceof ExitSignal) return this.terminate(error.reason);
    return this.terminate(error);
  }

  /** Runs `terminate`, then exits; an abnormal reason is logged once. */
  terminate(reason: ExitReason): PromiseLike<unknown> | undefined {
    const { proc, behaviour } = this;
    if (!proc.alive) return undefined;
    this.#disarm();
    if (!isCleanExit(reason)) {
      proc.logger.error({ err: reason }, `${proc.pid.key} terminating: ${formatReason(reason)}`);
    }
    if (behaviour.terminate === undefined) {
      proc.terminate(reason);
      return undefined;
    }
    let result: unknown;
    try {
      result = behaviour.terminate(reason, this.state, proc);
    } catch (error) {
      proc.terminate(error instanceof ExitSignal ? error.reason : error);
      return undefined;
    }
    if (isThenable(result)) {
      return result.then(
        () => proc.terminate(reason),
        (error: unknown) => proc.terminate(error instanceof ExitSignal ? error.reason : error),
      );
    }
    proc.terminate(reason);
    return undefined;
  }
}

function safeFormat(value: unknown): string {
  try {
    return formatReason(value);
  } catch {
    return String(value);
  }
}
