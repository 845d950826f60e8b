/**
 * Supervisor and DynamicSupervisor against cases ported from OTP's
 * supervisor_SUITE: each test names the OTP behaviour it mirrors.
 * Reproduce a property failure with ROSTER_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CallError,
  DynamicSupervisor,
  GenServer,
  Node,
  Pid,
  Supervisor,
  SupervisorError,
  reply,
  stop,
  type ChildSpec,
  type ExitReason,
  type Process,
  type SupervisorSpec,
} from '@roster/core';
import { deferred, monitorFromProbe, within } from './helpers.js';

const seed = process.env['ROSTER_SEED'];
const fcParams = (numRuns: number) => ({ numRuns, ...(seed !== undefined && seed !== '' ? { seed: Number(seed) } : {}) });

/** A child whose start can be made to fail; it records every start attempt. */
class Flaky {
  attempts = 0;
  starts: string[] = [];
  /** Start attempts still to fail (Infinity: until told otherwise). */
  failures = 0;
  /** How long a failing attempt takes: keeps a retry loop slow enough to be observed. */
  failAfterMs = 0;

  constructor(readonly log: string[] = []) {}

  spec(id: string, extra: Partial<ChildSpec> = {}): ChildSpec {
    return {
      id,
      start: async (self: Process) => {
        this.attempts++;
        if (this.failures > 0) {
          this.failures--;
          this.log.push(`${id}!`);
          if (this.failAfterMs > 0) await new Promise((resolve) => setTimeout(resolve, this.failAfterMs));
          throw new Error(`${id} cannot start`);
        }
        this.log.push(id);
        return GenServer.startLink(self, Worker, id);
      },
      ...extra,
    };
  }
}

/** A child: cast 'crash' throws, another string stops it with that reason. */
const Worker: GenServer<string, string> = {
  init: (id) => id,
  handleCall: (request, _from, state) => reply(request, state),
  handleCast(message: string, state) {
    if (message === 'crash') throw new Error(`${state} crashed`);
    return stop(message, state);
  },
};

/** Child specs that log each start in `log`; `fail(id, n)` makes the next n starts of `id` fail (logged as `id!`). */
function failingChildren(log: string[]) {
  const failures = new Map<string, number>();
  return {
    fail(id: string, times: number): void {
      failures.set(id, times);
    },
    spec(id: string): ChildSpec {
      return {
        id,
        start: async (self) => {
          const left = failures.get(id) ?? 0;
          if (left > 0) {
            failures.set(id, left - 1);
            log.push(`${id}!`);
            throw new Error(`${id} cannot start`);
          }
          log.push(id);
          return GenServer.startLink(self, Worker, id);
        },
      };
    },
  };
}

const supervisorError =
  (code: SupervisorError['code'], field?: string) =>
  (error: unknown): boolean => {
    assert.ok(error instanceof SupervisorError, `expected SupervisorError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (field !== undefined) assert.equal(error.field, field, error.message);
    return true;
  };

async function childPid(node: Node, sup: Pid, id: string): Promise<Pid> {
  const info = (await Supervisor.whichChildren(node, sup)).find((c) => c.id === id);
  assert.ok(info?.pid instanceof Pid, `child ${id} runs (${String(info?.pid)})`);
  return info.pid;
}

async function exitChild(node: Node, pid: Pid, how: 'crash' | 'normal' | 'shutdown' = 'crash'): Promise<ExitReason> {
  const { down } = await monitorFromProbe(node, pid);
  node.cast(pid, how);
  return (await down).reason;
}

const BAD_SPECS: { readonly what: string; readonly spec: unknown; readonly field: string }[] = [
  { what: 'not an object', spec: 42, field: 'spec' },
  { what: 'start not a function', spec: { id: 'bad', start: 'nope' }, field: 'start' },
  { what: 'an unknown restart', spec: { id: 'bad', start: async () => undefined, restart: 'forever' }, field: 'restart' },
  { what: 'an unknown type', spec: { id: 'bad', start: async () => undefined, type: 'daemon' }, field: 'type' },
  { what: 'a negative shutdown', spec: { id: 'bad', start: async () => undefined, shutdown: -1 }, field: 'shutdown' },
  { what: 'an unknown field', spec: { id: 'bad', start: async () => undefined, restat: 'temporary' }, field: 'restat' },
];

describe('Supervisor: OTP fidelity', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'supervisor-otp' });
  });
  after(async () => {
    await node.stop();
  });

  test('{error, {invalid_child_spec, _}}: startChild with a bad spec is refused, the supervisor and its children untouched', async () => {
    const flaky = new Flaky();
    const sup = await Supervisor.start(node, { children: [flaky.spec('keep')] });
    const keep = await childPid(node, sup, 'keep');
    for (const { what, spec, field } of BAD_SPECS) {
      await assert.rejects(Supervisor.startChild(node, sup, spec as ChildSpec), supervisorError('invalid_child_spec', field), what);
      assert.ok(node.isAlive(sup), `the supervisor survives ${what}`);
      assert.ok((await childPid(node, sup, 'keep')).equals(keep), `its child is untouched by ${what}`);
    }
    await GenServer.stop(node, sup);
  });

  test('{error, {start_spec, _}}: Supervisor.start with a bad child spec rejects with SupervisorError and leaves no process', async () => {
    const existing = new Set(node.processes().map((pid) => pid.key));
    for (const { what, spec, field } of BAD_SPECS) {
      await assert.rejects(Supervisor.start(node, { children: [spec as ChildSpec] }), supervisorError('invalid_child_spec', field), what);
    }
    const twice = new Flaky().spec('twice');
    await assert.rejects(Supervisor.start(node, { children: [twice, twice] }), supervisorError('invalid_child_spec', 'id'));
    assert.deepEqual(node.processes().filter((pid) => !existing.has(pid.key)), []);
  });

  test('{error, {already_started, Pid}}: startChild of a running child carries its pid', async () => {
    const flaky = new Flaky();
    const sup = await Supervisor.start(node, { children: [flaky.spec('w')] });
    const w = await childPid(node, sup, 'w');
    await assert.rejects(Supervisor.startChild(node, sup, flaky.spec('w')), (error: unknown) => {
      supervisorError('already_started')(error);
      assert.ok((error as SupervisorError).pid?.equals(w));
      return true;
    });
    await GenServer.stop(node, sup);
  });

  test('one_for_all: a child failing to start in the group restart makes the whole group restart again, counting intensity', async () => {
    const log: string[] = [];
    const children = failingChildren(log);
    const spec = children.spec;
    const sup = await Supervisor.start(node, { strategy: 'one_for_all', intensity: 2, children: [spec('a'), spec('b'), spec('c')] });
    const a = await childPid(node, sup, 'a');
    children.fail('b', 1);
    await exitChild(node, a);
    // Two calls: the first is answered between the attempts, the second after the retry (it was queued behind it).
    await Supervisor.whichChildren(node, sup);
    const running = await Supervisor.whichChildren(node, sup);
    assert.deepEqual(log, ['a', 'b', 'c', 'a', 'b!', 'a', 'b', 'c'], 'a, restarted before b failed, was restarted again with the group');
    assert.ok(running.every((c) => c.pid instanceof Pid), 'the whole group runs');
    // Two restarts were used (the crash and the retry): one more crash exceeds intensity 2.
    const { down } = await monitorFromProbe(node, sup);
    await exitChild(node, await childPid(node, sup, 'c'));
    assert.equal((await down).reason, 'shutdown', 'the retry counted against the intensity');
    assert.ok(!node.isAlive(a));
  });

  test('rest_for_one: a failed restart is retried through the mailbox for the failed child and those after it', async () => {
    const log: string[] = [];
    const children = failingChildren(log);
    const spec = children.spec;
    const sup = await Supervisor.start(node, { strategy: 'rest_for_one', intensity: 5, children: [spec('a'), spec('b'), spec('c')] });
    const a = await childPid(node, sup, 'a');
    children.fail('c', 1);
    await exitChild(node, await childPid(node, sup, 'b'));
    const during = await Supervisor.whichChildren(node, sup);
    assert.deepEqual(during.map((c) => [c.id, c.pid instanceof Pid ? 'pid' : c.pid]), [['a', 'pid'], ['b', 'pid'], ['c', 'restarting']]);
    const afterwards = await Supervisor.whichChildren(node, sup);
    assert.ok(afterwards.every((c) => c.pid instanceof Pid));
    assert.deepEqual(log, ['a', 'b', 'c', 'b', 'c!', 'c']);
    assert.ok((await childPid(node, sup, 'a')).equals(a), 'a, before the crashed child, is left alone');
    await GenServer.stop(node, sup);
  });

  test('try_again_restart: while a child keeps failing to restart the supervisor answers calls (restarting, already_present), and terminateChild ends the loop', async () => {
    const flaky = new Flaky();
    flaky.failAfterMs = 2;
    const sup = await Supervisor.start(node, { intensity: 100_000, period: 60_000, children: [flaky.spec('stable'), flaky.spec('flaky')] });
    const stable = await childPid(node, sup, 'stable');
    flaky.failures = Infinity;
    await exitChild(node, await childPid(node, sup, 'flaky'));
    const timeout = { timeout: 1000 };
    const children = await within(Supervisor.whichChildren(node, sup, timeout), 'whichChildren during the loop');
    assert.deepEqual(children.map((c) => [c.id, c.pid instanceof Pid ? 'pid' : c.pid]), [['stable', 'pid'], ['flaky', 'restarting']]);
    await assert.rejects(Supervisor.startChild(node, sup, flaky.spec('flaky'), timeout), supervisorError('already_present'));
    await assert.rejects(Supervisor.restartChild(node, sup, 'flaky', timeout), supervisorError('restarting'));
    await assert.rejects(Supervisor.deleteChild(node, sup, 'flaky', timeout), supervisorError('restarting'));
    assert.deepEqual(await Supervisor.countChildren(node, sup, timeout), { specs: 2, active: 1, supervisors: 0, workers: 2 });
    await Supervisor.terminateChild(node, sup, 'flaky', timeout);
    const attempts = flaky.attempts;
    // Two calls later any retry queued before terminateChild has been handled: it found the child stopped.
    await Supervisor.whichChildren(node, sup, timeout);
    assert.deepEqual((await Supervisor.whichChildren(node, sup, timeout)).map((c) => [c.id, c.pid === undefined]), [['stable', false], ['flaky', true]]);
    assert.ok(flaky.attempts <= attempts + 1, 'the loop has ended');
    flaky.failures = 0;
    assert.ok((await Supervisor.restartChild(node, sup, 'flaky', timeout)) instanceof Pid);
    assert.ok((await childPid(node, sup, 'stable')).equals(stable), 'the other child was never touched');
    await GenServer.stop(node, sup);
  });

  test('supervisor calls take a timeout: a busy supervisor fails the call with CallError(timeout) instead of hanging', async () => {
    const gate = deferred();
    const sup = await Supervisor.start(node, {});
    const slow: ChildSpec = { id: 'slow', start: async () => (await gate.promise, undefined) };
    const starting = Supervisor.startChild(node, sup, slow);
    await assert.rejects(Supervisor.whichChildren(node, sup, { timeout: 30 }), (error: unknown) => error instanceof CallError && error.reason === 'timeout');
    gate.resolve();
    assert.equal(await within(starting, 'startChild'), undefined);
    await GenServer.stop(node, sup);
  });

  test('a temporary child whose start answers ignore is dropped, from the init specs and from startChild (OTP removes it)', async () => {
    const ignoring = (id: string, restart: NonNullable<ChildSpec['restart']>): ChildSpec => ({ id, restart, start: async () => 'ignore' });
    const sup = await Supervisor.start(node, { children: [ignoring('temp', 'temporary'), ignoring('perm', 'permanent')] });
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => [c.id, c.pid]), [['perm', undefined]], 'the permanent one keeps its spec');
    assert.equal(await Supervisor.startChild(node, sup, ignoring('temp2', 'temporary')), undefined);
    assert.equal(await Supervisor.startChild(node, sup, ignoring('trans', 'transient')), undefined);
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => c.id), ['perm', 'trans']);
    await GenServer.stop(node, sup);
  });

  test('supervisor flags checked as OTP does: period Infinity and the rest refused, naming the flag', async () => {
    const cases: { flags: SupervisorSpec; field: string }[] = [
      { flags: { period: Infinity }, field: 'period' },
      { flags: { period: 0 }, field: 'period' },
      { flags: { period: 1.5 }, field: 'period' },
      { flags: { intensity: -1 }, field: 'intensity' },
      { flags: { intensity: 0.5 }, field: 'intensity' },
      { flags: { strategy: 'simple_one_for_one' as 'one_for_one' }, field: 'strategy' },
      { flags: { autoShutdown: 'sometimes' as 'never' }, field: 'autoShutdown' },
      { flags: { intesity: 3 } as SupervisorSpec, field: 'intesity' },
    ];
    for (const { flags, field } of cases) {
      await assert.rejects(Supervisor.start(node, flags), supervisorError('invalid_supervisor_flags', field), JSON.stringify(flags));
    }
    for (const flags of [{ period: Infinity }, { maxChildren: -1 }, { intensity: 1.5 }]) {
      await assert.rejects(DynamicSupervisor.start(node, flags), supervisorError('invalid_supervisor_flags'), JSON.stringify(flags));
    }
  });

  test('property: intensity and period are accepted exactly when OTP accepts them (integers, >= 0 and > 0)', async () => {
    const value = fc.oneof(
      fc.integer({ min: -5, max: 100_000 }),
      fc.double({ noNaN: false }),
      fc.constantFrom(Infinity, -Infinity, Number.NaN, '5', null, true),
    );
    await fc.assert(
      fc.asyncProperty(value, value, async (intensity, period) => {
        const valid = Number.isInteger(intensity) && (intensity as number) >= 0 && Number.isInteger(period) && (period as number) > 0;
        const started = Supervisor.start(node, { intensity, period } as unknown as SupervisorSpec);
        if (valid) {
          await GenServer.stop(node, await started);
        } else {
          await assert.rejects(started, (error: unknown) => {
            supervisorError('invalid_supervisor_flags')(error);
            const field = (error as SupervisorError).field;
            assert.equal(field, Number.isInteger(intensity) && (intensity as number) >= 0 ? 'period' : 'intensity');
            return true;
          });
        }
      }),
      fcParams(200),
    );
  });

  test('auto_shutdown any_significant: a significant child exiting on its own shuts the supervisor down; a crash restarts it', async () => {
    const flaky = new Flaky();
    const sup = await Supervisor.start(node, {
      autoShutdown: 'any_significant',
      intensity: 5,
      children: [flaky.spec('other'), flaky.spec('sig', { restart: 'transient', significant: true })],
    });
    const other = await childPid(node, sup, 'other');
    await exitChild(node, await childPid(node, sup, 'sig'), 'crash');
    await childPid(node, sup, 'sig');
    assert.ok(node.isAlive(sup), 'a crash of a transient significant child restarts it');
    // Stopped by the supervisor itself: no automatic shutdown (OTP's rule).
    await Supervisor.terminateChild(node, sup, 'sig');
    assert.ok(node.isAlive(sup));
    assert.ok((await Supervisor.restartChild(node, sup, 'sig')) instanceof Pid);
    const { down } = await monitorFromProbe(node, sup);
    const { down: otherDown } = await monitorFromProbe(node, other);
    await exitChild(node, await childPid(node, sup, 'sig'), 'normal');
    assert.equal((await down).reason, 'shutdown');
    assert.equal((await otherDown).reason, 'shutdown', 'the other children were stopped');
  });

  test('auto_shutdown all_significant: the supervisor shuts down once the last significant child has exited', async () => {
    const flaky = new Flaky();
    const sup = await Supervisor.start(node, {
      autoShutdown: 'all_significant',
      children: [flaky.spec('x', { restart: 'temporary', significant: true }), flaky.spec('y', { restart: 'temporary', significant: true })],
    });
    const { down } = await monitorFromProbe(node, sup);
    await exitChild(node, await childPid(node, sup, 'x'), 'crash');
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => c.id), ['y'], 'one significant child is left: still running');
    await exitChild(node, await childPid(node, sup, 'y'), 'normal');
    assert.equal((await down).reason, 'shutdown');
  });

  test('significant children need auto_shutdown and a transient or temporary restart (OTP bad_combination)', async () => {
    const flaky = new Flaky();
    await assert.rejects(
      Supervisor.start(node, { children: [flaky.spec('s', { restart: 'transient', significant: true })] }),
      supervisorError('invalid_child_spec', 'significant'),
    );
    await assert.rejects(
      Supervisor.start(node, { autoShutdown: 'any_significant', children: [flaky.spec('s', { significant: true })] }),
      supervisorError('invalid_child_spec', 'significant'),
    );
    const sup = await Supervisor.start(node, {});
    await assert.rejects(Supervisor.startChild(node, sup, flaky.spec('s', { restart: 'temporary', significant: true })), supervisorError('invalid_child_spec', 'significant'));
    await GenServer.stop(node, sup);
  });

  test('get_childspec: a plain-object spec answers with OTP defaults (permanent, 5000 for a worker, infinity for a supervisor)', async () => {
    const start = async (self: Process) => GenServer.startLink(self, Worker, 'plain');
    const sup = await Supervisor.start(node, { children: [{ id: 'plain', start }, Supervisor.supervisor('nested', {})] });
    const plain = await Supervisor.getChildSpec(node, sup, 'plain');
    assert.deepEqual({ ...plain, start: undefined }, { id: 'plain', start: undefined, restart: 'permanent', shutdown: 5000, type: 'worker', significant: false });
    assert.equal(plain.start, start);
    const nested = await Supervisor.getChildSpec(node, sup, 'nested');
    assert.equal(nested.shutdown, 'infinity');
    assert.equal(nested.type, 'supervisor');
    await assert.rejects(Supervisor.getChildSpec(node, sup, 'missing'), supervisorError('not_found'));
    await GenServer.stop(node, sup);
  });

  test('check_childspecs: undefined for valid specs, else the first problem naming the field', () => {
    const flaky = new Flaky();
    assert.equal(Supervisor.checkChildSpecs([flaky.spec('a'), { id: 'b', start: async () => undefined }]), undefined);
    for (const { what, spec, field } of BAD_SPECS) {
      const error = Supervisor.checkChildSpecs([flaky.spec('ok'), spec as ChildSpec]);
      assert.ok(error instanceof SupervisorError && error.code === 'invalid_child_spec' && error.field === field, what);
    }
    assert.equal(Supervisor.checkChildSpecs([flaky.spec('d'), flaky.spec('d')])?.field, 'id', 'duplicate ids');
    assert.equal(Supervisor.checkChildSpecs([flaky.spec('s', { restart: 'temporary', significant: true })]), undefined);
    assert.equal(Supervisor.checkChildSpecs([flaky.spec('s', { restart: 'temporary', significant: true })], 'never')?.field, 'significant');
  });
});

describe('DynamicSupervisor: OTP fidelity', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'dynamic-supervisor-otp' });
  });
  after(async () => {
    await node.stop();
  });

  test('{error, {invalid_child_spec, _}}: startChild with a bad spec is refused, the supervisor and its children untouched', async () => {
    const sup = await DynamicSupervisor.start(node);
    const keep = await DynamicSupervisor.startChild(node, sup, new Flaky().spec('keep'));
    assert.ok(keep instanceof Pid);
    for (const { what, spec, field } of BAD_SPECS) {
      await assert.rejects(DynamicSupervisor.startChild(node, sup, spec as ChildSpec), supervisorError('invalid_child_spec', field), what);
      assert.ok(node.isAlive(sup) && node.isAlive(keep), `both survive ${what}`);
    }
    await GenServer.stop(node, sup);
  });

  test('terminate_child: ok for a former child, not_found for a pid that never was one', async () => {
    const sup = await DynamicSupervisor.start(node);
    const child = await DynamicSupervisor.startChild(node, sup, new Flaky().spec('t', { restart: 'temporary' }));
    assert.ok(child instanceof Pid);
    await exitChild(node, child, 'normal');
    await DynamicSupervisor.terminateChild(node, sup, child);
    const stranger = node.spawn(async (self) => void (await self.receive()));
    await assert.rejects(DynamicSupervisor.terminateChild(node, sup, stranger), supervisorError('not_found'));
    node.exit(stranger, 'kill');
    await GenServer.stop(node, sup);
  });

  test('try_again_restart: a child failing to restart is retried through the mailbox, shown as restarting, and calls are answered', async () => {
    const flaky = new Flaky();
    flaky.failAfterMs = 2;
    const sup = await DynamicSupervisor.start(node, { intensity: 100_000, period: 60_000 });
    const child = await DynamicSupervisor.startChild(node, sup, flaky.spec('f'));
    assert.ok(child instanceof Pid);
    flaky.failures = Infinity;
    await exitChild(node, child);
    const children = await within(DynamicSupervisor.whichChildren(node, sup, { timeout: 1000 }), 'whichChildren during the loop');
    assert.deepEqual(children.map((c) => c.pid), ['restarting']);
    assert.deepEqual(await DynamicSupervisor.countChildren(node, sup, { timeout: 1000 }), { specs: 1, active: 0, supervisors: 0, workers: 1 });
    // terminateChild with the pid it had ends the loop.
    await DynamicSupervisor.terminateChild(node, sup, child, { timeout: 1000 });
    await DynamicSupervisor.whichChildren(node, sup);
    assert.deepEqual(await DynamicSupervisor.whichChildren(node, sup), []);
    await GenServer.stop(node, sup);
  });

  test("count_children follows Elixir's DynamicSupervisor: one spec per child (documented in the README)", async () => {
    const sup = await DynamicSupervisor.start(node);
    const flaky = new Flaky();
    for (const id of ['a', 'b', 'c']) await DynamicSupervisor.startChild(node, sup, flaky.spec(id));
    assert.deepEqual(await DynamicSupervisor.countChildren(node, sup), { specs: 3, active: 3, supervisors: 0, workers: 3 });
    await GenServer.stop(node, sup);
  });
});
