import { GenServer, noreply, type From, type Name, type Pid } from '@roster/core';
import type { Answer, NameTable } from './name-table.js';
import type { GlobalsMessage } from './protocol.js';

export type ServerRequest =
  | { readonly op: 'register'; readonly key: string; readonly name: Name; readonly pid: Pid; readonly timeout: number }
  | { readonly op: 'whereisConsistent'; readonly key: string; readonly name: Name; readonly timeout: number }
  | { readonly op: 'unregister'; readonly key: string; readonly name: Name; readonly timeout: number }
  | { readonly op: 'reRegister'; readonly key: string; readonly name: Name; readonly pid: Pid; readonly timeout: number }
  | { readonly op: 'sync'; readonly timeout: number }
  | { readonly op: 'initialSync'; readonly timeout: number };

export type ServerInfo =
  | { readonly type: '$globals'; readonly from: string; readonly message: GlobalsMessage }
  /** The messages of one frame, in order. */
  | { readonly type: '$globals_batch'; readonly from: string; readonly messages: readonly GlobalsMessage[] }
  | { readonly type: '$globals_nodeup'; readonly node: string; readonly creation?: string }
  /** An observer came up: it learns what this node owns, and is never a voter. */
  | { readonly type: '$globals_observerup'; readonly node: string }
  | { readonly type: '$globals_nodedown' | '$globals_gap'; readonly node: string }
  | { readonly type: '$globals_tick' };

export interface ServerArgs {
  readonly table: NameTable;
  /** Told the server's pid at every (re)start, so the registry knows where to send. */
  readonly started: (pid: Pid, restarted: boolean) => void;
}

/**
 * The registry as an actor: one mailbox orders every peer message and local
 * request, so handlers never run concurrently for a name. It holds no state
 * of its own: the table outlives it, so a restart (it is supervised) keeps
 * every name and asks every member for its claims at once.
 */
export const RegistryServer: GenServer<ServerArgs, ServerArgs, ServerRequest> = {
  init(args, self) {
    const restarted = serverStarts.has(args.table);
    serverStarts.add(args.table);
    args.started(self.pid, restarted);
    if (restarted) args.table.restarted();
    return args;
  },

  handleCall(request, from: From, state, self) {
    const answer = (value: Answer | Pid | undefined | Error | 'ok'): void => GenServer.reply(self, from, value);
    switch (request.op) {
      case 'register':
        state.table.register(request.key, request.name, request.pid, request.timeout, answer);
        break;
      case 'whereisConsistent':
        state.table.whereisConsistent(request.key, request.name, request.timeout, answer);
        break;
      case 'reRegister':
        state.table.reRegister(request.key, request.name, request.pid, request.timeout, answer);
        break;
      case 'unregister':
        state.table.unregister(request.key, request.name, request.timeout, (error) => answer(error ?? 'ok'));
        break;
      case 'sync':
        state.table.sync(request.timeout, (error) => answer(error ?? 'ok'));
        break;
      case 'initialSync':
        state.table.initialSync(request.timeout, (silent) => answer(silent.length === 0 ? 'ok' : new Error(silent.join(', '))));
        break;
    }
    return noreply(state);
  },

  handleInfo(message, state) {
    const info = message as ServerInfo;
    switch (info.type) {
      case '$globals':
        state.table.onMessage(info.from, info.message);
        break;
      case '$globals_batch':
        for (const message of info.messages) state.table.onMessage(info.from, message);
        break;
      case '$globals_nodeup':
        state.table.onNodeUp(info.node, info.creation);
        break;
      case '$globals_observerup':
        state.table.onObserverUp(info.node);
        break;
      case '$globals_gap':
        state.table.onGap(info.node);
        break;
      case '$globals_nodedown':
        state.table.onNodeDown(info.node);
        break;
      case '$globals_tick':
        state.table.antiEntropy();
        break;
    }
    return noreply(state);
  },
};

/** Tables whose server has started once: a later start is a restart. */
const serverStarts = new WeakSet<NameTable>();
