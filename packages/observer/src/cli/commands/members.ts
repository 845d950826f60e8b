/** The check the commands that name a node share: it must be a live member of the cluster. */
import { CliError } from '../errors.js';
import type { CommandContext } from './types.js';

/** Throws `CliError('not_found')` naming the node and the live members when `node` is not one of them. */
export function requireMember(context: CommandContext, node: string): void {
  const { cluster } = context;
  if (cluster.nodes().includes(node)) return;
  const members = cluster.nodes().sort();
  throw new CliError(
    'not_found',
    `node ${JSON.stringify(node)} is not a live member of cluster ${JSON.stringify(cluster.id)} (members: ${members.length === 0 ? 'none' : members.join(', ')})`,
  );
}
