import { Pid } from './pid.js';
import { canonicalName, type Name } from './name.js';

/** A name resolved through the registry a node installed under `via` (Erlang's `{via, Module, Name}`). */
export interface Via {
  readonly via: string;
  readonly name: Name;
}

/** Where a message can go: a pid, a node-local string name, or a via name. */
export type Dest = Pid | string | Via;

/**
 * A via destination: `via('globals', ['room', 42])`. The name is validated
 * here, so a bad name fails where it is written.
 */
export function via(registry: string, name: Name): Via {
  if (typeof registry !== 'string' || registry.length === 0) {
    throw new TypeError(`via: registry key must be a non-empty string, got ${typeof registry}`);
  }
  canonicalName(name);
  return Object.freeze({ via: registry, name });
}

export function isVia(value: unknown): value is Via {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Pid) &&
    typeof (value as { via?: unknown }).via === 'string' &&
    'name' in value
  );
}

/** A short description of a destination for error messages. */
export function describeDest(dest: unknown): string {
  if (dest instanceof Pid) return dest.key;
  if (typeof dest === 'string') return JSON.stringify(dest);
  if (isVia(dest)) {
    let name: string;
    try {
      name = canonicalName(dest.name);
    } catch {
      name = '<invalid name>';
    }
    return `via(${JSON.stringify(dest.via)}, ${name})`;
  }
  return `<${typeof dest}>`;
}
