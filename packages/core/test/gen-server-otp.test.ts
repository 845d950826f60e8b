/**
 * GenServer features ported from OTP's gen_server_SUITE (handle_continue,
 * callback timeouts, ignore from init, start_monitor) and process_SUITE's
 * spawn_monitor: each test names the OTP behaviour it mirrors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  GenServer,
  Node,
  Pid,
  StartError,
  Supervisor,
  ignore,
  isDownMessage,
  noreply,
  ok,
  reply,
  stop,
  type DownMessage,
  type IgnorableGenServer,
} from '@roster/core';
import { deferred, probe, within } from './helpers.js';

/** What the server did, in order; `count` resolves once enough events match (no polling). */
class EventLog {
  readonly events: unknown[] = [];
  readonly #waiters: { match: (event: unknown) => boolean; count: number; resolve: () => void }[] = [];

  push(event: unknown): void {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) this.#check(waiter);
  }

  /** Resolves once `count` events match (bounded). */
  count(match: (event: unknown) => boolean, count: number): Promise<void> {
    const done = deferred();
    const waiter = { match, count, resolve: done.resolve };
    this.#waiters.push(waiter);
    this.#check(waiter);
    return within(done.promise, `${count} matching events`);
  }

  #check(waiter: { match: (event: unknown) => boolean; count: number; resolve: () => void }): void {
    if (this.events.filter(waiter.match).length < waiter.count) return;
    this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
    waiter.resolve();
  }
}

const isTimeout = (event: unknown): boolean => Array.isArray(event) && event[0] === 'info' && event[1] === 'timeout';

/** A server that logs every callback; its requests say which result to answer with. */
function logged(events: EventLog) {
  return {
    init(args: { continue?: unknown; timeout?: number }) {
      events.push('init');
      if (args.continue !== undefined) return ok(0, { continue: args.continue });
      if (args.timeout !== undefined) return ok(0, { timeout: args.timeout });
      return 0;
    },
    handleCall(request: { continue?: unknown; timeout?: number; tag: string }, _from: unknown, state: number) {
      events.push(['call', request.tag]);
      if (request.continue !== undefined) return reply(request.tag, state, { continue: request.continue });
      if (request.timeout !== undefined) return reply(request.tag, state, { timeout: request.timeout });
      return reply(request.tag, state);
    },
    handleCast(message: { continue?: unknown; tag: string }, state: number) {
      events.push(['cast', message.tag]);
      return message.continue === undefined ? noreply(state) : noreply(state, { continue: message.continue });
    },
    handleInfo(message: unknown, state: number) {
      events.push(['info', message]);
      const info = message as { continue?: unknown; timeout?: number };
      if (info.continue !== undefined) return noreply(state, { continue: info.continue });
      if (info.timeout !== undefined) return noreply(state, { timeout: info.timeout });
      return noreply(state);
    },
    async handleContinue(arg: unknown, state: number) {
      events.push(['continue', arg]);
      // Slow on purpose: nothing else may run before it has finished.
      await new Promise((resolve) => setImmediate(resolve));
      if (arg === 'again') return noreply(state + 1, { continue: 'last' });
      if (arg === 'then-timeout') return noreply(state + 1, { timeout: 5 });
      return noreply(state + 1);
    },
  } satisfies GenServer<number, { continue?: unknown; timeout?: number }>;
}

describe('GenServer: OTP fidelity', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'gen-server-otp' });
  });
  after(async () => {
    await node.stop();
  });

  test('handle_continue: {ok, State, {continue, C}} from init runs before any message', async () => {
    const events = new EventLog();
    const pid = await GenServer.start(node, logged(events), { continue: 'load' });
    assert.equal(await node.call(pid, { tag: 'first' }), 'first');
    assert.deepEqual(events.events, ['init', ['continue', 'load'], ['call', 'first']]);
    await GenServer.stop(node, pid);
  });

  test('handle_continue: {continue, C} from handleCall, handleCast, handleInfo and handleContinue itself, each before the next message', async () => {
    const events = new EventLog();
    const pid = await GenServer.start(node, logged(events), {});
    const replied = node.call(pid, { tag: 'c1', continue: 'from-call' });
    node.cast(pid, { tag: 'k1', continue: 'from-cast' });
    node.send(pid, { continue: 'again' });
    node.cast(pid, { tag: 'k2' });
    assert.equal(await replied, 'c1');
    await node.call(pid, { tag: 'done' });
    assert.deepEqual(events.events, [
      'init',
      ['call', 'c1'],
      ['continue', 'from-call'],
      ['cast', 'k1'],
      ['continue', 'from-cast'],
      ['info', { continue: 'again' }],
      ['continue', 'again'],
      ['continue', 'last'],
      ['cast', 'k2'],
      ['call', 'done'],
    ]);
    await GenServer.stop(node, pid);
  });

  test('callback timeout: {reply, R, S, Timeout} delivers timeout to handleInfo when no message comes first, and any message cancels it', async () => {
    const events = new EventLog();
    const pid = await GenServer.start(node, logged(events), {});
    await node.call(pid, { tag: 'arm-30', timeout: 30 });
    node.cast(pid, { tag: 'first-came' }); // cancels the 30 ms timeout
    await node.call(pid, { tag: 'arm-80', timeout: 80 });
    const started = performance.now();
    await events.count(isTimeout, 1);
    assert.ok(performance.now() - started >= 70, 'it was the 80 ms timeout, not the cancelled 30 ms one');
    assert.deepEqual(events.events, ['init', ['call', 'arm-30'], ['cast', 'first-came'], ['call', 'arm-80'], ['info', 'timeout']]);
    await GenServer.stop(node, pid);
  });

  test('callback timeout: from init ({ok, State, Timeout}), from handleInfo and after handleContinue', async () => {
    const events = new EventLog();
    const timeouts = (count: number) => events.count(isTimeout, count);
    const pid = await GenServer.start(node, logged(events), { timeout: 5 });
    await timeouts(1);
    node.send(pid, { timeout: 5 });
    await timeouts(2);
    node.cast(pid, { tag: 'k', continue: 'then-timeout' });
    await timeouts(3);
    assert.deepEqual(events.events, [
      'init',
      ['info', 'timeout'],
      ['info', { timeout: 5 }],
      ['info', 'timeout'],
      ['cast', 'k'],
      ['continue', 'then-timeout'],
      ['info', 'timeout'],
    ]);
    await GenServer.stop(node, pid);
  });

  test('ignore from init: start resolves to ignore, nothing is registered and no process is left; a parent sees no EXIT', async () => {
    const Ignoring: IgnorableGenServer<number, boolean> = {
      init: (shouldIgnore) => (shouldIgnore ? ignore() : 1),
    };
    const existing = new Set(node.processes().map((pid) => pid.key));
    assert.equal(await GenServer.start(node, Ignoring, true, { name: 'ignored' }), 'ignore');
    assert.equal(node.whereis('ignored'), undefined, 'the name is free');
    assert.deepEqual(node.processes().filter((pid) => !existing.has(pid.key)), []);
    const parent = await probe(node, undefined, { trapExit: true });
    assert.equal(await parent.run((self) => GenServer.startLink(self, Ignoring, true)), 'ignore');
    const started = await parent.run((self) => GenServer.startLink(self, Ignoring, false));
    assert.ok(started instanceof Pid);
    assert.deepEqual(parent.received.filter((m) => (m as { type?: string }).type === 'EXIT'), []);
    // Under a supervisor an ignoring worker is kept, not running (a permanent child).
    const sup = await Supervisor.start(node, { children: [Supervisor.worker('w', Ignoring, true)] });
    assert.deepEqual((await Supervisor.whichChildren(node, sup)).map((c) => [c.id, c.pid]), [['w', undefined]]);
    await GenServer.stop(node, sup);
    parent.stop();
  });

  test('start_monitor: resolves with the pid and a monitor ref; a failing init also delivers the DOWN', async () => {
    const Server: GenServer<null, 'ok' | 'fail'> = {
      init(mode) {
        if (mode === 'fail') throw new Error('init failed');
        return null;
      },
      handleCall: (_request, _from, state) => stop('normal', state),
    };
    const watcher = await probe(node);
    const started = await watcher.run((self) => GenServer.startMonitor(self, Server, 'ok'));
    assert.ok(started.pid instanceof Pid && node.isAlive(started.pid));
    await node.call(started.pid, 'stop').catch(() => undefined);
    const down = await watcher.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(started.ref));
    assert.equal(down.reason, 'normal');
    assert.ok(down.pid?.equals(started.pid));
    // Caught inside the probe: a throw from `run` would crash it.
    const failure = await watcher.run((self) => GenServer.startMonitor(self, Server, 'fail').then(() => undefined, (error: unknown) => error));
    assert.ok(failure instanceof StartError, `expected StartError, got ${String(failure)}`);
    const failed = await watcher.next<DownMessage>((m) => isDownMessage(m) && !m.ref.equals(started.ref));
    assert.equal((failed.reason as Error).message, 'init failed');
    watcher.stop();
  });

  test('spawn_monitor: the monitor is in place before the body runs, so even an instant exit gives its DOWN', async () => {
    const watcher = await probe(node);
    const spawned = await watcher.run((self) => self.spawnMonitor(() => {
      throw new Error('gone at once');
    }));
    const down = await watcher.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(spawned.ref));
    assert.ok(down.pid?.equals(spawned.pid));
    assert.equal((down.reason as Error).message, 'gone at once');
    const normal = await watcher.run((self) => self.spawnMonitor(() => undefined));
    assert.equal((await watcher.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(normal.ref))).reason, 'normal');
    watcher.stop();
  });
});
