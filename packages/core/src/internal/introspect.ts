/**
 * The machinery behind `node.stats`, `node.processInfo` and `node.snapshot`
 * (the public shapes are in ../introspection.ts): the runtime's counters, the
 * tags a GenServer or supervisor puts on its process, the restart log a
 * supervisor keeps, the process-wide event-loop sampler, the one pass over
 * the process table a snapshot is, and the reading of what the installed
 * registries and the cluster layer report of themselves (`introspect`).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Distribution } from '../distribution.js';
import { formatReason, type ExitReason } from '../exit-reason.js';
import type {
  EventLoopDelay,
  NodeSnapshot,
  NodeStats,
  ProcessInfo,
  ProcessKind,
  RestartRecord,
  SnapshotOptions,
  SupervisorChildInfo,
  SupervisorDetails,
  SupervisorInfo,
} from '../introspection.js';
import { LatencyHistogram } from '../latency-histogram.js';
import type { Pid } from '../pid.js';
import type { Process } from '../process.js';
import type { NameRegistry } from '../registry.js';
import { Proc } from './process.js';

/** The runtime's plain counters (one object, fields bumped on hot paths). */
export class RuntimeCounters {
  spawned = 0;
  exited = 0;
  messagesIn = 0;
  messagesOut = 0;
  calls = 0;
  callsFailed = 0;
  readonly callLatency = new LatencyHistogram();

  read(): NodeStats {
    return {
      spawned: this.spawned,
      exited: this.exited,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      calls: this.calls,
      callsFailed: this.callsFailed,
      callLatency: this.callLatency.snapshot(),
    };
  }
}

/**
 * Marks `self` (a process in its `init`) as what it is, with a reader of its
 * supervisor state when it is a supervisor. The reader runs during a
 * snapshot, synchronously: it must only read.
 */
export function tagProcess(self: Process, kind: ProcessKind, describe?: () => SupervisorDetails): void {
  if (!(self instanceof Proc)) return;
  self.kind = kind;
  self.describe = describe;
}

/** How many restarts `RestartLog.recent` keeps. */
export const RECENT_RESTARTS = 20;

/** A supervisor's restarts: how many since it started, and the last {@link RECENT_RESTARTS}. */
export class RestartLog {
  count = 0;
  readonly #recent: RestartRecord[] = [];

  record(childId: string, reason: ExitReason | string): void {
    this.count++;
    this.#recent.push({ childId, at: Date.now(), reason: typeof reason === 'string' ? reason : formatReason(reason) });
    if (this.#recent.length > RECENT_RESTARTS) this.#recent.shift();
  }

  recent(): RestartRecord[] {
    return this.#recent.slice();
  }
}

/** What a snapshot needs of the runtime (the Runtime class implements it). */
export interface SnapshotSource {
  readonly name: string;
  readonly counters: RuntimeCounters;
  /** Every endpoint of the process table (processes and call ports), in creation order. */
  endpoints(): Iterable<unknown>;
  localProc(pid: Pid): Proc | undefined;
  /** A string name `pid` holds in the node-local registry, if any. */
  localNameOf(pid: Pid): string | undefined;
  registeredNames(): string[];
  /** The installed registries, by key, in install order: their `introspect()` goes into `registries`. */
  readonly registries: ReadonlyMap<string, NameRegistry>;
  /** The cluster layer, when clustered: its `introspect()` goes into `distribution`. */
  readonly distribution: Distribution | undefined;
  /** Where a failing `introspect` is reported (at a bounded rate). */
  readonly logger: Logger;
}

// ---- what registries and the cluster layer report -----------------------------------

/** How often a failing `introspect` is logged, per node and reporter, ms. */
const INTROSPECT_LOG_MS = 10_000;

/** By snapshot source (a node's runtime), by reporter: when its failure was last logged, and how many since. */
const introspectFailures = new WeakMap<SnapshotSource, Map<string, { at: number; suppressed: number }>>();

/** Logs a failed `introspect` at most once per {@link INTROSPECT_LOG_MS} per node and reporter, counting the rest. */
function introspectFailed(source: SnapshotSource, reporter: string, error: unknown): void {
  let failures = introspectFailures.get(source);
  if (failures === undefined) introspectFailures.set(source, (failures = new Map()));
  const now = Date.now();
  const last = failures.get(reporter);
  if (last !== undefined && now - last.at < INTROSPECT_LOG_MS) {
    last.suppressed++;
    return;
  }
  failures.set(reporter, { at: now, suppressed: 0 });
  const suppressed = last?.suppressed ?? 0;
  source.logger.warn({ err: error, reporter, ...(suppressed > 0 ? { suppressed } : {}) }, 'introspect failed: left out of the snapshot');
}

/**
 * Calls one reporter's `introspect`: its answer when it is an object, else
 * undefined (a throw or a non-object is logged, at a bounded rate, and left
 * out: a reporter never breaks a snapshot).
 */
function report(source: SnapshotSource, reporter: string, read: () => unknown): Readonly<Record<string, unknown>> | undefined {
  let data: unknown;
  try {
    data = read();
  } catch (error) {
    introspectFailed(source, reporter, error);
    return undefined;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    introspectFailed(source, reporter, new TypeError(`${reporter}: introspect() must return an object, got ${data === null ? 'null' : Array.isArray(data) ? 'an array' : typeof data}`));
    return undefined;
  }
  return data as Readonly<Record<string, unknown>>;
}

/** What the installed registries and the cluster layer report, for a snapshot. */
function reports(source: SnapshotSource): Pick<NodeSnapshot, 'distribution' | 'registries'> {
  const registries: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const [key, registry] of source.registries) {
    if (typeof registry.introspect !== 'function') continue;
    const data = report(source, `registry ${JSON.stringify(key)}`, () => registry.introspect!());
    if (data !== undefined) registries[key] = data;
  }
  const distribution = source.distribution;
  const cluster = typeof distribution?.introspect === 'function' ? report(source, 'distribution', () => distribution.introspect!()) : undefined;
  return cluster === undefined ? { registries } : { distribution: cluster, registries };
}

export function processInfo(source: SnapshotSource, proc: Proc): ProcessInfo {
  const name = source.localNameOf(proc.pid);
  const info: ProcessInfo = {
    pid: proc.pid,
    kind: proc.kind,
    mailboxLength: proc.mailbox.size,
    messagesIn: proc.messagesIn,
    trapExit: proc.trapping,
    links: proc.linkCount,
    monitors: proc.monitorCount,
    monitoredBy: proc.watcherCount,
    startedAt: proc.startedAt,
  };
  return name === undefined ? info : { ...info, name };
}

function supervisorInfo(source: SnapshotSource, proc: Proc, details: SupervisorDetails): SupervisorInfo {
  const name = source.localNameOf(proc.pid);
  const parentPid = proc.parent;
  const parent = parentPid === undefined ? undefined : source.localProc(parentPid);
  return {
    pid: proc.pid,
    ...(name === undefined ? {} : { name }),
    ...(parent?.describe !== undefined ? { parent: parent.pid } : {}),
    strategy: details.strategy,
    restarts: details.restarts,
    recentRestarts: details.recentRestarts,
    children: details.children.map((child): SupervisorChildInfo => ({ ...child })),
  };
}

const DEFAULT_LONGEST = 10;
const MAX_LONGEST = 1000;
const SNAPSHOT_OPTION_KEYS: ReadonlySet<string> = new Set(['longestMailboxes', 'processes']);

/** Checks `node.snapshot()`'s options once: unknown keys and bad values are `TypeError`s naming them. */
export function resolveSnapshotOptions(options: unknown, where: string): Required<SnapshotOptions> {
  if (options === undefined) return { longestMailboxes: DEFAULT_LONGEST, processes: false };
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const unknown = Object.keys(options).filter((key) => !SNAPSHOT_OPTION_KEYS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: ${[...SNAPSHOT_OPTION_KEYS].join(', ')})`);
  }
  const { longestMailboxes = DEFAULT_LONGEST, processes = false } = options as SnapshotOptions;
  if (!Number.isInteger(longestMailboxes) || longestMailboxes < 0 || longestMailboxes > MAX_LONGEST) {
    throw new TypeError(`${where}: option longestMailboxes must be an integer from 0 to ${MAX_LONGEST}, got ${String(longestMailboxes)}`);
  }
  if (typeof processes !== 'boolean') throw new TypeError(`${where}: option processes must be a boolean, got ${typeof processes}`);
  return { longestMailboxes, processes };
}

/**
 * One pass over the process table: the count, the longest mailboxes (a
 * bounded selection, so a node of 100k processes builds only `longest`
 * infos), the supervisors and, when asked, every process.
 */
export function takeSnapshot(source: SnapshotSource, options: Required<SnapshotOptions>): NodeSnapshot {
  const at = Date.now();
  const longest = options.longestMailboxes;
  /** The `longest` busiest so far, longest first; equal lengths keep table (creation) order. */
  const top: Proc[] = [];
  const supervisors: Proc[] = [];
  const all: ProcessInfo[] | undefined = options.processes ? [] : undefined;
  let processCount = 0;
  let mailboxMax = 0;
  for (const endpoint of source.endpoints()) {
    if (!(endpoint instanceof Proc) || !endpoint.alive) continue;
    processCount++;
    const size = endpoint.mailbox.size;
    if (size > mailboxMax) mailboxMax = size;
    if (longest > 0 && (top.length < longest || size > top[top.length - 1]!.mailbox.size)) {
      let index = top.length;
      while (index > 0 && top[index - 1]!.mailbox.size < size) index--;
      top.splice(index, 0, endpoint);
      if (top.length > longest) top.pop();
    }
    if (endpoint.describe !== undefined) supervisors.push(endpoint);
    all?.push(processInfo(source, endpoint));
  }
  const supervisorInfos: SupervisorInfo[] = [];
  for (const proc of supervisors) {
    let details: SupervisorDetails;
    try {
      details = proc.describe!();
    } catch {
      continue; // a reader must never break a snapshot
    }
    supervisorInfos.push(supervisorInfo(source, proc, details));
  }
  const memory = process.memoryUsage();
  const snapshot: NodeSnapshot = {
    node: source.name,
    at,
    processCount,
    stats: source.counters.read(),
    mailboxMax,
    longestMailboxes: top.map((proc) => processInfo(source, proc)),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
    eventLoopDelay: loopDelay(),
    supervisors: orderParentsFirst(supervisorInfos),
    registered: source.registeredNames(),
    ...reports(source),
  };
  return all === undefined ? snapshot : { ...snapshot, processes: all };
}

/** Each supervisor after the one it runs under, otherwise in table (creation) order. */
function orderParentsFirst(infos: SupervisorInfo[]): SupervisorInfo[] {
  const byKey = new Map(infos.map((info) => [info.pid.key, info]));
  const out: SupervisorInfo[] = [];
  const placed = new Set<string>();
  const place = (info: SupervisorInfo, depth: number): void => {
    if (placed.has(info.pid.key) || depth > infos.length) return;
    const parent = info.parent === undefined ? undefined : byKey.get(info.parent.key);
    if (parent !== undefined) place(parent, depth + 1);
    placed.add(info.pid.key);
    out.push(info);
  };
  for (const info of infos) place(info, 0);
  return out;
}

// ---- the event-loop sampler (one per OS process) ----------------------------------

/** Window over which `eventLoopDelay` is reported, ms. */
const LOOP_WINDOW_MS = 1000;
/** The sampler's timer period, ms (Node's default is 10). */
const LOOP_RESOLUTION_MS = 20;
const ZERO_DELAY: EventLoopDelay = Object.freeze({ mean: 0, p50: 0, p99: 0, max: 0 });

let sampler: IntervalHistogram | undefined;
let samplerUsers = 0;
let windowStart = 0;
let lastWindow: EventLoopDelay | undefined;

/**
 * Starts the event-loop sampler on behalf of one node (the first user
 * enables it: its timer does not keep the process alive); the returned
 * function stops using it, and the last one out disables it.
 */
export function useLoopSampler(): () => void {
  if (samplerUsers++ === 0) {
    sampler = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    sampler.enable();
    windowStart = performance.now();
    lastWindow = undefined;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--samplerUsers === 0) {
      sampler?.disable();
      sampler = undefined;
      lastWindow = undefined;
    }
  };
}

/** How many nodes use the sampler now (0: it is disabled). For tests. */
export function loopSamplerUsers(): number {
  return samplerUsers;
}

function readDelay(histogram: IntervalHistogram): EventLoopDelay {
  if (histogram.count === 0) return ZERO_DELAY;
  const ms = (ns: number): number => ns / 1e6;
  return { mean: ms(histogram.mean), p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
}

/**
 * The delay over the last completed window: a read after the window has run
 * its course closes it (and opens the next), so any number of readers share
 * one window and none resets it under another. The first window is reported
 * while it is still open.
 */
export function loopDelay(): EventLoopDelay {
  const histogram = sampler;
  if (histogram === undefined) return ZERO_DELAY;
  const now = performance.now();
  if (now - windowStart >= LOOP_WINDOW_MS && histogram.count > 0) {
    lastWindow = readDelay(histogram);
    histogram.reset();
    windowStart = now;
  }
  return lastWindow ?? readDelay(histogram);
}
