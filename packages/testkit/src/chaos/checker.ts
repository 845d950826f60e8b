/**
 * The history checker: reads a chaos run's {@link History} and reports
 * every violation of the globals registry's promises (DESIGN.md §3, §3.1),
 * by kind. Pure: no I/O, no clock.
 *
 * ## Windows
 *
 * An operation took effect at some instant of its window `[invokeAt,
 * completeAt]`, unknown which; one that never completed may have taken
 * effect at any instant after its invocation. Every rule gives the system
 * the benefit of that doubt, so a reported violation is one no ordering of
 * the instants inside the windows can explain.
 *
 * A **hold** is a `register` that answered `yes` for pid `p` (on node `X`,
 * the pid's node). It is *certain* over `[completeAt, end)`, where `end` is
 * the earliest instant it may have ended:
 * - `p`'s death (a `death` event; or the first `kill` / `stop` / `kill-node`
 *   of `X` after `p` was born: the matching `restart`'s creation, else `p`'s
 *   first register's invocation);
 * - the invocation of any `unregister` of the name, from any node, that may
 *   have taken effect after the grant (it had not completed before the
 *   register was invoked), whatever its result.
 * A hold with no such end at all is *open*: its holder was never told it lost
 * the name.
 *
 * Two nodes *can reach each other* at `t` unless either is impaired then
 * (see connectivity.ts: a cut, blackhole or long delay of its link until it
 * reconnected after the heal (or the heal itself, plus `amqpDetect` for a
 * blackhole) plus `settle`; down from a kill to its restart plus
 * `joinGrace`; its broker gone until it reconnected, to another broker or
 * the same one, or the broker came back, plus `settle`). A node always
 * reaches itself.
 *
 * The windows' defaults are derived from the history's timings, not
 * guessed (connectivity.ts, "Where the windows come from"): with the
 * shipped failure timeout 3000 ms, heartbeat 1000 ms and AMQP heartbeat
 * 5 s, `settle` = 3000 + 2 × 1000 + 1000 = 6000 ms, `amqpDetect` = 15 000
 * ms, `reconnectBound` = 21 000 ms, `delayImpairsFrom` = 1500 ms,
 * `joinGrace` = 0. `staleSlack` (the runner's: one heartbeat + 500 ms)
 * covers that a death is noticed on the next heartbeat tick after the
 * failure timeout, plus IPC stamping.
 *
 * ## Rules
 *
 * 1. `double_grant`: two holds of one name by different pids whose certain
 *    intervals overlap over more than `tolerance` ms during which the two
 *    holders' nodes could reach each other. A double `yes` across a
 *    partition is allowed while it lasts and for `settle` after the heal:
 *    by then the conflict policy must have made one of them exit (a
 *    `death`, e.g. `{ name_conflict, … }`).
 * 2. `lost_holder`: an open hold (no death, no unregister, its node never
 *    killed or stopped) that the final state does not show: some final read
 *    (`final: true` whereis, taken after everything healed and settled) on
 *    a node that could then reach the holder's, or on the holder's own node,
 *    resolves the name to something else. A cut is not an excuse once
 *    healed: roster promises that a partition's loser is told
 *    (`name_conflict`), and a told loser dies, which ends the hold. When no
 *    final read could judge a hold, it is counted as unchecked.
 * 3. `stale_resolution`: a `whereis` (on any node) that resolved the name to
 *    pid `p` although it was invoked more than `failureTimeout + staleSlack`
 *    ms after `p`'s death (the read may have happened as early as its
 *    invocation; the table had until then to forget `p`). Reported once per
 *    name, pid and reading node, with the number of such reads.
 * 4. `lost_registration`: during a certain hold, a non-final `whereis` whose
 *    whole window lies inside the hold, on a node that could reach the
 *    holder's throughout that window (or on the holder's own node), resolved
 *    the name to nothing or to another pid (read-your-writes: when
 *    `registerName` answers `yes` every member resolves the name, and
 *    nothing takes it away while its holder lives and stays in touch).
 *    Reported once per hold, with the number of such reads.
 *
 * @module
 */
import { defaultWindows, deriveConnectivity, type Connectivity, type ConnectivityOptions } from './connectivity.js';
import { parsePid, type DeathEvent, type FaultEvent, type History, type HistoryEvent, type Millis, type NodeEvent, type Operation, type PidString, type RegisterOp, type UnregisterOp, type WhereisOp } from './history.js';
import { intersect, measure, type Interval } from './intervals.js';

/** The kinds of violation the checker reports. */
export type ViolationKind = 'double_grant' | 'lost_holder' | 'stale_resolution' | 'lost_registration';

export const VIOLATION_KINDS: readonly ViolationKind[] = ['double_grant', 'lost_holder', 'stale_resolution', 'lost_registration'];

/** One violation, with what it involves. */
export interface Violation {
  readonly kind: ViolationKind;
  readonly name: string;
  /** When it first shows. */
  readonly at: Millis;
  /** A sentence a person can read. */
  readonly message: string;
  readonly pids: readonly PidString[];
  readonly nodes: readonly string[];
  /** The ids of the operations involved (the holds' registers, the offending reads). */
  readonly ops: readonly number[];
  /** For `double_grant`: the first connected overlap. */
  readonly window?: Interval;
  /** How many reads showed it (`stale_resolution`, `lost_registration`). */
  readonly count?: number;
}

/** Options of {@link checkHistory}; connectivity windows as in {@link ConnectivityOptions}. */
export interface CheckerOptions extends ConnectivityOptions {
  /** Default the history's `meta.failureTimeout`. */
  readonly failureTimeout?: Millis;
  /** Added to `failureTimeout` for `stale_resolution`, in ms (detection runs on heartbeat ticks). Default 0. */
  readonly staleSlack?: Millis;
  /** A `double_grant` overlap must last longer than this, in ms. Default 0. */
  readonly tolerance?: Millis;
}

/** A hold: see the module header. */
export interface Hold {
  readonly op: RegisterOp;
  readonly name: string;
  readonly pid: PidString;
  readonly node: string;
  /** Certain over `[from, to)`. */
  readonly certain: Interval;
  /** What may have ended it first (`undefined`: open). */
  readonly endedBy: 'death' | 'unregister' | undefined;
}

/** What {@link checkHistory} found. */
export interface CheckResult {
  /** No violation. */
  readonly ok: boolean;
  /** Sorted by `at`. */
  readonly violations: readonly Violation[];
  readonly byKind: Readonly<Record<ViolationKind, number>>;
  readonly checked: {
    readonly holds: number;
    readonly openHolds: number;
    /** Open holds no final read could judge. */
    readonly uncheckedHolds: number;
    readonly reads: number;
    readonly finalReads: number;
  };
  /** The options the rules ran with, defaults filled in. */
  readonly options: Required<CheckerOptions>;
}

/** When each pid died (earliest known), from deaths and from kills of its node's incarnation. */
export function deathTimes(history: History): Map<PidString, Millis> {
  const out = new Map<PidString, Millis>();
  const note = (pid: PidString, at: Millis): void => {
    const known = out.get(pid);
    if (known === undefined || at < known) out.set(pid, at);
  };
  const events = history.events;
  for (const event of events) if (event.kind === 'death') note(event.pid, event.at);
  const ends = events.filter(
    (e): e is NodeEvent | FaultEvent => (e.kind === 'node' && (e.event === 'kill' || e.event === 'stop')) || (e.kind === 'fault' && e.fault === 'kill-node'),
  );
  const restarts = events.filter((e): e is NodeEvent => e.kind === 'node' && e.event === 'restart');
  // Every pid the history mentions, with the first time it shows.
  const born = new Map<PidString, Millis>();
  const see = (pid: PidString, at: Millis, strong: boolean): void => {
    const known = born.get(pid);
    if (known === undefined || (strong && at < known)) born.set(pid, at);
  };
  for (const event of events) if (event.kind === 'op' && event.op === 'register') see(event.pid, event.invokeAt, true);
  for (const event of events) {
    if (event.kind === 'op' && event.op === 'whereis' && typeof event.result === 'string' && event.result !== 'error') see(event.result, event.invokeAt, false);
    if (event.kind === 'death') see(event.pid, event.at, false);
  }
  for (const [pid, seen] of born) {
    const parsed = parsePid(pid);
    if (parsed === undefined) continue;
    const restart = restarts.find((r) => r.node === parsed.node && r.creation === parsed.creation);
    const from = restart?.at ?? seen;
    let end: Millis | undefined;
    for (const e of ends) {
      const node = e.kind === 'node' ? e.node : e.target;
      if (node !== parsed.node) continue;
      const creation = e.kind === 'node' ? e.creation : undefined;
      if (creation !== undefined ? creation !== parsed.creation : e.at < from) continue;
      if (end === undefined || e.at < end) end = e.at;
    }
    if (end !== undefined) note(pid, end);
  }
  return out;
}

const completed = (op: Operation): op is Operation & { completeAt: Millis } => op.completeAt !== null;

/** Every hold of the history (see the module header). */
export function holdsOf(history: History, deaths: ReadonlyMap<PidString, Millis> = deathTimes(history)): Hold[] {
  const ops = history.events.filter((e): e is Operation => e.kind === 'op');
  const unregisters = groupBy(
    ops.filter((o): o is UnregisterOp => o.op === 'unregister'),
    (o) => o.name,
  );
  const holds: Hold[] = [];
  for (const op of ops) {
    if (op.op !== 'register' || op.result !== 'yes' || op.completeAt === null) continue;
    let end = Infinity;
    let endedBy: Hold['endedBy'];
    const died = deaths.get(op.pid);
    if (died !== undefined) {
      end = died;
      endedBy = 'death';
    }
    for (const u of unregisters.get(op.name) ?? []) {
      if ((u.completeAt ?? Infinity) <= op.invokeAt) continue;
      const at = Math.max(u.invokeAt, op.invokeAt);
      if (at < end) {
        end = at;
        endedBy = 'unregister';
      }
    }
    holds.push({ op, name: op.name, pid: op.pid, node: parsePid(op.pid)?.node ?? op.process, certain: { from: op.completeAt, to: end }, endedBy });
  }
  return holds;
}

function resolve(history: History, options: CheckerOptions): Required<CheckerOptions> {
  const failureTimeout = options.failureTimeout ?? history.meta.failureTimeout;
  // The connectivity windows, derived from the cluster's timings (connectivity.ts, "Where the windows come from").
  const windows = defaultWindows({ ...history.meta, failureTimeout });
  const resolved = {
    failureTimeout,
    staleSlack: options.staleSlack ?? 0,
    tolerance: options.tolerance ?? 0,
    settle: options.settle ?? windows.settle,
    joinGrace: options.joinGrace ?? windows.joinGrace,
    delayImpairsFrom: options.delayImpairsFrom ?? windows.delayImpairsFrom,
    reconnectBound: options.reconnectBound ?? windows.reconnectBound,
    amqpDetect: options.amqpDetect ?? windows.amqpDetect,
  };
  for (const [key, value] of Object.entries(resolved)) {
    if (!(typeof value === 'number' && value >= 0)) throw new TypeError(`checkHistory: option ${key} must be a number of ms >= 0, got ${String(value)}`);
  }
  for (const key of Object.keys(options)) {
    if (!(key in resolved)) throw new TypeError(`checkHistory: unknown option ${key}`);
  }
  return resolved;
}

const fmt = (t: Millis, origin: Millis): string => (t === Infinity ? '∞' : `+${Math.round(t - origin)} ms`);

/** Checks a history against the four rules of the module header. */
export function checkHistory(history: History, options: CheckerOptions = {}): CheckResult {
  const opts = resolve(history, options);
  const origin = history.meta.startedAt;
  const connectivity: Connectivity = deriveConnectivity(history, opts);
  const deaths = deathTimes(history);
  const holds = holdsOf(history, deaths);
  const reads = history.events.filter((e): e is WhereisOp & { completeAt: Millis } => e.kind === 'op' && e.op === 'whereis' && completed(e) && e.result !== 'error');
  const finalReads = reads.filter((r) => r.final === true);
  const liveReads = reads.filter((r) => r.final !== true);
  const finalByName = groupBy(finalReads, (r) => r.name);
  const liveByName = groupBy(liveReads, (r) => r.name);
  const violations: Violation[] = [];
  const byName = new Map<string, Hold[]>();
  for (const hold of holds) {
    const list = byName.get(hold.name) ?? [];
    list.push(hold);
    byName.set(hold.name, list);
  }

  // 1. double_grant
  for (const [name, list] of byName) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (a.pid === b.pid) continue;
        const overlap = intersect(a.certain, b.certain);
        if (overlap.to - overlap.from <= opts.tolerance) continue;
        const parts = connectedParts(connectivity, a.node, b.node, overlap).filter((p) => p.to - p.from > opts.tolerance);
        if (parts.length === 0) continue;
        const first = parts[0]!;
        const total = measure(parts);
        violations.push({
          kind: 'double_grant',
          name,
          at: first.from,
          message: `${name}: ${a.pid} (op ${a.op.id}, yes at ${fmt(a.certain.from, origin)}) and ${b.pid} (op ${b.op.id}, yes at ${fmt(b.certain.from, origin)}) both held it from ${fmt(first.from, origin)} to ${fmt(first.to, origin)} while ${a.node} and ${b.node} could reach each other (${total === Infinity ? 'to the end' : `${Math.round(total)} ms in all`})`,
          pids: [a.pid, b.pid],
          nodes: [a.node, b.node],
          ops: [a.op.id, b.op.id],
          window: first,
        });
      }
    }
  }

  // 2. lost_holder
  let openHolds = 0;
  let uncheckedHolds = 0;
  for (const hold of holds) {
    if (hold.certain.to !== Infinity) continue;
    openHolds++;
    const judges = (finalByName.get(hold.name) ?? []).filter(
      (r) => r.invokeAt >= hold.certain.from && (r.process === hold.node || connectivity.connectedThroughout(r.process, hold.node, r.invokeAt, r.completeAt)),
    );
    if (judges.length === 0) {
      uncheckedHolds++;
      continue;
    }
    const wrong = judges.filter((r) => r.result !== hold.pid);
    if (wrong.length === 0) continue;
    const seen = wrong.map((r) => `${r.process}: ${r.result ?? 'nothing'}`).join(', ');
    violations.push({
      kind: 'lost_holder',
      name: hold.name,
      at: wrong[0]!.invokeAt,
      message: `${hold.name}: ${hold.pid} got yes (op ${hold.op.id} at ${fmt(hold.certain.from, origin)}), never died nor was unregistered, yet the final reads show ${seen}`,
      pids: [hold.pid],
      nodes: [hold.node, ...new Set(wrong.map((r) => r.process))],
      ops: [hold.op.id, ...wrong.map((r) => r.id)],
      count: wrong.length,
    });
  }

  // 3. stale_resolution
  const bound = opts.failureTimeout + opts.staleSlack;
  const stale = new Map<string, (WhereisOp & { completeAt: Millis })[]>();
  for (const read of reads) {
    if (read.result === null) continue;
    const died = deaths.get(read.result);
    if (died === undefined || read.invokeAt - died <= bound) continue;
    const key = `${read.name}\u0000${read.result}\u0000${read.process}`;
    const list = stale.get(key) ?? [];
    list.push(read);
    stale.set(key, list);
  }
  for (const list of stale.values()) {
    const first = list[0]!;
    const pid = first.result as PidString;
    const died = deaths.get(pid)!;
    violations.push({
      kind: 'stale_resolution',
      name: first.name,
      at: first.invokeAt,
      message: `${first.name}: ${first.process} resolved it to ${pid}, dead since ${fmt(died, origin)}, ${Math.round(first.invokeAt - died)} ms later (op ${first.id}; bound ${bound} ms)${list.length > 1 ? `, and ${list.length - 1} more reads until ${fmt(list[list.length - 1]!.invokeAt, origin)}` : ''}`,
      pids: [pid],
      nodes: [first.process],
      ops: list.map((r) => r.id),
      count: list.length,
    });
  }

  // 4. lost_registration
  for (const hold of holds) {
    const wrong = (liveByName.get(hold.name) ?? []).filter(
      (r) =>
        r.invokeAt >= hold.certain.from &&
        r.completeAt < hold.certain.to &&
        r.result !== hold.pid &&
        (r.process === hold.node || connectivity.connectedThroughout(r.process, hold.node, r.invokeAt, r.completeAt)),
    );
    if (wrong.length === 0) continue;
    const first = wrong[0]!;
    violations.push({
      kind: 'lost_registration',
      name: hold.name,
      at: first.invokeAt,
      message: `${hold.name}: held by ${hold.pid} on ${hold.node} (op ${hold.op.id}, yes at ${fmt(hold.certain.from, origin)}, alive and in touch), yet ${first.process} resolved it to ${first.result ?? 'nothing'} at ${fmt(first.invokeAt, origin)} (op ${first.id})${wrong.length > 1 ? `, and ${wrong.length - 1} more reads` : ''}`,
      pids: [hold.pid],
      nodes: [hold.node, ...new Set(wrong.map((r) => r.process))],
      ops: [hold.op.id, ...wrong.map((r) => r.id)],
      count: wrong.length,
    });
  }

  violations.sort((a, b) => a.at - b.at);
  const byKind = Object.fromEntries(VIOLATION_KINDS.map((kind) => [kind, violations.filter((v) => v.kind === kind).length])) as Record<ViolationKind, number>;
  return {
    ok: violations.length === 0,
    violations,
    byKind,
    checked: { holds: holds.length, openHolds, uncheckedHolds, reads: liveReads.length, finalReads: finalReads.length },
    options: opts,
  };
}

function connectedParts(connectivity: Connectivity, a: string, b: string, window: Interval): Interval[] {
  return connectivity.connectedWithin(a, b, window);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list === undefined) out.set(k, [item]);
    else list.push(item);
  }
  return out;
}

/** The events of `history` that a violation involves, and every fault, node event and death in its time range, for a readable excerpt. */
export function excerpt(history: History, violation: Violation, margin: Millis = history.meta.failureTimeout): HistoryEvent[] {
  const ids = new Set(violation.ops);
  const pids = new Set(violation.pids);
  const involved = history.events.filter((e) => e.kind === 'op' && ids.has(e.id)) as Operation[];
  const from = Math.min(violation.at, ...involved.map((o) => o.invokeAt)) - margin;
  const to = Math.max(violation.at, ...involved.map((o) => o.completeAt ?? o.invokeAt)) + margin;
  return history.events
    .filter((e) => {
      if (e.kind === 'op') return ids.has(e.id) || (e.name === violation.name && e.invokeAt <= to && (e.completeAt ?? Infinity) >= from);
      if (e.kind === 'death') return pids.has(e.pid) || (e.at >= from && e.at <= to);
      return (e as FaultEvent | NodeEvent | DeathEvent).at >= from && (e as FaultEvent | NodeEvent).at <= to;
    })
    .sort((x, y) => (x.kind === 'op' ? x.invokeAt : x.at) - (y.kind === 'op' ? y.invokeAt : y.at));
}
