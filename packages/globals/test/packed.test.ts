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
import type { ClusterChannel } from '@roster/cluster';
import { MalformedMessage, packMessage, parseMessages, type GlobalsMessage, type WireEpoch } from '../src/internal/protocol.js';
import { PeerOutbox } from '../src/internal/peer-outbox.js';

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
    ['unknown code', { op: 'packed', m: [[10, 'x', 1, 0]] }],
    ['run of acks of no kind', { op: 'packed', m: [[9, 2, 1, 0]] }],
    ['run of acks with no epoch', { op: 'packed', m: [[9, 0]] }],
    ['run of acks with half an epoch', { op: 'packed', m: [[9, 1, 1, 0, 2]] }],
    ['run of acks with a negative counter', { op: 'packed', m: [[9, 1, 1, -1]] }],
    ['run of acks with a name for a wall', { op: 'packed', m: [[9, 0, 'x', 0]] }],
    ['run of over 1024 acks', { op: 'packed', m: [[9, 0, ...Array.from({ length: 1025 }, (_, i) => [i, 0]).flat()]] }],
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

/** What `RECEIVER` makes of `messages` sent by an outbox that knows it reads packed batches (and runs of acks, when `ackRuns`). */
function throughOutbox(messages: readonly GlobalsMessage[], ackRuns: boolean): { received: GlobalsMessage[]; entries: number } {
  const sent: unknown[] = [];
  const channel: ClusterChannel = {
    broadcast: () => {},
    send: () => {
      throw new Error('a batched message went tagged');
    },
    sendPlain: (_node, message) => {
      sent.push(JSON.parse(JSON.stringify(message)));
      return true;
    },
    close: () => {},
  };
  const outbox = new PeerOutbox(SENDER, () => channel, () => [RECEIVER], (error) => {
    throw error;
  });
  outbox.speaksPacked(RECEIVER);
  if (ackRuns) outbox.readsAckRuns(RECEIVER);
  for (const message of messages) outbox.send(RECEIVER, message);
  outbox.flush();
  const received = sent.flatMap((batch) => parseMessages(batch, SENDER, RECEIVER));
  const entries = sent.reduce<number>((total, batch) => total + (batch as { m: unknown[] }).m.length, 0);
  return { received, entries };
}

/** `message` as it arrives in a run of acks: an ack without its name. */
const withoutAckName = (message: GlobalsMessage): GlobalsMessage => (message.op === 'ack' ? { op: 'ack', epoch: message.epoch, of: message.of } : message);

test('acks travel in runs to a peer that reads them: every message arrives, in order, acks by their epochs alone (model)', () => {
  fc.assert(
    fc.property(fc.array(batched, { maxLength: 600 }), (messages) => {
      const runs = throughOutbox(messages, true);
      assert.deepEqual(runs.received.map(normalised), messages.map(withoutAckName).map(normalised));
      const plain = throughOutbox(messages, false);
      assert.deepEqual(plain.received.map(normalised), messages.map(normalised), 'a peer that does not read runs gets every ack with its name');
      assert.ok(runs.entries <= plain.entries);
    }),
    { ...fcParams, numRuns: 200 },
  );
});

test('a thousand consecutive acks of one kind are one or two entries; acks of two kinds in turn are not merged', () => {
  const ack = (n: number, of: 'commit' | 'release'): GlobalsMessage => ({ op: 'ack', name: `n${n}`, epoch: [1_700_000_000_000 + n, n % 7, RECEIVER], of });
  assert.equal(throughOutbox(Array.from({ length: 1000 }, (_, n) => ack(n, 'release')), true).entries, 1);
  assert.equal(throughOutbox(Array.from({ length: 2000 }, (_, n) => ack(n, 'release')), true).entries, 2, 'at most 1024 acks a run');
  const alternating = Array.from({ length: 10 }, (_, n) => ack(n, n % 2 === 0 ? 'commit' : 'release'));
  const { received, entries } = throughOutbox(alternating, true);
  assert.equal(entries, 10);
  assert.deepEqual(received.map(normalised), alternating.map(withoutAckName).map(normalised));
});
