/**
 * What members of one distributed supervisor say to each other on their
 * cluster channel (`$dsup:<id>`), and the check every incoming message
 * passes: anything malformed is refused with the reason, never half-applied.
 *
 * - `hello`: a member started; peers answer with `records` (all of theirs) and their `load`.
 * - `load`: a member's process count and the behaviour keys it can host (every few seconds).
 * - `records`: record versions to merge; `want` asks the receiver for all of its own.
 * - `migrate`: to a child's host: hand it over to `to`.
 * - `leaving`: the sender stops gracefully and hands its children over: place nothing on it (taken in at once, outside the mailbox).
 * - `digest`: anti-entropy, every few seconds: a hash of the sender's versions; a receiver whose own differs sends its table with `want`.
 */
import { canonicalName, isPid, type Pid } from '@roster/core';
import type { ChildState } from '../spec.js';
import type { ChildRecord, WireChildSpec } from './child-table.js';

export type MemberMessage =
  | { readonly op: 'hello'; readonly load: number; readonly keys: readonly string[] }
  | { readonly op: 'load'; readonly load: number; readonly keys: readonly string[] }
  | { readonly op: 'records'; readonly records: readonly ChildRecord[]; readonly want?: boolean }
  | { readonly op: 'migrate'; readonly id: string; readonly to: string }
  | { readonly op: 'digest'; readonly hash: string }
  | { readonly op: 'leaving' };

/** Most records in one message (a full table goes in several). */
export const RECORDS_PER_MESSAGE = 200;
const MAX_KEYS = 10_000;
const STATES: ReadonlySet<string> = new Set<ChildState>(['assigned', 'running', 'stopped', 'deleted']);
const RESTARTS: ReadonlySet<string> = new Set(['permanent', 'transient', 'temporary']);

/** The message, or a string saying why it is refused. */
export function parseMemberMessage(raw: unknown): MemberMessage | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not an object';
  const message = raw as Record<string, unknown>;
  switch (message['op']) {
    case 'hello':
    case 'load': {
      const load = message['load'];
      const keys = message['keys'];
      if (typeof load !== 'number' || !Number.isSafeInteger(load) || load < 0) return `${message['op']}: load must be an integer >= 0`;
      if (!Array.isArray(keys) || keys.length > MAX_KEYS || !keys.every(isShortString)) return `${message['op']}: keys must be a list of keys`;
      return { op: message['op'], load, keys };
    }
    case 'records': {
      const records = message['records'];
      if (!Array.isArray(records) || records.length > RECORDS_PER_MESSAGE) return `records: at most ${RECORDS_PER_MESSAGE} records`;
      const parsed: ChildRecord[] = [];
      for (const record of records) {
        const checked = parseRecord(record);
        if (typeof checked === 'string') return `records: ${checked}`;
        parsed.push(checked);
      }
      const want = message['want'];
      if (want !== undefined && typeof want !== 'boolean') return 'records: want must be a boolean';
      return want === true ? { op: 'records', records: parsed, want } : { op: 'records', records: parsed };
    }
    case 'migrate': {
      if (!isShortString(message['id']) || !isShortString(message['to'])) return 'migrate: id and to must be strings';
      return { op: 'migrate', id: message['id'] as string, to: message['to'] as string };
    }
    case 'digest': {
      const hash = message['hash'];
      if (typeof hash !== 'string' || hash.length === 0 || hash.length > 128) return 'digest: hash must be a short string';
      return { op: 'digest', hash };
    }
    default:
      return `unknown op ${JSON.stringify(String(message['op']).slice(0, 40))}`;
  }
}

function isShortString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 255;
}

function parseRecord(raw: unknown): ChildRecord | string {
  if (typeof raw !== 'object' || raw === null) return 'a record must be an object';
  const record = raw as Record<string, unknown>;
  const id = record['id'];
  if (!isShortString(id)) return 'id must be a string';
  const v = record['v'];
  if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || (v[0] as number) < 1 || !isShortString(v[1])) {
    return `${id}: v must be [counter, node]`;
  }
  const state = record['state'];
  if (typeof state !== 'string' || !STATES.has(state)) return `${id}: bad state`;
  const host = record['host'];
  if (host !== undefined && !isShortString(host)) return `${id}: host must be a node name`;
  const pid = record['pid'];
  if (pid !== undefined && !isPid(pid)) return `${id}: pid must be a pid`;
  if (state === 'running' && (pid === undefined || host === undefined || (pid as Pid).node !== host)) {
    return `${id}: a running child needs its host and a pid of that host`;
  }
  const restarts = record['restarts'];
  if (!Number.isSafeInteger(restarts) || (restarts as number) < 0) return `${id}: restarts must be an integer >= 0`;
  const handoff = record['handoff'];
  if (handoff !== undefined && (typeof handoff !== 'object' || handoff === null || !('value' in handoff))) return `${id}: bad handoff`;
  const failure = record['failure'];
  if (failure !== undefined && (typeof failure !== 'string' || failure.length > 4096)) return `${id}: bad failure`;
  const spec = parseSpec(record['spec']);
  if (typeof spec === 'string') return `${id}: ${spec}`;
  return {
    id,
    v: [v[0] as number, v[1] as string],
    spec,
    state: state as ChildState,
    host: host as string | undefined,
    pid: pid as Pid | undefined,
    restarts: restarts as number,
    handoff: handoff as { value: unknown } | undefined,
    failure: failure as string | undefined,
  };
}

function parseSpec(raw: unknown): WireChildSpec | string {
  if (typeof raw !== 'object' || raw === null) return 'spec must be an object';
  const spec = raw as Record<string, unknown>;
  if (!isShortString(spec['behaviour'])) return 'spec.behaviour must be a key';
  if (typeof spec['restart'] !== 'string' || !RESTARTS.has(spec['restart'])) return 'spec.restart is not a restart type';
  const shutdown = spec['shutdown'];
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || (Number.isSafeInteger(shutdown) && (shutdown as number) >= 0))) {
    return 'spec.shutdown is not a shutdown';
  }
  const placement = spec['placement'];
  if (!(placement === undefined || isShortString(placement) || (Array.isArray(placement) && placement.length <= MAX_KEYS && placement.every(isShortString)))) {
    return 'spec.placement is not a placement';
  }
  try {
    canonicalName(spec['name'] as never);
  } catch {
    return 'spec.name is not a name';
  }
  return {
    behaviour: spec['behaviour'] as string,
    args: spec['args'],
    restart: spec['restart'] as WireChildSpec['restart'],
    shutdown: shutdown as WireChildSpec['shutdown'],
    placement: placement as WireChildSpec['placement'],
    name: spec['name'] as WireChildSpec['name'],
  };
}
