/** `roster nodes`: the live members of the cluster as the CLI's observer node sees them. */
import type { CommandContext, NodesResult } from './types.js';

/** The live members (roles and incarnations from the cluster, name counts from the globals registry). */
export function nodes(context: CommandContext): NodesResult {
  const { cluster, registry } = context;
  const held = new Map<string, number>();
  for (const name of registry.registered()) {
    const pid = registry.whereisName(name);
    if (pid !== undefined) held.set(pid.node, (held.get(pid.node) ?? 0) + 1);
  }
  const rows = cluster
    .members()
    .map((peer) => ({ node: peer.node, role: peer.role, creation: peer.creation, names: held.get(peer.node) ?? 0 }))
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { command: 'nodes', cluster: cluster.id, nodes: rows };
}
