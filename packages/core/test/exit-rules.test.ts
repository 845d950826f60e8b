import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Node, TIMEOUT, isDownMessage, isExitMessage, type DownMessage, type ExitMessage, type Pid } from '@roster/core';
import { deferred, monitorFromProbe, probe, within } from './helpers.js';

const exitFrom = (pid: Pid) => (m: unknown): boolean => isExitMessage(m) && m.from.equals(pid);

/** A process that waits forever (until killed), optionally trapping exits. */
function idle(node: Node, trapExit = false): Pid {
  return node.spawn((self) => self.receive(() => false), trapExit ? { trapExit: true } : undefined);
}

describe('Erlang exit rules', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'exits' });
  });
  after(async () => {
    await node.stop();
  });

  test('a link is bidirectional: either side dying abnormally takes the other down', async () => {
    for (const dying of ['linker', 'linked'] as const) {
      const linker = await probe(node);
      const linked = idle(node);
      await linker.run((self) => self.link(linked));
      const { down: linkerDown } = await monitorFromProbe(node, linker.pid);
      const { down: linkedDown } = await monitorFromProbe(node, linked);
      const reason = { because: dying };
      node.exit(dying === 'linker' ? linker.pid : linked, reason);
      assert.equal((await linkerDown).reason, reason, `${dying} died: the linker dies with the same reason`);
      assert.equal((await linkedDown).reason, reason, `${dying} died: the linked dies with the same reason`);
    }
  });

  test('an abnormal exit kills a linked process that does not trap exits, with the same reason', async () => {
    const error = new Error('crashed');
    const gate = deferred();
    const ready = deferred<Pid>();
    const crasher = node.spawn(async (self) => {
      ready.resolve(self.spawnLink((inner) => inner.receive(() => false)));
      await gate.promise;
      throw error;
    });
    const linked = await within(ready.promise, 'the linked child');
    const { down } = await monitorFromProbe(node, linked);
    const { down: crasherDown } = await monitorFromProbe(node, crasher);
    gate.resolve();
    assert.equal((await crasherDown).reason, error);
    assert.equal((await down).reason, error, 'the linked process dies with the very same reason');
  });

  test("a 'normal' exit does not kill linked processes", async () => {
    const finisher = await probe(node);
    const linked = await probe(node);
    await finisher.run((self) => self.link(linked.pid));
    const { down } = await monitorFromProbe(node, finisher.pid);
    finisher.stop(); // its body returns: exit reason normal
    assert.equal((await down).reason, 'normal');
    // The linked one survives and is still responsive.
    assert.equal(await linked.run((self) => self.pid.key), linked.pid.key);
    assert.ok(node.isAlive(linked.pid));
    linked.stop();
  });

  test("a trapping process receives { type: 'EXIT', from, reason } instead of dying", async () => {
    const trapper = await probe(node, undefined, { trapExit: true });
    const victim = idle(node);
    await trapper.run((self) => self.link(victim));
    const reason = { custom: 'reason' };
    node.exit(victim, reason);
    const exit = await trapper.next<ExitMessage>(exitFrom(victim));
    assert.deepEqual(Object.keys(exit).sort(), ['from', 'reason', 'type']);
    assert.equal(exit.type, 'EXIT');
    assert.ok(exit.from.equals(victim));
    assert.equal(exit.reason, reason);
    assert.ok(node.isAlive(trapper.pid));
    // A normal exit of a linked process arrives as an EXIT too.
    const finisher = await probe(node);
    await trapper.run((self) => self.link(finisher.pid));
    finisher.stop();
    assert.equal((await trapper.next<ExitMessage>(exitFrom(finisher.pid))).reason, 'normal');
    trapper.stop();
  });

  test("exit(pid, 'kill') is untrappable; linked processes see 'killed'", async () => {
    const target = await probe(node, undefined, { trapExit: true });
    const trappingNeighbour = await probe(node, undefined, { trapExit: true });
    const plainNeighbour = idle(node);
    await target.run((self) => {
      self.link(trappingNeighbour.pid);
      self.link(plainNeighbour);
    });
    const { down } = await monitorFromProbe(node, target.pid);
    const { down: plainDown } = await monitorFromProbe(node, plainNeighbour);
    node.exit(target.pid, 'kill');
    assert.equal((await down).reason, 'killed', 'the trapping target is killed anyway');
    assert.equal((await plainDown).reason, 'killed', 'a non-trapping linked process dies with killed');
    const exit = await trappingNeighbour.next<ExitMessage>(exitFrom(target.pid));
    assert.equal(exit.reason, 'killed', 'a trapping linked process gets EXIT killed');
    assert.ok(node.isAlive(trappingNeighbour.pid));
    trappingNeighbour.stop();
  });

  test("exit(pid, 'normal') to a process that does not trap exits is ignored", async () => {
    const target = await probe(node);
    const sender = await probe(node);
    await sender.run((self) => self.exit(target.pid, 'normal'));
    node.exit(target.pid, 'normal');
    // Still alive and responsive after both signals.
    assert.equal(await target.run(() => 'alive'), 'alive');
    assert.ok(node.isAlive(target.pid));
    target.stop();
    sender.stop();
  });

  test('an exit signal to a trapping process becomes an EXIT message naming the sender', async () => {
    const target = await probe(node, undefined, { trapExit: true });
    const sender = await probe(node);
    await sender.run((self) => self.exit(target.pid, 'normal'));
    const fromSender = await target.next<ExitMessage>(exitFrom(sender.pid));
    assert.equal(fromSender.reason, 'normal');
    await sender.run((self) => self.exit(target.pid, 'shutdown'));
    assert.equal((await target.next<ExitMessage>(exitFrom(sender.pid))).reason, 'shutdown');
    node.exit(target.pid, { why: 'from outside' });
    const fromNode = await target.next<ExitMessage>(exitFrom(node.pid));
    assert.deepEqual(fromNode.reason, { why: 'from outside' });
    assert.ok(node.isAlive(target.pid), 'trapping, it does not die of any of them');
    target.stop();
    sender.stop();
  });

  test('link to a dead pid gives an exit signal noproc (trapping: EXIT noproc)', async () => {
    const dead = node.spawn(() => undefined);
    const { down: deadDown } = await monitorFromProbe(node, dead);
    await deadDown;

    const trapper = await probe(node, undefined, { trapExit: true });
    await trapper.run((self) => self.link(dead));
    const exit = await trapper.next<ExitMessage>(exitFrom(dead));
    assert.equal(exit.reason, 'noproc');
    assert.ok(node.isAlive(trapper.pid));
    trapper.stop();

    const plain = await probe(node);
    const { down } = await monitorFromProbe(node, plain.pid);
    void plain.run((self) => self.link(dead)).catch(() => undefined);
    assert.equal((await down).reason, 'noproc', 'a non-trapping process dies of it');
  });

  test('unlink stops propagation', async () => {
    const a = await probe(node);
    const b = await probe(node);
    await a.run((self) => self.link(b.pid));
    await b.run((self) => self.unlink(a.pid)); // either side may unlink
    const { down } = await monitorFromProbe(node, a.pid);
    node.exit(a.pid, 'boom');
    assert.equal((await down).reason, 'boom');
    assert.equal(await b.run(() => 'still here'), 'still here');

    // And the unlinking side no longer hears of the other one while trapping.
    const trapper = await probe(node, undefined, { trapExit: true });
    const c = idle(node);
    await trapper.run((self) => {
      self.link(c);
      self.unlink(c);
    });
    const { down: cDown } = await monitorFromProbe(node, c);
    node.exit(c, 'gone');
    await cDown;
    assert.equal(await trapper.run((self) => self.receive(exitFrom(c), 0)), TIMEOUT);
    b.stop();
    trapper.stop();
  });

  test('monitors: exactly one DOWN, carrying the exit reason', async () => {
    const watcher = await probe(node);
    const target = await probe(node, undefined, { trapExit: true });
    const [r1, r2] = await watcher.run((self) => [self.monitor(target.pid), self.monitor(target.pid)] as const);
    assert.ok(!r1.equals(r2), 'each monitor has its own ref');
    // Signals after death must not produce more DOWNs.
    node.exit(target.pid, 'first');
    const { down } = await monitorFromProbe(node, target.pid);
    assert.equal((await target.next<ExitMessage>(exitFrom(node.pid))).reason, 'first');
    node.exit(target.pid, 'kill');
    node.exit(target.pid, 'kill');
    await down;
    const d1 = await watcher.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(r1));
    const d2 = await watcher.next<DownMessage>((m) => isDownMessage(m) && m.ref.equals(r2));
    // Two round trips through the watcher: anything sent to it before is collected by now.
    await watcher.run(() => undefined);
    await watcher.run(() => undefined);
    const downs = watcher.received.filter(isDownMessage);
    assert.equal(downs.length, 2, 'exactly one DOWN per monitor');
    assert.ok(downs.includes(d1) && downs.includes(d2));
    for (const d of downs) {
      assert.equal(d.type, 'DOWN');
      assert.equal(d.reason, 'killed');
      assert.ok(d.pid.equals(target.pid));
    }
    watcher.stop();
  });

  test('monitoring a dead pid gives DOWN noproc at once', async () => {
    const dead = node.spawn(() => undefined);
    await (await monitorFromProbe(node, dead)).down;
    const watcher = await probe(node);
    const down = await watcher.run(async (self) => {
      const ref = self.monitor(dead);
      // Poll: the DOWN is already in the mailbox when monitor returns.
      const message = await self.receive((m) => isDownMessage(m) && m.ref.equals(ref), 0);
      return { ref, message };
    });
    assert.notEqual(down.message, TIMEOUT);
    const message = down.message as DownMessage;
    assert.equal(message.reason, 'noproc');
    assert.ok(message.pid.equals(dead));
    watcher.stop();
  });

  test('demonitor with flush removes a DOWN already queued; without flush it stays', async () => {
    const watcher = await probe(node);
    const flushed = await watcher.run(async (self) => {
      const target = self.spawn((p) => p.receive(() => false));
      const keep = self.monitor(target);
      const drop = self.monitor(target);
      self.exit(target, 'kill'); // both DOWNs are queued now
      self.demonitor(drop, { flush: true });
      self.demonitor(keep); // no flush: the queued DOWN stays
      const kept = await self.receive((m) => isDownMessage(m) && m.ref.equals(keep), 0);
      const dropped = await self.receive((m) => isDownMessage(m) && m.ref.equals(drop), 0);
      return { kept, dropped };
    });
    assert.notEqual(flushed.kept, TIMEOUT);
    assert.equal((flushed.kept as DownMessage).reason, 'killed');
    assert.equal(flushed.dropped, TIMEOUT, 'the flushed DOWN is gone');

    // demonitor before the target dies: no DOWN at all.
    const quiet = await watcher.run(async (self) => {
      const target = self.spawn((p) => p.receive(() => false));
      const ref = self.monitor(target);
      self.demonitor(ref);
      self.exit(target, 'kill');
      return self.receive((m) => isDownMessage(m) && m.ref.equals(ref), 20);
    });
    assert.equal(quiet, TIMEOUT);
    watcher.stop();
  });

  test('monitoring an unregistered name gives DOWN noproc', async () => {
    const watcher = await probe(node);
    const message = await watcher.run(async (self) => {
      const ref = self.monitor('nobody-has-this-name');
      return self.receive((m) => isDownMessage(m) && m.ref.equals(ref), 0);
    });
    assert.notEqual(message, TIMEOUT);
    assert.equal((message as DownMessage).reason, 'noproc');
    watcher.stop();
  });

  test("a normal exit gives a 'normal' DOWN", async () => {
    const target = await probe(node);
    const { down } = await monitorFromProbe(node, target.pid);
    target.stop();
    const message = await down;
    assert.equal(message.reason, 'normal');
    assert.ok(message.pid.equals(target.pid));
  });

  test('a long link chain (10k processes) dies entirely when its head is killed, without stack overflow', async () => {
    const N = 10_000;
    const pids: Pid[] = [];
    const allLinked = deferred();
    let previous: Pid | undefined;
    for (let i = 0; i < N; i++) {
      const linkTo = previous;
      const last = i === N - 1;
      previous = node.spawn((self) => {
        if (linkTo !== undefined) self.link(linkTo);
        if (last) allLinked.resolve();
        return self.receive(() => false);
      });
      pids.push(previous);
    }
    await within(allLinked.promise, 'the chain to be linked');
    const head = pids[0]!;
    const tail = pids[N - 1]!;
    const { down } = await monitorFromProbe(node, tail);
    node.exit(head, 'kill');
    assert.equal((await down).reason, 'killed');
    const survivors = pids.filter((pid) => node.isAlive(pid));
    assert.equal(survivors.length, 0, `${survivors.length} processes of the chain survived`);
  });
});

