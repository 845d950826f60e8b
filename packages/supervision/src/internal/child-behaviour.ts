/**
 * The behaviour a member actually starts: the user's GenServer, with its
 * `init` given the child's context (the claim's epoch read after the name is
 * taken, the predecessor's handoff) and one more call understood, the
 * member's request for the handoff state.
 */
import { reply, type GenServer, type Process } from '@roster/core';
import type { Epoch } from '@roster/globals';
import type { ChildContext, DistributedBehaviour } from '../spec.js';

/** The call a member makes to a child it is about to move. */
export const HANDOFF_REQUEST = Object.freeze({ $dsup: 'handoff' });

function isHandoffRequest(request: unknown): boolean {
  return typeof request === 'object' && request !== null && (request as { $dsup?: unknown }).$dsup === 'handoff';
}

export function wrapBehaviour(
  behaviour: GenServer<any, any>,
  context: Omit<ChildContext, 'epoch'>,
  epochOf: () => Epoch | undefined,
): GenServer<any, any> {
  const user = behaviour as DistributedBehaviour<unknown>;
  const wrapped: GenServer<any, any> = {
    // The name is claimed before init runs (GenServer's `name` option), so its epoch is known here.
    init: (args: unknown, self: Process) => user.init(args, self, { ...context, epoch: epochOf() }),
    handleCall: (request: unknown, from, state, self) => {
      if (isHandoffRequest(request)) return reply(user.handoff === undefined ? undefined : user.handoff(state, self), state);
      if (user.handleCall === undefined) throw new TypeError(`${self.pid.key}: the behaviour has no handleCall`);
      return user.handleCall(request, from, state, self);
    },
  };
  if (user.handleCast !== undefined) wrapped.handleCast = (message, state, self) => user.handleCast!(message, state, self);
  if (user.handleInfo !== undefined) wrapped.handleInfo = (message, state, self) => user.handleInfo!(message, state, self);
  if (user.handleContinue !== undefined) wrapped.handleContinue = (arg, state, self) => user.handleContinue!(arg, state, self);
  if (user.terminate !== undefined) wrapped.terminate = (reason, state, self) => user.terminate!(reason, state, self);
  return wrapped;
}
