/**
 * The tuple index answers `whereisName` for tuple names without building
 * their key: it must agree with the string-keyed table for any sequence of
 * inserts and deletes (a model check), tell apart what the canonical
 * encoding tells apart (`[1]`, `['1']`, `[1, 2]`, `[true]`, `[null]`),
 * merge what it merges (`-0` and `0`), and hand back anything that is not a
 * flat tuple so the table's key path (and its TypeError) decides.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalName } from '@roster/core';
import { NOT_A_TUPLE, TupleIndex } from '../src/internal/tuple-index.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

const element = fc.oneof(fc.constantFrom('a', 'b', '1', '', 'true', 'null'), fc.constantFrom(0, -0, 1, 2, 1.5), fc.boolean(), fc.constant(null));
const tuple = fc.array(element, { maxLength: 3 });

test('agrees with a map keyed by canonical encoding under any inserts and deletes (model)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), tuple), { maxLength: 60 }), fc.array(tuple, { maxLength: 20 }), (operations, probes) => {
      const index = new TupleIndex<string>();
      const model = new Map<string, string>();
      operations.forEach(([insert, name], step) => {
        const key = canonicalName(name);
        if (insert) {
          index.set(name, `v${step}`);
          model.set(key, `v${step}`);
        } else {
          index.delete(name);
          model.delete(key);
        }
        assert.equal(index.size, model.size, `size after step ${step}`);
        for (const probe of [...probes, name]) assert.equal(index.get(probe), model.get(canonicalName(probe)), `after step ${step}: ${canonicalName(probe)}`);
      });
    }),
    { numRuns: 300, ...fcParams },
  );
});

test('distinct tuples stay distinct; -0 is 0', () => {
  const index = new TupleIndex<string>();
  const names = [[1], ['1'], [1, 2], [true], ['true'], [null], ['null'], [], [[1]].flat(), ['a', 1], [1, 'a']];
  names.forEach((name, n) => index.set(name, `v${n}`));
  assert.equal(index.get([1]), 'v8', 'the last set under [1] wins');
  assert.equal(index.get(['1']), 'v1');
  assert.equal(index.get([]), 'v7');
  assert.equal(index.get([1, 'a']), 'v10');
  index.set([-0, 'x'], 'zero');
  assert.equal(index.get([0, 'x']), 'zero');
  index.delete([0, 'x']);
  assert.equal(index.get([-0, 'x']), undefined);
});

test('anything but a flat tuple is not indexed and is handed back', () => {
  const index = new TupleIndex<string>();
  for (const name of [[{ a: 1 }], [[1]], [NaN], [undefined], ['a', () => 1], [Infinity]]) {
    index.set(name, 'x');
    assert.equal(index.get(name), NOT_A_TUPLE, JSON.stringify(name) ?? 'unprintable');
  }
  index.set(['a'], 'x');
  // A miss on a prefix still checks the rest: an invalid tail is handed back, not answered "none".
  assert.equal(index.get(['b', NaN]), NOT_A_TUPLE);
  assert.equal(index.get(['b', 1]), undefined);
});

test('deletes prune: nothing is left after every name is deleted', () => {
  const index = new TupleIndex<number>();
  const names = Array.from({ length: 200 }, (_, n) => ['room', n % 7, n]);
  names.forEach((name, n) => index.set(name, n));
  assert.equal(index.size, 200);
  for (const name of names) index.delete(name);
  for (const name of names) assert.equal(index.get(name), undefined);
  assert.equal(index.size, 0);
  // The root has no children left (reached through the same public surface: a new set works as on a fresh index).
  index.set(['room'], 1);
  assert.equal(index.get(['room']), 1);
  assert.equal(index.get(['room', 0]), undefined);
});
