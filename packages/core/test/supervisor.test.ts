import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  DynamicSupervisor,
  GenServer,
  Node,
  Pid,
  StartError,
  Supervisor,
  SupervisorError,
  formatReason,
  reply,
  stop,
  type ChildOptions,
  type ChildSpec,
  type ExitReason,
  type Strategy,
} from '@roster/core';
import { deferred, monitorFromProbe, within, type Deferred } from './helpers.js';

/** Where children record what happens to them, in order. */
interface Recorder {
  readonly starts: string[];
  readonly stops: string[];
}

const recorder = (): Recorder => ({ starts: [], stops: [] });

interface WorkerOptions {
  /** Trap exits, so that a supervisor's shutdown runs `terminate`. */
  readonly trap?: boolean;
  /** `terminate` signals this when it starts, and then waits for `release` (forever when absent). */
  readonly hang?: { readonly entered: Deferred<void>; readonly release?: Promise<void> };
  /** `init` throws this. */
  readonly failInit?: Error;
}

/**
 * A child GenServer: records init and terminate; cast 'crash' throws,
 * 'normal' / 'shutdown' stop it with that reason.
 */
function child(rec: Recorder, id: string, options: WorkerOptions = {}) {
  return {
    init(_args: undefined, self) {
      if (options.failInit !== undefined) throw options.failInit;
      rec.starts.push(id);
      if (options.trap === true) self.trapExit(true);
      return null;
    },
    handleCall: (request: unknown, _from, state) => reply(request, state),
    handleCast(message: string, state) {
      if (message === 'crash') throw new Error(`${id} crashed`);
      return stop(message, state);
    },
    async terminate(reason: ExitReason) {
      rec.stops.push(`${id}:${reason instanceof Error ? 'crash' : formatReason(reason)}`);
      if (options.hang !== undefined) {
        options.hang.entered.resolve();
        await (options.hang.release ?? new Promise<void>(() => undefined));
      }
    },
  } satisfies GenServer<null, undefined>;
}

const spec = (rec: Recorder, id: string, options: WorkerOptions = {}, childOptions: ChildOptions = {}): ChildSpec =>
  Supervisor.worker(id, child(rec, id, options), undefined, childOptions);

async function childPid(node: Node, sup: Pid, id: string): Promise<Pid | undefined> {
  const info = (await Supervisor.whichChildren(node, sup)).find((c) => c.id === id);
  return info?.pid instanceof Pid ? info.pid : undefined;
}

async function pidsOf(node: Node, sup: Pid): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const c of await Supervisor.whichChildren(node, sup)) out[c.id] = c.pid instanceof Pid ? c.pid.key : undefined;
  return out;
}

/**
 * Makes child `id` of `sup` exit (cast `how`) and waits for its DOWN. Its EXIT
 * is in the supervisor's mailbox by then, so the supervisor's next call is
 * answered after it has handled the exit.
 */
async function exitChild(node: Node, sup: Pid, id: string, how: 'crash' | 'normal' | 'shutdown' = 'crash'): Promise<ExitReason> {
  const pid = await childPid(node, sup, id);
  assert.ok(pid !== undefined, `child ${id} is running`);
  const { down } = await monitorFromProbe(node, pid);
  node.cast(pid, how);
  return (await down).reason;
}

const supervisorError = (code: SupervisorError['code']) => (error: unknown): boolean => {
  assert.ok(error instanceof SupervisorError, `expected SupervisorError, got ${String(error)}`);
  assert.equal(error.code, code);
  return true;
};

describe('Supervisor', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'supervisors' });
  });
  after(async () => {
    await node.stop();
  });

  const strategies: { strategy: Strategy; starts: string[]; stops: string[]; kept: string[] }[] = [
    { strategy: 'one_for_one', starts: ['a', 'b', 'c', 'b'], stops: ['b:crash'], kept: ['a', 'c'] },
    { strategy: 'one_for_all', starts: ['a', 'b', 'c', 'a', 'b', 'c'], stops: ['b:crash', 'c:shutdown', 'a:shutdown'], kept: [] },
    { strategy: 'rest_for_one', starts: ['a', 'b', 'c', 'b', 'c'], stops: ['b:crash', 'c:shutdown'], kept: ['a'] },
  ];
  for (const { strategy, starts, stops, kept } of strategies) {
    test(`${strategy}: which children restart, and in what order`, async () => {
      const rec = recorder();
      const sup = await Supervisor.start(node, {
        strategy,
        intensity: 5,
        children: ['a', 'b', 'c'].map((id) => spec(rec, id, { trap: true })),
      });
      assert.deepEqual(rec.starts, ['a', 'b', 'c']);
      const before = await pidsOf(node, sup);
      await exitChild(node, sup, 'b');
      const afterwards = await pidsOf(node, sup);
      assert.deepEqual(rec.starts, starts, 'start order');
      assert.deepEqual(rec.stops, stops, 'stop order (siblings in reverse start order)');
      for (const id of ['a', 'b', 'c']) {
        assert.ok(afterwards[id] !== undefined, `${id} runs`);
        if (kept.includes(id)) assert.equal(afterwards[id], before[id], `${id} was left alone`);
        else assert.notEqual(afterwards[id], before[id], `${id} was restarted`);
      }
      await GenServer.stop(node, sup);
    });
  }

  test('restart types: permanent always, transient only after a crash, temporary never (and removed)', async () => {
    const rec = recorder();
    const sup = await Supervisor.start(node, {
      intensity: 20,
      children: [
        spec(rec, 'perm', {}, { restart: 'permanent' }),
        spec(rec, 'trans', {}, { restart: 'transient' }),
        spec(rec, 'temp', {}, { restart: 'temporary' }),
      ],
    });
    // permanent: restarted whatever the reason.
    for (const how of ['normal', 'shutdown', 'crash'] as const) await exitChild(node, sup, 'perm', how);
    assert.equal(rec.starts.filter((id) => id === 'perm').length, 4);

    // transient: a crash restarts it; normal or shutdown do not.
    await exitChild(node, sup, 'trans', 'crash');
    assert.equal(rec.starts.filter((id) => id === 'trans').length, 2);
    await exitChild(node, sup, 'trans', 'normal');
    assert.equal(await childPid(node, sup, 'trans'), undefined, 'not restarted after normal');
    assert.ok((await Supervisor.whichChildren(node, sup)).some((c) => c.id === 'trans'), 'its spec is kept');
    await Supervisor.restartChild(node, sup, 'trans');
    await exitChild(node, sup, 'trans', 'shutdown');
    assert.equal(await childPid(node, sup, 'trans'), undefined, 'not restarted after shutdown');
    assert.equal(rec.starts.filter((id) => id === 'trans').length, 3);

    // temporary: never restarted, even after a crash, and removed from the children.
    await exitChild(node, sup, 'temp', 'crash');
    assert.equal(rec.starts.filter((id) => id === 'temp').length, 1);
    assert.deepEqual(
      (await Supervisor.whichChildren(node, sup)).map((c) => c.id),
      ['perm', 'trans'],
    );
    await GenServer.stop(node, sup);
  });

  test("exceeding the restart intensity makes the supervisor exit with 'shutdown'", async () => {
    const rec = recorder();
    const sup = await Supervisor.start(node, { intensity: 1, period: 5000, children: [spec(rec, 'w', { trap: true }), spec(rec, 'x', { trap: true })] });
    const { down } = await monitorFromProbe(node, sup);
    await exitChild(node, sup, 'w'); // one restart: allowed
    assert.deepEqual(rec.starts, ['w', 'x', 'w']);
    const w = await childPid(node, sup, 'w');
    assert.ok(w !== undefined);
    node.cast(w, 'crash'); // the second within the period: too many
    assert.equal((await down).reason, 'shutdown');
    assert.ok(rec.stops.includes('x:shutdown'), 'the remaining children were stopped');
    assert.deepEqual(rec.starts, ['w', 'x', 'w'], 'no restart past the intensity');
  });

  test('a parent supervisor sees its child supervisor give up, and restarts it', async () => {
    const rec = recorder();
    const parent = await Supervisor.start(node, {
      intensity: 1,
      children: [Supervisor.supervisor('inner', { intensity: 0, children: [spec(rec, 'w')] })],
    });
    const inner = await childPid(node, parent, 'inner');
    assert.ok(inner !== undefined);
    const { down } = await monitorFromProbe(node, inner);
    await exitChild(node, inner, 'w');
    assert.equal((await down).reason, 'shutdown', 'the inner supervisor gave up');
    const innerAgain = await childPid(node, parent, 'inner');
    assert.ok(innerAgain !== undefined && !innerAgain.equals(inner), 'the parent restarted it');
    assert.deepEqual(rec.starts, ['w', 'w']);
    assert.deepEqual(await Supervisor.countChildren(node, parent), { specs: 1, active: 1, supervisors: 1, workers: 0 });
    await GenServer.stop(node, parent);
  });

  test('children start in order and stop in reverse order', async () => {
    const rec = recorder();
    const sup = await Supervisor.start(node, { children: ['a', 'b', 'c', 'd'].map((id) => spec(rec, id, { trap: true })) });
    assert.deepEqual(rec.starts, ['a', 'b', 'c', 'd']);
    const pids = Object.values(await pidsOf(node, sup));
    await GenServer.stop(node, sup, 'shutdown');
    assert.deepEqual(rec.stops, ['d:shutdown', 'c:shutdown', 'b:shutdown', 'a:shutdown']);
    for (const key of pids) assert.ok(!node.processes().some((pid) => pid.key === key), `${key} is gone`);
  });

  test('shutdown deadline: a trapping child whose terminate never finishes is killed at its deadline', async () => {
    const rec = recorder();
    const entered = deferred();
    const deadline = 150;
    const sup = await Supervisor.start(node, { children: [spec(rec, 'stuck', { trap: true, hang: { entered } }, { shutdown: deadline })] });
    const pid = await childPid(node, sup, 'stuck');
    assert.ok(pid !== undefined);
    const { down } = await monitorFromProbe(node, pid);
    const started = performance.now();
    await Supervisor.terminateChild(node, sup, 'stuck');
    const elapsed = performance.now() - started;
    await within(entered.promise, 'terminate to have been entered');
    assert.deepEqual(rec.stops, ['stuck:shutdown'], 'it was asked to shut down first');
    assert.equal((await down).reason, 'killed');
    // A lower bound only (timers may fire a millisecond early against performance.now()).
    assert.ok(elapsed >= deadline - 5, `killed after ${elapsed.toFixed(1)} ms, before its ${deadline} ms deadline`);
    await GenServer.stop(node, sup);
  });

  test("shutdown 'brutal_kill' kills the child at once, without terminate", async () => {
    const rec = recorder();
    const sup = await Supervisor.start(node, { children: [spec(rec, 'b', { trap: true }, { shutdown: 'brutal_kill' })] });
    const pid = await childPid(node, sup, 'b');
    assert.ok(pid !== undefined);
    const { down } = await monitorFromProbe(node, pid);
    await Supervisor.terminateChild(node, sup, 'b');
    assert.equal((await down).reason, 'killed');
    assert.deepEqual(rec.stops, [], 'terminate did not run');
    await GenServer.stop(node, sup);
  });

  test("shutdown 'infinity' waits for the child's terminate however long it takes", async () => {
    const rec = recorder();
    const entered = deferred();
    const release = deferred();
    const sup = await Supervisor.start(node, {
      children: [spec(rec, 'slow', { trap: true, hang: { entered, release: release.promise } }, { shutdown: 'infinity' })],
    });
    const pid = await childPid(node, sup, 'slow');
    assert.ok(pid !== undefined);
    const { down } = await monitorFromProbe(node, pid);
    let terminated = false;
    const terminating = Supervisor.terminateChild(node, sup, 'slow').then(() => {
      terminated = true;
    });
    await within(entered.promise, 'terminate to be entered');
    // Well past what a numeric deadline in the tests above allows.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(node.isAlive(pid) && !terminated, 'still shutting down, not killed');
    release.resolve();
    await within(terminating, 'terminateChild');
    assert.equal((await down).reason, 'shutdown');
    await GenServer.stop(node, sup);
  });

  test('startChild, terminateChild, restartChild, deleteChild, whichChildren and countChildren', async () => {
    const rec = recorder();
    const sup = await Supervisor.start(node, { children: [spec(rec, 'first')] });
    assert.deepEqual(await Supervisor.countChildren(node, sup), { specs: 1, active: 1, supervisors: 0, workers: 1 });

    const x = await Supervisor.startChild(node, sup, spec(rec, 'x'));
    assert.ok(x instanceof Pid && node.isAlive(x));
    assert.deepEqual(
      (await Supervisor.whichChildren(node, sup)).map((c) => [c.id, c.type, c.pid instanceof Pid ? c.pid.key : c.pid]),
      [
        ['first', 'worker', (await childPid(node, sup, 'first'))?.key],
        ['x', 'worker', x.key],
      ],
    );
    await assert.rejects(Supervisor.startChild(node, sup, spec(rec, 'x')), (error: unknown) => {
      supervisorError('already_started')(error);
      assert.ok((error as SupervisorError).pid?.equals(x), 'it carries the running child');
      return true;
    });
    await assert.rejects(Supervisor.deleteChild(node, sup, 'x'), supervisorError('running'));
    await assert.rejects(Supervisor.restartChild(node, sup, 'x'), supervisorError('running'));

    await Supervisor.terminateChild(node, sup, 'x');
    assert.ok(!node.isAlive(x));
    assert.equal(await childPid(node, sup, 'x'), undefined);
    assert.deepEqual(await Supervisor.countChildren(node, sup), { specs: 2, active: 1, supervisors: 0, workers: 2 });
    await assert.rejects(Supervisor.startChild(node, sup, spec(rec, 'x')), supervisorError('already_present'));

    const x2 = await Supervisor.restartChild(node, sup, 'x');
    assert.ok(x2 instanceof Pid && node.isAlive(x2) && !x2.equals(x));
    await Supervisor.terminateChild(node, sup, 'x');
    await Supervisor.deleteChild(node, sup, 'x');
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => c.id), ['first']);

    for (const op of [Supervisor.terminateChild, Supervisor.restartChild, Supervisor.deleteChild]) {
      await assert.rejects(op(node, sup, 'missing'), supervisorError('not_found'));
    }

    const failure = new Error('child init failed');
    await assert.rejects(Supervisor.startChild(node, sup, spec(rec, 'bad', { failInit: failure })), (error: unknown) => {
      assert.ok(error instanceof StartError, `expected StartError, got ${String(error)}`);
      assert.equal(error.reason, failure);
      return true;
    });
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => c.id), ['first'], 'a failed child is not kept');

    await Supervisor.startChild(node, sup, Supervisor.supervisor('nested', {}));
    assert.deepEqual(await Supervisor.countChildren(node, sup), { specs: 2, active: 2, supervisors: 1, workers: 1 });

    // A temporary child is forgotten once terminated.
    await Supervisor.startChild(node, sup, spec(rec, 'tmp', {}, { restart: 'temporary' }));
    await Supervisor.terminateChild(node, sup, 'tmp');
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => c.id), ['first', 'nested']);
    assert.ok(node.isAlive(sup), 'none of the refused operations hurt the supervisor');
    await GenServer.stop(node, sup);
  });

  test('a child failing to start during init makes Supervisor.start reject with StartError', async () => {
    const rec = recorder();
    const failure = new Error('b cannot start');
    const existing = new Set(node.processes().map((pid) => pid.key));
    await assert.rejects(
      Supervisor.start(node, { children: [spec(rec, 'a', { trap: true }), spec(rec, 'b', { failInit: failure }), spec(rec, 'c')] }),
      (error: unknown) => {
        assert.ok(error instanceof StartError, `expected StartError, got ${String(error)}`);
        assert.deepEqual(error.reason, { shutdown: { failed_to_start_child: 'b', reason: failure } });
        return true;
      },
    );
    assert.deepEqual(rec.starts, ['a'], 'c was never started');
    assert.deepEqual(rec.stops, ['a:shutdown'], 'a was stopped again');
    assert.deepEqual(
      node.processes().filter((pid) => !existing.has(pid.key)),
      [],
      'nothing is left running',
    );
  });
});

describe('DynamicSupervisor', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'dynamic-supervisors' });
  });
  after(async () => {
    await node.stop();
  });

  test('startChild many, terminateChild, restart of a crashed child, countChildren', async () => {
    const rec = recorder();
    const sup = await DynamicSupervisor.start(node, { intensity: 5 });
    const pids: Pid[] = [];
    for (let i = 0; i < 25; i++) {
      const pid = await DynamicSupervisor.startChild(node, sup, spec(rec, `w${i}`, { trap: true }));
      assert.ok(pid instanceof Pid);
      pids.push(pid);
    }
    assert.equal(new Set(pids.map((p) => p.key)).size, 25);
    assert.deepEqual(await DynamicSupervisor.countChildren(node, sup), { specs: 25, active: 25, supervisors: 0, workers: 25 });

    const victim = pids[3]!;
    await DynamicSupervisor.terminateChild(node, sup, victim);
    assert.ok(!node.isAlive(victim));
    assert.deepEqual(rec.stops, ['w3:shutdown']);
    await DynamicSupervisor.terminateChild(node, sup, victim); // a former child: ok, as in OTP
    assert.equal((await DynamicSupervisor.countChildren(node, sup)).active, 24);

    const crasher = pids[7]!;
    const { down } = await monitorFromProbe(node, crasher);
    node.cast(crasher, 'crash');
    assert.equal(((await down).reason as Error).message, 'w7 crashed');
    const children = await DynamicSupervisor.whichChildren(node, sup);
    assert.equal(children.length, 24, 'the crashed child was replaced');
    assert.ok(!children.some((c) => c.pid instanceof Pid && c.pid.equals(crasher)));
    const restarted = children.find((c) => c.id === 'w7');
    assert.ok(restarted?.pid instanceof Pid && node.isAlive(restarted.pid));
    assert.equal(rec.starts.filter((id) => id === 'w7').length, 2);

    // A temporary child is not restarted.
    const temp = await DynamicSupervisor.startChild(node, sup, spec(rec, 'temp', {}, { restart: 'temporary' }));
    assert.ok(temp !== undefined);
    const { down: tempDown } = await monitorFromProbe(node, temp);
    node.cast(temp, 'crash');
    await tempDown;
    assert.equal((await DynamicSupervisor.countChildren(node, sup)).active, 24);

    // Stopping the supervisor stops every child.
    const live = (await DynamicSupervisor.whichChildren(node, sup)).map((c) => c.pid as Pid);
    const stopsBefore = rec.stops.length;
    await GenServer.stop(node, sup, 'shutdown');
    assert.deepEqual(live.filter((pid) => node.isAlive(pid)), []);
    assert.equal(rec.stops.length - stopsBefore, 24, 'each trapping child ran terminate');
  });

  test('maxChildren: a child past the limit is refused with max_children', async () => {
    const rec = recorder();
    const sup = await DynamicSupervisor.start(node, { maxChildren: 2 });
    await DynamicSupervisor.startChild(node, sup, spec(rec, 'a'));
    const b = await DynamicSupervisor.startChild(node, sup, spec(rec, 'b'));
    await assert.rejects(DynamicSupervisor.startChild(node, sup, spec(rec, 'c')), supervisorError('max_children'));
    assert.deepEqual(rec.starts, ['a', 'b'], 'the refused child never started');
    assert.ok(b !== undefined);
    await DynamicSupervisor.terminateChild(node, sup, b);
    await DynamicSupervisor.startChild(node, sup, spec(rec, 'c'));
    assert.deepEqual(await DynamicSupervisor.countChildren(node, sup), { specs: 2, active: 2, supervisors: 0, workers: 2 });
    await GenServer.stop(node, sup);
  });

  test('stopping it shuts all children down at once, each killed at its own deadline', async () => {
    const rec = recorder();
    const events: string[] = [];
    const sup = await DynamicSupervisor.start(node);
    const downs: Promise<unknown>[] = [];
    const entered: Deferred<void>[] = [];
    for (const id of ['a', 'b', 'c']) {
      const hang = { entered: deferred() };
      entered.push(hang.entered);
      void hang.entered.promise.then(() => events.push(`enter ${id}`));
      const pid = await DynamicSupervisor.startChild(node, sup, spec(rec, id, { trap: true, hang }, { shutdown: 100 }));
      assert.ok(pid !== undefined);
      const { down } = await monitorFromProbe(node, pid);
      downs.push(down.then((d) => events.push(`down ${id} ${String(d.reason)}`)));
    }
    // A well-behaved child too: it stops in time with 'shutdown'.
    const fine = await DynamicSupervisor.startChild(node, sup, spec(rec, 'fine', { trap: true }));
    assert.ok(fine !== undefined);
    const { down: fineDown } = await monitorFromProbe(node, fine);
    await GenServer.stop(node, sup, 'shutdown');
    await within(Promise.all(downs), 'the stuck children to be killed');
    assert.equal((await fineDown).reason, 'shutdown');
    assert.deepEqual(events.slice(0, 3).sort(), ['enter a', 'enter b', 'enter c'], `all were asked before any was killed: ${events.join(', ')}`);
    assert.deepEqual(events.slice(3).sort(), ['down a killed', 'down b killed', 'down c killed']);
  });

  test('a failing startChild rejects with StartError and leaves the supervisor running', async () => {
    const sup = await DynamicSupervisor.start(node);
    const failure = new Error('nope');
    await assert.rejects(
      DynamicSupervisor.startChild(node, sup, spec(recorder(), 'bad', { failInit: failure })),
      (error: unknown) => error instanceof StartError && error.reason === failure,
    );
    assert.equal((await DynamicSupervisor.countChildren(node, sup)).active, 0);
    await GenServer.stop(node, sup);
  });
});

