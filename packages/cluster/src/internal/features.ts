/**
 * What a node's wire reads beyond the frames every roster reads, said in its
 * `hello` and `hb` (`f`), so that during a rolling upgrade a node sends a
 * newer frame only to a peer that said it reads it, and the older form to
 * any other. A feature is never taken back within an incarnation.
 *
 * - `call`: a call's request with its monitor as one `call` frame (without
 *   it: `mon`, then `msg`).
 * - `plain`: a `ch` body in plain JSON (`j`; without it: the tagged `m`).
 */
export type Feature = 'call' | 'plain';

/** The features of this version, as its membership frames say them. */
export const FEATURES: readonly Feature[] = Object.freeze(['call', 'plain']);

/** The most features a peer's frame may list, and the longest name: beyond that, the frame is malformed. */
const MAX_FEATURES = 64;
const MAX_FEATURE_LENGTH = 64;

/** Whether `value` can be the `f` of a membership frame: a short list of short strings. */
export function isFeatureList(value: unknown): boolean {
  if (!Array.isArray(value) || value.length > MAX_FEATURES) return false;
  for (const feature of value) {
    if (typeof feature !== 'string' || feature.length > MAX_FEATURE_LENGTH) return false;
  }
  return true;
}

const NONE: ReadonlySet<string> = new Set();

/** What a peer said it reads (`f` of its membership frame, checked by the decoder); none when it said nothing, as an older node. */
export function featuresOf(value: unknown): ReadonlySet<string> {
  return Array.isArray(value) && value.length > 0 ? new Set(value as string[]) : NONE;
}
