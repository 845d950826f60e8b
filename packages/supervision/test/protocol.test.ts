/** Every malformed member message is refused with a reason; well-formed ones come back whole. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Pid } from '@roster/core';
import { parseMemberMessage } from '../src/internal/protocol.js';

const spec = { behaviour: 'w', restart: 'permanent', shutdown: 5000, name: ['s', 'c'] };
const record = { id: 'c', v: [3, 'a'], spec, state: 'running', host: 'a', pid: new Pid('a', 'x1', 4), restarts: 0 };

describe('member protocol', () => {
  test('well-formed messages parse', () => {
    assert.deepEqual(parseMemberMessage({ op: 'load', load: 3, keys: ['w'] }), { op: 'load', load: 3, keys: ['w'] });
    const parsed = parseMemberMessage({ op: 'records', records: [record], want: true });
    assert.ok(typeof parsed !== 'string' && parsed.op === 'records');
    assert.equal(parsed.records[0]!.host, 'a');
    assert.deepEqual(parseMemberMessage({ op: 'migrate', id: 'c', to: 'b' }), { op: 'migrate', id: 'c', to: 'b' });
  });

  const bad: [string, unknown][] = [
    ['not an object', 'hello'],
    ['an array', []],
    ['unknown op', { op: 'steal' }],
    ['negative load', { op: 'load', load: -1, keys: [] }],
    ['keys not strings', { op: 'hello', load: 1, keys: [1] }],
    ['records not a list', { op: 'records', records: {} }],
    ['too many records', { op: 'records', records: Array.from({ length: 201 }, () => record) }],
    ['bad version', { op: 'records', records: [{ ...record, v: [0, 'a'] }] }],
    ['bad state', { op: 'records', records: [{ ...record, state: 'zombie' }] }],
    ['running without a pid', { op: 'records', records: [{ ...record, pid: undefined }] }],
    ['running on a host its pid is not of', { op: 'records', records: [{ ...record, host: 'b' }] }],
    ['pid not a pid', { op: 'records', records: [{ ...record, pid: { node: 'a' } }] }],
    ['bad restart type', { op: 'records', records: [{ ...record, spec: { ...spec, restart: 'sometimes' } }] }],
    ['bad shutdown', { op: 'records', records: [{ ...record, spec: { ...spec, shutdown: -5 } }] }],
    ['bad name', { op: 'records', records: [{ ...record, spec: { ...spec, name: [undefined] } }] }],
    ['negative restarts', { op: 'records', records: [{ ...record, restarts: -1 }] }],
    ['bad want', { op: 'records', records: [], want: 'yes' }],
    ['migrate without a target', { op: 'migrate', id: 'c' }],
  ];
  for (const [what, message] of bad) {
    test(`refused: ${what}`, () => {
      assert.equal(typeof parseMemberMessage(message), 'string');
    });
  }
});
