/**
 * Shared setup of the observer's tests: three member nodes on a private
 * MemoryBroker with the globals registry, a fourth node started with
 * `role: 'observer'` (the harness does not pass `role`, so it is started by
 * hand on the harness's broker), and bounded waits.
 */
import { Node } from '@roster/core';
import { MemoryTransport, MemoryBroker } from '@roster/cluster';
import { GlobalsRegistry } from '@roster/globals';
import { startCluster, type ClusterHarness } from '@roster/testkit';

export interface Watched {
  readonly harness: ClusterHarness;
  readonly members: readonly Node[];
  readonly observer: Node;
  stop(): Promise<void>;
}

export const FAST = { heartbeatInterval: 100, failureTimeout: 600 } as const;

export async function startWatchedCluster(options: { readonly nodes?: number; readonly secret?: string } = {}): Promise<Watched> {
  const broker = new MemoryBroker();
  const harness = await startCluster({
    nodes: options.nodes ?? 3,
    transport: 'memory',
    broker,
    ...FAST,
    ...(options.secret === undefined ? {} : { secret: options.secret }),
    registries: () => ({ globals: new GlobalsRegistry({ registerTimeout: 3000 }) }),
  });
  const observer = await Node.start({
    name: 'watcher',
    cluster: {
      transport: new MemoryTransport({ broker }),
      id: harness.id,
      role: 'observer',
      joinWindow: 50,
      ...FAST,
      ...(options.secret === undefined ? {} : { secret: options.secret }),
    },
    registries: { globals: new GlobalsRegistry({ registerTimeout: 3000 }) },
  });
  await harness.waitForMembership({ also: ['watcher'] });
  await waitUntil(() => observer.nodes().length === harness.nodes.length, 'the observer to see every member', 5000);
  return {
    harness,
    members: harness.nodes,
    observer,
    async stop() {
      await Promise.allSettled([observer.stop(), harness.stopAll()]);
    },
  };
}

/**
 * Polls `check` every 20 ms until it holds, failing after `ms` naming `what`:
 * for states with no event to await (a page's DOM, a scrape's figure).
 */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string | (() => string), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A process that waits until it is told to stop (or killed). */
export function idler(node: Node) {
  return node.spawn(async (self) => {
    await self.receive();
  });
}
