import { NOT_A_TUPLE, TupleIndex } from './tuple-index.js';
import { BadArgError, formatReason, type ExitReason, type Name, type Node, type Pid } from '@roster/core';
import type { Logger } from 'pino';
import { resolveConflict, type ConflictClaim, type ConflictOutcome, type ConflictPolicy, type NameConflictMessage } from '../conflict.js';
import { compareEpochs, HybridLogicalClock, sameEpoch, type Epoch } from '../epoch.js';
import { RegistryUnavailableError } from '../errors.js';
import { fromWireEpoch, keyOf, toWireEpoch, type GlobalsMessage, type WireClaim } from './protocol.js';
import { SyncAssembly } from './sync-assembly.js';
import { KeyedByNode } from './keyed-by-node.js';
import { ExpiringMap } from './expiring-map.js';
import { VoteLedger } from './vote-ledger.js';

/** A committed claim: `owner` holds `name` for `pid` since `epoch`. */
export interface Claim {
  readonly owner: string;
  readonly pid: Pid;
  readonly epoch: Epoch;
}

interface NameRecord {
  readonly name: Name;
  /** Committed claims, at most one per owner node; more than one only while a conflict settles. */
  claims: Claim[];
  /** What `whereisName` answers. */
  current: Claim | undefined;
}

interface PendingClaim {
  readonly key: string;
  readonly name: Name;
  readonly pid: Pid;
  readonly epoch: Epoch;
  /** Members whose vote is still due. */
  readonly awaiting: Set<string>;
  readonly acks: Set<string>;
  /** The voting round: votes of an earlier round (sent before the view changed) do not count. */
  round: number;
  /** Owners named by `remote` votes: each must have voted yes itself (never excused by having left our view). */
  readonly remoteOwners: Set<string>;
  readonly done: (answer: 'yes' | 'no' | Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export type Answer = 'yes' | 'no' | Error;

/** A commit or an acknowledged release waiting for every member to have applied it (read-your-writes). */
interface PendingAcks {
  readonly of: 'commit' | 'release';
  readonly key: string;
  /** Where it is filed: its epoch's key (see `epochKey`). */
  readonly id: EpochKey;
  readonly awaiting: Set<string>;
  readonly done: () => void;
}

/** Why the table dropped a peer's message; counted by reason. */
export type TableDropReason = 'clock_skew' | 'forged' | 'stale' | 'oversized';

/** The largest logical counter accepted in a received epoch: far from 2^53, so no clock can be pushed into overflow. */
const MAX_EPOCH_COUNTER = 2 ** 32;
/** Full answers to one peer's sync requests: a burst of this many, then one per interval; requests in between are answered together. */
const SYNC_ANSWER_BURST = 8;
const SYNC_ANSWER_INTERVAL_MS = 100;
/** A joining node that has not heard a member's claims this long after attaching asks for them. */
const INITIAL_SYNC_NUDGE_MS = 250;

/** Roughly how many bytes of claims one sync part carries (a frame holds 1 MiB by default). */
const SYNC_PART_BYTES = 128 * 1024;

/** What the table needs from its surroundings. */
export interface TableHost {
  readonly node: Node;
  readonly logger: Logger;
  /** This node is a cluster observer: it votes on nothing, so it takes in every commit it is sent (it decides nothing by them). */
  readonly observer?: boolean;
  /** Received epochs further ahead of this node's clock than this are dropped (`clock_skew`). */
  readonly maxClockSkew: number;
  /** How long a claim waits for votes, and a commit or release for its acknowledgements. */
  readonly registerTimeout: number;
  /**
   * Most release fences held at once (default {@link MAX_RELEASE_FENCES}):
   * beyond it the oldest go before their time, so a sustained churn of names
   * bounds memory and shortens the fencing window instead.
   */
  readonly maxReleaseFences?: number;
  /** The voters now, this node left out: a list the table only reads (it may be kept between calls). */
  members(): readonly string[];
  /** A peer's message that failed a check of the table; counted and logged (rate-limited) by the host. */
  drop(reason: TableDropReason, from: string, detail: string): void;
  broadcast(message: GlobalsMessage): void;
  sendTo(node: string, message: GlobalsMessage): boolean;
  registered(name: Name, pid: Pid): void;
  unregistered(name: Name, pid: Pid, reason: ExitReason): void;
  conflict(outcome: ConflictOutcome): void;
}

/**
 * One node's view of the global names, and the protocol that keeps it:
 * claims voted on by every member, commits, fenced releases, anti-entropy
 * and conflict resolution (docs/protocol.md). Everything here is
 * synchronous; the registry actor feeds it one message at a time.
 */
export class NameTable {
  readonly records = new Map<string, NameRecord>();
  /** The same records by tuple name, for `whereis` of a tuple without building its key. */
  readonly #tuples = new TupleIndex<NameRecord>();
  readonly #pending = new Map<string, PendingClaim>();
  /** Local claims, with the canceller of their registrant's exit hook. */
  readonly #local = new Map<string, { claim: Claim; cancel: () => void }>();
  /** Names each remote owner holds, so a nodedown is O(its names). */
  readonly #byOwner = new Map<string, Set<string>>();
  readonly #syncs = new Map<number, { awaiting: Set<string>; timer: NodeJS.Timeout; done: (error?: Error) => void }>();
  /** Parts of a sync still arriving, by sender (they come in order: FIFO per pair). */
  readonly #syncParts = new SyncAssembly();
  readonly #queries = new Map<number, { name: Name; awaiting: Set<string>; timer: NodeJS.Timeout; done: (pid: Pid | undefined | Error) => void }>();
  /** `unregisterName` requests sent to the owner of a name, by query id. */
  readonly #unregisters = new Map<number, { owner: string; name: Name; timer: NodeJS.Timeout; done: (error?: Error) => void }>();
  /**
   * By the epoch of this node's claim (one claim each): its commit, and its
   * release, waiting for every member's `ack`, each answered anyway after
   * `registerTimeout`. An ack names the epoch (and, unless it came in a run
   * of acks, the name, which must then match).
   */
  readonly #acks: { readonly commit: ExpiringMap<EpochKey, PendingAcks>; readonly release: ExpiringMap<EpochKey, PendingAcks> };
  /** The claims this node voted for: only those may be committed here. */
  readonly #votes: VoteLedger;
  /** By sender: the `at` of the newest sync applied; an older one is stale. */
  readonly #syncFences = new Map<string, Epoch>();
  /** Members whose claims this node has heard (a sync) since they came up. */
  readonly #heard = new Set<string>();
  /** By peer: the incarnation last seen; a new one's clock may run behind, so its fences go. */
  readonly #creations = new Map<string, string>();
  /** By peer: when its sync requests were last answered in full, and the requests waiting for the next answer. */
  readonly #answers = new Map<string, { tokens: number; refilled: number; sids: Set<number>; timer: NodeJS.Timeout | undefined }>();
  #joining: { awaiting: Set<string>; nudge: NodeJS.Timeout; timer: NodeJS.Timeout; done: () => void } | undefined;
  /**
   * Fencing of releases: by name and owner, the newest epoch that owner
   * released for that name (and when we learnt it, for expiry). A commit or
   * sync entry of that owner at or below it is a stale message (a duplicate,
   * or one a reordering delivered after its release) and must not bring the
   * claim back.
   */
  readonly #released = new KeyedByNode<Epoch>();
  readonly clock: HybridLogicalClock;
  readonly self: string;
  #nextId = 1;

  constructor(
    readonly host: TableHost,
    readonly policy: ConflictPolicy,
  ) {
    this.self = host.node.name;
    this.clock = new HybridLogicalClock(this.self);
    this.#votes = new VoteLedger(Math.max(2 * host.registerTimeout, 30_000));
    const unacknowledged = (_id: EpochKey, acks: PendingAcks): void => {
      this.host.logger.warn({ name: acks.key, of: acks.of, silent: [...acks.awaiting] }, `no ${acks.of} acknowledgement within registerTimeout; answering anyway`);
      acks.done();
    };
    this.#acks = { commit: new ExpiringMap(host.registerTimeout, unacknowledged), release: new ExpiringMap(host.registerTimeout, unacknowledged) };
  }

  /** How many tuple names the tuple index holds: at most one per record. */
  get indexedTuples(): number {
    return this.#tuples.size;
  }

  /** How many release fences (tombstones) are held: bounded by the names this node held or voted for. */
  get tombstones(): number {
    return this.#released.size;
  }

  whereis(key: string): Pid | undefined {
    return this.records.get(key)?.current?.pid;
  }

  /** `whereis` of a tuple name by its elements, or {@link NOT_A_TUPLE} when it is not a flat tuple (then use `whereis`). */
  whereisTuple(name: readonly unknown[]): Pid | undefined | typeof NOT_A_TUPLE {
    const record = this.#tuples.get(name);
    return record === NOT_A_TUPLE ? NOT_A_TUPLE : record?.current?.pid;
  }

  /** The committed claim `whereis` answers from, with its epoch. */
  current(key: string): Claim | undefined {
    return this.records.get(key)?.current;
  }

  names(): Name[] {
    const names: Name[] = [];
    for (const record of this.records.values()) if (record.current !== undefined) names.push(record.name);
    return names;
  }

  // ---- local requests -------------------------------------------------------------

  /**
   * Starts a claim; `done` gets `yes` once every member voted for it and has
   * applied its commit (read-your-writes), `no`, or an error (unavailable,
   * dead registrant).
   */
  register(key: string, name: Name, pid: Pid, timeoutMs: number, done: (answer: Answer) => void): void {
    if (this.records.get(key)?.current !== undefined || this.#pending.has(key)) {
      done('no');
      return;
    }
    this.#claim(key, name, pid, timeoutMs, done);
  }

  /** Broadcasts a claim of `key` for `pid` and decides it by the members' votes. */
  #claim(key: string, name: Name, pid: Pid, timeoutMs: number, done: (answer: Answer) => void): void {
    const claim: PendingClaim = {
      key,
      name,
      pid,
      epoch: this.clock.now(),
      awaiting: new Set(this.host.members()),
      acks: new Set(),
      round: 0,
      remoteOwners: new Set(),
      done,
      timer: undefined,
    };
    this.#pending.set(key, claim);
    if (claim.awaiting.size === 0) {
      this.#commit(claim);
      return;
    }
    claim.timer = setTimeout(() => {
      claim.timer = undefined;
      this.#finish(claim, new RegistryUnavailableError(`registering ${key}: no answer from ${[...claim.awaiting].join(', ')} within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      this.host.broadcast(claimMessage(claim));
    } catch (error) {
      // A name that cannot cross the wire (too large for a frame) is the caller's error, not the registry's crash.
      this.#finish(claim, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Moves `key` to `pid` (`global:re_register_name`): held here, the move is
   * one claim by this node (voters see their owner claim again) whose commit
   * replaces the former claim on every member at once; the former holder runs
   * on. Held by another node, its owner releases it first (for a moment it
   * resolves nowhere); free, it is a registration.
   */
  reRegister(key: string, name: Name, pid: Pid, timeoutMs: number, done: (answer: Answer) => void, attempts = 3): void {
    const retry = (answer: Answer): void => {
      if (answer !== 'no') done(answer);
      else if (attempts > 1) this.reRegister(key, name, pid, timeoutMs, done, attempts - 1);
      else done(new RegistryUnavailableError(`re-registering ${key}: other claims kept winning the race for it`));
    };
    const local = this.#local.get(key);
    if (local === undefined) {
      const owner = this.records.get(key)?.current?.owner;
      if (owner === undefined) this.register(key, name, pid, timeoutMs, retry);
      else this.unregister(key, name, timeoutMs, (error) => (error === undefined ? this.register(key, name, pid, timeoutMs, retry) : done(error)));
      return;
    }
    if (local.claim.pid.equals(pid)) {
      done('yes');
      return;
    }
    if (this.#pending.has(key)) {
      retry('no');
      return;
    }
    this.#claim(key, name, pid, timeoutMs, retry);
  }

  /**
   * Removes `key` wherever it is held (`global:unregister_name`): here, or by
   * asking its owner. `done` runs once no member resolves the name any longer.
   */
  unregister(key: string, name: Name, timeoutMs: number, done: (error?: Error) => void): void {
    if (this.#unregisterHeld(key, () => done())) return;
    const owner = this.records.get(key)?.current?.owner;
    if (owner === undefined || !this.host.members().includes(owner)) {
      done();
      return;
    }
    const qid = this.#nextId++;
    const timer = setTimeout(() => {
      if (!this.#unregisters.delete(qid)) return;
      done(new RegistryUnavailableError(`unregistering ${key}: its owner ${owner} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.#unregisters.set(qid, { owner, name, timer, done });
    this.host.sendTo(owner, { op: 'unregister', name, qid });
  }

  /** Releases `key` if this node holds it (`acknowledged` once every member applied that); false when it does not. */
  #unregisterHeld(key: string, acknowledged: () => void): boolean {
    const local = this.#local.get(key);
    if (local === undefined) return false;
    local.cancel();
    this.#releaseLocal(key, local.claim, 'unregistered', acknowledged);
    return true;
  }

  /** Resolves once every current member has sent its claims (`global:sync/0`). */
  sync(timeoutMs: number, done: (error?: Error) => void): void {
    const members = this.host.members();
    if (members.length === 0) {
      done();
      return;
    }
    const sid = this.#nextId++;
    const awaiting = new Set(members);
    const timer = setTimeout(
      () => this.#endSync(sid, new RegistryUnavailableError(`sync: no answer from ${[...awaiting].join(', ')} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    this.#syncs.set(sid, { awaiting, timer, done });
    for (const member of members) this.#sendSync(member, true, [sid]);
  }

  /**
   * A node that has just attached: done once every member of its view has
   * sent what it owns (each does on nodeup; one that has not within a
   * moment is asked), so `Node.start` resolves knowing every name. Members
   * that stay silent past `timeoutMs` are left to anti-entropy: done anyway.
   */
  initialSync(timeoutMs: number, done: (silent: string[]) => void): void {
    const awaiting = new Set(this.host.members().filter((member) => !this.#heard.has(member)));
    if (awaiting.size === 0) {
      done([]);
      return;
    }
    const finish = (): void => {
      const joining = this.#joining;
      if (joining === undefined) return;
      this.#joining = undefined;
      clearTimeout(joining.nudge);
      clearTimeout(joining.timer);
      done([...joining.awaiting]);
    };
    const nudge = setTimeout(() => {
      for (const member of this.#joining?.awaiting ?? []) this.#sendSync(member, true, [], false);
    }, INITIAL_SYNC_NUDGE_MS);
    this.#joining = { awaiting, nudge, timer: setTimeout(finish, timeoutMs), done: finish };
  }

  /**
   * Periodic anti-entropy: every member is sent what this node owns, so a
   * lost commit or release is repaired even when no membership changes.
   */
  antiEntropy(): void {
    for (const member of this.host.members()) this.#sendSync(member, false, []);
  }

  #endSync(sid: number, error?: Error): void {
    const sync = this.#syncs.get(sid);
    if (sync === undefined) return;
    this.#syncs.delete(sid);
    clearTimeout(sync.timer);
    sync.done(error);
  }

  /** Asks the owner (or, when none is known, every member) who holds `key`. */
  whereisConsistent(key: string, name: Name, timeoutMs: number, done: (pid: Pid | undefined | Error) => void): void {
    const local = this.#local.get(key);
    if (local !== undefined) {
      done(local.claim.pid);
      return;
    }
    const owner = this.records.get(key)?.current?.owner;
    const askees = owner !== undefined && this.host.members().includes(owner) ? [owner] : this.host.members();
    if (askees.length === 0) {
      done(undefined);
      return;
    }
    const qid = this.#nextId++;
    const timer = setTimeout(() => {
      if (this.#queries.delete(qid)) done(new RegistryUnavailableError(`whereisNameConsistent ${key}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    this.#queries.set(qid, { name, awaiting: new Set(askees), timer, done });
    for (const node of askees) this.host.sendTo(node, { op: 'whereis', name, qid });
  }

  // ---- peer messages ----------------------------------------------------------------

  onMessage(from: string, message: GlobalsMessage): void {
    switch (message.op) {
      case 'claim': {
        const epoch = this.#received(from, message.epoch, 'claim');
        if (epoch !== undefined) this.#onClaim(from, keyOf(message), message.name, message.pid, epoch, message.round ?? 0);
        return;
      }
      case 'vote':
        return this.#onVote(from, message);
      case 'commit': {
        const epoch = this.#received(from, message.epoch, 'commit');
        if (epoch !== undefined) this.#onCommit(from, keyOf(message), message.name, message.pid, epoch);
        return;
      }
      case 'abort': {
        const epoch = this.#received(from, message.epoch, 'abort');
        if (epoch !== undefined) this.#votes.settle(from, keyOf(message), epoch);
        return;
      }
      case 'release': {
        const epoch = this.#received(from, message.epoch, 'release');
        if (epoch === undefined) return;
        this.#onRelease(from, keyOf(message), epoch, message.reason);
        if (message.ack === true) this.host.sendTo(from, { op: 'ack', name: message.name, epoch: message.epoch, of: 'release' });
        return;
      }
      case 'ack': {
        const { epoch } = message;
        if (epoch[2] !== this.self) return; // not of a claim of ours
        const acks = this.#acks[message.of].get(epochKey(epoch[0], epoch[1]));
        if (acks === undefined || (message.name !== undefined && keyOf(message as { name: Name }) !== acks.key)) return;
        if (acks.awaiting.delete(from)) this.#checkAcks(acks);
        return;
      }
      case 'sync':
        return this.#onSync(from, message);
      case 'whereis': {
        const local = this.#local.get(keyOf(message));
        this.host.sendTo(from, { op: 'where', qid: message.qid, pid: local?.claim.pid ?? null });
        return;
      }
      case 'where':
        return this.#onWhere(from, message.qid, message.pid ?? undefined);
      case 'unregister': {
        const answer = (): void => void this.host.sendTo(from, { op: 'unregistered', qid: message.qid });
        if (!this.#unregisterHeld(keyOf(message), answer)) answer();
        return;
      }
      case 'unregistered': {
        const request = this.#unregisters.get(message.qid);
        if (request === undefined || request.owner !== from) return;
        this.#unregisters.delete(message.qid);
        clearTimeout(request.timer);
        request.done();
        return;
      }
      case 'down':
        return; // handled by the registry: the sender leaves the voters, then `onNodeDown`
    }
  }

  /**
   * A peer's message lost in transit (a gap in the pair's sequence): ask for
   * its claims at once, and send it again what it may have lost of ours
   * that something waits on (claims awaiting its vote, commits its ack).
   */
  onGap(node: string): void {
    if (!this.host.members().includes(node)) return;
    this.#sendSync(node, true, [], false);
    this.#resendAwaited(node);
  }

  onNodeUp(node: string, creation?: string): void {
    if (creation !== undefined) {
      const previous = this.#creations.get(node);
      this.#creations.set(node, creation);
      if (previous !== undefined && previous !== creation) {
        // A new incarnation's clock may run behind the old one's: the old one's fences must not hold it back.
        this.#forgetFences(node);
      }
    }
    // Anti-entropy: the newcomer learns what we own (it sends us its own the same way).
    this.#sendSync(node, false, []);
    // A claim in flight needs the newcomer's vote too: it may hold the name from the other side of a partition.
    for (const claim of this.#pending.values()) {
      if (claim.acks.has(node) || claim.awaiting.has(node)) continue;
      claim.awaiting.add(node);
      this.host.sendTo(node, claimMessage(claim));
    }
  }

  /** An observer (a watching node, never a voter): it learns what this node owns, and from then on its commits and releases. */
  onObserverUp(node: string): void {
    this.#sendSync(node, false, []);
  }

  onNodeDown(node: string): void {
    this.#syncParts.forget(node);
    this.#heard.delete(node);
    this.#votes.forget(node);
    const answers = this.#answers.get(node);
    if (answers?.timer !== undefined) clearTimeout(answers.timer);
    this.#answers.delete(node);
    const keys = this.#byOwner.get(node);
    if (keys !== undefined) {
      this.#byOwner.delete(node);
      for (const key of keys) {
        const record = this.records.get(key);
        if (record === undefined) continue;
        record.claims = record.claims.filter((claim) => claim.owner !== node);
        this.#settle(key, record, 'noconnection');
      }
    }
    for (const claim of [...this.#pending.values()]) {
      claim.acks.delete(node);
      claim.remoteOwners.delete(node);
      if (!claim.awaiting.delete(node)) continue;
      // A member left without voting: its silence is no consent. The view changed, so the claim is voted on
      // again by every member (same epoch): what they know now (a name that node took meanwhile, across a
      // one-link cut) decides, not what they knew before.
      claim.acks.clear();
      claim.remoteOwners.clear();
      claim.round++;
      for (const member of this.host.members()) claim.awaiting.add(member);
      if (claim.awaiting.size === 0) {
        this.#checkVotes(claim);
        continue;
      }
      this.host.broadcast(claimMessage(claim));
    }
    for (const acks of [...this.#acks.commit.values(), ...this.#acks.release.values()]) if (acks.awaiting.delete(node)) this.#checkAcks(acks);
    for (const [sid, sync] of [...this.#syncs]) {
      sync.awaiting.delete(node);
      if (sync.awaiting.size === 0) this.#endSync(sid);
    }
    for (const [qid, query] of this.#queries) {
      if (query.awaiting.delete(node) && query.awaiting.size === 0) this.#answerQuery(qid, undefined);
    }
    for (const [qid, request] of [...this.#unregisters]) {
      // Its names went with it: nothing is left to unregister.
      if (request.owner !== node) continue;
      this.#unregisters.delete(qid);
      clearTimeout(request.timer);
      request.done();
    }
    if (this.#joining?.awaiting.delete(node) === true && this.#joining.awaiting.size === 0) this.#joining.done();
  }

  /**
   * After the registry actor restarted: what waited on the old actor fails
   * (its callers' calls died with it), the names stay, and every member is
   * asked for its claims at once (and resends what it waits on from us), so
   * whatever the old actor's mailbox lost is re-learnt within a round trip.
   */
  restarted(): void {
    this.#abandonWaiting('the registry restarted while the claim was in flight');
    for (const member of this.host.members()) this.#sendSync(member, true, []);
  }

  /** The registry is going away: stop every timer, send nothing. */
  close(): void {
    this.#abandonWaiting('the registry stopped while the claim was in flight');
    for (const answers of this.#answers.values()) if (answers.timer !== undefined) clearTimeout(answers.timer);
    this.#answers.clear();
  }

  /** Everything that waited on the registry actor ends: its callers' calls died with it. */
  #abandonWaiting(why: string): void {
    for (const claim of this.#pending.values()) {
      if (claim.timer !== undefined) clearTimeout(claim.timer);
      claim.done(new RegistryUnavailableError(why));
    }
    this.#pending.clear();
    this.#acks.commit.clear();
    this.#acks.release.clear();
    this.#syncParts.clear();
    for (const query of this.#queries.values()) clearTimeout(query.timer);
    this.#queries.clear();
    for (const request of this.#unregisters.values()) clearTimeout(request.timer);
    this.#unregisters.clear();
    for (const sync of this.#syncs.values()) clearTimeout(sync.timer);
    this.#syncs.clear();
    if (this.#joining !== undefined) this.#joining.done();
  }

  // ---- the protocol ------------------------------------------------------------------

  /**
   * The epoch of a peer's message, if it may be taken in: the sender's own
   * (a node speaks only for its claims), not further ahead than
   * `maxClockSkew`, and with a counter far from overflow; then observed by
   * the clock. Otherwise dropped and counted.
   */
  #received(from: string, wire: readonly [number, number, string], what: string): Epoch | undefined {
    const epoch = fromWireEpoch(wire as [number, number, string]);
    if (epoch.node !== from) {
      this.host.drop('forged', from, `${what} with an epoch of ${epoch.node}`);
      return undefined;
    }
    if (epoch.wall > Date.now() + this.host.maxClockSkew || epoch.counter > MAX_EPOCH_COUNTER) {
      this.host.drop('clock_skew', from, `${what} with epoch ${epoch.wall}.${epoch.counter}: beyond the clock skew bound`);
      return undefined;
    }
    this.clock.observe(epoch);
    return epoch;
  }

  #onClaim(from: string, key: string, name: Name, pid: Pid, epoch: Epoch, round: number): void {
    /** Answers the claim: `yes`, or `no` with the holder, or `remote` with the owner (`other`). */
    const vote = (answer: 'yes' | 'no' | 'remote', other = ''): void => {
      const wire = toWireEpoch(epoch);
      this.host.sendTo(
        from,
        answer === 'yes'
          ? { op: 'vote', name, epoch: wire, round, vote: 'yes' }
          : answer === 'no'
            ? { op: 'vote', name, epoch: wire, round, vote: 'no', holder: other }
            : { op: 'vote', name, epoch: wire, round, vote: 'remote', owner: other },
      );
    };
    if (this.#local.has(key)) {
      vote('no', this.self);
      return;
    }
    const own = this.#pending.get(key);
    if (own !== undefined && compareEpochs(own.epoch, epoch) < 0) {
      // Our claim is older: theirs yields.
      vote('no', this.self);
      return;
    }
    // We voted for another node's claim that may still win (a lock in Erlang's global). An older one: this one
    // yields. A younger one: this one may win only with that claimant's own yes (it yields to an older claim
    // when it can hear it), as if that node held the name. Across a one-link cut the two claimants cannot
    // vote on each other, so without this both could be granted through us.
    const open = this.#votes.outstanding(key, from, this.host.registerTimeout);
    if (open !== undefined && compareEpochs(open.epoch, epoch) < 0) {
      vote('no', open.claimant);
      return;
    }
    this.#votes.record(from, key, epoch);
    const owner = this.records.get(key)?.current?.owner;
    if (owner !== undefined && owner !== from) {
      // Someone else holds it in our view; the claimant checks that owner's own vote.
      vote('remote', owner);
      return;
    }
    if (open !== undefined) {
      vote('remote', open.claimant);
      return;
    }
    vote('yes');
  }

  #onVote(from: string, message: Extract<GlobalsMessage, { op: 'vote' }>): void {
    const claim = this.#pending.get(keyOf(message));
    if (claim === undefined || !sameEpoch(claim.epoch, fromWireEpoch(message.epoch))) return; // a vote on a claim already decided
    if ((message.round ?? 0) !== claim.round) return; // cast before the view changed: it counts for nothing now
    if (!claim.awaiting.delete(from)) return;
    if (message.vote === 'no') {
      this.#finish(claim, 'no');
      return;
    }
    claim.acks.add(from);
    if (message.vote === 'remote' && message.owner !== this.self) claim.remoteOwners.add(message.owner);
    this.#checkVotes(claim);
  }

  #checkVotes(claim: PendingClaim): void {
    if (this.#pending.get(claim.key) !== claim || claim.awaiting.size > 0) return;
    for (const owner of claim.remoteOwners) {
      // The owner is the authority on its names: only its own yes shows the entry elsewhere was stale. An
      // owner we cannot hear (it left our view, or never was in it: a one-link cut) excuses nothing: a member
      // we reach says it holds the name.
      if (!claim.acks.has(owner)) {
        this.#finish(claim, 'no');
        return;
      }
    }
    this.#commit(claim);
  }

  /** Ends a claim that failed; the members that voted for it are told, so they stop holding it against others. */
  #finish(claim: PendingClaim, answer: Answer): void {
    if (this.#pending.get(claim.key) !== claim) return;
    this.#pending.delete(claim.key);
    if (claim.timer !== undefined) clearTimeout(claim.timer);
    if (claim.acks.size > 0) this.host.broadcast({ op: 'abort', name: claim.name, epoch: toWireEpoch(claim.epoch) });
    claim.done(answer);
  }

  #commit(pending: PendingClaim): void {
    const { key, name, pid, epoch } = pending;
    const cancel = this.#watchRegistrant(key, epoch, pid);
    if (cancel === undefined) {
      this.#finish(pending, new BadArgError(`cannot register ${key}: ${pid.key} exited during the registration`));
      return;
    }
    this.#pending.delete(key);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    const claim: Claim = { owner: this.self, pid, epoch };
    // A re-registration replaces this node's former claim: its holder runs on, and its exit leaves the name alone.
    this.#local.get(key)?.cancel();
    this.#local.set(key, { claim, cancel });
    this.host.broadcast({ op: 'commit', name, pid, epoch: toWireEpoch(epoch) });
    this.#addClaim(key, name, claim);
    // `yes` once every voter has applied the commit: then every member resolves the name.
    this.#awaitAcks('commit', key, epoch, pending.acks, answerYes(pending.done));
  }

  /**
   * Hooks the registrant's exit, in a scope of its own: a closure keeps its
   * whole scope alive, and the hook lives as long as the name is held, so
   * made in `#commit` it would keep the finished claim (its sets, timer and
   * caller) in memory with it.
   */
  #watchRegistrant(key: string, epoch: Epoch, pid: Pid): (() => void) | undefined {
    return this.host.node.watchExit(pid, (reason) => this.#localExit(key, epoch, reason));
  }

  #onCommit(from: string, key: string, name: Name, pid: Pid, epoch: Epoch): void {
    if (this.host.observer === true) {
      this.#addClaim(key, name, { owner: from, pid, epoch });
      return;
    }
    if (!this.#votes.votedFor(from, key, epoch)) {
      // No claim of it came here, or it was not ours to grant: a forged (or long-delayed) commit takes nothing.
      this.host.drop('forged', from, `commit of ${key} without a claim this node voted for`);
      return;
    }
    this.#votes.settle(from, key, epoch);
    this.#addClaim(key, name, { owner: from, pid, epoch });
    this.host.sendTo(from, { op: 'ack', name, epoch: toWireEpoch(epoch), of: 'commit' });
  }

  /** Runs `done` once every live member of `awaiting` (the table keeps the set) has acknowledged, or after registerTimeout. */
  #awaitAcks(of: 'commit' | 'release', key: string, epoch: Epoch, awaiting: Set<string>, done: () => void): void {
    const live = this.host.members();
    for (const member of awaiting) if (!live.includes(member)) awaiting.delete(member);
    if (awaiting.size === 0) {
      done();
      return;
    }
    const waiting = this.#acks[of];
    const id = epochKey(epoch.wall, epoch.counter);
    waiting.get(id)?.done(); // a duplicate (it cannot happen for one epoch, but never strand a caller)
    waiting.set(id, { of, key, id, awaiting, done });
  }

  #checkAcks(acks: PendingAcks): void {
    const waiting = this.#acks[acks.of];
    if (acks.awaiting.size > 0 || waiting.get(acks.id) !== acks) return;
    waiting.delete(acks.id);
    acks.done();
  }


  /** The registrant exited: the name goes at once, here and (by `release`) everywhere. */
  #localExit(key: string, epoch: Epoch, reason: ExitReason): void {
    const local = this.#local.get(key);
    if (local === undefined || !sameEpoch(local.claim.epoch, epoch)) return;
    this.#releaseLocal(key, local.claim, reason);
  }

  /** Releases a local claim everywhere; with `acknowledged`, runs it once every member has applied the release. */
  #releaseLocal(key: string, claim: Claim, reason: ExitReason, acknowledged?: () => void): void {
    this.#local.delete(key);
    const record = this.records.get(key);
    if (record === undefined) {
      acknowledged?.();
      return;
    }
    record.claims = withoutClaimAt(record.claims, record.claims.indexOf(claim));
    const epoch = toWireEpoch(claim.epoch);
    this.host.broadcast({ op: 'release', name: record.name, epoch, reason: formatReason(reason), ack: acknowledged !== undefined });
    this.#settle(key, record, reason);
    if (acknowledged !== undefined) this.#awaitAcks('release', key, claim.epoch, new Set(this.host.members()), acknowledged);
    // A commit still waiting for acks answers now: the name is gone either way.
    const commitAcks = this.#acks.commit.get(epochKey(claim.epoch.wall, claim.epoch.counter));
    if (commitAcks !== undefined) {
      commitAcks.awaiting.clear();
      this.#checkAcks(commitAcks);
    }
  }

  #onRelease(from: string, key: string, epoch: Epoch, reason: string): void {
    const record = this.records.get(key);
    const claims = record?.claims;
    // The sender's claim on the name (one per owner), and whether it is the one released.
    const held = claims === undefined ? -1 : claimIndexOf(claims, from);
    const released = held === -1 ? undefined : claims![held]!;
    const matches = released !== undefined && sameEpoch(released.epoch, epoch);
    // Fenced off for a while: a delayed copy of its commit (or a sync listing it) must not bring it back. Only for
    // claims this node holds or voted for: a release of a name never held pins nothing. The fence keeps the
    // claim's own epoch when it is the one released (no second copy of it is kept alive).
    if (released !== undefined || this.#votes.votedFor(from, key, epoch)) this.#tombstone(from, key, matches ? released.epoch : epoch);
    // Fencing: only the claim this release names goes; a newer one stays.
    if (!matches) return;
    record!.claims = withoutClaimAt(claims!, held);
    this.#ownerIndex(from, key, record!);
    this.#settle(key, record!, reason);
  }

  #onSync(from: string, message: Extract<GlobalsMessage, { op: 'sync' }>): void {
    const at = this.#received(from, message.at, 'sync');
    if (at === undefined) return;
    if (message.more === true) {
      const claims = message.claims ?? [];
      if (!this.#syncParts.add(from, at, claims, claimBytes(claims))) {
        this.host.drop('oversized', from, 'a sync whose parts exceed the bound');
      }
      return;
    }
    if (message.claims !== undefined) {
      const earlier = this.#syncParts.take(from, at);
      this.#applySync(from, at, earlier.length === 0 ? message.claims : [...earlier, ...message.claims]);
    }
    if (message.want) {
      this.#answerSync(from, message.sids);
      this.#resendAwaited(from);
      return;
    }
    for (const sid of message.sids) {
      const sync = this.#syncs.get(sid);
      if (sync !== undefined && sync.awaiting.delete(from) && sync.awaiting.size === 0) this.#endSync(sid);
    }
  }

  /** A sync from `from` made at `at`: the sender is the authority on its own claims. */
  #applySync(from: string, at: Epoch, claims: readonly WireClaim[]): void {
    const fence = this.#syncFences.get(from);
    if (fence !== undefined && compareEpochs(at, fence) <= 0) {
      // Older than one already applied (a duplicate, or reordered): what it says is out of date.
      this.host.drop('stale', from, 'a sync older than one already applied');
      return;
    }
    this.#syncFences.set(from, at);
    // The first sync after a nodeup may bring claims made away from us (a partition): the sender speaks for
    // itself. Afterwards, every claim it makes goes through our vote, so a later sync that brings an unvoted
    // claim which would beat another owner's is forged (a commit in disguise), not news.
    const first = !this.#heard.has(from);
    const listed = new Map<string, { name: Name; pid: Pid; epoch: Epoch }>();
    for (const claim of claims) {
      const epoch = this.#received(from, claim.epoch, 'sync entry');
      if (epoch === undefined) continue;
      const key = keyOf(claim);
      if (!first && this.#wouldDisplace(from, key, epoch)) {
        this.host.drop('forged', from, `a sync entry for ${key} that this node never voted for, older than its holder's claim`);
        continue;
      }
      listed.set(key, { name: claim.name, pid: claim.pid, epoch });
    }
    for (const key of [...(this.#byOwner.get(from) ?? [])]) {
      const record = this.records.get(key);
      if (record === undefined) continue;
      const keep = listed.get(key);
      const before = record.claims.length;
      // What it no longer lists is gone, unless it is younger than the sync (committed after it was made).
      record.claims = record.claims.filter(
        (claim) => claim.owner !== from || compareEpochs(claim.epoch, at) > 0 || (keep !== undefined && sameEpoch(claim.epoch, keep.epoch)),
      );
      if (record.claims.length !== before) {
        this.#ownerIndex(from, key, record);
        this.#settle(key, record, 'noproc');
      }
    }
    for (const [key, claim] of listed) this.#addClaim(key, claim.name, { owner: from, pid: claim.pid, epoch: claim.epoch });
    this.#heard.add(from);
    if (this.#joining?.awaiting.delete(from) === true && this.#joining.awaiting.size === 0) this.#joining.done();
  }

  /** Whether a claim of `owner` on `key` at `epoch`, unknown and unvoted here, would take the name from another owner. */
  #wouldDisplace(owner: string, key: string, epoch: Epoch): boolean {
    const record = this.records.get(key);
    if (record === undefined || this.#votes.votedFor(owner, key, epoch)) return false;
    if (record.claims.some((claim) => claim.owner === owner && sameEpoch(claim.epoch, epoch))) return false;
    return record.claims.some((claim) => claim.owner !== owner && compareEpochs(epoch, claim.epoch) < 0);
  }

  /**
   * Answers a peer's sync requests with this node's claims: the requests of
   * one event-loop turn get one answer (a batch of a thousand, say), and a
   * peer gets at most `SYNC_ANSWER_BURST` answers at once, then one per
   * `SYNC_ANSWER_INTERVAL_MS` (a token bucket): a request never multiplies work.
   */
  #answerSync(peer: string, sids: readonly number[]): void {
    let answers = this.#answers.get(peer);
    if (answers === undefined) {
      answers = { tokens: SYNC_ANSWER_BURST, refilled: Date.now(), sids: new Set(), timer: undefined };
      this.#answers.set(peer, answers);
    }
    for (const sid of sids) if (answers.sids.size < 64) answers.sids.add(sid);
    if (answers.timer !== undefined) return;
    refill(answers);
    const wait = answers.tokens >= 1 ? 0 : (1 - answers.tokens) * SYNC_ANSWER_INTERVAL_MS;
    answers.timer = setTimeout(() => {
      const current = this.#answers.get(peer);
      if (current === undefined) return;
      current.timer = undefined;
      refill(current);
      current.tokens -= 1;
      const answered = [...current.sids];
      current.sids.clear();
      this.#sendSync(peer, false, answered);
    }, wait);
  }

  /**
   * What `peer` may have lost of ours that something here waits on: claims
   * awaiting its vote, commits its ack, unregisters and queries its answer
   * (each is idempotent at the receiver).
   */
  #resendAwaited(peer: string): void {
    for (const [qid, request] of this.#unregisters) {
      if (request.owner === peer) this.host.sendTo(peer, { op: 'unregister', name: request.name, qid });
    }
    for (const [qid, query] of this.#queries) if (query.awaiting.has(peer)) this.host.sendTo(peer, { op: 'whereis', name: query.name, qid });
    for (const claim of this.#pending.values()) {
      if (claim.awaiting.has(peer)) this.host.sendTo(peer, claimMessage(claim));
    }
    for (const acks of this.#acks.commit.values()) {
      if (!acks.awaiting.has(peer)) continue;
      const local = this.#local.get(acks.key);
      const record = this.records.get(acks.key);
      if (local === undefined || record === undefined) continue;
      this.host.sendTo(peer, { op: 'commit', name: record.name, pid: local.claim.pid, epoch: toWireEpoch(local.claim.epoch) });
    }
  }

  #onWhere(from: string, qid: number, pid: Pid | undefined): void {
    const query = this.#queries.get(qid);
    if (query === undefined || !query.awaiting.delete(from)) return;
    if (pid !== undefined || query.awaiting.size === 0) this.#answerQuery(qid, pid);
  }

  #answerQuery(qid: number, pid: Pid | undefined): void {
    const query = this.#queries.get(qid);
    if (query === undefined) return;
    this.#queries.delete(qid);
    clearTimeout(query.timer);
    query.done(pid);
  }

  #addClaim(key: string, name: Name, claim: Claim): void {
    if (claim.owner !== this.self) {
      const released = this.#released.get(key, claim.owner);
      if (released !== undefined && compareEpochs(claim.epoch, released) <= 0) return; // released already: a stale message
    }
    let record = this.records.get(key);
    if (record === undefined) {
      // An array name is copied: a caller that reuses its array after registering must not move the
      // record's place in the tuple index (it is removed by the elements it was indexed under).
      record = { name: Array.isArray(name) ? Object.freeze([...name]) : name, claims: [], current: undefined };
      this.records.set(key, record);
      this.#tuples.set(record.name, record);
    }
    const existing = claimIndexOf(record.claims, claim.owner);
    if (existing !== -1) {
      // One claim per owner: a newer one replaces an older, a stale one is ignored.
      if (compareEpochs(record.claims[existing]!.epoch, claim.epoch) >= 0) return;
      record.claims = withoutClaimAt(record.claims, existing);
    }
    // A new array of the exact length: a push onto an empty one reserves room for 17, and nearly every record holds one claim.
    record.claims = record.claims.length === 0 ? [claim] : [...record.claims, claim];
    if (claim.owner !== this.self) this.#ownerIndex(claim.owner, key, record);
    const local = this.#local.get(key);
    if (local !== undefined && claim.owner !== this.self) {
      this.#resolveLocalConflict(key, record, local.claim, claim);
      return;
    }
    this.#settle(key, record, 'name_conflict');
  }

  /**
   * We own the name and learn that another node does too (a healed
   * partition): every node runs the same policy; the owner of a loser acts
   * on its own process, so the loser is never left running unaware.
   */
  #resolveLocalConflict(key: string, record: NameRecord, local: Claim, remote: Claim): void {
    const outcome = resolveConflict(this.policy, record.name, conflictClaim(local), conflictClaim(remote));
    this.host.conflict(outcome);
    const winner = outcome.winner?.pid;
    for (const loser of outcome.losers) {
      if (loser.node === this.self) {
        const held = this.#local.get(key);
        if (held === undefined) continue;
        held.cancel();
        this.#releaseLocal(key, held.claim, { name_conflict: { name: record.name, winner } });
        if (this.policy === 'keep-oldest') {
          this.host.node.exit(loser.pid, { name_conflict: { name: record.name, winner } });
        } else {
          const message: NameConflictMessage = { type: 'name_conflict', name: record.name, winner };
          this.host.node.send(loser.pid, message);
        }
      } else {
        // Its owner runs the same resolution and releases it; meanwhile it no longer counts here.
        record.claims = record.claims.filter((claim) => !(claim.owner === loser.node && sameEpoch(claim.epoch, loser.epoch)));
        this.#ownerIndex(loser.node, key, record);
      }
    }
    this.#settle(key, record, 'name_conflict');
  }

  /** Recomputes what `whereisName` answers for `key`, and tells listeners what changed. */
  #settle(key: string, record: NameRecord, reason: ExitReason): void {
    const previous = record.current;
    record.current = this.#pick(record);
    if (record.claims.length === 0 && this.records.delete(key)) this.#tuples.delete(record.name);
    if (previous === record.current) return;
    if (previous !== undefined) this.host.unregistered(record.name, previous.pid, reason);
    if (record.current !== undefined) this.host.registered(record.name, record.current.pid);
  }

  #pick(record: NameRecord): Claim | undefined {
    const claims = record.claims;
    let winner: Claim | undefined = claims[0];
    for (let index = 1; index < claims.length; index++) {
      const next = claims[index]!;
      if (winner === undefined) return undefined;
      const outcome = resolveConflict(this.policy, record.name, conflictClaim(winner), conflictClaim(next));
      const kept = outcome.winner;
      winner = kept === undefined ? undefined : kept.node === winner.owner && sameEpoch(kept.epoch, winner.epoch) ? winner : next;
    }
    return winner;
  }

  #tombstone(owner: string, key: string, epoch: Epoch): void {
    const previous = this.#released.get(key, owner);
    if (previous !== undefined && compareEpochs(previous, epoch) >= 0) return;
    const now = Date.now();
    this.#released.set(key, owner, epoch, now);
    // Expire the oldest: a stale copy of a message does not linger in a broker for minutes.
    this.#released.expire(now - TOMBSTONE_TTL_MS + 1, this.host.maxReleaseFences ?? MAX_RELEASE_FENCES);
  }

  /** Forgets the release fences and the sync fence of `node`: its new incarnation starts afresh. */
  #forgetFences(node: string): void {
    this.#released.forget(node);
    this.#syncFences.delete(node);
  }

  #ownerIndex(owner: string, key: string, record: NameRecord): void {
    const has = record.claims.some((claim) => claim.owner === owner);
    let keys = this.#byOwner.get(owner);
    if (has) {
      if (keys === undefined) this.#byOwner.set(owner, (keys = new Set()));
      keys.add(key);
    } else if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.#byOwner.delete(owner);
    }
  }

  /**
   * Sends `node` a sync: this node's claims (unless `withClaims` is false: a
   * bare request), in parts that stay far below the frame limit, stamped
   * with this node's clock so the receiver can fence it.
   */
  #sendSync(node: string, want: boolean, sids: readonly number[], withClaims = true): void {
    const at = toWireEpoch(this.clock.now());
    if (!withClaims) {
      this.host.sendTo(node, { op: 'sync', at, want, sids });
      return;
    }
    let part: WireClaim[] = [];
    let bytes = 0;
    for (const [key, { claim }] of this.#local) {
      const record = this.records.get(key);
      if (record === undefined) continue;
      part.push({ name: record.name, pid: claim.pid, epoch: toWireEpoch(claim.epoch) });
      bytes += key.length + 96;
      if (bytes >= SYNC_PART_BYTES) {
        this.host.sendTo(node, { op: 'sync', claims: part, at, want: false, sids: [], more: true });
        part = [];
        bytes = 0;
      }
    }
    this.host.sendTo(node, { op: 'sync', claims: part, at, want, sids });
  }
}

/** Where `owner`'s claim is in `claims` (at most one per owner), or -1. */
function claimIndexOf(claims: readonly Claim[], owner: string): number {
  for (let index = 0; index < claims.length; index++) if (claims[index]!.owner === owner) return index;
  return -1;
}

/** `claims` without the one at `index` (none when -1), as a new array: nearly always it was the only one. */
function withoutClaimAt(claims: Claim[], index: number): Claim[] {
  if (index === -1) return claims;
  return claims.length === 1 ? [] : claims.filter((_, at) => at !== index);
}

/** A callback answering `yes`, holding nothing but `done` (see `#watchRegistrant`). */
function answerYes(done: (answer: Answer) => void): () => void {
  return () => done('yes');
}

/** How long a release fences off stale copies of the claim it released. */
const TOMBSTONE_TTL_MS = 60_000;

/**
 * Most release fences a table holds (about 300 bytes each): 60 s of 3 300
 * releases a second. Twice the votes a node remembers, so a name's vote,
 * taken before its release, is forgotten first.
 */
const MAX_RELEASE_FENCES = 200_000;

/** Adds the tokens earned since the bucket was last refilled. */
function refill(bucket: { tokens: number; refilled: number }): void {
  const now = Date.now();
  bucket.tokens = Math.min(SYNC_ANSWER_BURST, bucket.tokens + (now - bucket.refilled) / SYNC_ANSWER_INTERVAL_MS);
  bucket.refilled = now;
}

/** A claim's epoch (of this node's clock) as a map key: one number while it fits exactly, else a string. */
type EpochKey = number | string;

function epochKey(wall: number, counter: number): EpochKey {
  // A counter below 2^10 and a wall clock below 2^43 ms (the year 2248) pack into one safe integer.
  return counter < 1024 && wall < 2 ** 43 && wall >= 0 ? wall * 1024 + counter : `${wall}.${counter}`;
}

function claimMessage(claim: PendingClaim): GlobalsMessage {
  const message = { op: 'claim' as const, name: claim.name, pid: claim.pid, epoch: toWireEpoch(claim.epoch) };
  return claim.round === 0 ? message : { ...message, round: claim.round };
}

/** Roughly the bytes a list of claims holds: what bounds a peer's unfinished syncs. */
function claimBytes(claims: readonly WireClaim[]): number {
  let bytes = 0;
  for (const claim of claims) bytes += keyOf(claim).length + 96;
  return bytes;
}

function conflictClaim(claim: Claim): ConflictClaim {
  return { pid: claim.pid, epoch: claim.epoch, node: claim.owner };
}
