/**
 * Five roster nodes over a three-broker RabbitMQ cluster (one cluster for
 * the file, from startRabbitMQCluster): each node is given every broker URL,
 * rotated so that the nodes spread over the brokers, and runs a
 * GlobalsRegistry, echo servers registered by name, and a traffic loop
 * (calls by name to every node's servers, registrations of fresh and of
 * contested names, kills of their holders).
 *
 * - Each broker in turn is SIGKILLed and started again, then each in turn is
 *   stopped gracefully and started again: the nodes on it fail over to
 *   another URL (a new exclusive queue, a new address, a re-announcement),
 *   the registry re-converges, calls made meanwhile fail with typed errors
 *   within their bound, and traffic resumes.
 * - One node's whole broker link (a fault proxy per URL) is blackholed while
 *   it holds names and serves calls: its peers drop it, its own AMQP
 *   heartbeat notices, and after the link heals it comes back by itself
 *   (same incarnation, no restart) with its names.
 *
 * After every fault, once settled: every live registration is on every
 * node, no name has two owners or a dead one, nobody holds a name it was
 * never granted.
 *
 * Needs brokers it may kill: a private cluster, or AMQP_CLUSTER_URLS with
 * ROSTER_RABBITMQ_CLUSTER_CTL (with AMQP_CLUSTER_URLS alone it starts a
 * private cluster anyway).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { CallError, GenServer, Node, canonicalName, via, type Name, type Pid } from '@roster/core';
import { clusterOf } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry, RegistryUnavailableError } from '@roster/globals';
import {
  EchoServer,
  startFaultLink,
  startRabbitMQCluster,
  uniqueClusterId,
  within,
  type FaultLink,
  type RabbitMQCluster,
} from '@roster/testkit';

const HEARTBEAT = 200;
const FAILURE_TIMEOUT = 1500;
const CALL_TIMEOUT = 1000;
const REGISTER_TIMEOUT = 3000;
/** An operation that has not settled this long after its own timeout hangs. */
const SLACK = 2500;
/** AMQP heartbeat 2 s: amqplib gives a silent broker up after 2-3 of them; so does the broker a silent client. */
const AMQP = { heartbeat: 2, reconnect: { initialMs: 100, maxMs: 1000 }, attemptTimeoutMs: 2000, connectTimeoutMs: 30_000 } as const;
const NAMES = ['n1', 'n2', 'n3', 'n4', 'n5'] as const;
/** The node whose broker link goes through fault proxies. */
const PROXIED = 'n5';
const SERVERS_PER_NODE = 2;

let brokers: RabbitMQCluster;

before(async () => {
  const controllable = (process.env['AMQP_CLUSTER_URLS'] ?? '') === '' || (process.env['ROSTER_RABBITMQ_CLUSTER_CTL'] ?? '') !== '';
  brokers = await startRabbitMQCluster(controllable ? { nodes: 3 } : { nodes: 3, forcePrivate: true });
  process.stderr.write(`cluster-amqp-brokers: ${brokers.size} brokers ready in ${brokers.startupMs} ms\n`);
});

after(async () => {
  await brokers?.stopAll();
});

interface Member {
  readonly name: string;
  readonly node: Node;
  readonly registry: GlobalsRegistry;
  readonly transport: AmqpTransport;
  readonly link: FaultLink | undefined;
  readonly servers: Pid[];
}

/** What one traffic operation came to. */
interface Op {
  readonly kind: 'call' | 'register';
  readonly at: string;
  readonly phase: string;
  /** 'ok' / 'yes' / 'no', a typed failure ('noproc', 'timeout', 'noconnection', 'unavailable'), or 'BAD: ...'. */
  readonly outcome: string;
  readonly ms: number;
}

class Fleet {
  readonly members = new Map<string, Member>();
  readonly ops: Op[] = [];
  /** Every `yes`: canonical name -> the pids granted it. */
  readonly granted = new Map<string, Pid[]>();
  /** `yes` answers the test has not retired (by killing the holder): canonical name -> pid. */
  readonly holds = new Map<string, Pid>();
  readonly names = new Map<string, Name>();
  phase = 'warm-up';
  #running = false;
  #loops: Promise<void>[] = [];
  #seq = 0;

  static async start(cluster: RabbitMQCluster): Promise<Fleet> {
    const fleet = new Fleet();
    const id = uniqueClusterId('brokers');
    await Promise.all(
      NAMES.map(async (name, index) => {
        const own = cluster.rotatedUrls(index % cluster.size);
        const link = name === PROXIED ? await startFaultLink({ urls: own }) : undefined;
        const transport = new AmqpTransport({ ...AMQP, urls: link?.urls ?? own });
        const registry = new GlobalsRegistry({ registerTimeout: REGISTER_TIMEOUT, antiEntropyInterval: 3000 });
        const node = await Node.start({
          name,
          cluster: { id, transport, heartbeatInterval: HEARTBEAT, failureTimeout: FAILURE_TIMEOUT },
          registries: { globals: registry },
        });
        fleet.members.set(name, { name, node, registry, transport, link, servers: [] });
      }),
    );
    await fleet.converged(30_000, 'the first membership');
    for (const member of fleet.members.values()) {
      for (let j = 0; j < SERVERS_PER_NODE; j++) {
        const pid = await GenServer.start(member.node, EchoServer, undefined);
        const name: Name = ['svc', member.name, j];
        assert.equal(await member.registry.registerName(name, pid), 'yes');
        fleet.#granted(name, pid);
        member.servers.push(pid);
      }
    }
    return fleet;
  }

  member(name: string): Member {
    const member = this.members.get(name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  isAlive(pid: Pid): boolean {
    const member = this.members.get(pid.node);
    return member !== undefined && member.node.isAlive(pid);
  }

  /** Every server name, of every node. */
  get serviceNames(): Name[] {
    return [...this.members.values()].flatMap((member) => member.servers.map((_, j): Name => ['svc', member.name, j]));
  }

  #granted(name: Name, pid: Pid): void {
    const key = canonicalName(name);
    this.names.set(key, name);
    (this.granted.get(key) ?? this.granted.set(key, []).get(key)!).push(pid);
    this.holds.set(key, pid);
  }

  /** Every transport up and every node seeing every other. */
  async converged(ms: number, what: string): Promise<number> {
    const began = performance.now();
    const missing = (): string[] => {
      const out: string[] = [];
      for (const member of this.members.values()) {
        if (member.transport.state !== 'up') out.push(`${member.name} is ${member.transport.state}`);
        const seen = new Set(member.node.nodes());
        for (const other of this.members.keys()) if (other !== member.name && !seen.has(other)) out.push(`${member.name} misses ${other}`);
      }
      return out;
    };
    while (missing().length > 0) {
      if (performance.now() - began > ms) throw new Error(`${what}: not converged after ${ms} ms: ${missing().join('; ')}`);
      await sleep(50);
    }
    return Math.round(performance.now() - began);
  }

  /** Converged, then two rounds of registry sync on every node. */
  async settle(what: string): Promise<void> {
    await this.converged(30_000, what);
    for (let round = 0; round < 2; round++) {
      await within(Promise.all([...this.members.values()].map((member) => member.registry.sync())), `${what}: sync round ${round + 1}`, 15_000);
    }
  }

  /** The invariants, once settled. */
  checkInvariants(context: string): void {
    const members = [...this.members.values()];
    const first = members[0]!;
    const keys = first.registry.registered().map(canonicalName).sort();
    for (const member of members) {
      assert.deepEqual(member.registry.registered().map(canonicalName).sort(), keys, `${context}: ${member.name} and ${first.name} list different names`);
    }
    for (const key of keys) {
      const name = this.names.get(key);
      assert.ok(name !== undefined, `${context}: ${key} is registered, the test never registered it`);
      const owners = members.map((member) => member.registry.whereisName(name));
      const owner = owners[0];
      assert.ok(owner !== undefined, `${context}: ${key} listed but not resolved`);
      for (const [index, other] of owners.entries()) {
        assert.ok(other?.equals(owner), `${context}: ${key} is ${owner.key} on ${first.name} but ${other?.key ?? 'free'} on ${members[index]!.name}`);
      }
      assert.ok(this.isAlive(owner), `${context}: ${key} points at dead ${owner.key}`);
      assert.ok(this.granted.get(key)?.some((pid) => pid.equals(owner)), `${context}: ${key} is held by ${owner.key}, never granted it`);
    }
    for (const [key, pid] of this.holds) {
      if (!this.isAlive(pid)) continue; // killed by the test or as a conflict's loser: its name must be gone (checked above)
      for (const member of members) {
        assert.ok(
          member.registry.whereisName(this.names.get(key)!)?.equals(pid),
          `${context}: live ${pid.key} was granted ${key}, ${member.name} resolves ${member.registry.whereisName(this.names.get(key)!)?.key ?? 'nothing'}`,
        );
      }
    }
  }

  startTraffic(): void {
    this.#running = true;
    this.#loops = [...this.members.values()].map((member) => this.#loop(member));
  }

  async stopTraffic(): Promise<void> {
    this.#running = false;
    await within(Promise.all(this.#loops), 'the traffic loops to end', 30_000);
  }

  async #op(kind: Op['kind'], at: string, bound: number, run: () => Promise<string>): Promise<string> {
    const began = performance.now();
    let outcome: string;
    try {
      outcome = await within(run(), `a ${kind} on ${at}`, bound + SLACK);
    } catch (error) {
      if (error instanceof CallError) outcome = error.failure;
      else if (error instanceof RegistryUnavailableError) outcome = 'unavailable';
      else outcome = `BAD: ${error instanceof Error ? error.message : String(error)}`;
    }
    this.ops.push({ kind, at, phase: this.phase, outcome, ms: Math.round(performance.now() - began) });
    return outcome;
  }

  async #loop(member: Member): Promise<void> {
    const { node, registry } = member;
    const retired: Pid[] = [];
    const mine: Pid[] = [];
    const services = this.serviceNames;
    let turn = 0;
    while (this.#running) {
      turn++;
      const r = Math.random();
      if (r < 0.6) {
        const name = services[Math.floor(Math.random() * services.length)]!;
        await this.#op('call', member.name, CALL_TIMEOUT, async () => {
          const answer = await node.call(via('globals', name), 'ping', { timeout: CALL_TIMEOUT });
          return answer === 'pong' ? 'ok' : `BAD: answered ${JSON.stringify(answer)}`;
        });
      } else if (node.alive) {
        // A fresh name (only this node claims it), or one of three every node contends for.
        const name: Name = r < 0.85 ? ['churn', member.name, ++this.#seq] : ['shared', turn % 3];
        const pid = node.spawn(async (self) => {
          for (;;) await self.receive();
        });
        const outcome = await this.#op('register', member.name, REGISTER_TIMEOUT, () => registry.registerName(name, pid));
        if (outcome === 'yes') {
          this.#granted(name, pid);
          mine.push(pid);
        } else {
          retired.push(pid);
        }
        // Retire the oldest holders: killing one frees its name everywhere.
        while (mine.length > 4) retired.push(mine.shift()!);
        for (const old of retired.splice(0)) node.exit(old, 'kill');
      }
      await sleep(20);
    }
  }

  /** Fails on any operation that neither succeeded nor failed typed, or that overran its bound. */
  checkOps(context: string): Record<string, Record<string, number>> {
    const bad = this.ops.filter((op) => op.outcome.startsWith('BAD'));
    assert.deepEqual(bad.slice(0, 5), [], `${context}: ${bad.length} operations failed untyped or hung`);
    const tally: Record<string, Record<string, number>> = {};
    for (const op of this.ops) {
      const row = (tally[`${op.phase} ${op.kind}`] ??= {});
      row[op.outcome] = (row[op.outcome] ?? 0) + 1;
    }
    for (const op of this.ops) {
      const bound = (op.kind === 'call' ? CALL_TIMEOUT : REGISTER_TIMEOUT) + SLACK;
      assert.ok(op.ms <= bound, `${context}: a ${op.kind} on ${op.at} took ${op.ms} ms (bound ${bound})`);
    }
    return tally;
  }

  /** Every node calls every server by name, and each answers. */
  async everyCallAnswers(context: string): Promise<void> {
    for (const member of this.members.values()) {
      for (const name of this.serviceNames) {
        assert.equal(await member.node.call(via('globals', name), 'ping', { timeout: 5000 }), 'pong', `${context}: ${member.name} -> ${canonicalName(name)}`);
      }
    }
  }

  /** The index of the broker a member is connected to (through its proxy, if it has one); -1 when not up. */
  brokerOf(member: Member): number {
    const current = member.transport.broker;
    if (current === undefined) return -1;
    const viaProxy = member.link?.urls.findIndex((url) => redacted(url) === current) ?? -1;
    const url = viaProxy >= 0 ? member.link!.proxies[viaProxy]!.target : undefined;
    return brokers.urls.findIndex((candidate) => (url === undefined ? redacted(candidate) === current : Number(new URL(candidate).port) === url.port));
  }

  brokersInUse(): string {
    return [...this.members.values()].map((member) => `${member.name}@${this.brokerOf(member)}`).join(' ');
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled([...this.members.values()].map((member) => member.node.stop()));
    await Promise.allSettled([...this.members.values()].map((member) => member.link?.close()));
  }
}

function redacted(url: string): string {
  return url.replace(/\/\/[^@]*@/, '//***@');
}

describe('roster over a 3-broker RabbitMQ cluster', { timeout: 300_000 }, () => {
  let fleet: Fleet;

  before(async () => {
    fleet = await Fleet.start(brokers);
    fleet.startTraffic();
    await sleep(500);
  });
  after(async () => {
    await fleet?.stop();
  });

  test('each broker SIGKILLed, then each stopped gracefully, under traffic: failover, re-convergence, typed failures, traffic resumes', async () => {
    const report: string[] = [];
    for (const mode of ['kill', 'stop'] as const) {
      for (let b = 0; b < brokers.size; b++) {
        fleet.phase = `${mode} ${b}`;
        const onIt = [...fleet.members.values()].filter((member) => fleet.brokerOf(member) === b);
        const connections = new Map(onIt.map((member) => [member.name, member.transport.stats.connections]));
        const began = performance.now();
        if (mode === 'kill') await brokers.kill(b);
        else await brokers.stop(b);
        const gone = Math.round(performance.now() - began);
        await waitUntil(
          () => onIt.every((member) => member.transport.stats.connections > connections.get(member.name)!),
          30_000,
          `the nodes on broker ${b} to reconnect elsewhere`,
        );
        const took = await fleet.converged(30_000, `after ${mode} of broker ${b}`);
        for (const member of onIt) {
          assert.notEqual(fleet.brokerOf(member), b, `${member.name} is still on broker ${b}`);
          assert.ok(member.node.alive, `${member.name} stopped`);
        }
        await sleep(800); // traffic on the surviving brokers
        // Settle without traffic: a registration in flight is on some nodes and not yet on others.
        await fleet.stopTraffic();
        await fleet.settle(`after ${mode} of broker ${b}`);
        fleet.checkInvariants(`after ${mode} of broker ${b}`);
        fleet.startTraffic();
        const restart = performance.now();
        await brokers.start(b);
        report.push(
          `${mode} ${b}: ${onIt.map((m) => m.name).join(',') || 'no node'} on it; down in ${gone} ms, converged ${took} ms later; ` +
            `restarted in ${Math.round(performance.now() - restart)} ms; now ${fleet.brokersInUse()}`,
        );
      }
    }
    // Each node goes back to its first broker at its next loss: a rolling restart leaves them spread.
    const spread = new Set([...fleet.members.values()].map((member) => fleet.brokerOf(member)));
    assert.ok(spread.size >= 2, `every node ended on one broker: ${fleet.brokersInUse()}`);
    fleet.phase = 'after';
    await sleep(1000);
    await fleet.stopTraffic();
    await fleet.settle('after every broker fault');
    fleet.checkInvariants('after every broker fault');
    await fleet.everyCallAnswers('after every broker fault');
    fleet.startTraffic();
    const tally = fleet.checkOps('broker faults');
    process.stderr.write(`cluster-amqp-brokers:\n  ${report.join('\n  ')}\n  ops: ${JSON.stringify(tally)}\n`);
    const faultCalls = Object.entries(tally).filter(([row]) => /^(kill|stop) \d call$/.test(row));
    assert.ok(faultCalls.length > 0, 'calls ran during the faults');
    assert.ok((tally['after call']?.['ok'] ?? 0) > 0, 'calls succeed after the faults');
  });

  test('a node whose broker link is blackholed is dropped by its peers, notices by its AMQP heartbeat, and comes back by itself when healed', async () => {
    await fleet.stopTraffic();
    await fleet.settle('before the blackhole');
    fleet.checkInvariants('before the blackhole');
    fleet.startTraffic();
    const member = fleet.member(PROXIED);
    const link = member.link!;
    const creation = member.node.creation;
    const connections = member.transport.stats.connections;
    const others = [...fleet.members.values()].filter((m) => m !== member);
    // Its servers' names (the traffic loop retires its other names as it goes).
    const held: Name[] = member.servers.map((_, j): Name => ['svc', PROXIED, j]);
    for (const name of held) assert.ok(member.registry.whereisName(name)?.node === PROXIED);

    fleet.phase = 'blackhole';
    const began = performance.now();
    link.blackhole();
    // Its peers: no heartbeat from it within the failure timeout.
    await waitUntil(() => others.every((m) => !m.node.nodes().includes(PROXIED)), FAILURE_TIMEOUT * 4 + 3000, 'the peers to drop the blackholed node');
    const peersDropped = Math.round(performance.now() - began);
    for (const m of others) for (const name of held) assert.equal(m.registry.whereisName(name), undefined, `${m.name} still resolves ${canonicalName(name)}`);
    // Itself: every peer silent, then the AMQP heartbeat gives the broker up (no FIN, no RST came).
    await waitUntil(() => member.node.nodes().length === 0, FAILURE_TIMEOUT * 4 + 3000, 'the blackholed node to drop its peers');
    await waitUntil(() => member.transport.state !== 'up', AMQP.heartbeat * 3000 + 5000, 'the AMQP heartbeat to notice the blackhole');
    const heartbeatNoticed = Math.round(performance.now() - began);
    // Its names stay its own while it is alone.
    for (const name of held) assert.ok(member.registry.whereisName(name) !== undefined, `${PROXIED} lost ${canonicalName(name)}`);
    await sleep(2000); // reconnect attempts run into the blackhole too

    fleet.phase = 'healed';
    const healed = performance.now();
    await link.heal();
    const back = await fleet.converged(30_000, 'after the heal');
    await sleep(500);
    await fleet.stopTraffic();
    await fleet.settle('after the heal');
    fleet.checkInvariants('after the heal');
    assert.equal(member.node.creation, creation, 'the node came back as the same incarnation');
    assert.ok(member.node.alive);
    assert.ok(member.transport.stats.connections > connections, 'it reconnected');
    for (const name of held) {
      const pid = member.registry.whereisName(name);
      if (pid === undefined || !fleet.isAlive(pid)) continue; // a contested name it lost on the heal
      for (const m of others) assert.ok(m.registry.whereisName(name)?.equals(pid), `${m.name} does not resolve ${canonicalName(name)} again`);
    }
    await fleet.everyCallAnswers('after the heal');
    const tally = fleet.checkOps('blackhole');
    process.stderr.write(
      `cluster-amqp-brokers blackhole: peers dropped ${PROXIED} after ${peersDropped} ms, its AMQP heartbeat after ${heartbeatNoticed} ms; ` +
        `converged ${Math.round(performance.now() - healed)} ms after the heal (membership ${back} ms); ` +
        `blackhole ops ${JSON.stringify(tally['blackhole call'])} ${JSON.stringify(tally['blackhole register'])}\n`,
    );
  });
});

async function waitUntil(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

void clusterOf;
