/**
 * The observer's picture of the cluster, as pure data and pure functions: no
 * timer, socket or node in here, so every rule (rates from two snapshots,
 * latency quantiles from histogram deltas, supervision trees from a flat
 * supervisor list, node up/down history, the names table, each node's
 * drops and registry figures from what its snapshot reports, cluster-wide
 * supervision from the names table) is unit-tested
 * without I/O. `observer.ts` feeds it events and snapshots; the page and
 * `/metrics` read what it holds.
 */
import type { LatencySnapshot, NodeSnapshot, ProcessInfo, SupervisorInfo } from '@roster/core';
import type { ClusterIntrospection } from '@roster/cluster';
import type { GlobalsIntrospection } from '@roster/globals';
import { DistributedIndex, type DistributedSupervisorRow } from './dsup.js';

export type { DistributedChildRow, DistributedMemberRow, DistributedSupervisorRow } from './dsup.js';

/** How many points each time series keeps (at the default 1 s interval: two minutes). */
export const SERIES_POINTS = 120;
/** How many up/down transitions each node keeps. */
export const HISTORY_ENTRIES = 20;
/** How many entries the event log keeps. */
export const LOG_ENTRIES = 200;

// ---- latency histograms -----------------------------------------------------------------------

/** What was observed between two snapshots of one histogram; `cur` alone when the counts went back (a restart). */
export function histogramDelta(prev: LatencySnapshot | undefined, cur: LatencySnapshot): LatencySnapshot {
  if (prev === undefined || prev.count > cur.count || prev.counts.length !== cur.counts.length) return cur;
  const counts = cur.counts.map((count, index) => count - (prev.counts[index] ?? 0));
  if (counts.some((count) => count < 0)) return cur;
  return { bounds: cur.bounds, counts, count: cur.count - prev.count, sum: cur.sum - prev.sum };
}

/** The sum of histograms of the same bounds (the cluster's figure from its nodes'); undefined for none. */
export function mergeHistograms(histograms: readonly LatencySnapshot[]): LatencySnapshot | undefined {
  const [first, ...rest] = histograms;
  if (first === undefined) return undefined;
  const counts = [...first.counts];
  let count = first.count;
  let sum = first.sum;
  for (const histogram of rest) {
    if (histogram.counts.length !== counts.length) continue;
    histogram.counts.forEach((value, index) => (counts[index] = (counts[index] ?? 0) + value));
    count += histogram.count;
    sum += histogram.sum;
  }
  return { bounds: first.bounds, counts, count, sum };
}

/** Mean in ms; undefined when nothing was observed. */
export function meanOf(histogram: LatencySnapshot): number | undefined {
  return histogram.count > 0 ? histogram.sum / histogram.count : undefined;
}

/**
 * The `q` quantile (0 < q <= 1) in ms as the upper bound of the bucket it
 * falls in (a histogram knows no better); the last finite bound when it falls
 * in the +Inf bucket; undefined when nothing was observed.
 */
export function quantileOf(histogram: LatencySnapshot, q: number): number | undefined {
  if (histogram.count <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * histogram.count));
  let seen = 0;
  for (let index = 0; index < histogram.counts.length; index++) {
    seen += histogram.counts[index] ?? 0;
    if (seen >= rank) return histogram.bounds[index] ?? histogram.bounds[histogram.bounds.length - 1];
  }
  return histogram.bounds[histogram.bounds.length - 1];
}

/** Per second between two readings of a counter `ms` apart; the new value's own rate is unknowable after a restart, so 0. */
export function ratePerSecond(prev: number | undefined, cur: number, ms: number): number {
  if (prev === undefined || !(ms > 0) || cur < prev) return 0;
  return ((cur - prev) * 1000) / ms;
}

// ---- what a snapshot's cluster layer and registry report ---------------------------------------

/**
 * The cluster-layer figures a snapshot carries (`distribution`: the node's
 * `Cluster.introspect()`, checked on arrival when it came from a peer);
 * undefined when it carries none (a node that is not clustered, an older one).
 */
export function clusterReport(snapshot: NodeSnapshot): ClusterIntrospection | undefined {
  const data = snapshot.distribution as Partial<ClusterIntrospection> | undefined;
  return data !== undefined && typeof data.sent === 'number' && typeof data.dropped === 'object' && data.dropped !== null ? (data as ClusterIntrospection) : undefined;
}

/**
 * The globals registry installed under `key`, as a snapshot reports it
 * (`registries[key]`, a `GlobalsIntrospection`: checked on arrival when it
 * came from a peer); undefined when there is none or it is not a globals registry.
 */
export function globalsReport(snapshot: NodeSnapshot, key: string): GlobalsIntrospection | undefined {
  const data = snapshot.registries?.[key];
  return data !== undefined && data['kind'] === 'globals' ? (data as GlobalsIntrospection) : undefined;
}

// ---- supervision trees ------------------------------------------------------------------------

/** One supervisor with its children, nested: a child that is itself a known supervisor carries its subtree. */
export interface SupervisionTree {
  readonly pid: string;
  readonly name: string | undefined;
  readonly strategy: string;
  readonly restarts: number;
  readonly recentRestarts: readonly { readonly childId: string; readonly at: number; readonly reason: string }[];
  readonly children: readonly SupervisionChild[];
}

export interface SupervisionChild {
  readonly id: string;
  readonly pid: string | undefined;
  readonly type: 'worker' | 'supervisor';
  readonly restart: string;
  /** When the child is a supervisor this node reported: its tree. */
  readonly tree?: SupervisionTree;
}

/**
 * Nests a node's flat supervisor list: roots are the supervisors with no
 * parent among the list (or none at all). A cycle (which a sane node never
 * reports) is cut where it closes, so this always terminates.
 */
export function supervisionTrees(supervisors: readonly SupervisorInfo[]): SupervisionTree[] {
  const byPid = new Map(supervisors.map((info) => [info.pid.key, info] as const));
  const build = (info: SupervisorInfo, path: ReadonlySet<string>): SupervisionTree => {
    const inPath = new Set(path).add(info.pid.key);
    return {
      pid: info.pid.key,
      name: info.name,
      strategy: info.strategy,
      restarts: info.restarts,
      recentRestarts: info.recentRestarts.map(({ childId, at, reason }) => ({ childId, at, reason })),
      children: info.children.map((child) => {
        const key = child.pid?.key;
        const sub = key !== undefined && !inPath.has(key) ? byPid.get(key) : undefined;
        return {
          id: child.id,
          pid: key,
          type: child.type,
          restart: child.restart,
          ...(sub !== undefined ? { tree: build(sub, inPath) } : {}),
        };
      }),
    };
  };
  const nested = new Set<string>();
  for (const info of supervisors) for (const child of info.children) if (child.pid !== undefined && byPid.has(child.pid.key)) nested.add(child.pid.key);
  return supervisors
    .filter((info) => !nested.has(info.pid.key) && (info.parent === undefined || !byPid.has(info.parent.key)))
    .map((info) => build(info, new Set()));
}

// ---- per-node figures -------------------------------------------------------------------------

/** A node's globals registry, as the page shows it. */
export interface RegistryFigures {
  /** The node's own completed `registerName` and `unregisterName` calls. */
  readonly registrations: number;
  readonly unregistrations: number;
  /** Global names the node resolves. */
  readonly names: number;
  readonly conflicts: number;
  /** Registry messages the node dropped, in all. */
  readonly dropped: number;
  /** Mean and p99 (bucket bound) of the node's `registerName` calls completed in the last interval, ms. */
  readonly registerMean: number | undefined;
  readonly registerP99: number | undefined;
}

/** A node's cluster layer, as the page shows it. */
export interface FrameFigures {
  readonly sent: number;
  readonly received: number;
  /** Frames dropped, every reason together. */
  readonly dropped: number;
}

export interface MailboxRow {
  readonly pid: string;
  readonly name: string | undefined;
  readonly kind: ProcessInfo['kind'];
  readonly mailboxLength: number;
}

/** What the page shows of one node, derived from its last two snapshots. */
export interface NodeFigures {
  readonly at: number;
  readonly processCount: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** Messages delivered into this node's mailboxes per second, over the last interval. */
  readonly messageRate: number;
  readonly mailboxMax: number;
  readonly longestMailboxes: readonly MailboxRow[];
  readonly memory: NodeSnapshot['memory'];
  readonly eventLoopDelay: NodeSnapshot['eventLoopDelay'];
  readonly calls: number;
  readonly callsFailed: number;
  /** Mean and p99 (bucket bound) of the calls completed in the last interval, ms. */
  readonly callMean: number | undefined;
  readonly callP99: number | undefined;
  readonly supervisors: readonly SupervisionTree[];
  readonly registered: number;
  /** Its cluster layer's frames; undefined when its snapshot reports none. */
  readonly frames: FrameFigures | undefined;
  /** Its globals registry (the observer's `registry` key); undefined when it has none. */
  readonly registry: RegistryFigures | undefined;
}

/** A node's figures from its last two snapshots; `registryKey` is where its globals registry is installed. */
export function figuresOf(prev: NodeSnapshot | undefined, cur: NodeSnapshot, registryKey = 'globals'): NodeFigures {
  const calls = histogramDelta(prev?.stats.callLatency, cur.stats.callLatency);
  const interval = prev === undefined ? 0 : cur.at - prev.at;
  const cluster = clusterReport(cur);
  const globals = globalsReport(cur, registryKey);
  const prevGlobals = prev === undefined ? undefined : globalsReport(prev, registryKey);
  const registers = globals === undefined ? undefined : histogramDelta(prevGlobals?.registerLatency, globals.registerLatency);
  return {
    at: cur.at,
    processCount: cur.processCount,
    messagesIn: cur.stats.messagesIn,
    messagesOut: cur.stats.messagesOut,
    messageRate: ratePerSecond(prev?.stats.messagesIn, cur.stats.messagesIn, interval),
    mailboxMax: cur.mailboxMax,
    longestMailboxes: cur.longestMailboxes.map((info) => ({ pid: info.pid.key, name: info.name, kind: info.kind, mailboxLength: info.mailboxLength })),
    memory: cur.memory,
    eventLoopDelay: cur.eventLoopDelay,
    calls: cur.stats.calls,
    callsFailed: cur.stats.callsFailed,
    callMean: prev === undefined ? undefined : meanOf(calls),
    callP99: prev === undefined ? undefined : quantileOf(calls, 0.99),
    supervisors: supervisionTrees(cur.supervisors),
    registered: cur.registered.length,
    frames: cluster === undefined ? undefined : { sent: cluster.sent, received: cluster.received, dropped: total(cluster.dropped) },
    registry:
      globals === undefined
        ? undefined
        : {
            registrations: globals.registrations,
            unregistrations: globals.unregistrations,
            names: globals.names,
            conflicts: globals.conflicts,
            dropped: globals.dropped,
            registerMean: prevGlobals === undefined || registers === undefined ? undefined : meanOf(registers),
            registerP99: prevGlobals === undefined || registers === undefined ? undefined : quantileOf(registers, 0.99),
          },
  };
}

// ---- the view ---------------------------------------------------------------------------------

export type NodeStatus = 'up' | 'down';

export interface HistoryEntry {
  readonly at: number;
  readonly status: NodeStatus;
  /** Why it went down: `timeout`, `leave`, `disconnected`, `restarted`. */
  readonly reason?: string;
}

export interface ViewNode {
  readonly name: string;
  readonly role: string;
  readonly creation: string;
  readonly status: NodeStatus;
  /** The node the observer runs on. */
  readonly self: boolean;
  /** Oldest first, the last {@link HISTORY_ENTRIES}. */
  readonly history: readonly HistoryEntry[];
  /** Times the observer saw it come up (its first sighting included) and go down. */
  readonly ups: number;
  readonly downs: number;
  readonly figures: NodeFigures | undefined;
  /** Why the last snapshot request failed (its error code), cleared by the next answer. */
  readonly error: string | undefined;
}

export interface NameRow {
  /** The canonical encoding: the row's identity. */
  readonly key: string;
  /** For display: the name itself when a string, else its canonical encoding. */
  readonly name: string;
  readonly owner: string;
  readonly pid: string;
  readonly epoch: string | undefined;
  readonly since: number;
  /** Conflicts settled on this name since the observer started. */
  readonly conflicts: number;
}

export type LogKind = 'registered' | 'unregistered' | 'conflict' | 'resync' | 'nodeup' | 'nodedown';

export interface LogEntry {
  readonly seq: number;
  readonly at: number;
  readonly kind: LogKind;
  readonly text: string;
  readonly name?: string;
  readonly node?: string;
}

/** Time series for the page's charts: `t` in seconds since the epoch, one value per point in each. */
export interface Series {
  readonly t: number[];
  /** Messages delivered per second, the cluster's sum. */
  readonly messages: number[];
  /** Call round trips in the interval, ms: mean and p99 over all nodes. */
  readonly callMean: (number | null)[];
  readonly callP99: (number | null)[];
  /** registerName round trips completed in the interval, ms: mean and p99 over every node's. */
  readonly registerMean: (number | null)[];
  readonly registerP99: (number | null)[];
  /** Frames and registry messages dropped per second, the live nodes' sum. */
  readonly drops: number[];
}

export interface SeriesPoint {
  readonly t: number;
  readonly messages: number;
  readonly callMean: number | null;
  readonly callP99: number | null;
  readonly registerMean: number | null;
  readonly registerP99: number | null;
  readonly drops: number;
}

/** What one node dropped, as its last snapshot reports: cluster frames and registry messages, by reason. */
export interface NodeDrops {
  readonly frames: Readonly<Record<string, number>>;
  readonly registry: Readonly<Record<string, number>>;
}

/** Every node's drops, by node name (nodes whose snapshot reports none are absent; a down node keeps its last). */
export type Drops = Readonly<Record<string, NodeDrops>>;

/** A node's drops from its snapshot; undefined when it reports neither a cluster layer nor a globals registry. */
export function dropsOf(snapshot: NodeSnapshot, registryKey: string): NodeDrops | undefined {
  const cluster = clusterReport(snapshot);
  const globals = globalsReport(snapshot, registryKey);
  if (cluster === undefined && globals === undefined) return undefined;
  return { frames: { ...(cluster?.dropped ?? {}) }, registry: { ...(globals?.drops ?? {}) } };
}

/** Everything a freshly connected page needs. */
export interface ViewState {
  readonly cluster: string;
  readonly observer: string;
  readonly broker: string | undefined;
  readonly interval: number;
  readonly nodes: readonly ViewNode[];
  readonly names: readonly NameRow[];
  readonly log: readonly LogEntry[];
  readonly series: Series;
  readonly drops: Drops;
  readonly conflicts: number;
  /** Cluster-wide supervision, read off the names table: the distributed supervisors (and singletons) by id. */
  readonly dsups: readonly DistributedSupervisorRow[];
}

/** What changed since the last patch; the page merges it into its `ViewState`. */
export interface ViewPatch {
  readonly nodes?: readonly ViewNode[];
  readonly names?: { readonly set: readonly NameRow[]; readonly delete: readonly string[] };
  readonly log?: readonly LogEntry[];
  readonly point?: SeriesPoint;
  readonly drops?: Drops;
  readonly conflicts?: number;
  /** Distributed supervisors that changed (whole rows) and ids no member holds any more. */
  readonly dsups?: { readonly set: readonly DistributedSupervisorRow[]; readonly delete: readonly string[] };
}

function total(record: Readonly<Record<string, number>>): number {
  let sum = 0;
  for (const value of Object.values(record)) sum += value;
  return sum;
}

/**
 * The observer's model: fed events and snapshots, it keeps the view and
 * collects what changed into a patch (`takePatch`), so each page gets the
 * full view once and then only differences.
 */
export class View {
  readonly #nodes = new Map<string, ViewNode>();
  readonly #snapshots = new Map<string, NodeSnapshot>();
  readonly #names = new Map<string, NameRow>();
  readonly #conflictsByName = new Map<string, number>();
  readonly #dsups = new DistributedIndex((key) => this.#names.get(key));
  readonly #log: LogEntry[] = [];
  readonly #series: Series = { t: [], messages: [], callMean: [], callP99: [], registerMean: [], registerP99: [], drops: [] };
  #drops: Drops = {};
  #conflicts = 0;
  #seq = 0;
  #lastTickAt: number | undefined;
  /** By node: its drops in all at the last tick, and of which incarnation. */
  readonly #lastDropTotals = new Map<string, { creation: string; total: number }>();
  /** What the drops panel last showed, to tell when it changed. */
  #dropsSignature = '';
  // pending patch
  readonly #changedNodes = new Set<string>();
  readonly #setNames = new Set<string>();
  readonly #deletedNames = new Set<string>();
  #newLog: LogEntry[] = [];
  #point: SeriesPoint | undefined;
  #dropsChanged = false;
  #conflictsChanged = false;

  constructor(
    readonly cluster: string,
    readonly observer: string,
    readonly broker: string | undefined,
    readonly interval: number,
    /** The key of the nodes' globals registry, in their snapshots' `registries`. */
    readonly registryKey = 'globals',
  ) {}

  /** Whether anything changed since the last `takePatch`. */
  get dirty(): boolean {
    return (
      this.#changedNodes.size > 0 ||
      this.#setNames.size > 0 ||
      this.#deletedNames.size > 0 ||
      this.#newLog.length > 0 ||
      this.#point !== undefined ||
      this.#dropsChanged ||
      this.#conflictsChanged ||
      this.#dsups.dirty
    );
  }

  node(name: string): ViewNode | undefined {
    return this.#nodes.get(name);
  }

  nodes(): ViewNode[] {
    return [...this.#nodes.values()];
  }

  /** The last snapshot a node answered (kept after it went down). */
  snapshotOf(name: string): NodeSnapshot | undefined {
    return this.#snapshots.get(name);
  }

  names(): NameRow[] {
    return [...this.#names.values()];
  }

  /** Cluster-wide supervision as the names table shows it, by supervisor id. */
  distributedSupervisors(): DistributedSupervisorRow[] {
    return this.#dsups.all();
  }

  get conflicts(): number {
    return this.#conflicts;
  }

  /** A node is live: first sight, or back after a `nodedown` (a restart comes with a new `creation`). */
  nodeUp(peer: { readonly node: string; readonly creation: string; readonly role?: string }, at: number, self = false): void {
    const known = this.#nodes.get(peer.node);
    if (known !== undefined && known.status === 'up' && known.creation === peer.creation) {
      if (peer.role !== undefined && peer.role !== known.role) this.#putNode({ ...known, role: peer.role });
      return;
    }
    const history = [...(known?.history ?? []), { at, status: 'up' as const }].slice(-HISTORY_ENTRIES);
    this.#putNode({
      name: peer.node,
      role: peer.role ?? known?.role ?? 'member',
      creation: peer.creation,
      status: 'up',
      self,
      history,
      ups: (known?.ups ?? 0) + 1,
      downs: known?.downs ?? 0,
      figures: known?.creation === peer.creation ? known.figures : undefined,
      error: undefined,
    });
    if (known?.creation !== peer.creation) this.#snapshots.delete(peer.node);
    if (!self) this.#addLog({ at, kind: 'nodeup', node: peer.node, text: `${peer.node} up${peer.role === 'observer' ? ' (observer)' : ''}` });
  }

  /** A node was declared down; the figures it last reported stay on show. Ignored for an unknown or already-down node. */
  nodeDown(peer: { readonly node: string; readonly creation: string }, reason: string, at: number): void {
    const known = this.#nodes.get(peer.node);
    if (known === undefined || known.status === 'down' || known.creation !== peer.creation) return;
    const history = [...known.history, { at, status: 'down' as const, reason }].slice(-HISTORY_ENTRIES);
    this.#putNode({ ...known, status: 'down', history, downs: known.downs + 1 });
    this.#addLog({ at, kind: 'nodedown', node: peer.node, text: `${peer.node} down (${reason})` });
  }

  /** A node answered a snapshot request. Dropped when the node is unknown, down, or of another incarnation. */
  snapshot(node: string, snapshot: NodeSnapshot): void {
    const known = this.#nodes.get(node);
    if (known === undefined || known.status !== 'up') return;
    const prev = this.#snapshots.get(node);
    this.#snapshots.set(node, snapshot);
    this.#putNode({ ...known, figures: figuresOf(prev, snapshot, this.registryKey), error: undefined });
  }

  /** A snapshot request failed (`code`: unknown_node, noconnection, timeout, …). */
  snapshotFailed(node: string, code: string): void {
    const known = this.#nodes.get(node);
    if (known === undefined || known.error === code) return;
    this.#putNode({ ...known, error: code });
  }

  nameRegistered(row: Omit<NameRow, 'conflicts'>): void {
    const full: NameRow = { ...row, conflicts: this.#conflictsByName.get(row.key) ?? 0 };
    this.#names.set(row.key, full);
    this.#deletedNames.delete(row.key);
    this.#setNames.add(row.key);
    this.#dsups.set(full);
    this.#addLog({ at: row.since, kind: 'registered', name: row.name, node: row.owner, text: `${row.name} -> ${row.pid}` });
  }

  /** Removes the row when `pid` still holds it (an older holder's release never removes a newer holder's row). */
  nameUnregistered(key: string, display: string, pid: string, reason: string, at: number): void {
    const row = this.#names.get(key);
    if (row !== undefined && row.pid === pid) {
      this.#names.delete(key);
      this.#setNames.delete(key);
      this.#deletedNames.add(key);
      this.#dsups.delete(key);
    }
    this.#addLog({ at, kind: 'unregistered', name: display, text: `${display} released by ${pid} (${reason})` });
  }

  conflict(key: string, display: string, text: string, at: number): void {
    this.#conflicts++;
    this.#conflictsChanged = true;
    this.#conflictsByName.set(key, (this.#conflictsByName.get(key) ?? 0) + 1);
    const row = this.#names.get(key);
    if (row !== undefined) {
      this.#names.set(key, { ...row, conflicts: row.conflicts + 1 });
      this.#setNames.add(key);
    }
    this.#addLog({ at, kind: 'conflict', name: display, text });
  }

  resync(node: string, at: number): void {
    this.#addLog({ at, kind: 'resync', node, text: `frames from ${node} were lost: the registry resyncs with it` });
  }

  /**
   * One interval's end: a point on every series from the nodes' latest
   * snapshots (messages, calls, registerName round trips, drops: each the
   * live nodes' together), and the drops panel when a node's drops changed.
   */
  tick(at: number): void {
    let messages = 0;
    for (const node of this.#nodes.values()) if (node.status === 'up' && node.figures !== undefined) messages += node.figures.messageRate;
    const calls = this.#delta(this.#previousCalls, (snapshot) => snapshot.stats.callLatency);
    const registers = this.#delta(this.#previousRegisters, (snapshot) => globalsReport(snapshot, this.registryKey)?.registerLatency);
    const dropRate = this.#dropRate(at);
    this.#lastTickAt = at;
    const point: SeriesPoint = {
      t: at / 1000,
      messages,
      callMean: calls === undefined ? null : (meanOf(calls) ?? null),
      callP99: calls === undefined ? null : (quantileOf(calls, 0.99) ?? null),
      registerMean: registers === undefined ? null : (meanOf(registers) ?? null),
      registerP99: registers === undefined ? null : (quantileOf(registers, 0.99) ?? null),
      drops: dropRate,
    };
    pushPoint(this.#series, point);
    this.#point = point;
  }

  /**
   * What one histogram of every live node's snapshot (`pick`) gained since
   * the previous tick, merged; undefined when no node has two readings yet.
   */
  #delta(previous: Map<string, LatencySnapshot>, pick: (snapshot: NodeSnapshot) => LatencySnapshot | undefined): LatencySnapshot | undefined {
    const deltas: LatencySnapshot[] = [];
    for (const [name, node] of this.#nodes) {
      if (node.status !== 'up') continue;
      const snapshot = this.#snapshots.get(name);
      const cur = snapshot === undefined ? undefined : pick(snapshot);
      if (cur === undefined) {
        previous.delete(name);
        continue;
      }
      const prev = previous.get(name);
      if (prev !== undefined && prev !== cur) deltas.push(histogramDelta(prev, cur));
      previous.set(name, cur);
    }
    return mergeHistograms(deltas);
  }

  readonly #previousCalls = new Map<string, LatencySnapshot>();
  readonly #previousRegisters = new Map<string, LatencySnapshot>();

  /** Drops per second since the last tick, the live nodes' sum (a node's counts going back, a restart, adds nothing); refreshes the drops panel. */
  #dropRate(at: number): number {
    const drops: Record<string, NodeDrops> = {};
    let gained = 0;
    for (const [name, node] of this.#nodes) {
      const snapshot = this.#snapshots.get(name);
      const nodeDrops = snapshot === undefined ? undefined : dropsOf(snapshot, this.registryKey);
      if (nodeDrops === undefined) continue;
      drops[name] = nodeDrops;
      if (node.status !== 'up') continue;
      const sum = total(nodeDrops.frames) + total(nodeDrops.registry);
      const last = this.#lastDropTotals.get(name);
      if (last !== undefined && last.creation === node.creation && sum > last.total) gained += sum - last.total;
      this.#lastDropTotals.set(name, { creation: node.creation, total: sum });
    }
    const signature = JSON.stringify(drops);
    if (signature !== this.#dropsSignature) {
      this.#dropsSignature = signature;
      this.#drops = drops;
      this.#dropsChanged = true;
    }
    const interval = this.#lastTickAt === undefined ? 0 : at - this.#lastTickAt;
    return interval > 0 ? (gained * 1000) / interval : 0;
  }

  state(): ViewState {
    return {
      cluster: this.cluster,
      observer: this.observer,
      broker: this.broker,
      interval: this.interval,
      nodes: this.nodes(),
      names: this.names(),
      log: [...this.#log],
      series: this.#series,
      drops: this.#drops,
      conflicts: this.#conflicts,
      dsups: this.#dsups.all(),
    };
  }

  /** What changed since the last call; empty object when nothing did. */
  takePatch(): ViewPatch {
    const patch: {
      nodes?: ViewNode[];
      names?: { set: NameRow[]; delete: string[] };
      log?: LogEntry[];
      point?: SeriesPoint;
      drops?: Drops;
      conflicts?: number;
      dsups?: { set: DistributedSupervisorRow[]; delete: string[] };
    } = {};
    if (this.#changedNodes.size > 0) patch.nodes = [...this.#changedNodes].map((name) => this.#nodes.get(name)!).filter(Boolean);
    if (this.#setNames.size > 0 || this.#deletedNames.size > 0) {
      patch.names = { set: [...this.#setNames].map((key) => this.#names.get(key)!).filter(Boolean), delete: [...this.#deletedNames] };
    }
    if (this.#newLog.length > 0) patch.log = this.#newLog;
    if (this.#point !== undefined) patch.point = this.#point;
    if (this.#dropsChanged) patch.drops = this.#drops;
    if (this.#conflictsChanged) patch.conflicts = this.#conflicts;
    const dsups = this.#dsups.take();
    if (dsups !== undefined) patch.dsups = dsups;
    this.#changedNodes.clear();
    this.#setNames.clear();
    this.#deletedNames.clear();
    this.#newLog = [];
    this.#point = undefined;
    this.#dropsChanged = false;
    this.#conflictsChanged = false;
    return patch;
  }

  #putNode(node: ViewNode): void {
    this.#nodes.set(node.name, node);
    this.#changedNodes.add(node.name);
  }

  #addLog(entry: Omit<LogEntry, 'seq'>): void {
    const full: LogEntry = { ...entry, seq: ++this.#seq };
    this.#log.push(full);
    if (this.#log.length > LOG_ENTRIES) this.#log.splice(0, this.#log.length - LOG_ENTRIES);
    this.#newLog.push(full);
  }
}

function pushPoint(series: Series, point: SeriesPoint): void {
  series.t.push(point.t);
  series.messages.push(point.messages);
  series.callMean.push(point.callMean);
  series.callP99.push(point.callP99);
  series.registerMean.push(point.registerMean);
  series.registerP99.push(point.registerP99);
  series.drops.push(point.drops);
  if (series.t.length > SERIES_POINTS) {
    for (const values of Object.values(series) as unknown[][]) values.splice(0, values.length - SERIES_POINTS);
  }
}
