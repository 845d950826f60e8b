import { RosterError } from '@roster/core';

/** Why a {@link MemoryTransport} lost, or never had, its connection. */
export type MemoryTransportErrorCode =
  /** `MemoryBroker.disconnect(node)` cut the connection; `reconnect(node)` restores it. */
  | 'disconnected'
  /** `MemoryBroker.crash(node)` killed the transport for good. */
  | 'crashed'
  /** The transport was closed by its owner. */
  | 'closed'
  /** The transport is not connected (never connected, or down). */
  | 'not_connected';

/**
 * The error a memory transport reports in `down` events and rejections.
 * `code` is stable and safe to switch on.
 */
export class MemoryTransportError extends RosterError {
  override readonly name = 'MemoryTransportError';

  constructor(
    readonly code: MemoryTransportErrorCode,
    message: string,
  ) {
    super(message);
  }
}
