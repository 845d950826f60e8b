/**
 * Cluster-wide supervision over RabbitMQ (AMQP) with nodes in OS processes,
 * at the shipped default timings (heartbeat 1 s, failure timeout 3 s:
 * nothing is overridden). Three node processes each run the setup of
 * fixtures/supervision-node.ts: a member of the distributed supervisor
 * `fleet` and of the singleton `boss`, both with `clusterSize: 3`.
 *
 * 100 children are started from one node, round robin. The process hosting
 * the singleton (and about a third of the children) is SIGKILLed: every
 * child and the singleton must run again on the two survivors. It is then
 * started again under its name: once it has joined and things have settled,
 * nothing runs twice.
 *
 * A probe in this process is fed by the children's start and exit events
 * (emitted by the fixture from each instance's `init` and a `watchExit`
 * hook) and fails the test as soon as two instances of one child were live
 * at once on processes both alive; a SIGKILLed process's instances count as
 * dead from the moment of the kill.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EventEmitter } from 'node:events';
import { startNodeProcesses, startRabbitMQ, stopNodeProcesses, uniqueClusterId, type NodeProcess, type RabbitMQ } from '@roster/testkit';
import type { ChildExitEvent, ChildStartEvent, CounterReply } from './fixtures/supervision-node.js';

const HEARTBEAT = 1000;
const FAILURE_TIMEOUT = 3000;
const GLOBALS = [{ key: 'globals', module: '@roster/globals', exportName: 'GlobalsRegistry' }] as const;
const SETUP = { module: fileURLToPath(new URL('./fixtures/supervision-node.ts', import.meta.url)), args: { clusterSize: 3 } };
const COUNT = 100;
const CHILDREN = Array.from({ length: COUNT }, (_, index) => `c${index}`);
const EVERYTHING = [...CHILDREN, 'boss'].sort();
/** How long a start may look like it overlaps another instance before it counts (the other's exit may still be on its way over IPC). */
const GRACE_MS = 1000;
/** How long the cluster is watched after the restarted process has joined. */
const SETTLE_MS = 5000;

interface Instance {
  readonly child: string;
  readonly pid: string;
  readonly node: string;
  readonly creation: string;
  readonly startAt: number;
  exitAt: number | undefined;
  reason: string | undefined;
}

/**
 * Every child instance of every node process, from their events. An
 * instance lives from its `init` until its exit or its process's death
 * (SIGKILL: the instant of the kill). Two instances of one child whose lives
 * overlap are a violation, and `failure` rejects.
 */
class CrossProcessProbe extends EventEmitter<{ change: [] }> {
  readonly byChild = new Map<string, Instance[]>();
  readonly byPid = new Map<string, Instance>();
  /** Incarnation -> when it died. */
  readonly deaths = new Map<string, number>();
  readonly violations: string[] = [];
  readonly failure: Promise<never>;
  #fail!: (error: Error) => void;
  closed = false;

  constructor() {
    super();
    this.failure = new Promise<never>((_, reject) => (this.#fail = reject));
    this.failure.catch(() => {});
  }

  onEvent = (from: string, event: string, data: unknown): void => {
    if (event === 'childStart') this.#started(data as ChildStartEvent);
    else if (event === 'childExit') this.#exited(data as ChildExitEvent, from);
  };

  died(creation: string, at: number): void {
    if (!this.deaths.has(creation)) this.deaths.set(creation, at);
    this.emit('change');
  }

  #end(instance: Instance): number {
    return Math.min(instance.exitAt ?? Infinity, this.deaths.get(instance.creation) ?? Infinity);
  }

  #overlapping(instance: Instance): Instance[] {
    return (this.byChild.get(instance.child) ?? []).filter(
      (other) => other !== instance && other.startAt < this.#end(instance) && instance.startAt < this.#end(other),
    );
  }

  #started(event: ChildStartEvent): void {
    const instance: Instance = { child: event.child, pid: event.pid, node: event.node, creation: event.creation, startAt: event.at, exitAt: undefined, reason: undefined };
    const early = this.byPid.get(event.pid);
    if (early !== undefined) return; // never: a pid starts once
    this.byPid.set(instance.pid, instance);
    const list = this.byChild.get(instance.child) ?? [];
    list.push(instance);
    this.byChild.set(instance.child, list);
    if (this.#overlapping(instance).length > 0) {
      setTimeout(() => {
        if (this.closed) return;
        for (const other of this.#overlapping(instance)) {
          this.#violation(
            `${instance.child}: ${instance.pid} on ${instance.node} started at ${instance.startAt} while ${other.pid} on ${other.node} ` +
              `(started ${other.startAt}) was live until ${this.#end(other) === Infinity ? 'now' : this.#end(other)}, both processes alive`,
          );
        }
      }, GRACE_MS).unref();
    }
    this.emit('change');
  }

  #exited(event: ChildExitEvent, from: string): void {
    const instance = this.byPid.get(event.pid);
    if (instance === undefined) {
      this.#violation(`${from}: an exit of ${event.pid} (${event.child}) whose start was never heard`);
      return;
    }
    instance.exitAt = event.at;
    instance.reason = event.reason;
    this.emit('change');
  }

  #violation(message: string): void {
    this.violations.push(message);
    this.#fail(new Error(`two instances of one child ran at once: ${message}`));
  }

  /** Live instances of `child` now. */
  running(child: string): Instance[] {
    return (this.byChild.get(child) ?? []).filter((instance) => this.#end(instance) === Infinity);
  }

  /** What is wrong with "each of `ids` runs exactly once, on one of `hosts`" (empty: nothing). */
  problems(ids: readonly string[], hosts: readonly string[]): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const live = this.running(id);
      if (live.length !== 1) out.push(`${id} runs ${live.length} times${live.length > 0 ? ` (${live.map((i) => i.node).join(', ')})` : ''}`);
      else if (!hosts.includes(live[0]!.node)) out.push(`${id} runs on ${live[0]!.node}`);
    }
    return out;
  }

  /** Resolves once `check()` is empty, re-checked at every event; rejects at a violation or after `ms`. */
  until(check: () => string[], what: string, ms: number): Promise<void> {
    if (this.violations.length > 0) return this.failure;
    if (check().length === 0) return Promise.resolve();
    return Promise.race([
      this.failure,
      new Promise<void>((resolve, reject) => {
        const listener = (): void => {
          if (check().length !== 0) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          const left = check();
          reject(new Error(`timed out after ${ms} ms waiting for ${what}: ${left.slice(0, 10).join('; ')}${left.length > 10 ? ` (+${left.length - 10} more)` : ''}`));
        }, ms);
        const done = (): void => {
          clearTimeout(timer);
          this.off('change', listener);
        };
        this.on('change', listener);
      }),
    ]);
  }

  /** Watches for `ms` (nothing is expected to happen): rejects at once at a violation. */
  watch(ms: number): Promise<void> {
    return Promise.race([this.failure, new Promise<void>((resolve) => setTimeout(resolve, ms))]);
  }
}

/** Polls `probe()` (the children emit nothing for this) until it answers nothing wrong; bounded. */
async function poll(probe: () => Promise<string[]>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const wrong = await probe();
    if (wrong.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what} after ${ms} ms: ${wrong.slice(0, 10).join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let rabbit: RabbitMQ | undefined;
const everyProcess: NodeProcess[] = [];

before(async () => {
  rabbit = await startRabbitMQ();
});
after(async () => {
  await stopNodeProcesses(everyProcess, 3000);
  await rabbit?.stop();
});

describe('distributed supervision over RabbitMQ, nodes in OS processes (default timings)', () => {
  const probe = new CrossProcessProbe();
  const clusterId = uniqueClusterId('roster-dsup');
  /** The live processes, by name. */
  const procs = new Map<string, NodeProcess>();
  let step = 0;

  after(() => {
    probe.closed = true;
  });

  async function spawn(names: string[]): Promise<NodeProcess[]> {
    const started = await startNodeProcesses({ count: names.length, names, amqpUrl: rabbit!.url, clusterId, registries: GLOBALS, setup: SETUP, onCustomEvent: probe.onEvent });
    for (const child of started) {
      everyProcess.push(child);
      procs.set(child.name, child);
      child.once('exit', () => probe.died(child.creation, Date.now()));
    }
    return started;
  }

  /** Every process's members of `fleet` and `boss` are exactly `names`. */
  function membersAre(names: readonly string[]) {
    const want = [...names].sort().join(',');
    return async (): Promise<string[]> => {
      const wrong: string[] = [];
      for (const name of names) {
        const seen = await procs.get(name)!.invoke<{ fleet: string[]; boss: string[] }>('members');
        if (seen.fleet.join(',') !== want) wrong.push(`${name} hears fleet members [${seen.fleet.join(', ')}]`);
        if (seen.boss.join(',') !== want) wrong.push(`${name} hears boss members [${seen.boss.join(', ')}]`);
      }
      return wrong;
    };
  }

  /** `localChildren` of each of `names`: the union must be everything, no label twice. */
  async function localUnion(names: readonly string[]): Promise<{ union: string[]; by: Map<string, string[]> }> {
    const by = new Map<string, string[]>();
    for (const name of names) by.set(name, await procs.get(name)!.invoke<string[]>('localChildren'));
    return { union: [...by.values()].flat().sort(), by };
  }

  /** Every process's `whichChildren` of fleet (and boss) lists each child running where the probe sees it. */
  function tablesAgree(names: readonly string[]) {
    return async (): Promise<string[]> => {
      const wrong: string[] = [];
      for (const name of names) {
        const fleet = await procs.get(name)!.invoke<{ id: string; state: string; node: string | null; pid: string | null }[]>('whichChildren');
        const boss = await procs.get(name)!.invoke<{ id: string; state: string; node: string | null; pid: string | null }[]>('whichChildren', { of: 'boss' });
        if (fleet.length !== COUNT) wrong.push(`${name} lists ${fleet.length} fleet children`);
        for (const [label, child] of [...fleet.map((c) => [c.id, c] as const), ...boss.map((c) => ['boss', c] as const)]) {
          const live = probe.running(label);
          if (child.state !== 'running' || live.length !== 1 || child.pid !== live[0]!.pid) {
            wrong.push(`${name} lists ${label} ${child.state} on ${child.node} (${child.pid}), it runs on ${live.map((i) => `${i.node} (${i.pid})`).join(', ') || 'nothing'}`);
          }
        }
      }
      return wrong;
    };
  }

  it('3 processes: 100 children (from one node, round robin) and the singleton run exactly once', async (t) => {
    const began = Date.now();
    await spawn(['n1', 'n2', 'n3']);
    t.diagnostic(`3 node processes started in ${Date.now() - began} ms`);
    await poll(membersAre(['n1', 'n2', 'n3']), 'every process to hear 3 members of fleet and boss', 20_000);
    const asked = Date.now();
    const answer = await procs.get('n2')!.invoke<{ started: Record<string, string>; failed: Record<string, string> }>('startChildren', { count: COUNT }, 30_000);
    assert.deepEqual(answer.failed, {}, 'every startChild succeeded');
    assert.deepEqual(Object.keys(answer.started).sort(), [...CHILDREN].sort());
    await probe.until(() => probe.problems(EVERYTHING, ['n1', 'n2', 'n3']), 'the 100 children and the singleton running once', 15_000);
    t.diagnostic(`100 children and the singleton running ${Date.now() - asked} ms after startChildren`);
    const spread = new Map<string, number>();
    for (const id of CHILDREN) spread.set(probe.running(id)[0]!.node, (spread.get(probe.running(id)[0]!.node) ?? 0) + 1);
    t.diagnostic(`children by node: ${[...spread].map(([node, count]) => `${node} ${count}`).join(', ')}; boss on ${probe.running('boss')[0]!.node}`);
    assert.equal(spread.size, 3, 'round robin used every node');
    const { union } = await localUnion(['n1', 'n2', 'n3']);
    assert.deepEqual(union, EVERYTHING, 'localChildren: everything, once');
    step = 1;
  });

  it("SIGKILL the singleton's process: the singleton and its third of the children run again on the survivors", async (t) => {
    assert.equal(step, 1, 'the previous step failed');
    const victim = probe.running('boss')[0]!.node;
    const survivors = ['n1', 'n2', 'n3'].filter((name) => name !== victim);
    const moved = EVERYTHING.filter((id) => probe.running(id)[0]!.node === victim);
    t.diagnostic(`killing ${victim}, host of boss and ${moved.length - 1} children`);
    assert.ok(moved.length - 1 >= 20, `${victim} hosts about a third of the children (${moved.length - 1})`);
    const proc = procs.get(victim)!;
    const killedAt = Date.now();
    probe.died(proc.creation, killedAt);
    proc.kill('SIGKILL');
    procs.delete(victim);
    await proc.exited;
    await probe.until(() => probe.problems(EVERYTHING, survivors), `everything running once on ${survivors.join(' and ')}`, FAILURE_TIMEOUT + 3 * HEARTBEAT + 5000);
    const took = Date.now() - killedAt;
    t.diagnostic(`failover: all ${moved.length} moved children running on the survivors ${took} ms after the SIGKILL (failure timeout ${FAILURE_TIMEOUT} ms)`);
    const { union, by } = await localUnion(survivors);
    assert.deepEqual(union, EVERYTHING, 'localChildren of the survivors: everything, once');
    for (const id of moved) assert.ok(!by.get(survivors[0]!)!.includes(id) || !by.get(survivors[1]!)!.includes(id));
    // By name, from a survivor: the singleton and a few moved children answer from where they run now.
    const caller = procs.get(survivors[0]!)!;
    for (const id of ['boss', ...moved.filter((id) => id !== 'boss').slice(0, 5)]) {
      const name = id === 'boss' ? 'boss' : ['fleet', id];
      const reply = await caller.invoke<CounterReply>('callByName', { name });
      assert.equal(reply.child, id);
      assert.ok(survivors.includes(reply.node), `${id} answered from ${reply.node}`);
      assert.equal(reply.node, probe.running(id)[0]!.node);
    }
    step = 2;
  });

  it('the killed process starts again under its name: after it joins and things settle, nothing runs twice', async (t) => {
    assert.equal(step, 2, 'the previous step failed');
    const victim = ['n1', 'n2', 'n3'].find((name) => !procs.has(name))!;
    const began = Date.now();
    await spawn([victim]);
    await poll(membersAre(['n1', 'n2', 'n3']), `every process to hear 3 members again, ${victim} included`, 20_000);
    t.diagnostic(`${victim} restarted and joined in ${Date.now() - began} ms`);
    await probe.watch(SETTLE_MS);
    assert.deepEqual(probe.violations, []);
    assert.deepEqual(probe.problems(EVERYTHING, ['n1', 'n2', 'n3']), [], 'each child and the singleton running exactly once');
    const { union, by } = await localUnion(['n1', 'n2', 'n3']);
    assert.deepEqual(union, EVERYTHING, 'localChildren of all three: everything, once');
    t.diagnostic(`after the restart: ${[...by].map(([name, ids]) => `${name} ${ids.length}`).join(', ')}`);
    await poll(tablesAgree(['n1', 'n2', 'n3']), "every process's whichChildren to match what runs", 5000);
  });
});
