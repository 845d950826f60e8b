import type { ChannelModel } from 'amqplib';

/** The part of amqplib's connection this reaches into: its outbound multiplexer and the socket under it. */
interface Muxed {
  readonly muxer?: { _readIncoming?: () => void; out?: { cork?: () => void; uncork?: () => void } };
}

/**
 * Makes one socket write of all the frames amqplib sends in one turn.
 * amqplib's multiplexer writes each publish to the socket by itself, and on
 * a virtual machine each write is a system call of tens of microseconds: a
 * registration's claim and commit to two peers were four. Corking the
 * socket around the multiplexer's pass lets Node hand all of a pass's
 * frames to one `writev`, in the same order. This reaches into amqplib's
 * internals (`connection.muxer`, as of amqplib 2.3), so it applies
 * only where they have the expected shape: otherwise amqplib writes as it
 * always did. Returns whether it applied.
 */
export function batchSocketWrites(model: ChannelModel): boolean {
  const muxer = (model.connection as unknown as Muxed).muxer;
  const pass = muxer?._readIncoming;
  const socket = muxer?.out;
  if (typeof pass !== 'function' || typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return false;
  muxer!._readIncoming = function readIncomingCorked(this: unknown): void {
    socket.cork!();
    try {
      pass.call(this);
    } finally {
      socket.uncork!();
    }
  };
  return true;
}
