/**
 * Half-open time intervals `[from, to)` and the few set operations the
 * checker needs: union, intersection, difference, measure. Pure.
 *
 * @module
 */
import type { Millis } from './history.js';

/** `[from, to)`; `to` may be `Infinity`. Empty when `to <= from`. */
export interface Interval {
  readonly from: Millis;
  readonly to: Millis;
}

export const isEmpty = (interval: Interval): boolean => interval.to <= interval.from;

/** Sorted, disjoint, non-empty intervals covering the same time as `intervals`. */
export function union(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => !isEmpty(i)).sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const interval of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && interval.from <= last.to) out[out.length - 1] = { from: last.from, to: Math.max(last.to, interval.to) };
    else out.push(interval);
  }
  return out;
}

export function intersect(a: Interval, b: Interval): Interval {
  return { from: Math.max(a.from, b.from), to: Math.min(a.to, b.to) };
}

/** The parts of `interval` not covered by `holes` (any intervals). */
export function subtract(interval: Interval, holes: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let cursor = interval.from;
  for (const hole of union(holes)) {
    if (hole.to <= cursor) continue;
    if (hole.from >= interval.to) break;
    if (hole.from > cursor) out.push({ from: cursor, to: hole.from });
    cursor = Math.max(cursor, hole.to);
    if (cursor >= interval.to) break;
  }
  if (cursor < interval.to) out.push({ from: cursor, to: interval.to });
  return out.filter((i) => !isEmpty(i));
}

/** Total length (may be `Infinity`). */
export function measure(intervals: readonly Interval[]): number {
  return union(intervals).reduce((sum, i) => sum + (i.to - i.from), 0);
}

/** Whether instant `t` lies in one of `intervals`. */
export function covers(intervals: readonly Interval[], t: Millis): boolean {
  return intervals.some((i) => i.from <= t && t < i.to);
}

/** Whether `intervals` overlap `[from, to]` anywhere (closed at both ends, for windows of zero length). */
export function touches(intervals: readonly Interval[], from: Millis, to: Millis): boolean {
  return intervals.some((i) => i.from <= to && from < i.to);
}
