/**
 * Who could reach whom, and when, derived from the faults a history records.
 *
 * Roster nodes talk through their brokers only, so a fault cuts one node off
 * from all the others (a star, not a mesh): each node has a list of
 * *impaired* intervals, and two distinct nodes can reach each other at `t`
 * when neither is impaired at `t`. A node always reaches itself.
 *
 * A node is impaired:
 * - from a `cut` or `blackhole` of its link (or a `delay` of at least
 *   `delayImpairsFrom` ms) until the next `heal` of it (or of `all`), plus
 *   `settle`; for a cut or blackhole, whose connections are dead, the
 *   window runs from its first `reconnected` node event after the heal
 *   (within `reconnectBound`) instead, when there is one; with none, a
 *   blackhole's runs from the heal plus `amqpDetect` (the blackholed
 *   connection is only found dead by heartbeats); never healed, to the end;
 * - from a `kill` or `stop` (node event, or a `kill-node` fault) until its
 *   next `restart` node event (or, failing that, `restart-node` fault), plus
 *   `joinGrace`;
 * - from a `broker-kill` that `affects` it (every node, when the fault does
 *   not say) until its first `reconnected` node event after the kill (to
 *   another broker of its list, or to the same one back) or the broker's
 *   `broker-restart`, whichever comes first, plus `settle`.
 *
 * ## Where the windows come from (see {@link defaultWindows})
 *
 * With `ft` the failure timeout, `hb` the cluster heartbeat and `H` the
 * AMQP heartbeat (seconds) of the history's meta:
 * - `settle = ft + 2 × hb + margin` (margin 1000 ms): once a node has a
 *   connection again, a peer that still counts it as up from before may
 *   keep stale state until its failure timeout runs out (`ft`); the
 *   node's first heartbeat announces it (≤ 1 `hb`) and the table exchange
 *   that follows a nodeup (anti-entropy, answered on the next tick) takes
 *   ≤ 1 more `hb`; the margin covers IPC stamping, broker routing and
 *   timer jitter. (It was `3 × ft` = 9 s before, excusing nodes for a large
 *   share of a run.)
 * - `amqpDetect = 3 × H × 1000` ms: amqplib checks for received bytes every
 *   `H` s and gives up after two empty checks, so a silent connection is
 *   declared dead 2 to 3 `H` after its last byte.
 * - `reconnectBound = amqpDetect + 5000 + margin`: a blackholed node's
 *   reconnect comes at the latest after detection plus one maximal
 *   reconnect backoff (AmqpTransport's default `reconnect.maxMs`).
 * - `delayImpairsFrom = ft / 2`: a one-way delay that long makes round
 *   trips approach the failure timeout.
 * - `joinGrace = 0`: `Node.start` resolves knowing every name.
 *
 * Outside these windows the checker's rules are strict.
 *
 * @module
 */
import type { FaultEvent, History, HistoryEvent, Millis, NodeEvent } from './history.js';
import { covers, subtract, union, type Interval } from './intervals.js';

/** The margin of the derived windows, in ms: see the module header. */
export const WINDOW_MARGIN: Millis = 1000;
/** AmqpTransport's default maximal reconnect backoff, in ms. */
const RECONNECT_MAX: Millis = 5000;

/** The default windows of a history's cluster timings, each as derived in the module header. */
export function defaultWindows(meta: History['meta']): Required<ConnectivityOptions> {
  const ft = meta.failureTimeout;
  const hb = meta.heartbeatInterval ?? 1000;
  const amqpDetect = 3 * (meta.amqpHeartbeat ?? 5) * 1000;
  return {
    settle: ft + 2 * hb + WINDOW_MARGIN,
    joinGrace: 0,
    delayImpairsFrom: ft / 2,
    amqpDetect,
    reconnectBound: amqpDetect + RECONNECT_MAX + WINDOW_MARGIN,
  };
}

/** Options of {@link deriveConnectivity}; defaults from {@link defaultWindows}. */
export interface ConnectivityOptions {
  /** How long after a reconnect (or a heal, or a broker's return) a node may still be out of touch, in ms. Default `failureTimeout + 2 × heartbeatInterval + 1000`. */
  readonly settle?: Millis;
  /** How long after a restart is ready the node may still be joining, in ms. Default 0 (`Node.start` resolves knowing every name). */
  readonly joinGrace?: Millis;
  /** A `delay` of at least this many ms counts as a partition. Default `failureTimeout / 2`. */
  readonly delayImpairsFrom?: Millis;
  /** After a heal of a cut or blackhole, a `reconnected` node event of the node within this many ms moves the end of the window to it. Default `amqpDetect + 5000 + 1000`. */
  readonly reconnectBound?: Millis;
  /** How long a blackholed connection may go unnoticed, in ms (added after the heal when no reconnect is seen). Default `3 × amqpHeartbeat` s. */
  readonly amqpDetect?: Millis;
}

/** Why a node was out of touch over an interval. */
export interface Impairment extends Interval {
  readonly node: string;
  readonly cause: 'link' | 'down' | 'broker';
  /** The event that began it. */
  readonly since: FaultEvent | NodeEvent;
}

/** See {@link deriveConnectivity}. */
export interface Connectivity {
  readonly impairments: readonly Impairment[];
  /** A node's impaired intervals, merged. */
  impairedOf(node: string): readonly Interval[];
  /** Whether `node` is impaired at `t`. */
  impaired(node: string, t: Millis): boolean;
  /** Whether `a` and `b` can reach each other at `t`. */
  connected(a: string, b: string, t: Millis): boolean;
  /** The parts of `window` over which `a` and `b` can reach each other. */
  connectedWithin(a: string, b: string, window: Interval): Interval[];
  /** Whether `a` and `b` can reach each other over the whole closed window `[from, to]`. */
  connectedThroughout(a: string, b: string, from: Millis, to: Millis): boolean;
  /** Intervals over which `node` was down (killed or stopped, not yet restarted; no grace). */
  downOf(node: string): readonly Interval[];
}

const definedOf = (options: ConnectivityOptions): ConnectivityOptions =>
  Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as ConnectivityOptions;

const byTime = (a: HistoryEvent, b: HistoryEvent): number => timeOf(a) - timeOf(b);
const timeOf = (event: HistoryEvent): Millis => (event.kind === 'op' ? event.invokeAt : event.at);

/** Derives the {@link Connectivity} of a history's nodes from its faults and node events. */
export function deriveConnectivity(history: History, options: ConnectivityOptions = {}): Connectivity {
  const { settle, joinGrace, delayImpairsFrom, reconnectBound, amqpDetect } = { ...defaultWindows(history.meta), ...definedOf(options) };
  const events = [...history.events].filter((e) => e.kind === 'fault' || e.kind === 'node').sort(byTime) as (FaultEvent | NodeEvent)[];
  const nodes = new Set(history.meta.nodes);
  for (const event of events) {
    if (event.kind === 'node') nodes.add(event.node);
    else if (!event.fault.startsWith('broker') && event.target !== 'all') nodes.add(event.target);
  }
  const impairments: Impairment[] = [];
  const downs = new Map<string, Interval[]>();
  const after = (t: Millis, match: (e: FaultEvent | NodeEvent) => boolean): Millis | undefined => events.find((e) => e.at >= t && match(e))?.at;

  for (const node of nodes) {
    // Link faults: open at the first cut/blackhole/long delay, closed by a heal.
    let openedBy: FaultEvent | undefined;
    for (const event of events) {
      if (event.kind !== 'fault') continue;
      const mine = event.target === node || (event.fault === 'heal' && event.target === 'all');
      if (!mine) continue;
      const breaks = event.fault === 'cut' || event.fault === 'blackhole' || (event.fault === 'delay' && (event.ms ?? Infinity) >= delayImpairsFrom);
      if (breaks && openedBy === undefined) openedBy = event;
      if (event.fault === 'heal' && openedBy !== undefined) {
        // A cut or blackholed connection is dead: the node is back once it has reconnected.
        const healed = event.at;
        const reconnect =
          openedBy.fault === 'delay' ? undefined : after(healed, (e) => e.kind === 'node' && e.event === 'reconnected' && e.node === node && e.at <= healed + reconnectBound);
        const unnoticed = reconnect === undefined && openedBy.fault === 'blackhole' ? amqpDetect : 0;
        impairments.push({ node, cause: 'link', since: openedBy, from: openedBy.at, to: (reconnect ?? healed + unnoticed) + settle });
        openedBy = undefined;
      }
    }
    if (openedBy !== undefined) impairments.push({ node, cause: 'link', since: openedBy, from: openedBy.at, to: Infinity });

    // Down: from a kill or stop to the next restart.
    const nodeDowns: Interval[] = [];
    let downSince: FaultEvent | NodeEvent | undefined;
    for (const event of events) {
      const isDown = (event.kind === 'node' && event.node === node && (event.event === 'kill' || event.event === 'stop')) || (event.kind === 'fault' && event.fault === 'kill-node' && event.target === node);
      if (isDown) {
        downSince ??= event;
        continue;
      }
      const isUp = event.kind === 'node' && event.node === node && event.event === 'restart';
      if (isUp && downSince !== undefined) {
        nodeDowns.push({ from: downSince.at, to: event.at });
        impairments.push({ node, cause: 'down', since: downSince, from: downSince.at, to: event.at + joinGrace });
        downSince = undefined;
      }
    }
    if (downSince !== undefined) {
      const since = downSince;
      // No restart node event: a restart-node fault after it is the best we know.
      const restart = after(since.at, (e) => e.kind === 'fault' && e.fault === 'restart-node' && e.target === node);
      nodeDowns.push({ from: since.at, to: restart ?? Infinity });
      impairments.push({ node, cause: 'down', since, from: since.at, to: restart === undefined ? Infinity : restart + joinGrace });
    }
    downs.set(node, union(nodeDowns));

    // Broker faults.
    for (const event of events) {
      if (event.kind !== 'fault' || event.fault !== 'broker-kill') continue;
      if (event.affects !== undefined && !event.affects.includes(node)) continue;
      const reconnect = after(event.at, (e) => e.kind === 'node' && e.event === 'reconnected' && e.node === node);
      const back = after(event.at, (e) => e.kind === 'fault' && e.fault === 'broker-restart' && e.target === event.target);
      const end = Math.min(reconnect ?? Infinity, back ?? Infinity);
      impairments.push({ node, cause: 'broker', since: event, from: event.at, to: end + settle });
    }
  }

  const merged = new Map<string, Interval[]>();
  for (const node of nodes) merged.set(node, union(impairments.filter((i) => i.node === node)));
  const impairedOf = (node: string): readonly Interval[] => merged.get(node) ?? [];
  const connectedWithin = (a: string, b: string, window: Interval): Interval[] =>
    a === b ? subtract(window, []) : subtract(window, [...impairedOf(a), ...impairedOf(b)]);
  return {
    impairments,
    impairedOf,
    impaired: (node, t) => covers(impairedOf(node), t),
    connected: (a, b, t) => a === b || (!covers(impairedOf(a), t) && !covers(impairedOf(b), t)),
    connectedWithin,
    connectedThroughout: (a, b, from, to) => {
      if (a === b) return true;
      const holes = [...impairedOf(a), ...impairedOf(b)];
      return !holes.some((h) => h.from <= to && from < h.to);
    },
    downOf: (node) => downs.get(node) ?? [],
  };
}
