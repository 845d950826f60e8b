import type { Logger } from 'pino';

/**
 * Logs at warn at most once per `intervalMs` per key, saying how many were
 * suppressed in between: a flood of bad frames must not become a flood of logs.
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    readonly logger: Logger,
    readonly intervalMs = 1000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last.at < this.intervalMs) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    this.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
