/**
 * The map under the table's acknowledgement waits: entries expire a fixed
 * time after they were set, oldest first, under one timer; what is deleted,
 * replaced or cleared never expires.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExpiringMap } from '../src/internal/expiring-map.js';

/** A map of `ttlMs` whose expiries are recorded; `next(n)` resolves once `n` have expired in all. */
function recorded(ttlMs: number): { map: ExpiringMap<string, number>; expired: [string, number, number][]; next: (count: number) => Promise<void> } {
  const expired: [string, number, number][] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const map = new ExpiringMap<string, number>(ttlMs, (key, value) => {
    expired.push([key, value, performance.now()]);
    for (const waiter of [...waiters]) if (expired.length >= waiter.count) waiter.resolve();
  });
  const next = (count: number): Promise<void> => (expired.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve })));
  return { map, expired, next };
}

describe('ExpiringMap', () => {
  test('entries expire oldest first, each no sooner than ttl after it was set; a deleted one never', async () => {
    const { map, expired, next } = recorded(40);
    const setAt = new Map<string, number>();
    for (const key of ['a', 'b', 'c']) {
      map.set(key, key.charCodeAt(0));
      setAt.set(key, performance.now());
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.equal(map.delete('b'), true);
    assert.equal(map.delete('b'), false);
    assert.equal(map.get('a'), 97);
    await next(2);
    assert.deepEqual(expired.map(([key, value]) => [key, value]), [['a', 97], ['c', 99]]);
    for (const [key, , at] of expired) assert.ok(at - setAt.get(key)! >= 39, `${key} expired ${at - setAt.get(key)!} ms after it was set`);
    assert.equal(map.size, 0);
    assert.equal(map.get('a'), undefined, 'an expired entry is gone');
  });

  test('a key set again is young again, with its new value', async () => {
    const { map, expired, next } = recorded(30);
    map.set('a', 1);
    map.set('b', 2);
    map.set('a', 3);
    assert.deepEqual([...map.values()], [2, 3]);
    await next(2);
    assert.deepEqual(expired.map(([key, value]) => [key, value]), [['b', 2], ['a', 3]]);
  });

  test('clear expires nothing, and the map still expires what is set after it', async () => {
    const { map, expired, next } = recorded(20);
    map.set('gone', 1);
    map.clear();
    map.set('later', 2);
    await next(1);
    assert.deepEqual(expired.map(([key]) => key), ['later']);
  });

  test('an entry set from within an expiry expires in its turn', async () => {
    const expired: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const map: ExpiringMap<string, number> = new ExpiringMap(15, (key) => {
      expired.push(key);
      if (key === 'first') map.set('second', 2);
      else done();
    });
    map.set('first', 1);
    await finished;
    assert.deepEqual(expired, ['first', 'second']);
  });

  test('a ttl beyond what a Node timer takes (2^31 ms) does not expire at once', async () => {
    // Node fires an overflowing delay after 1 ms (with a TimeoutOverflowWarning): re-armed at once, every millisecond.
    const overflows: string[] = [];
    const onWarning = (warning: Error): void => {
      if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      const long = recorded(2 ** 32);
      const short = recorded(30);
      long.map.set('long', 1);
      short.map.set('sentinel', 2);
      await short.next(1);
      await new Promise<void>((resolve) => setImmediate(resolve));
      assert.deepEqual(long.expired, []);
      assert.deepEqual(overflows, [], 'a timer beyond 2^31 - 1 ms was armed');
      long.map.clear();
    } finally {
      process.off('warning', onWarning);
    }
  });
});
