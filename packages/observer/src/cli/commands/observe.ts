/** `roster observe`: the observer page, served from the CLI's own observer node, until the CLI is stopped. */
import { startObserver } from '../../index.js';
import type { CommandContext, ObserveResult } from './types.js';

/** A running observer: what to print, and how to stop it. */
export interface RunningObserve {
  readonly result: ObserveResult;
  close(): Promise<void>;
}

/** Starts the observer on `config.host` / `config.port` (its own defaults when unset: loopback, and its default port). */
export async function observe(context: CommandContext): Promise<RunningObserve> {
  const { config } = context;
  const observer = await startObserver(context.node, {
    ...(config.host === undefined ? {} : { host: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
  });
  return { result: { command: 'observe', url: observer.url }, close: () => observer.close() };
}
