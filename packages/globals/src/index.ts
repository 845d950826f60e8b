export { GlobalsRegistry, type GlobalsRegistryOptions, type GlobalsEvents, type GlobalsStats, type GlobalsIntrospection } from './globals-registry.js';
export { RegistryUnavailableError } from './errors.js';
export { compareEpochs, formatEpoch, HybridLogicalClock, type Epoch } from './epoch.js';
export {
  resolveConflict,
  type ConflictPolicy,
  type ConflictResolver,
  type ConflictClaim,
  type ConflictOutcome,
  type NameConflictMessage,
} from './conflict.js';
