/**
 * The history of a chaos run, Jepsen's way: every operation a client invoked
 * on a roster node, with the window in which it took effect (from its
 * invocation to its completion), and everything else that happened around
 * it: process deaths, node kills and restarts, the faults the nemesis
 * injected, and periodic snapshots of every node's name table.
 *
 * A history is plain JSON (`chaos-history.json` under `bench/results/`):
 * {@link History} is what the checker (`checker.ts`) and the report
 * (`report.ts`) read, {@link parseHistory} checks a file's shape, and
 * {@link HistoryRecorder} is how a runner writes one.
 *
 * **Time**: every timestamp is milliseconds on one clock (`Date.now()` of
 * one machine: the runner and its node processes share it).
 *
 * **Pids** travel as their string form `<node.creation.id>` ({@link PidString}),
 * so the node a pid lives on, and its incarnation, can be read off it.
 *
 * @module
 */

/** Milliseconds on the run's one clock. */
export type Millis = number;

/** A pid's string form, `<node.creation.id>` (`Pid#key`). */
export type PidString = string;

/** What a client asked a node. */
export type OpKind = 'register' | 'unregister' | 'whereis' | 'call';

interface OpBase {
  readonly kind: 'op';
  /** Unique within the history. */
  readonly id: number;
  /** The roster node the client asked (Jepsen's `process`). */
  readonly process: string;
  /** The global name the operation is about. */
  readonly name: string;
  /** When the client sent it. */
  readonly invokeAt: Millis;
  /** When its answer arrived; `null` when it never did (indeterminate: it may or may not have taken effect). */
  readonly completeAt: Millis | null;
  /** What went wrong, when `result` is `'error'` (an error code or message). */
  readonly error?: string;
  /**
   * A read of the final state: taken after the nemesis stopped, every fault
   * was healed, every node was up again and the run settled. The checker's
   * `lost_holder` rule reads these.
   */
  readonly final?: boolean;
}

/** `registerName(name, pid)` on `process` (the pid's own node: globals registers local pids only). */
export interface RegisterOp extends OpBase {
  readonly op: 'register';
  /** The pid being registered. */
  readonly pid: PidString;
  /** `error`: the registry failed it (e.g. `RegistryUnavailableError`) or no answer came. */
  readonly result: 'yes' | 'no' | 'error';
}

/** `unregisterName(name)` on `process` (any node may unregister any name). */
export interface UnregisterOp extends OpBase {
  readonly op: 'unregister';
  readonly result: 'ok' | 'error';
}

/** `whereisName(name)` on `process`: a local read. */
export interface WhereisOp extends OpBase {
  readonly op: 'whereis';
  /** The pid it resolved to, `null` for none, `'error'` when the read itself failed. */
  readonly result: PidString | null | 'error';
}

/** A GenServer call by name from `process`. */
export interface CallOp extends OpBase {
  readonly op: 'call';
  /** `'ok'` with `reply`, or `'error'` (`error` says which: `noproc`, `timeout`, `noconnection` …). */
  readonly result: 'ok' | 'error';
  /** The reply, when `ok`. */
  readonly reply?: unknown;
  /** The pid that answered, when the reply says. */
  readonly pid?: PidString;
}

export type Operation = RegisterOp | UnregisterOp | WhereisOp | CallOp;

/** A process died (any reason; `{ name_conflict: … }` is how a loser is told). */
export interface DeathEvent {
  readonly kind: 'death';
  readonly pid: PidString;
  /** When it died, as close as the recorder knows (the monitor's DOWN in the pid's own node, or the kill). */
  readonly at: Millis;
  /** The exit reason, formatted. */
  readonly reason?: string;
}

/**
 * What happened to a roster node, as observed: `kill` (SIGKILL sent: every
 * process of that incarnation is dead from `at`), `stop` (graceful stop
 * asked), `restart` (a new incarnation is ready: `Node.start` resolved and
 * its setup ran), `reconnected` (its transport opened a new broker
 * connection, e.g. after a failover).
 */
export interface NodeEvent {
  readonly kind: 'node';
  readonly event: 'kill' | 'stop' | 'restart' | 'reconnected';
  readonly node: string;
  readonly at: Millis;
  /** The incarnation: the one killed or stopped, or the new one on `restart`. */
  readonly creation?: string;
  /** On `restart` and `reconnected`: the index of the broker the node is now connected to, when known. */
  readonly broker?: number;
}

/** What the nemesis can do. */
export type FaultKind = 'kill-node' | 'restart-node' | 'broker-kill' | 'broker-restart' | 'cut' | 'blackhole' | 'delay' | 'heal';

/**
 * A fault the nemesis injected (or healed), at the moment it acted.
 * `target` is a roster node name (`kill-node`, `restart-node`, and the link
 * faults `cut`, `blackhole`, `delay`, `heal`; `heal` also takes `'all'`) or
 * a broker id (`broker-kill`, `broker-restart`).
 */
export interface FaultEvent {
  readonly kind: 'fault';
  readonly fault: FaultKind;
  readonly target: string;
  readonly at: Millis;
  /**
   * The roster nodes whose broker link this fault breaks, when the recorder
   * knows (a broker fault: the nodes connected to that broker then).
   * Without it, a broker fault is taken to affect every node.
   */
  readonly affects?: readonly string[];
  /** A `delay`'s latency, in ms. */
  readonly ms?: number;
}

export type HistoryEvent = Operation | DeathEvent | NodeEvent | FaultEvent;

/**
 * Every node's name table at (about) one moment: the runner asks all nodes
 * at `at` and the last answer arrives at `endAt`. A node that did not answer
 * (down, cut off from the runner) is absent from `views`.
 */
export interface Sample {
  readonly at: Millis;
  readonly endAt: Millis;
  /** Per node: name -> the pid it resolves to there. Names a node does not resolve are absent. */
  readonly views: Readonly<Record<string, Readonly<Record<string, PidString>>>>;
}

/** What the run was: what the checker needs to know beyond the events. */
export interface HistoryMeta {
  /** Every roster node's name. */
  readonly nodes: readonly string[];
  /** How many brokers. */
  readonly brokers?: number;
  /** The cluster's `failureTimeout`, in ms (the `stale_resolution` bound). */
  readonly failureTimeout: Millis;
  /** The cluster's `heartbeatInterval`, in ms. */
  readonly heartbeatInterval?: Millis;
  /** The AmqpTransport heartbeat of the nodes, in seconds (default 5, AmqpTransport's). */
  readonly amqpHeartbeat?: number;
  /** The nemesis seed. */
  readonly seed?: number;
  readonly startedAt: Millis;
  readonly endedAt: Millis;
  /** Free-form facts about the run (versions, options). */
  readonly notes?: Readonly<Record<string, unknown>>;
}

/** A recorded chaos run. */
export interface History {
  readonly version: 1;
  readonly meta: HistoryMeta;
  /** In any order (the checker sorts what it needs). */
  readonly events: readonly HistoryEvent[];
  readonly samples?: readonly Sample[];
}

// ---- pids -------------------------------------------------------------------------------

const PID_PATTERN = /^<(.+)\.([^.<>]+)\.(\d+)>$/;

/** The node and incarnation of a pid's string form, or `undefined` when it is not one. */
export function parsePid(pid: string): { readonly node: string; readonly creation: string; readonly id: number } | undefined {
  const match = PID_PATTERN.exec(pid);
  if (match === null) return undefined;
  return { node: match[1]!, creation: match[2]!, id: Number(match[3]) };
}

/** Whether `value` is a pid's string form. */
export function isPidString(value: unknown): value is PidString {
  return typeof value === 'string' && PID_PATTERN.test(value);
}

// ---- parsing ------------------------------------------------------------------------------

const FAULT_KINDS: ReadonlySet<string> = new Set<FaultKind>(['kill-node', 'restart-node', 'broker-kill', 'broker-restart', 'cut', 'blackhole', 'delay', 'heal']);
const NODE_EVENTS: ReadonlySet<string> = new Set(['kill', 'stop', 'restart', 'reconnected']);

/** A history file that does not have the shape of {@link History}. */
export class HistoryFormatError extends Error {
  override readonly name = 'HistoryFormatError';
}

const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkEvent(raw: unknown, index: number): HistoryEvent {
  const where = `history: events[${index}]`;
  if (!isRecord(raw)) throw new HistoryFormatError(`${where} must be an object`);
  switch (raw['kind']) {
    case 'op': {
      if (typeof raw['id'] !== 'number') throw new HistoryFormatError(`${where}.id must be a number`);
      if (typeof raw['process'] !== 'string') throw new HistoryFormatError(`${where}.process must be a node name`);
      if (typeof raw['name'] !== 'string') throw new HistoryFormatError(`${where}.name must be a string`);
      if (!isTime(raw['invokeAt'])) throw new HistoryFormatError(`${where}.invokeAt must be a time`);
      if (raw['completeAt'] !== null && !isTime(raw['completeAt'])) throw new HistoryFormatError(`${where}.completeAt must be a time or null`);
      const result = raw['result'];
      switch (raw['op']) {
        case 'register':
          if (!isPidString(raw['pid'])) throw new HistoryFormatError(`${where}.pid must be a pid string`);
          if (result !== 'yes' && result !== 'no' && result !== 'error') throw new HistoryFormatError(`${where}.result must be yes, no or error`);
          break;
        case 'unregister':
          if (result !== 'ok' && result !== 'error') throw new HistoryFormatError(`${where}.result must be ok or error`);
          break;
        case 'whereis':
          if (result !== null && result !== 'error' && !isPidString(result)) throw new HistoryFormatError(`${where}.result must be a pid string, null or error`);
          break;
        case 'call':
          if (result !== 'ok' && result !== 'error') throw new HistoryFormatError(`${where}.result must be ok or error`);
          break;
        default:
          throw new HistoryFormatError(`${where}.op must be register, unregister, whereis or call, got ${String(raw['op'])}`);
      }
      return raw as unknown as Operation;
    }
    case 'death':
      if (!isPidString(raw['pid'])) throw new HistoryFormatError(`${where}.pid must be a pid string`);
      if (!isTime(raw['at'])) throw new HistoryFormatError(`${where}.at must be a time`);
      return raw as unknown as DeathEvent;
    case 'node':
      if (!NODE_EVENTS.has(raw['event'] as string)) throw new HistoryFormatError(`${where}.event must be kill, stop, restart or reconnected`);
      if (typeof raw['node'] !== 'string') throw new HistoryFormatError(`${where}.node must be a node name`);
      if (!isTime(raw['at'])) throw new HistoryFormatError(`${where}.at must be a time`);
      return raw as unknown as NodeEvent;
    case 'fault':
      if (!FAULT_KINDS.has(raw['fault'] as string)) throw new HistoryFormatError(`${where}.fault must be one of ${[...FAULT_KINDS].join(', ')}`);
      if (typeof raw['target'] !== 'string') throw new HistoryFormatError(`${where}.target must be a string`);
      if (!isTime(raw['at'])) throw new HistoryFormatError(`${where}.at must be a time`);
      if (raw['affects'] !== undefined && !(Array.isArray(raw['affects']) && raw['affects'].every((n) => typeof n === 'string'))) {
        throw new HistoryFormatError(`${where}.affects must be a list of node names`);
      }
      return raw as unknown as FaultEvent;
    default:
      throw new HistoryFormatError(`${where}.kind must be op, death, node or fault, got ${String(raw['kind'])}`);
  }
}

/** Checks that `raw` (a parsed `chaos-history.json`) has the shape of a {@link History}; throws a {@link HistoryFormatError} naming the first bad field. */
export function parseHistory(raw: unknown): History {
  if (!isRecord(raw)) throw new HistoryFormatError('history: must be an object');
  if (raw['version'] !== 1) throw new HistoryFormatError(`history: version must be 1, got ${String(raw['version'])}`);
  const meta = raw['meta'];
  if (!isRecord(meta)) throw new HistoryFormatError('history: meta must be an object');
  if (!Array.isArray(meta['nodes']) || !meta['nodes'].every((n) => typeof n === 'string')) throw new HistoryFormatError('history: meta.nodes must be a list of node names');
  if (!isTime(meta['failureTimeout']) || meta['failureTimeout'] <= 0) throw new HistoryFormatError('history: meta.failureTimeout must be a number of ms > 0');
  if (!isTime(meta['startedAt']) || !isTime(meta['endedAt'])) throw new HistoryFormatError('history: meta.startedAt and meta.endedAt must be times');
  if (!Array.isArray(raw['events'])) throw new HistoryFormatError('history: events must be a list');
  const events = raw['events'].map(checkEvent);
  const ids = new Set<number>();
  for (const event of events) {
    if (event.kind !== 'op') continue;
    if (ids.has(event.id)) throw new HistoryFormatError(`history: two operations have id ${event.id}`);
    ids.add(event.id);
  }
  const samples = raw['samples'];
  if (samples !== undefined) {
    if (!Array.isArray(samples)) throw new HistoryFormatError('history: samples must be a list');
    samples.forEach((sample: unknown, index) => {
      if (!isRecord(sample) || !isTime(sample['at']) || !isTime(sample['endAt']) || !isRecord(sample['views'])) {
        throw new HistoryFormatError(`history: samples[${index}] must be { at, endAt, views }`);
      }
    });
  }
  return raw as unknown as History;
}

// ---- recording ----------------------------------------------------------------------------

interface Pending {
  readonly kind: 'op';
  readonly id: number;
  readonly op: OpKind;
  readonly process: string;
  readonly name: string;
  readonly invokeAt: Millis;
  readonly pid?: PidString;
  readonly final?: true;
}

/** The completion of an operation a {@link HistoryRecorder} opened. */
export interface OpHandle<O extends Operation> {
  readonly id: number;
  /** Records the answer (at the recorder's clock now). Once only; later calls are ignored. */
  complete(result: O['result'], extra?: { readonly error?: string; readonly reply?: unknown; readonly pid?: PidString }): void;
}

/** Options of {@link HistoryRecorder}. */
export interface HistoryRecorderOptions {
  /** The clock. Default `Date.now`. */
  readonly now?: () => Millis;
}

/**
 * Builds a {@link History} as a run goes: `invoke` stamps an operation's
 * invocation and returns a handle whose `complete` stamps its answer;
 * operations never completed are written with `completeAt: null` and
 * `result: 'error'` (indeterminate).
 */
export class HistoryRecorder {
  readonly #now: () => Millis;
  readonly #events: HistoryEvent[] = [];
  readonly #open = new Map<number, Pending>();
  readonly #samples: Sample[] = [];
  #nextId = 1;

  constructor(options: HistoryRecorderOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  now(): Millis {
    return this.#now();
  }

  /** Opens an operation; `fields.pid` is required for `register`. */
  invoke<K extends OpKind>(
    op: K,
    fields: { readonly process: string; readonly name: string; readonly pid?: PidString; readonly final?: boolean },
  ): OpHandle<Extract<Operation, { op: K }>> {
    const id = this.#nextId++;
    const pending = {
      kind: 'op',
      id,
      op,
      process: fields.process,
      name: fields.name,
      invokeAt: this.#now(),
      ...(fields.pid === undefined ? {} : { pid: fields.pid }),
      ...(fields.final === true ? { final: true } : {}),
    } satisfies Pending;
    this.#open.set(id, pending);
    return {
      id,
      complete: (result, extra = {}) => {
        const open = this.#open.get(id);
        if (open === undefined) return;
        this.#open.delete(id);
        const done = {
          ...open,
          completeAt: this.#now(),
          result,
          ...(extra.error === undefined ? {} : { error: extra.error }),
          ...(extra.reply === undefined ? {} : { reply: extra.reply }),
          ...(extra.pid === undefined ? {} : { pid: extra.pid }),
        } as Operation;
        this.#events.push(done);
      },
    };
  }

  death(pid: PidString, reason?: string, at: Millis = this.#now()): void {
    this.#events.push(reason === undefined ? { kind: 'death', pid, at } : { kind: 'death', pid, at, reason });
  }

  node(event: NodeEvent['event'], node: string, creation?: string, at: Millis = this.#now(), broker?: number): void {
    this.#events.push({ kind: 'node', event, node, at, ...(creation === undefined ? {} : { creation }), ...(broker === undefined ? {} : { broker }) });
  }

  fault(fault: FaultKind, target: string, extra: { readonly affects?: readonly string[]; readonly ms?: number } = {}, at: Millis = this.#now()): void {
    this.#events.push({ kind: 'fault', fault, target, at, ...extra });
  }

  sample(sample: Sample): void {
    this.#samples.push(sample);
  }

  /** Operations invoked and not yet completed. */
  get openCount(): number {
    return this.#open.size;
  }

  /** The history so far; operations still open are written as indeterminate. */
  history(meta: Omit<HistoryMeta, 'endedAt'> & { readonly endedAt?: Millis }): History {
    const open = [...this.#open.values()].map((pending) => ({ ...pending, completeAt: null, result: 'error', error: 'indeterminate' }) as Operation);
    const events = [...this.#events, ...open].sort((a, b) => startOf(a) - startOf(b));
    return { version: 1, meta: { ...meta, endedAt: meta.endedAt ?? this.#now() }, events, samples: [...this.#samples] };
  }
}

/** When an event began: an operation's invocation, anything else's `at`. */
export function startOf(event: HistoryEvent): Millis {
  return event.kind === 'op' ? event.invokeAt : event.at;
}
