export { Node, type NodeEvents, type NodeOptions, type NodeClusterOptions } from './node.js';
export { Pid, Ref, isPid, isRef } from './pid.js';
export { canonicalName, nameKey, isName, type Name } from './name.js';
export { via, isVia, describeDest, type Dest, type Via } from './dest.js';
export {
  isCleanExit,
  isExitMessage,
  isDownMessage,
  formatReason,
  type ExitReason,
  type ExitMessage,
  type DownMessage,
} from './exit-reason.js';
export { isNodeDownMessage, isNodeUpMessage, type NodeDownMessage, type NodeUpMessage } from './node-monitor.js';
export {
  RosterError,
  BadArgError,
  CallError,
  AlreadyStartedError,
  StartError,
  SupervisorError,
  NodeStoppedError,
  SpawnError,
  type SpawnErrorCode,
  type SupervisorErrorCode,
  type CallFailure,
} from './errors.js';
export { TIMEOUT, type Timeout, type Process, type ProcessBody, type SpawnOptions, type CallOptions, type Matcher } from './process.js';
export {
  Reply,
  NoReply,
  Stop,
  Ok,
  Ignore,
  reply,
  noreply,
  stop,
  stopAndReply,
  ok,
  ignore,
  type Action,
  type InitResult,
  type IgnorableGenServer,
  type CallResult,
  type CastResult,
} from './gen-server-callbacks.js';
export {
  GenServer,
  type MonitoredStart,
  type MultiCallOptions,
  type MultiCallResult,
  type From,
  type StartOptions,
  type Caller,
  type RemoteStartOptions,
  type CatalogueStartOptions,
  startFromCatalogue,
} from './gen-server.js';
export { BehaviourCatalogue, type CatalogueEntry, type SpawnBody } from './behaviour-catalogue.js';
export { spawnOn } from './spawn-on.js';
export {
  Supervisor,
  type SupervisorSpec,
  type Strategy,
  type AutoShutdown,
  type NormalizedChildSpec,
  type ChildStartResult,
  type ChildSpec,
  type ChildType,
  type RestartType,
  type Shutdown,
  type ChildInfo,
  type ChildCounts,
  type ChildOptions,
} from './supervisor.js';
export { DynamicSupervisor, type DynamicSupervisorSpec } from './dynamic-supervisor.js';
export { LatencyHistogram, type LatencySnapshot } from './latency-histogram.js';
export type {
  NodeStats,
  ProcessKind,
  ProcessInfo,
  RestartRecord,
  SupervisorChildInfo,
  SupervisorInfo,
  MemoryInfo,
  EventLoopDelay,
  NodeSnapshot,
  SnapshotOptions,
} from './introspection.js';
export type { NameRegistry } from './registry.js';
export { LocalRegistry } from './local-registry.js';
export { registerDistributionDriver } from './distribution-driver.js';
export {
  type Distribution,
  type DistributionHost,
  type DistributionDriver,
  type RemoteSpawnRequest,
  type SignalKind,
} from './distribution.js';
