import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Placer, type PlacementContext } from '@roster/supervision';

const context = (self = 'a'): PlacementContext => ({
  childId: 'c',
  behaviour: 'w',
  self,
  candidates: [
    { node: 'a', load: 30 },
    { node: 'b', load: 10 },
    { node: 'c', load: 20 },
  ],
});

describe('Placer', () => {
  test('round_robin takes the candidates in turn', () => {
    const placer = new Placer();
    assert.deepEqual([1, 2, 3, 4].map(() => placer.choose('round_robin', context())), ['a', 'b', 'c', 'a']);
  });
  test('local_first takes the deciding node when it qualifies, else round robin', () => {
    const placer = new Placer();
    assert.equal(placer.choose('local_first', context('b')), 'b');
    assert.equal(placer.choose('local_first', context('z')), 'a');
  });
  test('least_loaded takes the fewest processes', () => {
    assert.equal(new Placer().choose('least_loaded', context()), 'b');
  });
  test('random draws among the candidates', () => {
    assert.equal(new Placer(() => 0.99).choose('random', context()), 'c');
    assert.equal(new Placer(() => 0).choose('random', context()), 'a');
  });
  test('a node list is a preference: the first live candidate', () => {
    assert.equal(new Placer().choose(['z', 'c', 'a'], context()), 'c');
    assert.equal(new Placer().choose(['z'], context()), undefined);
  });
  test('a function must answer a candidate', () => {
    assert.equal(new Placer().choose((ctx) => ctx.candidates.at(-1)!.node, context()), 'c');
    assert.equal(new Placer().choose(() => 'elsewhere', context()), undefined);
  });
  test('no candidates: nowhere', () => {
    assert.equal(new Placer().choose('round_robin', { ...context(), candidates: [] }), undefined);
  });
});
