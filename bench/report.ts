/**
 * Shared plumbing for the benchmark suites: timing (median of N runs after
 * warm-up), the printed table, and `bench/results/<suite>.json`.
 *
 * A suite is a module exporting `suite: Suite`; `bench/run.ts` lists them.
 * Every result compares roster against a baseline measured in the same run
 * (machines are shared and noisy, so only in-run ratios are meaningful) and
 * states its `ratio` oriented so that higher is better for roster.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Is a bigger value better (throughput) or a smaller one (latency)? */
export type Better = 'higher' | 'lower';

export interface Target {
  /** `>=` for throughputs, `<=` for latencies. */
  readonly op: '>=' | '<=';
  readonly value: number;
  /** Where the target comes from, e.g. `Erlang/OTP 25`. */
  readonly source?: string;
}

export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  /** roster's figure (the median of the measured runs). */
  readonly value: number;
  readonly baseline: { readonly name: string; readonly value: number };
  /** roster over baseline, oriented so that higher is better (baseline / value for latencies). */
  readonly ratio: number;
  readonly better: Better;
  readonly target?: Target;
  readonly targetMet?: boolean;
  /** Every measured run, roster and baseline, for the record. */
  readonly samples?: { readonly value: readonly number[]; readonly baseline: readonly number[] };
  readonly note?: string;
}

export interface Suite {
  readonly name: string;
  readonly description?: string;
  run(): Promise<BenchResult[]>;
}

export interface Measurement {
  readonly median: number;
  readonly samples: number[];
}

export interface MeasureOptions {
  /** Runs thrown away first (JIT, caches, heap sizing). Default 1. */
  readonly warmup?: number;
  /** Measured runs; the median is kept. Default 5. */
  readonly runs?: number;
  /** Lets the heap settle between runs (`global.gc` when exposed, and one event-loop turn). */
  readonly settle?: boolean;
}

/**
 * Runs `once` `warmup + runs` times and keeps the median of the measured
 * runs. `once` returns the figure of one run (ops/s, us/op, ...), and is told
 * whether this run is a warm-up (so a slow baseline may warm up on a smaller
 * batch); `timeIt` with `perSecond` / `microsPerOp` makes such a figure.
 */
export async function measure(
  once: (warmup: boolean) => Promise<number> | number,
  options: MeasureOptions = {},
): Promise<Measurement> {
  const warmup = options.warmup ?? 1;
  const runs = options.runs ?? 5;
  const samples: number[] = [];
  for (let index = 0; index < warmup + runs; index++) {
    if (options.settle !== false) await settle();
    const value = await once(index < warmup);
    if (index >= warmup) samples.push(value);
  }
  return { median: median(samples), samples };
}

/**
 * Measures several bodies in alternation (every warm-up first, then one run of
 * each in turn, `runs` times), so a load spike from a neighbour on a shared
 * machine lands on every side rather than skewing one median. Typically
 * `[roster, baseline]`; returns one Measurement per body, in order.
 */
export async function measureInterleaved<const Bodies extends readonly RunBody[]>(
  bodies: Bodies,
  options: MeasureOptions = {},
): Promise<{ -readonly [K in keyof Bodies]: Measurement }> {
  const warmup = options.warmup ?? 1;
  const runs = options.runs ?? 5;
  const once = async (body: RunBody, warm: boolean): Promise<number> => {
    if (options.settle !== false) await settle();
    return body(warm);
  };
  for (let index = 0; index < warmup; index++) for (const body of bodies) await once(body, true);
  const samples = bodies.map((): number[] => []);
  for (let index = 0; index < runs; index++) {
    for (let which = 0; which < bodies.length; which++) samples[which]!.push(await once(bodies[which]!, false));
  }
  return samples.map((values) => ({ median: median(values), samples: values })) as { -readonly [K in keyof Bodies]: Measurement };
}

/** One run of a benchmark: returns its figure; told whether it is a warm-up. */
export type RunBody = (warmup: boolean) => Promise<number> | number;

/** Times `body` and returns the elapsed milliseconds. */
export async function timeIt(body: () => Promise<unknown> | unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await body();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Operations per second for `ops` operations done in `ms`. */
export const perSecond = (ops: number, ms: number): number => (ops * 1000) / ms;

/** Microseconds per operation for `ops` operations done in `ms`. */
export const microsPerOp = (ops: number, ms: number): number => (ms * 1000) / ops;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A full garbage collection, so one run's garbage is not collected during the next one. */
export const collectGarbage: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // Not available: runs simply share the collector's work.
  }
  return () => {};
})();

/** Waits for the event loop to drain pending work, then collects garbage. */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
}

/** Builds a result, working out the ratio and whether the target is met. */
export function result(fields: {
  readonly name: string;
  readonly unit: string;
  readonly better: Better;
  readonly value: Measurement | number;
  readonly baseline: { readonly name: string; readonly value: Measurement | number };
  readonly target?: Target;
  readonly note?: string;
}): BenchResult {
  const value = typeof fields.value === 'number' ? fields.value : fields.value.median;
  const baseline = typeof fields.baseline.value === 'number' ? fields.baseline.value : fields.baseline.value.median;
  const ratio = fields.better === 'higher' ? value / baseline : baseline / value;
  const samples =
    typeof fields.value !== 'number' && typeof fields.baseline.value !== 'number'
      ? { value: fields.value.samples, baseline: fields.baseline.value.samples }
      : undefined;
  return {
    name: fields.name,
    unit: fields.unit,
    value,
    baseline: { name: fields.baseline.name, value: baseline },
    ratio,
    better: fields.better,
    ...(fields.target !== undefined
      ? {
          target: fields.target,
          targetMet: fields.target.op === '>=' ? value >= fields.target.value : value <= fields.target.value,
        }
      : {}),
    ...(samples !== undefined ? { samples } : {}),
    ...(fields.note !== undefined ? { note: fields.note } : {}),
  };
}

// ---- output ------------------------------------------------------------------

/** A figure with about three significant digits and a k/M suffix for big numbers. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(abs >= 1e8 ? 0 : 2)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(abs >= 1e6 ? 0 : 1)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function formatTable(suite: string, results: readonly BenchResult[]): string {
  const header = ['benchmark', 'unit', 'roster', 'baseline', 'baseline value', 'ratio', 'target', 'met'];
  const rows = results.map((r) => [
    r.name,
    r.unit,
    formatValue(r.value),
    r.baseline.name,
    formatValue(r.baseline.value),
    `${r.ratio.toFixed(2)}x`,
    r.target === undefined ? '-' : `${r.target.op} ${formatValue(r.target.value)}`,
    r.targetMet === undefined ? '-' : r.targetMet ? 'yes' : 'NO',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const numeric = new Set([2, 4, 5]);
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, column) => (numeric.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (numeric.has(column) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  // Notes (what a row measures, CPU per operation) under the table, numbered by row.
  const notes = results.flatMap((r, index) => (r.note === undefined || r.note === '' ? [] : [`${index + 1}. ${r.name}: ${r.note}`]));
  return [`## ${suite}`, '', line(header), rule, ...rows.map(line), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}

export function machine(): { readonly cpus: number; readonly cpuModel: string; readonly memoryGiB: number; readonly node: string; readonly platform: string } {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'results');

/** Writes `bench/results/<suite>.json` and returns its path. */
export async function writeResults(suite: string, results: readonly BenchResult[], elapsedMs?: number): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${suite}.json`);
  const body = {
    suite,
    results: results.map((r) => ({
      name: r.name,
      unit: r.unit,
      value: r.value,
      baseline: { name: r.baseline.name, value: r.baseline.value },
      ratio: r.ratio,
      better: r.better,
      ...(r.target !== undefined ? { target: r.target, targetMet: r.targetMet } : {}),
      ...(r.samples !== undefined ? { samples: r.samples } : {}),
      ...(r.note !== undefined ? { note: r.note } : {}),
    })),
    machine: machine(),
    timestamp: new Date().toISOString(),
    ...(elapsedMs !== undefined ? { elapsedMs: Math.round(elapsedMs) } : {}),
  };
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}
