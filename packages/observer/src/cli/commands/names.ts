/** `roster names [--node N]`: every global name with its holder and its claim's epoch. */
import type { Name } from '@roster/core';
import { formatEpoch } from '@roster/globals';
import { requireMember } from './members.js';
import type { CommandContext, NameRow, NamesResult } from './types.js';

/** The row of one name, or undefined when nobody holds it (any more). */
export function nameRow(context: CommandContext, name: Name): NameRow | undefined {
  const { registry } = context;
  const pid = registry.whereisName(name);
  if (pid === undefined) return undefined;
  const epoch = registry.epochOf(name);
  return { name, node: pid.node, pid: pid.key, epoch: epoch === undefined ? undefined : formatEpoch(epoch) };
}

/** Every name the registry knows (only `config.node`'s with `--node`), sorted by their JSON. */
export function names(context: CommandContext): NamesResult {
  const only = context.config.node;
  if (only !== undefined) requireMember(context, only);
  const rows: { row: NameRow; sortKey: string }[] = [];
  for (const name of context.registry.registered()) {
    const row = nameRow(context, name);
    if (row === undefined || (only !== undefined && row.node !== only)) continue;
    rows.push({ row, sortKey: JSON.stringify(name) });
  }
  rows.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  return { command: 'names', names: rows.map(({ row }) => row) };
}
