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
  | 'no_channel';

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
