/**
 * A node's catalogue of behaviours under stable string keys: what a peer may
 * start here by key and args (`GenServer.startOn`, `spawnOn`), since
 * functions cannot cross the wire. Every node that may host a child registers
 * the same behaviours under the same keys (OTP finds a module by name; roster
 * has no module loader, so the catalogue is that table).
 *
 * It only stores: it emits nothing and starts nothing (see
 * `startFromCatalogue` for that).
 */
import { BadArgError } from './errors.js';
import type { GenServerCallbacks } from './gen-server-callbacks.js';
import type { Process } from './process.js';

/** A process body that also receives the spawn's args: `(self, args) => { ... }`. */
export type SpawnBody = (self: Process, args: any) => unknown | Promise<unknown>;

/** One entry of a {@link BehaviourCatalogue}: a GenServer behaviour, or a process body. */
export type CatalogueEntry =
  | { readonly key: string; readonly kind: 'gen_server'; readonly behaviour: GenServerCallbacks<any, any> }
  | { readonly key: string; readonly kind: 'process'; readonly body: SpawnBody };

/** Longest catalogue key, in UTF-16 code units. */
const MAX_KEY_LENGTH = 255;

/**
 * Behaviours by key, on one node (`node.behaviours`). An object with an
 * `init` function is a GenServer behaviour; a function is a process body.
 */
export class BehaviourCatalogue {
  readonly #entries = new Map<string, CatalogueEntry>();

  /**
   * Registers `behaviour` under `key`. Throws `TypeError` for a key that is
   * not a non-empty string of at most 255 characters, or a behaviour that is
   * neither a function nor an object with an `init` function; `BadArgError`
   * when `key` holds another behaviour (registering the same one again is a no-op).
   */
  register(key: string, behaviour: GenServerCallbacks<any, any> | SpawnBody): void {
    checkKey('BehaviourCatalogue.register', key);
    let entry: CatalogueEntry;
    if (typeof behaviour === 'function') {
      entry = Object.freeze({ key, kind: 'process', body: behaviour as SpawnBody });
    } else if (typeof behaviour === 'object' && behaviour !== null && typeof (behaviour as { init?: unknown }).init === 'function') {
      entry = Object.freeze({ key, kind: 'gen_server', behaviour });
    } else {
      throw new TypeError(
        `BehaviourCatalogue.register: behaviour must be a GenServer behaviour (an object with an init function) or a process body (a function), got ${describe(behaviour)}`,
      );
    }
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      if ((existing.kind === 'process' ? existing.body : existing.behaviour) === behaviour) return;
      throw new BadArgError(`BehaviourCatalogue.register: ${JSON.stringify(key)} is already registered`);
    }
    this.#entries.set(key, entry);
  }

  /** Removes `key`; false when nothing was registered under it. Running processes are not touched. */
  unregister(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** The entry under `key`, or undefined. */
  get(key: string): CatalogueEntry | undefined {
    return this.#entries.get(key);
  }

  /** Whether something is registered under `key`. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The registered keys, sorted. */
  keys(): string[] {
    return [...this.#entries.keys()].sort();
  }
}

/** Throws `TypeError` unless `key` is a valid catalogue key. */
export function checkKey(where: string, key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`${where}: key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${describe(key)}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}
