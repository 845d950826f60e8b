/**
 * The children as every member of one distributed supervisor sees them: a
 * record per child, replicated over the cluster and merged last-writer-wins
 * by a Lamport version, so every member converges on the same table once
 * it has seen the same writes (in any order, any number of times).
 *
 * Who writes what keeps the writes from racing: the member hosting a child
 * writes its runs and exits; the leader (the member with the smallest node
 * name, with quorum) writes placements of children whose host is gone;
 * any member writes a user's start, stop and delete. The registry, not this
 * table, decides who may run a child: the table says where it should.
 */
import type { Name, Pid, RestartType } from '@roster/core';
import type { ChildState } from '../spec.js';
import type { Shutdown } from './options.js';

/** The part of a child spec that crosses the wire; `placement` is `function` for a member-local function. */
export interface WireChildSpec {
  readonly behaviour: string;
  readonly args: unknown;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
  readonly placement: string | readonly string[] | undefined;
  readonly name: Name;
}

/** A Lamport version: `[counter, writer node]`, ordered by counter, then node name. */
export type Version = readonly [number, string];

export interface ChildRecord {
  readonly id: string;
  readonly v: Version;
  readonly spec: WireChildSpec;
  readonly state: ChildState;
  /** Where it runs or should: a node name; undefined while it waits for a placement. */
  readonly host: string | undefined;
  /** The running instance (state `running`). */
  readonly pid: Pid | undefined;
  readonly restarts: number;
  /** What the previous instance handed over, for the next `init` (state `assigned` after a handoff). */
  readonly handoff: { readonly value: unknown } | undefined;
  /** Why the last start failed, when it stopped for that. */
  readonly failure: string | undefined;
}

export type RecordChange = Partial<Omit<ChildRecord, 'id' | 'v' | 'spec'>> & { readonly spec?: WireChildSpec };

export function compareVersions(a: Version, b: Version): number {
  if (a[0] !== b[0]) return a[0] - b[0];
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

export class ChildTable {
  readonly #records = new Map<string, ChildRecord>();
  #clock = 0;

  constructor(readonly self: string) {}

  get(id: string): ChildRecord | undefined {
    return this.#records.get(id);
  }

  get size(): number {
    return this.#records.size;
  }

  values(): IterableIterator<ChildRecord> {
    return this.#records.values();
  }

  /** A new version of `id`'s record (or its first one, when `spec` is given), written by this member. */
  write(id: string, change: RecordChange): ChildRecord {
    const record = this.next(id, change);
    this.put(record);
    return record;
  }

  /** Stores a record {@link next} made. */
  put(record: ChildRecord): void {
    this.#records.set(record.id, record);
  }

  /** What {@link write} would store, without storing it (so a write that cannot be sent changes nothing). */
  next(id: string, change: RecordChange): ChildRecord {
    const previous = this.#records.get(id);
    const spec = change.spec ?? previous?.spec;
    if (spec === undefined) throw new Error(`child ${id}: a first record needs its spec`);
    const record: ChildRecord = {
      id,
      v: [this.#clock + 1, this.self],
      spec,
      state: 'state' in change ? change.state! : (previous?.state ?? 'assigned'),
      host: 'host' in change ? change.host : previous?.host,
      pid: 'pid' in change ? change.pid : previous?.pid,
      restarts: change.restarts ?? previous?.restarts ?? 0,
      handoff: 'handoff' in change ? change.handoff : previous?.handoff,
      failure: 'failure' in change ? change.failure : previous?.failure,
    };
    this.#clock = Math.max(this.#clock, record.v[0]);
    return record;
  }

  /** Takes in a peer's record; answers the record it replaced (or null for a first one) when it is newer, else undefined. */
  merge(record: ChildRecord): ChildRecord | null | undefined {
    if (record.v[0] > this.#clock) this.#clock = record.v[0];
    const previous = this.#records.get(record.id);
    if (previous !== undefined && compareVersions(record.v, previous.v) <= 0) return undefined;
    this.#records.set(record.id, record);
    return previous ?? null;
  }
}
