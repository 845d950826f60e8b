/**
 * A registry name: any JSON value. Two names are the same when their
 * canonical encodings (JSON with object keys sorted) are equal.
 */
export type Name = string | number | boolean | null | readonly Name[] | { readonly [key: string]: Name };

/**
 * The canonical encoding of `name`, the identity registries key on.
 * Throws a `TypeError` saying what is wrong for anything that is not plain
 * JSON: functions, symbols, bigints, undefined, NaN and infinities, class
 * instances, cycles.
 */
export function canonicalName(name: unknown): string {
  // Fast path: most names are strings, and this sits on the lookup hot path.
  if (typeof name === 'string') return JSON.stringify(name);
  try {
    return encode(name, 0);
  } catch (error) {
    if (error instanceof InvalidName) {
      const path = `$${error.segments.reverse().join('')}`;
      throw new TypeError(`invalid name: ${error.what(path.length > 120 ? `${path.slice(0, 117)}...` : path)}`);
    }
    throw error;
  }
}

/**
 * A Map key for a name: equal exactly when the names are. Registries key
 * their tables on it, and lookups compute it each time, so it is built for
 * speed, not to be read or sent (use `canonicalName` for that):
 *
 * - a string name is its own key, with no copy, so a caller that looks the
 *   same string up again hits V8's cached hash; a string that starts with
 *   `[`, `{` or `KEY_MARK` (rare) is marked and quoted instead;
 * - an array or object name is its canonical encoding, which starts with
 *   `[` or `{`; an array of plain values (the common tuple) is encoded by one
 *   `JSON.stringify` after a type check of each element, which gives the same
 *   string as the canonical encoder and a flat one, cheap to hash;
 * - a number, boolean or null name is `KEY_MARK` and its encoding.
 *
 * Throws the same `TypeError` as `canonicalName` for anything that is not
 * plain JSON.
 */
export function nameKey(name: unknown): string {
  if (typeof name === 'string') {
    const first = name.charCodeAt(0);
    return first === OPEN_BRACKET || first === OPEN_BRACE || first === KEY_MARK_CODE ? `${KEY_MARK}${JSON.stringify(name)}` : name;
  }
  if (typeof name === 'object' && name !== null) return Array.isArray(name) && isFlatTuple(name) ? JSON.stringify(name) : canonicalName(name);
  return KEY_MARK + canonicalName(name);
}

const KEY_MARK = '\u0001';
const KEY_MARK_CODE = 1;
const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;

/**
 * True for an array whose every element is a string, a finite number, a
 * boolean or null, and which `JSON.stringify` encodes as the canonical
 * encoder does (no `toJSON` of its own). Holes read as undefined: refused.
 */
function isFlatTuple(array: readonly unknown[]): boolean {
  if ((array as { toJSON?: unknown }).toJSON !== undefined) return false;
  for (let index = 0; index < array.length; index++) {
    const item = array[index];
    switch (typeof item) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (Number.isFinite(item)) continue;
        return false;
      case 'object':
        if (item === null) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

/** True when `name` is a valid `Name`. */
export function isName(name: unknown): name is Name {
  try {
    canonicalName(name);
    return true;
  } catch {
    return false;
  }
}

/** Deeper than this is taken for a cycle: no ancestor set to keep on the hot path. */
const MAX_DEPTH = 100;

/** Carries where an invalid part is while unwinding, so valid names build no path strings. */
class InvalidName {
  readonly segments: string[] = [];
  constructor(readonly what: (path: string) => string) {}
}

function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidName((path) => `${String(value)} at ${path} is not a finite number`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) throw new InvalidName((path) => `cycle (or nesting deeper than ${MAX_DEPTH}) at ${path}`);
      if (Array.isArray(value)) {
        // Indexing visits holes too (as undefined, refused): `map` would skip them and yield `[,1]`.
        let out = '[';
        for (let index = 0; index < value.length; index++) {
          if (index > 0) out += ',';
          try {
            out += encode(value[index], depth + 1);
          } catch (error) {
            if (error instanceof InvalidName) error.segments.push(`[${index}]`);
            throw error;
          }
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
        throw new InvalidName((path) => `${kind} instance at ${path} is not a plain object`);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) throw new InvalidName((path) => `symbol key at ${path}`);
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index]!;
        if (index > 0) out += ',';
        try {
          out += `${JSON.stringify(key)}:${encode(record[key], depth + 1)}`;
        } catch (error) {
          if (error instanceof InvalidName) error.segments.push(`.${key}`);
          throw error;
        }
      }
      return `${out}}`;
    }
    default:
      throw new InvalidName((path) => `${typeof value} at ${path} is not a JSON value`);
  }
}
