import { RosterError } from '@roster/core';
/** Why an {@link AmqpTransportError} was raised. */
export type AmqpTransportErrorCode =
  /** `flush()` while the transport is not `up`: frames handed over now are dropped. */
  | 'not_connected'
  /** The connection was lost before the frames were confirmed. */
  | 'connection_lost'
  /** The transport was closed (before `connect()` finished, or before the frames were confirmed). */
  | 'closed'
  /** `connect()` could not reach any broker within `connectTimeoutMs`. */
  | 'connect_failed'
  /** The broker refused a message (`basic.nack`), or it was dropped because the send buffer was full. */
  | 'rejected';

/** An error of {@link AmqpTransport}, with a stable `code`. Messages never contain credentials. */
export class AmqpTransportError extends RosterError {
  override readonly name = 'AmqpTransportError';
  readonly code: AmqpTransportErrorCode;

  constructor(code: AmqpTransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
