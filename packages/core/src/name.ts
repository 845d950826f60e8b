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
  return encode(name, '$', new Set());
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

function encode(value: unknown, path: string, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`invalid name: ${String(value)} at ${path} is not a finite number`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (ancestors.has(value)) throw new TypeError(`invalid name: cycle at ${path}`);
      ancestors.add(value);
      try {
        if (Array.isArray(value)) {
          // Array.from visits holes too (as undefined, refused): `map` would skip them and yield `[,1]`.
          return `[${Array.from(value, (item, index) => encode(item, `${path}[${index}]`, ancestors)).join(',')}]`;
        }
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
          throw new TypeError(`invalid name: ${kind} instance at ${path} is not a plain object`);
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw new TypeError(`invalid name: symbol key at ${path}`);
        }
        const record = value as Record<string, unknown>;
        const keys = Object.keys(record).sort();
        return `{${keys.map((key) => `${JSON.stringify(key)}:${encode(record[key], `${path}.${key}`, ancestors)}`).join(',')}}`;
      } finally {
        ancestors.delete(value);
      }
    }
    default:
      throw new TypeError(`invalid name: ${typeof value} at ${path} is not a JSON value`);
  }
}
