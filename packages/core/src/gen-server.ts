import { AlreadyStartedError, CallError, StartError } from './errors.js';
import { describeDest, type Via } from './dest.js';
import { formatReason, isCleanExit, type ExitMessage, type ExitReason } from './exit-reason.js';
import type { Node } from './node.js';
import type { Pid } from './pid.js';
import type { CallOptions, Process } from './process.js';
import { Proc, isThenable } from './internal/process.js';
import { RUNTIME } from './internal/runtime-access.js';
import type { Runtime } from './internal/runtime.js';
import { ExitSignal, type CallMessage, type CastMessage, type From, type StopMessage } from './internal/signals.js';

export type { From } from './internal/signals.js';

/** `handleCall` answers now: `reply(value, state)`. */
export class Reply<S> {
  constructor(
    readonly value: unknown,
    readonly state: S,
  ) {}
}

/** No reply now (`GenServer.reply` later, or never): `noreply(state)`. */
export class NoReply<S> {
  constructor(readonly state: S) {}
}

/** The server stops with `reason` after this callback (replying first when `reply` is set). */
export class Stop<S> {
  constructor(
    readonly reason: ExitReason,
    readonly state: S,
    readonly reply?: { readonly value: unknown },
  ) {}
}

export const reply = <S>(value: unknown, state: S): Reply<S> => new Reply(value, state);
export const noreply = <S>(state: S): NoReply<S> => new NoReply(state);
export const stop = <S = undefined>(reason: ExitReason, state?: S): Stop<S> => new Stop(reason, state as S);
export const stopAndReply = <S>(reason: ExitReason, value: unknown, state: S): Stop<S> =>
  new Stop(reason, state, { value });

// Callback results are built per message: settle their object layout from
// complete instances before real use (see settleLayouts in internal/runtime.ts).
{
  const keep: unknown[] = [];
  for (let index = 0; index < 8; index++) keep.push(new Reply(undefined, undefined), new NoReply(undefined), new Stop('normal', undefined));
}

type Maybe<T> = T | Promise<T>;
export type CallResult<S> = Reply<S> | NoReply<S> | Stop<S>;
export type CastResult<S> = NoReply<S> | Stop<S>;

/**
 * A GenServer behaviour: OTP's gen_server callbacks. Any callback may be
 * async; the server handles its next message only when it has settled.
 * `init` returns the initial state, or `stop(reason)` to refuse to start.
 * `terminate` runs when a callback stops the server or crashes, on
 * `GenServer.stop`, and on an exit signal from the parent while trapping
 * exits (`self.trapExit(true)` in `init`), as in OTP.
 */
export interface GenServer<State, Args = undefined, Request = any, Message = any> {
  init(args: Args, self: Process): Maybe<State | Stop<unknown>>;
  handleCall?(request: Request, from: From, state: State, self: Process): Maybe<CallResult<State>>;
  handleCast?(message: Message, state: State, self: Process): Maybe<CastResult<State>>;
  handleInfo?(message: unknown, state: State, self: Process): Maybe<CastResult<State>>;
  terminate?(reason: ExitReason, state: State, self: Process): unknown;
}

export interface StartOptions {
  /** Registers the server before `init` runs: a node-local string or `via(key, name)`. */
  readonly name?: string | Via;
  /** Milliseconds `init` may take; past it the server is killed and start fails with `timeout`. Default: no limit. */
  readonly timeout?: number;
}

/** Anything that can make calls: a `Node` from outside, a process from inside. */
export type Caller = Pick<Node, 'call' | 'cast'> | Pick<Process, 'call' | 'cast'>;

/** Starts and talks to GenServers. */
export const GenServer = {
  /** Starts an unlinked server; resolves with its pid after `init`, rejects with `StartError` or `AlreadyStartedError`. */
  start<S, A>(node: Node, behaviour: GenServer<S, A>, args: A, options?: StartOptions): Promise<Pid> {
    return startServer(node[RUNTIME], behaviour, args, options, undefined);
  },

  /** Starts a server linked to the calling process `self` (what supervisors' child specs use). */
  startLink<S, A>(self: Process, behaviour: GenServer<S, A>, args: A, options?: StartOptions): Promise<Pid> {
    if (!(self instanceof Proc)) return Promise.reject(new TypeError('GenServer.startLink: self must be a process'));
    return startServer(self.runtime, behaviour, args, options, self);
  },

  call<R = unknown>(caller: Caller, dest: Pid | string | Via, request: unknown, options?: CallOptions): Promise<R> {
    return caller.call<R>(dest, request, options);
  },

  cast(caller: Caller, dest: Pid | string | Via, message: unknown): void {
    caller.cast(dest, message);
  },

  /** Replies to a call a callback answered with `noreply`. */
  reply(sender: Node | Process, from: From, value: unknown): void {
    const runtime = sender instanceof Proc ? sender.runtime : (sender as Node)[RUNTIME];
    runtime.reply(undefined, from.replyTo, value);
  },

  /**
   * Stops a server the way `gen_server:stop/3` does: it runs `terminate` with
   * `reason` and exits; resolves once it is gone. Rejects with `CallError`
   * (`noproc`, `timeout`, or the other reason it exited with).
   */
  async stop(sender: Node | Process, dest: Pid | string | Via, reason: ExitReason = 'normal', timeout = Infinity): Promise<void> {
    const runtime = sender instanceof Proc ? sender.runtime : (sender as Node)[RUNTIME];
    const caller = sender instanceof Proc ? sender.pid : undefined;
    try {
      await runtime.request(caller, dest, timeout, () => ({ type: '$gen_stop', reason }));
    } catch (error) {
      if (error instanceof CallError && sameReason(error.reason, reason)) return;
      throw error;
    }
  },
};

function sameReason(a: ExitReason, b: ExitReason): boolean {
  return a === b || formatReason(a) === formatReason(b);
}

async function startServer<S, A>(
  runtime: Runtime,
  behaviour: GenServer<S, A>,
  args: A,
  options: StartOptions | undefined,
  parent: Proc | undefined,
): Promise<Pid> {
  if (typeof behaviour?.init !== 'function') throw new TypeError('GenServer.start: behaviour.init must be a function');
  const proc = runtime.createProcess(parent, parent !== undefined);
  const abandon = (reason: ExitReason): void => {
    // The caller learns of the failure from the rejection, not from an EXIT (OTP 26's init_fail).
    parent?.unlink(proc.pid);
    proc.terminate(reason);
  };
  const name = options?.name;
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
  let state: S | Stop<unknown>;
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
  proc.startLoop(new ServerLoop(behaviour, proc, state).handle);
  return proc.pid;
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

/** The message loop of one server: dispatches to callbacks and applies their results. */
class ServerLoop<S> {
  constructor(
    readonly behaviour: GenServer<S, any>,
    readonly proc: Proc,
    public state: S,
  ) {}

  handle = (message: unknown): PromiseLike<unknown> | undefined => {
    const { behaviour, proc } = this;
    let result: unknown;
    let from: From | undefined;
    try {
      // One read of `type` routes the message (the checks isCallMessage & co. make one by one).
      const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
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
      if (proc.alive) this.state = result.state as S;
      return undefined;
    }
    if (result instanceof Reply && from !== undefined) {
      if (proc.alive) {
        this.state = result.state as S;
        proc.runtime.reply(proc.pid, from.replyTo, result.value);
      }
      return undefined;
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
      this.proc.runtime.reply(this.proc.pid, from.replyTo, result.value);
      return undefined;
    }
    if (result instanceof NoReply) {
      this.state = result.state as S;
      return undefined;
    }
    if (result instanceof Stop) {
      this.state = result.state as S;
      if (result.reply !== undefined && from !== undefined) {
        this.proc.runtime.reply(this.proc.pid, from.replyTo, result.reply.value);
      }
      return this.terminate(result.reason);
    }
    return this.crashed(new TypeError(`${this.proc.pid.key}: bad callback return value ${safeFormat(result)}`));
  }

  crashed(error: unknown): PromiseLike<unknown> | undefined {
    if (error instanceof ExitSignal) return this.terminate(error.reason);
    return this.terminate(error);
  }

  /** Runs `terminate`, then exits; an abnormal reason is logged once. */
  terminate(reason: ExitReason): PromiseLike<unknown> | undefined {
    const { proc, behaviour } = this;
    if (!proc.alive) return undefined;
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
