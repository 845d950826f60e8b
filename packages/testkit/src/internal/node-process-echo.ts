import { noreply, reply, stopAndReply, type GenServer, type Pid } from '@roster/core';

/**
 * The echo server of the cluster tests, in-process and in forked node
 * processes alike:
 * - call `'ping'` -> `'pong'`; call `{ crash: message }` -> throws `new Error(message)`;
 * - call `{ stop: reason }` -> replies `'ok'`, then stops with `reason`;
 * - call `{ hold: true }` -> never replies (for calls that must fail some other way);
 * - any other call -> `{ request, from: from.pid }`, so a test can see who called;
 * - cast `{ forward: pid, message }` -> sends `message` to `pid`; other casts are ignored;
 * - any other message -> ignored.
 */
export const EchoServer: GenServer<null, undefined> = {
  init: () => null,
  handleCall(request: unknown, from, state) {
    if (request === 'ping') return reply('pong', state);
    if (typeof request === 'object' && request !== null) {
      const r = request as { crash?: unknown; stop?: unknown; hold?: unknown };
      if (typeof r.crash === 'string') throw new Error(r.crash);
      if ('stop' in r) return stopAndReply(r.stop, 'ok', state);
      if (r.hold === true) return noreply(state);
    }
    return reply({ request, from: from.pid }, state);
  },
  handleCast(message: unknown, state, self) {
    if (typeof message === 'object' && message !== null && 'forward' in message) {
      const { forward, message: inner } = message as { forward: Pid; message: unknown };
      self.send(forward, inner);
    }
    return noreply(state);
  },
  handleInfo: (_message, state) => noreply(state),
};
