/**
 * The `NameRegistry` conformance suite: the executable form of the contract
 * documented on `NameRegistry` (@roster/core) and in DESIGN.md section 2. A
 * registry backend is done when it passes it.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import {
  AlreadyStartedError,
  BadArgError,
  CallError,
  GenServer,
  Pid,
  formatReason,
  via,
  type ExitReason,
  type Name,
  type NameRegistry,
  type Node,
  type Process,
  type Via,
} from '@roster/core';
import {
  CRASH,
  ConformanceServer,
  HOLDER_CRASH,
  SERVER_CRASH,
  STOP_NORMAL,
  deferred,
  isThenable,
  nameKey,
  spawnHolder,
  watch,
  within,
  type DownSeen,
  type Holder,
} from './internal/conformance-support.js';

/** What a backend's `setup` hands the suite: the nodes, and where the registry under test is installed on them. */
export interface ConformanceCluster {
  /**
   * One node or more, each with its own instance of the registry under test
   * installed under `key` (`node.installRegistry(key, registry)` or
   * `Node.start({ registries: { [key]: registry } })`). With several nodes
   * they must already see each other (e.g. `harness.waitForMembership()`).
   * The multi-node suite stops the last one near the end (a stopping node
   * must take its names along), so `teardown` must tolerate a stopped node
   * (`node.stop()` and `harness.stopAll()` do).
   */
  readonly nodes: readonly Node[];
  /** The registry key, e.g. `'globals'`: the suite uses `node.registry(key)` and `via(key, name)`. */
  readonly key: string;
  /**
   * Resolves once the views of the names on `nodes` (the suite's live nodes:
   * the multi-node suite stops the last node in one of its last tests) agree
   * with what has been done so far. Default: `registry.sync()` on each of
   * them that has it (and nothing for a registry without `sync`, which is
   * right for a one-node one).
   */
  settle?(nodes: readonly Node[]): Promise<void>;
  /**
   * Whether the registry spans the nodes: a name registered on one node
   * resolves on all of them. Default: true when there is more than one node.
   * When false, only `nodes[0]` is exercised. The multi-node tests (pids of
   * another node, visibility and cleanup everywhere) need it.
   */
  readonly multiNode?: boolean;
  /**
   * Whether the registry emits `('unregistered', name, pid, reason)` when a
   * name stops resolving on a node, so the suite can await that instead of
   * polling `settle()`. Default: true when the registry has `on` and `off`.
   */
  readonly unregisteredEvent?: boolean;
}

/** Options of {@link registryConformance}. */
export interface RegistryConformanceOptions {
  /** Names the `describe` block: `NameRegistry conformance: <name>`. */
  readonly name: string;
  /** Starts the nodes with the registry installed; runs once, before the first test. */
  setup(): Promise<ConformanceCluster>;
  /** Runs once after the last test. Default: `node.stop()` on every node. */
  teardown?(cluster: ConformanceCluster): Promise<void>;
  /** The bound of every single wait (a `DOWN`, a name spreading, a reply). Default 5000 ms. */
  readonly waitMs?: number;
  /** The bound of each test as a whole. Default 60 000 ms. */
  readonly testTimeoutMs?: number;
  /**
   * What the backend offers beyond the required contract, declared up front
   * so that tests of what it lacks are not registered at all (rather than
   * skipped); setup checks the declaration against the registry. Default:
   * everything (several nodes, `whereisNameConsistent`, `members`).
   */
  readonly capabilities?: ConformanceCapabilities;
}

export interface ConformanceCapabilities {
  /** The registry spans several nodes (the cluster's `multiNode`). */
  readonly multiNode?: boolean;
  readonly whereisNameConsistent?: boolean;
  readonly members?: boolean;
  /**
   * `reRegisterName` (`global:re_register_name/2`). Unlike the others it
   * defaults to false: it came later, and a backend opts in by declaring it.
   */
  readonly reRegisterName?: boolean;
}

/**
 * Registers the registry conformance suite with `node:test`: one `describe`
 * block of tests that prove a `NameRegistry` backend keeps the contract.
 * Call it at the top level of a test file; the suite starts your cluster in
 * a `before` hook, runs every test against it one after another, and stops
 * it in an `after` hook.
 *
 * ```ts
 * // packages/my-registry/test/conformance.test.ts
 * import { registryConformance, startCluster, type ClusterHarness } from '@roster/testkit';
 * import { MyRegistry } from '../src/index.js';
 *
 * let harness: ClusterHarness;
 * registryConformance({
 *   name: 'MyRegistry, 3 nodes',
 *   async setup() {
 *     harness = await startCluster({ nodes: 3, transport: 'memory', registries: () => ({ mine: new MyRegistry() }) });
 *     await harness.waitForMembership();
 *     return { nodes: harness.nodes, key: 'mine' };
 *   },
 *   teardown: () => harness.stopAll(),
 * });
 * ```
 *
 * Run it like any test file:
 * `node --conditions=development --import tsx --test packages/my-registry/test/conformance.test.ts`.
 *
 * What it checks (each on every node the registry spans):
 * - `registerName` resolves `'yes'` for a free name and `'no'` for a taken
 *   one (held by another pid or by the same pid, on this node or another);
 *   a pid may hold several names; a refusal changes nothing.
 * - `unregisterName` resolves `undefined`, frees the name everywhere and
 *   leaves the process running; for an unknown name, or a name held on
 *   another node, it resolves and changes nothing; a process that exits
 *   after giving a name up never removes a later holder of that name.
 * - `whereisName` is a synchronous snapshot that answers the real `Pid`
 *   everywhere; `send` returns the holder's pid and delivers, and throws
 *   `BadArgError` for a name nobody holds.
 * - `registered()` lists exactly the live names, without duplicates.
 * - Names are any JSON value, compared canonically (`{a:1,b:2}` is
 *   `{b:2,a:1}`; `'1'`, `1`, `[1,2]` and `[2,1]` are all different).
 * - Invalid names (functions, symbols, bigints, `undefined`, NaN and
 *   infinities, class instances such as `Date` and `Map`, cycles, and any of
 *   these nested) are refused by `registerName`, `unregisterName` (rejected
 *   promises), `whereisName` and `send` (thrown) with a `TypeError` whose
 *   message says what is wrong; so is a via name holding one.
 * - `registerName` rejects with `BadArgError` for a dead pid, a pid of a
 *   previous incarnation of the node, a pid of an unknown node, and (with
 *   several nodes) a live pid of another node.
 * - An extreme name (nested 30 or 100 levels, a 64 KiB string) either works
 *   on every node or is refused with a `TypeError`, every time: a refusal
 *   never crashes or wears down the registry.
 * - A registrant that dies while its registration is in flight gets `'yes'`
 *   or a `BadArgError`, and leaves no ghost anywhere.
 * - After each bad input the registry still works: a fresh registration succeeds.
 * - `GenServer.start(node, …, { name: via(key, name) })` registers the name
 *   before `init`, and it resolves on every node; `call`, `cast`, `send`,
 *   `monitor` and `GenServer.stop` through the via name work from every node;
 *   a second start under the name rejects with `AlreadyStartedError`
 *   carrying the holder's pid, without running `init`.
 * - The name goes on every kind of exit (a callback's `stop('normal')`, a
 *   body returning, a callback or body throwing, `exit(pid, 'kill')`,
 *   `exit(pid, 'shutdown')`, `GenServer.stop` with the default or a custom
 *   reason, a linked process dying): every monitor, on every node, gets a
 *   `DOWN` with that reason; a monitor on the holder's node finds the name
 *   already gone (`whereisName` and `registered()`) when its `DOWN` arrives;
 *   the other nodes drop it (awaited through the `unregistered` event, else
 *   by polling `settle()`); calls through the name then fail `noproc`, sends
 *   throw `BadArgError`, and the name can be taken again from another node.
 * - Concurrent registrations of one name from every node: exactly one wins,
 *   and every node agrees on it.
 * - (Several nodes) a node that stops takes its processes' names with it:
 *   every other node drops them, and its monitors get their `DOWN`s.
 * - Optional capabilities, when every node's registry has them:
 *   `whereisNameConsistent` answers the holder from every node without
 *   waiting for `settle`, and `undefined` once it is gone; `members()`
 *   lists every node; `reRegisterName` (declared with `capabilities.reRegisterName`)
 *   moves a name to another pid at once, everywhere, the former holder left
 *   running and its exit no longer touching the name.
 * - No ghosts: once the suite's processes are gone, no node resolves or
 *   lists any name the suite used, and every listed name resolves to a live process.
 *
 * The tests share the cluster and run in order; each cleans up after itself
 * (kills what it started and waits for its names to go everywhere). Every
 * wait is bounded by `waitMs`; nothing sleeps where an event can be awaited
 * (the one poll is `settle()` for a multi-node registry without an
 * `unregistered` event).
 */
export function registryConformance(options: RegistryConformanceOptions): void {
  if (typeof options?.setup !== 'function') throw new TypeError('registryConformance: options.setup must be a function');
  if (typeof options.name !== 'string' || options.name === '') throw new TypeError('registryConformance: options.name must be a non-empty string');
  const waitMs = options.waitMs ?? 5000;
  const testTimeout = options.testTimeoutMs ?? 60_000;
  let suite: Suite | undefined;
  const current = (): Suite => {
    if (suite === undefined) throw new Error('registryConformance: setup did not complete');
    return suite;
  };
  /** A test with a scope that cleans up what it started, whether it passed or not. */
  const offers = { multiNode: true, whereisNameConsistent: true, members: true, reRegisterName: false, ...options.capabilities };
  const check = (
    title: string,
    body: (s: Scope, t: TestContext) => Promise<void>,
    needs?: 'multi' | 'whereisNameConsistent' | 'members' | 'reRegisterName',
  ): void => {
    // A test of a capability the backend does not declare is not part of its suite.
    if (needs === 'multi' && !offers.multiNode) return;
    if (needs !== undefined && needs !== 'multi' && !offers[needs]) return;
    test(title, { timeout: testTimeout }, async (t) => {
      const s = current();
      if (needs === 'multi' && !s.multi) throw new Error('capabilities.multiNode is declared, but the cluster is not multi-node');
      if (needs === 'whereisNameConsistent' || needs === 'members' || needs === 'reRegisterName') {
        const missing = s.nodes.find((node) => typeof s.reg(node)[needs] !== 'function');
        if (missing !== undefined) throw new Error(`capabilities.${needs} is declared, but the registry on ${missing.name} has no ${needs}()`);
      }
      const scope = new Scope(s);
      let failed = true;
      try {
        await body(scope, t);
        failed = false;
      } finally {
        try {
          await scope.close();
        } catch (error) {
          // A failing test's own error is the one worth reading.
          if (!failed) throw error;
        }
      }
    });
  };

  describe(`NameRegistry conformance: ${options.name}`, { concurrency: false }, () => {
    let cluster: ConformanceCluster | undefined;
    before(async () => {
      cluster = await options.setup();
      suite = new Suite(cluster, waitMs);
      await suite.settle();
    });
    after(async () => {
      if (cluster === undefined) return;
      if (options.teardown !== undefined) await options.teardown(cluster);
      else await Promise.allSettled(cluster.nodes.map((node) => node.stop()));
    });

    // ---- registerName / unregisterName / whereisName / send / registered ----------------

    check("registerName: 'yes' for a free name, 'no' once taken (by another pid or the same one); a pid may hold several names", async (s) => {
      for (const node of s.nodes) {
        const r = s.reg(node);
        const a = s.holder(node);
        const b = s.holder(node);
        const first = s.name('taken');
        const second = s.name('second');
        assert.strictEqual(await r.registerName(first, a.pid), 'yes', `${node.name}: a free name`);
        assert.strictEqual(await r.registerName(first, b.pid), 'no', `${node.name}: a name held by another pid`);
        assert.strictEqual(await r.registerName(first, a.pid), 'no', `${node.name}: a name held by the same pid`);
        assert.strictEqual(await r.registerName(second, a.pid), 'yes', `${node.name}: a second name for the same pid`);
        assertPid(r.whereisName(first), a.pid, `${node.name}: the first name after the refusals`);
        assertPid(r.whereisName(second), a.pid, `${node.name}: the second name`);
        assert.ok(node.isAlive(b.pid), 'a refused registrant is left running');
        await s.settle();
        for (const other of s.nodes) {
          assertPid(s.reg(other).whereisName(first), a.pid, `${other.name} resolves ${nameKey(first)}`);
          assertPid(s.reg(other).whereisName(second), a.pid, `${other.name} resolves ${nameKey(second)}`);
          if (other === node) continue;
          const c = s.holder(other);
          assert.strictEqual(await s.reg(other).registerName(first, c.pid), 'no', `${other.name}: a name held on ${node.name}`);
        }
        await s.settle();
        for (const other of s.nodes) assertPid(s.reg(other).whereisName(first), a.pid, `${other.name}: still the first holder`);
        // Both names go when their holder exits.
        const gone = s.nodes.map((other) => [s.waitGone(other, first), s.waitGone(other, second)]).flat();
        a.crash();
        await Promise.all(gone);
      }
    });

    check('unregisterName frees the name everywhere and resolves undefined, from any node (global:unregister_name); unknown names resolve and change nothing', async (s) => {
      for (const node of s.nodes) {
        const r = s.reg(node);
        const a = s.holder(node);
        const name = s.name('unregister');
        assert.strictEqual(await r.registerName(name, a.pid), 'yes');
        await s.settle();
        const gone = s.nodes.map((other) => s.waitGone(other, name));
        assert.strictEqual(await r.unregisterName(name), undefined, 'unregisterName resolves with nothing');
        assert.strictEqual(r.whereisName(name), undefined, `${node.name}: gone at once on the holder's node`);
        assert.ok(!s.lists(node, name), `${node.name}: registered() no longer lists it`);
        assert.ok(node.isAlive(a.pid), 'unregistering leaves the process running');
        await Promise.all(gone);
        assert.strictEqual(await r.unregisterName(name), undefined, 'unregistering it again resolves');
        assert.strictEqual(await r.unregisterName(s.name('never-registered')), undefined, 'an unknown name resolves');
        // Free again, for anyone.
        const b = s.holder(node);
        assert.strictEqual(await r.registerName(name, b.pid), 'yes', 'the name is free again');
        await s.settle();
        // global:unregister_name works from any node: when it resolves, no member resolves the name.
        const other = s.nodes.find((candidate) => candidate !== node);
        if (other !== undefined) {
          assert.strictEqual(await s.reg(other).unregisterName(name), undefined, `${other.name}: unregistering a name held on ${node.name} resolves`);
          for (const each of s.nodes) assert.strictEqual(s.reg(each).whereisName(name), undefined, `${each.name}: unregistered from ${other.name}, gone everywhere`);
          const c = s.holder(other);
          assert.strictEqual(await s.reg(other).registerName(name, c.pid), 'yes', `${other.name}: the name it unregistered is free for it at once`);
          await s.reg(other).unregisterName(name);
        }
        assert.ok(node.isAlive(b.pid));
      }
    });

    check('a process that gave its name up and exits later never removes the next holder', async (s) => {
      const node = s.nodes[0]!;
      const later = s.nodes[s.nodes.length - 1]!;
      const r = s.reg(node);
      const a = s.holder(node);
      const name = s.name('fenced');
      const kept = s.name('kept');
      assert.strictEqual(await r.registerName(name, a.pid), 'yes');
      assert.strictEqual(await r.registerName(kept, a.pid), 'yes');
      await r.unregisterName(name);
      await s.waitAllGone(name);
      const b = s.holder(later);
      assert.strictEqual(await s.reg(later).registerName(name, b.pid), 'yes', `${later.name} takes the name over`);
      await s.settle();
      const keptGone = s.nodes.map((other) => s.waitGone(other, kept));
      const { seen } = await watch(node, a.pid, s.waitMs);
      a.crash();
      await seen;
      await Promise.all(keptGone);
      await s.settle();
      for (const other of s.nodes) {
        assertPid(s.reg(other).whereisName(name), b.pid, `${other.name}: the new holder survives the old one's exit`);
        assert.strictEqual(s.reg(other).whereisName(kept), undefined, `${other.name}: the name the old one kept went with it`);
      }
    });

    check('whereisName is a synchronous snapshot answering the real pid on every node, undefined for unknown names', async (s) => {
      for (const node of s.nodes) {
        const a = s.holder(node);
        const name = s.name('whereis');
        assert.strictEqual(s.reg(node).whereisName(name), undefined);
        assert.strictEqual(await s.reg(node).registerName(name, a.pid), 'yes');
        await s.settle();
        for (const other of s.nodes) {
          const answer = s.reg(other).whereisName(name);
          assert.ok(!isThenable(answer), `${other.name}: whereisName must answer synchronously, not with a promise`);
          assert.ok(answer instanceof Pid, `${other.name}: whereisName answers a Pid, got ${String(answer)}`);
          assertPid(answer, a.pid, `${other.name}: the registrant's own pid`);
          assert.strictEqual(answer.node, node.name, `${other.name}: the pid names the node the process runs on`);
          assertPid(other.whereis(via(s.key, name)), a.pid, `${other.name}: node.whereis(via) agrees`);
          assert.strictEqual(s.reg(other).whereisName(s.name('unknown')), undefined);
        }
      }
    });

    check('send returns the holder pid and delivers, from every node; a name nobody holds throws BadArgError', async (s) => {
      for (const owner of s.nodes) {
        const a = s.holder(owner);
        const name = s.name('send');
        assert.strictEqual(await s.reg(owner).registerName(name, a.pid), 'yes');
        await s.settle();
        for (const from of s.nodes) {
          const message = { conformance: 'registry.send', from: from.name, payload: [1, 'x', { nested: true }] };
          const returned = s.reg(from).send(name, message);
          assertPid(returned, a.pid, `${from.name}: send returns the pid it sent to`);
          await a.next((m) => isDeepStrictEqual(m, message), `the message sent from ${from.name}`);
          const viaMessage = { conformance: 'node.send(via)', from: from.name };
          from.send(via(s.key, name), viaMessage);
          await a.next((m) => isDeepStrictEqual(m, viaMessage), `the message sent through via from ${from.name}`);
        }
        for (const from of s.nodes) {
          const unknown = s.name('send-unknown');
          assert.throws(() => s.reg(from).send(unknown, 'lost'), BadArgError, `${from.name}: registry.send to an unknown name`);
          assert.throws(() => from.send(via(s.key, unknown), 'lost'), BadArgError, `${from.name}: node.send(via) to an unknown name`);
        }
      }
    });

    check('registered() lists exactly the live names, on every node', async (s) => {
      await s.settle();
      const baseline = new Map(s.nodes.map((node) => [node, s.listed(node)]));
      const holders: Holder[] = [];
      const names: Name[][] = [];
      for (const node of s.nodes) {
        const holder = s.holder(node);
        const own = [s.name('listed'), s.name('listed'), s.name('listed')];
        for (const name of own) assert.strictEqual(await s.reg(node).registerName(name, holder.pid), 'yes');
        holders.push(holder);
        names.push(own);
      }
      const expectListed = async (live: Name[], when: string): Promise<void> => {
        await s.settle();
        for (const node of s.nodes) {
          const listed = s.reg(node).registered();
          assert.ok(Array.isArray(listed), 'registered() answers an array');
          const keys = listed.map((name) => nameKey(name));
          assert.ok(!keys.includes('<invalid>'), `${node.name}: registered() lists only valid names`);
          assert.strictEqual(new Set(keys).size, keys.length, `${node.name}: registered() lists each name once: ${keys.join(' ')}`);
          const expected = new Set([...baseline.get(node)!, ...live.map((name) => nameKey(name))]);
          assert.deepStrictEqual(new Set(keys), expected, `${node.name} ${when}`);
        }
      };
      await expectListed(names.flat(), 'after the registrations');
      // Unregister one name of the first holder, and let the last holder exit with its names.
      const [dropped] = names[0]!;
      await s.reg(s.nodes[0]!).unregisterName(dropped!);
      const exiting = holders[holders.length - 1]!;
      const exitingNames = names[names.length - 1]!;
      const gone = [dropped!, ...exitingNames].flatMap((name) => s.nodes.map((node) => s.waitGone(node, name)));
      exiting.finish();
      await Promise.all(gone);
      const live = names.flat().filter((name) => name !== dropped && !exitingNames.includes(name));
      await expectListed(live, 'after an unregistration and an exit');
    });

    check('names are any JSON value, compared canonically', async (s) => {
      // [as registered, an equal spelling]: every row is a different name.
      const rows: [Name, Name][] = [
        [{ a: 1, b: 2 }, { b: 2, a: 1 }],
        [[1, 'x'], [1, 'x']],
        [42, 42],
        [0, 0],
        [-3.5, -3.5],
        [1e21, 1e21],
        [null, null],
        [true, true],
        [false, false],
        ['', ''],
        ['ünïcødé "quoted" \\ \n', 'ünïcødé "quoted" \\ \n'],
        ['1', '1'],
        ['true', 'true'],
        ['null', 'null'],
        [[], []],
        [{}, {}],
        [[1, 2], [1, 2]],
        [[2, 1], [2, 1]],
        [{ a: [1] }, { a: [1] }],
        [{ a: 1 }, { a: 1 }],
        [{ a: '1' }, { a: '1' }],
        [
          { outer: { b: [1, { d: 2, c: 1 }], a: null }, z: [{ y: false, x: true }] },
          { z: [{ x: true, y: false }], outer: { a: null, b: [1, { c: 1, d: 2 }] } },
        ],
      ];
      const keys = rows.map(([name]) => nameKey(name));
      assert.strictEqual(new Set(keys).size, rows.length, 'the rows are distinct names');
      const holders = rows.map((_, index) => s.holder(s.nodes[index % s.nodes.length]!));
      const rivals = new Map(s.nodes.map((node) => [node, s.holder(node)]));
      for (const [index, [name, spelling]] of rows.entries()) {
        const holder = holders[index]!;
        const r = s.reg(holder.node);
        s.uses(name);
        assert.strictEqual(await r.registerName(name, holder.pid), 'yes', `${JSON.stringify(name)} is a name of its own`);
        assertPid(r.whereisName(spelling), holder.pid, `${JSON.stringify(spelling)} is ${JSON.stringify(name)}`);
        assert.strictEqual(await r.registerName(spelling, rivals.get(holder.node)!.pid), 'no', `${JSON.stringify(spelling)} is taken`);
      }
      await s.settle();
      for (const node of s.nodes) {
        for (const [index, [name, spelling]] of rows.entries()) {
          const holder = holders[index]!;
          assertPid(s.reg(node).whereisName(name), holder.pid, `${node.name}: ${JSON.stringify(name)}`);
          assertPid(s.reg(node).whereisName(spelling), holder.pid, `${node.name}: ${JSON.stringify(spelling)}`);
        }
        const listed = new Set(s.reg(node).registered().map((name) => nameKey(name)));
        for (const key of keys) assert.ok(listed.has(key), `${node.name}: registered() lists ${key}`);
      }
      // Unregistering by the other spelling frees the name everywhere.
      for (const [index, [name, spelling]] of rows.entries()) {
        const holder = holders[index]!;
        const gone = s.nodes.map((node) => s.waitGone(node, name));
        await s.reg(holder.node).unregisterName(spelling);
        await Promise.all(gone);
      }
    });

    // ---- bad input --------------------------------------------------------------------

    check('invalid names are refused with a TypeError saying what is wrong, by every operation; the registry still works', async (s) => {
      for (const node of s.nodes) {
        const r = s.reg(node);
        const a = s.holder(node);
        const before = s.listed(node);
        for (const { label, value, says } of invalidNames()) {
          const bad = value as Name;
          const what = `${node.name}: ${label}`;
          await assertRejectsTypeError(() => r.registerName(bad, a.pid), says, `${what}: registerName`);
          assert.throws(() => r.whereisName(bad), typeErrorSaying(says, `${what}: whereisName`));
          await assertRejectsTypeError(() => r.unregisterName(bad), says, `${what}: unregisterName`);
          assert.throws(() => r.send(bad, 'message'), typeErrorSaying(says, `${what}: send`));
          assert.throws(() => via(s.key, bad), typeErrorSaying(says, `${what}: via()`));
          let initRan = false;
          await assertRejectsTypeError(
            () => GenServer.start(node, ConformanceServer, { onInit: () => (initRan = true) }, { name: { via: s.key, name: bad } }),
            says,
            `${what}: GenServer.start under the via name`,
          );
          assert.ok(!initRan, `${what}: init must not run when the name is refused`);
          assert.deepStrictEqual(s.listed(node), before, `${what}: registered() is unchanged`);
        }
        assert.ok(node.isAlive(a.pid), 'the would-be registrant is left running');
        await s.stillWorks(node);
      }
    });

    check('an extreme name (nested 30 or 100 levels, 64 KiB long) works everywhere or is refused with a TypeError, again and again; the registry survives it', async (s) => {
      const nested = (levels: number): Name => {
        let name: Name = 'core';
        for (let level = 0; level < levels; level++) name = level % 2 === 0 ? [name] : { level: name };
        return name;
      };
      const extremes: [string, Name][] = [
        ['nested 30 levels', nested(30)],
        ['nested 100 levels', nested(100)],
        ['a 64 KiB string', `conformance-long-${'x'.repeat(64 * 1024)}`],
      ];
      for (const node of s.nodes) {
        for (const [label, name] of extremes) {
          const r = s.reg(node);
          const a = s.holder(node);
          const what = `${node.name}: a name ${label}`;
          s.uses(name);
          let answer: 'yes' | 'no' | undefined;
          try {
            answer = await within(r.registerName(name, a.pid), `${what}: registerName`, s.waitMs);
          } catch (error) {
            assert.ok(error instanceof TypeError, `${what}: a name the registry cannot carry must be refused with a TypeError, got ${String(error)}`);
            assert.strictEqual(r.whereisName(name), undefined, `${what}: refused, yet registered`);
            // Refused the same way every time: a refusal must not wear the registry down (crash, restart, give up).
            for (let attempt = 0; attempt < 12; attempt++) {
              await assert.rejects(within(r.registerName(name, a.pid), `${what}: registerName again`, s.waitMs), TypeError, `${what}: attempt ${attempt + 2}`);
            }
            if (typeof r.whereisNameConsistent === 'function') {
              try {
                const found = await within(r.whereisNameConsistent(name), `${what}: whereisNameConsistent`, s.waitMs);
                assert.strictEqual(found, undefined, `${what}: whereisNameConsistent of a refused name`);
              } catch (lookup) {
                assert.ok(lookup instanceof TypeError, `${what}: whereisNameConsistent must answer undefined or refuse with a TypeError, got ${String(lookup)}`);
              }
            }
          }
          if (answer !== undefined) {
            assert.strictEqual(answer, 'yes', `${what}: a free name`);
            await s.settle();
            for (const other of s.nodes) assertPid(s.reg(other).whereisName(name), a.pid, `${other.name}: resolves the name ${label}`);
            const consistent = r.whereisNameConsistent;
            if (typeof consistent === 'function') {
              for (const other of s.nodes) {
                assertPid(await within(s.reg(other).whereisNameConsistent!(name), 'whereisNameConsistent', s.waitMs), a.pid, `${other.name}: whereisNameConsistent, the name ${label}`);
              }
            }
            const gone = s.waitAllGone(name);
            await r.unregisterName(name);
            await gone;
          }
          await s.stillWorks(node);
          // Peers still talk to this node: a name registered elsewhere reaches it.
          for (const other of s.nodes) {
            if (other === node) continue;
            const b = s.holder(other);
            const probe = s.name('after-extreme');
            assert.strictEqual(await s.reg(other).registerName(probe, b.pid), 'yes');
            await s.settle();
            assertPid(r.whereisName(probe), b.pid, `${node.name}: still in touch with ${other.name}`);
          }
        }
      }
    });

    check('registerName rejects a pid that is not alive with BadArgError (dead, earlier incarnation, unknown node); the registry still works', async (s) => {
      for (const node of s.nodes) {
        const r = s.reg(node);
        const dead = s.holder(node);
        const { seen } = await watch(node, dead.pid, s.waitMs);
        dead.finish();
        await seen;
        assert.ok(!node.isAlive(dead.pid));
        const pids: [string, Pid][] = [
          ['a pid whose process exited', dead.pid],
          ['a pid of an earlier incarnation of the node', new Pid(node.name, `${node.creation}-earlier`, dead.pid.id)],
          ['a pid of this node that never existed', new Pid(node.name, node.creation, 2 ** 31 - 7)],
          ['a pid of an unknown node', new Pid('conformance-no-such-node', 'gone', 1)],
        ];
        for (const [what, pid] of pids) {
          const name = s.name('not-alive');
          await assert.rejects(() => r.registerName(name, pid), BadArgError, `${node.name}: ${what}`);
          assert.strictEqual(r.whereisName(name), undefined, `${node.name}: ${what} holds nothing`);
        }
        await s.settle();
        for (const other of s.nodes) {
          for (const name of s.names('not-alive')) assert.strictEqual(s.reg(other).whereisName(name), undefined, `${other.name}: nothing leaked`);
        }
        await s.stillWorks(node);
      }
    });

    check('registerName rejects a live pid of another node with BadArgError; the registry still works', async (s) => {
      for (const node of s.nodes) {
        for (const other of s.nodes) {
          if (other === node) continue;
          const foreign = s.holder(other);
          const name = s.name('foreign');
          await assert.rejects(() => s.reg(node).registerName(name, foreign.pid), BadArgError, `${node.name} registering a pid of ${other.name}`);
          await s.settle();
          for (const any of s.nodes) assert.strictEqual(s.reg(any).whereisName(name), undefined, `${any.name}: nothing registered`);
          assert.ok(other.isAlive(foreign.pid), 'the foreign process is left running');
        }
        await s.stillWorks(node);
      }
    }, 'multi');

    // ---- via names and GenServer ---------------------------------------------------------

    check('GenServer.start with { name: via(key, name) } registers before init, and the name resolves on every node', async (s) => {
      for (const host of s.nodes) {
        const name = s.name('via-start');
        let resolvedInInit: Pid | undefined;
        let inits = 0;
        const pid = await GenServer.start(
          host,
          ConformanceServer,
          {
            onInit: () => {
              inits++;
              resolvedInInit = s.reg(host).whereisName(name);
            },
          },
          { name: via(s.key, name) },
        );
        s.track(pid);
        assert.strictEqual(inits, 1);
        assertPid(resolvedInInit, pid, `${host.name}: the name is registered before init runs`);
        assertPid(s.reg(host).whereisName(name), pid, `${host.name}: the name resolves once start resolves`);
        await s.settle();
        for (const node of s.nodes) {
          assertPid(s.reg(node).whereisName(name), pid, `${node.name}: whereisName`);
          assertPid(node.whereis(via(s.key, name)), pid, `${node.name}: node.whereis(via)`);
        }
      }
    });

    check('call, cast, send, monitor and GenServer.stop through a via name work from every node', async (s) => {
      for (const host of s.nodes) {
        const name = s.name('via-ops');
        const dest = via(s.key, name);
        const pid = await s.startServer(host, dest);
        await s.settle();
        for (const from of s.nodes) {
          const request = { from: from.name, payload: [1, 'x', { deep: null }] };
          assert.deepStrictEqual(await from.call(dest, { echo: request }, { timeout: s.waitMs }), request, `${from.name}: node.call(via)`);
          assert.deepStrictEqual(await GenServer.call(from, dest, { echo: from.name }, { timeout: s.waitMs }), from.name, `${from.name}: GenServer.call(via)`);
          // From one process, so cast, send and call are ordered (FIFO per sender).
          const seen = await s.inProcess(from, async (self) => {
            self.cast(dest, { from: from.name });
            GenServer.cast(self, dest, { from: from.name, again: true });
            self.send(dest, { from: from.name });
            return self.call<unknown[]>(dest, 'seen', { timeout: s.waitMs });
          });
          for (const expected of [{ cast: { from: from.name } }, { cast: { from: from.name, again: true } }, { info: { from: from.name } }]) {
            assert.ok(seen.some((entry) => isDeepStrictEqual(entry, expected)), `${from.name}: the server got ${JSON.stringify(expected)}; it saw ${JSON.stringify(seen)}`);
          }
        }
        const downs = await s.watchEverywhere(dest, name);
        const gone = s.nodes.map((node) => s.waitGone(node, name));
        const stopper = s.nodes[(s.nodes.indexOf(host) + 1) % s.nodes.length]!;
        await within(GenServer.stop(stopper, dest), `GenServer.stop(via) from ${stopper.name}`, s.waitMs);
        await s.expectDowns(downs, host, pid, (reason) => reason === 'normal', "'normal'");
        await Promise.all(gone);
      }
    });

    check('a second start under a taken via name rejects with AlreadyStartedError carrying the holder pid, without running init', async (s) => {
      const host = s.nodes[0]!;
      const name = s.name('already');
      const dest = via(s.key, name);
      const holder = await s.startServer(host, dest);
      await s.settle();
      for (const from of s.nodes) {
        let initRan = false;
        await assert.rejects(
          () => GenServer.start(from, ConformanceServer, { onInit: () => (initRan = true) }, { name: dest }),
          (error: unknown) => {
            assert.ok(error instanceof AlreadyStartedError, `${from.name}: expected AlreadyStartedError, got ${String(error)}`);
            assertPid(error.pid, holder, `${from.name}: AlreadyStartedError.pid is the holder`);
            return true;
          },
        );
        assert.ok(!initRan, `${from.name}: init must not run`);
        const other = s.holder(from);
        assert.strictEqual(await s.reg(from).registerName(name, other.pid), 'no', `${from.name}: registerName agrees`);
      }
      await s.settle();
      assert.ok(host.isAlive(holder), 'the holder is left running');
      for (const node of s.nodes) assertPid(s.reg(node).whereisName(name), holder, `${node.name}: still the first holder`);
      await s.stillWorks(host);
    });

    for (const [index, exit] of exitCases().entries()) {
      check(`the name is cleared on exit: ${exit.title}; every monitor gets DOWN with the reason, the holder's node first drops the name`, async (s) => {
        const host = s.nodes[index % s.nodes.length]!;
        const remote = s.nodes[(index + 1) % s.nodes.length]!;
        const name = s.name(`exit-${index}`);
        const dest = via(s.key, name);
        let pid: Pid;
        let holder: Holder | undefined;
        if (exit.process === 'server') {
          pid = await s.startServer(host, dest);
        } else {
          holder = s.holder(host);
          pid = holder.pid;
          assert.strictEqual(await s.reg(host).registerName(name, pid), 'yes');
        }
        await s.settle();
        const downs = await s.watchEverywhere(dest, name);
        const gone = s.nodes.map((node) => s.waitGone(node, name));
        await exit.cause({ s, host, remote, pid, dest, holder });
        await s.expectDowns(downs, host, pid, exit.reason, exit.expected);
        await Promise.all(gone);
        for (const node of s.nodes) {
          assert.strictEqual(s.reg(node).whereisName(name), undefined, `${node.name}: whereisName`);
          assert.ok(!s.lists(node, name), `${node.name}: registered() no longer lists it`);
          assert.throws(() => s.reg(node).send(name, 'late'), BadArgError, `${node.name}: send to the dead name`);
          await assert.rejects(
            () => node.call(dest, { echo: 1 }, { timeout: s.waitMs }),
            (error: unknown) => error instanceof CallError && error.reason === 'noproc',
            `${node.name}: a call through the dead name fails noproc`,
          );
        }
        // The name is free for anyone: take it again from another node.
        const again = await s.startServer(remote, dest);
        await s.settle();
        for (const node of s.nodes) assertPid(s.reg(node).whereisName(name), again, `${node.name}: the new holder`);
      });
    }

    check('a registrant that dies while its registration is in flight leaves no ghost', async (s) => {
      for (const node of s.nodes) {
        for (const how of ['kill', 'crash'] as const) {
          const a = s.holder(node);
          const name = s.name('dies-registering');
          const registering = s.reg(node).registerName(name, a.pid);
          if (how === 'kill') node.exit(a.pid, 'kill');
          else a.crash();
          let answer: string;
          try {
            answer = await within(registering, 'the registration', s.waitMs);
          } catch (error) {
            assert.ok(error instanceof BadArgError, `${node.name}: a registration whose registrant died answers 'yes' or rejects with BadArgError, got ${String(error)}`);
            answer = 'badarg';
          }
          assert.ok(answer === 'yes' || answer === 'badarg', `${node.name}: got ${answer}`);
          await s.waitAllGone(name);
          await s.settle();
          for (const other of s.nodes) {
            assert.strictEqual(s.reg(other).whereisName(name), undefined, `${other.name}: ghost of a registrant that died registering (${how})`);
            assert.ok(!s.lists(other, name), `${other.name}: registered() lists a ghost (${how})`);
          }
          const b = s.holder(node);
          assert.strictEqual(await s.reg(node).registerName(name, b.pid), 'yes', `${node.name}: the name is free`);
        }
      }
    });

    check('concurrent registrations of one name from every node: exactly one wins, and every node agrees', async (s) => {
      for (let round = 0; round < 3; round++) {
        const name = s.name('race');
        const contenders = s.nodes.flatMap((node) => [s.holder(node), s.holder(node)]);
        const answers = await within(
          Promise.all(contenders.map((holder) => s.reg(holder.node).registerName(name, holder.pid))),
          'the concurrent registrations',
          s.waitMs,
        );
        const winners = contenders.filter((_, index) => answers[index] === 'yes');
        assert.ok(answers.every((answer) => answer === 'yes' || answer === 'no'), `answers: ${answers.join(', ')}`);
        assert.strictEqual(winners.length, 1, `round ${round}: exactly one 'yes' among ${answers.join(', ')}`);
        await s.settle();
        for (const node of s.nodes) assertPid(s.reg(node).whereisName(name), winners[0]!.pid, `${node.name}: the winner`);
        for (const holder of contenders) assert.ok(holder.node.isAlive(holder.pid), 'losers are left running');
      }
    });

    // ---- optional capabilities ------------------------------------------------------------

    check('whereisNameConsistent answers the holder from every node, and undefined once it is gone', async (s) => {
      const consistent = (node: Node, name: Name): Promise<Pid | undefined> =>
        within(s.reg(node).whereisNameConsistent!(name), `whereisNameConsistent on ${node.name}`, s.waitMs);
      for (const host of s.nodes) {
        const a = s.holder(host);
        const name = s.name('consistent');
        assert.strictEqual(await s.reg(host).registerName(name, a.pid), 'yes');
        // No settle: a consistent read asks whoever knows.
        for (const node of s.nodes) assertPid(await consistent(node, name), a.pid, `${node.name}: whereisNameConsistent`);
        for (const node of s.nodes) assert.strictEqual(await consistent(node, s.name('consistent-unknown')), undefined, `${node.name}: unknown name`);
        await assertRejectsTypeError(() => s.reg(host).whereisNameConsistent!(Number.NaN), /NaN|finite/i, `${host.name}: invalid name`);
        const { seen } = await watch(host, a.pid, s.waitMs);
        a.crash();
        await seen;
        for (const node of s.nodes) assert.strictEqual(await consistent(node, name), undefined, `${node.name}: gone, without waiting for settle`);
      }
    }, 'whereisNameConsistent');

    check('reRegisterName moves a name to another pid at once; the former holder runs on, and its exit leaves the name alone', async (s) => {
      for (const host of s.nodes) {
        const r = s.reg(host);
        const a = s.holder(host);
        const b = s.holder(host);
        const name = s.name('re-register');
        assert.strictEqual(await r.reRegisterName!(name, a.pid), 'yes', `${host.name}: a free name`);
        assertPid(r.whereisName(name), a.pid, `${host.name}: registered by reRegisterName`);
        assert.strictEqual(await r.reRegisterName!(name, b.pid), 'yes', `${host.name}: a held name`);
        assertPid(r.whereisName(name), b.pid, `${host.name}: moved at once`);
        assert.ok(host.isAlive(a.pid), 'the former holder keeps running');
        await s.settle();
        for (const node of s.nodes) assertPid(s.reg(node).whereisName(name), b.pid, `${node.name}: the new holder`);
        const { seen } = await watch(host, a.pid, s.waitMs);
        a.crash();
        await seen;
        await s.settle();
        for (const node of s.nodes) assertPid(s.reg(node).whereisName(name), b.pid, `${node.name}: the former holder's exit left it alone`);
        const gone = s.nodes.map((node) => s.waitGone(node, name));
        b.crash();
        await Promise.all(gone);
      }
    }, 'reRegisterName');

    check('members lists every node, on every node', async (s) => {
      const all = new Set(s.nodes.map((node) => node.name));
      for (const node of s.nodes) assert.deepStrictEqual(new Set(s.reg(node).members!()), all, `${node.name}: members()`);
    }, 'members');

    check("a node that stops takes its processes' names with it, on every other node", async (s) => {
      const leaving = s.nodes[s.nodes.length - 1]!;
      const staying = s.nodes.filter((node) => node !== leaving);
      const holder = s.holder(leaving);
      const held = s.name('node-stop-holder');
      assert.strictEqual(await s.reg(leaving).registerName(held, holder.pid), 'yes');
      const served = s.name('node-stop-server');
      const server = await s.startServer(leaving, via(s.key, served));
      await s.settle();
      const downs: Promise<DownSeen>[] = [];
      for (const node of staying) {
        downs.push((await watch(node, holder.pid, s.waitMs)).seen, (await watch(node, via(s.key, served), s.waitMs)).seen);
      }
      const gone = staying.flatMap((node) => [s.waitGone(node, held), s.waitGone(node, served)]);
      s.suite.remove(leaving);
      await within(leaving.stop(), `${leaving.name} to stop`, s.waitMs * 2);
      await Promise.all(gone);
      for (const seen of downs) {
        const { down } = await seen;
        assert.ok(down.pid.equals(holder.pid) || down.pid.equals(server), `a DOWN for ${down.pid.key}`);
      }
      await s.settle();
      for (const node of staying) {
        for (const name of [held, served]) {
          assert.strictEqual(s.reg(node).whereisName(name), undefined, `${node.name}: ${nameKey(name)} outlived its node`);
          assert.ok(!s.lists(node, name), `${node.name}: registered() lists ${nameKey(name)} of a stopped node`);
        }
        await s.stillWorks(node);
      }
    }, 'multi');

    // ---- no ghosts ----------------------------------------------------------------------

    check('no ghosts: no node resolves or lists a name of a dead process', async (s) => {
      await s.settle();
      for (const node of s.nodes) {
        const r = s.reg(node);
        for (const name of s.suite.used) {
          assert.strictEqual(r.whereisName(name), undefined, `${node.name}: ${nameKey(name)} outlived its holder`);
        }
        for (const name of r.registered()) {
          const pid = r.whereisName(name);
          assert.ok(pid !== undefined, `${node.name}: registered() lists ${nameKey(name)} but whereisName does not resolve it`);
          const owner = s.nodes.find((candidate) => candidate.name === pid.node && candidate.creation === pid.creation);
          if (owner !== undefined) assert.ok(owner.isAlive(pid), `${node.name}: ${nameKey(name)} is held by ${pid.key}, which is dead`);
        }
      }
    });
  });
}

// ---- what the tests share -----------------------------------------------------------------

/** The cluster under test and what every test needs from it. */
class Suite {
  nodes: readonly Node[];
  readonly key: string;
  readonly multi: boolean;
  readonly events: boolean;
  /** Every name a test used: none may outlive the suite's processes. */
  readonly used: Name[] = [];
  readonly #settle: () => Promise<void>;
  readonly #tag = Math.random().toString(36).slice(2, 8);
  #counter = 0;

  constructor(
    readonly cluster: ConformanceCluster,
    readonly waitMs: number,
  ) {
    if (typeof cluster !== 'object' || cluster === null) throw new TypeError('registryConformance: setup must resolve with a ConformanceCluster');
    if (!Array.isArray(cluster.nodes) || cluster.nodes.length === 0) throw new TypeError('registryConformance: the cluster needs at least one node');
    if (typeof cluster.key !== 'string' || cluster.key === '') throw new TypeError('registryConformance: the cluster needs the registry key');
    const multi = cluster.multiNode ?? cluster.nodes.length > 1;
    if (multi && cluster.nodes.length < 2) throw new TypeError('registryConformance: multiNode needs at least two nodes');
    this.multi = multi;
    this.nodes = multi ? [...cluster.nodes] : [cluster.nodes[0]!];
    this.key = cluster.key;
    const registries = this.nodes.map((node) => node.registry(cluster.key));
    if (new Set(registries).size !== registries.length) {
      throw new TypeError('registryConformance: every node needs its own registry instance (a registry serves one node)');
    }
    if (multi && cluster.settle === undefined && !registries.every((registry) => typeof registry.sync === 'function')) {
      throw new TypeError('registryConformance: a multi-node registry without sync() needs cluster.settle()');
    }
    this.events =
      cluster.unregisteredEvent ??
      registries.every((registry) => typeof (registry as Partial<Emitter>).on === 'function' && typeof (registry as Partial<Emitter>).off === 'function');
    this.#settle =
      cluster.settle === undefined
        ? async () => {
            await Promise.all(this.nodes.map((node) => this.reg(node).sync?.()));
          }
        : () => cluster.settle!(this.nodes);
  }

  reg(node: Node): NameRegistry {
    return node.registry(this.key);
  }

  settle(): Promise<void> {
    return within(this.#settle(), 'settle()', this.waitMs);
  }

  /** Takes a node out of the suite (before a test stops it); the default `settle` skips it from then on. */
  remove(node: Node): void {
    this.nodes = this.nodes.filter((candidate) => candidate !== node);
  }

  /** A fresh name, unique to this run: a string, an array or an object in turn. */
  name(label: string): Name {
    const n = this.#counter++;
    const name: Name =
      n % 3 === 0 ? `conformance/${this.#tag}/${label}/${n}` : n % 3 === 1 ? ['conformance', this.#tag, label, n] : { conformance: label, run: this.#tag, n };
    this.used.push(name);
    return name;
  }

  nodeOf(pid: Pid): Node | undefined {
    return this.nodes.find((node) => node.name === pid.node && node.creation === pid.creation);
  }
}

interface Emitter {
  on(event: 'unregistered', listener: (...args: unknown[]) => void): unknown;
  off(event: 'unregistered', listener: (...args: unknown[]) => void): unknown;
}

/** One test's view of the suite: what it starts is killed at the end, and its names must be gone everywhere. */
class Scope {
  readonly #pids: Pid[] = [];
  readonly #names: Name[] = [];
  readonly #byLabel = new Map<string, Name[]>();

  constructor(readonly suite: Suite) {}

  get nodes(): readonly Node[] {
    return this.suite.nodes;
  }

  get key(): string {
    return this.suite.key;
  }

  get multi(): boolean {
    return this.suite.multi;
  }

  get waitMs(): number {
    return this.suite.waitMs;
  }

  reg(node: Node): NameRegistry {
    return this.suite.reg(node);
  }

  settle(): Promise<void> {
    return this.suite.settle();
  }

  name(label: string): Name {
    const name = this.suite.name(label);
    this.#names.push(name);
    const named = this.#byLabel.get(label) ?? [];
    named.push(name);
    this.#byLabel.set(label, named);
    return name;
  }

  /** The names this test made under `label`. */
  names(label: string): readonly Name[] {
    return this.#byLabel.get(label) ?? [];
  }

  /** Tracks a name the test made itself. */
  uses(name: Name): void {
    this.#names.push(name);
    this.suite.used.push(name);
  }

  track(pid: Pid): void {
    this.#pids.push(pid);
  }

  holder(node: Node): Holder {
    const holder = spawnHolder(node, this.waitMs);
    this.track(holder.pid);
    return holder;
  }

  async startServer(node: Node, dest: Via): Promise<Pid> {
    const pid = await within(GenServer.start(node, ConformanceServer, {}, { name: dest }), `GenServer.start on ${node.name}`, this.waitMs);
    this.track(pid);
    return pid;
  }

  /** Runs `fn` inside a fresh process on `node`; resolves with what it returns (bounded). */
  inProcess<T>(node: Node, fn: (self: Process) => Promise<T>): Promise<T> {
    const done = deferred<T>();
    node.spawn(async (self) => {
      try {
        done.resolve(await fn(self));
      } catch (error) {
        done.reject(error);
      }
    });
    return within(done.promise, `a process on ${node.name}`, this.waitMs);
  }

  /** The canonical names `registered()` lists on `node`. */
  listed(node: Node): Set<string> {
    return new Set(this.reg(node).registered().map((name) => nameKey(name)));
  }

  lists(node: Node, name: Name): boolean {
    return this.listed(node).has(nameKey(name));
  }

  /**
   * Resolves once `name` no longer resolves on `node`. Subscribes at once,
   * so call it before causing the change: through the registry's
   * `unregistered` event when it has one, else by polling `settle()`.
   */
  waitGone(node: Node, name: Name): Promise<void> {
    const registry = this.reg(node);
    const what = `${nameKey(name)} to disappear from ${node.name}`;
    if (registry.whereisName(name) === undefined) return Promise.resolve();
    if (this.suite.events) {
      const emitter = registry as unknown as Emitter;
      const gone = deferred();
      const listener = (): void => {
        if (registry.whereisName(name) === undefined) gone.resolve();
      };
      emitter.on('unregistered', listener);
      const waited = within(gone.promise, what, this.waitMs);
      void waited.then(
        () => emitter.off('unregistered', listener),
        () => emitter.off('unregistered', listener),
      );
      return waited;
    }
    return this.#pollGone(node, name, what);
  }

  async #pollGone(node: Node, name: Name, what: string): Promise<void> {
    const deadline = performance.now() + this.waitMs;
    let delay = 5;
    for (;;) {
      await this.settle();
      if (this.reg(node).whereisName(name) === undefined) return;
      if (performance.now() > deadline) throw new Error(`timed out after ${this.waitMs} ms waiting for ${what}`);
      await sleep(delay);
      delay = Math.min(100, delay * 2);
    }
  }

  waitAllGone(name: Name): Promise<void> {
    return Promise.all(this.nodes.map((node) => this.waitGone(node, name))).then(() => undefined);
  }

  /** A monitor through `dest` from every node; each promise resolves with what its probe saw at `DOWN`. */
  async watchEverywhere(dest: Via, name: Name): Promise<Map<Node, Promise<DownSeen>>> {
    const downs = new Map<Node, Promise<DownSeen>>();
    for (const node of this.nodes) downs.set(node, (await watch(node, dest, this.waitMs, { registry: this.reg(node), name })).seen);
    return downs;
  }

  /** Every probe got one `DOWN` for `pid` whose reason `matches`; on `host` the name was already gone when it arrived. */
  async expectDowns(downs: Map<Node, Promise<DownSeen>>, host: Node, pid: Pid, matches: (reason: ExitReason, local: boolean) => boolean, expected: string): Promise<void> {
    for (const [node, promise] of downs) {
      const seen = await promise;
      assertPid(seen.down.pid, pid, `${node.name}: the DOWN names the holder`);
      const local = node === host;
      assert.ok(matches(seen.down.reason, local), `${node.name}: DOWN reason ${formatReason(seen.down.reason)}, expected ${expected}`);
      if (local) {
        assert.strictEqual(seen.whereisAtDown, undefined, `${node.name}: whereisName still resolved the name when the DOWN arrived`);
        assert.ok(!seen.listedAtDown, `${node.name}: registered() still listed the name when the DOWN arrived`);
      }
    }
  }

  /** A fresh registration on `node` succeeds, resolves and unregisters: the registry survived whatever came before. */
  async stillWorks(node: Node): Promise<void> {
    const holder = this.holder(node);
    const name = this.name('still-works');
    const r = this.reg(node);
    assert.strictEqual(await within(r.registerName(name, holder.pid), `registerName on ${node.name}`, this.waitMs), 'yes', `${node.name}: a fresh registration after bad input`);
    assertPid(r.whereisName(name), holder.pid, `${node.name}: the fresh name resolves`);
    const gone = this.waitAllGone(name);
    await r.unregisterName(name);
    await gone;
  }

  /** Kills what the test started and waits for its names to be gone on every node. */
  async close(): Promise<void> {
    const gone = this.#names.map((name) => this.waitAllGone(name));
    for (const pid of this.#pids) {
      const node = this.suite.nodeOf(pid);
      if (node?.isAlive(pid) === true) node.exit(pid, 'kill');
    }
    await Promise.all(gone);
  }
}

// ---- tables -------------------------------------------------------------------------------

/** Values that are not names, and what a good error message mentions. */
function invalidNames(): { label: string; value: unknown; says: RegExp }[] {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  const cyclicArray: unknown[] = [1];
  cyclicArray.push({ back: cyclicArray });
  class Point {
    x = 1;
  }
  return [
    { label: 'a function', value: () => 1, says: /function/i },
    { label: 'a symbol', value: Symbol('conformance'), says: /symbol/i },
    { label: 'a bigint', value: 10n, says: /bigint/i },
    { label: 'undefined', value: undefined, says: /undefined/i },
    { label: 'NaN', value: Number.NaN, says: /NaN|finite/i },
    { label: 'Infinity', value: Number.POSITIVE_INFINITY, says: /Infinity|finite/i },
    { label: '-Infinity', value: Number.NEGATIVE_INFINITY, says: /Infinity|finite/i },
    { label: 'a Date', value: new Date(0), says: /Date|plain object/i },
    { label: 'a Map', value: new Map([['a', 1]]), says: /Map|plain object/i },
    { label: 'a class instance', value: new Point(), says: /Point|plain object/i },
    { label: 'a cyclic object', value: cyclic, says: /cycl|circular/i },
    { label: 'a cyclic array', value: cyclicArray, says: /cycl|circular/i },
    { label: 'a function nested in an object', value: { ok: [1, { bad: () => 1 }] }, says: /function/i },
    { label: 'undefined in an array', value: ['a', undefined], says: /undefined/i },
    { label: 'NaN nested in an object', value: { n: [Number.NaN] }, says: /NaN|finite/i },
  ];
}

interface ExitContext {
  readonly s: Scope;
  readonly host: Node;
  /** Another node when there are several, else the host. */
  readonly remote: Node;
  readonly pid: Pid;
  readonly dest: Via;
  readonly holder: Holder | undefined;
}

interface ExitCase {
  readonly title: string;
  /** A GenServer started under the via name, or a plain process registered with `registerName`. */
  readonly process: 'server' | 'holder';
  cause(context: ExitContext): Promise<void> | void;
  /** Whether a DOWN's reason is the one expected; `local` when the monitor is on the holder's node. */
  reason(reason: ExitReason, local: boolean): boolean;
  readonly expected: string;
}

/** An Error with `message` (on the holder's node), or a reason that carries the message (across the wire). */
function errorReason(message: string): (reason: ExitReason, local: boolean) => boolean {
  return (reason, local) => (local ? reason instanceof Error && reason.message === message : formatReason(reason).includes(message));
}

function exitCases(): ExitCase[] {
  return [
    {
      title: "a callback returns stop('normal')",
      process: 'server',
      cause: ({ host, dest }) => host.cast(dest, STOP_NORMAL),
      reason: (reason) => reason === 'normal',
      expected: "'normal'",
    },
    {
      title: 'a process body returns',
      process: 'holder',
      cause: ({ holder }) => holder!.finish(),
      reason: (reason) => reason === 'normal',
      expected: "'normal'",
    },
    {
      title: 'a callback throws',
      process: 'server',
      cause: ({ host, dest }) => host.cast(dest, CRASH),
      reason: errorReason(SERVER_CRASH),
      expected: `an Error '${SERVER_CRASH}'`,
    },
    {
      title: 'a process body throws',
      process: 'holder',
      cause: ({ holder }) => holder!.crash(),
      reason: errorReason(HOLDER_CRASH),
      expected: `an Error '${HOLDER_CRASH}'`,
    },
    {
      title: "exit(via, 'kill'), sent from another node when there is one",
      process: 'server',
      cause: ({ remote, dest }) => remote.exit(dest, 'kill'),
      reason: (reason) => reason === 'killed',
      expected: "'killed'",
    },
    {
      title: "exit(pid, 'shutdown')",
      process: 'server',
      cause: ({ host, pid }) => host.exit(pid, 'shutdown'),
      reason: (reason) => reason === 'shutdown',
      expected: "'shutdown'",
    },
    {
      title: 'GenServer.stop(via), from another node when there is one',
      process: 'server',
      cause: ({ s, remote, dest }) => within(GenServer.stop(remote, dest), 'GenServer.stop', s.waitMs),
      reason: (reason) => reason === 'normal',
      expected: "'normal'",
    },
    {
      title: 'GenServer.stop(pid, { shutdown: … })',
      process: 'server',
      cause: ({ s, host, pid }) => within(GenServer.stop(host, pid, { shutdown: 'conformance' }), 'GenServer.stop', s.waitMs),
      reason: (reason) => isDeepStrictEqual(reason, { shutdown: 'conformance' }),
      expected: "{ shutdown: 'conformance' }",
    },
    {
      title: 'a linked process exits abnormally',
      process: 'server',
      cause: async ({ s, host, pid }) => {
        const linked = deferred();
        const go = Symbol('go');
        const linker = host.spawn(async (self) => {
          self.link(pid);
          linked.resolve();
          await self.receive((m) => m === go);
          self.exit({ conformance: 'linked exit' });
        });
        await within(linked.promise, 'the link', s.waitMs);
        host.send(linker, go);
      },
      reason: (reason) => isDeepStrictEqual(reason, { conformance: 'linked exit' }),
      expected: "{ conformance: 'linked exit' }",
    },
  ];
}

// ---- assertions ----------------------------------------------------------------------------

function assertPid(actual: Pid | undefined, expected: Pid, message: string): void {
  assert.ok(
    actual instanceof Pid && actual.equals(expected),
    `${message}: expected ${expected.key}, got ${actual instanceof Pid ? actual.key : String(actual)}`,
  );
}

function typeErrorSaying(says: RegExp, what: string): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof TypeError, `${what}: expected a TypeError, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    assert.match(error.message, says, `${what}: the message should say what is wrong`);
    return true;
  };
}

/** `run()` must return a promise that rejects with a TypeError: a promise-returning operation does not throw. */
async function assertRejectsTypeError(run: () => Promise<unknown>, says: RegExp, what: string): Promise<void> {
  let promise: Promise<unknown>;
  try {
    promise = run();
  } catch (error) {
    assert.fail(`${what}: threw synchronously (${String(error)}); it must return a rejected promise`);
  }
  assert.ok(isThenable(promise), `${what}: must return a promise`);
  await assert.rejects(promise, typeErrorSaying(says, what));
}
