/**
 * Epochs and the hybrid logical clock (DESIGN.md section 3, invariant 2):
 * claims are totally ordered, a node's own claims never go backwards even when
 * its wall clock does, and a claim made after seeing another is younger.
 *
 * Reproduce a failure with ROSTER_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compareEpochs, formatEpoch, HybridLogicalClock, type Epoch } from '@roster/globals';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

/** A clock whose physical readings are scripted: each call takes the next one (the last repeats). */
function scriptedClock(node: string, readings: readonly number[]): { clock: HybridLogicalClock; set(ms: number): void } {
  let index = 0;
  let override: number | undefined;
  const clock = new HybridLogicalClock(node, () => {
    if (override !== undefined) return override;
    const value = readings[Math.min(index, readings.length - 1)] ?? 0;
    index++;
    return value;
  });
  return {
    clock,
    set(ms) {
      override = ms;
    },
  };
}

const epochArb: fc.Arbitrary<Epoch> = fc.record({
  wall: fc.integer({ min: 0, max: 50 }),
  counter: fc.integer({ min: 0, max: 5 }),
  node: fc.constantFrom('a', 'b', 'c', 'node10', 'node2'),
});

const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe('HybridLogicalClock', () => {
  test('now() is strictly increasing whatever the wall clock does (backwards jumps, repeats)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 200 }), (readings) => {
        const { clock } = scriptedClock('a', readings);
        let previous: Epoch | undefined;
        for (let i = 0; i < readings.length; i++) {
          const epoch = clock.now();
          assert.equal(epoch.node, 'a');
          if (previous !== undefined) {
            assert.ok(compareEpochs(previous, epoch) < 0, `${formatEpoch(previous)} then ${formatEpoch(epoch)}`);
          }
          previous = epoch;
        }
      }),
      fcParams,
    );
  });

  test('a clock that jumps back an hour still orders its own claims after the earlier ones', () => {
    const { clock, set } = scriptedClock('a', []);
    set(10_000_000);
    const before = clock.now();
    set(10_000_000 - 3_600_000);
    const after = clock.now();
    assert.ok(compareEpochs(before, after) < 0);
    assert.equal(after.wall, before.wall, 'the wall component never goes back');
    assert.equal(after.counter, before.counter + 1);
  });

  test('observe: every later epoch of this clock is younger than what it observed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('now' as const), physical: fc.integer({ min: 0, max: 100 }) }),
            fc.record({ op: fc.constant('observe' as const), physical: fc.integer({ min: 0, max: 100 }), epoch: epochArb }),
          ),
          { minLength: 1, maxLength: 100 },
        ),
        (ops) => {
          let physical = 0;
          const clock = new HybridLogicalClock('me', () => physical);
          /** The youngest epoch this clock made or saw: the next now() must be younger. */
          let floor: Epoch | undefined;
          for (const op of ops) {
            physical = op.physical;
            if (op.op === 'observe') {
              clock.observe(op.epoch);
              if (floor === undefined || compareEpochs(floor, op.epoch) < 0) floor = op.epoch;
            } else {
              const epoch = clock.now();
              if (floor !== undefined) {
                assert.ok(compareEpochs(floor, epoch) < 0, `now() ${formatEpoch(epoch)} is not younger than ${formatEpoch(floor)}`);
              }
              floor = epoch;
            }
          }
        },
      ),
      fcParams,
    );
  });

  test('observe makes the next claim younger even with a lagging wall clock and a bigger counter', () => {
    const clock = new HybridLogicalClock('b', () => 5);
    const seen: Epoch = { wall: 1_000, counter: 7, node: 'zzz' };
    clock.observe(seen);
    const next = clock.now();
    assert.ok(compareEpochs(seen, next) < 0, `${formatEpoch(next)} must be younger than ${formatEpoch(seen)}`);
    assert.equal(next.wall, 1_000);
  });

  test('two nodes never make equal epochs, even with identical clocks', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 50 }), (readings) => {
        const a = scriptedClock('a', readings).clock;
        const b = scriptedClock('b', readings).clock;
        for (let i = 0; i < readings.length; i++) assert.notEqual(compareEpochs(a.now(), b.now()), 0);
      }),
      fcParams,
    );
  });
});

describe('compareEpochs', () => {
  test('is a total order: reflexive zero only on equal epochs, antisymmetric, transitive', () => {
    fc.assert(
      fc.property(epochArb, epochArb, epochArb, (x, y, z) => {
        assert.equal(compareEpochs(x, x), 0);
        const same = x.wall === y.wall && x.counter === y.counter && x.node === y.node;
        assert.equal(compareEpochs(x, y) === 0, same, 'zero exactly when the epochs are the same');
        // Antisymmetry; a sum, not `-sign`, since strict equality tells 0 from -0 (it failed on x = y).
        assert.equal(sign(compareEpochs(x, y)) + sign(compareEpochs(y, x)), 0);
        if (compareEpochs(x, y) < 0 && compareEpochs(y, z) < 0) assert.ok(compareEpochs(x, z) < 0);
        if (compareEpochs(x, y) <= 0 && compareEpochs(y, z) <= 0) assert.ok(compareEpochs(x, z) <= 0);
      }),
      fcParams,
    );
  });

  test('orders by wall time, then counter, then node name', () => {
    assert.ok(compareEpochs({ wall: 1, counter: 9, node: 'z' }, { wall: 2, counter: 0, node: 'a' }) < 0);
    assert.ok(compareEpochs({ wall: 2, counter: 0, node: 'z' }, { wall: 2, counter: 1, node: 'a' }) < 0);
    assert.ok(compareEpochs({ wall: 2, counter: 1, node: 'a' }, { wall: 2, counter: 1, node: 'b' }) < 0);
  });

  test('sorting any list of distinct epochs gives the same order whatever the input order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(epochArb, { selector: formatEpoch, minLength: 2, maxLength: 20 }), fc.nat(), (epochs, seed) => {
        const sorted = [...epochs].sort(compareEpochs).map(formatEpoch);
        const shuffled = [...epochs];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = (seed + i * 7919) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        assert.deepEqual([...shuffled].sort(compareEpochs).map(formatEpoch), sorted);
      }),
      fcParams,
    );
  });
});
