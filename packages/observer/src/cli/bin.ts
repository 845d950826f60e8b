#!/usr/bin/env node
/**
 * The `roster` command: parse, run, print, exit. Everything else lives in
 * the modules it calls (flags.ts, config.ts, session.ts, commands/,
 * format.ts), so this file holds no logic worth a test of its own. Errors
 * are one line on stderr (no stack), with the exit status of errors.ts's
 * table; the observer node is stopped before the process ends, so nothing
 * holds it open.
 */
import { resolveConfig } from './config.js';
import { CliError, EXIT_CODES, exitCodeFor } from './errors.js';
import { parseCommandLine, type CommandLine } from './flags.js';
import { formatHelp, render } from './format.js';
import { openSession, type Session } from './session.js';
import { names } from './commands/names.js';
import { nodes } from './commands/nodes.js';
import { processes } from './commands/processes.js';
import { whereis } from './commands/whereis.js';
import type { CommandResult } from './commands/types.js';

function fail(error: unknown): number {
  if (error instanceof CliError) {
    process.stderr.write(`roster: ${error.message}\n`);
    return exitCodeFor(error.code);
  }
  process.stderr.write(`roster: unexpected failure: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_CODES.failure;
}

/** Resolves at the first SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function run(line: Extract<CommandLine, { kind: 'run' }>): Promise<number> {
  const config = resolveConfig({ flags: line.flags, env: process.env });
  const session: Session = await openSession(config);
  try {
    if (line.command === 'observe') {
      // Loaded only here: the page's server and metrics are no cost to the other commands.
      const { observe } = await import('./commands/observe.js');
      const running = await observe(session);
      process.stdout.write(render(running.result, config.json));
      await untilSignal();
      await running.close();
      return EXIT_CODES.ok;
    }
    let result: CommandResult;
    switch (line.command) {
      case 'nodes':
        result = await nodes(session);
        break;
      case 'names':
        result = names(session);
        break;
      case 'whereis':
        result = whereis(session, line.args[0]!);
        break;
      case 'processes':
        result = await processes(session, line.args[0]!);
        break;
    }
    process.stdout.write(render(result, config.json));
    return EXIT_CODES.ok;
  } finally {
    await session.stop();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  try {
    const line = parseCommandLine(argv);
    if (line.kind === 'help') {
      process.stdout.write(formatHelp(line.command));
      return EXIT_CODES.ok;
    }
    return await run(line);
  } catch (error) {
    return fail(error);
  }
}

process.exitCode = await main(process.argv.slice(2));
