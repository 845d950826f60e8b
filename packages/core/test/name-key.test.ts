/**
 * `nameKey` is what every registry keys its table on, computed at every
 * lookup: it must be equal exactly when two names are (canonical JSON equal),
 * whatever their shape, and refuse what `canonicalName` refuses, with the
 * same message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalName, nameKey, type Name } from '@roster/core';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

/** Names built to collide if the key were ambiguous: short strings over the encoding's own punctuation. */
const tricky = fc.string({ unit: fc.constantFrom('s', 'n', ':', '1', '2', '[', ']', '{', '}', '"', 'z', 't', 'f', '\u0001', ',', '-', '.', 'u', 'l'), maxLength: 6 });
const name: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    tricky,
    fc.integer({ min: -20, max: 20 }),
    fc.constantFrom(0, -0, 1.5, 1e21, -1e-7),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(tricky, tie('value'), { maxKeys: 3 }),
  ),
})).value;

test('nameKey(a) === nameKey(b) exactly when canonicalName(a) === canonicalName(b)', () => {
  fc.assert(
    fc.property(name, name, (a, b) => {
      assert.equal(nameKey(a) === nameKey(b), canonicalName(a) === canonicalName(b), `${canonicalName(a)} vs ${canonicalName(b)}`);
    }),
    { numRuns: 5000, ...fcParams },
  );
  fc.assert(
    fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
      assert.equal(nameKey(a) === nameKey(b), canonicalName(a) === canonicalName(b));
    }),
    { numRuns: 1000, ...fcParams },
  );
});

test('nameKey ignores object key order and tells apart the values JSON tells apart', () => {
  assert.equal(nameKey({ a: 1, b: [2, 'x'] }), nameKey({ b: [2, 'x'], a: 1 }));
  assert.equal(nameKey(-0), nameKey(0));
  assert.equal(nameKey([-0]), nameKey([0]));
  const distinct: Name[] = ['1', 1, true, 'true', null, 'null', [1, 2], [2, 1], [[1], 2], [1, [2]], { a: [1] }, { a: 1 }, [], {}, '', 0, 's1:a', ['a'], '\u0001s1:a]', '\u0001"x', 'x', '[1, 2]', '"1"', '\u00011', '{"a":1}'];
  const keys = distinct.map((value) => nameKey(value));
  assert.equal(new Set(keys).size, distinct.length, keys.join(' | '));
});

test('a string name is its own key (no copy on the lookup path); strings that could meet another kind are marked', () => {
  const name = 'room-42';
  assert.equal(nameKey(name), name);
  for (const marked of ['\u0001x', '[1]', '{}', '["a"]']) assert.notEqual(nameKey(marked), marked);
  assert.notEqual(nameKey('[1]'), nameKey([1]));
  assert.notEqual(nameKey('{}'), nameKey({}));
});

test('a tuple with a toJSON of its own is keyed by its elements, not by what toJSON says', () => {
  const tuple = Object.assign(['a', 1], { toJSON: () => 'other' });
  assert.equal(nameKey(tuple), nameKey(['a', 1]));
  assert.notEqual(nameKey(tuple), nameKey('other'));
});

test('nameKey refuses what canonicalName refuses, with the same message', () => {
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  for (const [index, bad] of [undefined, NaN, Infinity, ['a', NaN], { a: () => 1 }, new Date(0), [Symbol('s')], 10n, sparse, cyclic, { [Symbol('k')]: 1 }, new Map()].entries()) {
    let expected: unknown;
    try {
      canonicalName(bad);
    } catch (error) {
      expected = error;
    }
    assert.ok(expected instanceof TypeError, `canonicalName must refuse bad input #${index}`);
    assert.throws(() => nameKey(bad), (error: unknown) => error instanceof TypeError && error.message === (expected as TypeError).message);
  }
});
