import { nameKey, type Name } from '@roster/core';

/**
 * The deepest nesting of arrays and objects a global name may have. Names
 * travel inside registry messages (a `sync` carries them three levels down)
 * and the wire codec refuses values nested deeper than 64: a deeper name
 * would make the registry actor crash on encoding instead of being refused.
 */
export const MAX_NAME_DEPTH = 32;
/** A name travels in every claim, commit and sync: keep it far below a frame (1 MiB by default). */
export const MAX_NAME_CHARS = 16 * 1024;

/**
 * `nameKey`, plus the limits every global name obeys: the same for a name
 * registered here and for one received from a peer, so a peer cannot make
 * this node hold what it would refuse to send.
 */
export function globalKey(name: Name): string {
  const key = nameKey(name);
  if (key.length > MAX_NAME_CHARS) {
    throw new TypeError(`invalid global name: ${key.length} characters encoded, more than ${MAX_NAME_CHARS}; it would not fit the frames it travels in`);
  }
  if (typeof name === 'object' && name !== null && nestingOf(name, 1) > MAX_NAME_DEPTH) {
    throw new TypeError(`invalid global name: nested deeper than ${MAX_NAME_DEPTH} levels of arrays and objects; it could not cross the wire`);
  }
  return key;
}

/** How deeply `value` nests arrays and objects, counting from `depth`; stops counting past the limit. */
function nestingOf(value: object, depth: number): number {
  if (depth > MAX_NAME_DEPTH) return depth;
  let deepest = depth;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (typeof item === 'object' && item !== null) deepest = Math.max(deepest, nestingOf(item, depth + 1));
    if (deepest > MAX_NAME_DEPTH) break;
  }
  return deepest;
}
