/**
 * `cluster.snapshotOf(node)`, both halves, over the cluster channel
 * `roster.introspect` that every node (member or observer) opens when it
 * joins (docs/protocol.md §5):
 *
 * - Asking side: a request `{ t: 'q', i, l, p }` to the node, a pending
 *   entry by request id, settled by its answer, by the node's `nodedown`
 *   (`noconnection`, at once) or by the timeout. An answer is checked field
 *   by field before anyone sees it (`checkSnapshot`): a member cannot pass
 *   off another node's processes, a wrong type or a value out of range; a
 *   malformed one is thrown as `WireDecodeError('malformed')`, which the
 *   cluster counts and logs at a bounded rate, and the request goes on
 *   waiting (to its timeout) as for a lost frame.
 * - Answering side: `node.snapshot()` taken at once (synchronous: it cannot
 *   interleave with anything) and sent back as `{ t: 'a', i, s }`. A
 *   process list is capped at `MAX_PROCESSES` (10 000), those with the
 *   longest mailboxes first, and cut further until the answer fits in one
 *   frame (`maxFrameBytes`); `truncated: true` says it was cut. When even
 *   an empty list would not fit, the answer is `{ t: 'e', i, c: 'too_large' }`. Requests are
 *   rate-limited per asking node (a token bucket of 20, refilled at 10 a
 *   second; one with the process list costs 5): beyond it they are
 *   dropped (counted in `stats.dropped.rate_limited`, logged at a bounded rate), so a member cannot make this node walk
 *   its process table in a loop.
 *
 * An answer's `distribution` (the peer's `Cluster.introspect()`) and
 * `registries` (each registry's `introspect()`) are checked too: counts are
 * non-negative safe integers and every record is bounded. A registry whose
 * data says `kind: 'globals'` is checked as @roster/globals'
 * `GlobalsIntrospection`; any other registry's data must be small plain JSON
 * (`MAX_REPORT_*`), or the whole answer is dropped as malformed.
 */
import {
  Pid,
  LatencyHistogram,
  type DistributionHost,
  type LatencySnapshot,
  type NodeSnapshot,
  type NodeStats,
  type ProcessInfo,
  type RestartRecord,
  type SupervisorChildInfo,
  type SupervisorInfo,
} from '@roster/core';
import { IntrospectionError, WireDecodeError, WireEncodeError, type DropReason } from '../errors.js';

/** The channel every node opens for introspection. */
export const INTROSPECTION_CHANNEL = 'roster.introspect';

/**
 * What `Cluster.introspect()` returns: a node's cluster layer as its
 * snapshot carries it (`snapshot.distribution`). Plain data.
 */
export type ClusterIntrospection = {
  /** Frames this node sent. */
  readonly sent: number;
  /** Frames this node received (dropped ones included). */
  readonly received: number;
  /** Frames dropped, by reason (as `ClusterStats.dropped`). */
  readonly dropped: Readonly<Record<DropReason | 'no_route' | 'rate_limited', number>>;
  /** Live peers (members and observers), this node excluded. */
  readonly peers: number;
  /** This node's role. */
  readonly role: 'member' | 'observer';
};

/** A node and incarnation, as the cluster names the sender of a message. */
interface Sender {
  readonly node: string;
  readonly creation: string;
}

/** What the service needs of its cluster. */
export interface IntrospectionDeps {
  readonly host: DistributionHost;
  /** The creation of the live member `node`; undefined when it is not one. */
  creationOf(node: string): string | undefined;
  /** To `node` on the introspection channel if it is still the incarnation `creation`; false otherwise. Throws `WireEncodeError` for an oversized frame. */
  send(node: string, creation: string, message: unknown): boolean;
  /** A request of `node` was dropped by the rate limit. */
  limited(node: string): void;
  /** Whether `message` fits in one frame of the introspection channel (`maxFrameBytes`). */
  fits(message: unknown): boolean;
}

/** A request's options, resolved. */
export interface SnapshotRequest {
  readonly timeout: number;
  readonly longestMailboxes: number;
  readonly processes: boolean;
}

/** Options of `cluster.snapshotOf`. */
export interface SnapshotOfOptions {
  /** Milliseconds to wait for the answer, > 0. Default 5000. */
  readonly timeout?: number;
  /** As `node.snapshot`'s: an integer from 0 to 1000. Default 10. */
  readonly longestMailboxes?: number;
  /** As `node.snapshot`'s: list every process. Default false. */
  readonly processes?: boolean;
}

const DEFAULTS = Object.freeze({ timeout: 5000, longestMailboxes: 10, processes: false });
const OPTION_KEYS: ReadonlySet<string> = new Set(Object.keys(DEFAULTS));
const MAX_LONGEST = 1000;
/** Most processes a snapshot answer lists (`truncated` says when there were more). */
export const MAX_PROCESSES = 10_000;

/** Checks `snapshotOf`'s options once; a bad one is a `TypeError` naming it. */
export function resolveSnapshotOfOptions(options: unknown): SnapshotRequest {
  const where = 'Cluster.snapshotOf';
  if (options === undefined) return DEFAULTS;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: ${[...OPTION_KEYS].join(', ')})`);
  }
  const { timeout = DEFAULTS.timeout, longestMailboxes = DEFAULTS.longestMailboxes, processes = DEFAULTS.processes } = options as SnapshotOfOptions;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > 2 ** 31 - 1) {
    throw new TypeError(`${where}: option timeout must be a number of ms > 0 (at most 2^31 - 1), got ${String(timeout)}`);
  }
  if (!Number.isInteger(longestMailboxes) || longestMailboxes < 0 || longestMailboxes > MAX_LONGEST) {
    throw new TypeError(`${where}: option longestMailboxes must be an integer from 0 to ${MAX_LONGEST}, got ${String(longestMailboxes)}`);
  }
  if (typeof processes !== 'boolean') throw new TypeError(`${where}: option processes must be a boolean, got ${typeof processes}`);
  return { timeout, longestMailboxes, processes };
}

interface Pending {
  readonly node: string;
  /** The node's incarnation when the request left: an answer from another one is not for it. */
  readonly creation: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (snapshot: NodeSnapshot) => void;
  readonly reject: (error: unknown) => void;
}

/** Requests a node answers per asking node: a burst of this many, refilled at this rate per second. */
const BURST = 20;
const PER_SECOND = 10;
/** What a request with the whole process list costs in the bucket (it is O(processes) to take and to send). */
const PROCESSES_COST = 5;

interface Bucket {
  tokens: number;
  at: number;
}

/** One node's introspection: the requests it made (by id) and the answering of its peers' (see the file header). */
export class IntrospectionService {
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #buckets = new Map<string, Bucket>();

  constructor(readonly deps: IntrospectionDeps) {}

  // ---- asking side ------------------------------------------------------------------

  request(node: string, options: SnapshotRequest): Promise<NodeSnapshot> {
    const creation = this.deps.creationOf(node);
    if (creation === undefined) {
      return Promise.reject(new IntrospectionError('unknown_node', node, `${node} is not a live member of the cluster`));
    }
    const id = this.#nextId++;
    this.deps.send(node, creation, { t: 'q', i: id, l: options.longestMailboxes, p: options.processes });
    return new Promise<NodeSnapshot>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.get(id)?.timer !== timer) return;
        this.#pending.delete(id);
        reject(new IntrospectionError('timeout', node, `${node} sent no snapshot within ${options.timeout} ms`));
      }, options.timeout);
      this.#pending.set(id, { node, creation, timer, resolve, reject });
    });
  }

  /** `node` is down: every request waiting on it fails with `noconnection` now. */
  nodeDown(node: string): void {
    for (const [id, pending] of this.#pending) {
      if (pending.node !== node) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new IntrospectionError('noconnection', node, `${node} went down before it answered`));
    }
    this.#buckets.delete(node);
  }

  /** A message on the introspection channel. Throws `WireDecodeError` for a malformed one. */
  onMessage(from: Sender, message: unknown): void {
    if (typeof message !== 'object' || message === null) malformed('not an object');
    const body = message as Record<string, unknown>;
    const id = body['i'];
    if (!Number.isSafeInteger(id) || (id as number) <= 0) malformed('i is not a request id');
    switch (body['t']) {
      case 'q':
        return this.#answer(from, id as number, body);
      case 'a':
      case 'e':
        return this.#settle(from, id as number, body);
      default:
        malformed(`unknown t ${JSON.stringify(body['t'])}`);
    }
  }

  #settle(from: Sender, id: number, body: Record<string, unknown>): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.node !== from.node || pending.creation !== from.creation) {
      // Late (after its timeout), or not ours to settle: still checked, so a forgery is counted.
      if (body['t'] === 'a') checkSnapshot(body['s'], from);
      return;
    }
    if (body['t'] === 'e') {
      if (body['c'] !== 'too_large') malformed(`unknown refusal ${JSON.stringify(body['c'])}`);
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new IntrospectionError('too_large', from.node, `${from.node}'s snapshot does not fit in one frame (maxFrameBytes)`));
      return;
    }
    const snapshot = checkSnapshot(body['s'], from);
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(snapshot);
  }

  // ---- answering side -----------------------------------------------------------------

  #answer(from: Sender, id: number, body: Record<string, unknown>): void {
    const longest = body['l'];
    const processes = body['p'];
    if (!Number.isInteger(longest) || (longest as number) < 0 || (longest as number) > MAX_LONGEST) malformed('l is not a count from 0 to 1000');
    if (typeof processes !== 'boolean') malformed('p is not a boolean');
    if (!this.#admit(from.node, processes ? PROCESSES_COST : 1)) return;
    const node = this.deps.host.node;
    if (!node.alive) return;
    const snapshot = node.snapshot({ longestMailboxes: longest as number, processes });
    const answer = (s: NodeSnapshot): Record<string, unknown> => ({ t: 'a', i: id, s });
    const all = snapshot.processes;
    if (all === undefined || all.length <= MAX_PROCESSES) {
      try {
        this.deps.send(from.node, from.creation, answer(snapshot));
        return;
      } catch (error) {
        // Larger than a frame (nothing was sent): cut the list below, or refuse.
        if (!(error instanceof WireEncodeError)) throw error;
      }
    }
    // The longest mailboxes first, as many as the cap and one frame allow (a binary search), else a refusal.
    const busiest = (all ?? []).slice().sort((a, b) => b.mailboxLength - a.mailboxLength || a.pid.id - b.pid.id);
    const { processes: _all, ...bare } = snapshot;
    const trimmed = (kept: number): NodeSnapshot => ({ ...bare, processes: busiest.slice(0, kept), truncated: true });
    if (all === undefined || !this.deps.fits(answer(trimmed(0)))) {
      this.deps.send(from.node, from.creation, { t: 'e', i: id, c: 'too_large' });
      return;
    }
    let low = 0; // fits
    let high = busiest.length <= MAX_PROCESSES ? busiest.length : MAX_PROCESSES + 1; // does not fit, or is past the cap
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (this.deps.fits(answer(trimmed(middle)))) low = middle;
      else high = middle;
    }
    this.deps.send(from.node, from.creation, answer(trimmed(low)));
  }

  /** Takes `cost` from the token bucket of the asking node: false (the request dropped) when it has not that much. */
  #admit(node: string, cost: number): boolean {
    const now = performance.now();
    let bucket = this.#buckets.get(node);
    if (bucket === undefined) this.#buckets.set(node, (bucket = { tokens: BURST, at: now }));
    bucket.tokens = Math.min(BURST, bucket.tokens + ((now - bucket.at) / 1000) * PER_SECOND);
    bucket.at = now;
    if (bucket.tokens < cost) {
      this.deps.limited(node);
      return false;
    }
    bucket.tokens -= cost;
    return true;
  }
}

// ---- checking an answer -----------------------------------------------------------------

function malformed(why: string): never {
  throw new WireDecodeError('malformed', `introspection: ${why}`);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) malformed(`${what} is not an array`);
  return value;
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) malformed(`${what} is not a count`);
  return value as number;
}

function amount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) malformed(`${what} is not a finite number >= 0`);
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') malformed(`${what} is not a string`);
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (!allowed.includes(value as T)) malformed(`${what} is not one of ${allowed.join(', ')}`);
  return value as T;
}

function ownPid(value: unknown, from: Sender, what: string): Pid {
  if (!(value instanceof Pid) || value.node !== from.node || value.creation !== from.creation) malformed(`${what} is not a process of the sender`);
  return value;
}

function optionalName(value: unknown, what: string): { name?: string } {
  return value === undefined ? {} : { name: text(value, what) };
}

function checkLatency(value: unknown, what = 'stats.callLatency'): LatencySnapshot {
  const latency = record(value, what);
  const bounds = list(latency['bounds'], `${what}.bounds`);
  const expected = LatencyHistogram.BOUNDS;
  if (bounds.length !== expected.length || bounds.some((bound, index) => bound !== expected[index])) malformed(`${what}.bounds are not the standard bounds`);
  const counts = list(latency['counts'], `${what}.counts`).map((item) => count(item, `${what}.counts[]`));
  if (counts.length !== expected.length + 1) malformed(`${what}.counts has the wrong length`);
  const total = count(latency['count'], `${what}.count`);
  if (counts.reduce((sum, item) => sum + item, 0) !== total) malformed(`${what}.count is not the sum of its counts`);
  return { bounds: expected, counts, count: total, sum: amount(latency['sum'], `${what}.sum`) };
}

function checkStats(value: unknown): NodeStats {
  const stats = record(value, 'stats');
  return {
    spawned: count(stats['spawned'], 'stats.spawned'),
    exited: count(stats['exited'], 'stats.exited'),
    messagesIn: count(stats['messagesIn'], 'stats.messagesIn'),
    messagesOut: count(stats['messagesOut'], 'stats.messagesOut'),
    calls: count(stats['calls'], 'stats.calls'),
    callsFailed: count(stats['callsFailed'], 'stats.callsFailed'),
    callLatency: checkLatency(stats['callLatency']),
  };
}

const KINDS = ['process', 'gen_server', 'supervisor', 'dynamic_supervisor'] as const;

function checkProcess(value: unknown, from: Sender): ProcessInfo {
  const info = record(value, 'process');
  return {
    pid: ownPid(info['pid'], from, 'process.pid'),
    ...optionalName(info['name'], 'process.name'),
    kind: oneOf(info['kind'], KINDS, 'process.kind'),
    mailboxLength: count(info['mailboxLength'], 'process.mailboxLength'),
    messagesIn: count(info['messagesIn'], 'process.messagesIn'),
    trapExit: typeof info['trapExit'] === 'boolean' ? info['trapExit'] : malformed('process.trapExit is not a boolean'),
    links: count(info['links'], 'process.links'),
    monitors: count(info['monitors'], 'process.monitors'),
    monitoredBy: count(info['monitoredBy'], 'process.monitoredBy'),
    startedAt: amount(info['startedAt'], 'process.startedAt'),
  };
}

const STRATEGIES = ['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'] as const;
const RESTARTS = ['permanent', 'transient', 'temporary'] as const;

function checkSupervisor(value: unknown, from: Sender): SupervisorInfo {
  const info = record(value, 'supervisor');
  const recent = list(info['recentRestarts'], 'supervisor.recentRestarts').map((item): RestartRecord => {
    const restart = record(item, 'restart');
    return { childId: text(restart['childId'], 'restart.childId'), at: amount(restart['at'], 'restart.at'), reason: text(restart['reason'], 'restart.reason') };
  });
  const children = list(info['children'], 'supervisor.children').map((item): SupervisorChildInfo => {
    const child = record(item, 'child');
    return {
      id: text(child['id'], 'child.id'),
      ...(child['pid'] === undefined ? {} : { pid: ownPid(child['pid'], from, 'child.pid') }),
      type: oneOf(child['type'], ['worker', 'supervisor'] as const, 'child.type'),
      restart: oneOf(child['restart'], RESTARTS, 'child.restart'),
    };
  });
  return {
    pid: ownPid(info['pid'], from, 'supervisor.pid'),
    ...optionalName(info['name'], 'supervisor.name'),
    ...(info['parent'] === undefined ? {} : { parent: ownPid(info['parent'], from, 'supervisor.parent') }),
    strategy: oneOf(info['strategy'], STRATEGIES, 'supervisor.strategy'),
    restarts: count(info['restarts'], 'supervisor.restarts'),
    recentRestarts: recent,
    children,
  };
}

// ---- what a peer's cluster layer and registries report -------------------------------------

/** Most registries a snapshot reports. */
export const MAX_REGISTRIES = 16;
/** Most keys of one object (or entries of one array) in an unknown registry's data. */
export const MAX_REPORT_KEYS = 64;
/** Most values in all (every key, entry and leaf) in one unknown registry's data. */
export const MAX_REPORT_VALUES = 256;
/** Deepest nesting of objects and arrays in an unknown registry's data: its own object is depth 1. */
export const MAX_REPORT_DEPTH = 4;
/** Longest string (key or value) in an unknown registry's data, and longest registry key. */
export const MAX_REPORT_STRING = 256;
/** Most keys of a by-reason record (drops): the known reasons and a few of a newer version's. */
const MAX_REASONS = 32;
/** Most members a globals registry reports. */
const MAX_MEMBERS = 4096;
const REASON = /^[a-z][a-z0-9_]{0,39}$/;

const CLUSTER_DROP_REASONS = [
  'malformed',
  'oversized',
  'version',
  'foreign_cluster',
  'bad_signature',
  'unknown_peer',
  'misrouted',
  'replayed',
  'clock_skew',
  'no_channel',
  'forged',
  'no_route',
  'rate_limited',
] as const satisfies readonly (keyof ClusterIntrospection['dropped'])[];

/** A record of counts by reason: every `required` reason, and at most {@link MAX_REASONS} keys in all, each a snake_case word. */
function countsByReason(value: unknown, what: string, required: readonly string[] = []): Record<string, number> {
  const input = record(value, what);
  const keys = Object.keys(input);
  if (keys.length > MAX_REASONS) malformed(`${what} has more than ${MAX_REASONS} reasons`);
  const out: Record<string, number> = {};
  for (const key of required) if (!(key in input)) malformed(`${what}.${key} is missing`);
  for (const key of keys) {
    if (!REASON.test(key)) malformed(`${what} has a key that is not a reason`);
    out[key] = count(input[key], `${what}.${key}`);
  }
  return out;
}

function checkDistribution(value: unknown): ClusterIntrospection {
  const data = record(value, 'distribution');
  return {
    sent: count(data['sent'], 'distribution.sent'),
    received: count(data['received'], 'distribution.received'),
    dropped: countsByReason(data['dropped'], 'distribution.dropped', CLUSTER_DROP_REASONS) as ClusterIntrospection['dropped'],
    peers: count(data['peers'], 'distribution.peers'),
    role: oneOf(data['role'], ['member', 'observer'] as const, 'distribution.role'),
  };
}

/** @roster/globals' `GlobalsIntrospection`, known by its `kind`. */
function checkGlobals(data: Record<string, unknown>, what: string): Record<string, unknown> {
  const members = list(data['members'], `${what}.members`);
  if (members.length > MAX_MEMBERS) malformed(`${what}.members is longer than ${MAX_MEMBERS}`);
  return {
    kind: 'globals',
    dropped: count(data['dropped'], `${what}.dropped`),
    drops: countsByReason(data['drops'], `${what}.drops`),
    conflicts: count(data['conflicts'], `${what}.conflicts`),
    listenerErrors: count(data['listenerErrors'], `${what}.listenerErrors`),
    registrations: count(data['registrations'], `${what}.registrations`),
    unregistrations: count(data['unregistrations'], `${what}.unregistrations`),
    registerLatency: checkLatency(data['registerLatency'], `${what}.registerLatency`),
    names: count(data['names'], `${what}.names`),
    members: members.map((member) => {
      const name = text(member, `${what}.members[]`);
      if (name.length === 0 || name.length > 255) malformed(`${what}.members[] is not a node name`);
      return name;
    }),
  };
}

/**
 * An unknown registry's data: plain JSON only (null, booleans, finite
 * numbers, strings, arrays and plain objects; no pid or other tagged
 * value), at most {@link MAX_REPORT_DEPTH} deep, {@link MAX_REPORT_KEYS}
 * keys per object, {@link MAX_REPORT_VALUES} values in all and strings of
 * {@link MAX_REPORT_STRING}. Rebuilt, not passed through.
 */
function checkPlainReport(data: Record<string, unknown>, what: string): Record<string, unknown> {
  let values = 0;
  const visit = (value: unknown, depth: number): unknown => {
    if (++values > MAX_REPORT_VALUES) malformed(`${what} holds more than ${MAX_REPORT_VALUES} values`);
    if (value === null || typeof value === 'boolean') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) malformed(`${what} holds a number that is not finite`);
      return value;
    }
    if (typeof value === 'string') {
      if (value.length > MAX_REPORT_STRING) malformed(`${what} holds a string longer than ${MAX_REPORT_STRING}`);
      return value;
    }
    if (typeof value !== 'object') malformed(`${what} holds a value of type ${typeof value}, not JSON`);
    if (depth > MAX_REPORT_DEPTH) malformed(`${what} is nested deeper than ${MAX_REPORT_DEPTH}`);
    if (Array.isArray(value)) {
      if (value.length > MAX_REPORT_KEYS) malformed(`${what} holds an array longer than ${MAX_REPORT_KEYS}`);
      return value.map((item) => visit(item, depth + 1));
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) malformed(`${what} holds an object that is not plain JSON`);
    return plainObject(value as Record<string, unknown>, depth);
  };
  const plainObject = (object: Record<string, unknown>, depth: number): Record<string, unknown> => {
    const keys = Object.keys(object);
    if (keys.length > MAX_REPORT_KEYS) malformed(`${what} has an object of more than ${MAX_REPORT_KEYS} keys`);
    values += keys.length;
    if (values > MAX_REPORT_VALUES) malformed(`${what} holds more than ${MAX_REPORT_VALUES} values`);
    return Object.fromEntries(
      keys.map((key) => {
        if (key.length > MAX_REPORT_STRING || key === '__proto__') malformed(`${what} has a key that is too long or reserved`);
        return [key, visit(object[key], depth + 1)];
      }),
    );
  };
  return plainObject(data, 1);
}

/** `snapshot.registries`: at most {@link MAX_REGISTRIES}, each a known shape or small plain JSON. Absent (an older peer) reads as none. */
function checkRegistries(value: unknown): Record<string, Record<string, unknown>> {
  if (value === undefined) return {};
  const registries = record(value, 'snapshot.registries');
  const keys = Object.keys(registries);
  if (keys.length > MAX_REGISTRIES) malformed(`snapshot.registries has more than ${MAX_REGISTRIES} registries`);
  return Object.fromEntries(
    keys.map((key) => {
      if (key.length === 0 || key.length > MAX_REPORT_STRING || key === '__proto__') malformed('snapshot.registries has a key that is not a registry key');
      const what = `registries[${JSON.stringify(key)}]`;
      const data = record(registries[key], what);
      return [key, data['kind'] === 'globals' ? checkGlobals(data, what) : checkPlainReport(data, what)];
    }),
  );
}

/**
 * A peer's snapshot, checked field by field and rebuilt from the checked
 * fields only (anything else it carried is left behind). Throws
 * `WireDecodeError('malformed')` naming the first bad field.
 */
export function checkSnapshot(value: unknown, from: Sender): NodeSnapshot {
  const snapshot = record(value, 'snapshot');
  if (snapshot['node'] !== from.node) malformed('snapshot.node is not the sender');
  const memory = record(snapshot['memory'], 'memory');
  const delay = record(snapshot['eventLoopDelay'], 'eventLoopDelay');
  const checked: NodeSnapshot = {
    node: from.node,
    at: amount(snapshot['at'], 'snapshot.at'),
    processCount: count(snapshot['processCount'], 'snapshot.processCount'),
    stats: checkStats(snapshot['stats']),
    mailboxMax: count(snapshot['mailboxMax'], 'snapshot.mailboxMax'),
    longestMailboxes: list(snapshot['longestMailboxes'], 'snapshot.longestMailboxes').map((item) => checkProcess(item, from)),
    memory: {
      rss: amount(memory['rss'], 'memory.rss'),
      heapUsed: amount(memory['heapUsed'], 'memory.heapUsed'),
      heapTotal: amount(memory['heapTotal'], 'memory.heapTotal'),
      external: amount(memory['external'], 'memory.external'),
    },
    eventLoopDelay: {
      mean: amount(delay['mean'], 'eventLoopDelay.mean'),
      p50: amount(delay['p50'], 'eventLoopDelay.p50'),
      p99: amount(delay['p99'], 'eventLoopDelay.p99'),
      max: amount(delay['max'], 'eventLoopDelay.max'),
    },
    supervisors: list(snapshot['supervisors'], 'snapshot.supervisors').map((item) => checkSupervisor(item, from)),
    registered: list(snapshot['registered'], 'snapshot.registered').map((item) => text(item, 'snapshot.registered[]')),
    registries: checkRegistries(snapshot['registries']),
  };
  if (checked.longestMailboxes.length > MAX_LONGEST) malformed('snapshot.longestMailboxes is longer than 1000');
  const processes = snapshot['processes'] === undefined ? undefined : list(snapshot['processes'], 'snapshot.processes').map((item) => checkProcess(item, from));
  if (processes !== undefined && processes.length > MAX_PROCESSES) malformed(`snapshot.processes is longer than ${MAX_PROCESSES}`);
  const truncated = snapshot['truncated'];
  if (truncated !== undefined && (truncated !== true || processes === undefined)) malformed('snapshot.truncated is not true beside processes');
  return {
    ...checked,
    ...(snapshot['distribution'] === undefined ? {} : { distribution: checkDistribution(snapshot['distribution']) }),
    ...(processes === undefined ? {} : { processes }),
    ...(truncated === true ? { truncated } : {}),
  };
}
