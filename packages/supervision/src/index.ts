export { DistributedSupervisor, type ChildLocation, type DistributedRequestOptions, type MemberStats } from './distributed-supervisor.js';
export { Singleton, singletonId, type SingletonSpec } from './singleton.js';
export { Placer, type Placement, type PlacementCandidate, type PlacementContext, type PlacementFunction } from './placement.js';
export { SupervisionError, type SupervisionErrorCode } from './errors.js';
export type {
  ChildContext,
  ChildState,
  DistributedBehaviour,
  DistributedChildCounts,
  DistributedChildInfo,
  DistributedChildSpec,
  DistributedSupervisorEvents,
  DistributedSupervisorSpec,
} from './spec.js';
