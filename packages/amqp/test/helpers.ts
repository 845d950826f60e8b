import { createServer } from 'node:net';
import type { AmqpTransport } from '@roster/amqp';

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The next `event` of `transport`, within `ms`. */
export function next<E extends 'up' | 'down'>(
  transport: AmqpTransport,
  event: E,
  ms = 10_000,
): Promise<E extends 'up' ? string : Error | undefined> {
  return within(
    new Promise((resolve) => {
      transport.once(event, (value: string | Error | undefined) => resolve(value as E extends 'up' ? string : Error | undefined));
    }),
    ms,
    `'${event}'`,
  );
}

/** Records every frame `transport` receives; `until(n)` waits for the n-th. */
export function recorder(transport: AmqpTransport): { frames: string[]; until(count: number, ms?: number): Promise<string[]> } {
  const frames: string[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  transport.on('frame', (frame) => {
    frames.push(frame);
    for (let i = waiters.length - 1; i >= 0; i -= 1) {
      const waiter = waiters[i];
      if (waiter !== undefined && frames.length >= waiter.count) {
        waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  });
  return {
    frames,
    until(count, ms = 10_000) {
      if (frames.length >= count) return Promise.resolve(frames);
      return within(
        new Promise<void>((resolve) => waiters.push({ count, resolve })),
        ms,
        `${count} frames (got ${frames.length})`,
      ).then(() => frames);
    },
  };
}

/** A TCP port on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A cluster id no other test uses. */
export function uniqueCluster(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}
