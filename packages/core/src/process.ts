import type { Dest } from './dest.js';
import type { ExitReason } from './exit-reason.js';
import type { Pid, Ref } from './pid.js';
import type { Logger } from 'pino';

/** What `receive` resolves with when its timeout passed first. */
export const TIMEOUT: unique symbol = Symbol.for('roster.timeout');
export type Timeout = typeof TIMEOUT;

export type Matcher<T> = ((message: unknown) => message is T) | ((message: unknown) => boolean);

export interface CallOptions {
  /** Milliseconds before the call fails with `CallError('timeout')`; `Infinity` waits forever. Default 5000. */
  readonly timeout?: number;
}

export interface SpawnOptions {
  /** Link the new process to the spawning one (only from inside a process). */
  readonly link?: boolean;
  /** Register the new process under this node-local name (throws `BadArgError` when taken). */
  readonly name?: string;
  /** Start trapping exits before the body runs. */
  readonly trapExit?: boolean;
}

/** A process body: an async function with selective receive. */
export type ProcessBody = (self: Process) => unknown;

/**
 * A running process, as its own code sees it (`self`). Everything a process
 * does to others (links, monitors, exits) is done through it, so the runtime
 * always knows who did it.
 */
export interface Process {
  readonly pid: Pid;
  // `node`, the Node this process runs on, is declared in node.ts: a Node
  // spawns processes and a process names its Node, and declaring that member
  // beside the class keeps this contract from importing node.ts back.
  readonly logger: Logger;

  /**
   * The next message, or the first one `match` accepts, leaving the others in
   * the mailbox in order. With `timeoutMs`, resolves with `TIMEOUT` if nothing
   * matched in time (`0` polls).
   */
  receive(): Promise<unknown>;
  receive<T>(match: (message: unknown) => message is T): Promise<T>;
  receive(match: ((message: unknown) => boolean) | undefined): Promise<unknown>;
  receive<T>(match: (message: unknown) => message is T, timeoutMs: number): Promise<T | Timeout>;
  receive(match: ((message: unknown) => boolean) | undefined, timeoutMs: number): Promise<unknown>;

  send(dest: Dest, message: unknown): void;
  call<R = unknown>(dest: Dest, request: unknown, options?: CallOptions): Promise<R>;
  cast(dest: Dest, message: unknown): void;

  link(pid: Pid): void;
  unlink(pid: Pid): void;
  monitor(dest: Dest): Ref;
  /** Removes a monitor; with `flush`, also a `DOWN` for it already in the mailbox. */
  demonitor(ref: Ref, options?: { readonly flush?: boolean }): void;

  /**
   * Monitors the connection to `node` (Erlang's `monitor_node/2`): when it
   * goes down, a `{ type: 'nodedown', node }` message arrives, once per
   * monitor, and the monitor is gone. A node not connected now is reported
   * down at once. Called twice, it is two monitors; `on = false` takes one
   * away. This node itself never goes down.
   */
  monitorNode(node: string, on?: boolean): void;
  /**
   * Subscribes to every member coming up and going down (Erlang's
   * `net_kernel:monitor_nodes/1`): `{ type: 'nodeup', node }` and
   * `{ type: 'nodedown', node }` messages, until `monitorNodes(false)` or
   * this process exits. Each subscription gets its own copy.
   */
  monitorNodes(on: boolean): void;

  /** Sets whether exit signals arrive as `EXIT` messages; returns the previous setting. */
  trapExit(trap: boolean): boolean;
  readonly trappingExits: boolean;

  /** Exits this process with `reason` (never returns). */
  exit(reason: ExitReason): never;
  /** Sends an exit signal to `dest` (Erlang's `exit/2`). */
  exit(dest: Dest, reason: ExitReason): void;

  spawn(body: ProcessBody, options?: SpawnOptions): Pid;
  spawnLink(body: ProcessBody, options?: Omit<SpawnOptions, 'link'>): Pid;
  /**
   * Spawns a process monitored by this one, atomically (Erlang's
   * `spawn_monitor/1`): the monitor is in place before the body runs, so
   * its one `DOWN` always comes.
   */
  spawnMonitor(body: ProcessBody, options?: Omit<SpawnOptions, 'link'>): { readonly pid: Pid; readonly ref: Ref };

  /** Sends `message` to `dest` after `ms`; the returned function cancels it. */
  sendAfter(dest: Dest, message: unknown, ms: number): () => void;
}
