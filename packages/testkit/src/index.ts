export * from './rabbitmq.js';
export * from './cluster-harness.js';
export * from './conformance.js';
export * from './waiting.js';
export {
  startFaultLink,
  startFaultProxy,
  type FaultLink,
  type FaultLinkOptions,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultProxyState,
  type FaultProxyStats,
  type FaultProxyTarget,
} from './fault-proxy.js';
export {
  startRabbitMQCluster,
  type BrokerState,
  type RabbitMQCluster,
  type StartRabbitMQClusterOptions,
} from './rabbitmq-cluster.js';
export {
  buildReport,
  checkHistory,
  deriveConnectivity,
  excerpt,
  HistoryFormatError,
  HistoryRecorder,
  parseHistory,
  renderReport,
  runChaos,
  seededRandom,
  VIOLATION_KINDS,
  type ChaosOptions,
  type ChaosReport,
  type ChaosRun,
  type CheckerOptions,
  type CheckResult,
  type History,
  type HistoryEvent,
  type HistoryMeta,
  type ReportOptions,
  type Sample,
  type Violation,
  type ViolationKind,
} from './chaos/index.js';
