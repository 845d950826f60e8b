/**
 * The chaos runner's setup module: what each roster node process runs
 * (`startNodeProcesses({ setup: { module: <this file> } })`) so the runner
 * can drive it with `NodeProcess.invoke`. It holds no history itself; the
 * runner stamps invocations and completions around each invoke, so every
 * window includes the IPC hop (wider, never narrower, than the real one).
 *
 * What it emits on its own (`custom` events):
 * - `death` `{ pid, at, reason }` when a holder process exits, stamped
 *   synchronously at the exit (`Node.watchExit`, before any monitor);
 * - `connected` `{ at, broker }` once at start: the (proxy) URL of the broker
 *   the node's transport is on, redacted;
 * - `reconnected` `{ at, broker }` when the node's cluster opens a new broker
 *   connection, with the URL of the broker it is now on.
 *
 * Holders are GenServers that answer any call with their own pid's string.
 *
 * @module
 */
import { formatReason, GenServer, noreply, reply, type Node, type Pid } from '@roster/core';
import { clusterOf } from '@roster/cluster';
import { CHILD_TRANSPORT, type NodeProcessEmit } from '../internal/node-process-protocol.js';

/** The `via` key the runner installs the GlobalsRegistry under. */
export const REGISTRY_KEY = 'globals';

const Holder: GenServer<string, undefined> = {
  init: (_args, self) => self.pid.key,
  handleCall: (_request, _from, state) => reply(state, state),
  handleInfo: (_message, state) => noreply(state),
};

const holders = new Map<string, Pid>();
let emitter: NodeProcessEmit = () => {};

/** The start function: reports reconnections. */
export function setup(node: Node, _args: unknown, emit: NodeProcessEmit): void {
  emitter = emit;
  const broker = (): string | null => ((globalThis as Record<symbol, unknown>)[CHILD_TRANSPORT] as { broker?: string } | undefined)?.broker ?? null;
  emit('connected', { at: Date.now(), broker: broker() });
  clusterOf(node)?.on('reconnected', () => emit('reconnected', { at: Date.now(), broker: broker() }));
}

/** Starts a holder; resolves with its pid's string. Its death is emitted. */
export async function spawn(node: Node): Promise<string> {
  const pid = await GenServer.start(node, Holder, undefined);
  holders.set(pid.key, pid);
  const cancel = node.watchExit(pid, (reason) => {
    holders.delete(pid.key);
    emitter('death', { pid: pid.key, at: Date.now(), reason: formatReason(reason) });
  });
  if (cancel === undefined) {
    holders.delete(pid.key);
    emitter('death', { pid: pid.key, at: Date.now(), reason: 'noproc' });
  }
  return pid.key;
}

function holder(key: string): Pid {
  const pid = holders.get(key);
  if (pid === undefined) throw Object.assign(new Error(`no live holder ${key} on this node`), { code: 'noproc' });
  return pid;
}

/** `registerName(name, holder)`. */
export function register(node: Node, args: { name: string; pid: string }): Promise<'yes' | 'no'> {
  return node.registerName({ via: REGISTRY_KEY, name: args.name }, holder(args.pid));
}

/** `unregisterName(name)`. */
export async function unregister(node: Node, args: { name: string }): Promise<null> {
  await node.registry(REGISTRY_KEY).unregisterName(args.name);
  return null;
}

/** `whereisName(name)`: the pid's string or null. */
export function whereis(node: Node, args: { name: string }): string | null {
  return node.registry(REGISTRY_KEY).whereisName(args.name)?.key ?? null;
}

/** A call by name; resolves with the answering holder's pid string. */
export function call(node: Node, args: { name: string; timeout: number }): Promise<string> {
  return node.call<string>({ via: REGISTRY_KEY, name: args.name }, 'who', { timeout: args.timeout });
}

/** Kills a holder of this node (exit signal `kill`). */
export function kill(node: Node, args: { pid: string }): null {
  node.exit(holder(args.pid), 'kill');
  return null;
}

/** This node's name table: name -> pid string. */
export function table(node: Node): Record<string, string> {
  const registry = node.registry(REGISTRY_KEY);
  const out: Record<string, string> = {};
  for (const name of registry.registered()) {
    const pid = registry.whereisName(name);
    if (pid !== undefined) out[String(name)] = pid.key;
  }
  return out;
}

/** The live holders of this node. */
export function live(): string[] {
  return [...holders.keys()];
}
