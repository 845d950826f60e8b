/**
 * Building blocks of the registry conformance suite (`../conformance.ts`):
 * bounded waits, processes that hold names and collect what they receive,
 * monitor probes that record what the registry said at the moment `DOWN`
 * arrived, and the GenServer started under via names.
 *
 * Not public: the suite is the interface.
 */
import {
  TIMEOUT,
  canonicalName,
  describeDest,
  formatReason,
  isDownMessage,
  noreply,
  reply,
  stop,
  type Dest,
  type DownMessage,
  type GenServer,
  type Name,
  type NameRegistry,
  type Node,
  type Pid,
  type Ref,
} from '@roster/core';

import { deferred, within } from '../waiting.js';

export { within, deferred, type Deferred } from '../waiting.js';

/** `canonicalName` for display and set comparisons; `<invalid>` when it throws. */
export function nameKey(name: unknown): string {
  try {
    return canonicalName(name);
  } catch {
    return '<invalid>';
  }
}

/** True when `value` is a promise (or any thenable). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

// ---- holders -------------------------------------------------------------------------

const CONTROL = Symbol('conformance control');

interface Control {
  readonly [CONTROL]: 'return' | 'throw';
}

function isControl(message: unknown): message is Control {
  return typeof message === 'object' && message !== null && CONTROL in message;
}

/**
 * A ping every process of the suite answers with a pong to `from`. A probe
 * pings what it monitors right after placing the monitor: signals from one
 * process to another arrive in order, so the pong proves the monitor is in
 * place on the target's node (a remote monitor is placed asynchronously, and
 * a target that dies before it arrives rightly gives `noproc`).
 */
export interface Ping {
  readonly type: '$conformance_ping';
  readonly from: Pid;
  readonly tag: number;
}

export interface Pong {
  readonly type: '$conformance_pong';
  readonly tag: number;
}

export function isPing(message: unknown): message is Ping {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === '$conformance_ping';
}

function isPong(message: unknown, tag: number): message is Pong {
  return typeof message === 'object' && message !== null && (message as Partial<Pong>).type === '$conformance_pong' && (message as Pong).tag === tag;
}

let nextTag = 1;

/** The message a holder's body throws when told to `crash()`. */
export const HOLDER_CRASH = 'conformance holder crashed on purpose';

/**
 * A plain process (async body, selective receive) that holds names: it
 * collects every message it gets, and exits when told, by returning or by
 * throwing.
 */
export interface Holder {
  readonly pid: Pid;
  readonly node: Node;
  readonly received: readonly unknown[];
  /** Resolves with the first collected message `match` accepts (old or new); bounded. */
  next(match: (message: unknown) => boolean, what: string): Promise<unknown>;
  /** The body returns: exit reason `normal`. */
  finish(): void;
  /** The body throws `new Error(HOLDER_CRASH)`: an abnormal exit. */
  crash(): void;
}

export function spawnHolder(node: Node, waitMs: number): Holder {
  const received: unknown[] = [];
  const waiters: { match: (message: unknown) => boolean; resolve: (message: unknown) => void }[] = [];
  const pid = node.spawn(async (self) => {
    for (;;) {
      const message = await self.receive();
      if (isControl(message)) {
        if (message[CONTROL] === 'throw') throw new Error(HOLDER_CRASH);
        return;
      }
      if (isPing(message)) {
        self.send(message.from, { type: '$conformance_pong', tag: message.tag } satisfies Pong);
        continue;
      }
      received.push(message);
      for (let index = waiters.length - 1; index >= 0; index--) {
        const waiter = waiters[index]!;
        if (waiter.match(message)) {
          waiters.splice(index, 1);
          waiter.resolve(message);
        }
      }
    }
  });
  return {
    pid,
    node,
    received,
    next(match, what) {
      const seen = received.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      const waiter = deferred<unknown>();
      waiters.push({ match, resolve: waiter.resolve });
      return within(waiter.promise, `${pid.key} to receive ${what}`, waitMs);
    },
    finish() {
      if (node.isAlive(pid)) node.send(pid, { [CONTROL]: 'return' } satisfies Control);
    },
    crash() {
      if (node.isAlive(pid)) node.send(pid, { [CONTROL]: 'throw' } satisfies Control);
    },
  };
}

// ---- monitor probes ------------------------------------------------------------------

/** What a probe saw when its `DOWN` arrived. */
export interface DownSeen {
  readonly down: DownMessage;
  /** `registry.whereisName(name)` on the probe's node, read as the `DOWN` was handled. */
  readonly whereisAtDown: Pid | undefined;
  /** Whether `registry.registered()` on the probe's node still listed the name then. */
  readonly listedAtDown: boolean;
}

/** A placed monitor probe. */
export interface Watching {
  readonly seen: Promise<DownSeen>;
}

/** The name a probe reads from the registry the moment its `DOWN` arrives. */
export interface WatchedName {
  readonly registry: NameRegistry;
  readonly name: Name;
}

/**
 * Spawns a process on `node` that monitors `dest` and resolves, once the
 * monitor is placed, with `{ seen }`: a promise of what it saw when its one
 * `DOWN` arrived (rejecting after `waitMs` without one). With `watched`, it reads
 * that name from that registry in the same turn it handles the `DOWN`.
 */
export async function watch(node: Node, dest: Dest, waitMs: number, watched?: WatchedName): Promise<Watching> {
  const placed = deferred();
  const seen = deferred<DownSeen>();
  const key = watched === undefined ? undefined : canonicalName(watched.name);
  node.spawn(async (self) => {
    let ref: Ref;
    try {
      ref = self.monitor(dest);
    } catch (error) {
      placed.reject(error);
      return;
    }
    // Placed once the target has answered a ping sent after the monitor (see `Ping`).
    const tag = nextTag++;
    try {
      self.send(dest, { type: '$conformance_ping', from: self.pid, tag } satisfies Ping);
    } catch (error) {
      placed.reject(error);
      return;
    }
    const pong = await self.receive((m) => isPong(m, tag) || (isDownMessage(m) && m.ref.equals(ref)), waitMs);
    if (pong === TIMEOUT || isDownMessage(pong)) {
      placed.reject(new Error(`${node.name}: the target of ${describeDest(dest)} did not answer a ping after the monitor: ${pong === TIMEOUT ? 'timeout' : `DOWN ${formatReason(pong.reason)}`}`));
      return;
    }
    placed.resolve();
    const message = await self.receive((m): m is DownMessage => isDownMessage(m) && m.ref.equals(ref), waitMs);
    if (message === TIMEOUT) {
      seen.reject(new Error(`${node.name}: no DOWN for ${describeDest(dest)} within ${waitMs} ms`));
      return;
    }
    // Read synchronously, in the turn the DOWN is handled in.
    seen.resolve({
      down: message,
      whereisAtDown: watched?.registry.whereisName(watched.name),
      listedAtDown: watched !== undefined && watched.registry.registered().some((listed) => nameKey(listed) === key),
    });
  });
  await within(placed.promise, `a probe on ${node.name} to place its monitor`, waitMs);
  // Callers attach their handler later; never let a rejection go unobserved meanwhile.
  seen.promise.catch(() => {});
  // Wrapped: an async function returning a promise would wait for it.
  return { seen: seen.promise };
}

// ---- the GenServer started under via names -------------------------------------------

export interface ServerArgs {
  /** Called when `init` runs: the suite checks that a refused start never runs it. */
  readonly onInit?: () => void;
}

export interface ServerState {
  readonly seen: readonly unknown[];
}

/** The message a conformance server throws when cast `CRASH`. */
export const SERVER_CRASH = 'conformance server crashed on purpose';

/** Casts the server understands. */
export const STOP_NORMAL = '$conformance_stop_normal';
export const CRASH = '$conformance_crash';

/**
 * Echoes calls (`{ echo: x }` -> `x`; `'seen'` -> every cast and info so
 * far), collects casts and infos, stops `normal` on `STOP_NORMAL`, throws on
 * `CRASH`.
 */
export const ConformanceServer: GenServer<ServerState, ServerArgs> = {
  init(args) {
    args.onInit?.();
    return { seen: [] };
  },
  handleCall(request: unknown, _from, state) {
    if (request === 'seen') return reply(state.seen, state);
    if (typeof request === 'object' && request !== null && 'echo' in request) return reply((request as { echo: unknown }).echo, state);
    return reply(request, state);
  },
  handleCast(message: unknown, state) {
    if (message === STOP_NORMAL) return stop('normal', state);
    if (message === CRASH) throw new Error(SERVER_CRASH);
    return noreply({ seen: [...state.seen, { cast: message }] });
  },
  handleInfo(message: unknown, state, self) {
    if (isPing(message)) {
      self.send(message.from, { type: '$conformance_pong', tag: message.tag } satisfies Pong);
      return noreply(state);
    }
    return noreply({ seen: [...state.seen, { info: message }] });
  },
};
