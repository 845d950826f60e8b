import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AlreadyStartedError,
  CallError,
  GenServer,
  LocalRegistry,
  Node,
  StartError,
  noreply,
  reply,
  stop,
  stopAndReply,
  via,
  type ExitReason,
  type From,
  type Pid,
} from '@roster/core';
import { deferred, monitorFromProbe, probe, within } from './helpers.js';

interface Log {
  readonly events: unknown[];
}

/** A counter server that logs its callbacks into `log`. */
function counter(log: Log): GenServer<number, number> {
  return {
    init(start) {
      log.events.push(['init', start]);
      return start;
    },
    handleCall(request: unknown, _from, state) {
      log.events.push(['call', request]);
      if (request === 'get') return reply(state, state);
      if (request === 'stop-with-reply') return stopAndReply('normal', 'bye', state);
      return reply({ unknown: request }, state);
    },
    handleCast(message: unknown, state) {
      log.events.push(['cast', message]);
      return message === 'inc' ? noreply(state + 1) : noreply(state);
    },
    handleInfo(message: unknown, state) {
      log.events.push(['info', message]);
      const add = (message as { add?: number }).add;
      return noreply(typeof add === 'number' ? state + add : state);
    },
    terminate(reason, state) {
      log.events.push(['terminate', reason, state]);
    },
  };
}

const isCallError = (reason: ExitReason, failure?: CallError['failure']) => (error: unknown): boolean => {
  assert.ok(error instanceof CallError, `expected a CallError, got ${String(error)}`);
  assert.equal(error.code, 'call_failed');
  assert.equal(error.reason, reason);
  if (failure !== undefined) assert.equal(error.failure, failure);
  return true;
};

describe('GenServer', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'gen-server' });
  });
  after(async () => {
    await node.stop();
  });

  test('init, handleCall, handleCast, handleInfo and terminate run with the state threaded through', async () => {
    const log: Log = { events: [] };
    const pid = await GenServer.start(node, counter(log), 10);
    assert.deepEqual(log.events, [['init', 10]], 'start resolves after init');
    node.cast(pid, 'inc');
    node.send(pid, { add: 5 });
    GenServer.cast(node, pid, 'inc');
    assert.equal(await GenServer.call(node, pid, 'get'), 17);
    assert.equal(await node.call(pid, 'stop-with-reply'), 'bye');
    const { down } = await monitorFromProbe(node, pid);
    assert.equal((await down).reason, 'noproc', 'the server is gone right after its stop reply');
    assert.deepEqual(log.events, [
      ['init', 10],
      ['cast', 'inc'],
      ['info', { add: 5 }],
      ['cast', 'inc'],
      ['call', 'get'],
      ['call', 'stop-with-reply'],
      ['terminate', 'normal', 17],
    ]);
  });

  test('async callbacks: the next message waits until the current callback settles', async () => {
    const gate = deferred();
    const inCall = deferred();
    const events: string[] = [];
    const pid = await GenServer.start(
      node,
      {
        async init() {
          await Promise.resolve();
          return [] as string[];
        },
        async handleCall(request: string, _from, state) {
          events.push(`start ${request}`);
          if (request === 'slow') {
            inCall.resolve();
            await gate.promise;
          }
          events.push(`end ${request}`);
          const next = [...state, request];
          return reply(next, next);
        },
        async handleCast(message: string, state) {
          await Promise.resolve();
          events.push(`cast ${message}`);
          return noreply([...state, message]);
        },
      },
      undefined,
    );
    const slow = node.call<string[]>(pid, 'slow');
    await within(inCall.promise, 'the slow call to start');
    node.cast(pid, 'c');
    const fast = node.call<string[]>(pid, 'fast');
    gate.resolve();
    assert.deepEqual(await slow, ['slow']);
    assert.deepEqual(await fast, ['slow', 'c', 'fast']);
    assert.deepEqual(events, ['start slow', 'end slow', 'cast c', 'start fast', 'end fast']);
    await GenServer.stop(node, pid);
  });

  test("a call that gets no reply in time rejects with CallError reason 'timeout'", async () => {
    const pid = await GenServer.start(node, { init: () => 0, handleCall: (_r: unknown, _f: From, s: number) => noreply(s) }, undefined);
    const started = performance.now();
    await assert.rejects(node.call(pid, 'ignored', { timeout: 50 }), isCallError('timeout', 'timeout'));
    assert.ok(performance.now() - started >= 45, 'the call waited for its timeout');
    assert.ok(node.isAlive(pid), 'a caller timing out does not affect the server');
    // From inside a process too.
    const caller = await probe(node);
    const error = await caller.run((self) => self.call(pid, 'ignored', { timeout: 20 }).catch((e: unknown) => e));
    assert.ok(error instanceof CallError && error.failure === 'timeout');
    caller.stop();
    await GenServer.stop(node, pid);
  });

  test('a call to a dead pid rejects with CallError noproc', async () => {
    const pid = await GenServer.start(node, counter({ events: [] }), 0);
    await GenServer.stop(node, pid);
    await assert.rejects(node.call(pid, 'get'), isCallError('noproc', 'noproc'));
  });

  test('a call to an unknown name rejects with CallError noproc', async () => {
    await assert.rejects(node.call('no-such-server', 'get'), isCallError('noproc', 'noproc'));
    await node.installRegistry('gs-unknown', new LocalRegistry());
    await assert.rejects(node.call(via('gs-unknown', ['nobody']), 'get'), isCallError('noproc', 'noproc'));
  });

  test("a callee crashing during a call rejects the call with the callee's Error as reason", async () => {
    const error = new Error('handleCall blew up');
    const pid = await GenServer.start(
      node,
      {
        init: () => 0,
        async handleCall() {
          await Promise.resolve();
          throw error;
        },
      },
      undefined,
    );
    const { down } = await monitorFromProbe(node, pid);
    await assert.rejects(node.call(pid, 'anything'), isCallError(error, 'exit'));
    assert.equal((await down).reason, error);
  });

  test('start with a taken name rejects with AlreadyStartedError carrying the holder pid', async () => {
    const holder = await GenServer.start(node, counter({ events: [] }), 0, { name: 'taken' });
    const log: Log = { events: [] };
    await assert.rejects(GenServer.start(node, counter(log), 0, { name: 'taken' }), (error: unknown) => {
      assert.ok(error instanceof AlreadyStartedError);
      assert.equal(error.code, 'already_started');
      assert.ok(error.pid?.equals(holder));
      return true;
    });
    assert.deepEqual(log.events, [], 'init of the loser never ran');
    assert.ok(node.whereis('taken')?.equals(holder));

    // Via names on a LocalRegistry installed on the node.
    await node.installRegistry('gs-local', new LocalRegistry());
    const name = via('gs-local', { service: 'taken', shard: 1 });
    const viaHolder = await GenServer.start(node, counter({ events: [] }), 0, { name });
    await assert.rejects(
      GenServer.start(node, counter({ events: [] }), 0, { name: via('gs-local', { shard: 1, service: 'taken' }) }),
      (error: unknown) => error instanceof AlreadyStartedError && error.pid?.equals(viaHolder) === true,
    );
    assert.equal(await node.call(name, 'get'), 0);
    await GenServer.stop(node, holder);
    await GenServer.stop(node, viaHolder);
  });

  test('init returning stop(reason) or throwing rejects with StartError, and the name is freed', async () => {
    await node.installRegistry('gs-init', new LocalRegistry());
    const existing = new Set(node.processes().map((pid) => pid.key));
    for (const name of ['init-fails', via('gs-init', 'init-fails')]) {
      const refused = { refused: true };
      await assert.rejects(
        GenServer.start(node, { init: () => stop(refused) }, undefined, { name }),
        (error: unknown) => error instanceof StartError && error.code === 'start_failed' && error.reason === refused,
      );
      assert.equal(node.whereis(name), undefined, 'the name is free after init stopped');

      const thrown = new Error('init threw');
      await assert.rejects(
        GenServer.start(
          node,
          {
            async init() {
              await Promise.resolve();
              throw thrown;
            },
          },
          undefined,
          { name },
        ),
        (error: unknown) => error instanceof StartError && error.reason === thrown,
      );
      assert.equal(node.whereis(name), undefined, 'the name is free after init threw');
      // And the name can be taken again.
      const pid = await GenServer.start(node, counter({ events: [] }), 3, { name });
      assert.equal(await node.call(name, 'get'), 3);
      await GenServer.stop(node, pid);
      assert.equal(node.whereis(name), undefined);
    }
    const leftOver = node.processes().filter((pid) => !existing.has(pid.key));
    assert.deepEqual(leftOver, [], 'no process is left behind by failed starts');
  });

  test('GenServer.stop runs terminate with the reason and resolves once the server is gone', async () => {
    const log: Log = { events: [] };
    const pid = await GenServer.start(node, counter(log), 4);
    const { down } = await monitorFromProbe(node, pid);
    const reason = { shutdown: 'maintenance' };
    await GenServer.stop(node, pid, reason);
    assert.ok(!node.isAlive(pid));
    assert.deepEqual(log.events.at(-1), ['terminate', reason, 4]);
    assert.equal((await down).reason, reason);
    await assert.rejects(GenServer.stop(node, pid), isCallError('noproc'));
  });

  test('noreply, then GenServer.reply later answers the waiting caller', async () => {
    const bothParked = deferred();
    const pid = await GenServer.start(
      node,
      {
        init: () => [] as From[],
        handleCall: (_request: unknown, from, waiting) => {
          if (waiting.length === 1) bothParked.resolve();
          return noreply([...waiting, from]);
        },
        handleCast: (message: string, waiting, self) => {
          for (const from of waiting) GenServer.reply(self, from, `${message}:${from.pid.key}`);
          return noreply([]);
        },
      },
      undefined,
    );
    const caller = await probe(node);
    const first = caller.run((self) => self.call<string>(pid, 'wait'));
    const second = node.call<string>(pid, 'wait');
    // Both calls are parked without a reply; a cast then releases them.
    await within(bothParked.promise, 'both calls to be parked');
    node.cast(pid, 'released');
    assert.equal(await first, `released:${caller.pid.key}`);
    assert.match(await second, /^released:/);
    caller.stop();
    await GenServer.stop(node, pid);
  });

  test("terminate runs on the parent's EXIT only when trapping exits (OTP rule)", async () => {
    const terminated: string[] = [];
    const server = (label: string, trap: boolean): GenServer<null> => ({
      init(_args, self) {
        if (trap) self.trapExit(true);
        return null;
      },
      terminate(reason) {
        terminated.push(`${label}:${String(reason)}`);
      },
    });
    const parent = await probe(node);
    const [trapping, plain] = await parent.run(async (self) =>
      Promise.all([GenServer.startLink(self, server('trapping', true), undefined), GenServer.startLink(self, server('plain', false), undefined)]),
    );
    const { down: trappingDown } = await monitorFromProbe(node, trapping);
    const { down: plainDown } = await monitorFromProbe(node, plain);
    void parent.run((self) => self.exit('shutdown')).catch(() => undefined);
    assert.equal((await trappingDown).reason, 'shutdown');
    assert.equal((await plainDown).reason, 'shutdown');
    assert.deepEqual(terminated, ['trapping:shutdown'], 'only the trapping server ran terminate');
  });

  test('the callee sees the real caller pid in from.pid', async () => {
    const pid = await GenServer.start(node, { init: () => null, handleCall: (_r: unknown, from, s) => reply(from.pid, s) }, undefined);
    const caller = await probe(node);
    const seen = await caller.run((self) => self.call<Pid>(pid, 'who'));
    assert.ok(seen.equals(caller.pid), `expected ${caller.pid.key}, got ${seen.key}`);
    caller.stop();
    await GenServer.stop(node, pid);
  });
});
