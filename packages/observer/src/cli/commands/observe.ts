/** `roster observe`: the observer page, served from the CLI's own observer node, until the CLI is stopped. */
import { startObserver } from '../../index.js';
import { CliError } from '../errors.js';
import { readSecretSource } from '../session.js';
import type { CommandContext, ObserveResult } from './types.js';

/** A running observer: what to print, and how to stop it. */
export interface RunningObserve {
  readonly result: ObserveResult;
  close(): Promise<void>;
}

/**
 * Starts the observer on `config.host` / `config.port` (its own defaults
 * when unset: loopback, a free port), with the token when one is given.
 * `CliError`: `listen_failed` when it cannot bind, `usage` for a token it refuses.
 */
export async function observe(context: CommandContext): Promise<RunningObserve> {
  const { config } = context;
  const token = await readSecretSource(config.token);
  let observer;
  try {
    observer = await startObserver(context.node, {
      ...(config.host === undefined ? {} : { host: config.host }),
      ...(config.port === undefined ? {} : { port: config.port }),
      ...(token === undefined ? {} : { token: token.reveal() }),
      // Shown on the page, redacted by the observer.
      broker: config.urls[0]!,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if ((error as { code?: unknown }).code === 'listen_failed') throw new CliError('listen_failed', message, { cause: error });
    // The observer names the option it refuses (the token's length, never the token).
    if (error instanceof TypeError) throw new CliError('usage', message, { cause: error });
    throw new CliError('cluster', message, { cause: error });
  }
  return { result: { command: 'observe', url: observer.url }, close: () => observer.close() };
}
