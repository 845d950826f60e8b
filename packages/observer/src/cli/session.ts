/**
 * The CLI's way into a cluster: a short-lived node with the watching role
 * (`role: 'observer'`: it sees every member and name, never votes, holds no
 * name, so running `roster` can never slow or block the cluster) and a
 * read-only GlobalsRegistry, over an AmqpTransport with a short connect
 * timeout. Failures come back as `CliError`s whose one-line message says
 * what to fix: a broker that cannot be reached, a wrong secret (peers heard
 * but their frames fail the signature check), a cluster nobody answers for.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Node } from '@roster/core';
import { clusterOf, type Cluster } from '@roster/cluster';
import { AmqpTransport, redactUrl } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';
import { pino } from 'pino';
import { parseSecretFile, type CliConfig, type Secret, type SecretSource } from './config.js';
import { CliError } from './errors.js';
import type { CommandContext } from './commands/types.js';

/** A joined observer node; `stop()` leaves the cluster and closes the broker connection. */
export interface Session extends CommandContext {
  stop(): Promise<void>;
}

/** One connection attempt (TCP + AMQP handshake) gives up after this long at most, so a dead URL costs little. */
const ATTEMPT_TIMEOUT_MS = 2000;

/** The secret `source` points at, read from its file when it is one; undefined for no source. */
export async function readSecretSource(source: SecretSource | undefined): Promise<Secret | undefined> {
  if (source === undefined) return undefined;
  if (source.from === 'env') return source.secret;
  let content: string;
  try {
    content = await readFile(source.path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new CliError('usage', `cannot read ${source.path} (${source.via}): ${code}`);
  }
  return parseSecretFile(content, source.path);
}

/** Whether `error` or one of its causes has `code`. */
function hasCode(error: unknown, code: string): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth++) {
    if ((current as { code?: unknown }).code === code) return true;
  }
  return false;
}

/** The last `; last error: …` detail of an AmqpTransport connect failure (it names no credentials). */
function lastAttemptError(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const index = message.indexOf('; last error: ');
  return index < 0 ? '' : ` (${message.slice(index + '; last error: '.length)})`;
}

/** Whether the node sees a member of the cluster (other observers, other `roster` runs among them, do not count). */
function seesMember(cluster: Cluster): boolean {
  return cluster.members().some((peer) => peer.role === 'member');
}

/**
 * Resolves when the node sees a member, when a frame failing the signature
 * check arrives (a peer with another secret), or after `ms`: only needed
 * when the join window heard no member.
 */
function awaitFirstSign(cluster: Cluster, transport: AmqpTransport, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      cluster.off('nodeup', onNodeup);
      transport.off('frame', onFrame);
      resolve();
    };
    const onNodeup = (): void => {
      if (seesMember(cluster)) finish();
    };
    // The cluster's own frame listener ran first (it subscribed first): a dropped frame is already counted.
    const onFrame = (): void => {
      if (cluster.stats.dropped.bad_signature > 0) finish();
    };
    const timer = setTimeout(finish, ms);
    cluster.on('nodeup', onNodeup);
    transport.on('frame', onFrame);
  });
}

/**
 * Joins the cluster of `config` as an observer. Rejects with a `CliError`:
 * `usage` (unreadable secret file), `broker_unreachable`, `wrong_secret`,
 * `no_nodes` (the broker answered, no node of the cluster did within
 * `config.timeout`), or `cluster` (any other start failure).
 */
export async function openSession(config: CliConfig): Promise<Session> {
  const secret = await readSecretSource(config.secret);
  // Logs go to stderr (never into a table or a JSON document), silent unless ROSTER_LOG_LEVEL says otherwise.
  const logger = pino({ name: 'roster', level: 'silent' }, pino.destination({ fd: 2, sync: true }));
  const transport = new AmqpTransport({
    urls: config.urls,
    connectTimeoutMs: config.timeout,
    attemptTimeoutMs: Math.min(ATTEMPT_TIMEOUT_MS, config.timeout),
    reconnect: { initialMs: 100, maxMs: 1000 },
    logger,
  });
  const registry = new GlobalsRegistry();
  const brokers = config.urls.map(redactUrl).join(', ');
  let node: Node;
  try {
    node = await Node.start({
      name: `roster-cli-${randomBytes(4).toString('hex')}`,
      logger,
      cluster: {
        transport,
        id: config.cluster,
        role: 'observer',
        ...(secret === undefined ? {} : { secret: secret.reveal() }),
      },
      registries: { globals: registry },
    });
  } catch (error) {
    await transport.close().catch(() => {});
    if (hasCode(error, 'connect_failed') && /ACCESS.REFUSED/.test(lastAttemptError(error))) {
      throw new CliError('broker_unreachable', `the broker at ${brokers} refused the login: check the user and password in the URL${lastAttemptError(error)}`, { cause: error });
    }
    if (hasCode(error, 'connect_failed')) {
      throw new CliError('broker_unreachable', `cannot reach the broker at ${brokers} within ${config.timeout} ms${lastAttemptError(error)}`, { cause: error });
    }
    throw new CliError('cluster', `joining cluster ${JSON.stringify(config.cluster)} at ${brokers} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  const cluster = clusterOf(node)!;
  const session: Session = { node, cluster, registry, config, stop: () => node.stop() };
  try {
    if (!seesMember(cluster)) {
      // No member answered the join: they are slow, they use another secret, or there are none.
      await awaitFirstSign(cluster, transport, config.timeout);
      if (seesMember(cluster)) {
        // A first peer showed up late; the others follow within a heartbeat. Then fetch what they own.
        await new Promise((resolve) => setTimeout(resolve, cluster.heartbeatInterval));
        await registry.sync();
      } else if (cluster.stats.dropped.bad_signature > 0) {
        throw new CliError(
          'wrong_secret',
          `wrong secret: frames of cluster ${JSON.stringify(config.cluster)} arrived but failed the signature check (${secret === undefined ? 'no secret is set: give --secret-file or ROSTER_SECRET' : 'check --secret-file, ROSTER_SECRET_FILE or ROSTER_SECRET'})`,
        );
      } else {
        throw new CliError(
          'no_nodes',
          `no node of cluster ${JSON.stringify(config.cluster)} answered within ${config.timeout} ms at ${brokers} (is the cluster id right? --cluster or ROSTER_CLUSTER)`,
        );
      }
    }
  } catch (error) {
    await node.stop();
    if (error instanceof CliError) throw error;
    throw new CliError('cluster', `reading cluster ${JSON.stringify(config.cluster)} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return session;
}
