/**
 * Shared helpers for the @roster/core tests: probe processes that turn what a
 * process receives into promises the test can await, with bounded waits so a
 * failing test fails instead of hanging.
 */
import { TIMEOUT, isDownMessage, type Dest, type DownMessage, type Node, type Pid, type Process } from '@roster/core';

/** How long any single wait in a test may take before it counts as a failure. */
export const WAIT_MS = 2000;

/** Rejects if `promise` has not settled within `ms`; the timer never keeps the process alive. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    timer.unref();
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

/** A promise with its resolver exposed. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Places a monitor on `dest` from a fresh probe process and resolves, once the
 * monitor is in place, with a promise of the one `DOWN` it gets (rejecting
 * after `ms` without one).
 */
export async function monitorFromProbe(
  node: Node,
  dest: Dest,
  ms = WAIT_MS,
): Promise<{ readonly down: Promise<DownMessage>; readonly probe: Pid }> {
  const placed = deferred();
  const down = deferred<DownMessage>();
  const probe = node.spawn(async (self) => {
    const ref = self.monitor(dest);
    placed.resolve();
    const message = await self.receive((m): m is DownMessage => isDownMessage(m) && m.ref.equals(ref), ms);
    if (message === TIMEOUT) down.reject(new Error(`no DOWN for ${String(dest)} within ${ms} ms`));
    else down.resolve(message);
  });
  await within(placed.promise, 'the probe to place its monitor');
  return { down: down.promise, probe };
}

/**
 * A long-lived probe: runs `setup` inside the process, then collects every
 * message into `received`; `next(match)` resolves with the next collected
 * message `match` accepts (bounded).
 */
export interface Probe {
  readonly pid: Pid;
  readonly self: Process;
  readonly received: unknown[];
  next<T = unknown>(match?: (message: unknown) => boolean, ms?: number): Promise<T>;
  /**
   * Runs `fn` inside the probe, in turn with its messages, and resolves with
   * its result. If `fn` throws, the promise rejects and the probe crashes with
   * that error (it is not caught for it).
   */
  run<T>(fn: (self: Process) => T | Promise<T>): Promise<T>;
  /** Stops the probe (it exits `normal`). */
  stop(): void;
}

class RunRequest<T> {
  constructor(
    readonly fn: (self: Process) => T | Promise<T>,
    readonly done: Deferred<T>,
  ) {}
}

export async function probe(node: Node, setup?: (self: Process) => void, options?: { trapExit?: boolean }): Promise<Probe> {
  const received: unknown[] = [];
  const consumed = new Set<number>();
  const waiters: { match: (m: unknown) => boolean; resolve: (m: unknown) => void }[] = [];
  const ready = deferred<Process>();
  const STOP = Symbol('stop');
  const pid = node.spawn(
    async (self) => {
      setup?.(self);
      ready.resolve(self);
      for (;;) {
        const message = await self.receive();
        if (message === STOP) return;
        if (message instanceof RunRequest) {
          try {
            message.done.resolve(await message.fn(self));
          } catch (error) {
            message.done.reject(error);
            throw error;
          }
          continue;
        }
        received.push(message);
        const index = waiters.findIndex((waiter) => waiter.match(message));
        if (index >= 0) {
          consumed.add(received.length - 1);
          waiters.splice(index, 1)[0]!.resolve(message);
        }
      }
    },
    options?.trapExit === true ? { trapExit: true } : undefined,
  );
  const self = await within(ready.promise, 'the probe to start');
  return {
    pid,
    self,
    received,
    next<T>(match: (message: unknown) => boolean = () => true, ms = WAIT_MS): Promise<T> {
      // A message already collected and not yet taken by an earlier `next` comes first.
      const index = received.findIndex((message, i) => !consumed.has(i) && match(message));
      if (index >= 0) {
        consumed.add(index);
        return Promise.resolve(received[index] as T);
      }
      const waiter = deferred<unknown>();
      waiters.push({ match, resolve: waiter.resolve });
      return within(waiter.promise as Promise<T>, 'a message on the probe', ms);
    },
    run<T>(fn: (self: Process) => T | Promise<T>): Promise<T> {
      const done = deferred<T>();
      node.send(pid, new RunRequest(fn, done));
      return within(done.promise, 'a run on the probe');
    },
    stop() {
      if (node.isAlive(pid)) node.send(pid, STOP);
    },
  };
}
