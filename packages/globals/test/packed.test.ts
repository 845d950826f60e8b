/**
 * The registry's packed batches (`{ op: 'packed', m }`, docs/protocol.md
 * §5): every batched message survives packing, JSON and unpacking unchanged
 * (a model check over the whole message space), an entry's epoch node is
 * implied and so cannot be forged, a message without a packed form is
 * refused by `packMessage` (it travels as it is), and every malformed entry
 * is refused with a `MalformedMessage` — names included, however deeply a
 * small frame nests them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Pid, type Name } from '@roster/core';
import { MalformedMessage, packMessage, parseMessages, type GlobalsMessage, type WireEpoch } from '../src/internal/protocol.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

const SENDER = 'n1';
const RECEIVER = 'n2';

const name: fc.Arbitrary<Name> = fc.oneof(
  fc.string({ minLength: 1 }),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)), { maxLength: 4 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }).map((record) => ({ ...record })),
);
const pid = fc.tuple(fc.constantFrom(SENDER, RECEIVER, 'n3'), fc.string({ minLength: 1, maxLength: 8 }), fc.nat()).map(([node, creation, id]) => new Pid(node, creation, id));
const epochOf = (node: string): fc.Arbitrary<WireEpoch> => fc.tuple(fc.integer({ min: 0, max: 2 ** 45 }), fc.nat(), fc.constant(node));
const round = fc.option(fc.nat({ max: 50 }), { nil: undefined });
const text = fc.string({ minLength: 1, maxLength: 12 });

/** Every batched message the sender may send, with the epoch node the protocol gives it. */
const batched: fc.Arbitrary<GlobalsMessage> = fc.oneof(
  fc.record({ op: fc.constant('claim' as const), name, pid, epoch: epochOf(SENDER), round }),
  fc.record({ op: fc.constant('vote' as const), name, epoch: epochOf(RECEIVER), round, vote: fc.constant('yes' as const) }),
  fc.record({ op: fc.constant('vote' as const), name, epoch: epochOf(RECEIVER), round, vote: fc.constant('no' as const), holder: text }),
  fc.record({ op: fc.constant('vote' as const), name, epoch: epochOf(RECEIVER), round, vote: fc.constant('remote' as const), owner: text }),
  fc.record({ op: fc.constant('commit' as const), name, pid, epoch: epochOf(SENDER) }),
  fc.record({ op: fc.constant('abort' as const), name, epoch: epochOf(SENDER) }),
  fc.record({ op: fc.constant('release' as const), name, epoch: epochOf(SENDER), reason: text, ack: fc.option(fc.constant(true), { nil: undefined }) }),
  fc.record({ op: fc.constant('ack' as const), name, epoch: epochOf(RECEIVER), of: fc.constantFrom('commit' as const, 'release' as const) }),
) as fc.Arbitrary<GlobalsMessage>;

/** What the receiver makes of a packed batch of `messages`, through JSON as on the wire. */
function overTheWire(messages: readonly GlobalsMessage[]): GlobalsMessage[] {
  const entries = messages.map((message) => packMessage(message, SENDER, RECEIVER));
  assert.ok(entries.every((entry) => entry !== undefined));
  return parseMessages(JSON.parse(JSON.stringify({ op: 'packed', m: entries })), SENDER, RECEIVER);
}

/** A message as the table reads it: absent optional fields and their defaults alike (`round` 0, `ack` absent or false); the parser's cached key left out. */
function normalised(message: GlobalsMessage): Record<string, unknown> {
  const copy: Record<string, unknown> = Object.fromEntries(Object.entries(message));
  if (copy['round'] === undefined || copy['round'] === 0) delete copy['round'];
  if (copy['ack'] === undefined || copy['ack'] === false) delete copy['ack'];
  for (const key of Object.keys(copy)) if (copy[key] === undefined) delete copy[key];
  if (copy['pid'] instanceof Pid) copy['pid'] = (copy['pid'] as Pid).key;
  return copy;
}

test('every batched message survives packing, JSON and unpacking (model)', () => {
  fc.assert(
    fc.property(fc.array(batched, { minLength: 1, maxLength: 30 }), (messages) => {
      const received = overTheWire(messages);
      assert.equal(received.length, messages.length);
      received.forEach((message, index) => assert.deepEqual(normalised(message), normalised(messages[index]!)));
    }),
    fcParams,
  );
});

test('an epoch whose node is not the one the entry implies has no packed form: it travels as it is', () => {
  const claimOfAnother: GlobalsMessage = { op: 'claim', name: 'x', pid: new Pid(SENDER, 'c', 1), epoch: [1, 0, 'n3'] };
  const voteOnAnother: GlobalsMessage = { op: 'vote', name: 'x', epoch: [1, 0, SENDER], vote: 'yes' };
  const ackToAnother: GlobalsMessage = { op: 'ack', name: 'x', epoch: [1, 0, 'n3'], of: 'commit' };
  for (const message of [claimOfAnother, voteOnAnother, ackToAnother]) assert.equal(packMessage(message, SENDER, RECEIVER), undefined, message.op);
  for (const message of [{ op: 'sync', at: [1, 0, SENDER], want: true, sids: [] }, { op: 'down' }, { op: 'whereis', name: 'x', qid: 1 }] as GlobalsMessage[]) {
    assert.equal(packMessage(message, SENDER, RECEIVER), undefined, message.op);
  }
});

test('a packed claim or commit always carries the sender as its epoch node: it cannot speak for another node', () => {
  const [claim, vote] = parseMessages({ op: 'packed', m: [[0, 'x', 'n3', 'c', 1, 5, 0, 0], [1, 'y', 5, 0, 0]] }, SENDER, RECEIVER) as [
    Extract<GlobalsMessage, { op: 'claim' }>,
    Extract<GlobalsMessage, { op: 'vote' }>,
  ];
  assert.deepEqual(claim.epoch, [5, 0, SENDER]);
  assert.deepEqual(vote.epoch, [5, 0, RECEIVER], "a vote is on the receiver's own claim");
});

test('malformed packed batches and entries are refused, each with a MalformedMessage', () => {
  const deep = (depth: number): unknown => (depth === 0 ? 'x' : [deep(depth - 1)]);
  const bad: [string, unknown][] = [
    ['no entries', { op: 'packed', m: [] }],
    ['m not an array', { op: 'packed', m: { 0: [1, 'x', 1, 0, 0] } }],
    ['over 1024 entries', { op: 'packed', m: Array.from({ length: 1025 }, () => [1, 'x', 1, 0, 0]) }],
    ['entry not an array', { op: 'packed', m: [{ op: 'claim' }] }],
    ['unknown code', { op: 'packed', m: [[9, 'x', 1, 0]] }],
    ['fractional code', { op: 'packed', m: [[1.5, 'x', 1, 0, 0]] }],
    ['wrong length', { op: 'packed', m: [[1, 'x', 1, 0]] }],
    ['extra field', { op: 'packed', m: [[5, 'x', 1, 0, 'more']] }],
    ['bad name', { op: 'packed', m: [[5, { bad: undefined }, 1, 0]] }],
    ['empty-string pid node', { op: 'packed', m: [[4, 'x', '', 'c', 1, 1, 0]] }],
    ['negative pid id', { op: 'packed', m: [[4, 'x', 'n1', 'c', -1, 1, 0]] }],
    ['pid id not an integer', { op: 'packed', m: [[4, 'x', 'n1', 'c', '1', 1, 0]] }],
    ['wall not an integer', { op: 'packed', m: [[5, 'x', 1.5, 0]] }],
    ['wall beyond 2^53', { op: 'packed', m: [[5, 'x', 2 ** 60, 0]] }],
    ['negative counter', { op: 'packed', m: [[5, 'x', 1, -1]] }],
    ['negative round', { op: 'packed', m: [[1, 'x', 1, 0, -1]] }],
    ['empty holder', { op: 'packed', m: [[2, 'x', 1, 0, 0, '']] }],
    ['owner not a string', { op: 'packed', m: [[3, 'x', 1, 0, 0, 7]] }],
    ['release ack not 0 or 1', { op: 'packed', m: [[6, 'x', 1, 0, 'normal', true]] }],
    ['empty reason', { op: 'packed', m: [[6, 'x', 1, 0, '', 0]] }],
    ['a name nested 5000 deep (a small frame is not depth-scanned)', { op: 'packed', m: [[5, deep(5000), 1, 0]] }],
    ['one bad entry among good ones', { op: 'packed', m: [[5, 'x', 1, 0], [5, 'y', 1, 0], [7]] }],
  ];
  for (const [label, raw] of bad) assert.throws(() => parseMessages(raw, SENDER, RECEIVER), MalformedMessage, label);
});
