/**
 * `roster nodes`: the live members of the cluster as the CLI's observer node
 * sees them, with what each one's snapshot says of its cluster layer and
 * registry (drops, its own registry operations).
 */
import type { NodeSnapshot } from '@roster/core';
import { clusterReport, globalsReport } from '../../internal/snapshot.js';
import type { CommandContext, NodesResult } from './types.js';

/** The key members install their globals registry under (the CLI's own uses it too). */
const REGISTRY_KEY = 'globals';

function sum(counts: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const count of Object.values(counts)) total += count;
  return total;
}

/** What the row says of one node's snapshot: its drops and its registry operations (null for what it does not report). */
export function reportedBy(snapshot: NodeSnapshot | undefined): Pick<NodesResult['nodes'][number], 'dropped' | 'registryOps'> {
  if (snapshot === undefined) return { dropped: null, registryOps: null };
  const cluster = clusterReport(snapshot);
  const globals = globalsReport(snapshot, REGISTRY_KEY);
  return {
    dropped: cluster === undefined && globals === undefined ? null : { frames: cluster === undefined ? 0 : sum(cluster.dropped), registry: globals === undefined ? 0 : sum(globals.drops) },
    registryOps: globals === undefined ? null : { register: globals.registrations, unregister: globals.unregistrations },
  };
}

/**
 * The live members (roles and incarnations from the cluster, name counts
 * from the globals registry), and each one's drops and registry operations
 * from a snapshot asked of every node at once (without process lists): a
 * node that does not answer within `--timeout` shows none (null), the
 * others still do.
 */
export async function nodes(context: CommandContext): Promise<NodesResult> {
  const { cluster, registry, config } = context;
  const held = new Map<string, number>();
  for (const name of registry.registered()) {
    const pid = registry.whereisName(name);
    if (pid !== undefined) held.set(pid.node, (held.get(pid.node) ?? 0) + 1);
  }
  const members = cluster.members();
  const snapshots = await Promise.all(
    members.map((peer) => cluster.snapshotOf(peer.node, { longestMailboxes: 0, timeout: config.timeout }).catch(() => undefined)),
  );
  const rows = members
    .map((peer, index) => ({ node: peer.node, role: peer.role, creation: peer.creation, names: held.get(peer.node) ?? 0, ...reportedBy(snapshots[index]) }))
    .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  return { command: 'nodes', cluster: cluster.id, nodes: rows };
}
