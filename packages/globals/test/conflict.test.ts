/**
 * resolveConflict: what each policy decides for a name claimed on both sides
 * of a healed partition (DESIGN.md section 3, invariant 5). Every node runs it
 * on its own, so the answer must not depend on the order the claims are given in.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Pid } from '@roster/core';
import { resolveConflict, type ConflictClaim, type ConflictPolicy, type ConflictResolver } from '@roster/globals';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

const older: ConflictClaim = { pid: new Pid('a', 'c1', 1), epoch: { wall: 100, counter: 0, node: 'a' }, node: 'a' };
const younger: ConflictClaim = { pid: new Pid('b', 'c2', 7), epoch: { wall: 100, counter: 1, node: 'b' }, node: 'b' };

const claimArb: fc.Arbitrary<ConflictClaim> = fc
  .record({
    node: fc.constantFrom('a', 'b', 'c'),
    id: fc.integer({ min: 1, max: 1000 }),
    wall: fc.integer({ min: 0, max: 10 }),
    counter: fc.integer({ min: 0, max: 3 }),
  })
  .map(({ node, id, wall, counter }) => ({ pid: new Pid(node, `c-${node}`, id), epoch: { wall, counter, node }, node }));

/** Two claims of one name from two different nodes (a real conflict). */
const pairArb = fc.tuple(claimArb, claimArb).filter(([x, y]) => x.node !== y.node);

describe('resolveConflict', () => {
  test('keep-oldest: the older epoch keeps the name, the younger loses', () => {
    for (const [x, y] of [
      [older, younger],
      [younger, older],
    ] as const) {
      const outcome = resolveConflict('keep-oldest', 'n', x, y);
      assert.equal(outcome.policy, 'keep-oldest');
      assert.equal(outcome.name, 'n');
      assert.equal(outcome.winner, older);
      assert.deepEqual(outcome.losers, [younger]);
    }
  });

  test('notify-loser: the same decision as keep-oldest (the loser is told instead of killed)', () => {
    for (const [x, y] of [
      [older, younger],
      [younger, older],
    ] as const) {
      const outcome = resolveConflict('notify-loser', { n: 1 }, x, y);
      assert.equal(outcome.policy, 'notify-loser');
      assert.equal(outcome.winner, older);
      assert.deepEqual(outcome.losers, [younger]);
    }
  });

  test('notify-all: nobody keeps the name, both lose (oldest first)', () => {
    for (const [x, y] of [
      [older, younger],
      [younger, older],
    ] as const) {
      const outcome = resolveConflict('notify-all', 'n', x, y);
      assert.equal(outcome.policy, 'notify-all');
      assert.equal(outcome.winner, undefined);
      assert.deepEqual(outcome.losers, [older, younger]);
    }
  });

  test('a user resolver gets (older, younger) and its pick wins', () => {
    const seen: [ConflictClaim, ConflictClaim][] = [];
    const pickYounger: ConflictResolver = (_name, o, y) => {
      seen.push([o, y]);
      return y.pid;
    };
    const outcome = resolveConflict(pickYounger, 'n', younger, older);
    assert.deepEqual(seen, [[older, younger]]);
    assert.equal(outcome.policy, 'custom');
    assert.equal(outcome.winner, younger);
    assert.deepEqual(outcome.losers, [older]);
  });

  test('a user resolver returning undefined takes the name from both', () => {
    const outcome = resolveConflict(() => undefined, 'n', older, younger);
    assert.equal(outcome.winner, undefined);
    assert.deepEqual(outcome.losers, [older, younger]);
  });

  test('a user resolver returning a pid that is neither claimant keeps nobody (never a third owner)', () => {
    const outcome = resolveConflict(() => new Pid('zz', 'c', 1), 'n', older, younger);
    assert.equal(outcome.winner, undefined);
    assert.deepEqual(outcome.losers, [older, younger]);
  });

  test('a user resolver is matched by pid value, not identity (pids arrive decoded from the wire)', () => {
    const outcome = resolveConflict((_name, o) => new Pid(o.pid.node, o.pid.creation, o.pid.id), 'n', older, younger);
    assert.equal(outcome.winner, older);
  });

  test('every built-in policy: order-independent, winner and losers partition the two claims', () => {
    const policies: ConflictPolicy[] = ['keep-oldest', 'notify-loser', 'notify-all', (_n, _o, y) => y.pid];
    fc.assert(
      fc.property(pairArb, fc.constantFrom(0, 1, 2, 3), ([x, y], which) => {
        const policy = policies[which]!;
        const one = resolveConflict(policy, 'n', x, y);
        const two = resolveConflict(policy, 'n', y, x);
        assert.deepEqual(one, two, 'the same answer whatever the argument order');
        const all = [...(one.winner === undefined ? [] : [one.winner]), ...one.losers];
        assert.equal(all.length, 2);
        assert.ok(all.includes(x) && all.includes(y));
      }),
      fcParams,
    );
  });
});
