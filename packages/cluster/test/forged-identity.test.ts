/**
 * A member that lies about whose frame it sends. A frame from node X can
 * only speak for X's processes (as Erlang's distribution: a node sends
 * signals of its own processes): an exit signal "from" a process of
 * another node would make a supervisor restart a child that still runs
 * there, a `DOWN` "of" it would end a monitor of a live process, a link
 * "from" it would tie a local process to a stranger. Such frames are
 * dropped as `forged`, and nothing of them reaches a process.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isDownMessage, isExitMessage, type Node, type Pid, type Ref } from '@roster/core';
import { EditingTransport, TestNet, within } from './helpers.js';

/** A pid as the wire writes it. */
const wirePid = (pid: Pid): { $pid: [string, string, number] } => ({ $pid: [pid.node, pid.creation, pid.id] });

/** A process on `node` that collects what it receives into `inbox`. */
function collector(node: Node, inbox: unknown[], setup?: (self: Parameters<Parameters<Node['spawn']>[0]>[0]) => void): Pid {
  return node.spawn(async (self) => {
    setup?.(self);
    for (;;) inbox.push(await self.receive());
  });
}

/** A process that waits until told to stop. */
const idle = (node: Node): Pid =>
  node.spawn(async (self) => {
    await self.receive();
  });

describe('frames that speak for another node\'s processes', () => {
  let net: TestNet;
  let a: Node;
  let z: Node;
  let x: Node;
  /** The carrier of the lying node: its `edit` rewrites what it sends. */
  let liar: EditingTransport;

  beforeEach(async () => {
    net = await new TestNet({ heartbeatInterval: 60_000, failureTimeout: 120_000 }).open();
    a = await net.start('a');
    z = await net.start('z');
    liar = new EditingTransport({ broker: net.broker });
    x = await net.start('x', { transport: liar });
    await within(net.broker.idle(), 'membership', 3000);
  });

  afterEach(async () => {
    await net.close();
  });

  const forged = (): number => net.cluster(a).stats.dropped.forged;

  test('an exit signal from a process of another node is dropped: a trapping process linked to it sees nothing', async () => {
    const onZ = idle(z);
    const inbox: unknown[] = [];
    const trapper = collector(a, inbox, (self) => {
      self.trapExit(true);
      self.link(onZ);
    });
    await within(net.broker.idle(), 'link', 3000);
    liar.edit = (envelope) => {
      if (envelope['k'] === 'exit') envelope.b['f'] = wirePid(onZ);
    };
    const sender = x.spawn(async (self) => {
      self.exit(trapper, 'forged');
      await self.receive();
    });
    await within(net.broker.idle(), 'the forged exit', 3000);
    assert.equal(forged(), 1, 'the frame is counted as forged');
    assert.equal(inbox.length, 0, 'no EXIT reached the trapping process');
    // The real one still arrives.
    liar.edit = () => {};
    z.exit(onZ, 'real');
    await within(net.broker.idle(), 'the real exit', 3000);
    assert.equal(inbox.length, 1);
    const exit = inbox[0];
    assert.ok(isExitMessage(exit));
    assert.ok(exit.from.equals(onZ));
    assert.equal(exit.reason, 'real');
    x.exit(sender, 'kill');
  });

  test("a DOWN of another node's process is dropped: the monitor of the live process stays, and fires when it dies", async () => {
    const onZ = idle(z);
    const onX = idle(x);
    const inbox: unknown[] = [];
    const refs = new Map<'z' | 'x', Ref>();
    collector(a, inbox, (self) => {
      refs.set('z', self.monitor(onZ));
      refs.set('x', self.monitor(onX));
    });
    await within(net.broker.idle(), 'monitors', 3000);
    liar.edit = (envelope) => {
      if (envelope['k'] !== 'down') return;
      envelope.b['p'] = wirePid(onZ);
      const ref = refs.get('z')!;
      envelope.b['r'] = { $ref: [ref.node, ref.creation, ref.id] };
    };
    x.exit(onX, 'kill');
    await within(net.broker.idle(), 'the forged DOWN', 3000);
    assert.equal(forged(), 1);
    assert.equal(inbox.length, 0, "no DOWN reached the watcher: the forged one claimed z's process, and it carried x's");
    liar.edit = () => {};
    z.exit(onZ, 'kill');
    await within(net.broker.idle(), 'the real DOWN', 3000);
    assert.equal(inbox.length, 1);
    const down = inbox[0];
    assert.ok(isDownMessage(down));
    assert.ok(down.ref.equals(refs.get('z')), 'the DOWN of the monitor of z\'s process');
    assert.equal(down.reason, 'killed');
  });

  test('a link or monitor placed for a process of another node, or a message signed with one, is dropped', async () => {
    const onZ = idle(z);
    const target = idle(a);
    const inbox: unknown[] = [];
    const receiver = collector(a, inbox);
    liar.edit = (envelope) => {
      if (envelope['k'] === 'link' || envelope['k'] === 'msg') envelope.b['f'] = wirePid(onZ);
      if (envelope['k'] === 'mon') envelope.b['w'] = wirePid(onZ);
    };
    x.spawn(async (self) => {
      self.link(target);
      self.monitor(target);
      self.send(receiver, 'hello');
      await self.receive();
    });
    await within(net.broker.idle(), 'the forged frames', 3000);
    assert.equal(forged(), 3);
    assert.deepEqual(inbox, []);
    assert.equal(a.processInfo(target)?.links, 0, 'no link from a stranger');
    assert.equal(a.processInfo(target)?.monitoredBy, 0, 'no monitor for a stranger');
  });

  test('the same frames with the sender\'s own processes are delivered', async () => {
    const inbox: unknown[] = [];
    const receiver = collector(a, inbox);
    x.spawn(async (self) => {
      self.send(receiver, 'from x');
      await self.receive();
    });
    await within(net.broker.idle(), 'delivery', 3000);
    assert.deepEqual(inbox, ['from x']);
    assert.equal(forged(), 0);
  });
});
