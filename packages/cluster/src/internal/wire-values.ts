import { Pid, Ref } from '@roster/core';
import { WireDecodeError, WireEncodeError } from '../errors.js';

/**
 * Values as they cross the wire: JSON, with tagged objects for what JSON
 * cannot say. A tag is a one-key object whose key starts with `$`:
 *
 * | value                 | wire                                   |
 * | --------------------- | -------------------------------------- |
 * | Pid                   | `{"$pid":[node, creation, id]}`        |
 * | Ref                   | `{"$ref":[node, creation, id]}`        |
 * | Error                 | `{"$err":{"name","message","stack"?}}` |
 * | Date                  | `{"$date":"<ISO string>"}`             |
 * | undefined             | `{"$u":0}`                             |
 * | NaN, ±Infinity        | `{"$num":"NaN"}` …                     |
 * | bigint                | `{"$big":"123"}`                       |
 * | object with `$` keys  | `{"$obj":{...}}` (escaping)            |
 *
 * Via destinations are plain `{ via, name }` objects and need no tag.
 * Anything else (functions, symbols, Map, Set, class instances, cycles) is
 * refused at the sender with a `WireEncodeError` naming where it is.
 */
/** Deepest nesting of a value that crosses the wire. */
export const MAX_DEPTH = 64;

export function toWire(value: unknown): unknown {
  try {
    return encodeValue(value, 0);
  } catch (error) {
    if (error instanceof PathError) {
      const path = `$${error.segments.reverse().join('')}`;
      throw new WireEncodeError(`cannot send: ${error.what} at ${path}`, path);
    }
    throw error;
  }
}

/** Collects the path of a refused value while unwinding, so the happy path builds no strings. */
class PathError {
  readonly segments: string[] = [];
  constructor(readonly what: string) {}
}

function encodeValue(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : { $num: String(value) };
    case 'undefined':
      return { $u: 0 };
    case 'bigint':
      return { $big: value.toString() };
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) throw new PathError(`value nested deeper than ${MAX_DEPTH} (or cyclic)`);
      if (value instanceof Pid) return { $pid: [value.node, value.creation, value.id] };
      if (value instanceof Ref) return { $ref: [value.node, value.creation, value.id] };
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let index = 0; index < value.length; index++) {
          try {
            out[index] = encodeValue(value[index], depth + 1);
          } catch (error) {
            if (error instanceof PathError) error.segments.push(`[${index}]`);
            throw error;
          }
        }
        return out;
      }
      if (value instanceof Error) {
        const error: Record<string, unknown> = { name: value.name, message: value.message };
        if (value.stack !== undefined) error['stack'] = value.stack;
        const code = (value as { code?: unknown }).code;
        if (typeof code === 'string') error['code'] = code;
        return { $err: error };
      }
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) throw new PathError('an invalid Date does not survive the wire');
        return { $date: value.toISOString() };
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
        throw new PathError(`a ${kind} instance does not survive the wire`);
      }
      const out: Record<string, unknown> = {};
      let escaped = false;
      for (const key in value) {
        if (key.charCodeAt(0) === 36 /* $ */) escaped = true;
        try {
          const item = encodeValue((value as Record<string, unknown>)[key], depth + 1);
          // An own `__proto__` key (JSON.parse makes them) is data: assigning it would set the prototype instead.
          if (key === '__proto__') Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
          else out[key] = item;
        } catch (error) {
          if (error instanceof PathError) error.segments.push(`.${key}`);
          throw error;
        }
      }
      return escaped ? { $obj: out } : out;
    }
    default:
      throw new PathError(`a ${typeof value} does not survive the wire`);
  }
}

export function fromWire(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH + 2) throw new WireDecodeError('malformed', 'value nested too deep');
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) value[index] = fromWire(value[index], depth + 1);
    return value;
  }
  const record = value as Record<string, unknown>;
  let first: string | undefined;
  let count = 0;
  for (const key in record) {
    if (count++ === 0) first = key;
    else break;
  }
  if (count === 1 && first!.charCodeAt(0) === 36 /* $ */) return fromTag(first!, record[first!], depth);
  walkValues(record, depth);
  return record;
}

function walkValues(record: Record<string, unknown>, depth: number): void {
  for (const key in record) {
    const item = record[key];
    if (typeof item === 'object' && item !== null) record[key] = fromWire(item, depth + 1);
  }
}

function fromTag(tag: string, body: unknown, depth: number): unknown {
  switch (tag) {
    case '$pid': {
      const [node, creation, id] = identity(body, 'pid');
      return new Pid(node, creation, id);
    }
    case '$ref': {
      const [node, creation, id] = identity(body, 'ref');
      return new Ref(node, creation, id);
    }
    case '$u':
      return undefined;
    case '$num':
      if (body === 'NaN') return NaN;
      if (body === 'Infinity') return Infinity;
      if (body === '-Infinity') return -Infinity;
      break;
    case '$big':
      if (typeof body === 'string' && /^-?\d+$/.test(body)) return BigInt(body);
      break;
    case '$date':
      if (typeof body === 'string') {
        const date = new Date(body);
        if (!Number.isNaN(date.getTime())) return date;
      }
      break;
    case '$err':
      if (typeof body === 'object' && body !== null) {
        const { name, message, stack, code } = body as Record<string, unknown>;
        if (typeof name === 'string' && typeof message === 'string') {
          const error = new Error(message);
          error.name = name;
          if (typeof stack === 'string') error.stack = stack;
          if (typeof code === 'string') (error as Error & { code: string }).code = code;
          return error;
        }
      }
      break;
    case '$obj':
      if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
        // The escaped object itself is never a tag; its values may hold some.
        walkValues(body as Record<string, unknown>, depth);
        return body;
      }
      break;
  }
  throw new WireDecodeError('malformed', `bad tagged value ${tag}`);
}

function identity(body: unknown, what: string): [string, string, number] {
  if (
    Array.isArray(body) &&
    body.length === 3 &&
    typeof body[0] === 'string' &&
    body[0].length > 0 &&
    typeof body[1] === 'string' &&
    Number.isSafeInteger(body[2]) &&
    (body[2] as number) >= 0
  ) {
    return body as [string, string, number];
  }
  throw new WireDecodeError('malformed', `bad ${what}`);
}
