/**
 * The globals registry over RabbitMQ (AmqpTransport): `AMQP_URL` when set
 * (pausing it needs `ROSTER_RABBITMQ_CTL` too, else a private broker is
 * started), otherwise a private broker from `startRabbitMQ()`.
 *
 * - A race: 5 nodes claim the same name at the same moment, round after
 *   round: exactly one `yes` per round, and every node agrees on the owner.
 * - A dead registrant's name goes on every node; a node killed with SIGKILL
 *   (a separate OS process) loses its names everywhere within the failure
 *   timeout; the broker restarted under the cluster loses no live name.
 * - The sequential model test, a few runs, over the real broker.
 *
 * Reproduce a failure of the model test with ROSTER_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalName, type Name, type Pid } from '@roster/core';
import { startNodeProcesses, startRabbitMQ, type NodeProcess, type RabbitMQ } from '@roster/testkit';
import {
  NODES,
  World,
  assertProperty,
  cleanup,
  commandArb,
  freshPools,
  runSequentialProgram,
  unregisteredEvent,
  within,
  type Probe,
} from './globals-helpers.js';

const HEARTBEAT = 100;
const FAILURE_TIMEOUT = 800;
const AMQP = { heartbeat: 2, reconnect: { initialMs: 100, maxMs: 1000 } } as const;
/** Rounds of the 5-node race (ROSTER_RACE_ROUNDS overrides). */
const ROUNDS = Number(process.env['ROSTER_RACE_ROUNDS'] ?? 1000);

let rabbit: RabbitMQ | undefined;

before(async () => {
  const controllable = process.env['AMQP_URL'] === undefined || (process.env['ROSTER_RABBITMQ_CTL'] ?? '') !== '';
  rabbit = await startRabbitMQ(controllable ? {} : { forcePrivate: true });
});

after(async () => {
  if (rabbit?.state === 'paused') await rabbit.resume();
  await rabbit?.stop();
});

function startWorld(nodes: readonly string[]): Promise<World> {
  return World.start({
    transport: 'amqp',
    nodes,
    amqpUrl: rabbit!.url,
    heartbeatInterval: HEARTBEAT,
    failureTimeout: FAILURE_TIMEOUT,
    registerTimeout: 5000,
    membershipTimeout: 15_000,
    amqp: AMQP,
  });
}

describe('globals over RabbitMQ: 5 nodes', () => {
  const names = ['n1', 'n2', 'n3', 'n4', 'n5'];
  let world: World;
  let probes: Probe[];

  before(async () => {
    world = await startWorld(names);
    probes = await Promise.all(names.map((name) => world.spawn(name)));
  });
  after(async () => {
    await world?.stop();
  });

  test(`a race: 5 nodes claim the same name at the same moment, ${ROUNDS} rounds: one yes each, every node agrees`, async (t) => {
    // Every node's 'registered' events, by name: a round is settled when all five saw its winner.
    const seen = names.map((node) => {
      const events = new Map<string, Pid>();
      let wake: (() => void) | undefined;
      world.registry(node).on('registered', (name, pid) => {
        events.set(canonicalName(name), pid);
        wake?.();
      });
      return {
        events,
        async next(key: string): Promise<Pid> {
          while (!events.has(key)) await new Promise<void>((resolve) => (wake = resolve));
          return events.get(key)!;
        },
      };
    });
    const started = Date.now();
    const wins = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const name: Name = ['race', round];
      const key = canonicalName(name);
      // Even rounds: everyone in the same instant (equal wall clocks: the node-name tie-break decides).
      // Odd rounds: each node a random 0-2 ms late, so the winner varies and late claims meet a commit.
      const jitter = round % 2 === 1;
      const claim = async (node: string, index: number): Promise<'yes' | 'no'> => {
        if (jitter) await delay(Math.floor(Math.random() * 3));
        return world.registry(node).registerName(name, probes[index]!.pid);
      };
      const answers = await within(
        Promise.all(names.map(claim)),
        10_000,
        `round ${round}`,
      );
      const yes = answers.flatMap((answer, index) => (answer === 'yes' ? [index] : []));
      assert.equal(yes.length, 1, `round ${round}: ${yes.length} yes (${answers.join(', ')})`);
      const winner = probes[yes[0]!]!.pid;
      wins.set(winner.node, (wins.get(winner.node) ?? 0) + 1);
      // The winner's commit reaches every node (no sync needed), and only the winner is ever announced.
      const owners = await within(Promise.all(seen.map((s) => s.next(key))), 10_000, `round ${round}: every node to learn the winner`);
      for (const [index, owner] of owners.entries()) assert.ok(owner.equals(winner), `round ${round}: ${names[index]} announced ${owner.key}, the winner is ${winner.key}`);
      for (const s of seen) s.events.delete(key);
      if (round % 100 === 99 || round === ROUNDS - 1) {
        // And global:sync agrees: nobody holds a stray claim of any round.
        await world.syncAll(10_000, 1);
        for (const node of names) assert.ok(world.registry(node).whereisName(name)?.equals(winner), `round ${round}: ${node} after sync`);
        for (const node of names) assert.equal(world.registry(node).registered().length, round + 1, `${node} lists every won name`);
      }
    }
    const raceMs = Date.now() - started;
    t.diagnostic(`${ROUNDS} rounds in ${raceMs} ms (${(raceMs / ROUNDS).toFixed(1)} ms a round); wins by node ${JSON.stringify(Object.fromEntries(wins))}`);
    assert.ok(wins.size >= 2, 'with jitter, more than one node wins some rounds');
  });

  test('the registrant killed: its names gone on every node without anyone calling sync', async (t) => {
    const victim = await world.spawn('n3');
    const held: Name[] = ['gone-1', { gone: 2 }];
    for (const name of held) assert.equal(await world.registry('n3').registerName(name, victim.pid), 'yes');
    await world.syncAll(10_000, 1);
    for (const node of names) for (const name of held) assert.ok(world.registry(node).whereisName(name)?.equals(victim.pid));
    const gone = names.flatMap((node) => held.map((name) => unregisteredEvent(world.registry(node), name, 5000, `${node}: ${canonicalName(name)} to go`)));
    const killedAt = Date.now();
    const reason = await world.kill(victim.pid);
    assert.equal(reason, 'killed');
    const reasons = await Promise.all(gone);
    t.diagnostic(`names of a killed registrant gone everywhere after ${Date.now() - killedAt} ms`);
    for (const r of reasons) assert.ok(r === 'killed' || String(r).includes('killed'), `unregistered with reason ${JSON.stringify(r)}`);
    for (const node of names) for (const name of held) assert.equal(world.registry(node).whereisName(name), undefined);
  });

  test('a node process killed with SIGKILL: its names gone on the others within the failure timeout', async (t) => {
    let child: NodeProcess | undefined;
    try {
      [child] = await startNodeProcesses({
        count: 1,
        names: ['victim'],
        clusterId: world.harness.id,
        amqpUrl: rabbit!.url,
        heartbeatInterval: HEARTBEAT,
        failureTimeout: FAILURE_TIMEOUT,
        amqp: AMQP,
        registries: [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry', options: { registerTimeout: 5000 } }],
      });
      const victim = child!;
      await world.harness.waitForMembership({ also: ['victim'], timeout: 15_000 });
      await Promise.all(names.map((node) => victim.waitForPeer(node, 15_000)));
      const held = ['proc-1', 'proc-2', 'proc-3'];
      for (const name of held) assert.equal(await victim.request({ cmd: 'register', key: 'globals', name }), 'yes');
      // A name the victim holds cannot be taken from another node.
      assert.equal(await world.registry('n1').registerName('proc-1', probes[0]!.pid), 'no');
      await world.syncAll(10_000, 1);
      for (const node of names) {
        for (const name of held) assert.equal(world.registry(node).whereisName(name)?.node, 'victim', `${node} sees ${name} on the victim`);
      }
      const gone = names.flatMap((node) => held.map((name) => unregisteredEvent(world.registry(node), name, FAILURE_TIMEOUT * 4 + 2000, `${node}: ${name} to go`)));
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      await Promise.all(gone);
      const took = Date.now() - killedAt;
      t.diagnostic(`names of the SIGKILLed node gone everywhere after ${took} ms`);
      assert.ok(took <= FAILURE_TIMEOUT + 3 * HEARTBEAT + 500, `names of a SIGKILLed node went after ${took} ms (failure timeout ${FAILURE_TIMEOUT})`);
      for (const node of names) for (const name of held) assert.equal(world.registry(node).whereisName(name), undefined);
      // And the names are free for the living.
      assert.equal(await world.registry('n2').registerName('proc-1', probes[1]!.pid), 'yes');
      await world.syncAll(10_000, 1);
      world.checkAgreement(held, 'after the victim died');
    } finally {
      await child?.stop(2000);
    }
  });

  test('the broker restarted under the cluster: every live registration is there again on every node', async (t) => {
    const broker = rabbit!;
    const held = new Map<string, Pid>();
    for (const [index, node] of names.entries()) {
      const name = `survivor-${node}`;
      assert.equal(await world.registry(node).registerName(name, probes[index]!.pid), 'yes');
      held.set(name, probes[index]!.pid);
    }
    await world.syncAll(10_000, 1);
    const before = new Map([...held.keys()].map((name) => [name, world.registry('n1').whereisName(name)]));
    const all = world.registeredKeys('n1');

    const downs = world.membershipEvents;
    await broker.pause();
    const pausedAt = Date.now();
    await broker.resume();
    t.diagnostic(`broker down for ${Date.now() - pausedAt} ms (restart ${broker.startupMs} ms)`);
    assert.ok(world.membershipEvents > downs, 'the nodes noticed the outage');
    await world.waitForMembership(60_000);
    await world.syncAll(20_000);
    const agreed = world.checkAgreement([...held.keys()], 'after the broker restart');
    for (const [name, pid] of held) {
      assert.ok(world.isAlive(pid));
      assert.ok(agreed.get(canonicalName(name))?.equals(pid), `${name}: ${agreed.get(canonicalName(name))?.key ?? 'nobody'} instead of ${pid.key}`);
      assert.ok(before.get(name)?.equals(pid));
    }
    for (const node of names) assert.deepEqual(world.registeredKeys(node), all, `${node}: every live name, nothing more`);
    // And the registry works again: a fresh race has one winner.
    const answers = await Promise.all(names.map((node, index) => world.registry(node).registerName('after-restart', probes[index]!.pid)));
    assert.equal(answers.filter((answer) => answer === 'yes').length, 1);
  });
});

describe('globals over RabbitMQ: the sequential model, a few runs', () => {
  let world: World;

  before(async () => {
    world = await startWorld(NODES);
  });
  after(async () => {
    await world?.stop();
  });

  test('every command agrees with the model on every node', async () => {
    await assertProperty(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 20 }), async (commands) => {
        const pools = await freshPools(world);
        try {
          await runSequentialProgram(world, pools, commands);
        } finally {
          await cleanup(world, pools);
        }
      }),
      8,
    );
  });
});
