import type { Pid, Ref } from './pid.js';

/**
 * Why a process exited. The atoms Erlang users know are strings; anything
 * else is a term (`{ shutdown: detail }`, `{ name_conflict, ... }`), or the
 * Error a crashed process threw.
 */
export type ExitReason = 'normal' | 'shutdown' | 'kill' | 'killed' | 'noproc' | 'noconnection' | { shutdown: unknown } | Error | unknown;

/** `normal`, `shutdown` and `{ shutdown: _ }`: exits a `transient` child is not restarted for. */
export function isCleanExit(reason: ExitReason): boolean {
  return (
    reason === 'normal' ||
    reason === 'shutdown' ||
    (typeof reason === 'object' && reason !== null && !(reason instanceof Error) && 'shutdown' in reason)
  );
}

/** A trapped exit signal, delivered as a message to a process that traps exits. */
export interface ExitMessage {
  readonly type: 'EXIT';
  readonly from: Pid;
  readonly reason: ExitReason;
}

/** What a monitor delivers, exactly once. */
export interface DownMessage {
  readonly type: 'DOWN';
  readonly ref: Ref;
  readonly pid: Pid;
  readonly reason: ExitReason;
}

export function isExitMessage(message: unknown): message is ExitMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'EXIT';
}

export function isDownMessage(message: unknown): message is DownMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'DOWN';
}

/** A short, log-friendly rendering of a reason. */
export function formatReason(reason: ExitReason): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  try {
    // Errors nested in a reason ({ shutdown: { reason: Error } }) read as their message, not as `{}`.
    return (
      JSON.stringify(reason, (_key, value: unknown) =>
        value instanceof Error ? `${value.name}: ${value.message}` : typeof value === 'bigint' ? `${value}n` : value,
      ) ?? String(reason)
    );
  } catch {
    return String(reason);
  }
}
