/**
 * The IPC protocol between a test process and the node processes it forks
 * (`startNodeProcesses`). Every message is plain JSON (the default `json`
 * serialisation of `child_process.fork`); pids travel as their fields.
 *
 * parent -> child: one `start` first, then `request`s.
 * child -> parent: `ready` or `failed` once, `reply` per request, and
 * unsolicited `event`s (membership changes as the child's node sees them)
 * and `custom` events (what the setup module emits, see {@link ChildSetupSpec}).
 */
import type { Node } from '@roster/core';

/**
 * Where a child keeps its AmqpTransport, on `globalThis`, for its setup
 * module (the cluster does not expose its transport): e.g. the chaos agent
 * reads `.broker`, the URL of the current connection, on each reconnect.
 */
export const CHILD_TRANSPORT: unique symbol = Symbol.for('@roster/testkit/node-process-transport');

/** A pid as its fields: rebuild it with `new Pid(node, creation, id)`. */
export interface PidFields {
  readonly node: string;
  readonly creation: string;
  readonly id: number;
}

/** A name registry to install in the child: `new (await import(module))[exportName](options)`. */
export interface ChildRegistrySpec {
  /** The `via` key to install it under. */
  readonly key: string;
  /** A module specifier the child can import, e.g. `@roster/globals`. */
  readonly module: string;
  /** The exported class (or factory, with `construct: false`). */
  readonly exportName: string;
  /** Passed as the only argument. Must be JSON. */
  readonly options?: unknown;
  /** `true` (default): `new Export(options)`; `false`: `Export(options)`. */
  readonly construct?: boolean;
}

/**
 * User code a child runs once its node has started: the child imports
 * `module` and awaits `module[exportName](node, args, emit)`; a throw (or
 * rejection) makes the start fail with that error. The same module's
 * function exports are what the `invoke` command calls, as
 * `fn(node, args, emit)`.
 *
 * `module` is an absolute file path (`.ts` works: children run under tsx
 * from sources), a `file:` URL, or a bare specifier the child can resolve
 * (a workspace package). A relative path is refused: the child would not
 * resolve it from the caller's directory. From a test file:
 * `fileURLToPath(new URL('./fixtures/x.ts', import.meta.url))`.
 */
export interface ChildSetupSpec {
  readonly module: string;
  /** The function export to run at start. Default `setup`. */
  readonly exportName?: string;
  /** Its second argument. Must be JSON. */
  readonly args?: unknown;
}

/**
 * How setup code speaks first: `emit(event, data)` posts a `custom` event to
 * the parent (`NodeProcess` emits `'custom'` with `(event, data)`). `data`
 * must be JSON (a pid travels as its key string). Events emitted before the
 * parent has the child's handle (during `setup`) are still delivered to
 * `StartNodeProcessesOptions.onCustomEvent`. A no-op once the parent is gone.
 */
export type NodeProcessEmit = (event: string, data?: unknown) => void;

/**
 * The shape of a setup module's exports, the start function and the
 * invokable ones alike: `(node, args, emit)`, resolving to a JSON value
 * (`undefined` arrives as `null`).
 */
export type NodeProcessSetupFunction = (node: Node, args: any, emit: NodeProcessEmit) => unknown;

/**
 * `code` of the errors the child raises for `invoke` (besides what the
 * called function throws): `no_setup` (the child was started without
 * `setup`), `no_such_export` (the setup module exports no function `fn`).
 */
export type NodeProcessInvokeErrorCode = 'no_setup' | 'no_such_export';

export interface ChildStartOptions {
  readonly name: string;
  readonly amqpUrls: readonly string[];
  readonly clusterId: string;
  readonly secret?: string;
  readonly heartbeatInterval?: number;
  readonly failureTimeout?: number;
  readonly joinWindow?: number;
  readonly maxFrameBytes?: number;
  /** `'observer'`: a node that watches, never votes and holds no names. */
  readonly role?: 'member' | 'observer';
  readonly registries?: readonly ChildRegistrySpec[];
  /** AmqpTransport options besides `urls` (JSON only: no logger). */
  readonly amqp?: Readonly<Record<string, unknown>>;
  /** User code to run after `Node.start` resolves (see {@link ChildSetupSpec}). */
  readonly setup?: ChildSetupSpec;
}

/** What a child can be asked to do. */
export type NodeProcessCommand =
  /** Starts an echo GenServer (see `echo` below); optionally registered under a node-local name. */
  | { readonly cmd: 'spawnEcho'; readonly localName?: string }
  /** Registers `pid` (default: a fresh echo server) under `name` in the registry installed as `key`. */
  | { readonly cmd: 'register'; readonly key: string; readonly name: string; readonly pid?: PidFields }
  | { readonly cmd: 'unregister'; readonly key: string; readonly name: string }
  /** `whereisName` in the registry `key`, or a node-local name without `key`. */
  | { readonly cmd: 'whereis'; readonly key?: string; readonly name: string }
  /** A GenServer call from the child's node; the reply must be JSON. */
  | { readonly cmd: 'call'; readonly to: PidFields; readonly request: unknown; readonly timeout?: number }
  /** Sends an exit signal from the child's node to `to` (a local or remote pid). */
  | { readonly cmd: 'exitProcess'; readonly to: PidFields; readonly reason: unknown }
  /** The live members the child's node sees. */
  | { readonly cmd: 'nodes' }
  /** Every name the registry `key` holds now (`registered()`), each with its `whereisName`. */
  | { readonly cmd: 'registered'; readonly key: string }
  /**
   * The same, as it was at the instant `Node.start` resolved in the child
   * (taken synchronously then, before anything else ran): what a joining or
   * restarted node knew when it started.
   */
  | { readonly cmd: 'startSnapshot'; readonly key: string }
  /**
   * Calls the function `fn` the setup module exports, as `fn(node, args,
   * emit)`, and replies what it resolves to (JSON). Fails with code
   * `no_setup` or `no_such_export` (see {@link NodeProcessInvokeErrorCode}),
   * or with what `fn` threw.
   */
  | { readonly cmd: 'invoke'; readonly fn: string; readonly args?: unknown }
  /** Stops the node gracefully (`node.stop()`), then the process exits 0. */
  | { readonly cmd: 'stop' }
  /** `process.exit(code)` at once, without stopping the node (peers notice by timeout). */
  | { readonly cmd: 'exit'; readonly code?: number };

/** A registered name and the pid it resolves to (`null`: it no longer resolves). */
export interface NamedPid {
  readonly name: unknown;
  readonly pid: PidFields | null;
}

export interface NodeProcessResults {
  spawnEcho: PidFields;
  register: 'yes' | 'no';
  unregister: null;
  whereis: PidFields | null;
  call: unknown;
  exitProcess: null;
  nodes: string[];
  registered: NamedPid[];
  startSnapshot: NamedPid[];
  invoke: unknown;
  stop: null;
  exit: null;
}

export type ParentMessage =
  | { readonly type: 'start'; readonly options: ChildStartOptions }
  | { readonly type: 'request'; readonly id: number; readonly command: NodeProcessCommand };

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly reason?: unknown;
}

export type ChildMessage =
  | { readonly type: 'ready'; readonly name: string; readonly creation: string }
  | { readonly type: 'failed'; readonly error: SerializedError }
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: SerializedError }
  | { readonly type: 'event'; readonly event: 'nodeup' | 'nodedown'; readonly node: string }
  /** What setup code emitted (`emit(event, data)`); `data` is `null` when it gave none. */
  | { readonly type: 'custom'; readonly event: string; readonly data: unknown };
