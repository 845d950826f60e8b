/**
 * Chaos testing of the globals registry, Jepsen's way: a recorded
 * {@link History} of operations under injected faults, a checker that
 * reports every violation by kind, and the report's table.
 *
 * @module
 */
export {
  HistoryFormatError,
  HistoryRecorder,
  isPidString,
  parseHistory,
  parsePid,
  startOf,
  type CallOp,
  type DeathEvent,
  type FaultEvent,
  type FaultKind,
  type History,
  type HistoryEvent,
  type HistoryMeta,
  type HistoryRecorderOptions,
  type Millis,
  type NodeEvent,
  type OpHandle,
  type OpKind,
  type Operation,
  type PidString,
  type RegisterOp,
  type Sample,
  type UnregisterOp,
  type WhereisOp,
} from './history.js';
export { defaultWindows, deriveConnectivity, WINDOW_MARGIN, type Connectivity, type ConnectivityOptions, type Impairment } from './connectivity.js';
export { type Interval } from './intervals.js';
export {
  checkHistory,
  deathTimes,
  excerpt,
  holdsOf,
  VIOLATION_KINDS,
  type CheckerOptions,
  type CheckResult,
  type Hold,
  type Violation,
  type ViolationKind,
} from './checker.js';
export {
  buildReport,
  outcomeOf,
  recoveryOf,
  renderReport,
  sampleAgrees,
  summarize,
  type ChaosReport,
  type ImpairedShare,
  type ReconnectionSummary,
  type ConvergenceSummary,
  type LatencySummary,
  type ReportOptions,
} from './report.js';
export { Nemesis, NEMESIS_FAULTS, seededRandom, type NemesisFault, type NemesisOptions, type PlannedFault } from './nemesis.js';
export { runChaos, type ChaosOptions, type ChaosRun } from './runner.js';
