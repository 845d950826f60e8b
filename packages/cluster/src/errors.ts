import { RosterError } from '@roster/core';

/** A value that cannot cross the wire, refused at the sender. */
export class WireEncodeError extends RosterError {
  readonly code = 'wire_encode';
  override readonly name = 'WireEncodeError';

  constructor(
    message: string,
    /** Where in the value: `$.a[2].b`. */
    readonly path: string,
  ) {
    super(message);
  }
}

export type DropReason =
  | 'malformed'
  | 'oversized'
  | 'version'
  | 'foreign_cluster'
  | 'bad_signature'
  | 'unknown_peer'
  | 'misrouted'
  /** Seen before (sequence number, or an older session of a live peer), or a membership frame too old to be live. */
  | 'replayed'
  /** A membership frame stamped further ahead of this node's clock than `maxClockSkew`. */
  | 'clock_skew'
  /** A channel message for a channel that did not open in time (or while too much waited for unopened channels). */
  | 'no_channel'
  /** A member's frame that speaks for a process not of its own incarnation (a signal "from", a `DOWN` "of", a link or monitor "for" one). */
  | 'forged';

/** Why an incoming frame was dropped; thrown by the decoder, counted by the cluster. */
export class WireDecodeError extends RosterError {
  readonly code = 'wire_decode';
  override readonly name = 'WireDecodeError';

  constructor(
    readonly reason: DropReason,
    message: string,
  ) {
    super(message);
  }
}

/** Another live node already uses this node's name in the cluster. */
export class NodeNameTakenError extends RosterError {
  readonly code = 'node_name_taken';
  override readonly name = 'NodeNameTakenError';
}

/**
 * Why `cluster.snapshotOf(node)` failed:
 * - `unknown_node`: `node` is not a live member (nor observer) of the cluster, nor this node;
 * - `noconnection`: `node` went down (or this node left) before it answered;
 * - `timeout`: no answer within the request's `timeout`;
 * - `too_large`: the node's answer would not fit in one frame (`maxFrameBytes`) even without its process list.
 */
export type IntrospectionErrorCode = 'unknown_node' | 'noconnection' | 'timeout' | 'too_large';

/** A snapshot of a peer could not be had; match on `code`. */
export class IntrospectionError extends RosterError {
  override readonly name = 'IntrospectionError';

  constructor(
    readonly code: IntrospectionErrorCode,
    /** The node asked. */
    readonly node: string,
    message: string,
  ) {
    super(message);
  }
}
