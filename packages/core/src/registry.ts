import type { Name } from './name.js';
import type { Pid } from './pid.js';

/**
 * The via-module contract of OTP, in TypeScript: every name registry backend
 * implements it, and the conformance suite in @roster/testkit checks it.
 *
 * Contract shared by every backend:
 * - `registerName` resolves `yes` when `pid` now holds `name`, `no` when the
 *   name is held (by any pid, this one included). It rejects with a
 *   `BadArgError` for a pid that is not alive or that the backend cannot own
 *   (a pid of another node), and with a `TypeError` for an invalid name.
 * - A name is cleared when its process exits, whatever the reason, before
 *   any monitor of that process receives its `DOWN`.
 * - `send` throws `BadArgError` for a name nobody holds.
 */
export interface NameRegistry {
  registerName(name: Name, pid: Pid): Promise<'yes' | 'no'>;
  /** Removes `name` wherever the backend can reach it (for a cluster-wide backend, from any node, as `global:unregister_name`); resolves either way. */
  unregisterName(name: Name): Promise<void>;
  /** A synchronous snapshot read: the hot path. */
  whereisName(name: Name): Pid | undefined;
  /** Sends to the holder of `name`, returning its pid; throws `BadArgError` if nobody holds it. */
  send(name: Name, message: unknown): Pid;
  registered(): Name[];
  /** Asks the name's owner instead of reading the local snapshot. */
  whereisNameConsistent?(name: Name): Promise<Pid | undefined>;
  /** Resolves once this node's view agrees with every reachable member (`global:sync/0`). */
  sync?(): Promise<void>;
  /**
   * Moves `name` to `pid` in one step, whoever held it (`global:re_register_name/2`):
   * no moment when the name resolves to nobody, and the former holder keeps
   * running. Rejects like `registerName` for a pid it cannot own. Optional:
   * a backend that offers it declares `reRegisterName` in the conformance suite.
   */
  reRegisterName?(name: Name, pid: Pid): Promise<'yes'>;
  /** The member nodes this registry agrees with. */
  members?(): string[];
  /**
   * What this registry says about itself in `node.snapshot()` (under its
   * key in `registries`), and so to a peer asking with
   * `clusterOf(node).snapshotOf`: its counters, sizes, latencies. Optional.
   *
   * - Plain, wire-safe data: a fresh object of numbers, strings, booleans,
   *   arrays and plain objects (no pids, class instances or functions), a
   *   few levels deep and a few dozen keys at most; a peer checks what it
   *   receives and drops a reply whose registry data is larger or deeper as
   *   malformed (see @roster/cluster's introspection).
   * - Cheap: it runs synchronously inside every snapshot (the observer takes
   *   one per node per second); read counters kept as the registry works, do
   *   no I/O and walk nothing large.
   * - Read when asked: nothing is computed or kept for it in between.
   *
   * A throw leaves this registry out of that snapshot (logged at a bounded
   * rate); it never breaks the snapshot.
   */
  introspect?(): Readonly<Record<string, unknown>>;
  // `attach?(node, key)`, called once by `node.installRegistry`, is declared
  // in node.ts beside the Node class, so this contract does not import node.ts.
  /** Called by `node.stop()` after the node's processes are gone. */
  detach?(): void | Promise<void>;
}
