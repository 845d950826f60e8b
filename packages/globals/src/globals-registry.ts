import { EventEmitter } from 'eventemitter3';
import {
  BadArgError,
  CallError,
  canonicalName,
  nameKey,
  GenServer,
  Pid,
  Supervisor,
  type ExitReason,
  type Name,
  type NameRegistry,
  type Node,
} from '@roster/core';
import { clusterOf, type Cluster, type ClusterChannel } from '@roster/cluster';
import type { ConflictOutcome, ConflictPolicy } from './conflict.js';
import { RegistryUnavailableError } from './errors.js';
import { NameTable, type Answer } from './internal/name-table.js';
import { parseMessages, type GlobalsMessage } from './internal/protocol.js';
import { PeerOutbox } from './internal/peer-outbox.js';
import { RegistryServer, type ServerInfo, type ServerRequest } from './internal/registry-server.js';

export interface GlobalsRegistryOptions {
  /** How a name claimed on both sides of a healed partition is settled. Default `keep-oldest`. */
  readonly conflictPolicy?: ConflictPolicy;
  /** How long a registration waits for every member's vote before failing with `RegistryUnavailableError`. Default 5000 ms. */
  readonly registerTimeout?: number;
  /** The cluster channel the registry speaks on; registries of one cluster must agree. Default `globals`. */
  readonly channel?: string;
  /**
   * Milliseconds between rounds of anti-entropy, in which every node sends
   * every member what it owns, repairing lost commits and releases without a
   * membership change. Default 30 000; 0 turns it off (it still runs on every nodeup).
   */
  readonly antiEntropyInterval?: number;
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

export interface GlobalsStats {
  /** Registry messages dropped because they failed validation. */
  dropped: number;
  conflicts: number;
}

/**
 * A cluster-wide `NameRegistry` in the style of kz_globals, over any
 * transport (docs/protocol.md):
 *
 * - `registerName` broadcasts a claim that every member of this node's view
 *   must vote on; `yes` only when all agreed, `no` when one refused, and a
 *   `RegistryUnavailableError` (never a `yes`) when a member stays silent
 *   past `registerTimeout`. Only processes of this node can be registered
 *   here (a pid of another node is a `BadArgError`: register it on its own
 *   node), and only live ones (a dead pid is a `BadArgError`).
 * - `whereisName` reads this node's table: no network.
 * - A name is cleared the moment its process exits, here at once and on
 *   every peer within one broker round trip; a lost node's names go when the
 *   failure detector declares it down.
 */
export class GlobalsRegistry extends EventEmitter<GlobalsEvents> implements NameRegistry {
  readonly stats: GlobalsStats = { dropped: 0, conflicts: 0 };
  readonly #options: Required<GlobalsRegistryOptions>;
  #node: Node | undefined;
  #table: NameTable | undefined;
  #server: Pid | undefined;
  #channel: ClusterChannel | undefined;
  #cluster: Cluster | undefined;
  #supervisor: Pid | undefined;
  readonly #listeners: (() => void)[] = [];

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
    this.#options = { registerTimeout, conflictPolicy, channel: options.channel ?? 'globals', antiEntropyInterval };
  }

  async attach(node: Node): Promise<void> {
    if (this.#node !== undefined) throw new BadArgError('GlobalsRegistry: already installed on a node');
    this.#node = node;
    const logger = node.logger.child({ registry: 'globals' });
    const cluster = (this.#cluster = clusterOf(node));
    const outbox = new PeerOutbox(
      () => this.#channel,
      () => cluster?.nodes() ?? [],
      (error, message) => logger.error({ err: error, op: message.op }, 'a registry message could not be sent'),
    );
    const table = new NameTable(
      {
        node,
        logger,
        members: () => cluster?.nodes() ?? [],
        broadcast: (message) => outbox.broadcast(message),
        sendTo: (peer, message) => outbox.send(peer, message),
        registered: (name, pid) => this.emit('registered', name, pid),
        unregistered: (name, pid, reason) => this.emit('unregistered', name, pid, reason),
        conflict: (outcome) => {
          this.stats.conflicts++;
          logger.warn({ name: outcome.name, policy: outcome.policy }, 'name conflict settled');
          this.emit('conflict', outcome);
        },
      },
      this.#options.conflictPolicy,
    );
    this.#table = table;
    if (cluster !== undefined) {
      this.#channel = cluster.channel(this.#options.channel, (from, raw) => {
        let messages: GlobalsMessage[];
        try {
          messages = parseMessages(raw);
        } catch (error) {
          // Counted here; the cluster layer drops it, counts it as `malformed` and logs it (rate-limited).
          this.stats.dropped++;
          throw error;
        }
        for (const message of messages) this.#toServer({ type: '$globals', from: from.node, message });
      });
      const onUp = ({ node: peer }: { node: string }): void => {
        this.#toServer({ type: '$globals_nodeup', node: peer });
        this.emit('nodeup', peer);
      };
      const onDown = ({ node: peer }: { node: string }): void => {
        this.#toServer({ type: '$globals_nodedown', node: peer });
        this.emit('nodedown', peer);
      };
      cluster.on('nodeup', onUp);
      cluster.on('nodedown', onDown);
      this.#listeners.push(() => cluster.off('nodeup', onUp), () => cluster.off('nodedown', onDown));
    }
    this.#supervisor = await Supervisor.start(node, {
      strategy: 'one_for_one',
      intensity: 10,
      period: 10_000,
      children: [
        {
          id: 'globals',
          start: (self) =>
            GenServer.startLink(self, RegistryServer, {
              table,
              started: (pid) => {
                this.#server = pid;
              },
            }),
          shutdown: 1000,
        },
      ],
    });
    if (cluster !== undefined && this.#options.antiEntropyInterval > 0) {
      const timer = setInterval(() => this.#toServer({ type: '$globals_tick' }), this.#options.antiEntropyInterval);
      timer.unref();
      this.#listeners.push(() => clearInterval(timer));
    }
    // Peers that were already up before we installed: learn what they own.
    for (const peer of cluster?.nodes() ?? []) this.#toServer({ type: '$globals_nodeup', node: peer });
  }

  async detach(): Promise<void> {
    for (const remove of this.#listeners.splice(0)) remove();
    this.#channel?.close();
    this.#channel = undefined;
    const node = this.#node;
    const supervisor = this.#supervisor;
    if (node !== undefined && supervisor !== undefined && node.isAlive(supervisor)) {
      await GenServer.stop(node, supervisor, 'shutdown').catch(() => undefined);
    }
  }

  async registerName(name: Name, pid: Pid): Promise<'yes' | 'no'> {
    const key = globalKey(name);
    const node = this.#requireNode();
    this.#checkRegistrant(node, pid, key);
    const answer = await this.#call<Answer>({ op: 'register', key, name, pid, timeout: this.#options.registerTimeout });
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async unregisterName(name: Name): Promise<void> {
    const key = globalKey(name);
    this.#requireNode();
    this.#table!.unregister(key);
  }

  whereisName(name: Name): Pid | undefined {
    return this.#table?.whereis(nameKey(name));
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

  /** This node and the live members it agrees with. */
  members(): string[] {
    const node = this.#requireNode();
    return [node.name, ...(this.#cluster?.nodes() ?? [])];
  }

  #checkRegistrant(node: Node, pid: Pid, key: string): void {
    if (!(pid instanceof Pid)) throw new TypeError(`registerName ${key}: pid must be a Pid`);
    if (pid.node !== node.name || pid.creation !== node.creation) {
      throw new BadArgError(`registerName ${key}: ${pid.key} is a process of node ${pid.node}; register it on its own node`);
    }
    if (!node.isAlive(pid)) throw new BadArgError(`registerName ${key}: ${pid.key} is not alive`);
  }

  async #call<T>(request: ServerRequest): Promise<T> {
    const node = this.#requireNode();
    const server = this.#server;
    if (server === undefined) throw new RegistryUnavailableError('the globals registry is not running');
    try {
      return await node.call<T>(server, request, { timeout: Infinity });
    } catch (error) {
      if (error instanceof CallError) throw new RegistryUnavailableError(`the globals registry failed: ${error.message}`);
      throw error;
    }
  }

  #toServer(info: ServerInfo): void {
    const server = this.#server;
    if (server !== undefined) this.#node?.send(server, info);
  }

  #requireNode(): Node {
    if (this.#node === undefined) throw new BadArgError('GlobalsRegistry: not installed on a node (node.installRegistry)');
    return this.#node;
  }
}

/**
 * The deepest nesting of arrays and objects a global name may have. Names
 * travel inside registry messages (a `sync` carries them three levels down)
 * and the wire codec refuses values nested deeper than 64: a deeper name
 * would make the registry actor crash on encoding instead of being refused.
 */
const MAX_NAME_DEPTH = 32;
/** A name travels in every claim, commit and sync: keep it far below a frame (1 MiB by default). */
const MAX_NAME_CHARS = 16 * 1024;

/** `nameKey`, plus the refusal of names too deeply nested to cross the wire. */
function globalKey(name: Name): string {
  const key = nameKey(name);
  if (key.length > MAX_NAME_CHARS) {
    throw new TypeError(`invalid global name: ${key.length} characters encoded, more than ${MAX_NAME_CHARS}; it would not fit the frames it travels in`);
  }
  if (typeof name === 'object' && name !== null && nestingOf(name, 1) > MAX_NAME_DEPTH) {
    throw new TypeError(`invalid global name: nested deeper than ${MAX_NAME_DEPTH} levels of arrays and objects; it could not cross the wire`);
  }
  return key;
}

/** How deeply `value` nests arrays and objects, counting from `depth`; stops counting past the limit. */
function nestingOf(value: object, depth: number): number {
  if (depth > MAX_NAME_DEPTH) return depth;
  let deepest = depth;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (typeof item === 'object' && item !== null) deepest = Math.max(deepest, nestingOf(item, depth + 1));
    if (deepest > MAX_NAME_DEPTH) break;
  }
  return deepest;
}
