/**
 * `Node.watchExit` hooks, which the registries hang a name's life on: at a
 * process's exit every hook still added runs once, in the order added, with
 * the exit reason; a cancelled one never runs, also when a hook that runs
 * before it cancels it; a hook added twice runs once; and a process left
 * with no hook holds none (the first is kept without a set, so a cancel
 * must not lose the others).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Node, formatReason, type Pid } from '@roster/core';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number; numRuns: number } = { numRuns: 200, ...(envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {}) };

/** A process that waits until it is killed. */
function sleeper(node: Node): Pid {
  return node.spawn(async (self) => {
    await self.receive();
  });
}

/** Kills `pid`: its exit hooks run at once, before anyone can see it dead. */
function kill(node: Node, pid: Pid): void {
  node.exit(pid, 'kill');
  assert.equal(node.isAlive(pid), false);
}

test('exit hooks: any sequence of adds and cancels runs exactly the hooks left, once each, in the order added', async () => {
  const node = await Node.start({ name: 'hooks', logLevel: 'silent' });
  try {
    const step = fc.oneof(fc.record({ op: fc.constant('add' as const), hook: fc.integer({ min: 0, max: 5 }) }), fc.record({ op: fc.constant('cancel' as const), nth: fc.nat(20) }));
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 20 }), async (steps) => {
        const pid = sleeper(node);
        const ran: number[] = [];
        const hooks = Array.from({ length: 6 }, (_, id) => (reason: unknown) => ran.push(id) && assert.equal(formatReason(reason as never), 'killed'));
        const cancels: { hook: number; cancel: () => void }[] = [];
        // The model: a set of hook ids in insertion order.
        const model: number[] = [];
        for (const s of steps) {
          if (s.op === 'add') {
            const cancel = node.watchExit(pid, hooks[s.hook]!);
            assert.ok(cancel !== undefined);
            cancels.push({ hook: s.hook, cancel });
            if (!model.includes(s.hook)) model.push(s.hook);
          } else if (cancels.length > 0) {
            const { hook, cancel } = cancels[s.nth % cancels.length]!;
            cancel();
            const at = model.indexOf(hook);
            if (at !== -1) model.splice(at, 1);
          }
        }
        kill(node, pid);
        assert.deepEqual(ran, model);
      }),
      fcParams,
    );
  } finally {
    await node.stop();
  }
});

test('exit hooks: a hook that cancels a later one at exit stops it; the first hook cancelled leaves the later ones', async () => {
  const node = await Node.start({ name: 'hooks-cancel', logLevel: 'silent' });
  try {
    const first = sleeper(node);
    const ran: string[] = [];
    let cancelC: (() => void) | undefined;
    node.watchExit(first, () => {
      ran.push('a');
      cancelC?.();
    });
    node.watchExit(first, () => ran.push('b'));
    cancelC = node.watchExit(first, () => ran.push('c'));
    kill(node, first);
    assert.deepEqual(ran, ['a', 'b']);

    const second = sleeper(node);
    const order: string[] = [];
    const cancelX = node.watchExit(second, () => order.push('x'));
    node.watchExit(second, () => order.push('y'));
    cancelX?.();
    node.watchExit(second, () => order.push('z'));
    kill(node, second);
    assert.deepEqual(order, ['y', 'z']);
    assert.equal(node.watchExit(second, () => order.push('late')), undefined, 'a dead process takes no hook');
  } finally {
    await node.stop();
  }
});
