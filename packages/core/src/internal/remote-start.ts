/**
 * The argument checks of `GenServer.startOn` / `spawnOn`, and their remote
 * half: a request to the node's `Distribution.spawn`. The local half starts
 * from the catalogue (`startFromCatalogue` in gen-server.ts).
 */
import { checkKey } from '../behaviour-catalogue.js';
import { isVia, type Via } from '../dest.js';
import { NodeStoppedError, SpawnError } from '../errors.js';
import type { Pid, Ref } from '../pid.js';
import type { Proc } from './process.js';
import type { Runtime } from './runtime.js';

/** Options of `GenServer.startOn` and `spawnOn`. */
export interface RemoteStartOptions {
  /** Registered on the target node before the child runs: a string is node-local there, or `via(key, name)`. */
  readonly name?: string | Via;
  /** Links the calling process to the child before the child runs (OTP's `spawn_link/4`); needs a process caller. */
  readonly link?: boolean;
  /**
   * Monitors the child from the calling process, in place before the child
   * runs (OTP's `spawn_monitor/4`): the start resolves with `{ pid, ref }`.
   * Needs a process caller.
   */
  readonly monitor?: boolean;
  /** Milliseconds for the whole start, the child's `init` included. Default 5000; finite, > 0. */
  readonly timeout?: number;
}

/** The default of {@link RemoteStartOptions.timeout}, in ms. */
export const DEFAULT_SPAWN_TIMEOUT = 5000;

const OPTION_KEYS: ReadonlySet<string> = new Set(['name', 'link', 'monitor', 'timeout']);
/** Longest timer Node.js keeps (about 24.8 days). */
const MAX_TIMEOUT = 2 ** 31 - 1;

/** A checked `startOn` call. */
export interface StartOnPlan {
  readonly runtime: Runtime;
  /** The calling process; undefined when a node calls. */
  readonly proc: Proc | undefined;
  readonly node: string;
  readonly key: string;
  readonly name: string | Via | undefined;
  readonly link: boolean;
  readonly monitor: boolean;
  readonly timeout: number;
}

/** Checks a `startOn` call; throws `TypeError` naming the bad argument, `NodeStoppedError` on a stopped node. */
export function planStartOn(where: string, runtime: Runtime, proc: Proc | undefined, node: unknown, key: unknown, options: unknown): StartOnPlan {
  if (typeof node !== 'string' || node.length === 0) throw new TypeError(`${where}: node must be a non-empty string, got ${describe(node)}`);
  checkKey(where, key);
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  }
  const given = (options ?? {}) as RemoteStartOptions;
  for (const option of Object.keys(given)) {
    if (!OPTION_KEYS.has(option)) throw new TypeError(`${where}: unknown option ${JSON.stringify(option)} (known: ${[...OPTION_KEYS].join(', ')})`);
  }
  const { name, link = false, monitor = false, timeout = DEFAULT_SPAWN_TIMEOUT } = given;
  if (name !== undefined && !(typeof name === 'string' ? name.length > 0 : isVia(name))) {
    throw new TypeError(`${where}: options.name must be a non-empty string or via(key, name), got ${describe(name)}`);
  }
  if (typeof link !== 'boolean') throw new TypeError(`${where}: options.link must be a boolean, got ${describe(link)}`);
  if (typeof monitor !== 'boolean') throw new TypeError(`${where}: options.monitor must be a boolean, got ${describe(monitor)}`);
  if (typeof timeout !== 'number' || !(timeout > 0 && timeout <= MAX_TIMEOUT)) {
    throw new TypeError(`${where}: options.timeout must be a number of ms > 0 and <= ${MAX_TIMEOUT}, got ${String(timeout)}`);
  }
  if ((link || monitor) && proc === undefined) {
    throw new TypeError(`${where}: options.${link ? 'link' : 'monitor'} needs the caller to be a process, not a Node`);
  }
  if (!runtime.alive) throw new NodeStoppedError(`node ${runtime.name} is stopped`);
  return { runtime, proc, node, key, name, link, monitor, timeout };
}

/** The remote half: asks the distribution to start the child on `plan.node`. */
export async function startRemote(plan: StartOnPlan, args: unknown): Promise<Pid | { readonly pid: Pid; readonly ref: Ref }> {
  const { runtime, proc, node, key } = plan;
  const distribution = runtime.distribution;
  if (distribution?.spawn === undefined) {
    const why = distribution === undefined ? `node ${runtime.name} is not clustered` : 'its distribution cannot spawn';
    throw new SpawnError('noconnection', node, key, { detail: why });
  }
  const ref = plan.monitor ? runtime.makeRef() : undefined;
  const pid = await distribution.spawn({
    node,
    key,
    args,
    name: plan.name,
    link: plan.link ? proc!.pid : undefined,
    monitor: ref === undefined ? undefined : { watcher: proc!.pid, ref },
    timeout: plan.timeout,
  });
  return ref === undefined ? pid : { pid, ref };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}
