import { pino, type Logger } from 'pino';

/**
 * One child logger per node (`{ node }`). The level comes from
 * `ROSTER_LOG_LEVEL` when set (tests run silent), else from the option.
 */
export function createLogger(node: string, base: Logger | undefined, level: string | undefined): Logger {
  const envLevel = process.env['ROSTER_LOG_LEVEL'];
  // A library is quiet by default: warnings and errors only, unless the host says otherwise (ROSTER_LOG_LEVEL, logLevel, or its own logger).
  const root = base ?? pino({ level: envLevel ?? level ?? 'warn', name: 'roster' });
  const logger = root.child({ node });
  if (envLevel !== undefined && base !== undefined) logger.level = envLevel;
  return logger;
}
