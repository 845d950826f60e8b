import { SupervisorError } from '../errors.js';
import { formatReason, isCleanExit, isDownMessage, isExitMessage, type ExitReason } from '../exit-reason.js';
import { Pid } from '../pid.js';
import { TIMEOUT, type Process } from '../process.js';

export type RestartType = 'permanent' | 'transient' | 'temporary';
export type Shutdown = number | 'brutal_kill' | 'infinity';
export type ChildType = 'worker' | 'supervisor';

/** What a child's `start` resolves with: its pid, or `'ignore'` / undefined when it chose not to run (OTP's `ignore`). */
export type ChildStartResult = Pid | 'ignore' | undefined;

/**
 * How to start and stop one child: OTP's child_spec, as a plain object. Only
 * `id` and `start` are required; the rest take OTP's defaults.
 */
export interface ChildSpec {
  readonly id: string;
  /** Starts the child linked to `self` (the supervisor); resolves with its pid, or `'ignore'` (or undefined) to be ignored. */
  readonly start: (self: Process) => Promise<ChildStartResult>;
  /** Default `permanent`. */
  readonly restart?: RestartType;
  /** Milliseconds (an integer >= 0), `brutal_kill` or `infinity`. Default 5000 for a worker, `infinity` for a supervisor. */
  readonly shutdown?: Shutdown;
  /** Default `worker`. */
  readonly type?: ChildType;
  /**
   * Whether the child's own exit may shut the supervisor down under its
   * `autoShutdown` (OTP 24). Only for `transient` and `temporary` children of a
   * supervisor whose `autoShutdown` is not `never`. Default false.
   */
  readonly significant?: boolean;
}

/** A child spec with every default filled in (what `getChildSpec` answers). */
export interface NormalizedChildSpec {
  readonly id: string;
  readonly start: (self: Process) => Promise<ChildStartResult>;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
  readonly type: ChildType;
  readonly significant: boolean;
}

const CHILD_SPEC_KEYS = new Set(['id', 'start', 'restart', 'shutdown', 'type', 'significant']);

/**
 * Validates a child spec as OTP's `check_childspec` does and fills in the
 * defaults; throws `SupervisorError('invalid_child_spec')` naming the bad
 * field. `significantAllowed` is false under `autoShutdown: 'never'`.
 */
export function normalizeChildSpec(spec: unknown, where: string, significantAllowed = true): NormalizedChildSpec {
  const invalid = (id: unknown, field: string, detail: string): SupervisorError =>
    new SupervisorError('invalid_child_spec', id, { field, detail: `${where}: ${detail}` });
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw invalid(undefined, 'spec', `a child spec must be an object, got ${describe(spec)}`);
  }
  const fields = spec as Record<string, unknown>;
  const id = fields['id'];
  if (typeof id !== 'string' || id.length === 0) throw invalid(id, 'id', `id must be a non-empty string, got ${describe(id)}`);
  for (const key of Object.keys(fields)) {
    if (!CHILD_SPEC_KEYS.has(key)) throw invalid(id, key, `unknown child spec field ${JSON.stringify(key)}`);
  }
  const start = fields['start'];
  if (typeof start !== 'function') throw invalid(id, 'start', `start must be a function, got ${describe(start)}`);
  const restart = orDefault(fields['restart'], 'permanent');
  if (restart !== 'permanent' && restart !== 'transient' && restart !== 'temporary') {
    throw invalid(id, 'restart', `restart must be permanent, transient or temporary, got ${describe(restart)}`);
  }
  const type = orDefault(fields['type'], 'worker');
  if (type !== 'worker' && type !== 'supervisor') throw invalid(id, 'type', `type must be worker or supervisor, got ${describe(type)}`);
  const shutdown = orDefault(fields['shutdown'], type === 'supervisor' ? 'infinity' : 5000);
  if (shutdown !== 'brutal_kill' && shutdown !== 'infinity' && !(Number.isInteger(shutdown) && (shutdown as number) >= 0)) {
    throw invalid(id, 'shutdown', `shutdown must be an integer of ms >= 0, 'brutal_kill' or 'infinity', got ${describe(shutdown)}`);
  }
  const significant = orDefault(fields['significant'], false);
  if (typeof significant !== 'boolean') throw invalid(id, 'significant', `significant must be a boolean, got ${describe(significant)}`);
  if (significant && restart === 'permanent') {
    throw invalid(id, 'significant', 'a permanent child cannot be significant (only transient and temporary ones)');
  }
  if (significant && !significantAllowed) {
    throw invalid(id, 'significant', "a significant child needs autoShutdown 'any_significant' or 'all_significant'");
  }
  return { id, start: start as NormalizedChildSpec['start'], restart, shutdown: shutdown as Shutdown, type, significant };
}

/** A field's value, or its default when it is absent (null is a value, and refused like any other wrong one). */
export function orDefault<T>(value: unknown, fallback: T): unknown {
  return value === undefined ? fallback : value;
}

/** A value as an error message shows it. */
export function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return formatReason(value);
  } catch {
    return String(value);
  }
}

/**
 * Runs a child's `start`: its pid, or undefined when it answered `ignore`.
 * Anything else it resolves with is a start failure (`{ bad_return_value }`), as in OTP.
 */
export async function startChildProcess(spec: NormalizedChildSpec, self: Process): Promise<Pid | undefined> {
  const started: unknown = await spec.start(self);
  if (started instanceof Pid) return started;
  if (started === undefined || started === 'ignore') return undefined;
  throw { bad_return_value: started };
}

/** Whether a child that exited with `reason` is restarted under its restart type. */
export function shouldRestart(restart: RestartType, reason: ExitReason): boolean {
  if (restart === 'permanent') return true;
  if (restart === 'temporary') return false;
  return !isCleanExit(reason);
}

/**
 * Restart intensity: at most `intensity` restarts within `period` ms; one
 * more and the supervisor gives up.
 */
export class RestartIntensity {
  #restarts: number[] = [];

  constructor(
    readonly intensity: number,
    readonly period: number,
  ) {}

  /** Records a restart; false when it exceeds the intensity. */
  add(): boolean {
    const now = performance.now();
    this.#restarts.push(now);
    const since = now - this.period;
    while (this.#restarts.length > 0 && this.#restarts[0]! <= since) this.#restarts.shift();
    return this.#restarts.length <= this.intensity;
  }
}

/**
 * Stops one child the way OTP's supervisor does: monitor, unlink (taking an
 * EXIT that already came), then `shutdown` and wait up to the deadline, then
 * `kill`. Resolves with the reason the child exited with.
 */
export async function shutdownChild(self: Process, pid: Pid, shutdown: Shutdown): Promise<ExitReason> {
  const ref = self.monitor(pid);
  self.unlink(pid);
  const exited = await self.receive((message) => isExitMessage(message) && message.from.equals(pid), 0);
  const waitDown = async (timeoutMs: number): Promise<ExitReason | typeof TIMEOUT> => {
    const down = await self.receive((message) => isDownMessage(message) && message.ref.equals(ref), timeoutMs);
    return down === TIMEOUT ? TIMEOUT : (down as { reason: ExitReason }).reason;
  };
  if (exited !== TIMEOUT) {
    await waitDown(Infinity);
    return (exited as { reason: ExitReason }).reason;
  }
  if (shutdown === 'brutal_kill') {
    self.exit(pid, 'kill');
    return waitDown(Infinity);
  }
  self.exit(pid, 'shutdown');
  const reason = await waitDown(shutdown === 'infinity' ? Infinity : shutdown);
  if (reason !== TIMEOUT) return reason;
  self.exit(pid, 'kill');
  return waitDown(Infinity);
}

/**
 * Stops several children at once (a dynamic supervisor's shutdown): each gets
 * `shutdown` (or `kill` for `brutal_kill`) right away, and each is killed at
 * its own deadline. One receive loop serves them all, since a process can wait
 * in only one receive at a time.
 */
export async function shutdownChildren(self: Process, children: readonly { readonly pid: Pid; readonly shutdown: Shutdown }[]): Promise<void> {
  const waiting = new Map<string, { readonly pid: Pid; deadline: number }>();
  for (const { pid, shutdown } of children) {
    const ref = self.monitor(pid);
    self.unlink(pid);
    const exited = await self.receive((message) => isExitMessage(message) && message.from.equals(pid), 0);
    let deadline = Infinity;
    if (exited === TIMEOUT) {
      self.exit(pid, shutdown === 'brutal_kill' ? 'kill' : 'shutdown');
      if (typeof shutdown === 'number') deadline = performance.now() + shutdown;
    }
    waiting.set(ref.key, { pid, deadline });
  }
  while (waiting.size > 0) {
    let next = Infinity;
    for (const { deadline } of waiting.values()) next = Math.min(next, deadline);
    const down = await self.receive(
      (message) => isDownMessage(message) && waiting.has(message.ref.key),
      next === Infinity ? Infinity : Math.max(0, next - performance.now()),
    );
    if (down !== TIMEOUT) {
      waiting.delete((down as { ref: { key: string } }).ref.key);
      continue;
    }
    const now = performance.now();
    for (const entry of waiting.values()) {
      if (entry.deadline > now) continue;
      entry.deadline = Infinity;
      self.exit(entry.pid, 'kill');
    }
  }
}
