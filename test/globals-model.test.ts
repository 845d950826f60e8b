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
import { BadArgError, canonicalName, via, type Name, type Pid } from '@roster/core';
import { MemoryBroker } from '@roster/cluster';
import {
  NAMES,
  World,
  classify,
  fcParams,
  respell,
  unregisteredEvent,
  within,
  type Probe,
  type RegisterOutcome,
} from './globals-helpers.js';

describe('globals registry: sequential model (3 nodes, memory transport)', () => {
  let world: World;
  let broker: MemoryBroker;

  before(async () => {
    broker = new MemoryBroker();
    world = await World.start({ transport: 'memory', nodes: NODES, broker, registerTimeout: 2000 });
  });
  after(async () => {
    await world?.stop();
  });

  test('every command agrees with the model on every node', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 25 }), async (commands) => {
        const pools = await freshPools(world);
        const model = new Map<string, Pid>();
        const check = (context: string): void => {
          const agreed = world.checkAgreement(NAMES, context);
          for (const name of NAMES) {
            const expected = model.get(canonicalName(name));
            const actual = agreed.get(canonicalName(name));
            assert.ok(
              expected === undefined ? actual === undefined : actual?.equals(expected) === true,
              `${context}: ${canonicalName(name)} is ${actual?.key ?? 'free'}, the model says ${expected?.key ?? 'free'}`,
            );
            // The same name spelt differently (object keys reordered) is the same name.
            for (const node of NODES) assert.equal(world.registry(node).whereisName(respell(name))?.key, expected?.key);
          }
          for (const node of NODES) assert.deepEqual(world.registeredKeys(node), [...model.keys()].sort(), `${context}: registered() on ${node}`);
        };
        try {
          for (const [step, command] of commands.entries()) {
            const context = `step ${step} ${JSON.stringify(command)}`;
            await runSequential(world, pools, model, command, context);
            await world.syncAll();
            check(context);
          }
        } finally {
          await cleanup(world, pools);
        }
      }),
      fcParams(60),
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
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 8 }), async (batches) => {
        const pools = await freshPools(world);
        const ledger: Ledger = { granted: new Map(), holds: new Map() };
        try {
          for (const [step, batch] of batches.entries()) await runBatch(world, pools, ledger, batch, `batch ${step} ${JSON.stringify(batch)}`);
        } finally {
          await cleanup(world, pools);
        }
      }),
      fcParams(50),
    );
  });
});
