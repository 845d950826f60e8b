/**
 * The child table converges: replicas that take in the same writes, in any
 * order and any number of times, hold the same records (a fast-check model;
 * the seed is printed on failure and ROSTER_SEED replays it).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ChildTable, compareVersions, type ChildRecord, type WireChildSpec } from '../src/internal/child-table.js';

const spec: WireChildSpec = { behaviour: 'w', args: undefined, restart: 'permanent', shutdown: 5000, placement: undefined, name: ['s', 'c'] };
const seed = process.env['ROSTER_SEED'] ? { seed: Number(process.env['ROSTER_SEED']) } : {};

describe('ChildTable', () => {
  test('a newer version replaces, an older or equal one does not; the clock moves past what it saw', () => {
    const a = new ChildTable('a');
    const first = a.write('c', { spec, host: 'a' });
    const b = new ChildTable('b');
    assert.equal(b.merge(first), null);
    assert.equal(b.merge(first), undefined, 'the same version again is not news');
    const second = b.write('c', { host: 'b' });
    assert.ok(compareVersions(second.v, first.v) > 0, 'a write after a merge is younger than what was merged');
    assert.equal(a.merge(second), first);
    assert.equal(a.get('c')!.host, 'b');
    assert.equal(a.merge(first), undefined);
    assert.throws(() => a.write('new', { host: 'a' }), /needs its spec/);
  });

  test('next() builds a version without storing it', () => {
    const a = new ChildTable('a');
    const record = a.next('c', { spec });
    assert.equal(a.get('c'), undefined);
    a.put(record);
    assert.equal(a.get('c'), record);
  });

  test('replicas converge whatever the order and repetition of delivery (model)', () => {
    const writer = fc.constantFrom('a', 'b', 'c');
    const op = fc.record({ by: writer, child: fc.constantFrom('x', 'y', 'z'), host: fc.constantFrom('a', 'b', 'c', undefined), deliverTo: fc.subarray(['a', 'b', 'c']) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 200 }), (ops, shuffles) => {
        const tables = new Map(['a', 'b', 'c'].map((node) => [node, new ChildTable(node)]));
        const sent: ChildRecord[] = [];
        for (const step of ops) {
          const table = tables.get(step.by)!;
          const record = table.write(step.child, { spec, host: step.host });
          sent.push(record);
          // Some replicas hear of it at once; the rest later (anti-entropy), below.
          for (const node of step.deliverTo) tables.get(node)!.merge(record);
        }
        // Everything again, in a scrambled order with repeats: what anti-entropy does.
        const order = [...sent];
        for (let index = 0; index < shuffles.length && order.length > 1; index++) {
          const from = shuffles[index]! % order.length;
          const to = (shuffles[index]! * 7 + 3) % order.length;
          [order[from], order[to]] = [order[to]!, order[from]!];
        }
        for (const table of tables.values()) for (const record of [...order, ...order.slice(0, 5)]) table.merge(record);
        const views = [...tables.values()].map((table) => JSON.stringify([...table.values()].sort((p, q) => (p.id < q.id ? -1 : 1)).map((record) => [record.id, record.v, record.host])));
        assert.equal(new Set(views).size, 1, views.join('\n'));
      }),
      { numRuns: 200, ...seed },
    );
  });
});
