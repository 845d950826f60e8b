import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Node, Pid, Ref, isPid, isRef } from '@roster/core';

describe('pids and refs', () => {
  test('a pid has a stable string form, and equal pids built separately are equal and share a key', () => {
    const a = new Pid('alpha', 'c1', 7);
    const b = new Pid('alpha', 'c1', 7);
    assert.notEqual(a, b);
    assert.equal(a.toString(), '<alpha.c1.7>');
    assert.equal(a.toString(), b.toString());
    assert.equal(a.key, b.key);
    assert.equal(JSON.stringify({ pid: a }), JSON.stringify({ pid: b }));
    assert.ok(a.equals(b) && b.equals(a));
    const map = new Map([[a.key, 'found']]);
    assert.equal(map.get(b.key), 'found');
    // Any field differing makes a different pid.
    for (const other of [new Pid('beta', 'c1', 7), new Pid('alpha', 'c2', 7), new Pid('alpha', 'c1', 8)]) {
      assert.ok(!a.equals(other), `${a.key} must differ from ${other.key}`);
      assert.notEqual(a.key, other.key);
    }
    assert.ok(!a.equals(a.key), 'a pid is not equal to its string form');
    assert.ok(!a.equals(new Ref('alpha', 'c1', 7)), 'a pid is not equal to a ref with the same fields');
    assert.ok(isPid(a) && !isPid(a.key) && !isPid({ node: 'alpha', creation: 'c1', id: 7 }));
  });

  test('a ref has a stable string form, and equal refs built separately are equal and share a key', () => {
    const a = new Ref('alpha', 'c1', 3);
    const b = new Ref('alpha', 'c1', 3);
    assert.equal(a.key, b.key);
    assert.equal(String(a), String(b));
    assert.ok(a.equals(b));
    assert.ok(!a.equals(new Ref('alpha', 'c1', 4)));
    assert.ok(!a.equals(new Pid('alpha', 'c1', 3)));
    assert.notEqual(a.key, new Pid('alpha', 'c1', 3).key);
    assert.ok(isRef(a) && !isRef(new Pid('alpha', 'c1', 3)));
  });

  test('pids of a live node: the same process compares equal through a rebuilt pid', async () => {
    const node = await Node.start({ name: 'pid-live' });
    try {
      const pid = node.spawn((self) => self.receive());
      const rebuilt = new Pid(pid.node, pid.creation, pid.id);
      assert.ok(pid.equals(rebuilt));
      assert.equal(pid.key, rebuilt.key);
      assert.ok(node.isAlive(rebuilt), 'a rebuilt pid addresses the same process');
      assert.equal(pid.node, 'pid-live');
      assert.equal(pid.creation, node.creation);
      const other = node.spawn((self) => self.receive());
      assert.ok(!pid.equals(other));
    } finally {
      await node.stop();
    }
  });

  test('Node.start validates names with a TypeError naming the option', async () => {
    const bad: unknown[] = ['', 'has space', 'slash/', 'x'.repeat(256), 'ünïcode', 42, undefined, null, {}];
    for (const name of bad) {
      await assert.rejects(
        Node.start({ name } as never),
        (error: unknown) => error instanceof TypeError && /options\.name/.test(error.message),
        `name ${JSON.stringify(name)} must be refused`,
      );
    }
    await assert.rejects(Node.start(undefined as never), TypeError);
    const ok = await Node.start({ name: 'A-z_0.9@host:1' });
    await ok.stop();
  });

  test('two nodes with the same name get different creations, and their pids are not equal', async () => {
    const first = await Node.start({ name: 'twin' });
    const second = await Node.start({ name: 'twin' });
    try {
      assert.equal(first.name, second.name);
      assert.notEqual(first.creation, second.creation);
      const p1 = first.spawn((self) => self.receive());
      const p2 = second.spawn((self) => self.receive());
      assert.equal(p1.node, p2.node);
      assert.equal(p1.id, p2.id, 'both are the first process of their node');
      assert.ok(!p1.equals(p2));
      assert.notEqual(p1.key, p2.key);
      assert.ok(!second.isAlive(p1), 'a pid of the other incarnation is not a process of this one');
      assert.ok(!first.isAlive(p2));
    } finally {
      await first.stop();
      await second.stop();
    }
  });
});
