/**
 * One member of a distributed supervisor: the process on each participating
 * node that keeps the converging child table, starts and watches the
 * children placed on its node, and, when it is the leader, places the
 * children of members that are gone.
 *
 * Membership is the registry's: each member holds the global name
 * `['$dsup', id, node]`, so the members a node sees are exactly the live
 * holders its registry knows (every node learns them when it joins, and a
 * lost node's go at its nodedown). The leader is the member with the
 * smallest node name; it acts only with quorum. Duplicates are fenced by the
 * registry, not by this table: a child is started under its global name,
 * and a refused claim means an instance runs elsewhere.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import {
  AlreadyStartedError,
  GenServer,
  Pid,
  StartError,
  formatReason,
  isCleanExit,
  isExitMessage,
  canonicalName,
  nameKey,
  noreply,
  reply,
  stop,
  via,
  type ExitReason,
  type From,
  type Name,
  type Node,
  type Process,
} from '@roster/core';
import { clusterOf, RateLimitedLog, WireEncodeError, type ClusterChannel, type PeerIdentity } from '@roster/cluster';
import { RegistryUnavailableError, type GlobalsRegistry } from '@roster/globals';
import { SupervisionError, type SupervisionErrorCode } from '../errors.js';
import { Placer, type Placement, type PlacementCandidate } from '../placement.js';
import type { ChildContext, DistributedChildCounts, DistributedChildInfo, DistributedChildSpec, DistributedSupervisorEvents } from '../spec.js';
import { ChildTable, type ChildRecord, type RecordChange, type WireChildSpec } from './child-table.js';
import { normalizeChild, type NormalizedChild, type NormalizedSpec, type Shutdown } from './options.js';
import { parseMemberMessage, RECORDS_PER_MESSAGE, type MemberMessage } from './protocol.js';
import { HANDOFF_REQUEST, wrapBehaviour } from './child-behaviour.js';

/** Milliseconds between a member's `load` reports (process count, behaviour keys) and its table checks. */
const TICK_MS = 1000;
/** Every this many ticks, a member sends its table's digest (anti-entropy: writes lost in a cut too short for a nodedown). */
const DIGEST_TICKS = 3;
/**
 * A refused or failed start is tried again after a backoff from 10 ms, doubling to 150 ms: most refusals
 * come from a voter that has not yet seen the old holder's node go, a few ms after this one did.
 */
const RETRY_MIN_MS = 10;
const RETRY_MS = 150;

/** The local name of a member, and the global name that makes it one. */
export function memberLocalName(id: string): string {
  return `roster_dsup_${id}`;
}

export function memberGlobalName(id: string, node: string): Name {
  return ['$dsup', id, node];
}

/** By node, then supervisor id: the member running here, for its table and stats. */
const localMembers = new WeakMap<Node, Map<string, Member>>();

export function memberOf(node: Node, id: string): Member | undefined {
  return localMembers.get(node)?.get(id);
}

/** By node, then supervisor id: the events, kept across member restarts (a listener stays subscribed). */
const emitters = new WeakMap<Node, Map<string, EventEmitter<DistributedSupervisorEvents>>>();

export function eventsOf(node: Node, id: string): EventEmitter<DistributedSupervisorEvents> {
  let byId = emitters.get(node);
  if (byId === undefined) emitters.set(node, (byId = new Map()));
  let events = byId.get(id);
  if (events === undefined) byId.set(id, (events = new EventEmitter()));
  return events;
}

export type MemberRequest =
  | { readonly op: 'which' | 'count' | 'members' }
  | { readonly op: 'startChild'; readonly spec: DistributedChildSpec; readonly timeout: number }
  | { readonly op: 'terminateChild' | 'deleteChild' | 'getChildSpec'; readonly id: string; readonly timeout: number }
  | { readonly op: 'restartChild'; readonly id: string; readonly timeout: number }
  | { readonly op: 'migrate'; readonly id: string; readonly to: string; readonly timeout: number };

/** A member's answer: the value, or a refusal rebuilt into an error by the caller's side. */
export type MemberAnswer =
  | { readonly ok: unknown }
  | { readonly error: SupervisionErrorCode; readonly message: string; readonly field?: string }
  | { readonly alreadyStarted: Pid | undefined; readonly message: string }
  | { readonly startFailed: ExitReason };

export function answerToResult(answer: MemberAnswer, what: string): unknown {
  if ('ok' in answer) return answer.ok;
  if ('alreadyStarted' in answer) throw new AlreadyStartedError(answer.alreadyStarted, what);
  if ('startFailed' in answer) throw new StartError(answer.startFailed);
  throw new SupervisionError(answer.error, answer.message, answer.field);
}

interface PeerMember {
  readonly pid: Pid;
  /** It has reported (hello or load) since it became a member: placement may choose it. */
  reported: boolean;
  /** Children placed on it by this member since its last report. */
  placed: number;
  /** It said it is stopping gracefully: no child is placed on it any more. */
  leaving?: boolean;
}

interface LocalChild {
  readonly pid: Pid;
  /** Set when this member ends it (stop, handoff, correction): its exit is not a crash. */
  ending: boolean;
}

interface Waiter {
  readonly check: (record: ChildRecord | undefined) => MemberAnswer | undefined;
  readonly from: From;
  readonly timer: NodeJS.Timeout;
}

const refusal = (error: SupervisionErrorCode, message: string): MemberAnswer => ({ error, message });

/** What a member counts, read when asked (`DistributedSupervisor.stats`). */
export interface MemberStats {
  /** Peer messages dropped as malformed (each logged at a bounded rate). */
  dropped: number;
  /** Children this member started (first starts, restarts, failovers and handoffs taken in). */
  started: number;
  /** Local restarts of crashed children (counted against the intensity). */
  restarts: number;
  /** Children this member placed after their member was lost. */
  failovers: number;
  /** Event listeners that threw (caught and logged). */
  listenerErrors: number;
}

export class Member {
  readonly events: EventEmitter<DistributedSupervisorEvents>;
  readonly stats: MemberStats = { dropped: 0, started: 0, restarts: 0, failovers: 0, listenerErrors: 0 };
  readonly #dropLog: RateLimitedLog;
  readonly table: ChildTable;
  readonly #spec: NormalizedSpec;
  readonly #node: Node;
  readonly #self: Process;
  readonly #registry: GlobalsRegistry;
  readonly #channel: ClusterChannel;
  readonly #placer = new Placer();
  readonly #members = new Map<string, PeerMember>();
  readonly #local = new Map<string, LocalChild>();
  readonly #starting = new Set<string>();
  /** Local children being handed over: ended here, not yet placed elsewhere. */
  readonly #moving = new Set<string>();
  /** Static children whose args cannot cross the wire: never placed (logged once). */
  readonly #unsendable = new Set<string>();
  readonly #restarts: number[] = [];
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** The last running instance of each child this member saw: what events compare with. */
  readonly #lastRun = new Map<string, { node: string; pid: Pid }>();
  /** Why a local child exited, for the `stopped` event. */
  readonly #exitReasons = new Map<string, ExitReason>();
  /** Static children's local placement functions (those cannot cross the wire). */
  readonly #localPlacement = new Map<string, Placement>();
  readonly #unsubscribe: (() => void)[] = [];
  /** `nameKey` of every child's name in the table. */
  readonly #childKeys = new Set<string>();
  /** The last `hello` or `load` of each node (this one's at every tick): what it hosts and its process count. */
  readonly #heard = new Map<string, { keys: ReadonlySet<string>; load: number }>();
  /** `#digest()` of the table as it is; cleared by every change. */
  #digestCache: string | undefined;
  /** Until when a starting member waits for every member to report before it acts. */
  #syncDeadline = 0;
  /** Exits of children whose start this member has not yet taken in (they died in their first turn). */
  readonly #earlyExits = new Map<string, ExitReason>();
  #synced = false;
  /** The intensity was reached while taking in a start: the loop stops the member. */
  #stopRequested = false;
  #closing = false;
  #scheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryDue = 0;
  /** Consecutive refused starts by child: their backoff. */
  readonly #refusals = new Map<string, number>();

  constructor(spec: NormalizedSpec, self: Process, registry: GlobalsRegistry) {
    this.#spec = spec;
    this.#self = self;
    this.#node = self.node;
    this.events = eventsOf(this.#node, spec.id);
    this.#registry = registry;
    this.table = new ChildTable(this.#node.name);
    this.#dropLog = new RateLimitedLog(self.logger);
    for (const child of spec.children) if (typeof child.placement === 'function') this.#localPlacement.set(child.id, child.placement);
    const cluster = clusterOf(this.#node);
    if (cluster === undefined) throw new SupervisionError('invalid_spec', `DistributedSupervisor ${spec.id}: node ${this.#node.name} is not clustered`, 'node');
    this.#channel = cluster.channel(`$dsup:${spec.id}`, (from: PeerIdentity, message: unknown) => {
      // Taken in at once, not through the mailbox: a member handing its children over while this one does too
      // (two nodes stopping together) must not pick a successor that is leaving.
      if (isLeaving(message)) {
        const member = this.#members.get(from.node);
        if (member !== undefined) member.leaving = true;
        return;
      }
      this.#node.send(self.pid, { $dsup: 'peer', from: from.node, message });
    });
    // Only the names this member cares for reach its mailbox: members' and children's.
    const onRegistered = (name: Name, pid: Pid): void => {
      if (this.#memberNode(name) !== undefined) this.#node.send(self.pid, { $dsup: 'registered', name, pid });
    };
    const onUnregistered = (name: Name, pid: Pid): void => {
      if (this.#memberNode(name) !== undefined || this.#childKeys.has(nameKey(name))) this.#node.send(self.pid, { $dsup: 'unregistered', name, pid });
    };
    registry.on('registered', onRegistered);
    registry.on('unregistered', onUnregistered);
    this.#unsubscribe.push(() => registry.off('registered', onRegistered), () => registry.off('unregistered', onUnregistered));
    // Frames from a peer were lost (a cut shorter than the failure timeout): our tables may differ.
    const onGap = (peer: PeerIdentity): void => this.#node.send(self.pid, { $dsup: 'gap', node: peer.node });
    cluster.on('gap', onGap);
    this.#unsubscribe.push(() => cluster.off('gap', onGap));
    let byId = localMembers.get(this.#node);
    if (byId === undefined) localMembers.set(this.#node, (byId = new Map()));
    byId.set(spec.id, this);
  }

  get id(): string {
    return this.#spec.id;
  }

  // ---- start ---------------------------------------------------------------------

  /** Joins the group: takes the member name, learns the members and their tables (bounded by `syncTimeout`). */
  async join(syncTimeout: number): Promise<void> {
    const name = memberGlobalName(this.id, this.#node.name);
    const answer = await this.#registry.registerName(name, this.#self.pid);
    if (answer === 'no') {
      throw new AlreadyStartedError(this.#registry.whereisName(name), `DistributedSupervisor ${this.id} on ${this.#node.name}`);
    }
    for (const member of this.#registry.registered()) this.#memberRegistered(member, this.#registry.whereisName(member));
    const own = this.#ownReport();
    this.#members.set(this.#node.name, { pid: this.#self.pid, reported: true, placed: 0 });
    this.#broadcast({ op: 'hello', ...own });
    this.#timer = setInterval(() => this.#node.send(this.#self.pid, { $dsup: 'tick' }), TICK_MS);
    this.#timer.unref();
    this.#syncDeadline = Date.now() + syncTimeout;
    this.#checkSynced();
  }

  /**
   * A starting member acts once every member it knows has reported what it
   * hosts (their tables came with their reports), or `syncTimeout` passed.
   */
  #checkSynced(): void {
    if (this.#synced) return;
    for (const member of this.#members.values()) if (!member.reported && Date.now() < this.#syncDeadline) return;
    this.#synced = true;
    this.#schedule();
  }

  /** This node's report (process count and behaviour keys), kept in `#heard` like the peers'. */
  #ownReport(): { load: number; keys: string[] } {
    const report = { load: this.#load(), keys: this.#node.behaviours.keys() };
    this.#heard.set(this.#node.name, { keys: new Set(report.keys), load: report.load });
    return report;
  }

  /** A peer's `hello` or `load`: what it hosts; its first since it became a member makes it a candidate. */
  #reported(from: string, load: number, keys: readonly string[]): void {
    this.#heard.set(from, { keys: new Set(keys), load });
    const member = this.#members.get(from);
    if (member === undefined) return;
    member.placed = 0;
    if (!member.reported) {
      member.reported = true;
      this.#emit('memberUp', from);
    }
    this.#checkSynced();
  }

  // ---- the loop ------------------------------------------------------------------

  /** A message of the member's mailbox (not a call). */
  info(message: unknown): 'stop' | undefined {
    if (isExitMessage(message)) return this.#exited(message.from, message.reason);
    if (typeof message !== 'object' || message === null || !('$dsup' in message)) return undefined;
    const event = message as { $dsup: string; [key: string]: unknown };
    switch (event.$dsup) {
      case 'peer':
        this.#peerMessage(event['from'] as string, event['message']);
        break;
      case 'registered':
        this.#memberRegistered(event['name'] as Name, event['pid'] as Pid);
        this.#schedule();
        break;
      case 'unregistered':
        this.#nameGone(event['name'] as Name, event['pid'] as Pid);
        break;
      case 'tick':
        this.#tick();
        break;
      case 'gap':
        if (this.#members.has(event['node'] as string)) this.#sendTable(event['node'] as string, true);
        break;
      case 'reconcile':
        this.#scheduled = false;
        this.#reconcile();
        break;
      case 'started':
        this.#started(event['id'] as string, event['pid'] as Pid);
        if (this.#stopRequested) return 'stop';
        break;
      case 'startFailed':
        return this.#startFailed(event['id'] as string, event['error']);
    }
    return undefined;
  }

  #tick(): void {
    const own = this.#members.get(this.#node.name);
    if (own !== undefined) own.placed = 0;
    this.#broadcast({ op: 'load', ...this.#ownReport() });
    if (++this.#ticks % DIGEST_TICKS === 0 && this.#members.size > 1) this.#broadcast({ op: 'digest', hash: this.#digest() });
    this.#checkSynced();
    this.#reconcile();
  }

  #ticks = 0;

  /** A hash of every record's version: equal on two members exactly when they hold the same versions. Kept until the table changes. */
  #digest(): string {
    if (this.#digestCache !== undefined) return this.#digestCache;
    const versions = [...this.table.values()].map((record) => `${record.id}\0${record.v[0]}\0${record.v[1]}`).sort();
    return (this.#digestCache = createHash('sha1').update(versions.join('\n')).digest('base64'));
  }

  /** Runs the reconciliation once, soon (several changes in one turn make one pass). */
  #schedule(): void {
    if (this.#scheduled || this.#closing) return;
    this.#scheduled = true;
    this.#node.send(this.#self.pid, { $dsup: 'reconcile' });
  }

  #load(): number {
    return this.#node.processes().length;
  }

  #broadcast(message: MemberMessage): void {
    this.#channel.broadcast(message);
  }

  #send(node: string, message: MemberMessage): void {
    this.#channel.send(node, message);
  }

  // ---- membership ----------------------------------------------------------------

  #memberRegistered(name: Name, pid: Pid | undefined): void {
    const node = this.#memberNode(name);
    if (node === undefined || pid === undefined || node === this.#node.name) return;
    const known = this.#members.get(node);
    if (known !== undefined && known.pid.equals(pid)) return;
    // Its hello may have come before its name did.
    const reported = this.#heard.has(node);
    this.#members.set(node, { pid, reported, placed: 0 });
    if (reported) this.#emit('memberUp', node);
    // A member we had not seen (it started, or its side of a partition healed): tables go both ways.
    this.#sendTable(node, true);
  }

  #memberNode(name: Name): string | undefined {
    if (!Array.isArray(name) || name.length !== 3 || name[0] !== '$dsup' || name[1] !== this.id || typeof name[2] !== 'string') return undefined;
    return name[2];
  }

  #nameGone(name: Name, pid: Pid): void {
    const node = this.#memberNode(name);
    if (node !== undefined) {
      const member = this.#members.get(node);
      if (node === this.#node.name || member === undefined || !member.pid.equals(pid)) return;
      this.#members.delete(node);
      const held: string[] = [];
      for (const record of this.table.values()) {
        if (record.host === node && (record.state === 'running' || record.state === 'assigned')) held.push(record.id);
      }
      this.#emit('nodeLost', node, held);
    }
    // A child's name freed, or a member gone: either may be ours to act on.
    this.#checkWaiters();
    this.#schedule();
  }

  /** The members this node sees, with quorum counted by the registry's view. */
  #quorate(): boolean {
    return this.#members.size >= this.#spec.quorum;
  }

  #leader(): string {
    let leader = this.#node.name;
    for (const node of this.#members.keys()) if (node < leader) leader = node;
    return leader;
  }

  // ---- peers' messages -------------------------------------------------------------

  #peerMessage(from: string, raw: unknown): void {
    const message = parseMemberMessage(raw);
    if (typeof message === 'string') {
      this.stats.dropped++;
      this.#dropLog.warn(`malformed:${from}`, { supervisor: this.id, from, reason: message }, `DistributedSupervisor ${this.id}: dropped a malformed message from ${from}`);
      return;
    }
    switch (message.op) {
      case 'hello':
        this.#reported(from, message.load, message.keys);
        this.#sendTable(from, false);
        this.#send(from, { op: 'load', ...this.#ownReport() });
        break;
      case 'load':
        this.#reported(from, message.load, message.keys);
        break;
      case 'records':
        for (const record of message.records) this.#merge(record);
        if (message.want === true) this.#sendTable(from, false);
        break;
      case 'migrate':
        this.#migrateLocal(message.id, message.to);
        break;
      case 'digest':
        if (message.hash !== this.#digest()) this.#sendTable(from, true);
        break;
    }
    this.#schedule();
  }

  #sendTable(node: string, want: boolean): void {
    const records = [...this.table.values()].map(toWire);
    if (records.length === 0) {
      this.#send(node, { op: 'records', records: [], ...(want ? { want } : {}) });
      return;
    }
    for (let start = 0; start < records.length; start += RECORDS_PER_MESSAGE) {
      const last = start + RECORDS_PER_MESSAGE >= records.length;
      this.#send(node, { op: 'records', records: records.slice(start, start + RECORDS_PER_MESSAGE), ...(want && last ? { want } : {}) });
    }
  }

  #merge(record: ChildRecord): void {
    const previous = this.table.merge(record);
    if (previous === undefined) return;
    this.#changed(previous ?? undefined, record);
  }

  /** Writes a new version here and tells every member; throws `WireEncodeError` (changing nothing) for one that cannot cross. */
  #write(id: string, change: RecordChange): ChildRecord {
    const previous = this.table.get(id);
    const record = this.table.next(id, change);
    this.#broadcast({ op: 'records', records: [toWire(record)] });
    this.table.put(record);
    this.#changed(previous, record);
    return record;
  }

  /** Events, waiters and local effects of a record's new version. */
  #changed(previous: ChildRecord | undefined, record: ChildRecord): void {
    this.#digestCache = undefined;
    this.#childKeys.add(nameKey(record.spec.name));
    const info = this.#info(record);
    if (record.state === 'running' && record.pid !== undefined && !(previous?.state === 'running' && previous.pid?.equals(record.pid))) {
      const last = this.#lastRun.get(record.id);
      if (last === undefined || !last.pid.equals(record.pid)) {
        this.#lastRun.set(record.id, { node: record.host!, pid: record.pid });
        if (last === undefined) this.#emit('started', info);
        else if (last.node === record.host) this.#emit('restarted', info);
        else this.#emit('migrated', info, last.node);
      }
    }
    if ((record.state === 'stopped' || record.state === 'deleted') && previous !== undefined && previous.state !== 'stopped' && previous.state !== 'deleted') {
      this.#emit('stopped', info, this.#exitReasons.get(record.id));
      this.#exitReasons.delete(record.id);
    }
    this.#checkWaiters(record.id);
    this.#schedule();
  }

  #emit<E extends keyof DistributedSupervisorEvents>(event: E, ...args: Parameters<DistributedSupervisorEvents[E]>): void {
    try {
      (this.events.emit as (event: E, ...args: unknown[]) => boolean)(event, ...args);
    } catch (error) {
      this.stats.listenerErrors++;
      this.#self.logger.error({ err: error, supervisor: this.id, event }, `DistributedSupervisor ${this.id}: a ${event} listener threw (ignored)`);
    }
  }

  // ---- reconciliation ----------------------------------------------------------------

  /** Makes this node's part of the world match the table; the leader also places the children of lost members. */
  #reconcile(): void {
    if (!this.#synced || this.#closing) return;
    const self = this.#node.name;
    const quorate = this.#quorate();
    const leading = quorate && this.#leader() === self;
    if (leading) {
      for (const child of this.#spec.children) {
        if (this.table.get(child.id) !== undefined || this.#unsendable.has(child.id)) continue;
        try {
          this.#place(child.id, wireSpec(child), 0, undefined);
        } catch (error) {
          if (!(error instanceof WireEncodeError)) throw error;
          this.#unsendable.add(child.id);
          this.#self.logger.error({ supervisor: this.id, child: child.id, path: error.path }, `DistributedSupervisor ${this.id}: child ${child.id}'s args cannot cross the wire (${error.path}); it is not started`);
        }
      }
    }
    let pending = false;
    for (const record of this.table.values()) {
      const local = this.#local.get(record.id);
      if (record.state === 'stopped' || record.state === 'deleted') {
        if (local !== undefined && !local.ending) void this.#end(record.id, local, record.spec.shutdown, 'shutdown');
        continue;
      }
      if (record.host === self) {
        if (local !== undefined) {
          if (record.state !== 'running' || !record.pid?.equals(local.pid)) this.#write(record.id, { state: 'running', pid: local.pid, handoff: undefined, failure: undefined });
        } else if (!this.#starting.has(record.id) && !this.#moving.has(record.id)) {
          if (quorate) this.#startLocal(record);
          else pending = true;
        }
        continue;
      }
      if (local !== undefined && !local.ending && this.#registry.whereisName(record.spec.name)?.equals(local.pid)) {
        // Ours holds the name: the table must say so (a heal, or a placement made without seeing it).
        this.#write(record.id, { state: 'running', host: self, pid: local.pid, handoff: undefined, failure: undefined });
        continue;
      }
      if (record.host !== undefined && this.#members.has(record.host)) continue;
      if (!leading) {
        pending = true;
        continue;
      }
      if (record.host !== undefined && record.spec.restart === 'temporary') {
        // A temporary child does not outlive its node.
        this.#write(record.id, { state: 'deleted', host: undefined, pid: undefined });
        continue;
      }
      const lost = record.host !== undefined;
      if (lost) this.stats.failovers++;
      if (this.#place(record.id, record.spec, record.restarts + (lost ? 1 : 0), record.handoff) === undefined) pending = true;
    }
    if (pending) this.#retryLater();
  }

  #retryLater(ms = RETRY_MS): void {
    if (this.#closing) return;
    const due = Date.now() + ms;
    if (this.#retry !== undefined) {
      if (this.#retryDue <= due) return;
      clearTimeout(this.#retry);
    }
    this.#retryDue = due;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#schedule();
    }, ms);
    this.#retry.unref();
  }

  /** The next backoff for a refused start of `id`. */
  #backoff(id: string): number {
    const attempts = this.#refusals.get(id) ?? 0;
    this.#refusals.set(id, attempts + 1);
    return Math.min(RETRY_MS, RETRY_MIN_MS * 2 ** attempts);
  }

  #candidates(behaviour: string, exclude?: string): PlacementCandidate[] {
    const candidates: PlacementCandidate[] = [];
    for (const [node, member] of this.#members) {
      const report = this.#heard.get(node);
      if (node === exclude || member.leaving === true || !member.reported || report?.keys.has(behaviour) !== true) continue;
      candidates.push({ node, load: report.load + member.placed });
    }
    return candidates.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  #placementOf(id: string, spec: WireChildSpec): Placement {
    if (spec.placement === 'function') return this.#localPlacement.get(id) ?? this.#spec.placement;
    return (spec.placement as Placement | undefined) ?? this.#spec.placement;
  }

  /** The node `id`'s placement names among the candidates (undefined: none). */
  #choose(id: string, spec: WireChildSpec, exclude?: string): string | undefined {
    const candidates = this.#candidates(spec.behaviour, exclude);
    if (candidates.length === 0) return undefined;
    return this.#placer.choose(this.#placementOf(id, spec), { childId: id, behaviour: spec.behaviour, candidates, self: this.#node.name });
  }

  /** Assigns `id` to a node by its placement; answers the node, or undefined when none qualifies. */
  #place(id: string, spec: WireChildSpec, restarts: number, handoff: ChildRecord['handoff'], chosen = this.#choose(id, spec)): string | undefined {
    const existing = this.table.get(id);
    if (chosen === undefined) {
      if (existing === undefined || existing.host !== undefined) this.#write(id, { spec, state: 'assigned', host: undefined, pid: undefined, restarts, handoff });
      return undefined;
    }
    const member = this.#members.get(chosen);
    if (member !== undefined) member.placed++;
    this.#write(id, { spec, state: 'assigned', host: chosen, pid: undefined, restarts, handoff, failure: undefined });
    return chosen;
  }

  // ---- local children ------------------------------------------------------------

  #startLocal(record: ChildRecord): void {
    const entry = this.#node.behaviours.get(record.spec.behaviour);
    if (entry === undefined || entry.kind !== 'gen_server') {
      // Placed here on an old view of our keys: back to the leader.
      this.#write(record.id, { state: 'assigned', host: undefined, pid: undefined });
      return;
    }
    const context: Omit<ChildContext, 'epoch'> = {
      supervisor: this.id,
      childId: record.id,
      name: record.spec.name,
      handoff: record.handoff?.value,
    };
    const behaviour = wrapBehaviour(entry.behaviour, context, () => this.#registry.epochOf(record.spec.name));
    this.#starting.add(record.id);
    const pid = this.#self.pid;
    GenServer.startLink(this.#self, behaviour, record.spec.args, {
      name: via(this.#spec.registry, record.spec.name),
      timeout: this.#spec.startTimeout,
    }).then(
      (started) => this.#node.send(pid, { $dsup: 'started', id: record.id, pid: started }),
      (error: unknown) => this.#node.send(pid, { $dsup: 'startFailed', id: record.id, error }),
    );
  }

  #started(id: string, pid: Pid): void {
    this.#starting.delete(id);
    this.#refusals.delete(id);
    const local: LocalChild = { pid, ending: false };
    this.#local.set(id, local);
    const early = this.#earlyExits.get(pid.key);
    if (early !== undefined || !this.#node.isAlive(pid)) {
      // It exited before its start was taken in: its exit is handled as any other.
      this.#earlyExits.delete(pid.key);
      const record = this.table.get(id);
      if (record !== undefined && record.host === this.#node.name && record.state !== 'running') this.#write(id, { state: 'running', pid });
      if (this.#exited(pid, early ?? 'noproc') === 'stop') this.#stopRequested = true;
      return;
    }
    const record = this.table.get(id);
    if (record === undefined || record.host !== this.#node.name || record.state === 'stopped' || record.state === 'deleted') {
      // The table moved on while it started: it is not wanted here.
      void this.#end(id, local, record?.spec.shutdown ?? 5000, 'shutdown');
      return;
    }
    this.stats.started++;
    this.#write(id, { state: 'running', pid, handoff: undefined, failure: undefined });
  }

  #startFailed(id: string, error: unknown): 'stop' | undefined {
    this.#starting.delete(id);
    const record = this.table.get(id);
    if (record === undefined || record.host !== this.#node.name || record.state === 'stopped' || record.state === 'deleted') return undefined;
    if (error instanceof AlreadyStartedError) {
      const holder = error.pid ?? this.#registry.whereisName(record.spec.name);
      if (holder !== undefined && holder.node !== this.#node.name && this.#members.has(holder.node)) {
        // An instance runs on a live member: that is where the child is.
        this.#write(id, { state: 'running', host: holder.node, pid: holder, handoff: undefined });
        return undefined;
      }
      // Its holder is going (a lost node not yet down everywhere, or a handoff releasing): try again.
      this.#retryLater(this.#backoff(id));
      return undefined;
    }
    if (error instanceof RegistryUnavailableError || !(error instanceof StartError)) {
      this.#retryLater(this.#backoff(id));
      return undefined;
    }
    this.#self.logger.error({ supervisor: this.id, child: id, reason: formatReason(error.reason) }, `DistributedSupervisor ${this.id}: child ${id} failed to start: ${formatReason(error.reason)}`);
    if (record.pid === undefined && record.restarts === 0 && this.#lastRun.get(id) === undefined) {
      // Its first start: the caller hears why, and nothing loops.
      this.#write(id, { state: 'stopped', host: undefined, pid: undefined, failure: formatReason(error.reason) });
      return undefined;
    }
    return this.#countRestart() ? (this.#write(id, { restarts: record.restarts + 1 }), undefined) : 'stop';
  }

  /** Counts one restart against the intensity; false when it is exceeded. */
  #countRestart(): boolean {
    const now = Date.now();
    this.#restarts.push(now);
    while (this.#restarts.length > 0 && this.#restarts[0]! <= now - this.#spec.period) this.#restarts.shift();
    if (this.#restarts.length > this.#spec.intensity) {
      this.#self.logger.error({ supervisor: this.id }, `DistributedSupervisor ${this.id}: restart intensity reached on ${this.#node.name}; the member stops its children and exits`);
      return false;
    }
    return true;
  }

  #exited(pid: Pid, reason: ExitReason): 'stop' | undefined {
    let id: string | undefined;
    for (const [childId, local] of this.#local) if (local.pid.equals(pid)) id = childId;
    if (id === undefined) {
      if (this.#starting.size > 0 && pid.node === this.#node.name) {
        this.#earlyExits.set(pid.key, reason);
        if (this.#earlyExits.size > 10_000) this.#earlyExits.delete(this.#earlyExits.keys().next().value!);
      }
      return undefined;
    }
    const local = this.#local.get(id)!;
    this.#local.delete(id);
    this.#exitReasons.set(id, reason);
    const record = this.table.get(id);
    if (local.ending || record === undefined || record.host !== this.#node.name || record.state === 'stopped' || record.state === 'deleted') {
      this.#schedule();
      return undefined;
    }
    if (isNameConflict(reason)) {
      // Another instance kept the name: that is where the child is now.
      const holder = this.#registry.whereisName(record.spec.name);
      if (holder !== undefined && holder.node !== this.#node.name) this.#write(id, { state: 'running', host: holder.node, pid: holder });
      else this.#schedule();
      return undefined;
    }
    const restart = record.spec.restart;
    if (restart === 'temporary') {
      this.#write(id, { state: 'deleted', host: undefined, pid: undefined });
      return undefined;
    }
    if (restart === 'transient' && isCleanExit(reason)) {
      this.#write(id, { state: 'stopped', host: undefined, pid: undefined });
      return undefined;
    }
    if (!this.#countRestart()) return 'stop';
    this.stats.restarts++;
    this.#write(id, { state: 'assigned', host: this.#node.name, pid: undefined, restarts: record.restarts + 1 });
    return undefined;
  }

  /** Ends a local child this member chose to end: `shutdown`, then a kill past its shutdown time. */
  #end(id: string, local: LocalChild, shutdown: Shutdown, reason: ExitReason): Promise<void> {
    local.ending = true;
    const gone = new Promise<void>((resolve) => {
      if (this.#node.watchExit(local.pid, () => resolve()) === undefined) resolve();
    });
    if (shutdown === 'brutal_kill') {
      this.#self.exit(local.pid, 'kill');
      return gone;
    }
    this.#self.exit(local.pid, reason);
    if (shutdown === 'infinity') return gone;
    const timer = setTimeout(() => this.#self.exit(local.pid, 'kill'), shutdown);
    return gone.then(() => clearTimeout(timer));
  }

  // ---- handoff -------------------------------------------------------------------

  /** Asks a local child for its handoff state, frees its name everywhere, ends it, and places it on `to`. */
  async #handOff(id: string, to: string | undefined): Promise<void> {
    const local = this.#local.get(id);
    const record = this.table.get(id);
    if (local === undefined || record === undefined || local.ending) return;
    local.ending = true;
    // Until its new placement is written, this member must not start it again here.
    this.#moving.add(id);
    try {
      await this.#moveOut(id, local, record, to);
    } finally {
      this.#moving.delete(id);
    }
  }

  async #moveOut(id: string, local: LocalChild, record: ChildRecord, to: string | undefined): Promise<void> {
    let handoff: ChildRecord['handoff'];
    try {
      const value = await this.#node.call(local.pid, HANDOFF_REQUEST, { timeout: this.#spec.startTimeout });
      if (value !== undefined) handoff = { value };
    } catch (error) {
      this.#self.logger.warn({ err: error, supervisor: this.id, child: id }, `DistributedSupervisor ${this.id}: child ${id} gave no handoff state; its successor starts fresh`);
    }
    try {
      await this.#registry.unregisterName(record.spec.name);
    } catch (error) {
      this.#self.logger.warn({ err: error, supervisor: this.id, child: id }, `DistributedSupervisor ${this.id}: releasing ${id}'s name before its handoff failed`);
    }
    await this.#end(id, local, record.spec.shutdown, 'shutdown');
    const current = this.table.get(id);
    if (current === undefined || current.state === 'stopped' || current.state === 'deleted') return;
    const change: RecordChange = { state: 'assigned', host: to, pid: undefined, handoff };
    try {
      this.#write(id, change);
    } catch (error) {
      if (!(error instanceof WireEncodeError)) throw error;
      this.#self.logger.warn({ supervisor: this.id, child: id, path: error.path }, `DistributedSupervisor ${this.id}: child ${id}'s handoff state cannot cross the wire; its successor starts fresh`);
      this.#write(id, { ...change, handoff: undefined });
    }
  }

  /** Where a child goes when this member stops: its placement among the others, else the first of them. */
  #successor(id: string, record: ChildRecord): string | undefined {
    return this.#choose(id, record.spec, this.#node.name) ?? this.#candidates(record.spec.behaviour, this.#node.name)[0]?.node;
  }

  #migrateLocal(id: string, to: string): void {
    if (!this.#local.has(id) || !this.#members.has(to) || to === this.#node.name) return;
    void this.#handOff(id, to);
  }

  /** A graceful stop: every local child hands over to a successor when one qualifies (quorum and behaviour), else just stops. */
  async close(reason: ExitReason): Promise<void> {
    this.#closing = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    const graceful = isCleanExit(reason);
    if (graceful) this.#broadcast({ op: 'leaving' });
    const moves: Promise<void>[] = [];
    for (const [id, local] of this.#local) {
      const record = this.table.get(id);
      if (record === undefined || local.ending) continue;
      const target = graceful && this.#members.size - 1 >= this.#spec.quorum ? this.#successor(id, record) : undefined;
      moves.push(target === undefined ? this.#end(id, local, record.spec.shutdown, 'shutdown') : this.#handOff(id, target));
    }
    await Promise.all(moves);
    for (const waiters of this.#waiters.values()) for (const waiter of waiters) clearTimeout(waiter.timer);
    this.#waiters.clear();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#channel.close();
    const byId = localMembers.get(this.#node);
    if (byId?.get(this.id) === this) byId.delete(this.id);
  }

  // ---- requests ------------------------------------------------------------------

  /** A user's request; answers now, or later through a waiter (`undefined` then). */
  request(request: MemberRequest, from: From): MemberAnswer | undefined {
    switch (request.op) {
      case 'which':
        return { ok: this.#which() };
      case 'count':
        return { ok: this.#count() };
      case 'members':
        return { ok: [...this.#members].filter(([, member]) => member.reported).map(([node]) => node).sort() };
      case 'getChildSpec': {
        const record = this.#live(request.id);
        if (record === undefined) return refusal('not_found', `no child ${JSON.stringify(request.id)}`);
        const { behaviour, args, restart, shutdown, name } = record.spec;
        return { ok: { id: record.id, behaviour, args, restart, shutdown, name, ...(record.spec.placement === undefined || record.spec.placement === 'function' ? {} : { placement: record.spec.placement }) } };
      }
      case 'startChild':
        return this.#startChild(request.spec, request.timeout, from);
      case 'terminateChild': {
        const record = this.#live(request.id);
        if (record === undefined) return refusal('not_found', `no child ${JSON.stringify(request.id)}`);
        if (record.state !== 'stopped') this.#write(record.id, { state: 'stopped', host: undefined, pid: undefined });
        return this.#await(record.id, request.timeout, from, () => (this.#registry.whereisName(record.spec.name) === undefined ? { ok: undefined } : undefined));
      }
      case 'restartChild': {
        const record = this.#live(request.id);
        if (record === undefined) return refusal('not_found', `no child ${JSON.stringify(request.id)}`);
        if (record.state !== 'stopped') return refusal('running', `child ${request.id} is not stopped`);
        return this.#startPlaced(record.id, record.spec, request.timeout, from);
      }
      case 'deleteChild': {
        const record = this.#live(request.id);
        if (record === undefined) return refusal('not_found', `no child ${JSON.stringify(request.id)}`);
        if (record.state !== 'stopped') return refusal('running', `child ${request.id} is not stopped`);
        this.#write(record.id, { state: 'deleted' });
        return { ok: undefined };
      }
      case 'migrate': {
        const record = this.#live(request.id);
        if (record === undefined) return refusal('not_found', `no child ${JSON.stringify(request.id)}`);
        if (record.state !== 'running' || record.host === undefined) return refusal('not_running', `child ${request.id} is not running`);
        if (record.host === request.to) return { ok: { node: record.host, pid: record.pid } };
        const target = this.#members.get(request.to);
        if (target === undefined || !target.reported || this.#heard.get(request.to)?.keys.has(record.spec.behaviour) !== true) {
          return refusal('no_eligible_node', `${request.to} runs no member of ${this.id} that can host ${record.spec.behaviour}`);
        }
        if (record.host === this.#node.name) this.#migrateLocal(record.id, request.to);
        else this.#send(record.host, { op: 'migrate', id: record.id, to: request.to });
        return this.#await(record.id, request.timeout, from, (current) =>
          current?.state === 'running' && current.host === request.to ? { ok: { node: current.host, pid: current.pid } } : undefined,
        );
      }
    }
  }

  #live(id: string): ChildRecord | undefined {
    const record = this.table.get(id);
    return record === undefined || record.state === 'deleted' ? undefined : record;
  }

  #startChild(raw: DistributedChildSpec, timeout: number, from: From): MemberAnswer | undefined {
    let child: NormalizedChild;
    try {
      child = normalizeChild('DistributedSupervisor.startChild', this.id, raw);
    } catch (error) {
      if (error instanceof SupervisionError) return { error: error.code, message: error.message, ...(error.field === undefined ? {} : { field: error.field }) };
      throw error;
    }
    if (typeof child.placement === 'function') {
      return refusal('invalid_spec', 'DistributedSupervisor.startChild: placement cannot be a function for a dynamic child (it must cross the wire); give a strategy or a node list');
    }
    const existing = this.#live(child.id);
    if (existing !== undefined) {
      if (existing.state === 'running') return { alreadyStarted: existing.pid, message: child.id };
      if (existing.state === 'assigned') return { alreadyStarted: undefined, message: child.id };
      return refusal('already_present', `child ${child.id} exists (stopped): restartChild or deleteChild it`);
    }
    for (const record of this.table.values()) {
      if (record.state !== 'deleted' && nameKey(record.spec.name) === child.key) return refusal('invalid_spec', `child ${record.id} already has the name ${canonicalName(child.name)}`);
    }
    return this.#startPlaced(child.id, wireSpec(child), timeout, from);
  }

  #startPlaced(id: string, spec: WireChildSpec, timeout: number, from: From): MemberAnswer | undefined {
    if (!this.#quorate()) return refusal('no_quorum', `${this.#members.size} of the ${this.#spec.quorum} members needed are connected`);
    if (this.#candidates(spec.behaviour).length === 0) {
      return refusal('unknown_behaviour', `no member of ${this.id} has registered the behaviour ${JSON.stringify(spec.behaviour)}`);
    }
    const chosen = this.#choose(id, spec);
    if (chosen === undefined) return refusal('no_eligible_node', `the placement of ${id} names no live member that registered ${spec.behaviour}`);
    try {
      this.#place(id, spec, this.table.get(id)?.restarts ?? 0, undefined, chosen);
    } catch (error) {
      if (error instanceof WireEncodeError) return { error: 'invalid_spec', message: `DistributedSupervisor.startChild: args cannot cross the wire at ${error.path}`, field: 'args' };
      throw error;
    }
    return this.#await(id, timeout, from, (record) => {
      if (record?.state === 'running') return { ok: { node: record.host, pid: record.pid } };
      if (record?.state === 'stopped' && record.failure !== undefined) return { startFailed: record.failure };
      if (record === undefined || record.state === 'deleted' || record.state === 'stopped') return refusal('not_found', `child ${id} went away while starting`);
      return undefined;
    });
  }

  #await(id: string, timeout: number, from: From, check: Waiter['check']): MemberAnswer | undefined {
    const now = check(this.table.get(id));
    if (now !== undefined) return now;
    let set = this.#waiters.get(id);
    if (set === undefined) this.#waiters.set(id, (set = new Set()));
    const waiters = set;
    const waiter: Waiter = {
      check,
      from,
      timer: setTimeout(() => {
        waiters.delete(waiter);
        GenServer.reply(this.#self, from, refusal('timeout', `child ${id}: no answer within ${timeout} ms`));
      }, timeout),
    };
    waiters.add(waiter);
    return undefined;
  }

  #checkWaiters(id?: string): void {
    const ids = id === undefined ? [...this.#waiters.keys()] : [id];
    for (const childId of ids) {
      const waiters = this.#waiters.get(childId);
      if (waiters === undefined) continue;
      const record = this.table.get(childId);
      for (const waiter of [...waiters]) {
        const answer = waiter.check(record);
        if (answer === undefined) continue;
        clearTimeout(waiter.timer);
        waiters.delete(waiter);
        GenServer.reply(this.#self, waiter.from, answer);
      }
      if (waiters.size === 0) this.#waiters.delete(childId);
    }
  }

  #info(record: ChildRecord): DistributedChildInfo {
    return {
      id: record.id,
      name: record.spec.name,
      behaviour: record.spec.behaviour,
      restart: record.spec.restart,
      state: record.state === 'deleted' ? 'stopped' : record.state,
      node: record.host,
      pid: record.state === 'running' ? record.pid : undefined,
      restarts: record.restarts,
    };
  }

  #which(): DistributedChildInfo[] {
    const children: DistributedChildInfo[] = [];
    for (const record of this.table.values()) if (record.state !== 'deleted') children.push(this.#info(record));
    return children.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  #count(): DistributedChildCounts {
    let specs = 0;
    let active = 0;
    const byNode: Record<string, number> = {};
    for (const record of this.table.values()) {
      if (record.state === 'deleted') continue;
      specs++;
      if (record.state === 'running' && record.host !== undefined) {
        active++;
        byNode[record.host] = (byNode[record.host] ?? 0) + 1;
      }
    }
    return { specs, active, byNode };
  }
}

function isLeaving(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { op?: unknown }).op === 'leaving';
}

function isNameConflict(reason: ExitReason): boolean {
  return typeof reason === 'object' && reason !== null && !(reason instanceof Error) && 'name_conflict' in reason;
}

export function wireSpec(child: NormalizedChild): WireChildSpec {
  return {
    behaviour: child.behaviour,
    args: child.args,
    restart: child.restart,
    shutdown: child.shutdown,
    placement: typeof child.placement === 'function' ? 'function' : (child.placement as WireChildSpec['placement']),
    name: child.name,
  };
}

/** A record as it crosses the wire: absent fields left out. */
function toWire(record: ChildRecord): ChildRecord {
  const wire: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (value !== undefined) wire[key] = value;
  const spec: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record.spec)) if (value !== undefined || key === 'args') spec[key] = value;
  wire['spec'] = spec;
  return wire as unknown as ChildRecord;
}

/** The member's GenServer: the loop around a {@link Member}. */
export const MemberBehaviour = {
  async init(args: { spec: NormalizedSpec; registry: GlobalsRegistry }, self: Process): Promise<Member> {
    self.trapExit(true);
    const member = new Member(args.spec, self, args.registry);
    try {
      await member.join(args.spec.syncTimeout);
    } catch (error) {
      await member.close('shutdown');
      throw error;
    }
    return member;
  },

  handleCall(request: MemberRequest, from: From, member: Member) {
    const answer = member.request(request, from);
    return answer === undefined ? noreply(member) : reply(answer, member);
  },

  handleInfo(message: unknown, member: Member) {
    return member.info(message) === 'stop' ? stop('shutdown', member) : noreply(member);
  },

  async terminate(reason: ExitReason, member: Member) {
    await member.close(reason);
  },
};
