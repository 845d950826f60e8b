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
  | 'misrouted';

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
