/**
 * The table of a chaos run: a pure function from a {@link History} (its
 * samples included) and the checker's {@link CheckResult} to JSON
 * ({@link buildReport}) and to Markdown text ({@link renderReport}).
 *
 * - Operations by kind and outcome (`indeterminate`: no answer came).
 * - Faults injected, by kind.
 * - Violations, by kind (the goal: none), with the first few spelled out.
 * - `registerName` latency p50 / p99 (nearest rank, completed calls of any
 *   result): all, those that answered `yes`, *under faults* (invoked between a fault's injection and
 *   its recovery) and quiet.
 * - Time to re-converge after each fault kind: from the fault's recovery
 *   (the `heal` of a link fault, the `restart` of a killed node, the
 *   `broker-restart` of a killed broker) to the first sample at which every
 *   node that is up answered and all their tables agree, names in flux
 *   excepted (an operation on the name, or a death of a pid the name
 *   resolves to, within `fluxMargin` of the sample). Its resolution is the
 *   sampling period.
 * - Per node, the share of the run it was *impaired* (excused by the
 *   checker: connectivity.ts), in all and by cause (link, down, broker).
 * - Reconnections (`reconnected` node events) by cause: `broker-kill` (the
 *   node's broker was killed since its previous connection; `failover`
 *   when it came back on another broker, `same broker` when on the killed
 *   one after its restart), `link` (a cut, blackhole or delay of its link
 *   since then), `other` (none of these: a spontaneous loss).
 *
 * @module
 */
import { checkHistory, VIOLATION_KINDS, type CheckerOptions, type CheckResult, type ViolationKind } from './checker.js';
import { deriveConnectivity, type Connectivity, type Impairment } from './connectivity.js';
import type { FaultEvent, FaultKind, History, Millis, NodeEvent, Operation, OpKind, Sample } from './history.js';
import { covers, measure, subtract } from './intervals.js';

/** Nearest-rank percentiles of a list of durations, in ms. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: Millis | null;
  readonly p99: Millis | null;
  readonly max: Millis | null;
}

/** Re-convergence after the faults of one kind. */
export interface ConvergenceSummary extends LatencySummary {
  /** Faults of this kind that recovered (healed, restarted) during the run. */
  readonly recoveries: number;
  /** Recoveries after which no agreeing sample came before the run ended. */
  readonly notConverged: number;
}

/** The JSON form of the table (`chaos-report.json`). */
export interface ChaosReport {
  readonly run: {
    readonly nodes: number;
    readonly brokers: number | null;
    readonly seed: number | null;
    readonly durationMs: Millis;
    readonly failureTimeout: Millis;
    readonly samples: number;
  };
  /** Per operation kind: outcome -> count. */
  readonly operations: Readonly<Record<OpKind, Readonly<Record<string, number>>>>;
  /** Per operation kind: error text -> count (the commonest first, at most 8). */
  readonly errors: Readonly<Record<OpKind, Readonly<Record<string, number>>>>;
  readonly faults: Readonly<Partial<Record<FaultKind, number>>>;
  readonly violations: Readonly<Record<ViolationKind, number>>;
  readonly violationCount: number;
  /** The first violations' messages (at most 20). */
  readonly violationExamples: readonly string[];
  readonly registerLatency: { readonly all: LatencySummary; readonly yes: LatencySummary; readonly underFaults: LatencySummary; readonly quiet: LatencySummary };
  /** Per fault kind that recovers (`cut`, `blackhole`, `delay`, `kill-node`, `broker-kill`). */
  readonly reconvergence: Readonly<Partial<Record<FaultKind, ConvergenceSummary>>>;
  readonly impaired: readonly ImpairedShare[];
  readonly reconnections: ReconnectionSummary;
  readonly checked: CheckResult['checked'];
  readonly checkerOptions: CheckResult['options'];
}

/** A node's impaired time (see connectivity.ts), as shares of the run (0..1). */
export interface ImpairedShare {
  readonly node: string;
  readonly share: number;
  readonly ms: Millis;
  readonly byCause: Readonly<Record<Impairment['cause'], number>>;
}

/** Reconnections by cause (see the module header). */
export interface ReconnectionSummary {
  readonly total: number;
  readonly brokerKill: number;
  /** Of `brokerKill`: back on another broker than the killed one. */
  readonly failover: number;
  /** Of `brokerKill`: back on the killed broker itself (after its restart). */
  readonly sameBroker: number;
  /** Of `brokerKill`: broker unknown. */
  readonly unknownBroker: number;
  readonly link: number;
  readonly other: number;
  /** Per broker-kill fault: how many of the nodes it affected reconnected to another broker before the broker was back. */
  readonly perBrokerKill: readonly { readonly broker: string; readonly at: Millis; readonly affected: number; readonly failedOverBeforeRestart: number }[];
}

/** Options of {@link buildReport}. */
export interface ReportOptions {
  /** The checker's result; default `checkHistory(history, checker)`. */
  readonly check?: CheckResult;
  /** Options for the checker when `check` is not given. */
  readonly checker?: CheckerOptions;
  /** A name is in flux at a sample when something happened to it within this many ms of it. Default 250. */
  readonly fluxMargin?: Millis;
}

const OP_KINDS: readonly OpKind[] = ['register', 'unregister', 'whereis', 'call'];
/** The fault kinds that last until a recovery. */
const RECOVERING: readonly FaultKind[] = ['cut', 'blackhole', 'delay', 'kill-node', 'broker-kill'];

/** Nearest-rank percentile summary of `values`. */
export function summarize(values: readonly number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: null, p99: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}

/** An operation's outcome as the table counts it. */
export function outcomeOf(op: Operation): string {
  if (op.completeAt === null) return 'indeterminate';
  if (op.op === 'whereis') return op.result === null ? 'none' : op.result === 'error' ? 'error' : 'found';
  return op.result;
}

/** When the fault `fault` recovered, or `undefined` when it did not during the run (or is itself a recovery). */
export function recoveryOf(history: History, fault: FaultEvent): Millis | undefined {
  const later = history.events.filter((e): e is FaultEvent | NodeEvent => (e.kind === 'fault' || e.kind === 'node') && e.at >= fault.at).sort((a, b) => a.at - b.at);
  switch (fault.fault) {
    case 'cut':
    case 'blackhole':
    case 'delay':
      return later.find((e) => e.kind === 'fault' && e.fault === 'heal' && (e.target === fault.target || e.target === 'all'))?.at;
    case 'kill-node':
      return (
        later.find((e) => e.kind === 'node' && e.event === 'restart' && e.node === fault.target)?.at ??
        later.find((e) => e.kind === 'fault' && e.fault === 'restart-node' && e.target === fault.target)?.at
      );
    case 'broker-kill':
      return later.find((e) => e.kind === 'fault' && e.fault === 'broker-restart' && e.target === fault.target)?.at;
    default:
      return undefined;
  }
}

/** Whether the nodes up at `sample` all answered and agree on every name not in flux. */
export function sampleAgrees(history: History, sample: Sample, connectivity: Connectivity, fluxMargin: Millis): boolean {
  const expected = history.meta.nodes.filter((node) => !covers(connectivity.downOf(node), sample.at));
  const views = expected.map((node) => sample.views[node]);
  if (views.some((view) => view === undefined)) return false;
  const names = new Set<string>();
  for (const view of views) for (const name of Object.keys(view!)) names.add(name);
  const from = sample.at - fluxMargin;
  const to = sample.endAt + fluxMargin;
  for (const name of names) {
    const first = views[0]![name];
    if (views.every((view) => view![name] === first)) continue;
    if (inFlux(history, name, views.map((view) => view![name]), from, to)) continue;
    return false;
  }
  return true;
}

function inFlux(history: History, name: string, pids: readonly (string | undefined)[], from: Millis, to: Millis): boolean {
  const involved = new Set(pids.filter((p): p is string => p !== undefined));
  return history.events.some((e) => {
    if (e.kind === 'op') return (e.op === 'register' || e.op === 'unregister') && e.name === name && e.invokeAt <= to && (e.completeAt ?? Infinity) >= from;
    if (e.kind === 'death') return involved.has(e.pid) && e.at >= from && e.at <= to;
    return false;
  });
}

/** Builds the table's data from a history (pure). */
export function buildReport(history: History, options: ReportOptions = {}): ChaosReport {
  const check = options.check ?? checkHistory(history, options.checker);
  const fluxMargin = options.fluxMargin ?? 250;
  const connectivity = deriveConnectivity(history, check.options);
  const ops = history.events.filter((e): e is Operation => e.kind === 'op');
  const operations = Object.fromEntries(OP_KINDS.map((kind) => [kind, {} as Record<string, number>])) as Record<OpKind, Record<string, number>>;
  const errorCounts = Object.fromEntries(OP_KINDS.map((kind) => [kind, {} as Record<string, number>])) as Record<OpKind, Record<string, number>>;
  for (const op of ops) {
    const outcome = outcomeOf(op);
    operations[op.op][outcome] = (operations[op.op][outcome] ?? 0) + 1;
    if (op.result === 'error' && op.error !== undefined) errorCounts[op.op][op.error] = (errorCounts[op.op][op.error] ?? 0) + 1;
  }
  const errors = Object.fromEntries(
    OP_KINDS.map((kind) => [kind, Object.fromEntries(Object.entries(errorCounts[kind]).sort((a, b) => b[1] - a[1]).slice(0, 8))]),
  ) as Record<OpKind, Record<string, number>>;

  const faultEvents = history.events.filter((e): e is FaultEvent => e.kind === 'fault');
  const faults: Partial<Record<FaultKind, number>> = {};
  for (const fault of faultEvents) faults[fault.fault] = (faults[fault.fault] ?? 0) + 1;

  const registers = ops.filter((o) => o.op === 'register' && o.completeAt !== null);
  // Under faults: from a fault's injection to its recovery (to the end, when it never recovered).
  const faultWindows = faultEvents
    .filter((f) => RECOVERING.includes(f.fault))
    .map((f) => ({ from: f.at, to: recoveryOf(history, f) ?? Infinity }));
  const impairedAt = (t: Millis): boolean => covers(faultWindows, t);
  const latency = (list: readonly Operation[]): LatencySummary => summarize(list.map((o) => o.completeAt! - o.invokeAt));
  const underFaults = registers.filter((o) => impairedAt(o.invokeAt));
  const quiet = registers.filter((o) => !impairedAt(o.invokeAt));

  const samples = [...(history.samples ?? [])].sort((a, b) => a.at - b.at);
  const agreement = new Map<Sample, boolean>();
  const agrees = (sample: Sample): boolean => {
    let known = agreement.get(sample);
    if (known === undefined) {
      known = sampleAgrees(history, sample, connectivity, fluxMargin);
      agreement.set(sample, known);
    }
    return known;
  };
  const reconvergence: Partial<Record<FaultKind, ConvergenceSummary>> = {};
  for (const kind of RECOVERING) {
    const durations: number[] = [];
    let recoveries = 0;
    let notConverged = 0;
    for (const fault of faultEvents.filter((f) => f.fault === kind)) {
      const recovered = recoveryOf(history, fault);
      if (recovered === undefined) continue;
      recoveries++;
      const first = samples.find((s) => s.at >= recovered && agrees(s));
      if (first === undefined) notConverged++;
      else durations.push(first.at - recovered);
    }
    if (recoveries > 0) reconvergence[kind] = { ...summarize(durations), recoveries, notConverged };
  }

  // ---- impaired share per node ----
  const run0 = history.meta.startedAt;
  const run1 = history.meta.endedAt;
  const span = { from: run0, to: run1 };
  const within = (list: readonly { from: Millis; to: Millis }[]): Millis => (run1 - run0) - measure(subtract(span, list));
  const impaired: ImpairedShare[] = history.meta.nodes.map((node) => {
    const mine = connectivity.impairments.filter((i) => i.node === node);
    const total = within(mine);
    const byCause = Object.fromEntries((['link', 'down', 'broker'] as const).map((cause) => [cause, within(mine.filter((i) => i.cause === cause))])) as Record<Impairment['cause'], number>;
    const d = Math.max(1, run1 - run0);
    return { node, ms: total, share: total / d, byCause: Object.fromEntries(Object.entries(byCause).map(([k, v]) => [k, v / d])) as Record<Impairment['cause'], number> };
  });

  // ---- reconnections by cause ----
  const timeline = history.events.filter((e): e is FaultEvent | NodeEvent => e.kind === 'fault' || e.kind === 'node').sort((a, b) => a.at - b.at);
  const counts = { total: 0, brokerKill: 0, failover: 0, sameBroker: 0, unknownBroker: 0, link: 0, other: 0 };
  const lastConnect = new Map<string, Millis>();
  const brokerIndex = (target: string): number => Number(target.replace(/^broker/, ''));
  for (const event of timeline) {
    if (event.kind !== 'node') continue;
    if (event.event === 'restart') lastConnect.set(event.node, event.at);
    if (event.event !== 'reconnected') continue;
    counts.total++;
    const since = lastConnect.get(event.node) ?? -Infinity;
    lastConnect.set(event.node, event.at);
    const between = timeline.filter((e): e is FaultEvent => e.kind === 'fault' && e.at >= since && e.at <= event.at);
    const kill = [...between].reverse().find((f) => f.fault === 'broker-kill' && (f.affects === undefined || f.affects.includes(event.node)));
    const link = between.some((f) => (f.fault === 'cut' || f.fault === 'blackhole' || f.fault === 'delay' || f.fault === 'heal') && (f.target === event.node || f.target === 'all'));
    if (kill !== undefined) {
      counts.brokerKill++;
      if (event.broker === undefined) counts.unknownBroker++;
      else if (event.broker === brokerIndex(kill.target)) counts.sameBroker++;
      else counts.failover++;
    } else if (link) counts.link++;
    else counts.other++;
  }
  const perBrokerKill = faultEvents
    .filter((f) => f.fault === 'broker-kill')
    .map((f) => {
      const back = recoveryOf(history, f) ?? Infinity;
      const affected = f.affects ?? history.meta.nodes;
      const failedOver = affected.filter((node) =>
        timeline.some((e) => e.kind === 'node' && e.event === 'reconnected' && e.node === node && e.at >= f.at && e.at <= back && e.broker !== undefined && e.broker !== brokerIndex(f.target)),
      );
      return { broker: f.target, at: f.at - run0, affected: affected.length, failedOverBeforeRestart: failedOver.length };
    });

  return {
    run: {
      nodes: history.meta.nodes.length,
      brokers: history.meta.brokers ?? null,
      seed: history.meta.seed ?? null,
      durationMs: history.meta.endedAt - history.meta.startedAt,
      failureTimeout: history.meta.failureTimeout,
      samples: samples.length,
    },
    operations,
    errors,
    faults,
    violations: check.byKind,
    violationCount: check.violations.length,
    violationExamples: check.violations.slice(0, 20).map((v) => `${v.kind}: ${v.message}`),
    registerLatency: { all: latency(registers), yes: latency(registers.filter((o) => o.result === 'yes')), underFaults: latency(underFaults), quiet: latency(quiet) },
    reconvergence,
    impaired,
    reconnections: { ...counts, perBrokerKill },
    checked: check.checked,
    checkerOptions: check.options,
  };
}

const ms = (value: Millis | null): string => (value === null ? '–' : `${Math.round(value)}`);

/** Renders the table as Markdown. */
export function renderReport(report: ChaosReport): string {
  const lines: string[] = [];
  const { run } = report;
  lines.push(
    `## chaos: ${(run.durationMs / 60_000).toFixed(1)} min, ${run.nodes} nodes, ${run.brokers ?? '?'} broker${run.brokers === 1 ? '' : 's'}, seed ${run.seed ?? '–'}, failure timeout ${run.failureTimeout} ms`,
    '',
    '| operation | total | outcomes |',
    '| --- | ---: | --- |',
  );
  for (const kind of OP_KINDS) {
    const outcomes = Object.entries(report.operations[kind]).sort((a, b) => b[1] - a[1]);
    const total = outcomes.reduce((sum, [, n]) => sum + n, 0);
    lines.push(`| ${kind} | ${total} | ${outcomes.map(([o, n]) => `${o} ${n}`).join(' · ') || '–'} |`);
  }
  const errorLines = OP_KINDS.flatMap((kind) => Object.entries(report.errors[kind]).map(([error, n]) => `| ${kind} | ${error.replaceAll('|', '\\|')} | ${n} |`));
  if (errorLines.length > 0) lines.push('', '| operation | error | count |', '| --- | --- | ---: |', ...errorLines);
  lines.push('', '| fault | injected |', '| --- | ---: |');
  const faults = Object.entries(report.faults);
  if (faults.length === 0) lines.push('| (none) | 0 |');
  for (const [fault, n] of faults) lines.push(`| ${fault} | ${n} |`);
  lines.push('', `| violation | count |`, '| --- | ---: |');
  for (const kind of VIOLATION_KINDS) lines.push(`| ${kind} | ${report.violations[kind]} |`);
  lines.push(`| **total** | **${report.violationCount}** |`);
  if (report.violationExamples.length > 0) {
    lines.push('');
    for (const example of report.violationExamples) lines.push(`- ${example}`);
  }
  const { registerLatency: l } = report;
  lines.push('', '| registerName latency (ms) | n | p50 | p99 | max |', '| --- | ---: | ---: | ---: | ---: |');
  for (const [label, s] of [['all', l.all], ['yes only', l.yes], ['under faults', l.underFaults], ['quiet', l.quiet]] as const) {
    lines.push(`| ${label} | ${s.count} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} |`);
  }
  lines.push('', '| re-convergence after (ms) | recoveries | converged | p50 | p99 | max |', '| --- | ---: | ---: | ---: | ---: | ---: |');
  const conv = Object.entries(report.reconvergence);
  if (conv.length === 0) lines.push('| (no recoveries) | 0 | 0 | – | – | – |');
  for (const [fault, s] of conv) lines.push(`| ${fault} | ${s.recoveries} | ${s.count} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(s.max)} |`);
  if (report.impaired !== undefined) {
    const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
    lines.push('', '| node | impaired (share of the run) | link | down | broker |', '| --- | ---: | ---: | ---: | ---: |');
    for (const i of report.impaired) lines.push(`| ${i.node} | ${pct(i.share)} (${Math.round(i.ms / 1000)} s) | ${pct(i.byCause.link)} | ${pct(i.byCause.down)} | ${pct(i.byCause.broker)} |`);
  }
  if (report.reconnections !== undefined) {
    const r = report.reconnections;
    lines.push(
      '',
      '| reconnections | count |',
      '| --- | ---: |',
      `| after a broker kill: to another broker (failover) | ${r.failover} |`,
      `| after a broker kill: to the same broker, restarted | ${r.sameBroker} |`,
      ...(r.unknownBroker > 0 ? [`| after a broker kill: broker unknown | ${r.unknownBroker} |`] : []),
      `| after a link fault (cut, blackhole, delay) | ${r.link} |`,
      `| other | ${r.other} |`,
      `| **total** | **${r.total}** |`,
    );
    if (r.perBrokerKill.length > 0) {
      lines.push('', `Broker kills: ${r.perBrokerKill.map((k) => `${k.broker} at +${Math.round(k.at / 1000)} s: ${k.failedOverBeforeRestart}/${k.affected} affected nodes on another broker before its restart`).join('; ')}.`);
    }
  }
  const c = report.checked;
  lines.push(
    '',
    `Checked ${c.holds} holds (${c.openHolds} open at the end, ${c.uncheckedHolds} of them with no final read to judge), ${c.reads} reads and ${c.finalReads} final reads; ${run.samples} samples. ` +
      `Windows: settle ${report.checkerOptions.settle} ms, join grace ${report.checkerOptions.joinGrace} ms, blackhole detection ${report.checkerOptions.amqpDetect} ms, reconnect bound ${report.checkerOptions.reconnectBound} ms, stale bound ${report.checkerOptions.failureTimeout} + ${report.checkerOptions.staleSlack} ms, overlap tolerance ${report.checkerOptions.tolerance} ms (derived: connectivity.ts).`,
  );
  return `${lines.join('\n')}\n`;
}
