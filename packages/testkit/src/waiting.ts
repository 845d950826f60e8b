/**
 * Bounded waits for tests: every wait on an event names what it waits for
 * and fails after a deadline instead of hanging the run.
 */

/**
 * Settles as `promise` does, or rejects after `ms` naming `what`. The timer
 * keeps the process alive while it runs: a wait for a failure detector (whose
 * own timers do not) still ends in an answer.
 */
export function within<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
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
