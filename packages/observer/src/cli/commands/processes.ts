/** `roster processes NODE`: every process of one node, from its snapshot (`clusterOf(node).snapshotOf`). */
import type { ProcessInfo } from '@roster/core';
import { CliError } from '../errors.js';
import { requireMember } from './members.js';
import type { CommandContext, ProcessesResult, ProcessRow } from './types.js';

function row(info: ProcessInfo): ProcessRow {
  return {
    pid: String(info.pid),
    name: info.name,
    kind: info.kind,
    mailboxLength: info.mailboxLength,
    messagesIn: info.messagesIn,
    trapExit: info.trapExit,
    links: info.links,
    monitors: info.monitors,
    startedAt: info.startedAt,
  };
}

/**
 * Asks `target` for its processes, within `config.timeout`. `CliError`:
 * `not_found` when it is not a live member (or leaves before answering as
 * one it does not know), `cluster` when it does not answer in time or the
 * connection is lost.
 */
export async function processes(context: CommandContext, target: string): Promise<ProcessesResult> {
  requireMember(context, target);
  let snapshot;
  try {
    snapshot = await context.cluster.snapshotOf(target, { processes: true, timeout: context.config.timeout });
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const detail = error instanceof Error ? error.message : String(error);
    if (code === 'unknown_node') throw new CliError('not_found', `node ${JSON.stringify(target)} is not a live member of cluster ${JSON.stringify(context.cluster.id)}`, { cause: error });
    if (code === 'timeout') throw new CliError('cluster', `node ${JSON.stringify(target)} did not answer within ${context.config.timeout} ms`, { cause: error });
    throw new CliError('cluster', `asking node ${JSON.stringify(target)} for its processes failed: ${detail}`, { cause: error });
  }
  const listed = (snapshot.processes ?? []).map(row);
  // A peer lists at most so many processes (those with the longest mailboxes) and says so; processCount is all of them.
  return { command: 'processes', node: target, processes: listed, omitted: snapshot.truncated === true ? Math.max(0, snapshot.processCount - listed.length) : 0 };
}
