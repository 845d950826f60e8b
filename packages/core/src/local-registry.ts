import { BadArgError } from './errors.js';
import { canonicalName, nameKey, type Name } from './name.js';
import type { ExitReason } from './exit-reason.js';
import type { Pid } from './pid.js';
import type { NameRegistry } from './registry.js';

/**
 * What a LocalRegistry uses of the node it serves; a `Node` is one. Named
 * here rather than importing node.ts, because every node's runtime holds a
 * LocalRegistry for its plain string names.
 */
export interface LocalRegistryNode {
  readonly name: string;
  readonly creation: string;
  isAlive(pid: Pid): boolean;
  watchExit(pid: Pid, hook: (reason: ExitReason) => void): (() => void) | undefined;
  send(pid: Pid, message: unknown): void;
}

interface Entry {
  readonly name: Name;
  readonly pid: Pid;
}

/**
 * Names on one node, in memory: what plain string names use, and the
 * simplest `NameRegistry` backend. Names are cleared synchronously when their
 * process exits.
 */
export class LocalRegistry implements NameRegistry {
  #node: LocalRegistryNode | undefined;
  readonly #entries = new Map<string, Entry>();
  /** Names held by each pid, and the canceller of its exit hook. */
  readonly #byPid = new Map<string, { readonly keys: Set<string>; readonly cancel: () => void }>();

  attach(node: LocalRegistryNode): void {
    if (this.#node !== undefined && this.#node !== node) {
      throw new BadArgError('LocalRegistry: already attached to another node');
    }
    this.#node = node;
  }

  detach(): void {
    for (const { cancel } of this.#byPid.values()) cancel();
    this.#byPid.clear();
    this.#entries.clear();
  }

  registerName(name: Name, pid: Pid): Promise<'yes' | 'no'> {
    try {
      return Promise.resolve(this.register(name, pid) ? 'yes' : 'no');
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The synchronous form of `registerName`: true for `yes`. */
  register(name: Name, pid: Pid): boolean {
    const key = nameKey(name);
    this.#checkOwnable(pid);
    if (this.#entries.has(key)) return false;
    this.#hold(key, name, pid);
    return true;
  }

  /** Moves `name` to `pid` synchronously (so atomically): `global:re_register_name/2`. */
  reRegisterName(name: Name, pid: Pid): Promise<'yes'> {
    try {
      const key = nameKey(name);
      this.#checkOwnable(pid);
      const entry = this.#entries.get(key);
      if (entry?.pid.equals(pid) === true) return Promise.resolve('yes');
      // Checked before the old holder lets go, so a refusal changes nothing.
      if (this.#byPid.get(pid.key) === undefined && !this.#requireNode().isAlive(pid)) {
        throw new BadArgError(`LocalRegistry: cannot register ${pid.key}: it is not alive`);
      }
      if (entry !== undefined) this.#release(entry.pid, key);
      this.#hold(key, name, pid);
      return Promise.resolve('yes');
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #checkOwnable(pid: Pid): void {
    const node = this.#requireNode();
    if (pid.node !== node.name || pid.creation !== node.creation) {
      throw new BadArgError(`LocalRegistry: cannot register ${pid.key}: it is not a process of node ${node.name}`);
    }
  }

  /** Records `pid` as the holder of a free `key`, watching its exit. */
  #hold(key: string, name: Name, pid: Pid): void {
    const node = this.#requireNode();
    let held = this.#byPid.get(pid.key);
    if (held === undefined) {
      const keys = new Set<string>();
      const cancel = node.watchExit(pid, () => this.#releaseAll(pid));
      if (cancel === undefined) throw new BadArgError(`LocalRegistry: cannot register ${pid.key}: it is not alive`);
      held = { keys, cancel };
      this.#byPid.set(pid.key, held);
    }
    held.keys.add(key);
    this.#entries.set(key, { name, pid });
  }

  unregisterName(name: Name): Promise<void> {
    try {
      this.unregister(name);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  unregister(name: Name): void {
    const key = nameKey(name);
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#release(entry.pid, key);
  }

  /** `pid` gives up the name under `key`; its exit hook goes with its last name. */
  #release(pid: Pid, key: string): void {
    this.#entries.delete(key);
    const held = this.#byPid.get(pid.key);
    if (held === undefined) return;
    held.keys.delete(key);
    if (held.keys.size === 0) {
      held.cancel();
      this.#byPid.delete(pid.key);
    }
  }

  whereisName(name: Name): Pid | undefined {
    return this.#entries.get(nameKey(name))?.pid;
  }

  send(name: Name, message: unknown): Pid {
    const pid = this.whereisName(name);
    if (pid === undefined) throw new BadArgError(`no process is registered as ${canonicalName(name)}`);
    this.#requireNode().send(pid, message);
    return pid;
  }

  registered(): Name[] {
    return [...this.#entries.values()].map((entry) => entry.name);
  }

  /** The first string name `pid` holds here, if any (what a snapshot shows as a process's name). */
  stringNameOf(pid: Pid): string | undefined {
    const held = this.#byPid.get(pid.key);
    if (held === undefined) return undefined;
    for (const key of held.keys) {
      const name = this.#entries.get(key)?.name;
      if (typeof name === 'string') return name;
    }
    return undefined;
  }

  #releaseAll(pid: Pid): void {
    const held = this.#byPid.get(pid.key);
    if (held === undefined) return;
    this.#byPid.delete(pid.key);
    for (const key of held.keys) this.#entries.delete(key);
  }

  #requireNode(): LocalRegistryNode {
    if (this.#node === undefined) throw new BadArgError('LocalRegistry: not installed on a node (node.installRegistry)');
    return this.#node;
  }
}
