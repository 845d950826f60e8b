import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  BadArgError,
  GenServer,
  LocalRegistry,
  Node,
  Pid,
  TIMEOUT,
  canonicalName,
  isDownMessage,
  isName,
  noreply,
  reply,
  via,
  type Dest,
  type DownMessage,
  type ExitReason,
  type Name,
} from '@roster/core';
import { deferred, monitorFromProbe, probe, within } from './helpers.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

/** An echo server: replies to every call with the request, collects infos and casts. */
const echo: GenServer<unknown[]> = {
  init: () => [],
  handleCall: (request: unknown, _from, seen) => reply(request === 'seen' ? seen : request, seen),
  handleCast: (message: unknown, seen) => noreply([...seen, { cast: message }]),
  handleInfo: (message: unknown, seen) => noreply([...seen, { info: message }]),
};

/** A deep copy of a JSON value with every object's keys in reverse order (own `__proto__` keys included). */
function reorder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reorder);
  if (typeof value === 'object' && value !== null) {
    const out = {};
    for (const key of Object.keys(value).reverse()) {
      Object.defineProperty(out, key, { value: reorder((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

describe('registries', () => {
  let node: Node;
  let registry: LocalRegistry;
  let server: Pid;
  before(async () => {
    node = await Node.start({ name: 'registries' });
    registry = new LocalRegistry();
    await node.installRegistry('local', registry);
    server = await GenServer.start(node, echo, undefined);
  });
  after(async () => {
    await node.stop();
  });

  test('global:re_register_name: reRegisterName moves a name atomically; a dead or foreign pid is refused and changes nothing', async () => {
    const idle = async (self: { receive(): Promise<unknown> }) => void (await self.receive());
    const a = node.spawn(idle);
    const b = node.spawn(idle);
    assert.equal(await registry.registerName('moving', a), 'yes');
    assert.equal(await registry.reRegisterName('moving', b), 'yes');
    assert.ok(registry.whereisName('moving')?.equals(b));
    const dead = node.spawn(() => undefined);
    const { down } = await monitorFromProbe(node, dead);
    await down;
    await assert.rejects(registry.reRegisterName('moving', dead), BadArgError);
    await assert.rejects(registry.reRegisterName('moving', new Pid('elsewhere', 'x', 1)), BadArgError);
    assert.ok(registry.whereisName('moving')?.equals(b), 'the refusals left the name where it was');
    // a lets go of it entirely: its exit no longer clears the name; b's does.
    const { down: aDown } = await monitorFromProbe(node, a);
    node.exit(a, 'kill');
    await aDown;
    assert.ok(registry.whereisName('moving')?.equals(b));
    const { down: bDown } = await monitorFromProbe(node, b);
    node.exit(b, 'kill');
    await bDown;
    assert.equal(registry.whereisName('moving'), undefined);
  });

  /** After any bad input the node must still work. */
  async function nodeStillWorks(): Promise<void> {
    assert.deepEqual(await node.call(server, { ping: 1 }, { timeout: 1000 }), { ping: 1 });
  }

  test('LocalRegistry contract: registerName yes/no, unregisterName, whereisName, send returning the pid, registered', async () => {
    const a = await probe(node);
    const b = await probe(node);
    assert.equal(await registry.registerName('alpha', a.pid), 'yes');
    assert.equal(await registry.registerName('alpha', b.pid), 'no', 'taken by another pid');
    assert.equal(await registry.registerName('alpha', a.pid), 'no', 'taken, even by the same pid');
    assert.equal(await registry.registerName(['alpha', 2], a.pid), 'yes', 'a pid may hold several names');
    assert.ok(registry.whereisName('alpha')?.equals(a.pid));
    assert.ok(registry.whereisName(['alpha', 2])?.equals(a.pid));
    assert.equal(registry.whereisName('beta'), undefined);

    const sentTo = registry.send('alpha', 'hello');
    assert.ok(sentTo.equals(a.pid), 'send returns the pid it sent to');
    assert.equal(await a.next(), 'hello');
    assert.throws(() => registry.send('beta', 'lost'), BadArgError);

    assert.deepEqual(
      registry.registered().map((name) => canonicalName(name)).sort(),
      [canonicalName('alpha'), canonicalName(['alpha', 2])].sort(),
    );
    await registry.unregisterName('alpha');
    assert.equal(registry.whereisName('alpha'), undefined);
    assert.deepEqual(registry.registered(), [['alpha', 2]]);
    await registry.unregisterName('alpha'); // unknown: resolves either way
    assert.equal(await registry.registerName('alpha', b.pid), 'yes', 'free again');

    // Refusals: a dead pid, a pid of another node, an invalid name.
    const dead = node.spawn(() => undefined);
    await (await monitorFromProbe(node, dead)).down;
    await assert.rejects(registry.registerName('for-the-dead', dead), BadArgError);
    assert.equal(registry.whereisName('for-the-dead'), undefined);
    const foreign = new Pid('elsewhere', 'x', 1);
    await assert.rejects(registry.registerName('foreign', foreign), BadArgError);
    await assert.rejects(registry.registerName(Number.NaN as unknown as Name, a.pid), TypeError);

    // All the names a process holds go when it exits.
    assert.equal(await registry.registerName({ also: 'b' }, b.pid), 'yes');
    const { down } = await monitorFromProbe(node, b.pid);
    b.stop();
    await down;
    assert.equal(registry.whereisName('alpha'), undefined);
    assert.equal(registry.whereisName({ also: 'b' }), undefined);
    assert.deepEqual(registry.registered(), [['alpha', 2]]);

    await registry.unregisterName(['alpha', 2]);
    a.stop();
    await nodeStillWorks();
  });

  test('names are any JSON value, compared canonically ({a:1,b:2} is {b:2,a:1})', async () => {
    const p = await probe(node);
    assert.equal(await registry.registerName({ a: 1, b: 2 }, p.pid), 'yes');
    assert.ok(registry.whereisName({ b: 2, a: 1 })?.equals(p.pid));
    assert.equal(await registry.registerName({ b: 2, a: 1 }, p.pid), 'no');
    assert.equal(canonicalName({ a: 1, b: 2 }), canonicalName({ b: 2, a: 1 }));
    // Distinct values stay distinct.
    const distinct: Name[] = ['1', 1, true, 'true', null, 'null', [1, 2], [2, 1], { a: [1] }, { a: 1 }, [], {}, '', 0];
    const encodings = distinct.map((name) => canonicalName(name));
    assert.equal(new Set(encodings).size, distinct.length, encodings.join(' '));
    for (const name of distinct) assert.equal(await registry.registerName(name, p.pid), 'yes', `${JSON.stringify(name)} is its own name`);
    for (const name of distinct) assert.ok(registry.whereisName(name)?.equals(p.pid));
    for (const name of [...distinct, { a: 1, b: 2 }]) await registry.unregisterName(name);
    assert.deepEqual(registry.registered(), []);

    // Any JSON value is a name, its encoding is JSON for the same value, and key order never matters.
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.ok(isName(value));
        const encoded = canonicalName(value);
        assert.deepEqual(JSON.parse(encoded), JSON.parse(JSON.stringify(value)));
        assert.equal(canonicalName(reorder(value)), encoded);
      }),
      { numRuns: 300, ...fcParams },
    );
    // ...and lookups agree: a name registered in one key order is found in any other.
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 2, maxKeys: 6 }), async (generated) => {
        const name = generated as Name;
        assert.equal(await registry.registerName(name, p.pid), 'yes');
        try {
          assert.ok(registry.whereisName(reorder(name) as Name)?.equals(p.pid));
          assert.equal(await registry.registerName(reorder(name) as Name, p.pid), 'no');
        } finally {
          await registry.unregisterName(reorder(name) as Name);
        }
        assert.equal(registry.whereisName(name), undefined);
      }),
      { numRuns: 100, ...fcParams },
    );
    p.stop();
  });

  test('invalid names are refused with a TypeError that says what is wrong', async () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const cyclicArray: unknown[] = [1];
    cyclicArray.push(cyclicArray);
    class Custom {
      readonly x = 1;
    }
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [, 1];
    const cases: [string, unknown, RegExp][] = [
      ['function', () => 1, /function/],
      ['symbol', Symbol('s'), /symbol/],
      ['NaN', Number.NaN, /NaN.*not a finite number/],
      ['Infinity', Number.POSITIVE_INFINITY, /Infinity.*not a finite number/],
      ['-Infinity', Number.NEGATIVE_INFINITY, /-Infinity.*not a finite number/],
      ['Date', new Date(0), /Date instance.*not a plain object/],
      ['class instance', new Custom(), /Custom instance.*not a plain object/],
      ['Map', new Map(), /Map instance/],
      ['cycle', cyclic, /cycle/],
      ['cycle in an array', cyclicArray, /cycle/],
      ['undefined', undefined, /undefined.*not a JSON value/],
      ['bigint', 10n, /bigint/],
      ['nested NaN, with its path', { a: [1, Number.NaN] }, /NaN at \$\.a\[1\]/],
      ['undefined property', { a: undefined }, /undefined at \$\.a/],
      ['symbol key', { [Symbol('k')]: 1 }, /symbol key/],
      ['array hole', sparse, /undefined at \$\[0\]/],
    ];
    const p = await probe(node);
    for (const [what, name, message] of cases) {
      const check = (error: unknown): boolean => {
        assert.ok(error instanceof TypeError, `${what}: expected TypeError, got ${String(error)}`);
        assert.match(error.message, message, `${what}: the message says what is wrong`);
        return true;
      };
      assert.throws(() => canonicalName(name), check, `${what}: canonicalName must throw`);
      assert.equal(isName(name), false, what);
      assert.throws(() => via('local', name as Name), check);
      assert.throws(() => registry.whereisName(name as Name), check);
      await assert.rejects(registry.registerName(name as Name, p.pid), check);
      await assert.rejects(node.registerName({ via: 'local', name: name as Name }, p.pid), check);
    }
    assert.deepEqual(registry.registered(), [], 'nothing was registered');
    p.stop();
    await nodeStillWorks();
  });

  test('via destinations work in start, send, call, cast and monitor', async () => {
    const name = via('local', { service: 'echo', shard: [1, 2] });
    const sameName = via('local', { shard: [1, 2], service: 'echo' });
    const pid = await GenServer.start(node, echo, undefined, { name });
    assert.ok(node.whereis(sameName)?.equals(pid));
    node.send(sameName, 'by-send');
    node.cast(name, 'by-cast');
    assert.deepEqual(await node.call(sameName, 'seen'), [{ info: 'by-send' }, { cast: 'by-cast' }]);
    const caller = await probe(node);
    assert.equal(await caller.run((self) => self.call(name, 'from-inside')), 'from-inside');
    await caller.run((self) => self.send(name, 'inside-send'));
    await caller.run((self) => self.cast(name, 'inside-cast'));
    assert.deepEqual((await node.call<unknown[]>(name, 'seen')).slice(2), [{ info: 'inside-send' }, { cast: 'inside-cast' }]);
    const { down } = await monitorFromProbe(node, sameName);
    await GenServer.stop(node, name, 'shutdown');
    const message = await down;
    assert.equal(message.reason, 'shutdown');
    assert.ok(message.pid.equals(pid));
    caller.stop();
  });

  const exitHow: { reason: string; expected: (error: Error) => ExitReason; make: (node: Node, pid: Pid, gate: () => void) => void }[] = [
    { reason: 'normal', expected: () => 'normal', make: (_n, _p, release) => release() },
    { reason: 'crash', expected: (error) => error, make: (_n, _p, release) => release() },
    { reason: 'kill', expected: () => 'killed', make: (n, p) => n.exit(p, 'kill') },
    { reason: 'shutdown', expected: () => 'shutdown', make: (n, p) => n.exit(p, 'shutdown') },
  ];
  for (const how of exitHow) {
    test(`a name is cleared the moment its process exits (${how.reason})`, async () => {
      const stringName = `cleared-${how.reason}`;
      const viaName = via('local', ['cleared', how.reason]);
      const error = new Error(`crash for ${how.reason}`);
      const gate = deferred();
      const pid = node.spawn(async (self) => {
        await gate.promise;
        if (how.reason === 'crash') throw error;
        if (how.reason === 'normal') return;
        await self.receive(() => false);
      });
      node.register(stringName, pid);
      assert.equal(await node.registerName(viaName, pid), 'yes');
      // The watcher looks the names up the instant its DOWN arrives.
      const placed = deferred();
      const seen = deferred<{ down: DownMessage; byString: Pid | undefined; byVia: Pid | undefined; listed: boolean }>();
      node.spawn(async (self) => {
        const ref = self.monitor(viaName);
        placed.resolve();
        const down = await self.receive((m): m is DownMessage => isDownMessage(m) && m.ref.equals(ref), 2000);
        if (down === TIMEOUT) return seen.reject(new Error('no DOWN'));
        seen.resolve({
          down,
          byString: node.whereis(stringName),
          byVia: registry.whereisName(viaName.name),
          listed: node.registered().includes(stringName) || registry.registered().some((n) => canonicalName(n) === canonicalName(viaName.name)),
        });
      });
      await within(placed.promise, 'the watcher');
      how.make(node, pid, () => gate.resolve());
      const result = await within(seen.promise, 'the DOWN');
      assert.equal(result.down.reason, how.expected(error));
      assert.equal(result.byString, undefined, 'the string name is free when DOWN arrives');
      assert.equal(result.byVia, undefined, 'the via name is free when DOWN arrives');
      assert.equal(result.listed, false, 'neither is listed any more');
      gate.resolve();
    });
  }

  test('a GenServer registered by name frees it on every kind of stop', async () => {
    for (const reason of ['normal', 'shutdown', { custom: 1 }]) {
      const name = via('local', 'gs-name');
      const pid = await GenServer.start(node, echo, undefined, { name });
      const { down } = await monitorFromProbe(node, pid);
      await GenServer.stop(node, name, reason);
      await down;
      assert.equal(node.whereis(name), undefined);
      assert.equal(node.whereis('gs-name'), undefined);
    }
  });

  test('send to an unknown name throws BadArgError', async () => {
    assert.throws(() => node.send('nobody-by-this-name', 'x'), BadArgError);
    assert.throws(() => node.send(via('local', 'nobody'), 'x'), BadArgError);
    const p = await probe(node);
    const inside = await p.run((self) => {
      try {
        self.send('nobody-by-this-name', 'x');
        return undefined;
      } catch (error) {
        return error;
      }
    });
    assert.ok(inside instanceof BadArgError, 'from inside a process too');
    assert.equal(inside.code, 'badarg');
    assert.ok(node.isAlive(p.pid), 'catching it keeps the process alive');
    p.stop();
    // A malformed destination is a BadArgError too.
    assert.throws(() => node.send(42 as unknown as Dest, 'x'), BadArgError);
    await nodeStillWorks();
  });

  test('via with an unknown registry key: send throws, call rejects, cast does not throw (all BadArgError)', async () => {
    const nowhere = via('no-such-registry', 'x');
    assert.throws(() => node.send(nowhere, 'x'), BadArgError);
    await nodeStillWorks();
    await assert.rejects(node.call(nowhere, 'x'), BadArgError);
    await nodeStillWorks();
    assert.doesNotThrow(() => node.cast(nowhere, 'x'));
    assert.doesNotThrow(() => node.cast('nobody-by-this-name', 'x'));
    await nodeStillWorks();
    await assert.rejects(GenServer.start(node, echo, undefined, { name: nowhere }), BadArgError);
    await nodeStillWorks();
    assert.throws(() => node.registry('no-such-registry'), BadArgError);
    await assert.rejects(node.installRegistry('local', new LocalRegistry()), BadArgError, 'a key is taken once');
    const p = await probe(node);
    const fromInside = await p.run((self) => self.call(nowhere, 'x').catch((error: unknown) => error));
    assert.ok(fromInside instanceof BadArgError);
    p.stop();
    await nodeStillWorks();
  });

  test('node-local string names: register, taken names, spawn with a name', async () => {
    const a = await probe(node);
    node.register('plain-name', a.pid);
    assert.ok(node.whereis('plain-name')?.equals(a.pid));
    assert.ok(node.registered().includes('plain-name'));
    const b = await probe(node);
    assert.throws(() => node.register('plain-name', b.pid), BadArgError);
    const before = node.processes().length;
    assert.throws(() => node.spawn((self) => self.receive(), { name: 'plain-name' }), BadArgError);
    assert.equal(node.processes().length, before, 'the refused spawn left no process behind');
    node.unregister('plain-name');
    assert.equal(node.whereis('plain-name'), undefined);
    const named = node.spawn((self) => self.receive(), { name: 'plain-name' });
    assert.ok(node.whereis('plain-name')?.equals(named));
    node.send('plain-name', 'bye');
    a.stop();
    b.stop();
    await nodeStillWorks();
  });
});
