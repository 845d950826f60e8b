import type { Pid, Ref } from '../pid.js';
import type { ExitReason } from '../exit-reason.js';

/** A GenServer call request: replies go to `from.replyTo`. */
export interface CallMessage {
  readonly type: '$gen_call';
  readonly from: From;
  readonly request: unknown;
}

/** Who made a call: the calling process, and where its reply goes. */
export interface From {
  readonly pid: Pid;
  readonly replyTo: Pid;
  /**
   * The reference of the caller's monitor on the server (OTP's reply tag).
   * A server on another node that replies itself drops that monitor as it
   * replies, so the caller sends no demonitor: one frame each way per call.
   */
  readonly tag?: Ref;
}

export interface CastMessage {
  readonly type: '$gen_cast';
  readonly request: unknown;
}

export interface ReplyMessage {
  readonly type: '$gen_reply';
  readonly value: unknown;
}

/**
 * What a node answers a call's reply port when a call to one of its local
 * names arrived from another node (`GenServer.multiCall`): the pid the name
 * resolved to, or none (`noproc`).
 */
export interface WhereisMessage {
  readonly type: '$gen_whereis';
  readonly name: string;
  readonly pid?: Pid;
}

/** Asks a GenServer to stop the way `gen_server:stop/3` does. */
export interface StopMessage {
  readonly type: '$gen_stop';
  readonly reason: ExitReason;
}



/** Internal: thrown into a process body to unwind it after `self.exit(reason)`. */
export class ExitSignal {
  constructor(readonly reason: ExitReason) {}
}

/** Internal: rejects a pending receive of a process that is already dead. */
export class ProcessExited {
  constructor(readonly pid: Pid) {}
}

export const isCallMessage = (message: unknown): message is CallMessage =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === '$gen_call';

export const isCastMessage = (message: unknown): message is CastMessage =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === '$gen_cast';

export const isStopMessage = (message: unknown): message is StopMessage =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === '$gen_stop';

export type MonitorRef = Ref;
