import { NOT_A_TUPLE } from './internal/tuple-index.js';
import { EventEmitter } from 'eventemitter3';
import {
  BadArgError,
  CallError,
  canonicalName,
  nameKey,
  GenServer,
  LatencyHistogram,
  Pid,
  Supervisor,
  type ExitReason,
  type LatencySnapshot,
  type Name,
  type NameRegistry,
  type Node,
} from '@roster/core';
import type { Logger } from 'pino';
import { clusterOf, RateLimitedLog, type Cluster, type ClusterChannel } from '@roster/cluster';
import type { ConflictOutcome, ConflictPolicy } from './conflict.js';
import type { Epoch } from './epoch.js';
import { RegistryUnavailableError } from './errors.js';
import { NameTable, type Answer, type TableDropReason } from './internal/name-table.js';
import { globalKey } from './internal/name-limits.js';
import { parseMessages, type GlobalsMessage } from './internal/protocol.js';
import { PeerOutbox } from './internal/peer-outbox.js';
import { RegistryServer, type ServerInfo, type ServerRequest } from './internal/registry-server.js';

export interface GlobalsRegistryOptions {
  /** How a name claimed on both sides of a healed partition is settled. Default `keep-oldest`. */
  readonly conflictPolicy?: ConflictPolicy;
  /**
   * How long a registration waits for every member's vote before failing
   * with `RegistryUnavailableError` (and a commit or an `unregisterName` for
   * every member's acknowledgement). Default 5000 ms.
   */
  readonly registerTimeout?: number;
  /** The cluster channel the registry speaks on; registries of one cluster must agree. Default `globals`. */
  readonly channel?: string;
  /**
   * Milliseconds between rounds of anti-entropy, in which every node sends
   * every member what it owns, repairing lost commits and releases without a
   * membership change. Default 30 000; 0 turns it off (it still runs on every nodeup).
   */
  readonly antiEntropyInterval?: number;
  /**
   * How far ahead of this node's clock a received epoch may be, in ms;
   * further, the message is dropped (`clock_skew`), so no peer can push this
   * node's clock into the future. Default: the cluster's `maxClockSkew`, else 10 000.
   */
  readonly maxClockSkew?: number;
}

export interface GlobalsEvents {
  /** `name` now resolves to `pid` on this node. */
  registered: (name: Name, pid: Pid) => void;
  /** `name` no longer resolves to `pid` on this node. */
  unregistered: (name: Name, pid: Pid, reason: ExitReason) => void;
  /** A name was claimed on both sides of a partition; the policy settled it. */
  conflict: (outcome: ConflictOutcome) => void;
  nodeup: (node: string) => void;
  nodedown: (node: string) => void;
}

/** Why the registry dropped a peer's message. */
export type GlobalsDropReason = 'malformed' | TableDropReason;

export interface GlobalsStats {
  /** Registry messages dropped, in all. */
  dropped: number;
  /** Registry messages dropped, by reason. */
  readonly drops: Record<GlobalsDropReason, number>;
  conflicts: number;
  /** Errors thrown by this registry's event listeners (caught and logged: they never reach the registry). */
  listenerErrors: number;
  /** This node's own `registerName` calls that completed (answered `yes` or `no`; a rejection is not counted). */
  registrations: number;
  /** This node's own `unregisterName` calls that completed. */
  unregistrations: number;
  /** Round trips of this node's completed `registerName` calls, in ms (a snapshot, read when asked). */
  readonly registerLatency: LatencySnapshot;
}

/**
 * What `GlobalsRegistry.introspect()` returns: the registry in its node's
 * snapshot (`snapshot.registries[key]`), so an observer sees every member's
 * figures, not only its own node's. Plain data; `kind` tells a reader (and
 * the cluster's check of a peer's snapshot) which shape this is.
 */
export type GlobalsIntrospection = {
  readonly kind: 'globals';
  /** Registry messages dropped, in all (as `stats.dropped`). */
  readonly dropped: number;
  /** Registry messages dropped, by reason. */
  readonly drops: Readonly<Record<GlobalsDropReason, number>>;
  readonly conflicts: number;
  readonly listenerErrors: number;
  /** This node's own completed `registerName` calls. */
  readonly registrations: number;
  /** This node's own completed `unregisterName` calls. */
  readonly unregistrations: number;
  /** Round trips of this node's completed `registerName` calls, ms. */
  readonly registerLatency: LatencySnapshot;
  /** How many global names this node resolves now (its table, every owner's). */
  readonly names: number;
  /** The nodes this registry agrees with now (`members()`). */
  readonly members: readonly string[];
};

/** A registry's stats object: plain counters, with `registerLatency` read from `histogram` when asked. */
function createStats(histogram: LatencyHistogram): GlobalsStats {
  const stats = {
    dropped: 0,
    drops: { malformed: 0, clock_skew: 0, forged: 0, stale: 0, oversized: 0 },
    conflicts: 0,
    listenerErrors: 0,
    registrations: 0,
    unregistrations: 0,
  };
  return Object.defineProperty(stats, 'registerLatency', { get: () => histogram.snapshot(), enumerable: true }) as GlobalsStats;
}

/** Most peer messages held while the registry actor (re)starts. */
const MAX_INBOX = 100_000;

/**
 * A cluster-wide `NameRegistry` in the style of kz_globals, over any
 * transport (docs/protocol.md):
 *
 * - `registerName` broadcasts a claim that every member of this node's view
 *   must vote on; `yes` only when all agreed and have applied the commit (so
 *   every member resolves the name when it returns, as with Erlang's
 *   `global`), `no` when one refused, and a `RegistryUnavailableError`
 *   (never a `yes`) when a member stays silent past `registerTimeout`. Only
 *   processes of this node can be registered here (a pid of another node is
 *   a `BadArgError`: register it on its own node), and only live ones.
 * - `unregisterName` works from any node; when it resolves, no member
 *   resolves the name any longer.
 * - `whereisName` reads this node's table: no network.
 * - A name is cleared the moment its process exits, here at once and on
 *   every peer within one broker round trip; a lost node's names go when the
 *   failure detector declares it down.
 * - When `Node.start` resolves, the new node knows every name its view holds.
 */
export class GlobalsRegistry extends EventEmitter<GlobalsEvents> implements NameRegistry {
  readonly #registerLatency = new LatencyHistogram();
  readonly stats: GlobalsStats = createStats(this.#registerLatency);
  readonly #options: Required<Omit<GlobalsRegistryOptions, 'maxClockSkew'>> & { maxClockSkew: number | undefined };
  #node: Node | undefined;
  #logger: Logger | undefined;
  #dropLog: RateLimitedLog | undefined;
  #table: NameTable | undefined;
  #server: Pid | undefined;
  #channel: ClusterChannel | undefined;
  #cluster: Cluster | undefined;
  #supervisor: Pid | undefined;
  /** Peer messages that arrived while no registry actor was running: handed to the next one, in order. */
  readonly #inbox: ServerInfo[] = [];
  /** Peers whose registry is down for good: not voters, holding no names. */
  readonly #nonVoters = new Set<string>();
  /** Bumped at every change of `#nonVoters`, so lists derived from it are made again. */
  #nonVotersVersion = 0;
  /** This node's registry is down for good (its supervisor gave up). */
  #down = false;
  #detaching = false;
  /** This node is a cluster observer: it sees every name, votes on none, and holds none. */
  #observer = false;
  readonly #listeners: (() => void)[] = [];
  /** Requests waiting for a registry actor to run again. */
  readonly #startWaiters = new Set<(started: boolean) => void>();

  constructor(options: GlobalsRegistryOptions = {}) {
    super();
    const registerTimeout = options.registerTimeout ?? 5000;
    if (!(registerTimeout > 0)) throw new TypeError('GlobalsRegistry: registerTimeout must be a number of ms > 0');
    const conflictPolicy = options.conflictPolicy ?? 'keep-oldest';
    if (
      typeof conflictPolicy !== 'function' &&
      conflictPolicy !== 'keep-oldest' &&
      conflictPolicy !== 'notify-loser' &&
      conflictPolicy !== 'notify-all'
    ) {
      throw new TypeError('GlobalsRegistry: conflictPolicy must be keep-oldest, notify-loser, notify-all or a function');
    }
    const antiEntropyInterval = options.antiEntropyInterval ?? 30_000;
    if (!(antiEntropyInterval >= 0)) throw new TypeError('GlobalsRegistry: antiEntropyInterval must be a number of ms >= 0');
    const maxClockSkew = options.maxClockSkew;
    if (maxClockSkew !== undefined && !(maxClockSkew >= 0)) throw new TypeError('GlobalsRegistry: maxClockSkew must be a number of ms >= 0');
    const channel = options.channel ?? 'globals';
    if (typeof channel !== 'string' || channel.length === 0) throw new TypeError('GlobalsRegistry: channel must be a non-empty string');
    this.#options = { registerTimeout, conflictPolicy, channel, antiEntropyInterval, maxClockSkew };
  }

  /** The node-local name of the registry actor (OTP's `global_name_server`). */
  get serverName(): string {
    return `${this.#options.channel}_name_server`;
  }

  async attach(node: Node): Promise<void> {
    if (this.#node !== undefined) throw new BadArgError('GlobalsRegistry: already installed on a node');
    if (clusterOf(node) === undefined) {
      // A standalone node would make a "global" registry a local one without a word: refuse, saying what to add.
      throw new TypeError(
        `GlobalsRegistry: node ${node.name} is not clustered; give Node.start a cluster (cluster: {} for the in-process MemoryTransport, or cluster: { transport: new AmqpTransport({ urls }) } for RabbitMQ), or use LocalRegistry for node-local names`,
      );
    }
    this.#node = node;
    const logger = (this.#logger = node.logger.child({ registry: 'globals' }));
    this.#dropLog = new RateLimitedLog(logger);
    const cluster = (this.#cluster = clusterOf(node));
    this.#observer = cluster?.role === 'observer';
    // Voters: the members whose registry is up, observers left out. Recipients of what is decided
    // (commits, releases, syncs): the voters and the observers, which watch the names but never vote.
    // Read for every message sent and every claim: kept until the members or the non-voters change.
    let recipientList: readonly string[] = [];
    let voterList: readonly string[] = [];
    let listedAt = -1;
    let listedNonVoters = -1;
    const refresh = (): void => {
      const version = cluster?.membershipVersion ?? 0;
      if (version === listedAt && this.#nonVotersVersion === listedNonVoters) return;
      const nodes = cluster?.nodes() ?? [];
      recipientList = this.#nonVoters.size === 0 ? nodes : nodes.filter((peer) => !this.#nonVoters.has(peer));
      voterList = cluster === undefined ? recipientList : recipientList.filter((peer) => !cluster.isObserver(peer));
      listedAt = version;
      listedNonVoters = this.#nonVotersVersion;
    };
    const recipients = (): readonly string[] => {
      refresh();
      return recipientList;
    };
    const voters = (): readonly string[] => {
      refresh();
      return voterList;
    };
    const outbox = new PeerOutbox(
      node.name,
      () => this.#channel,
      recipients,
      (error, message) => logger.error({ err: error, op: message.op }, 'a registry message could not be sent'),
    );
    const clusterSkew = (cluster as { maxClockSkew?: unknown } | undefined)?.maxClockSkew;
    const table = new NameTable(
      {
        node,
        logger,
        observer: this.#observer,
        maxClockSkew: this.#options.maxClockSkew ?? (typeof clusterSkew === 'number' ? clusterSkew : 10_000),
        registerTimeout: this.#options.registerTimeout,
        members: voters,
        drop: (reason, from, detail) => this.#drop(reason, from, detail),
        broadcast: (message) => outbox.broadcast(message),
        sendTo: (peer, message) => outbox.send(peer, message),
        registered: (name, pid) => this.#emitSafely('registered', name, pid),
        unregistered: (name, pid, reason) => this.#emitSafely('unregistered', name, pid, reason),
        conflict: (outcome) => {
          this.stats.conflicts++;
          logger.warn({ name: outcome.name, policy: outcome.policy }, 'name conflict settled');
          this.#emitSafely('conflict', outcome);
        },
      },
      this.#options.conflictPolicy,
    );
    this.#table = table;
    if (cluster !== undefined) {
      this.#channel = cluster.channel(this.#options.channel, (from, raw) => {
        let messages: GlobalsMessage[];
        try {
          messages = parseMessages(raw, from.node, node.name);
        } catch (error) {
          // Counted here; the cluster layer drops it, counts it as `malformed` and logs it (rate-limited).
          this.stats.dropped++;
          this.stats.drops.malformed++;
          throw error;
        }
        // A peer that sends packed batches, or says in a sync that it reads them, gets them from here on.
        if ((raw as { op?: unknown }).op === 'packed') outbox.speaksPacked(from.node);
        // The frame's messages reach the actor as one mailbox message, in order: one turn for a batch of hundreds.
        let accepted: GlobalsMessage[] = [];
        const deliver = (): void => {
          if (accepted.length === 1) this.#toServer({ type: '$globals', from: from.node, message: accepted[0]! });
          else if (accepted.length > 1) this.#toServer({ type: '$globals_batch', from: from.node, messages: accepted });
          accepted = [];
        };
        for (const message of messages) {
          if (message.op === 'sync') {
            if (message.packed === true) outbox.speaksPacked(from.node);
            if (message.ackRuns === true) outbox.readsAckRuns(from.node);
          }
          if (message.op === 'down') {
            deliver();
            this.#peerRegistryDown(from.node);
            continue;
          }
          if (this.#down) {
            // Tell it we no longer vote, so it stops waiting for us.
            this.#channel?.send(from.node, { op: 'down' });
            return;
          }
          // An observer watches: it answers no claim (nobody counts its vote) and holds nothing to ask about.
          if (this.#observer && (message.op === 'claim' || message.op === 'unregister')) continue;
          accepted.push(message);
        }
        deliver();
      });
      const onUp = ({ node: peer, creation }: { node: string; creation: string }): void => {
        if (this.#nonVoters.delete(peer)) this.#nonVotersVersion++;
        if (this.#down) this.#channel?.send(peer, { op: 'down' });
        else if (cluster.isObserver(peer)) this.#toServer({ type: '$globals_observerup', node: peer });
        else this.#toServer({ type: '$globals_nodeup', node: peer, creation });
        this.#emitSafely('nodeup', peer);
      };
      const onDown = ({ node: peer }: { node: string }): void => {
        // Its next incarnation may run an older roster: tagged batches until it says otherwise.
        outbox.forget(peer);
        const wasVoter = !this.#nonVoters.delete(peer);
        if (!wasVoter) this.#nonVotersVersion++;
        if (wasVoter) this.#toServer({ type: '$globals_nodedown', node: peer });
        this.#emitSafely('nodedown', peer);
      };
      const onGap = ({ node: peer }: { node: string }): void => this.#toServer({ type: '$globals_gap', node: peer });
      cluster.on('nodeup', onUp);
      cluster.on('nodedown', onDown);
      cluster.on('gap', onGap);
      this.#listeners.push(
        () => cluster.off('nodeup', onUp),
        () => cluster.off('nodedown', onDown),
        () => cluster.off('gap', onGap),
      );
    }
    const serverName = this.serverName;
    this.#supervisor = await Supervisor.start(node, {
      strategy: 'one_for_one',
      intensity: 10,
      period: 10_000,
      children: [
        {
          id: 'globals',
          start: (self) =>
            GenServer.startLink(
              self,
              RegistryServer,
              {
                table,
                started: (pid) => {
                  this.#server = pid;
                  // What arrived while no actor ran goes first, in order; then the requests that waited for it.
                  for (const info of this.#inbox.splice(0)) node.send(pid, info);
                  for (const waiter of [...this.#startWaiters]) queueMicrotask(() => waiter(true));
                },
              },
              { name: serverName },
            ),
          shutdown: 1000,
        },
      ],
    });
    const unwatch = node.watchExit(this.#supervisor, (reason) => this.#registryDown(reason));
    if (unwatch !== undefined) this.#listeners.push(unwatch);
    // A stopping node shuts the supervisor down: that is not the registry giving up.
    const onStopping = (): void => {
      this.#detaching = true;
    };
    node.once('stopping', onStopping);
    this.#listeners.push(() => node.off('stopping', onStopping));
    if (cluster !== undefined && this.#options.antiEntropyInterval > 0) {
      const timer = setInterval(() => this.#toServer({ type: '$globals_tick' }), this.#options.antiEntropyInterval);
      timer.unref();
      this.#listeners.push(() => clearInterval(timer));
    }
    if (cluster === undefined) return;
    // Peers that were already up before we installed: they learn what we own (and send us theirs, on their nodeup).
    for (const peer of cluster.members()) {
      this.#toServer(peer.role === 'observer' ? { type: '$globals_observerup', node: peer.node } : { type: '$globals_nodeup', node: peer.node, creation: peer.creation });
    }
    // `Node.start` resolves knowing every name its view holds.
    const answer = await this.#call<'ok' | Error>({ op: 'initialSync', timeout: this.#options.registerTimeout });
    if (answer instanceof Error) {
      logger.warn({ silent: answer.message }, 'members did not send their names in time; anti-entropy will bring them');
    }
  }

  async detach(): Promise<void> {
    this.#detaching = true;
    for (const remove of this.#listeners.splice(0)) remove();
    this.#channel?.close();
    this.#channel = undefined;
    const node = this.#node;
    const supervisor = this.#supervisor;
    if (node !== undefined && supervisor !== undefined && node.isAlive(supervisor)) {
      await GenServer.stop(node, supervisor, 'shutdown').catch(() => undefined);
    }
    this.#table?.close();
  }

  async registerName(name: Name, pid: Pid): Promise<'yes' | 'no'> {
    const key = globalKey(name);
    const node = this.#requireNode();
    this.#refuseOnObserver(key);
    this.#checkRegistrant(node, pid, key);
    const started = performance.now();
    const answer = await this.#call<Answer>({ op: 'register', key, name, pid, timeout: this.#options.registerTimeout });
    if (answer instanceof Error) throw answer;
    this.#registerLatency.observe(performance.now() - started);
    this.stats.registrations++;
    return answer;
  }

  /**
   * Moves `name` to `pid`, a live process of this node
   * (`global:re_register_name/2`): every member resolves the new pid when it
   * resolves, the former holder runs on, and its exit leaves the name alone.
   * A name this node holds moves atomically; one held on another node is
   * released by its owner first (for that moment it resolves nowhere); a free
   * one is registered.
   */
  async reRegisterName(name: Name, pid: Pid): Promise<'yes'> {
    const key = globalKey(name);
    const node = this.#requireNode();
    this.#refuseOnObserver(key);
    this.#checkRegistrant(node, pid, key);
    const answer = await this.#call<Answer>({ op: 'reRegister', key, name, pid, timeout: this.#options.registerTimeout });
    if (answer instanceof Error) throw answer;
    if (answer !== 'yes') throw new RegistryUnavailableError(`re-registering ${key}: refused`);
    return answer;
  }

  /**
   * Removes `name` wherever it is held (`global:unregister_name/1`): on this
   * node, or by asking the owner. When it resolves, no member resolves the
   * name any longer and any member may register it.
   */
  async unregisterName(name: Name): Promise<void> {
    const key = globalKey(name);
    this.#requireNode();
    const answer = await this.#call<'ok' | Error>({ op: 'unregister', key, name, timeout: this.#options.registerTimeout });
    if (answer instanceof Error) throw answer;
    this.stats.unregistrations++;
  }

  whereisName(name: Name): Pid | undefined {
    const table = this.#table;
    if (Array.isArray(name) && table !== undefined) {
      const pid = table.whereisTuple(name);
      if (pid !== NOT_A_TUPLE) return pid;
    }
    return table?.whereis(nameKey(name));
  }

  /**
   * The epoch of the claim `name` resolves through on this node, or
   * undefined when it resolves to nobody: a fencing token, younger for every
   * new registration of the name, so a holder writing to an external store
   * can have stale holders' writes refused.
   */
  epochOf(name: Name): Epoch | undefined {
    return this.#table?.current(nameKey(name))?.epoch;
  }

  send(name: Name, message: unknown): Pid {
    const pid = this.whereisName(name);
    if (pid === undefined) throw new BadArgError(`no process is registered globally as ${canonicalName(name)}`);
    this.#requireNode().send(pid, message);
    return pid;
  }

  registered(): Name[] {
    return this.#table?.names() ?? [];
  }

  /** Asks the owner who holds `name` now, instead of reading this node's snapshot. */
  async whereisNameConsistent(name: Name): Promise<Pid | undefined> {
    const key = globalKey(name);
    const answer = await this.#call<Pid | undefined | Error>({
      op: 'whereisConsistent',
      key,
      name,
      timeout: this.#options.registerTimeout,
    });
    if (answer instanceof Error) throw answer;
    return answer;
  }

  /**
   * Resolves once every current member has sent this node what it owns
   * (`global:sync/0`); rejects with `RegistryUnavailableError` when a member
   * stays silent past `registerTimeout`.
   */
  async sync(): Promise<void> {
    const answer = await this.#call<'ok' | Error>({ op: 'sync', timeout: this.#options.registerTimeout });
    if (answer instanceof Error) throw answer;
  }

  /**
   * The registry in its node's snapshot (`NameRegistry.introspect`): a copy
   * of `stats` (`registerLatency` as plain data), how many names this node
   * resolves, and its members. Read now; O(names) to count them, no
   * allocation per name.
   */
  introspect(): GlobalsIntrospection {
    const { dropped, drops, conflicts, listenerErrors, registrations, unregistrations } = this.stats;
    let names = 0;
    for (const record of this.#table?.records.values() ?? []) if (record.current !== undefined) names++;
    return {
      kind: 'globals',
      dropped,
      drops: { ...drops },
      conflicts,
      listenerErrors,
      registrations,
      unregistrations,
      registerLatency: this.#registerLatency.snapshot(),
      names,
      members: this.#node === undefined ? [] : this.members(),
    };
  }

  /** This node and the live members it agrees with (not those whose registry is down for good). */
  members(): string[] {
    const node = this.#requireNode();
    if (this.#down) return [node.name];
    const cluster = this.#cluster;
    const peers = (cluster?.nodes() ?? []).filter((peer) => !this.#nonVoters.has(peer) && !cluster!.isObserver(peer));
    return this.#observer ? peers : [node.name, ...peers];
  }

  #refuseOnObserver(key: string): void {
    if (this.#observer) throw new RegistryUnavailableError(`registering ${key}: this node is a cluster observer, which holds no global names`);
  }

  #checkRegistrant(node: Node, pid: Pid, key: string): void {
    if (!(pid instanceof Pid)) throw new TypeError(`registerName ${key}: pid must be a Pid`);
    if (pid.node !== node.name || pid.creation !== node.creation) {
      throw new BadArgError(`registerName ${key}: ${pid.key} is a process of node ${pid.node}; register it on its own node`);
    }
    if (!node.isAlive(pid)) throw new BadArgError(`registerName ${key}: ${pid.key} is not alive`);
  }

  /**
   * A request to the registry actor. One that finds no actor running (it is
   * between a crash and its supervisor's restart) waits for the next one, up
   * to `registerTimeout`, instead of failing: a restart is invisible to
   * callers but for the claims it interrupted.
   */
  async #call<T>(request: ServerRequest): Promise<T> {
    const node = this.#requireNode();
    const deadline = Date.now() + this.#options.registerTimeout;
    for (;;) {
      if (this.#down) throw new RegistryUnavailableError('the globals registry of this node is down for good (its supervisor gave up)');
      const server = this.#server;
      if (server === undefined || !node.isAlive(server)) {
        if (!(await this.#nextStart(deadline))) throw new RegistryUnavailableError('the globals registry is not running');
        continue;
      }
      try {
        return await node.call<T>(server, request, { timeout: Infinity });
      } catch (error) {
        // noproc: it died before it got the request, which is safe to send again to its successor.
        if (error instanceof CallError && error.reason === 'noproc' && Date.now() < deadline) continue;
        if (error instanceof CallError) throw new RegistryUnavailableError(`the globals registry failed: ${error.message}`);
        throw error;
      }
    }
  }

  /** Resolves true when a registry actor (re)starts before `deadline`, false otherwise (or when it is down for good). */
  #nextStart(deadline: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      const finish = (started: boolean): void => {
        clearTimeout(timer);
        this.#startWaiters.delete(finish);
        resolve(started);
      };
      this.#startWaiters.add(finish);
    });
  }

  /** To the registry actor; held while none is running (it restarts), handed to the next one in order. */
  #toServer(info: ServerInfo): void {
    const node = this.#node;
    const server = this.#server;
    if (node === undefined || this.#down) return;
    if (server !== undefined && node.isAlive(server)) {
      node.send(server, info);
      return;
    }
    if (this.#inbox.length < MAX_INBOX) this.#inbox.push(info);
    else this.#drop('oversized', info.type === '$globals' ? info.from : '?', 'the registry is restarting and its inbox is full');
  }

  /** A listener's error is the listener's: logged, never a crash of the registry actor that emitted. */
  #emitSafely<E extends keyof GlobalsEvents>(event: E, ...args: Parameters<GlobalsEvents[E]>): void {
    // Every name's every change comes here: with nobody listening, not even the listeners' copy is made.
    if (this.listenerCount(event) === 0) return;
    for (const listener of this.listeners(event)) {
      try {
        (listener as (...values: unknown[]) => void).apply(this, args);
      } catch (error) {
        this.stats.listenerErrors++;
        this.#logger?.error({ err: error, event }, `a '${event}' listener of the globals registry threw; the registry carries on`);
      }
    }
  }

  #drop(reason: GlobalsDropReason, from: string, detail: string): void {
    this.stats.dropped++;
    this.stats.drops[reason]++;
    this.#dropLog?.warn(reason, { reason, from, detail }, `dropped a registry message (${reason})`);
  }

  /**
   * The registry's supervisor gave up: this node stops counting as a voter
   * everywhere (peers would otherwise wait for its votes, and every
   * registration in the cluster would fail), and says so at error.
   */
  #registryDown(reason: ExitReason): void {
    if (this.#detaching || this.#node?.alive !== true) return;
    this.#down = true;
    this.#server = undefined;
    for (const waiter of [...this.#startWaiters]) waiter(false);
    this.#inbox.length = 0;
    this.#table?.close();
    this.#logger?.error(
      { reason: String(reason) },
      'the globals registry is down for good (restarted too often); this node no longer votes and holds no global names',
    );
    this.#channel?.broadcast({ op: 'down' });
  }

  /** A peer's registry is down for good: it no longer votes, and its names are gone. */
  #peerRegistryDown(peer: string): void {
    if (this.#nonVoters.has(peer)) return;
    this.#nonVoters.add(peer);
    this.#nonVotersVersion++;
    this.#logger?.error({ peer }, `the globals registry of ${peer} is down for good; it no longer counts as a voter`);
    this.#toServer({ type: '$globals_nodedown', node: peer });
  }

  #requireNode(): Node {
    if (this.#node === undefined) throw new BadArgError('GlobalsRegistry: not installed on a node (node.installRegistry)');
    return this.#node;
  }
}
