import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FrameHeap, type QueuedFrame } from './memory-queue.js';
import { MemoryTransportError } from './memory-errors.js';
import { SeededRandom } from './seeded-random.js';

/**
 * Faults a {@link MemoryBroker} injects into every frame handed to it after
 * they are set. Omitted fields are off. All randomness comes from the
 * broker's one seeded generator, so a seed replays the same faults.
 */
export interface FaultOptions {
  /**
   * Latency range `[min, max]` in (virtual) milliseconds, drawn uniformly per
   * frame in whole-millisecond steps above `min`. Latency alone never
   * reorders a sender-receiver pair: a frame is never due before the previous
   * frame of the same pair (use `reorderRate` for that).
   */
  readonly delayMs?: readonly [min: number, max: number];
  /** Probability in [0, 1] that a frame (per destination) is silently lost. */
  readonly dropRate?: number;
  /** Probability in [0, 1] that a frame (per destination) is delivered a second time, later. */
  readonly duplicateRate?: number;
  /**
   * Probability in [0, 1] that a frame swaps places with the frame queued just
   * before it for the same destination (whatever its sender), so it arrives
   * first. Breaks per-pair FIFO on purpose.
   */
  readonly reorderRate?: number;
}

/** Options of {@link MemoryBroker}. */
export interface MemoryBrokerOptions {
  /**
   * Seed of the broker's PRNG. Default: the integer in the `ROSTER_SEED`
   * environment variable when set, otherwise a random one (see
   * {@link MemoryBroker.seed} to log it for a replay).
   */
  readonly seed?: number;
  /** Faults from the start; default none. Change later with {@link MemoryBroker.setFaults}. */
  readonly faults?: FaultOptions;
  /**
   * Wall-clock milliseconds per virtual millisecond of delay. `1` (default)
   * makes a 50 ms delay take about 50 ms of real time; `0` runs delays as
   * fast as the event loop allows. It changes only *when* frames arrive,
   * never their order.
   */
  readonly timeScale?: number;
}

/** Counters of a {@link MemoryBroker} since it was created. */
export interface MemoryBrokerStats {
  /** `send` / `broadcast` calls accepted from connected transports (one per call, before fan-out). */
  readonly sent: number;
  /** Frames handed to a receiving transport (a broadcast to 3 nodes counts 3). */
  readonly delivered: number;
  /**
   * Frames (per destination) that will never arrive: fault drops, partitions,
   * unknown or vanished destinations, frames from a down transport, frames in
   * flight from a crashed one.
   */
  readonly dropped: number;
  /** Extra copies scheduled by the duplicate fault. */
  readonly duplicated: number;
  /** Swaps performed by the reorder fault. */
  readonly reordered: number;
  /** Frames queued and not yet delivered or dropped. */
  readonly inFlight: number;
}

/** One live connection of a {@link MemoryBroker}, as {@link MemoryBroker.connections} lists it. */
export interface MemoryConnectionInfo {
  readonly cluster: string;
  readonly node: string;
  readonly address: string;
}

/**
 * What the broker calls back on a connected transport.
 * @internal
 */
export interface MemorySink {
  frame(frame: string): void;
  up(address: string): void;
  down(error: MemoryTransportError): void;
  crashed(error: MemoryTransportError): void;
}

/**
 * What a transport calls on its broker. Not part of the public API: reach it
 * with {@link memoryBrokerPort}.
 * @internal
 */
export interface MemoryBrokerPort {
  /** Joins `cluster` as `node`; returns the new, never reused address. */
  attach(sink: MemorySink, cluster: string, node: string): string;
  /** Graceful leave: frames to `address` are dropped, frames from it already queued still arrive. */
  detach(address: string): void;
  /** Forgets a transport closed while the broker held it disconnected. */
  forget(sink: MemorySink): void;
  /** Routes a frame from `from` to `to`, or to the whole cluster when `to` is undefined. */
  route(from: string, to: string | undefined, frame: string): void;
  /** Counts a frame dropped because its sender was not up. */
  dropUnsent(): void;
}

interface Endpoint {
  readonly sink: MemorySink;
  readonly cluster: string;
  readonly node: string;
  readonly address: string;
  /** Latest virtual due time per destination address, so latency never reorders a pair. */
  readonly lastDue: Map<string, number>;
  /** Last frame queued *to* this endpoint (reorder bookkeeping; only kept while reordering is on). */
  lastQueued: QueuedFrame | undefined;
}

interface Faults {
  readonly delayMin: number;
  readonly delaySpan: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly reorderRate: number;
  readonly active: boolean;
  readonly options: FaultOptions;
}

/** Frames delivered per event-loop turn at most, so I/O and timers are never starved. */
const BATCH_LIMIT = 2048;
/** Timers may fire up to about a millisecond early relative to performance.now(). */
const EARLY_TOLERANCE_MS = 1;

const NO_FAULTS: Faults = normaliseFaults(undefined);

let portOf!: (broker: MemoryBroker) => MemoryBrokerPort;

/**
 * The hidden side of a broker that {@link MemoryTransport} talks to.
 * @internal
 */
export function memoryBrokerPort(broker: MemoryBroker): MemoryBrokerPort {
  return portOf(broker);
}

/**
 * An in-process message broker for {@link MemoryTransport}s: the embedded
 * default carrier (several nodes of a cluster in one process) and the network
 * simulator of fault tests.
 *
 * Delivery is always asynchronous. Every frame is queued with a virtual due
 * time and a global sequence number and delivered strictly in `(due, seq)`
 * order by a single pump; frames due at the same virtual instant go out in one
 * batch per event-loop turn (`setImmediate`), so the fault-free path costs no
 * timer per frame. Faults (delay, drop, duplicate, reorder) are decided when a
 * frame is sent, from one seeded PRNG, and virtual time advances only as the
 * pump delivers: real timers pace *when* a batch goes out, never *which*
 * frame comes next. Hence the same seed and the same sequence of calls give
 * the same delivery order, whatever the event loop's jitter.
 *
 * Without faults delivery is FIFO per sender-receiver pair, and it stays so
 * under `delayMs` alone; only `reorderRate` (and duplicates) break it.
 *
 * Nothing is scheduled while no frame is in flight, so an idle broker never
 * keeps the process alive.
 */
export class MemoryBroker {
  static #default: MemoryBroker | undefined;

  /** The process-wide broker that `new MemoryTransport()` joins when given none. Created on first use, fault-free. */
  static get default(): MemoryBroker {
    return (MemoryBroker.#default ??= new MemoryBroker());
  }

  /** The seed of this broker's PRNG: pass it back as `seed` to replay a run. */
  readonly seed: number;
  /** Wall-clock ms per virtual ms of delay (see {@link MemoryBrokerOptions.timeScale}). */
  readonly timeScale: number;

  readonly #random: SeededRandom;
  #faults: Faults = NO_FAULTS;

  readonly #endpoints = new Map<string, Endpoint>();
  readonly #clusters = new Map<string, Map<string, Endpoint>>();
  readonly #disconnected = new Map<string, { sink: MemorySink; cluster: string }[]>();
  readonly #blocked = new Set<string>();
  #addressCounter = 0;

  readonly #queue = new FrameHeap();
  #seq = 0;
  #now = 0;
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #timeout: ReturnType<typeof setTimeout> | undefined;
  #timeoutAt = 0;
  #idleCheck: ReturnType<typeof setImmediate> | undefined;
  #idleWaiters: (() => void)[] = [];

  #sent = 0;
  #delivered = 0;
  #dropped = 0;
  #duplicated = 0;
  #reordered = 0;

  readonly #port: MemoryBrokerPort = {
    attach: (sink, cluster, node) => this.#attach(sink, cluster, node),
    detach: (address) => {
      const endpoint = this.#endpoints.get(address);
      if (endpoint !== undefined) this.#remove(endpoint, false);
    },
    forget: (sink) => {
      for (const [node, list] of this.#disconnected) {
        const rest = list.filter((entry) => entry.sink !== sink);
        if (rest.length === 0) this.#disconnected.delete(node);
        else if (rest.length !== list.length) this.#disconnected.set(node, rest);
      }
    },
    route: (from, to, frame) => this.#route(from, to, frame),
    dropUnsent: () => {
      this.#dropped++;
    },
  };

  static {
    portOf = (broker) => broker.#port;
  }

  constructor(options: MemoryBrokerOptions = {}) {
    this.seed = options.seed ?? defaultSeed();
    this.#random = new SeededRandom(this.seed);
    const timeScale = options.timeScale ?? 1;
    if (!Number.isFinite(timeScale) || timeScale < 0) {
      throw new RangeError(`timeScale must be a finite number >= 0, got ${String(timeScale)}`);
    }
    this.timeScale = timeScale;
    if (options.faults !== undefined) this.setFaults(options.faults);
  }

  /** The faults in force (a copy of what was last set). */
  get faults(): FaultOptions {
    return { ...this.#faults.options };
  }

  /**
   * Replaces the faults applied to frames sent from now on (frames already in
   * flight keep their fate). `setFaults({})` turns every fault off.
   * @throws RangeError on a rate outside [0, 1] or a bad delay range.
   */
  setFaults(faults: FaultOptions): void {
    this.#faults = normaliseFaults(faults);
  }

  /** Current virtual time in ms: the due time of the last delivered batch. */
  get virtualTime(): number {
    return this.#now;
  }

  /** A snapshot of the counters. */
  get stats(): MemoryBrokerStats {
    return {
      sent: this.#sent,
      delivered: this.#delivered,
      dropped: this.#dropped,
      duplicated: this.#duplicated,
      reordered: this.#reordered,
      inFlight: this.#queue.size,
    };
  }

  /** The live connections, in connection order, optionally of one cluster only. */
  connections(cluster?: string): MemoryConnectionInfo[] {
    const out: MemoryConnectionInfo[] = [];
    for (const e of this.#endpoints.values()) {
      if (cluster === undefined || e.cluster === cluster) out.push({ cluster: e.cluster, node: e.node, address: e.address });
    }
    return out;
  }

  /**
   * Cuts every link between a node of `groupA` and a node of `groupB` (by node
   * name, in every cluster), both ways: frames across are dropped, including
   * those already in flight when they come due. Transports stay `up`.
   * Partitions accumulate until {@link heal}.
   */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        if (a === b) continue;
        this.#blocked.add(pairKey(a, b));
        this.#blocked.add(pairKey(b, a));
      }
    }
  }

  /**
   * Heals partitions: all of them, or only the links between `groupA` and
   * `groupB` when both are given.
   */
  heal(groupA?: readonly string[], groupB?: readonly string[]): void {
    if (groupA === undefined || groupB === undefined) {
      this.#blocked.clear();
      return;
    }
    for (const a of groupA) {
      for (const b of groupB) {
        this.#blocked.delete(pairKey(a, b));
        this.#blocked.delete(pairKey(b, a));
      }
    }
  }

  /** Whether frames from node `from` to node `to` are currently cut by a partition. */
  isPartitioned(from: string, to: string): boolean {
    return this.#blocked.size !== 0 && this.#blocked.has(pairKey(from, to));
  }

  /**
   * Simulates `node` losing its broker connection: each of its connected
   * transports goes `down` (and emits `down` with a `disconnected`
   * {@link MemoryTransportError}); its address is gone, so frames in flight to
   * it are dropped, while frames it already sent still arrive. Nothing is
   * reported to other nodes. {@link reconnect} brings it back.
   */
  disconnect(node: string): void {
    for (const endpoint of [...this.#endpoints.values()]) {
      if (endpoint.node !== node) continue;
      this.#remove(endpoint, false);
      const list = this.#disconnected.get(node) ?? [];
      list.push({ sink: endpoint.sink, cluster: endpoint.cluster });
      this.#disconnected.set(node, list);
      endpoint.sink.down(new MemoryTransportError('disconnected', `memory broker: node ${node} disconnected`));
    }
  }

  /**
   * Reconnects the transports of `node` that {@link disconnect} took down (and
   * that were not closed since): each comes back `up` under a NEW address and
   * emits `up` with it.
   */
  reconnect(node: string): void {
    const list = this.#disconnected.get(node);
    if (list === undefined) return;
    this.#disconnected.delete(node);
    for (const { sink, cluster } of list) {
      const address = this.#attach(sink, cluster, node);
      sink.up(address);
    }
  }

  /**
   * Kills `node`'s transports without a word to anyone: its frames stop,
   * including those in flight from and to it, and other nodes see nothing
   * (their failure detector has to notice). The crashed transport itself goes
   * to state `closed` and, if it was up, emits `down` with a `crashed`
   * {@link MemoryTransportError}; it cannot be reconnected.
   */
  crash(node: string): void {
    const error = (): MemoryTransportError => new MemoryTransportError('crashed', `memory broker: node ${node} crashed`);
    for (const endpoint of [...this.#endpoints.values()]) {
      if (endpoint.node !== node) continue;
      this.#remove(endpoint, true);
      endpoint.sink.crashed(error());
    }
    const list = this.#disconnected.get(node);
    if (list !== undefined) {
      this.#disconnected.delete(node);
      for (const { sink } of list) sink.crashed(error());
    }
  }

  /**
   * Resolves once no frame is in flight: the queue is empty and a full
   * event-loop turn passed without anything new being sent (so handlers that
   * answer after an `await` are waited for too). Resolves only after a real
   * wait when delays are paced in real time. Never rejects.
   */
  idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#maybeIdle();
    });
  }

  // ---- connections ----------------------------------------------------

  #attach(sink: MemorySink, cluster: string, node: string): string {
    const address = `mem:${node}:${++this.#addressCounter}`;
    const endpoint: Endpoint = { sink, cluster, node, address, lastDue: new Map(), lastQueued: undefined };
    this.#endpoints.set(address, endpoint);
    let members = this.#clusters.get(cluster);
    if (members === undefined) {
      members = new Map();
      this.#clusters.set(cluster, members);
    }
    members.set(address, endpoint);
    return address;
  }

  #remove(endpoint: Endpoint, dropFrom: boolean): void {
    const { address } = endpoint;
    this.#endpoints.delete(address);
    const members = this.#clusters.get(endpoint.cluster);
    if (members !== undefined) {
      members.delete(address);
      if (members.size === 0) this.#clusters.delete(endpoint.cluster);
      else for (const other of members.values()) other.lastDue.delete(address);
    }
    endpoint.lastQueued = undefined;
    const removed = this.#queue.removeWhere((f) => f.to === address || (dropFrom && f.from === address));
    if (removed !== 0) {
      this.#dropped += removed;
      this.#reschedule();
    }
  }

  // ---- sending ----------------------------------------------------------

  #route(fromAddress: string, to: string | undefined, frame: string): void {
    const from = this.#endpoints.get(fromAddress);
    if (from === undefined) {
      this.#dropped++;
      return;
    }
    this.#sent++;
    if (to === undefined) {
      const members = this.#clusters.get(from.cluster);
      if (members !== undefined) for (const dest of members.values()) this.#enqueue(from, dest, frame);
    } else {
      const dest = this.#endpoints.get(to);
      if (dest === undefined || dest.cluster !== from.cluster) {
        this.#dropped++;
        return;
      }
      this.#enqueue(from, dest, frame);
    }
    this.#schedule();
  }

  #enqueue(from: Endpoint, dest: Endpoint, frame: string): void {
    if (this.isPartitioned(from.node, dest.node)) {
      this.#dropped++;
      return;
    }
    const faults = this.#faults;
    if (!faults.active) {
      this.#push(from, dest, frame, 0);
      return;
    }
    const random = this.#random;
    if (random.chance(faults.dropRate)) {
      this.#dropped++;
      return;
    }
    const item = this.#push(from, dest, frame, this.#drawDelay(faults));
    if (faults.reorderRate > 0) {
      const previous = dest.lastQueued;
      if (random.chance(faults.reorderRate) && previous !== undefined && !previous.done && !earlier(item, previous)) {
        // Swap payloads, not keys: the heap stays valid and the newer frame takes the earlier slot.
        const { from: pf, fromNode: pn, frame: pfr } = previous;
        previous.from = item.from;
        previous.fromNode = item.fromNode;
        previous.frame = item.frame;
        item.from = pf;
        item.fromNode = pn;
        item.frame = pfr;
        this.#reordered++;
      }
      dest.lastQueued = item;
    }
    if (random.chance(faults.duplicateRate)) {
      this.#push(from, dest, frame, this.#drawDelay(faults));
      this.#duplicated++;
    }
  }

  #drawDelay(faults: Faults): number {
    if (faults.delaySpan === 0) return faults.delayMin;
    return faults.delayMin + this.#random.int(0, faults.delaySpan);
  }

  #push(from: Endpoint, dest: Endpoint, frame: string, delay: number): QueuedFrame {
    const now = this.#now;
    let due = now + delay;
    const lastDue = from.lastDue;
    if (lastDue.size !== 0) {
      const last = lastDue.get(dest.address);
      if (last !== undefined) {
        if (last <= now) lastDue.delete(dest.address);
        else if (last > due) due = last;
      }
    }
    if (due > now) lastDue.set(dest.address, due);
    const notBefore = due > now && this.timeScale > 0 ? performance.now() + (due - now) * this.timeScale : 0;
    const item: QueuedFrame = {
      seq: this.#seq++,
      due,
      notBefore,
      to: dest.address,
      from: from.address,
      fromNode: from.node,
      frame,
      done: false,
    };
    this.#queue.push(item);
    return item;
  }

  // ---- the pump -----------------------------------------------------------

  #schedule(): void {
    const head = this.#queue.peek();
    if (head === undefined) {
      this.#maybeIdle();
      return;
    }
    if (this.#immediate !== undefined) return;
    const wait = head.notBefore === 0 ? 0 : head.notBefore - performance.now();
    if (wait <= 0) {
      if (this.#timeout !== undefined) {
        clearTimeout(this.#timeout);
        this.#timeout = undefined;
      }
      this.#immediate = setImmediate(this.#step);
      return;
    }
    if (this.#timeout !== undefined) {
      if (this.#timeoutAt <= head.notBefore) return;
      clearTimeout(this.#timeout);
    }
    this.#timeoutAt = head.notBefore;
    this.#timeout = setTimeout(this.#step, Math.ceil(wait));
  }

  #reschedule(): void {
    if (this.#timeout !== undefined) {
      clearTimeout(this.#timeout);
      this.#timeout = undefined;
    }
    this.#schedule();
  }

  readonly #step = (): void => {
    this.#immediate = undefined;
    this.#timeout = undefined;
    const queue = this.#queue;
    const head = queue.peek();
    if (head === undefined) {
      this.#maybeIdle();
      return;
    }
    if (head.notBefore !== 0 && head.notBefore - performance.now() > EARLY_TOLERANCE_MS) {
      this.#schedule();
      return;
    }
    const due = head.due;
    if (due > this.#now) this.#now = due;
    // Only frames queued before this batch started: answers sent by handlers
    // wait for the next turn, so ping-pong traffic cannot starve the loop.
    const limit = this.#seq;
    for (let n = 0; n < BATCH_LIMIT; n++) {
      const item = queue.peek();
      if (item === undefined || item.due !== due || item.seq >= limit) break;
      queue.pop();
      this.#deliver(item);
    }
    this.#schedule();
  };

  #deliver(item: QueuedFrame): void {
    item.done = true;
    const dest = this.#endpoints.get(item.to);
    if (dest === undefined || this.isPartitioned(item.fromNode, dest.node)) {
      this.#dropped++;
      return;
    }
    this.#delivered++;
    try {
      dest.sink.frame(item.frame);
    } catch (error) {
      // A throwing listener must not wedge the pump; surface it as any
      // emitter on a socket would: an uncaught exception, just a bit later.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #maybeIdle(): void {
    if (this.#idleWaiters.length === 0 || this.#idleCheck !== undefined) return;
    if (this.#queue.size !== 0 || this.#immediate !== undefined || this.#timeout !== undefined) return;
    this.#idleCheck = setImmediate(() => {
      this.#idleCheck = undefined;
      // Something sent meanwhile: the pump is armed and will come back here.
      if (this.#queue.size !== 0) return;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    });
  }
}

function pairKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

function earlier(x: QueuedFrame, y: QueuedFrame): boolean {
  return x.due < y.due || (x.due === y.due && x.seq < y.seq);
}

function checkRate(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new RangeError(`faults.${name} must be a number in [0, 1], got ${String(value)}`);
  }
  return value;
}

function normaliseFaults(faults: FaultOptions | undefined): Faults {
  const options: { -readonly [K in keyof FaultOptions]: FaultOptions[K] } = {};
  let delayMin = 0;
  let delaySpan = 0;
  if (faults?.delayMs !== undefined) {
    const [min, max] = faults.delayMs;
    if (!Number.isFinite(min) || !Number.isFinite(max) || min < 0 || max < min) {
      throw new RangeError(`faults.delayMs must be [min, max] with 0 <= min <= max, got [${String(min)}, ${String(max)}]`);
    }
    delayMin = min;
    delaySpan = Math.floor(max - min);
    options.delayMs = [min, max];
  }
  const dropRate = checkRate('dropRate', faults?.dropRate);
  const duplicateRate = checkRate('duplicateRate', faults?.duplicateRate);
  const reorderRate = checkRate('reorderRate', faults?.reorderRate);
  if (faults?.dropRate !== undefined) options.dropRate = dropRate;
  if (faults?.duplicateRate !== undefined) options.duplicateRate = duplicateRate;
  if (faults?.reorderRate !== undefined) options.reorderRate = reorderRate;
  const active = delayMin > 0 || delaySpan > 0 || dropRate > 0 || duplicateRate > 0 || reorderRate > 0;
  return { delayMin, delaySpan, dropRate, duplicateRate, reorderRate, active, options };
}

function defaultSeed(): number {
  const fromEnv = process.env['ROSTER_SEED'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const n = Number(fromEnv);
    if (Number.isSafeInteger(n)) return n;
  }
  return randomBytes(4).readUInt32LE(0);
}
