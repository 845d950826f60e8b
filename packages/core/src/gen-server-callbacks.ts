/**
 * What a GenServer's callbacks are and what they answer: the callback
 * interface, the result values (`reply`, `noreply`, `ok`, `ignore`, `stop`)
 * and their classes. A leaf: the behaviour catalogue (which holds
 * behaviours) and gen-server.ts (which runs them) both read it.
 */
import type { ExitReason } from './exit-reason.js';
import type { From } from './internal/signals.js';
import type { Process } from './process.js';

/**
 * What a server does next after a callback, besides waiting for a message
 * (the last element of OTP's result tuples):
 * - `{ continue: arg }`: `handleContinue(arg, state)` runs before any other message;
 * - `{ timeout: ms }`: unless a message arrives within `ms`, `handleInfo('timeout', state)` runs.
 */
export type Action = { readonly continue: unknown } | { readonly timeout: number };

/** `handleCall` answers now: `reply(value, state, action?)`. */
export class Reply<S> {
  constructor(
    readonly value: unknown,
    readonly state: S,
    readonly action: Action | undefined = undefined,
  ) {}
}

/** No reply now (`GenServer.reply` later, or never): `noreply(state, action?)`. */
export class NoReply<S> {
  constructor(
    readonly state: S,
    readonly action: Action | undefined = undefined,
  ) {}
}

/** `init`'s answer with an action: `ok(state, { continue: arg })` or `ok(state, { timeout: ms })` (OTP's `{ok, State, Action}`). */
export class Ok<S> {
  constructor(
    readonly state: S,
    readonly action: Action | undefined = undefined,
  ) {}
}

/** `init`'s answer when the server should not run after all (OTP's `ignore`): start resolves with `'ignore'`. */
export class Ignore {
  readonly ignore = true;
}

const IGNORE = new Ignore();

/** The server stops with `reason` after this callback (replying first when `reply` is set). */
export class Stop<S> {
  constructor(
    readonly reason: ExitReason,
    readonly state: S,
    readonly reply?: { readonly value: unknown },
  ) {}
}

export const reply = <S>(value: unknown, state: S, action?: Action): Reply<S> => new Reply(value, state, action);
export const noreply = <S>(state: S, action?: Action): NoReply<S> => new NoReply(state, action);
export const ok = <S>(state: S, action?: Action): Ok<S> => new Ok(state, action);
export const ignore = (): Ignore => IGNORE;
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
/** What `init` may answer: the state, `ok(state, action)`, or `stop(reason)`. */
export type InitResult<S> = S | Ok<S> | Stop<unknown>;

/**
 * The callbacks of a GenServer behaviour: the members of gen-server.ts's
 * `GenServer` interface, which extends this one (see it for what each does
 * and when). Declared here so the behaviour catalogue can hold behaviours
 * without importing gen-server.ts, which starts them on a Node.
 */
export interface GenServerCallbacks<State, Args = undefined, Request = any, Message = any> {
  init(args: Args, self: Process): Maybe<InitResult<State>>;
  handleCall?(request: Request, from: From, state: State, self: Process): Maybe<CallResult<State>>;
  handleCast?(message: Message, state: State, self: Process): Maybe<CastResult<State>>;
  /** Other messages; also `'timeout'` when a callback's `{ timeout }` passed with no message. */
  handleInfo?(message: unknown, state: State, self: Process): Maybe<CastResult<State>>;
  /** Runs right after a callback that answered with `{ continue: arg }`, before any other message (OTP's handle_continue). */
  handleContinue?(arg: any, state: State, self: Process): Maybe<CastResult<State>>;
  terminate?(reason: ExitReason, state: State, self: Process): unknown;
}

/**
 * A behaviour whose `init` may answer `ignore()`: its `start` resolves with
 * `'ignore'` then, with nothing registered and no process left (OTP's `ignore`).
 */
export interface IgnorableGenServer<State, Args = undefined, Request = any, Message = any>
  extends Omit<GenServerCallbacks<State, Args, Request, Message>, 'init'> {
  init(args: Args, self: Process): Maybe<InitResult<State> | Ignore>;
}
