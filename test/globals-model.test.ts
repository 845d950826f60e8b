/**
 * Model test of the globals registry, the successor of kz_globals_pqc: random
 * programs of register / unregister / whereis / registered / send / kill /
 * whereisNameConsistent run on 3 nodes over a MemoryTransport, each node with
 * its own pool of probe processes, and after every command (settled: the
 * registrant's DOWN seen, `sync()` on every node) the real registry must agree
 * with a model that is just `name -> owner pid`, on EVERY node.
 *
 * The concurrent variant fires a batch of commands from all nodes at once and
 * checks what must hold whatever the interleaving: one owner per name that
 * every node agrees on, at most one `yes` among racing registrations, every
 * live `yes` still holding its name, no name pointing at a dead process.
 *
 * Reproduce a failure with ROSTER_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { MemoryBroker } from '@roster/cluster';
import {
  NODES,
  World,
  assertProperty,
  batchArb,
  cleanup,
  commandArb,
  freshPools,
  runBatch,
  raceStats,
  runSequentialProgram,
  type Ledger,
} from './globals-helpers.js';

describe('globals registry: sequential model (3 nodes, memory transport)', () => {
  let world: World;

  before(async () => {
    world = await World.start({ transport: 'memory', nodes: NODES, broker: new MemoryBroker(), registerTimeout: 2000 });
  });
  after(async () => {
    await world?.stop();
  });

  test('every command agrees with the model on every node', async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 25 }), async (commands) => {
        const pools = await freshPools(world);
        try {
          await runSequentialProgram(world, pools, commands);
        } finally {
          await cleanup(world, pools);
        }
      }),
      100,
    );
  });
});

describe('globals registry: concurrent model (batches from all nodes at once)', () => {
  let world: World;

  before(async () => {
    world = await World.start({ transport: 'memory', nodes: NODES, broker: new MemoryBroker(), registerTimeout: 2000 });
  });
  after(async () => {
    await world?.stop();
  });

  test('racing commands keep one agreed owner per name, at most one yes, no ghosts', async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 8 }), async (batches) => {
        const pools = await freshPools(world);
        const ledger: Ledger = { granted: new Map(), holds: new Map() };
        try {
          for (const [step, batch] of batches.entries()) await runBatch(world, pools, ledger, batch, `batch ${step} ${JSON.stringify(batch)}`);
        } finally {
          await cleanup(world, pools);
        }
      }),
      100,
    );
    // The batches did race: names claimed by several nodes at once, with winners and losers.
    assert.ok(raceStats.racedNames > 20 && raceStats.yes > 20 && raceStats.no > 20, `too little racing: ${JSON.stringify(raceStats)}`);
  });
});
