/**
 * Cluster-wide supervision read off the global names table, as pure data:
 * every member of a distributed supervisor `id` holds `['$dsup', id, node]`,
 * and each child runs under `[id, childId]` unless its spec names it, so the
 * observer learns the supervisors, their members and their children without
 * asking any node. A singleton's supervisor id is `singleton:` and the
 * `nameKey` of its name, so its one child is found by that name's canonical
 * key (when the id was not hashed for length). Kept incremental: each
 * registration touches one index entry (the names table may hold 100k names);
 * only the supervisors that changed are rebuilt, when a patch is taken.
 */

/** One member of a distributed supervisor: the node it runs on and its pid there. */
export interface DistributedMemberRow {
  readonly node: string;
  readonly pid: string;
}

/** One child of a distributed supervisor, as its global name shows it. */
export interface DistributedChildRow {
  /** The child id (a number id shown as its decimal). */
  readonly id: string;
  /** The canonical key of its global name (the names table's row key). */
  readonly key: string;
  /** The node it runs on: its name's owner. */
  readonly node: string;
  readonly pid: string;
}

/** A distributed supervisor (or singleton) the names table shows, by id. */
export interface DistributedSupervisorRow {
  readonly id: string;
  /** When the supervisor is a singleton's: the canonical key of the singleton's name. */
  readonly singleton: string | undefined;
  /** Sorted by node. */
  readonly members: readonly DistributedMemberRow[];
  /** Sorted by child id. Children with a name of their own spec (not `[id, childId]`) are not known. */
  readonly children: readonly DistributedChildRow[];
}

/** What the index needs of a name row. */
export interface IndexedName {
  readonly key: string;
  readonly owner: string;
  readonly pid: string;
}

/** What the names table's canonical key says about cluster-wide supervision. */
export type NameShape =
  | { readonly kind: 'member'; readonly id: string; readonly node: string }
  | { readonly kind: 'child'; readonly supervisor: string; readonly childId: string }
  | undefined;

const SINGLETON_PREFIX = 'singleton:';
/** Singleton ids longer than this were hashed (see `singletonId` in @roster/supervision): their child's name is not recoverable. */
const SINGLETON_KEY_MAX = 180;
const KEY_MARK = '\u0001';
/** The child id a singleton's supervisor gives its one child. */
const SINGLETON_CHILD_ID = 'singleton';

/**
 * The shape of a canonical name key: a member name `['$dsup', id, node]`
 * (both strings), a child name `[supervisor, childId]` (a string, then a
 * string or finite number), or neither. Keys not starting `["` are never
 * parsed, so most names cost one character test.
 */
export function nameShape(key: string): NameShape {
  if (key.charCodeAt(0) !== 0x5b || key.charCodeAt(1) !== 0x22) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(key);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || typeof value[0] !== 'string') return undefined;
  if (value[0] === '$dsup') {
    return value.length === 3 && typeof value[1] === 'string' && value[1] !== '' && typeof value[2] === 'string' && value[2] !== ''
      ? { kind: 'member', id: value[1], node: value[2] }
      : undefined;
  }
  if (value.length !== 2) return undefined;
  const child: unknown = value[1];
  if (typeof child === 'string' && child !== '') return { kind: 'child', supervisor: value[0], childId: child };
  if (typeof child === 'number' && Number.isFinite(child)) return { kind: 'child', supervisor: value[0], childId: String(child) };
  return undefined;
}

/**
 * The canonical key of a singleton's name from its supervisor id
 * (`singleton:` + `nameKey(name)`); undefined for an id that is not a
 * singleton's or was hashed.
 */
export function singletonNameKey(id: string): string | undefined {
  if (!id.startsWith(SINGLETON_PREFIX)) return undefined;
  const key = id.slice(SINGLETON_PREFIX.length);
  if (key.length === 0 || key.length > SINGLETON_KEY_MAX) return undefined;
  if (key.startsWith(KEY_MARK)) return key.slice(1);
  const first = key.charCodeAt(0);
  if (first === 0x5b || first === 0x7b) return key;
  return JSON.stringify(key);
}

/** Incremental index of the names table by what cluster-wide supervision it shows. */
export class DistributedIndex {
  /** By supervisor id, then node: the member pid. */
  readonly #members = new Map<string, Map<string, string>>();
  /** By first element (a supervisor id or not), then name key: the `[first, childId]` names held. */
  readonly #pairs = new Map<string, Map<string, DistributedChildRow>>();
  /** The singleton child names to look out for: name key → supervisor id. */
  readonly #singletonChildren = new Map<string, string>();
  /** Supervisor ids whose row changed since the last `take`. */
  readonly #changed = new Set<string>();

  /** `lookup`: the names table's row of a key (a singleton's child is found by its name, whatever its shape). */
  constructor(readonly lookup: (key: string) => IndexedName | undefined) {}

  get dirty(): boolean {
    return this.#changed.size > 0;
  }

  /** A name is held (first registration, or a new holder). */
  set(row: IndexedName): void {
    const shape = nameShape(row.key);
    if (shape?.kind === 'member') {
      let members = this.#members.get(shape.id);
      if (members === undefined) {
        this.#members.set(shape.id, (members = new Map()));
        const child = singletonNameKey(shape.id);
        if (child !== undefined) this.#singletonChildren.set(child, shape.id);
      }
      members.set(shape.node, row.pid);
      this.#changed.add(shape.id);
    } else if (shape?.kind === 'child') {
      let pairs = this.#pairs.get(shape.supervisor);
      if (pairs === undefined) this.#pairs.set(shape.supervisor, (pairs = new Map()));
      pairs.set(row.key, { id: shape.childId, key: row.key, node: row.owner, pid: row.pid });
      if (this.#members.has(shape.supervisor)) this.#changed.add(shape.supervisor);
    }
    // A singleton's name may also be a pair (`['jobs', 1]`): it is both, so not `else`.
    const singleton = this.#singletonChildren.get(row.key);
    if (singleton !== undefined) this.#changed.add(singleton);
  }

  /** A name is no longer held. */
  delete(key: string): void {
    const shape = nameShape(key);
    if (shape?.kind === 'member') {
      const members = this.#members.get(shape.id);
      if (members?.delete(shape.node) === true) {
        this.#changed.add(shape.id);
        if (members.size === 0) {
          this.#members.delete(shape.id);
          const child = singletonNameKey(shape.id);
          if (child !== undefined && this.#singletonChildren.get(child) === shape.id) this.#singletonChildren.delete(child);
        }
      }
    } else if (shape?.kind === 'child') {
      const pairs = this.#pairs.get(shape.supervisor);
      if (pairs?.delete(key) === true) {
        if (pairs.size === 0) this.#pairs.delete(shape.supervisor);
        if (this.#members.has(shape.supervisor)) this.#changed.add(shape.supervisor);
      }
    }
    const singleton = this.#singletonChildren.get(key);
    if (singleton !== undefined) this.#changed.add(singleton);
  }

  /** The supervisor row of `id`; undefined when no member holds its name. */
  get(id: string): DistributedSupervisorRow | undefined {
    const members = this.#members.get(id);
    if (members === undefined) return undefined;
    const singleton = singletonNameKey(id);
    const children = [...(this.#pairs.get(id)?.values() ?? [])];
    const held = singleton === undefined ? undefined : this.lookup(singleton);
    if (held !== undefined) children.push({ id: SINGLETON_CHILD_ID, key: held.key, node: held.owner, pid: held.pid });
    children.sort((a, b) => compare(a.id, b.id) || compare(a.key, b.key));
    return {
      id,
      singleton,
      members: [...members].map(([node, pid]) => ({ node, pid })).sort((a, b) => compare(a.node, b.node)),
      children,
    };
  }

  /** Every supervisor the names table shows, by id. */
  all(): DistributedSupervisorRow[] {
    return [...this.#members.keys()].sort(compare).map((id) => this.get(id)!);
  }

  /** The supervisors that changed since the last call (`set`) and those no member holds any more (`delete`); undefined when none changed. */
  take(): { readonly set: DistributedSupervisorRow[]; readonly delete: string[] } | undefined {
    if (this.#changed.size === 0) return undefined;
    const set: DistributedSupervisorRow[] = [];
    const deleted: string[] = [];
    for (const id of [...this.#changed].sort(compare)) {
      const row = this.get(id);
      if (row !== undefined) set.push(row);
      else deleted.push(id);
    }
    this.#changed.clear();
    return { set, delete: deleted };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
