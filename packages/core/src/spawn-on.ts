/**
 * `spawnOn`: start a process on a named node by catalogue key and args
 * (OTP's `spawn/4`, `spawn_link/4`, `spawn_monitor/4`). The same call as
 * `GenServer.startOn`; the key may name a GenServer behaviour or a process
 * body in the target node's `node.behaviours`.
 *
 * **Gotchas.** Args cross the wire to another node (functions, Maps and
 * class instances cannot: `SpawnError('bad_args')`), but are passed by
 * reference when the target is this node. With `monitor: true` the promise
 * resolves to `{ pid, ref }`, not a pid.
 */
import type { MonitoredStart } from './gen-server.js';
import { startOnImpl } from './gen-server.js';
import type { RemoteStartOptions } from './internal/remote-start.js';
import type { Node } from './node.js';
import type { Pid } from './pid.js';
import type { Process } from './process.js';

/**
 * Starts the catalogue entry `key` of `node` with `args`; see
 * `GenServer.startOn` for the options, errors and timing. Resolves with the
 * child's pid, or `{ pid, ref }` with `monitor: true`.
 */
export function spawnOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions & { readonly monitor?: false }): Promise<Pid>;
export function spawnOn(caller: Node | Process, node: string, key: string, args: unknown, options: RemoteStartOptions & { readonly monitor: true }): Promise<MonitoredStart>;
export function spawnOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions): Promise<Pid | MonitoredStart>;
export function spawnOn(caller: Node | Process, node: string, key: string, args: unknown, options?: RemoteStartOptions): Promise<Pid | MonitoredStart> {
  return startOnImpl('spawnOn', caller, node, key, args, options);
}
