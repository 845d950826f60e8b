/**
 * The vote ledger decides which commits may take a name here and which
 * claims still hold others back: it must answer exactly as a plain model
 * (one map keyed by claimant and name, in order of voting) under any
 * sequence of votes, settlements, forgotten claimants and passing time,
 * with a mocked clock so expiry by age is part of the space; and the table
 * under it (shared with the release fences) keeps one value per name and node.
 */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import fc from 'fast-check';
import { compareEpochs, sameEpoch, type Epoch } from '../src/epoch.js';
import { KeyedByNode } from '../src/internal/keyed-by-node.js';
import { VoteLedger } from '../src/internal/vote-ledger.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number; numRuns: number } = { numRuns: 300, ...(envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {}) };

const TTL = 1000;

/** The model: what the ledger promises, without its indexes. */
class ModelLedger {
  readonly votes = new Map<string, { claimant: string; key: string; epoch: Epoch; at: number; settled: boolean }>();
  record(claimant: string, key: string, epoch: Epoch, now: number): void {
    const id = `${claimant}\u0000${key}`;
    const previous = this.votes.get(id);
    if (previous !== undefined && compareEpochs(previous.epoch, epoch) > 0) return;
    this.votes.delete(id);
    this.votes.set(id, { claimant, key, epoch, at: now, settled: false });
    for (const [oldest, vote] of this.votes) {
      if (now - vote.at < TTL) break;
      this.votes.delete(oldest);
    }
  }
  votedFor(claimant: string, key: string, epoch: Epoch, now: number): boolean {
    const vote = this.votes.get(`${claimant}\u0000${key}`);
    return vote !== undefined && sameEpoch(vote.epoch, epoch) && now - vote.at < TTL;
  }
  outstanding(key: string, except: string, within: number, now: number): { claimant: string; epoch: Epoch } | undefined {
    let oldest: { claimant: string; epoch: Epoch } | undefined;
    for (const vote of this.votes.values()) {
      if (vote.key !== key || vote.claimant === except || vote.settled || now - vote.at >= within) continue;
      if (oldest === undefined || compareEpochs(vote.epoch, oldest.epoch) < 0) oldest = { claimant: vote.claimant, epoch: vote.epoch };
    }
    return oldest;
  }
  settle(claimant: string, key: string, epoch: Epoch): void {
    const vote = this.votes.get(`${claimant}\u0000${key}`);
    if (vote !== undefined && sameEpoch(vote.epoch, epoch)) vote.settled = true;
  }
  forget(claimant: string): void {
    for (const [id, vote] of this.votes) if (vote.claimant === claimant) this.votes.delete(id);
  }
}

const claimant = fc.constantFrom('a', 'b', 'c');
const key = fc.constantFrom('k1', 'k2', 'k3');
const epoch = fc.record({ wall: fc.integer({ min: 0, max: 3 }), counter: fc.integer({ min: 0, max: 2 }), node: claimant });
const operation = fc.oneof(
  fc.record({ op: fc.constant('record' as const), claimant, key, epoch }),
  fc.record({ op: fc.constant('settle' as const), claimant, key, epoch }),
  fc.record({ op: fc.constant('forget' as const), claimant }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 600 }) }),
);

test('answers as the plain model under any votes, settlements, forgets and passing time (model)', (t) => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  t.after(() => mock.timers.reset());
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
      const ledger = new VoteLedger(TTL);
      const model = new ModelLedger();
      for (const step of operations) {
        const now = Date.now();
        if (step.op === 'record') {
          ledger.record(step.claimant, step.key, step.epoch);
          model.record(step.claimant, step.key, step.epoch, now);
        } else if (step.op === 'settle') {
          ledger.settle(step.claimant, step.key, step.epoch);
          model.settle(step.claimant, step.key, step.epoch);
        } else if (step.op === 'forget') {
          ledger.forget(step.claimant);
          model.forget(step.claimant);
        } else {
          mock.timers.tick(step.ms);
        }
        const at = Date.now();
        for (const name of ['k1', 'k2', 'k3']) {
          for (const who of ['a', 'b', 'c']) {
            for (const within of [300, TTL]) {
              const open = ledger.outstanding(name, who, within);
              const expected = model.outstanding(name, who, within, at);
              assert.deepEqual(open === undefined ? undefined : { claimant: open.claimant, epoch: open.epoch }, expected, `outstanding(${name}, except ${who}, ${within})`);
            }
            for (const wall of [0, 1, 2, 3]) {
              const probe = { wall, counter: 0, node: who };
              assert.equal(ledger.votedFor(who, name, probe), model.votedFor(who, name, probe, at), `votedFor(${who}, ${name}, ${wall})`);
            }
          }
        }
      }
    }),
    fcParams,
  );
});

test('stays bounded by age: votes older than the ttl are forgotten as new ones come', (t) => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  t.after(() => mock.timers.reset());
  const ledger = new VoteLedger(TTL);
  for (let n = 0; n < 5000; n++) {
    ledger.record('a', `k${n}`, { wall: n, counter: 0, node: 'a' });
    mock.timers.tick(1);
  }
  assert.ok(ledger.size <= TTL + 1, `${ledger.size} votes held with a ${TTL} ms ttl`);
  assert.equal(ledger.votedFor('a', 'k4999', { wall: 4999, counter: 0, node: 'a' }), true);
  assert.equal(ledger.votedFor('a', 'k0', { wall: 0, counter: 0, node: 'a' }), false);
});

test('the table under the ledger and the release fences: values set again stay one each, expiry by age and by size and forget drop exactly theirs', () => {
  const table = new KeyedByNode<number>();
  // Set at times 0..199 999: the value is its time.
  for (let n = 0; n < 200_000; n++) table.set('k', n % 2 === 0 ? 'a' : 'b', n, n);
  assert.equal(table.size, 2);
  assert.equal(table.get('k', 'a'), 199_998);
  assert.equal(table.get('k', 'b'), 199_999);
  table.set('other', 'a', -1, 200_000);
  table.expire(0);
  assert.equal(table.size, 3, 'nothing expires while the oldest is young');
  table.expire(199_999);
  assert.deepEqual([table.get('k', 'a'), table.get('k', 'b'), table.get('other', 'a')], [undefined, 199_999, -1], 'what was set before the cutoff goes, oldest first');
  table.expire(200_000);
  assert.deepEqual([table.size, table.get('k', 'b'), table.get('other', 'a')], [1, undefined, -1]);
  table.set('k', 'b', 5, 200_001);
  table.set('k', 'a', 6, 200_002);
  table.expire(0, 2);
  assert.deepEqual([table.size, table.get('other', 'a'), table.get('k', 'b')], [2, undefined, 5], 'beyond the size bound the oldest goes, however young');
  table.forget('a');
  assert.deepEqual([table.size, table.get('other', 'a'), table.get('k', 'b'), [...table.valuesOf('k')]], [1, undefined, 5, [5]]);
});
