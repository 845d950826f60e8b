import { BadArgError, formatReason, type ExitReason, type Name, type Node, type Pid } from '@roster/core';
import type { Logger } from 'pino';
import { resolveConflict, type ConflictClaim, type ConflictOutcome, type ConflictPolicy, type NameConflictMessage } from '../conflict.js';
import { compareEpochs, HybridLogicalClock, sameEpoch, type Epoch } from '../epoch.js';
import { RegistryUnavailableError } from '../errors.js';
import { fromWireEpoch, keyOf, toWireEpoch, type GlobalsMessage, type WireEpoch } from './protocol.js';

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
  /** Members that left while we waited: their entries are gone, their silence is not consent but absence. */
  readonly departed: Set<string>;
  /** Owners named by `remote` votes: each must have voted yes itself. */
  readonly remoteOwners: Set<string>;
  readonly done: (answer: 'yes' | 'no' | Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export type Answer = 'yes' | 'no' | Error;

type WireClaim = { readonly name: Name; readonly pid: Pid; readonly epoch: WireEpoch };

/** Roughly how many bytes of claims one sync part carries (a frame holds 1 MiB by default). */
const SYNC_PART_BYTES = 128 * 1024;

/** What the table needs from its surroundings. */
export interface TableHost {
  readonly node: Node;
  readonly logger: Logger;
  members(): string[];
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
  readonly #pending = new Map<string, PendingClaim>();
  /** Local claims, with the canceller of their registrant's exit hook. */
  readonly #local = new Map<string, { claim: Claim; cancel: () => void }>();
  /** Names each remote owner holds, so a nodedown is O(its names). */
  readonly #byOwner = new Map<string, Set<string>>();
  readonly #syncs = new Map<number, { awaiting: Set<string>; timer: NodeJS.Timeout; done: (error?: Error) => void }>();
  /** Parts of a sync still arriving, by sender (they come in order: FIFO per pair). */
  readonly #syncParts = new Map<string, WireClaim[]>();
  readonly #queries = new Map<number, { awaiting: Set<string>; timer: NodeJS.Timeout; done: (pid: Pid | undefined | Error) => void }>();
  /**
   * Fencing of releases: by `owner\0key`, the newest epoch that owner released
   * for that name (and when we learnt it, for expiry). A commit or sync entry
   * of that owner at or below it is a stale message (a duplicate, or one a
   * reordering delivered after its release) and must not bring the claim back.
   */
  readonly #released = new Map<string, { epoch: Epoch; at: number }>();
  readonly clock: HybridLogicalClock;
  readonly self: string;
  #nextId = 1;

  constructor(
    readonly host: TableHost,
    readonly policy: ConflictPolicy,
  ) {
    this.self = host.node.name;
    this.clock = new HybridLogicalClock(this.self);
  }

  whereis(key: string): Pid | undefined {
    return this.records.get(key)?.current?.pid;
  }

  names(): Name[] {
    const names: Name[] = [];
    for (const record of this.records.values()) if (record.current !== undefined) names.push(record.name);
    return names;
  }

  // ---- local requests -------------------------------------------------------------

  /** Starts a claim; `done` gets `yes`, `no`, or an error (unavailable, dead registrant). */
  register(key: string, name: Name, pid: Pid, timeoutMs: number, done: (answer: Answer) => void): void {
    if (this.records.get(key)?.current !== undefined || this.#pending.has(key)) {
      done('no');
      return;
    }
    const claim: PendingClaim = {
      key,
      name,
      pid,
      epoch: this.clock.now(),
      awaiting: new Set(this.host.members()),
      acks: new Set(),
      departed: new Set(),
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
      if (this.#pending.get(key) !== claim) return;
      this.#pending.delete(key);
      done(new RegistryUnavailableError(`registering ${key}: no answer from ${[...claim.awaiting].join(', ')} within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      this.host.broadcast({ op: 'claim', name, pid, epoch: toWireEpoch(claim.epoch) });
    } catch (error) {
      // A name that cannot cross the wire (too large for a frame) is the caller's error, not the registry's crash.
      this.#finish(claim, error instanceof Error ? error : new Error(String(error)));
    }
  }

  unregister(key: string, reason: ExitReason = 'unregistered'): void {
    const local = this.#local.get(key);
    if (local === undefined) return;
    local.cancel();
    this.#releaseLocal(key, local.claim, reason);
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
    for (const member of members) this.#sendSync(member, true, sid);
  }

  /**
   * Periodic anti-entropy: every member is sent what this node owns, so a
   * lost commit or release is repaired even when no membership changes.
   */
  antiEntropy(): void {
    for (const member of this.host.members()) this.#sendSync(member, false, 0);
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
    this.#queries.set(qid, { awaiting: new Set(askees), timer, done });
    for (const node of askees) this.host.sendTo(node, { op: 'whereis', name, qid });
  }

  // ---- peer messages ----------------------------------------------------------------

  onMessage(from: string, message: GlobalsMessage): void {
    switch (message.op) {
      case 'claim':
        return this.#onClaim(from, keyOf(message), message.name, message.pid, fromWireEpoch(message.epoch));
      case 'vote':
        return this.#onVote(from, message);
      case 'commit': {
        const epoch = fromWireEpoch(message.epoch);
        if (epoch.node !== from) return; // an owner commits only its own claims
        this.clock.observe(epoch);
        return this.#addClaim(keyOf(message), message.name, { owner: from, pid: message.pid, epoch });
      }
      case 'release':
        return this.#onRelease(from, keyOf(message), fromWireEpoch(message.epoch), message.reason);
      case 'sync':
        return this.#onSync(from, message);
      case 'whereis': {
        const local = this.#local.get(keyOf(message));
        this.host.sendTo(from, { op: 'where', qid: message.qid, pid: local?.claim.pid ?? null });
        return;
      }
      case 'where':
        return this.#onWhere(from, message.qid, message.pid ?? undefined);
    }
  }

  onNodeUp(node: string): void {
    // Anti-entropy: the newcomer learns what we own (it sends us its own the same way).
    this.#sendSync(node, false, 0);
    // A claim in flight needs the newcomer's vote too: it may hold the name from the other side of a partition.
    for (const claim of this.#pending.values()) {
      if (claim.acks.has(node) || claim.awaiting.has(node)) continue;
      claim.awaiting.add(node);
      claim.departed.delete(node);
      this.host.sendTo(node, { op: 'claim', name: claim.name, pid: claim.pid, epoch: toWireEpoch(claim.epoch) });
    }
  }

  onNodeDown(node: string): void {
    this.#syncParts.delete(node);
    // Its entries go below; a later incarnation's clock may run behind this one's, so its fences go too
    // (the cluster layer drops frames of an incarnation it no longer lists).
    for (const id of this.#released.keys()) if (id.startsWith(`${node}\u0000`)) this.#released.delete(id);
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
      if (claim.awaiting.delete(node)) claim.departed.add(node);
      this.#checkVotes(claim);
    }
    for (const [sid, sync] of [...this.#syncs]) {
      sync.awaiting.delete(node);
      if (sync.awaiting.size === 0) this.#endSync(sid);
    }
    for (const [qid, query] of this.#queries) {
      if (query.awaiting.delete(node) && query.awaiting.size === 0) this.#answerQuery(qid, undefined);
    }
  }

  /**
   * After the registry actor restarted: claims in flight fail, what others
   * own is forgotten (anti-entropy brings it back), names of live local
   * processes stay.
   */
  reset(): void {
    for (const claim of this.#pending.values()) {
      if (claim.timer !== undefined) clearTimeout(claim.timer);
      claim.done(new RegistryUnavailableError('the registry restarted while the claim was in flight'));
    }
    this.#pending.clear();
    this.#syncParts.clear();
    for (const [key, record] of this.records) {
      record.claims = record.claims.filter((claim) => claim.owner === this.self);
      this.#settle(key, record, 'noconnection');
    }
    this.#byOwner.clear();
    for (const query of this.#queries.values()) clearTimeout(query.timer);
    this.#queries.clear();
  }

  // ---- the protocol ------------------------------------------------------------------

  #onClaim(from: string, key: string, name: Name, pid: Pid, epoch: Epoch): void {
    if (epoch.node !== from) return;
    this.clock.observe(epoch);
    const wireEpoch = toWireEpoch(epoch);
    if (this.#local.has(key)) {
      this.host.sendTo(from, { op: 'vote', name, epoch: wireEpoch, vote: 'no', holder: this.self });
      return;
    }
    const own = this.#pending.get(key);
    if (own !== undefined && compareEpochs(own.epoch, epoch) < 0) {
      // Our claim is older: theirs yields.
      this.host.sendTo(from, { op: 'vote', name, epoch: wireEpoch, vote: 'no', holder: this.self });
      return;
    }
    const owner = this.records.get(key)?.current?.owner;
    if (owner !== undefined && owner !== from) {
      // Someone else holds it in our view; the claimant checks that owner's own vote.
      this.host.sendTo(from, { op: 'vote', name, epoch: wireEpoch, vote: 'remote', owner });
      return;
    }
    this.host.sendTo(from, { op: 'vote', name, epoch: wireEpoch, vote: 'yes' });
  }

  #onVote(from: string, message: Extract<GlobalsMessage, { op: 'vote' }>): void {
    const claim = this.#pending.get(keyOf(message));
    if (claim === undefined || !sameEpoch(claim.epoch, fromWireEpoch(message.epoch))) return; // a vote on a claim already decided
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
      // The owner is the authority on its names: its own yes means the entry elsewhere was stale.
      if (!claim.acks.has(owner) && !claim.departed.has(owner)) {
        this.#finish(claim, 'no');
        return;
      }
    }
    this.#commit(claim);
  }

  #finish(claim: PendingClaim, answer: Answer): void {
    if (this.#pending.get(claim.key) !== claim) return;
    this.#pending.delete(claim.key);
    if (claim.timer !== undefined) clearTimeout(claim.timer);
    claim.done(answer);
  }

  #commit(pending: PendingClaim): void {
    const { key, name, pid, epoch } = pending;
    const cancel = this.host.node.watchExit(pid, (reason) => this.#localExit(key, epoch, reason));
    if (cancel === undefined) {
      this.#finish(pending, new BadArgError(`cannot register ${key}: ${pid.key} exited during the registration`));
      return;
    }
    this.#finish(pending, 'yes');
    const claim: Claim = { owner: this.self, pid, epoch };
    this.#local.set(key, { claim, cancel });
    this.host.broadcast({ op: 'commit', name, pid, epoch: toWireEpoch(epoch) });
    this.#addClaim(key, name, claim);
  }

  /** The registrant exited: the name goes at once, here and (by `release`) everywhere. */
  #localExit(key: string, epoch: Epoch, reason: ExitReason): void {
    const local = this.#local.get(key);
    if (local === undefined || !sameEpoch(local.claim.epoch, epoch)) return;
    this.#releaseLocal(key, local.claim, reason);
  }

  #releaseLocal(key: string, claim: Claim, reason: ExitReason): void {
    this.#local.delete(key);
    const record = this.records.get(key);
    if (record === undefined) return;
    record.claims = record.claims.filter((candidate) => candidate !== claim);
    this.host.broadcast({ op: 'release', name: record.name, epoch: toWireEpoch(claim.epoch), reason: formatReason(reason) });
    this.#settle(key, record, reason);
  }

  #onRelease(from: string, key: string, epoch: Epoch, reason: string): void {
    // Remembered even when we hold no such claim: its commit may still be on its way (reordered).
    this.#tombstone(from, key, epoch);
    const record = this.records.get(key);
    if (record === undefined) return;
    // Fencing: only the claim this release names goes; a newer one stays.
    const before = record.claims.length;
    record.claims = record.claims.filter((claim) => !(claim.owner === from && sameEpoch(claim.epoch, epoch)));
    if (record.claims.length === before) return;
    this.#ownerIndex(from, key, record);
    this.#settle(key, record, reason);
  }

  #onSync(from: string, message: Extract<GlobalsMessage, { op: 'sync' }>): void {
    if (message.more === true) {
      const parts = this.#syncParts.get(from);
      if (parts === undefined) this.#syncParts.set(from, [...message.claims]);
      else parts.push(...message.claims);
      return;
    }
    const earlier = this.#syncParts.get(from);
    this.#syncParts.delete(from);
    const claims = earlier === undefined ? message.claims : [...earlier, ...message.claims];
    // The sender is the authority on its own claims: what it no longer lists is gone.
    const listed = new Map<string, { name: Name; pid: Pid; epoch: Epoch }>();
    for (const claim of claims) {
      const epoch = fromWireEpoch(claim.epoch);
      if (epoch.node !== from) continue;
      this.clock.observe(epoch);
      listed.set(keyOf(claim), { name: claim.name, pid: claim.pid, epoch });
    }
    for (const key of [...(this.#byOwner.get(from) ?? [])]) {
      const record = this.records.get(key);
      if (record === undefined) continue;
      const keep = listed.get(key);
      const before = record.claims.length;
      record.claims = record.claims.filter((claim) => claim.owner !== from || (keep !== undefined && sameEpoch(claim.epoch, keep.epoch)));
      if (record.claims.length !== before) {
        this.#ownerIndex(from, key, record);
        this.#settle(key, record, 'noproc');
      }
    }
    for (const [key, claim] of listed) this.#addClaim(key, claim.name, { owner: from, pid: claim.pid, epoch: claim.epoch });
    if (message.want) {
      this.#sendSync(from, false, message.sid);
    } else if (message.sid !== 0) {
      const sync = this.#syncs.get(message.sid);
      if (sync !== undefined && sync.awaiting.delete(from) && sync.awaiting.size === 0) this.#endSync(message.sid);
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
      const released = this.#released.get(`${claim.owner}\u0000${key}`);
      if (released !== undefined && compareEpochs(claim.epoch, released.epoch) <= 0) return; // released already: a stale message
    }
    let record = this.records.get(key);
    if (record === undefined) {
      record = { name, claims: [], current: undefined };
      this.records.set(key, record);
    }
    const existing = record.claims.find((candidate) => candidate.owner === claim.owner);
    if (existing !== undefined) {
      // One claim per owner: a newer one replaces an older, a stale one is ignored.
      if (compareEpochs(existing.epoch, claim.epoch) >= 0) return;
      record.claims = record.claims.filter((candidate) => candidate !== existing);
    }
    record.claims.push(claim);
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
    if (record.claims.length === 0) this.records.delete(key);
    if (previous === record.current) return;
    if (previous !== undefined) this.host.unregistered(record.name, previous.pid, reason);
    if (record.current !== undefined) this.host.registered(record.name, record.current.pid);
  }

  #pick(record: NameRecord): Claim | undefined {
    const [first, ...rest] = record.claims;
    let winner: Claim | undefined = first;
    for (const next of rest) {
      if (winner === undefined) return undefined;
      const outcome = resolveConflict(this.policy, record.name, conflictClaim(winner), conflictClaim(next));
      const kept = outcome.winner;
      winner = kept === undefined ? undefined : kept.node === winner.owner && sameEpoch(kept.epoch, winner.epoch) ? winner : next;
    }
    return winner;
  }

  #tombstone(owner: string, key: string, epoch: Epoch): void {
    const id = `${owner}\u0000${key}`;
    const previous = this.#released.get(id);
    if (previous !== undefined && compareEpochs(previous.epoch, epoch) >= 0) return;
    const now = Date.now();
    this.#released.delete(id); // re-inserted last: the map stays in order of arrival
    this.#released.set(id, { epoch, at: now });
    // Expire the oldest: a stale copy of a message does not linger in a broker for minutes.
    for (const [oldest, entry] of this.#released) {
      if (now - entry.at < TOMBSTONE_TTL_MS) break;
      this.#released.delete(oldest);
    }
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

  /** Sends this node's claims to `node`, in parts that stay far below the frame limit. */
  #sendSync(node: string, want: boolean, sid: number): void {
    let part: WireClaim[] = [];
    let bytes = 0;
    for (const [key, { claim }] of this.#local) {
      const record = this.records.get(key);
      if (record === undefined) continue;
      part.push({ name: record.name, pid: claim.pid, epoch: toWireEpoch(claim.epoch) });
      bytes += key.length + 96;
      if (bytes >= SYNC_PART_BYTES) {
        this.host.sendTo(node, { op: 'sync', claims: part, want, sid, more: true });
        part = [];
        bytes = 0;
      }
    }
    this.host.sendTo(node, { op: 'sync', claims: part, want, sid });
  }

}

/** How long a release fences off stale copies of the claim it released. */
const TOMBSTONE_TTL_MS = 60_000;

function conflictClaim(claim: Claim): ConflictClaim {
  return { pid: claim.pid, epoch: claim.epoch, node: claim.owner };
}
