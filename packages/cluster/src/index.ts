import { registerDistributionDriver } from '@roster/core';
import { Cluster, type ClusterOptions } from './cluster.js';

export type { Transport, TransportConnectOptions, TransportState, TransportEvents } from './transport.js';
export * from './memory-transport.js';
export {
  Cluster,
  clusterOf,
  type ClusterOptions,
  type ClusterEvents,
  type ClusterStats,
  type ClusterChannel,
  type ChannelHandler,
  type PeerIdentity,
  type PeerInfo,
  type ClusterRole,
} from './cluster.js';
export {
  WireEncodeError,
  WireDecodeError,
  NodeNameTakenError,
  IntrospectionError,
  type IntrospectionErrorCode,
  type DropReason,
} from './errors.js';
export { INTROSPECTION_CHANNEL, type SnapshotOfOptions, type ClusterIntrospection } from './internal/introspection.js';
export { WIRE_VERSION } from './internal/envelope.js';
export { RateLimitedLog } from './internal/rate-limited-log.js';

// Importing this package is what makes `Node.start({ cluster })` work.
registerDistributionDriver({
  join: (host, options) => Cluster.join(host, options as ClusterOptions),
});
