/**
 * Supervisor and child specs, checked once and normalized: every refusal is
 * a `SupervisionError('invalid_spec')` naming the caller and the field.
 */
import { canonicalName, nameKey, type Name, type RestartType } from '@roster/core';
import { SupervisionError } from '../errors.js';
import { PLACEMENT_STRATEGIES, type Placement } from '../placement.js';
import type { DistributedChildSpec, DistributedSupervisorSpec } from '../spec.js';

export type Shutdown = number | 'brutal_kill' | 'infinity';

export interface NormalizedChild {
  readonly id: string;
  readonly behaviour: string;
  readonly args: unknown;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
  /** Undefined: the supervisor's. */
  readonly placement: Placement | undefined;
  readonly name: Name;
  /** `nameKey(name)`. */
  readonly key: string;
}

export interface NormalizedSpec {
  readonly id: string;
  readonly intensity: number;
  readonly period: number;
  readonly children: readonly NormalizedChild[];
  readonly placement: Placement;
  readonly quorum: number;
  readonly registry: string;
  readonly syncTimeout: number;
  readonly startTimeout: number;
}

export const DEFAULTS = Object.freeze({
  intensity: 3,
  period: 5000,
  placement: 'round_robin' as Placement,
  minMembers: 1,
  registry: 'globals',
  syncTimeout: 2000,
  startTimeout: 5000,
  shutdown: 5000 as Shutdown,
  restart: 'permanent' as RestartType,
});

const SPEC_KEYS = new Set(['id', 'strategy', 'intensity', 'period', 'children', 'placement', 'minMembers', 'clusterSize', 'registry', 'syncTimeout', 'startTimeout']);
const CHILD_KEYS = new Set(['id', 'behaviour', 'key', 'args', 'restart', 'shutdown', 'placement', 'name']);
const RESTARTS = new Set(['permanent', 'transient', 'temporary']);

function invalid(where: string, field: string, detail: string): SupervisionError {
  return new SupervisionError('invalid_spec', `${where}: ${field} ${detail}`, field);
}

function checkKeys(where: string, value: object, allowed: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw invalid(where, `${prefix}${key}`, `is not an option (known: ${[...allowed].join(', ')})`);
  }
}

function positiveInteger(where: string, field: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(where, field, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function checkPlacement(where: string, field: string, placement: unknown): Placement {
  if (typeof placement === 'function') return placement as Placement;
  if (typeof placement === 'string' && PLACEMENT_STRATEGIES.has(placement)) return placement as Placement;
  if (Array.isArray(placement) && placement.length > 0 && placement.every((node) => typeof node === 'string' && node.length > 0)) {
    return Object.freeze([...placement]) as Placement;
  }
  throw invalid(where, field, `must be local_first, round_robin, least_loaded, random, a non-empty list of node names or a function, got ${typeof placement === 'string' ? JSON.stringify(placement) : typeof placement}`);
}

/** The default global name of a child: `[supervisorId, childId]`. */
export function defaultChildName(supervisor: string, child: string): Name {
  return [supervisor, child];
}

export function normalizeChild(where: string, supervisor: string, spec: DistributedChildSpec, prefix = ''): NormalizedChild {
  if (typeof spec !== 'object' || spec === null) throw invalid(where, prefix || 'child', 'must be an object');
  checkKeys(where, spec, CHILD_KEYS, prefix);
  if (typeof spec.id !== 'string' || spec.id.length === 0 || spec.id.length > 255) {
    throw invalid(where, `${prefix}id`, `must be a string of 1 to 255 characters, got ${typeof spec.id === 'string' ? JSON.stringify(spec.id) : typeof spec.id}`);
  }
  const behaviour = spec.behaviour ?? spec.key;
  if (spec.behaviour !== undefined && spec.key !== undefined && spec.behaviour !== spec.key) {
    throw invalid(where, `${prefix}key`, 'and behaviour name the same thing: give one');
  }
  if (typeof behaviour !== 'string' || behaviour.length === 0 || behaviour.length > 255) {
    throw invalid(where, `${prefix}behaviour`, 'must be the key (1 to 255 characters) of a behaviour registered with node.behaviours.register');
  }
  const restart = spec.restart ?? DEFAULTS.restart;
  if (!RESTARTS.has(restart)) throw invalid(where, `${prefix}restart`, `must be permanent, transient or temporary, got ${String(restart)}`);
  const shutdown = spec.shutdown ?? DEFAULTS.shutdown;
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || (typeof shutdown === 'number' && Number.isSafeInteger(shutdown) && shutdown >= 0))) {
    throw invalid(where, `${prefix}shutdown`, `must be an integer of ms >= 0, brutal_kill or infinity, got ${String(shutdown)}`);
  }
  const placement = spec.placement === undefined ? undefined : checkPlacement(where, `${prefix}placement`, spec.placement);
  const name = spec.name ?? defaultChildName(supervisor, spec.id);
  try {
    canonicalName(name);
  } catch (error) {
    throw new SupervisionError('invalid_spec', `${where}: ${prefix}name: ${(error as Error).message}`, `${prefix}name`, { cause: error });
  }
  return { id: spec.id, behaviour, args: spec.args, restart, shutdown, placement, name, key: nameKey(name) };
}

export function normalizeSpec(where: string, spec: DistributedSupervisorSpec): NormalizedSpec {
  if (typeof spec !== 'object' || spec === null) throw invalid(where, 'spec', 'must be an object');
  checkKeys(where, spec, SPEC_KEYS, '');
  if (typeof spec.id !== 'string' || spec.id.length === 0 || spec.id.length > 200) {
    throw invalid(where, 'id', `must be a string of 1 to 200 characters, got ${typeof spec.id === 'string' ? JSON.stringify(spec.id) : typeof spec.id}`);
  }
  if (spec.strategy !== undefined && spec.strategy !== 'one_for_one') {
    throw invalid(where, 'strategy', `must be one_for_one (children on different nodes are restarted one by one), got ${String(spec.strategy)}`);
  }
  const intensity = positiveInteger(where, 'intensity', spec.intensity, DEFAULTS.intensity, 0);
  const period = positiveInteger(where, 'period', spec.period, DEFAULTS.period, 1);
  const minMembers = positiveInteger(where, 'minMembers', spec.minMembers, DEFAULTS.minMembers, 1);
  const clusterSize = positiveInteger(where, 'clusterSize', spec.clusterSize, 0, 1);
  const quorum = Math.max(minMembers, clusterSize === 0 ? 0 : Math.floor(clusterSize / 2) + 1);
  const syncTimeout = positiveInteger(where, 'syncTimeout', spec.syncTimeout, DEFAULTS.syncTimeout, 0);
  const startTimeout = positiveInteger(where, 'startTimeout', spec.startTimeout, DEFAULTS.startTimeout, 1);
  const registry = spec.registry ?? DEFAULTS.registry;
  if (typeof registry !== 'string' || registry.length === 0) throw invalid(where, 'registry', 'must be a non-empty registry key');
  const placement = spec.placement === undefined ? DEFAULTS.placement : checkPlacement(where, 'placement', spec.placement);
  if (spec.children !== undefined && !Array.isArray(spec.children)) throw invalid(where, 'children', 'must be an array of child specs');
  const children: NormalizedChild[] = [];
  const ids = new Set<string>();
  const names = new Set<string>();
  (spec.children ?? []).forEach((child, index) => {
    const normalized = normalizeChild(where, spec.id, child, `children[${index}].`);
    if (ids.has(normalized.id)) throw invalid(where, `children[${index}].id`, `${JSON.stringify(normalized.id)} is used twice`);
    if (names.has(normalized.key)) throw invalid(where, `children[${index}].name`, `${normalized.key} is used twice`);
    ids.add(normalized.id);
    names.add(normalized.key);
    children.push(normalized);
  });
  return { id: spec.id, intensity, period, children, placement, quorum, registry, syncTimeout, startTimeout };
}
