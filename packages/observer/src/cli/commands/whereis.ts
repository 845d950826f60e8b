/** `roster whereis NAME`: the holder of one global name, or exit 3. */
import { isName, type Name } from '@roster/core';
import { CliError, usageError } from '../errors.js';
import { formatName } from '../format.js';
import { nameRow } from './names.js';
import type { CommandContext, WhereisResult } from './types.js';

/**
 * The name a command-line argument means: its JSON value when it parses as
 * JSON (`42`, `true`, `["job",7]`, `"42"`), else the argument as a string
 * (`counter`). Names are JSON values; quote a string that looks like another
 * value (`'"42"'`).
 */
export function parseNameArgument(argument: string): Name {
  let value: unknown = argument;
  try {
    value = JSON.parse(argument);
  } catch {
    return argument;
  }
  if (!isName(value)) throw usageError(`NAME ${argument} is not a name (a JSON value: string, number, boolean, null, array or object)`);
  return value;
}

/** The holder of `argument`'s name; `CliError('not_found')` when nobody holds it. */
export function whereis(context: CommandContext, argument: string): WhereisResult {
  const name = parseNameArgument(argument);
  const row = nameRow(context, name);
  if (row === undefined) throw new CliError('not_found', `name ${formatName(name)} is not registered in cluster ${JSON.stringify(context.cluster.id)}`);
  return { command: 'whereis', ...row };
}
