/**
 * The registry's table against a hostile or broken peer, message by message
 * (issue points: stale syncs, forged epochs, forged commits, amplification,
 * unbounded memory). The table is fed exactly what a peer could send; what
 * it answers is recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Node, Pid, nameKey, type Name } from '@roster/core';
import { NameTable, type TableDropReason } from '../src/internal/name-table.js';
import { parseMessages, type GlobalsMessage, type WireEpoch } from '../src/internal/protocol.js';
import { MAX_SYNC_BYTES } from '../src/internal/sync-assembly.js';

let node: Node;
before(async () => {
  node = await Node.start({ name: 'x', logLevel: 'silent' });
});
after(async () => {
  await node.stop();
});

interface Fixture {
  readonly table: NameTable;
  readonly sent: { to: string; message: GlobalsMessage }[];
  readonly drops: TableDropReason[];
}

function fixture(peers: string[] = ['p', 'q'], registerTimeout = 5000, maxReleaseFences?: number): Fixture {
  const sent: Fixture['sent'] = [];
  const drops: TableDropReason[] = [];
  const table = new NameTable(
    {
      node,
      logger: node.logger,
      maxClockSkew: 10_000,
      registerTimeout,
      ...(maxReleaseFences !== undefined ? { maxReleaseFences } : {}),
      members: () => peers,
      drop: (reason) => drops.push(reason),
      broadcast: (message) => {
        for (const peer of peers) sent.push({ to: peer, message });
      },
      sendTo: (to, message) => {
        sent.push({ to, message });
        return true;
      },
      registered: () => undefined,
      unregistered: () => undefined,
      conflict: () => undefined,
    },
    'keep-oldest',
  );
  for (const peer of peers) table.onNodeUp(peer, `${peer}-creation`);
  sent.length = 0;
  return { table, sent, drops };
}

/** A peer's message, validated as the wire would. */
function from(table: NameTable, peer: string, message: unknown): void {
  for (const parsed of parseMessages(message, peer, table.self)) table.onMessage(peer, parsed);
}

const remotePid = (peer: string, id: number): Pid => new Pid(peer, `${peer}-creation`, id);
const epoch = (wall: number, counter: number, owner: string): WireEpoch => [wall, counter, owner];

function claim(f: Fixture, peer: string, name: Name, pid: Pid, at: WireEpoch): void {
  from(f.table, peer, { op: 'claim', name, pid, epoch: at });
}

describe('NameTable against hostile and broken peers', () => {
  test('a commit with no claim this node voted for takes nothing (forged), and never resolves a conflict', () => {
    const f = fixture();
    const owner = remotePid('p', 1);
    const now = Date.now();
    claim(f, 'p', 'svc', owner, epoch(now, 0, 'p'));
    from(f.table, 'p', { op: 'commit', name: 'svc', pid: owner, epoch: epoch(now, 0, 'p') });
    assert.ok(f.table.whereis(nameKey('svc'))?.equals(owner));
    // q forges an older commit for the held name: keep-oldest would hand it the name.
    from(f.table, 'q', { op: 'commit', name: 'svc', pid: remotePid('q', 9), epoch: epoch(now - 60_000, 0, 'q') });
    assert.ok(f.table.whereis(nameKey('svc'))?.equals(owner), 'the rightful owner keeps it');
    assert.deepEqual(f.drops, ['forged']);
  });

  test('a later sync cannot smuggle in what a forged commit could not: an unvoted older claim never takes a held name', () => {
    const f = fixture();
    const now = Date.now();
    const owner = remotePid('p', 1);
    from(f.table, 'q', { op: 'sync', claims: [], at: epoch(now, 0, 'q'), want: false, sids: [] });
    claim(f, 'p', 'svc', owner, epoch(now, 1, 'p'));
    from(f.table, 'p', { op: 'commit', name: 'svc', pid: owner, epoch: epoch(now, 1, 'p') });
    // q has synced since it came up: a claim it made since would have come through our vote.
    from(f.table, 'q', { op: 'sync', claims: [{ name: 'svc', pid: remotePid('q', 9), epoch: epoch(now - 60_000, 0, 'q') }], at: epoch(now, 2, 'q'), want: false, sids: [] });
    assert.ok(f.table.whereis(nameKey('svc'))?.equals(owner), 'the rightful owner keeps it');
    assert.deepEqual(f.drops, ['forged']);
  });

  test('the first sync after a nodeup may bring a claim made across a partition, and the older one wins', () => {
    const f = fixture();
    const now = Date.now();
    const younger = remotePid('p', 1);
    claim(f, 'p', 'svc', younger, epoch(now, 1, 'p'));
    from(f.table, 'p', { op: 'commit', name: 'svc', pid: younger, epoch: epoch(now, 1, 'p') });
    const older = remotePid('q', 9);
    from(f.table, 'q', { op: 'sync', claims: [{ name: 'svc', pid: older, epoch: epoch(now - 1000, 0, 'q') }], at: epoch(now, 2, 'q'), want: false, sids: [] });
    assert.ok(f.table.whereis(nameKey('svc'))?.equals(older), 'keep-oldest picks the older claim');
    assert.deepEqual(f.drops, []);
  });

  test('epochs beyond the clock skew bound, or with a counter near 2^53, are dropped and never move the clock', () => {
    const f = fixture();
    const before = f.table.clock.now();
    claim(f, 'p', 'a', remotePid('p', 1), epoch(Date.now(), Number.MAX_SAFE_INTEGER, 'p'));
    claim(f, 'p', 'b', remotePid('p', 2), epoch(Date.now() + 3_600_000, 0, 'p'));
    assert.deepEqual(f.drops, ['clock_skew', 'clock_skew']);
    assert.equal(f.sent.length, 0, 'no vote for either');
    const next = f.table.clock.now();
    assert.ok(next.wall - before.wall < 1000 && next.counter < 1000, `the clock stayed near real time: ${JSON.stringify(next)}`);
  });

  test('a stale sync never removes a claim committed after it was made, nor revives a released one', () => {
    const f = fixture();
    const t = Date.now();
    const old = remotePid('p', 1);
    claim(f, 'p', 'old', old, epoch(t, 0, 'p'));
    from(f.table, 'p', { op: 'commit', name: 'old', pid: old, epoch: epoch(t, 0, 'p') });
    // The sync p made at t+1 lists `old`; it is delayed.
    const stale = { op: 'sync', claims: [{ name: 'old', pid: old, epoch: epoch(t, 0, 'p') }], at: epoch(t + 1, 0, 'p'), want: false, sids: [] };
    // Meanwhile: p commits `new` and releases `old`, then sends a newer sync listing `new`.
    const fresh = remotePid('p', 2);
    claim(f, 'p', 'new', fresh, epoch(t + 2, 0, 'p'));
    from(f.table, 'p', { op: 'commit', name: 'new', pid: fresh, epoch: epoch(t + 2, 0, 'p') });
    from(f.table, 'p', { op: 'release', name: 'old', epoch: epoch(t, 0, 'p'), reason: 'normal' });
    assert.equal(f.table.whereis(nameKey('old')), undefined);
    from(f.table, 'p', stale);
    assert.ok(f.table.whereis(nameKey('new'))?.equals(fresh), 'the stale sync did not remove the younger claim');
    assert.equal(f.table.whereis(nameKey('old')), undefined, 'nor revive the released one');
    from(f.table, 'p', { ...stale, at: epoch(t + 3, 0, 'p'), claims: [{ name: 'new', pid: fresh, epoch: epoch(t + 2, 0, 'p') }] });
    from(f.table, 'p', stale);
    assert.ok(f.drops.includes('stale'), 'a sync older than one applied is dropped');
    assert.ok(f.table.whereis(nameKey('new'))?.equals(fresh));
  });

  test('a batch of a thousand sync requests is answered once, not a thousand times', async () => {
    const f = fixture();
    for (let i = 0; i < 20; i++) f.table.register(nameKey(`own-${i}`), `own-${i}`, node.spawn(async (self) => void (await self.receive())), 5000, () => undefined);
    const requests = Array.from({ length: 1000 }, (_, i) => ({ op: 'sync', at: epoch(Date.now(), i, 'p'), want: true, sids: [i + 1] }));
    f.sent.length = 0;
    from(f.table, 'p', { op: 'batch', messages: requests.slice(0, 1000) });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const syncs = f.sent.filter((s) => s.to === 'p' && s.message.op === 'sync');
    assert.ok(syncs.length <= 2, `${syncs.length} syncs sent for 1000 requests`);
  });

  test('unfinished sync parts are bounded by bytes: a peer cannot pin memory with parts it never finishes', () => {
    const f = fixture();
    const big = 'n'.repeat(8000);
    const at = epoch(Date.now(), 0, 'p');
    const perPart = Array.from({ length: 60 }, (_, i) => ({ name: `${big}-${i}`, pid: remotePid('p', i), epoch: epoch(Date.now(), i, 'p') }));
    const parts = Math.ceil(MAX_SYNC_BYTES / (60 * 8100)) + 2;
    for (let i = 0; i < parts; i++) from(f.table, 'p', { op: 'sync', claims: perPart, at, want: false, sids: [], more: true });
    assert.ok(f.drops.includes('oversized'), 'the sync past the bound was dropped');
  });

  test('releases of names never held leave no tombstones behind', () => {
    const f = fixture();
    for (let i = 0; i < 2000; i++) from(f.table, 'p', { op: 'release', name: `never-${i}`, epoch: epoch(Date.now(), i, 'p'), reason: 'normal' });
    assert.equal(f.table.tombstones, 0, 'nothing is pinned for names this node never knew');
    // A later, genuine claim and commit of such a name by p is applied: nothing fenced it off.
    const pid = remotePid('p', 1);
    const at = epoch(Date.now() + 1, 0, 'p');
    claim(f, 'p', 'never-5', pid, at);
    from(f.table, 'p', { op: 'commit', name: 'never-5', pid, epoch: at });
    assert.ok(f.table.whereis(nameKey('never-5'))?.equals(pid));
  });

  test('release fences are bounded in number: a churn of names past the bound keeps the newest, which still fence off a replayed commit', () => {
    const f = fixture(['p', 'q'], 5000, 100);
    const now = Date.now();
    const held = (i: number): { name: string; pid: Pid; at: WireEpoch } => ({ name: `churn-${i}`, pid: remotePid('p', i + 1), at: epoch(now, i, 'p') });
    for (let i = 0; i < 300; i++) {
      const { name, pid, at } = held(i);
      claim(f, 'p', name, pid, at);
      from(f.table, 'p', { op: 'commit', name, pid, epoch: at });
      from(f.table, 'p', { op: 'release', name, epoch: at, reason: 'normal' });
    }
    assert.equal(f.table.tombstones, 100, 'the fences stay within their bound');
    const newest = held(299);
    from(f.table, 'p', { op: 'commit', name: newest.name, pid: newest.pid, epoch: newest.at });
    assert.equal(f.table.whereis(nameKey(newest.name)), undefined, 'a replayed commit of the newest release is fenced off');
  });

  test('a tuple name mutated by its sender after it arrived still leaves the table when released', () => {
    const f = fixture();
    const name: Name[] = ['room', 1];
    const at = epoch(Date.now(), 0, 'p');
    const pid = remotePid('p', 3);
    claim(f, 'p', name, pid, at);
    from(f.table, 'p', { op: 'commit', name, pid, epoch: at });
    assert.ok(f.table.whereisTuple(['room', 1]) instanceof Pid);
    name[1] = 99; // the array the table was handed is reused
    from(f.table, 'p', { op: 'release', name: ['room', 1], epoch: at, reason: 'normal' });
    assert.equal(f.table.whereisTuple(['room', 1]), undefined, 'the tuple index kept a released name');
    assert.equal(f.table.whereisTuple(['room', 99]), undefined);
    assert.equal(f.table.whereis(nameKey(['room', 1])), undefined);
    assert.equal(f.table.indexedTuples, 0, 'the tuple index kept a branch for a name the table no longer holds');
  });

  test('received names obey the limits of local ones: too long or too deep is malformed', () => {
    const f = fixture();
    assert.throws(() => claim(f, 'p', 'x'.repeat(20_000), remotePid('p', 1), epoch(Date.now(), 0, 'p')), /more than 16384/);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => claim(f, 'p', deep as Name, remotePid('p', 1), epoch(Date.now(), 0, 'p')), /nested deeper/);
  });

  test('a claim by an epoch of another node is forged', () => {
    const f = fixture();
    claim(f, 'p', 'impostor', remotePid('p', 1), epoch(Date.now(), 0, 'q'));
    assert.deepEqual(f.drops, ['forged']);
    assert.equal(f.sent.length, 0);
  });

  describe('acknowledgements of commits and releases', () => {
    /** Registers `name` for a local process, every peer voting yes; resolves with the claim's epoch and the answer to come. */
    function granted(f: Fixture, name: string): { epoch: WireEpoch; answer: Promise<unknown> } {
      const pid = node.spawn(async (self) => {
        await self.receive();
      });
      let answered!: (answer: unknown) => void;
      const answer = new Promise((resolve) => (answered = resolve));
      f.table.register(name, name, pid, 5000, answered);
      const sent = f.sent.find(({ message }) => message.op === 'claim');
      assert.ok(sent !== undefined && sent.message.op === 'claim');
      const at = sent.message.epoch;
      for (const peer of ['p', 'q']) from(f.table, peer, { op: 'vote', name, epoch: at, round: 0, vote: 'yes' });
      assert.ok(f.sent.some(({ message }) => message.op === 'commit'), 'all voted yes: the commit goes out');
      return { epoch: at, answer };
    }

    /** Whether `promise` has settled by the next macrotask. */
    async function settled(promise: Promise<unknown>): Promise<boolean> {
      let done = false;
      void promise.then(() => (done = true));
      await new Promise<void>((resolve) => setImmediate(resolve));
      return done;
    }

    test('a registration answers yes once every voter acknowledged its commit; an ack of another epoch or name counts for nothing', async () => {
      const f = fixture();
      const { epoch: at, answer } = granted(f, 'acked');
      from(f.table, 'p', { op: 'ack', name: 'acked', epoch: at, of: 'commit' });
      from(f.table, 'q', { op: 'ack', name: 'acked', epoch: [at[0], at[1] + 1, at[2]], of: 'commit' });
      from(f.table, 'q', { op: 'ack', name: 'other', epoch: at, of: 'commit' });
      from(f.table, 'q', { op: 'ack', name: 'acked', epoch: at, of: 'release' });
      assert.equal(await settled(answer), false, 'q has not acknowledged this commit');
      from(f.table, 'q', { op: 'ack', name: 'acked', epoch: at, of: 'commit' });
      assert.equal(await answer, 'yes');
    });

    test('acks from a run (by epoch alone) count as the named ones do; one for an epoch of another node never does', async () => {
      const f = fixture();
      const { epoch: at, answer } = granted(f, 'by-epoch');
      const inRun = (peer: string, epoch: WireEpoch, of: 'commit' | 'release'): void => f.table.onMessage(peer, { op: 'ack', epoch, of });
      inRun('p', at, 'commit');
      inRun('q', [at[0], at[1], 'p'], 'commit');
      assert.equal(await settled(answer), false, "an ack of p's epoch with the same numbers is not one of ours");
      inRun('q', at, 'commit');
      assert.equal(await answer, 'yes');
      const released = new Promise<Error | undefined>((resolve) => f.table.unregister('by-epoch', 'by-epoch', 5000, resolve));
      inRun('p', at, 'release');
      inRun('q', at, 'release');
      assert.equal(await released, undefined);
    });

    test('a commit or a release no member acknowledges is answered anyway after registerTimeout', async () => {
      const f = fixture(['p', 'q'], 60);
      const started = performance.now();
      const { answer } = granted(f, 'silent');
      assert.equal(await answer, 'yes');
      assert.ok(performance.now() - started >= 55, 'answered before registerTimeout');
      const released = new Promise<Error | undefined>((resolve) => f.table.unregister('silent', 'silent', 5000, resolve));
      assert.equal(await settled(released), false, 'an unregistration waits for its release acks');
      assert.equal(await released, undefined);
    });

    test('an unregistration resolves once every member acknowledged the release, and a member that goes down is not waited for', async () => {
      const f = fixture();
      const { epoch: at, answer } = granted(f, 'released');
      for (const peer of ['p', 'q']) from(f.table, peer, { op: 'ack', name: 'released', epoch: at, of: 'commit' });
      assert.equal(await answer, 'yes');
      const released = new Promise<Error | undefined>((resolve) => f.table.unregister('released', 'released', 5000, resolve));
      assert.ok(f.sent.some(({ message }) => message.op === 'release' && message.ack === true), 'the release asks for acks');
      from(f.table, 'p', { op: 'ack', name: 'released', epoch: at, of: 'release' });
      assert.equal(await settled(released), false);
      f.table.onNodeDown('q');
      assert.equal(await released, undefined);
    });
  });
});
