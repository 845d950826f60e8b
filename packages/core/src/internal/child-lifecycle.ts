import { isCleanExit, isDownMessage, isExitMessage, type ExitReason } from '../exit-reason.js';
import type { Pid } from '../pid.js';
import { TIMEOUT, type Process } from '../process.js';

export type RestartType = 'permanent' | 'transient' | 'temporary';
export type Shutdown = number | 'brutal_kill' | 'infinity';
export type ChildType = 'worker' | 'supervisor';

/** How to start and stop one child: OTP's child_spec. */
export interface ChildSpec {
  readonly id: string;
  /** Starts the child linked to `self` (the supervisor); resolves with its pid, or undefined to be ignored. */
  readonly start: (self: Process) => Promise<Pid | undefined>;
  /** Default `permanent`. */
  readonly restart?: RestartType;
  /** Default 5000 ms for a worker, `infinity` for a supervisor. */
  readonly shutdown?: Shutdown;
  /** Default `worker`. */
  readonly type?: ChildType;
}

export interface NormalizedChildSpec {
  readonly id: string;
  readonly start: (self: Process) => Promise<Pid | undefined>;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
  readonly type: ChildType;
}

/** Validates a child spec, naming the field that is wrong. */
export function normalizeChildSpec(spec: ChildSpec, where: string): NormalizedChildSpec {
  if (typeof spec !== 'object' || spec === null) throw new TypeError(`${where}: child spec must be an object`);
  if (typeof spec.id !== 'string' || spec.id.length === 0) throw new TypeError(`${where}: child spec id must be a non-empty string`);
  if (typeof spec.start !== 'function') throw new TypeError(`${where}: child ${spec.id}: start must be a function`);
  const restart = spec.restart ?? 'permanent';
  if (restart !== 'permanent' && restart !== 'transient' && restart !== 'temporary') {
    throw new TypeError(`${where}: child ${spec.id}: restart must be permanent, transient or temporary`);
  }
  const type = spec.type ?? 'worker';
  if (type !== 'worker' && type !== 'supervisor') throw new TypeError(`${where}: child ${spec.id}: type must be worker or supervisor`);
  const shutdown = spec.shutdown ?? (type === 'supervisor' ? 'infinity' : 5000);
  if (shutdown !== 'brutal_kill' && shutdown !== 'infinity' && !(typeof shutdown === 'number' && shutdown >= 0)) {
    throw new TypeError(`${where}: child ${spec.id}: shutdown must be a number >= 0, 'brutal_kill' or 'infinity'`);
  }
  return { id: spec.id, start: spec.start, restart, shutdown, type };
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

export function validateIntensity(intensity: unknown, period: unknown, where: string): void {
  if (!(typeof intensity === 'number' && Number.isInteger(intensity) && intensity >= 0)) {
    throw new TypeError(`${where}: intensity must be an integer >= 0`);
  }
  if (!(typeof period === 'number' && period > 0)) throw new TypeError(`${where}: period must be a number of ms > 0`);
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
