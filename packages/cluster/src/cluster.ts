import { EventEmitter } from 'eventemitter3';
import type { Distribution, DistributionHost, ExitReason, Node, NodeSnapshot, Pid, Ref, RemoteSpawnRequest, SignalKind } from '@roster/core';
import type { Logger } from 'pino';
import { NodeNameTakenError, WireDecodeError, WireEncodeError, type DropReason } from './errors.js';
import { EnvelopeCodec, type Envelope, type Kind } from './internal/envelope.js';
import { FEATURES, featuresOf, type Feature } from './internal/features.js';
import { RateLimitedLog } from './internal/rate-limited-log.js';
import { SpawnService } from './internal/remote-spawn.js';
import { INTROSPECTION_CHANNEL, IntrospectionService, resolveSnapshotOfOptions, type ClusterIntrospection, type SnapshotOfOptions } from './internal/introspection.js';
import { IncarnationTable, Verdict, type Incarnation } from './internal/replay-window.js';
import { MemoryTransport } from './memory-transport.js';
import type { Transport } from './transport.js';

export interface ClusterOptions {
  /** The carrier; default a `MemoryTransport` on the process-wide `MemoryBroker` (the embedded default). */
  readonly transport?: Transport;
  /** The cluster's id: nodes of different clusters ignore each other. Default `roster`. */
  readonly id?: string;
  /** A shared secret: every envelope is signed (HMAC-SHA256) and unsigned or forged ones are dropped. */
  readonly secret?: string | Buffer;
  /** Milliseconds between heartbeats. Default 1000. */
  readonly heartbeatInterval?: number;
  /** A peer silent this long is down. Default 3000; must exceed `heartbeatInterval`. */
  readonly failureTimeout?: number;
  /** How long a starting node listens for a peer saying its name is taken. Default 200 ms. */
  readonly joinWindow?: number;
  /** Largest frame accepted or sent, in bytes. Default 1 MiB. */
  readonly maxFrameBytes?: number;
  /**
   * How far (ms) a peer's wall clock may be ahead of or behind this node's.
   * A hello, hb or leave stamped more than this ahead is dropped (`clock_skew`);
   * one older than `failureTimeout + maxClockSkew` is dropped as a replay
   * (`replayed`). Default 10_000.
   */
  readonly maxClockSkew?: number;
  /**
   * `member` (default), or `observer`: a node that watches the cluster (an
   * operator's console, a metrics scraper) and is a member for messages,
   * calls and monitors, but that services holding cluster-wide state (the
   * globals registry, distributed supervisors) do not count: it never votes,
   * hosts no global name, and can neither slow nor block them. Announced in
   * every hello and heartbeat.
   */
  readonly role?: ClusterRole;
}

/** What a node is to the cluster's services (see {@link ClusterOptions.role}). */
export type ClusterRole = 'member' | 'observer';

declare module '@roster/core' {
  /** `Node.start({ cluster })` takes these options once @roster/cluster is imported. */
  interface NodeClusterOptions extends ClusterOptions {}
}

const CLUSTER_OPTION_KEYS: ReadonlySet<string> = new Set<keyof ClusterOptions>([
  'transport',
  'id',
  'secret',
  'heartbeatInterval',
  'failureTimeout',
  'joinWindow',
  'maxFrameBytes',
  'maxClockSkew',
  'role',
]);

/** Frames for channels not open yet wait at most this long (ms) and this many bytes in all. */
const EARLY_MAX_AGE_MS = 60_000;
const EARLY_MAX_BYTES = 16 * 1024 * 1024;

interface EarlyFrame {
  readonly from: PeerIdentity;
  readonly message: unknown;
  readonly at: number;
  readonly bytes: number;
}

/** Who sent a channel message: a node name and its incarnation. */
export interface PeerIdentity {
  readonly node: string;
  readonly creation: string;
}

/** A live member as `members()` lists it. */
export interface PeerInfo extends PeerIdentity {
  readonly role: ClusterRole;
}

export interface ClusterEvents {
  nodeup: (peer: PeerIdentity) => void;
  nodedown: (peer: PeerIdentity, reason: 'timeout' | 'leave' | 'disconnected' | 'restarted') => void;
  /** This node's own connection to the carrier came back (after `down`). */
  reconnected: () => void;
  disconnected: () => void;
  /**
   * Direct frames from `peer` (channel messages among them) were lost: a
   * later one came with a sequence number past the next, or `peer`'s
   * heartbeat says it sent more than arrived. Fires once per loss, at the
   * next frame or heartbeat of `peer` after it; a service that must not miss
   * messages (the registry) repairs with a sync towards `peer`.
   */
  gap: (peer: PeerIdentity) => void;
}

export interface ClusterStats {
  sent: number;
  received: number;
  /**
   * Frames dropped, by reason; `no_route` counts sends to a node that is not
   * a live member, `rate_limited` peers' `snapshotOf` requests beyond 10 a
   * second (bursts of 20; one with `processes: true` counts 5) per asking node.
   */
  readonly dropped: Record<DropReason | 'no_route' | 'rate_limited', number>;
}

/** A named stream of messages between the nodes of a cluster, for services such as registries. */
export interface ClusterChannel {
  /** To every live member (not this node), one frame each. Throws `WireEncodeError` for a value that cannot cross. */
  broadcast(message: unknown): void;
  /** To one member; false when it is not a live member. */
  send(node: string, message: unknown): boolean;
  /**
   * To one member, as plain JSON: `message` is serialised by
   * `JSON.stringify` alone and the receiver's handler gets what `JSON.parse`
   * gives, with no tagged values decoded (a pid must travel as its fields).
   * For high-volume services whose messages are plain data: it skips the
   * tagged codec's copy on both ends. Throws `WireEncodeError` for a value
   * `JSON.stringify` cannot write (a bigint, a cycle); values it leaves out
   * (`undefined`, functions) are gone, so send only plain data. The handler
   * must check what it gets, as for `send`, bounding any recursion: below
   * 16 KiB a frame's nesting is not scanned. To a member of an older roster,
   * which reads no plain body, it goes tagged, holding the same value.
   */
  sendPlain(node: string, message: unknown): boolean;
  close(): void;
}

export type ChannelHandler = (from: PeerIdentity, message: unknown) => void;

interface Peer {
  readonly name: string;
  readonly creation: string;
  /** What this node keeps about this incarnation, beyond its membership. */
  readonly inc: Incarnation;
  address: string;
  session: number;
  lastSeen: number;
  /** How many times the peer had taken us on as a member when it last told us (`e` of its direct `hb`). */
  epoch: number | undefined;
  role: ClusterRole;
  /** What its wire reads beyond the first frames (`f` of its membership frames): none for an older node. */
  readonly features: ReadonlySet<string>;
}

const clusters = new WeakMap<Node, Cluster>();

/** The cluster a node joined, or undefined when it is not clustered. */
export function clusterOf(node: Node): Cluster | undefined {
  return clusters.get(node);
}

/**
 * A node's membership of a cluster: heartbeats and failure detection, and
 * remote send / link / monitor / exit over any `Transport`. This is the
 * node's `Distribution`; `Node.start({ cluster })` creates it.
 */
export class Cluster extends EventEmitter<ClusterEvents> implements Distribution {
  readonly id: string;
  readonly stats: ClusterStats = {
    sent: 0,
    received: 0,
    dropped: {
      malformed: 0,
      oversized: 0,
      version: 0,
      foreign_cluster: 0,
      bad_signature: 0,
      unknown_peer: 0,
      misrouted: 0,
      replayed: 0,
      clock_skew: 0,
      no_channel: 0,
      forged: 0,
      no_route: 0,
      rate_limited: 0,
    },
  };
  readonly heartbeatInterval: number;
  readonly failureTimeout: number;
  /** The clock skew bound between members, in ms (see {@link ClusterOptions.maxClockSkew}). */
  readonly maxClockSkew: number;
  /** This node's role (see {@link ClusterOptions.role}). */
  readonly role: ClusterRole;
  readonly #host: DistributionHost;
  readonly #transport: Transport;
  readonly #codec: EnvelopeCodec;
  readonly #peers = new Map<string, Peer>();
  /** Bumped at every change of `#peers` (see `membershipVersion`). */
  #membershipVersion = 0;
  readonly #channels = new Map<string, ChannelHandler>();
  /** By channel name, in arrival order: frames that came before the channel was open (or while its backlog drains). */
  readonly #early = new Map<string, EarlyFrame[]>();
  #earlyBytes = 0;
  readonly #incarnations = new IncarnationTable();
  /** Sequence number of this node's last broadcast. */
  #broadcastSeq = 0;
  readonly #logger: Logger;
  readonly #dropLog: RateLimitedLog;
  /** Remote spawns: the requests this node made, and the answering of its peers'. */
  readonly #spawns: SpawnService;
  /** `snapshotOf`: the snapshots this node asked for, and the answering of its peers' requests. */
  readonly #introspection: IntrospectionService;
  readonly #name: string;
  readonly #creation: string;
  #session = 0;
  /** By peer name: how many times this node has taken that peer on as a member (sent as `e`). */
  readonly #adds = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #refusal: string | undefined;
  /** While joining: the members our first peers named, which must answer too. */
  #expected: Set<string> | undefined = new Set();
  #left = false;
  #lastTick = Date.now();

  private constructor(host: DistributionHost, options: ClusterOptions) {
    super();
    const node = host.node;
    if (typeof options !== 'object' || options === null) throw new TypeError('cluster: options must be an object');
    const unknown = Object.keys(options).filter((key) => !CLUSTER_OPTION_KEYS.has(key));
    if (unknown.length > 0) {
      throw new TypeError(`cluster: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: ${[...CLUSTER_OPTION_KEYS].join(', ')})`);
    }
    this.#host = host;
    this.#name = node.name;
    this.#creation = node.creation;
    this.id = options.id ?? 'roster';
    if (typeof this.id !== 'string' || this.id.length === 0) throw new TypeError('cluster.id must be a non-empty string');
    this.heartbeatInterval = options.heartbeatInterval ?? 1000;
    this.failureTimeout = options.failureTimeout ?? 3000;
    if (!(this.heartbeatInterval > 0)) throw new TypeError('cluster.heartbeatInterval must be a number of ms > 0');
    if (!(this.failureTimeout > this.heartbeatInterval)) {
      throw new TypeError('cluster.failureTimeout must be greater than cluster.heartbeatInterval');
    }
    this.maxClockSkew = options.maxClockSkew ?? 10_000;
    if (typeof this.maxClockSkew !== 'number' || !(this.maxClockSkew >= 0)) {
      throw new TypeError(`cluster.maxClockSkew must be a number of ms >= 0, got ${String(this.maxClockSkew)}`);
    }
    this.role = options.role ?? 'member';
    if (this.role !== 'member' && this.role !== 'observer') {
      throw new TypeError(`cluster.role must be member or observer, got ${String(this.role)}`);
    }
    const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
    if (!(maxFrameBytes >= 1024)) throw new TypeError('cluster.maxFrameBytes must be at least 1024');
    const secret = options.secret;
    if (secret !== undefined && !(typeof secret === 'string' || Buffer.isBuffer(secret)) ) {
      throw new TypeError('cluster.secret must be a string or a Buffer');
    }
    this.#transport = options.transport ?? new MemoryTransport();
    this.#logger = host.logger.child({ cluster: this.id });
    this.#dropLog = new RateLimitedLog(this.#logger);
    this.#spawns = new SpawnService({
      host,
      logger: this.#logger,
      creationOf: (name) => this.#peers.get(name)?.creation,
      send: (name, creation, kind, body) => {
        const peer = this.#peers.get(name);
        if (peer === undefined || peer.creation !== creation) return false;
        this.#sendTo(peer, kind, body);
        return true;
      },
      kill: (pid) => this.exit(host.node.pid, pid, 'kill', 'exit'),
    });
    this.#codec = new EnvelopeCodec({
      cluster: this.id,
      node: this.#name,
      creation: this.#creation,
      secret: secret === undefined ? undefined : Buffer.from(secret),
      maxFrameBytes,
    });
    const introspectionBody = (message: unknown): string => this.#userBody({ n: INTROSPECTION_CHANNEL, m: message });
    this.#introspection = new IntrospectionService({
      host,
      creationOf: (name) => this.#peers.get(name)?.creation,
      send: (name, creation, message) => {
        const peer = this.#peers.get(name);
        if (peer === undefined || peer.creation !== creation) return false;
        this.#sendTo(peer, 'ch', introspectionBody(message));
        return true;
      },
      limited: (name) => {
        this.stats.dropped.rate_limited++;
        this.#dropLog.warn('rate_limited', { reason: 'rate_limited', peer: name }, `dropped a snapshot request of ${name} (rate_limited)`);
      },
      fits: (message) => {
        try {
          this.#codec.frame('ch', introspectionBody(message), Number.MAX_SAFE_INTEGER, JSON.stringify(this.#creation));
          return true;
        } catch (error) {
          if (error instanceof WireEncodeError) return false;
          throw error;
        }
      },
    });
    this.channel(INTROSPECTION_CHANNEL, (from, message) => this.#introspection.onMessage(from, message));
  }

  /** Joins the cluster; rejects with `NodeNameTakenError` when a live peer has this node's name. */
  static async join(host: DistributionHost, options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(host, options);
    await cluster.#start(options.joinWindow ?? 200);
    clusters.set(host.node, cluster);
    return cluster;
  }

  async #start(joinWindow: number): Promise<void> {
    const transport = this.#transport;
    transport.on('frame', this.#onFrame);
    transport.on('down', this.#onDown);
    transport.on('up', this.#onUp);
    await transport.connect({ cluster: this.id, node: this.#name });
    this.#announce();
    this.#timer = setInterval(this.#tick, this.heartbeatInterval);
    this.#timer.unref();
    if (joinWindow > 0) await new Promise((resolve) => setTimeout(resolve, joinWindow));
    // The window's timer runs before the I/O that arrived while this process was busy (peers in the same
    // process encoding what they send us, say): let that I/O be read first, so the answers that came in
    // time count and the view this node starts with is the one the cluster gave it.
    await new Promise((resolve) => setImmediate(resolve));
    await this.#awaitNamedMembers();
    if (this.#refusal !== undefined) {
      const reason = this.#refusal;
      await this.#close();
      throw new NodeNameTakenError(`node name ${JSON.stringify(this.#name)} is already live in cluster ${JSON.stringify(this.id)} (${reason}); pick another name, or wait failureTimeout for a dead node to be noticed`);
    }
  }

  /**
   * A joining node's view is what answered within the join window; members
   * named by those answers (`m`) that have not answered yet are waited for,
   * up to `failureTimeout`, so a busy peer does not make this node start
   * with a partial view of the cluster.
   */
  async #awaitNamedMembers(): Promise<void> {
    const missing = (): boolean => [...(this.#expected ?? [])].some((node) => !this.#peers.has(node));
    const deadline = Date.now() + this.failureTimeout;
    while (missing() && Date.now() < deadline && this.#refusal === undefined) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.off('nodeup', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, deadline - Date.now()));
        this.on('nodeup', done);
      });
    }
    this.#expected = undefined;
  }

  /** Names of the live members, this node excluded. */
  nodes(): string[] {
    return [...this.#peers.keys()];
  }

  /**
   * A number that changes whenever the live peers do (one added, dropped, or
   * replaced by another incarnation): what a service derives from `nodes()`
   * per message can be kept until it changes.
   */
  get membershipVersion(): number {
    return this.#membershipVersion;
  }

  /**
   * This node's cluster layer in a snapshot (`Distribution.introspect`: it
   * is `node.snapshot().distribution`, so a peer's reaches an observer
   * through `snapshotOf`): a copy of `stats` (frames sent, received, dropped
   * by reason), the live peers (members and observers, this node excluded)
   * and this node's role. Plain numbers read now; O(drop reasons).
   */
  introspect(): ClusterIntrospection {
    const { sent, received, dropped } = this.stats;
    return { sent, received, dropped: { ...dropped }, peers: this.#peers.size, role: this.role };
  }

  /** The live members with their incarnations and roles. */
  members(): PeerInfo[] {
    return [...this.#peers.values()].map((peer) => ({ node: peer.name, creation: peer.creation, role: peer.role }));
  }

  /** Whether `node` is a live member that announced itself an observer. */
  isObserver(node: string): boolean {
    return this.#peers.get(node)?.role === 'observer';
  }

  /** Whether `node` is a live member (this node included). */
  isMember(node: string): boolean {
    return node === this.#name || this.#peers.has(node);
  }

  get connected(): boolean {
    return this.#transport.state === 'up';
  }

  /** Resolves once everything sent so far is accepted by the carrier. */
  flush(): Promise<void> {
    return this.#transport.flush();
  }

  /**
   * Opens a named channel; one handler per name per node. Messages that
   * arrived for `name` before it was open (up to 60 s old and 16 MiB for all
   * channels; beyond that they are dropped as `no_channel`) are handed to
   * `handler` in arrival order at the next microtask, after this returns and
   * before any message that arrives later; senders that went down meanwhile
   * included.
   */
  channel(name: string, handler: ChannelHandler): ClusterChannel {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('channel: name must be a non-empty string');
    if (this.#channels.has(name)) throw new TypeError(`channel: ${JSON.stringify(name)} is already open`);
    this.#channels.set(name, handler);
    if (this.#early.has(name)) queueMicrotask(() => this.#drainEarly(name, handler));
    /** A `ch` frame to one live member, its body encoded only when there is one; false when `node` is not. */
    const toMember = (node: string, message: unknown, plain: boolean): boolean => {
      const peer = this.#peers.get(node);
      if (peer === undefined) return false;
      this.#sendTo(peer, 'ch', plain ? this.#plainBody(peer, name, message) : this.#userBody({ n: name, m: message }));
      return true;
    };
    return {
      broadcast: (message) => {
        const body = this.#userBody({ n: name, m: message });
        for (const peer of this.#peers.values()) this.#sendTo(peer, 'ch', body);
      },
      send: (node, message) => toMember(node, message, false),
      sendPlain: (node, message) => toMember(node, message, true),
      close: () => {
        if (this.#channels.get(name) === handler) this.#channels.delete(name);
      },
    };
  }

  /**
   * A plain channel message's body for `peer`: plain JSON (`j`) when it reads
   * it; else, for an older node, what `JSON.parse` would give, tagged (`m`),
   * so its handler gets the same value either way.
   */
  #plainBody(peer: Peer, channel: string, message: unknown): string {
    const body = EnvelopeCodec.plainChannelBody(channel, message);
    if (reads(peer, 'plain')) return body;
    return this.#userBody({ n: channel, m: (JSON.parse(body) as { j: unknown }).j });
  }

  // ---- Distribution --------------------------------------------------------------

  send(from: Pid | undefined, to: Pid, message: unknown): void {
    const peer = this.#route(to);
    if (peer === undefined) return;
    this.#sendTo(peer, 'msg', this.#messageBody(from, to, message));
  }

  /** The body of a `msg` frame: `message` for `to`, from `from` when there is one. */
  #messageBody(from: Pid | undefined, to: Pid, message: unknown): string {
    return this.#userBody(from === undefined ? { t: to, m: message } : { t: to, f: from, m: message });
  }

  /** To the process under the local `name` on `node` (this node included); false when `node` is not a live member. */
  sendNamed(from: Pid | undefined, node: string, name: string, message: unknown): boolean {
    if (node === this.#name) {
      this.#host.deliverNamed(name, message, from);
      return true;
    }
    const peer = this.#peers.get(node);
    if (peer === undefined) {
      this.stats.dropped.no_route++;
      return false;
    }
    this.#sendTo(peer, 'nmsg', this.#userBody(from === undefined ? { n: name, m: message } : { n: name, f: from, m: message }));
    return true;
  }

  link(from: Pid, to: Pid): void {
    const peer = this.#route(to);
    if (peer === undefined) {
      const reason = this.#peers.has(to.node) ? 'noproc' : 'noconnection';
      queueMicrotask(() => this.#host.exit(to, from, reason, 'link'));
      return;
    }
    this.#sendTo(peer, 'link', EnvelopeCodec.body({ f: from, t: to }));
  }

  unlink(from: Pid, to: Pid): void {
    const peer = this.#route(to);
    if (peer !== undefined) this.#sendTo(peer, 'unlink', EnvelopeCodec.body({ f: from, t: to }));
  }

  exit(from: Pid, to: Pid, reason: ExitReason, kind: SignalKind): void {
    const peer = this.#route(to);
    if (peer === undefined) return;
    this.#sendTo(peer, 'exit', bodyWithReason({ f: from, t: to, x: kind }, reason));
  }

  monitor(watcher: Pid, target: Pid, ref: Ref): void {
    const peer = this.#route(target);
    if (peer === undefined) return this.#unreachable(watcher, ref, target);
    this.#sendTo(peer, 'mon', EnvelopeCodec.body({ w: watcher, t: target, r: ref }));
  }

  /** A monitor of `target` that cannot be placed fires at once: `noproc` for a pid of an earlier life of a live node, else `noconnection`. */
  #unreachable(watcher: Pid, ref: Ref, target: Pid): void {
    const reason = this.#peers.has(target.node) ? 'noproc' : 'noconnection';
    queueMicrotask(() => this.#host.down(watcher, ref, target, reason));
  }

  /** A call's request with its reply port's monitor, one `call` frame (see `Distribution.request`). */
  request(from: Pid | undefined, to: Pid, message: unknown, watcher: Pid, ref: Ref): void {
    const peer = this.#route(to);
    if (peer === undefined) return this.#unreachable(watcher, ref, to);
    if (reads(peer, 'call')) {
      this.#sendTo(peer, 'call', this.#userBody(from === undefined ? { t: to, m: message, w: watcher, r: ref } : { t: to, f: from, m: message, w: watcher, r: ref }));
      return;
    }
    // A node of an older roster reads no `call`: the monitor, then the message (encoded first, so a
    // message that cannot cross places nothing).
    const body = this.#messageBody(from, to, message);
    this.#sendTo(peer, 'mon', EnvelopeCodec.body({ w: watcher, t: to, r: ref }));
    this.#sendTo(peer, 'msg', body);
  }

  /** A server's reply that drops the caller's monitor with it (see `Distribution.reply`): `d` on the `msg` frame. */
  reply(from: Pid, to: Pid, value: unknown, tag: Ref): void {
    const peer = this.#route(to);
    if (peer === undefined) return;
    this.#sendTo(peer, 'msg', this.#userBody({ t: to, f: from, m: { type: '$gen_reply', value }, d: tag }));
    this.#host.demonitor(to, from, tag);
  }

  demonitor(watcher: Pid, target: Pid, ref: Ref): void {
    const peer = this.#route(target);
    if (peer !== undefined) this.#sendTo(peer, 'demon', EnvelopeCodec.body({ w: watcher, t: target, r: ref }));
  }

  down(watcher: Pid, ref: Ref, pid: Pid, reason: ExitReason): void {
    const peer = this.#route(watcher);
    if (peer !== undefined) this.#sendTo(peer, 'down', bodyWithReason({ w: watcher, p: pid, r: ref }, reason));
  }

  /**
   * Starts a catalogue entry on the member `request.node` (see
   * `Distribution.spawn`): a `spawn` frame, answered by `spawned`. Rejects
   * with `SpawnError('unknown_node')` at once for a node that is not a live
   * member, `bad_args` for args or a name that cannot cross (nothing sent),
   * `noconnection` the moment the node goes down, `timeout` after
   * `request.timeout`; a child whose answer comes later is killed.
   */
  spawn(request: RemoteSpawnRequest): Promise<Pid> {
    return this.#spawns.request(request);
  }

  /**
   * A snapshot of `node` (see `Node.snapshot`): this node's own at once, any
   * live member's or observer's over the cluster channel `roster.introspect`
   * (checked field by field on arrival). Rejects with `IntrospectionError`:
   * `unknown_node` at once for a node that is not a live member,
   * `noconnection` the moment it goes down, `timeout` after `timeout` ms
   * (default 5000), `too_large` when its answer cannot fit in one frame; and
   * with `TypeError` naming a bad option. With `processes: true`, a peer
   * lists at most 10 000 processes, the longest mailboxes first, and fewer
   * when they would not fit in one frame (`maxFrameBytes`); `truncated: true`
   * says the list was cut.
   */
  async snapshotOf(node: string, options?: SnapshotOfOptions): Promise<NodeSnapshot> {
    if (typeof node !== 'string' || node.length === 0) throw new TypeError(`Cluster.snapshotOf: node must be a non-empty string, got ${typeof node === 'string' ? '""' : typeof node}`);
    const request = resolveSnapshotOfOptions(options);
    if (node === this.#name) return this.#host.node.snapshot({ longestMailboxes: request.longestMailboxes, processes: request.processes });
    return this.#introspection.request(node, request);
  }

  /** Leaves gracefully: peers drop this node at once instead of waiting for the failure timeout. */
  async leave(): Promise<void> {
    if (this.#left) return;
    if (this.#transport.state === 'up') {
      this.#broadcastFrame('leave', { t: Date.now() });
      try {
        await this.#transport.flush();
      } catch {
        // The carrier is gone: peers will notice by the failure timeout instead.
      }
    }
    await this.#close();
  }

  async #close(): Promise<void> {
    this.#left = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const transport = this.#transport;
    transport.off('frame', this.#onFrame);
    transport.off('down', this.#onDown);
    transport.off('up', this.#onUp);
    for (const peer of [...this.#peers.values()]) this.#peerDown(peer, 'leave');
    this.#channels.clear();
    this.#early.clear();
    this.#earlyBytes = 0;
    await transport.close();
  }

  // ---- internals --------------------------------------------------------------------

  /**
   * Serialises a body that carries the user's value under `m`; a refusal
   * names the path inside that value (`$.a.b`), not inside the envelope body (`$.m.a.b`).
   */
  #userBody(body: Record<string, unknown>): string {
    try {
      return EnvelopeCodec.body(body);
    } catch (error) {
      if (!(error instanceof WireEncodeError) || !/^\$\.m(?=$|[.[])/.test(error.path)) throw error;
      const path = `$${error.path.slice(3)}`;
      throw new WireEncodeError(`${error.message.slice(0, error.message.lastIndexOf(error.path))}${path}`, path);
    }
  }

  #route(pid: Pid): Peer | undefined {
    const peer = this.#peers.get(pid.node);
    if (peer === undefined || peer.creation !== pid.creation) {
      this.stats.dropped.no_route++;
      return undefined;
    }
    return peer;
  }

  #sendTo(peer: Peer, kind: Kind, body: string): void {
    this.#sendDirect(peer.address, peer.inc, kind, body);
  }

  /** To one incarnation at `address`: the next number of its direct stream, and its creation as `r`. */
  #sendDirect(address: string, to: Incarnation, kind: Kind, body: string): void {
    const frame = this.#codec.frame(kind, body, to.sent + 1, to.creationJson);
    to.sent++;
    this.stats.sent++;
    this.#transport.send(address, frame);
  }

  #broadcastFrame(kind: Kind, body: Record<string, unknown>): void {
    const frame = this.#codec.encode(kind, body, this.#broadcastSeq + 1);
    this.#broadcastSeq++;
    this.stats.sent++;
    this.#transport.broadcast(frame);
  }

  /** A membership body: what it says, the features this node reads (`f`), and `w` when this node is an observer. */
  #membership(body: Record<string, unknown>): Record<string, unknown> {
    body['f'] = FEATURES;
    if (this.role === 'observer') body['w'] = true;
    return body;
  }

  #announce(): void {
    const address = this.#transport.address;
    if (address === undefined) return;
    this.#broadcastFrame('hello', this.#membership({ a: address, s: this.#session, t: Date.now() }));
  }

  /** `c` of a heartbeat: by member, the number of the last direct frame sent to it, so it can tell one was lost. */
  #sentCounts(): Record<string, number> | undefined {
    let counts: Record<string, number> | undefined;
    for (const peer of this.#peers.values()) {
      if (peer.inc.sent > 0) (counts ??= {})[peer.name] = peer.inc.sent;
    }
    return counts;
  }

  #isMember = (inc: Incarnation): boolean => this.#peers.get(inc.node)?.inc === inc;

  #incarnation(node: string, creation: string, now: number): Incarnation {
    return this.#incarnations.get(node, creation, now, this.#isMember);
  }

  #tick = (): void => {
    const now = Date.now();
    const address = this.#transport.address;
    if (address !== undefined) {
      const counts = this.#sentCounts();
      this.#broadcastFrame('hb', this.#membership(counts === undefined ? { a: address, s: this.#session, t: now } : { a: address, s: this.#session, t: now, c: counts }));
    }
    this.#incarnations.expire(now, this.#isMember);
    this.#expireEarly(now);
    const stalled = now - this.#lastTick > 2 * this.heartbeatInterval;
    this.#lastTick = now;
    if (stalled) {
      // This node's own event loop was blocked: the silence was ours to hear, not theirs to blame.
      for (const peer of this.#peers.values()) peer.lastSeen = Math.max(peer.lastSeen, now - this.heartbeatInterval);
      return;
    }
    const deadline = now - this.failureTimeout;
    for (const peer of [...this.#peers.values()]) {
      if (peer.lastSeen < deadline) {
        this.#logger.warn({ peer: peer.name }, `node ${peer.name} missed its heartbeats: nodedown`);
        this.#peerDown(peer, 'timeout');
      }
    }
  };

  #onUp = (): void => {
    if (this.#left) return;
    // A new connection: peers that saw us go must see us come back (and those that did not, must learn we were gone).
    this.#session++;
    this.#announce();
    this.emit('reconnected');
  };

  #onDown = (): void => {
    if (this.#left) return;
    this.#logger.warn('lost the connection to the cluster: every peer is down until it comes back');
    for (const peer of [...this.#peers.values()]) this.#peerDown(peer, 'disconnected');
    this.emit('disconnected');
  };

  #onFrame = (frame: string): void => {
    this.stats.received++;
    let envelope: Envelope;
    try {
      envelope = this.#codec.decode(frame);
    } catch (error) {
      this.#drop(error instanceof WireDecodeError ? error.reason : 'malformed', error);
      return;
    }
    try {
      this.#dispatch(envelope, frame.length);
    } catch (error) {
      this.#drop('malformed', error);
    }
  };

  #drop(reason: DropReason, error: unknown): void {
    this.stats.dropped[reason]++;
    this.#dropLog.warn(reason, { reason, err: error instanceof Error ? error.message : String(error) }, `dropped an incoming frame (${reason})`);
  }

  #dispatch(envelope: Envelope, size: number): void {
    const { from, creation, kind, body, seq, to } = envelope;
    if (from === this.#name && creation === this.#creation) return; // our own broadcast
    if (to !== undefined && to !== this.#creation) {
      this.#drop('misrouted', new Error(`${kind} from ${from} for another incarnation of this node`));
      return;
    }
    const now = Date.now();
    const membership = kind === 'hello' || kind === 'hb' || kind === 'leave';
    if (membership && !this.#inTime(body['t'] as number | undefined, now)) return;
    const known = this.#peers.get(from);
    const member = known !== undefined && known.creation === creation ? known : undefined;
    const inc = member?.inc ?? (seq !== undefined || membership ? this.#incarnation(from, creation, now) : undefined);
    let gap = false;
    if (seq !== undefined && inc !== undefined) {
      const verdict = (to === undefined ? inc.broadcast : inc.direct).accept(seq);
      if (verdict === Verdict.Replayed) {
        this.#drop('replayed', new Error(`${kind} ${seq} from ${from} seen before`));
        return;
      }
      gap = verdict === Verdict.Gap && to !== undefined;
      inc.touched = now;
    }
    if (from === this.#name) {
      // Another incarnation under our name: the live one keeps it (and may be the only one to say so).
      if (kind === 'hello') this.#refuse(body['a'] as string, inc!);
      else if (kind === 'refuse') this.#refusal = body['reason'] as string;
      return;
    }
    if (gap && member !== undefined) this.emit('gap', { node: from, creation });
    switch (kind) {
      case 'hello':
      case 'hb':
        this.#heartbeat(from, creation, inc!, body, kind === 'hello', now);
        if (to !== undefined && this.#expected !== undefined) this.#expectMembers(body['m']);
        if (member !== undefined && to === undefined) this.#checkSent(member, body['c'] as Record<string, number> | undefined);
        return;
      case 'refuse':
        this.#refusal = body['reason'] as string;
        return;
      case 'leave':
        if (inc !== undefined) inc.left = true;
        if (member !== undefined) this.#peerDown(member, 'leave');
        return;
    }
    if (member === undefined) {
      this.#drop('unknown_peer', new Error(`frame from ${from}, not a live member`));
      return;
    }
    member.lastSeen = now;
    const spokenFor = SPOKEN_FOR[kind];
    if (spokenFor !== undefined && !this.#ownPids(body, spokenFor, from, creation)) {
      this.#drop('forged', new Error(`${kind} from ${from} speaks for a process of another node`));
      return;
    }
    const host = this.#host;
    switch (kind) {
      case 'msg':
        if (!this.#isLocal(body['t'] as Pid)) return this.#drop('misrouted', new Error('message for another node'));
        if (body['d'] !== undefined && body['f'] !== undefined) host.replied(body['t'] as Pid, body['m'], body['f'] as Pid, body['d'] as Ref);
        else host.deliver(body['t'] as Pid, body['m']);
        return;
      case 'call':
        if (!this.#isLocal(body['t'] as Pid)) return this.#drop('misrouted', new Error('call for another node'));
        host.monitor(body['w'] as Pid, body['t'] as Pid, body['r'] as Ref);
        host.deliver(body['t'] as Pid, body['m']);
        return;
      case 'nmsg':
        host.deliverNamed(body['n'] as string, body['m'], body['f'] as Pid | undefined);
        return;
      case 'link':
        host.link(body['f'] as Pid, body['t'] as Pid);
        return;
      case 'unlink':
        host.unlink(body['f'] as Pid, body['t'] as Pid);
        return;
      case 'exit':
        host.exit(body['f'] as Pid, body['t'] as Pid, body['e'], body['x'] as SignalKind);
        return;
      case 'mon':
        host.monitor(body['w'] as Pid, body['t'] as Pid, body['r'] as Ref);
        return;
      case 'demon':
        host.demonitor(body['w'] as Pid, body['t'] as Pid, body['r'] as Ref);
        return;
      case 'down':
        host.down(body['w'] as Pid, body['r'] as Ref, body['p'] as Pid, body['e']);
        return;
      case 'ch':
        this.#channelFrame(body['n'] as string, { node: from, creation }, 'j' in body ? body['j'] : body['m'], size, now);
        return;
      case 'spawn':
        this.#spawns.onRequest({ node: from, creation }, body);
        return;
      case 'spawned':
        this.#spawns.onAnswer({ node: from, creation }, body);
        return;
    }
  }

  /** Whether every pid of `body` under `fields` (those present) is of the sender's incarnation `from`/`creation`. */
  #ownPids(body: Record<string, unknown>, fields: readonly string[], from: string, creation: string): boolean {
    for (const field of fields) {
      const pid = body[field] as Pid | undefined;
      if (pid !== undefined && (pid.node !== from || pid.creation !== creation)) return false;
    }
    return true;
  }

  /** Whether a membership frame stamped `t` is recent and not from the future (by the skew bound); drops it otherwise. */
  #inTime(t: number | undefined, now: number): boolean {
    if (t === undefined) return true;
    if (t < now - this.failureTimeout - this.maxClockSkew) {
      this.#drop('replayed', new Error(`membership frame stamped ${now - t} ms ago`));
      return false;
    }
    if (t > now + this.maxClockSkew) {
      this.#drop('clock_skew', new Error(`membership frame stamped ${t - now} ms ahead, beyond maxClockSkew ${this.maxClockSkew}`));
      return false;
    }
    return true;
  }

  /** A member's heartbeat says how many direct frames it sent us: fewer arrived means some were lost. */
  #checkSent(peer: Peer, counts: Record<string, number> | undefined): void {
    const sent = counts?.[this.#name];
    if (sent !== undefined && this.#peers.get(peer.name) === peer && peer.inc.direct.missing(sent)) {
      this.emit('gap', { node: peer.name, creation: peer.creation });
    }
  }

  #refuse(address: string, to: Incarnation): void {
    this.#sendDirect(address, to, 'refuse', EnvelopeCodec.body({ reason: `node ${to.node} is live with another incarnation` }));
  }

  #channelFrame(name: string, from: PeerIdentity, message: unknown, size: number, now: number): void {
    const handler = this.#channels.get(name);
    if (handler !== undefined && !this.#early.has(name)) {
      handler(from, message);
      return;
    }
    if (this.#earlyBytes + size > EARLY_MAX_BYTES) {
      this.#drop('no_channel', new Error(`channel ${JSON.stringify(name)} is not open and ${EARLY_MAX_BYTES} bytes wait for unopened channels`));
      return;
    }
    let list = this.#early.get(name);
    if (list === undefined) this.#early.set(name, (list = []));
    list.push({ from, message, at: now, bytes: size });
    this.#earlyBytes += size;
  }

  /** Hands what waited for `name` to its handler, in order, while it stays the open one. */
  #drainEarly(name: string, handler: ChannelHandler): void {
    const list = this.#early.get(name);
    if (list === undefined) return;
    this.#expireEarly(Date.now());
    while (list.length > 0 && this.#channels.get(name) === handler) {
      const early = list.shift()!;
      this.#earlyBytes -= early.bytes;
      try {
        handler(early.from, early.message);
      } catch (error) {
        this.#drop('malformed', error);
      }
    }
    if (list.length === 0 && this.#early.get(name) === list) this.#early.delete(name);
  }

  /** Frames that waited too long for their channel are dropped. */
  #expireEarly(now: number): void {
    if (this.#early.size === 0) return;
    const deadline = now - EARLY_MAX_AGE_MS;
    for (const [name, list] of this.#early) {
      let stale = 0;
      while (stale < list.length && list[stale]!.at < deadline) this.#earlyBytes -= list[stale++]!.bytes;
      if (stale === 0) continue;
      list.splice(0, stale);
      this.stats.dropped.no_channel += stale - 1;
      this.#drop('no_channel', new Error(`${stale} frames waited ${EARLY_MAX_AGE_MS} ms for channel ${JSON.stringify(name)} to open`));
      if (list.length === 0) this.#early.delete(name);
    }
  }

  #expectMembers(named: unknown): void {
    if (!Array.isArray(named)) return;
    for (const node of named.slice(0, 10_000)) {
      if (typeof node === 'string' && node.length > 0 && node !== this.#name) this.#expected?.add(node);
    }
  }

  #isLocal(pid: Pid): boolean {
    return pid.node === this.#name;
  }

  /** A `hello` or `hb` (its checked `body`) of the incarnation `creation` of `name`. */
  #heartbeat(name: string, creation: string, inc: Incarnation, body: Record<string, unknown>, hello: boolean, now: number): void {
    const address = body['a'] as string;
    const session = body['s'] as number;
    const e = body['e'];
    if (inc.left) {
      // Sent before its leave, delivered after it (a direct answer overtaken by the broadcast leave).
      this.#drop('unknown_peer', new Error(`${hello ? 'hello' : 'hb'} of ${name}, which left`));
      return;
    }
    if (session < inc.session) {
      // A replay of an earlier session's frame: it must never cycle the node.
      this.#drop('replayed', new Error(`${hello ? 'hello' : 'hb'} of ${name} from session ${session}, now at ${inc.session}`));
      return;
    }
    inc.session = session;
    const epoch = Number.isSafeInteger(e) && (e as number) > 0 ? (e as number) : undefined;
    let peer = this.#peers.get(name);
    if (peer !== undefined && peer.creation !== creation) {
      if (now - peer.lastSeen < this.failureTimeout) {
        // Two incarnations under one name: the live one keeps it, the newcomer is refused.
        if (hello) this.#refuse(address, inc);
        return;
      }
      this.#peerDown(peer, 'restarted');
      peer = undefined;
    }
    if (peer !== undefined && peer.session !== session) {
      // It reconnected: whatever we held towards its previous connection is gone, as it is on its side.
      this.#peerDown(peer, 'disconnected');
      peer = undefined;
    }
    if (peer !== undefined && epoch !== undefined && peer.epoch !== undefined && epoch > peer.epoch) {
      // It dropped us (a timeout we did not share) and took us on again: it fired every link and
      // monitor between us, so we must too, or ours towards its processes would never fire.
      this.#peerDown(peer, 'disconnected');
      peer = undefined;
    }
    if (peer === undefined) {
      const role: ClusterRole = body['w'] === true ? 'observer' : 'member';
      peer = { name, creation, inc, address, session, lastSeen: now, epoch, role, features: featuresOf(body['f']) };
      this.#peers.set(name, peer);
      this.#membershipVersion++;
      this.#logger.info({ peer: name }, `nodeup ${name}`);
      this.#host.nodeUp(name);
      this.emit('nodeup', { node: name, creation });
      // Answer so the newcomer learns of us without waiting for our next heartbeat; `e` lets a peer
      // that kept us while we had dropped it see that it must drop us too.
      const adds = (this.#adds.get(name) ?? 0) + 1;
      this.#adds.set(name, adds);
      const own = this.#transport.address;
      // `m` names the members we know: a node still joining waits for each of them to answer too.
      const others = [...this.#peers.keys()].filter((other) => other !== name);
      if (own !== undefined) this.#sendTo(peer, 'hb', EnvelopeCodec.body(this.#membership({ a: own, s: this.#session, t: now, e: adds, m: others })));
      return;
    }
    if (epoch !== undefined && peer.epoch === undefined) peer.epoch = epoch;
    peer.address = address;
    peer.lastSeen = now;
  }

  #peerDown(peer: Peer, reason: 'timeout' | 'leave' | 'disconnected' | 'restarted'): void {
    if (this.#peers.get(peer.name) !== peer) return;
    this.#peers.delete(peer.name);
    this.#membershipVersion++;
    peer.inc.touched = Date.now();
    this.#logger.info({ peer: peer.name, reason }, `nodedown ${peer.name} (${reason})`);
    this.#host.nodeDown(peer.name);
    this.#spawns.nodeDown(peer.name);
    this.#introspection.nodeDown(peer.name);
    this.emit('nodedown', { node: peer.name, creation: peer.creation }, reason);
  }
}

/**
 * By kind: the fields naming the sender's own processes (the one a signal
 * is from, the watcher of a monitor, the process a `DOWN` is of, a spawn's
 * caller and its child). A node speaks only for its own processes, as in
 * Erlang's distribution; a frame that names another node's there is forged.
 */
const SPOKEN_FOR: Partial<Record<Kind, readonly string[]>> = {
  msg: ['f'],
  call: ['f', 'w'],
  nmsg: ['f'],
  link: ['f'],
  unlink: ['f'],
  exit: ['f'],
  mon: ['w'],
  demon: ['w'],
  down: ['p'],
  spawn: ['l', 'w'],
  spawned: ['p'],
};

/** Whether `peer` said it reads `feature`. */
function reads(peer: Peer, feature: Feature): boolean {
  return peer.features.has(feature);
}

/** An exit reason that cannot cross the wire still must: it goes as its description. */
function bodyWithReason(body: Record<string, unknown>, reason: ExitReason): string {
  try {
    return EnvelopeCodec.body({ ...body, e: reason });
  } catch {
    return EnvelopeCodec.body({ ...body, e: String(reason) });
  }
}
