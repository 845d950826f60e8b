/**
 * Supervisor flags, checked once as OTP's `supervisor:check_flags` does,
 * before a supervisor process exists: a bad flag is the starter's error
 * (`SupervisorError('invalid_supervisor_flags')` naming it), never a crash.
 */
import { SupervisorError } from '../errors.js';
import { describe, orDefault } from './child-lifecycle.js';

/** Restart intensity flags with their defaults applied. */
export interface IntensityFlags {
  readonly intensity: number;
  readonly period: number;
}

/** Throws `invalid_supervisor_flags` for `field`. */
export function invalidFlag(where: string, field: string, detail: string): SupervisorError {
  return new SupervisorError('invalid_supervisor_flags', undefined, { field, detail: `${where}: ${detail}` });
}

/**
 * Checks that `spec` is a plain object holding only `allowed` keys; an
 * unknown key is named (a typo such as `intesity` would otherwise pass).
 */
export function checkFlagKeys(spec: unknown, allowed: ReadonlySet<string>, where: string): Record<string, unknown> {
  if (spec === undefined) return {};
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw invalidFlag(where, 'spec', `the spec must be an object, got ${describe(spec)}`);
  }
  for (const key of Object.keys(spec)) {
    if (!allowed.has(key)) throw invalidFlag(where, key, `unknown flag ${JSON.stringify(key)}`);
  }
  return spec as Record<string, unknown>;
}

/**
 * OTP's rules: `intensity` an integer >= 0, `period` an integer of ms > 0
 * (so `Infinity` is refused, as `infinity` is by OTP).
 */
export function checkIntensity(flags: Record<string, unknown>, defaultIntensity: number, where: string): IntensityFlags {
  const intensity = orDefault(flags['intensity'], defaultIntensity);
  if (!(typeof intensity === 'number' && Number.isInteger(intensity) && intensity >= 0)) {
    throw invalidFlag(where, 'intensity', `intensity must be an integer >= 0, got ${describe(intensity)}`);
  }
  const period = orDefault(flags['period'], 5000);
  if (!(typeof period === 'number' && Number.isInteger(period) && period > 0)) {
    throw invalidFlag(where, 'period', `period must be an integer of ms > 0, got ${describe(period)}`);
  }
  return { intensity, period };
}
