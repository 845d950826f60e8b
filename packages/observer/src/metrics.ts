/**
 * The observer's Prometheus metrics: every `roster_*` metric declared once,
 * here, each with a `collect()` that reads the figures at scrape time (the
 * nodes' last snapshots, with what each node's cluster layer and registry
 * report of themselves in it), so nothing
 * is counted twice and the page and `/metrics` always agree. Each observer
 * has its own prom-client `Registry`, never the global one, so several
 * observers (or nodes) in one process never collide.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LatencyHistogram, type LatencySnapshot, type NodeSnapshot } from '@roster/core';
import type { ClusterIntrospection } from '@roster/cluster';
import type { GlobalsIntrospection } from '@roster/globals';

/** One node as the metrics see it. */
export interface MetricsNode {
  readonly name: string;
  readonly status: 'up' | 'down';
  readonly ups: number;
  readonly downs: number;
  /** Its last snapshot; node-level figures are exported for live nodes only. */
  readonly snapshot: NodeSnapshot | undefined;
  /** Its cluster layer (`snapshot.distribution`; the observer's own node's read at the scrape); undefined when unknown. */
  readonly cluster: ClusterIntrospection | undefined;
  /** Its globals registry (from `snapshot.registries`; the observer's own node's read at the scrape); undefined when it has none. */
  readonly globals: GlobalsIntrospection | undefined;
}

/** What a scrape reads, taken fresh at each scrape. */
export interface MetricsReading {
  /** The node the observer runs on. */
  readonly self: string;
  readonly nodes: readonly MetricsNode[];
}

/** The observer's metrics: the registry to scrape and its text. */
export interface ObserverMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The Prometheus text exposition of every metric, read now. */
  text(): Promise<string>;
}

const SECONDS_BUCKETS = LatencyHistogram.BOUNDS.map((ms) => ms / 1000);

/**
 * A histogram whose buckets come from a {@link LatencySnapshot} (ms) kept
 * elsewhere, exported in seconds; prom-client's own `Histogram` formats it.
 */
class SnapshotHistogram extends Histogram<'node'> {
  readonly #name: string;
  readonly #help: string;

  constructor(
    name: string,
    help: string,
    registry: Registry,
    readonly read: () => readonly { readonly node: string; readonly histogram: LatencySnapshot }[],
  ) {
    super({ name, help, labelNames: ['node'], buckets: SECONDS_BUCKETS, registers: [registry] });
    this.#name = name;
    this.#help = help;
  }

  override get(): ReturnType<Histogram<'node'>['get']> {
    return this.getForPromString();
  }

  /** What prom-client's registry formats (its Histogram's `get` goes through this too). */
  async getForPromString(): ReturnType<Histogram<'node'>['get']> {
    const name = this.#name;
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const { node, histogram } of this.read()) {
      let cumulative = 0;
      histogram.bounds.forEach((bound, index) => {
        cumulative += histogram.counts[index] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { node, le: bound / 1000 }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { node, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${name}_sum`, labels: { node }, value: histogram.sum / 1000 });
      values.push({ metricName: `${name}_count`, labels: { node }, value: histogram.count });
    }
    return { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' } as unknown as Awaited<ReturnType<Histogram<'node'>['get']>>;
  }
}

/**
 * Declares every `roster_*` metric on a fresh `Registry`; `read` is called
 * once per scrape and its answer shared by every metric of that scrape.
 */
export function createMetrics(read: () => MetricsReading): ObserverMetrics {
  const registry = new Registry();
  let current: MetricsReading | undefined;
  const reading = (): MetricsReading => (current ??= read());
  const live = (): (MetricsNode & { readonly snapshot: NodeSnapshot })[] =>
    reading().nodes.filter((node): node is MetricsNode & { readonly snapshot: NodeSnapshot } => node.status === 'up' && node.snapshot !== undefined);

  const perNode = (kind: 'gauge' | 'counter', name: string, help: string, value: (snapshot: NodeSnapshot) => number): void => {
    const collect = function (this: Gauge<'node'> | Counter<'node'>): void {
      this.reset();
      for (const node of live()) {
        if (this instanceof Gauge) this.set({ node: node.name }, value(node.snapshot));
        else this.inc({ node: node.name }, value(node.snapshot));
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames: ['node'], registers: [registry], collect });
    else new Counter({ name, help, labelNames: ['node'], registers: [registry], collect });
  };

  new Gauge({
    name: 'roster_node_up',
    help: 'Whether the node is a live member as the observer sees it (1) or was lost (0)',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of reading().nodes) this.set({ node: node.name }, node.status === 'up' ? 1 : 0);
    },
  });
  new Counter({
    name: 'roster_nodeup_total',
    help: 'Times the observer saw the node come up (its first sighting included)',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of reading().nodes) this.inc({ node: node.name }, node.ups);
    },
  });
  new Counter({
    name: 'roster_nodedown_total',
    help: 'Times the observer saw the node go down',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of reading().nodes) this.inc({ node: node.name }, node.downs);
    },
  });
  perNode('gauge', 'roster_processes', 'Live processes on the node', (s) => s.processCount);
  perNode('counter', 'roster_messages_in_total', 'Messages delivered into the node\'s mailboxes', (s) => s.stats.messagesIn);
  perNode('counter', 'roster_messages_out_total', 'Messages sent by the node\'s processes', (s) => s.stats.messagesOut);
  perNode('gauge', 'roster_mailbox_max', 'Longest mailbox on the node, messages', (s) => s.mailboxMax);
  perNode('counter', 'roster_processes_spawned_total', 'Processes started on the node', (s) => s.stats.spawned);
  perNode('counter', 'roster_processes_exited_total', 'Processes of the node that exited', (s) => s.stats.exited);
  perNode('counter', 'roster_calls_total', 'Calls made from the node', (s) => s.stats.calls);
  perNode('counter', 'roster_calls_failed_total', 'Calls made from the node that failed', (s) => s.stats.callsFailed);
  perNode('gauge', 'roster_supervisor_restarts', 'Restarts made by the node\'s live supervisors since they started', (s) =>
    s.supervisors.reduce((sum, info) => sum + info.restarts, 0),
  );
  perNode('gauge', 'roster_registered_names', 'Node-local registered names on the node', (s) => s.registered.length);
  new SnapshotHistogram('roster_call_duration_seconds', 'Round trips of the node\'s answered calls', registry, () =>
    live().map((node) => ({ node: node.name, histogram: node.snapshot.stats.callLatency })),
  );
  new Gauge({
    name: 'roster_memory_bytes',
    help: 'Memory of the node\'s OS process (process.memoryUsage), by kind',
    labelNames: ['node', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of live()) {
        const { rss, heapUsed, heapTotal, external } = node.snapshot.memory;
        this.set({ node: node.name, kind: 'rss' }, rss);
        this.set({ node: node.name, kind: 'heap_used' }, heapUsed);
        this.set({ node: node.name, kind: 'heap_total' }, heapTotal);
        this.set({ node: node.name, kind: 'external' }, external);
      }
    },
  });
  new Gauge({
    name: 'roster_event_loop_delay_seconds',
    help: 'Event-loop delay of the node\'s OS process over its last window, by statistic',
    labelNames: ['node', 'stat'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of live()) {
        const { mean, p50, p99, max } = node.snapshot.eventLoopDelay;
        for (const [stat, ms] of [['mean', mean], ['p50', p50], ['p99', p99], ['max', max]] as const) this.set({ node: node.name, stat }, ms / 1000);
      }
    },
  });

  // Every live node's cluster layer and registry, as its snapshot reports them.
  const clusters = (): (MetricsNode & { readonly cluster: ClusterIntrospection })[] =>
    reading().nodes.filter((node): node is MetricsNode & { readonly cluster: ClusterIntrospection } => node.status === 'up' && node.cluster !== undefined);
  const registries = (): (MetricsNode & { readonly globals: GlobalsIntrospection })[] =>
    reading().nodes.filter((node): node is MetricsNode & { readonly globals: GlobalsIntrospection } => node.status === 'up' && node.globals !== undefined);
  const byReason = (name: string, help: string, read: () => readonly { readonly node: string; readonly counts: Readonly<Record<string, number>> }[]): void => {
    new Counter({
      name,
      help,
      labelNames: ['node', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { node, counts } of read()) for (const [reason, count] of Object.entries(counts)) this.inc({ node, reason }, count);
      },
    });
  };
  const perReport = <R>(kind: 'gauge' | 'counter', name: string, help: string, nodes: () => readonly (MetricsNode & R)[], value: (node: R) => number): void => {
    const collect = function (this: Gauge<'node'> | Counter<'node'>): void {
      this.reset();
      for (const node of nodes()) {
        if (this instanceof Gauge) this.set({ node: node.name }, value(node));
        else this.inc({ node: node.name }, value(node));
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames: ['node'], registers: [registry], collect });
    else new Counter({ name, help, labelNames: ['node'], registers: [registry], collect });
  };

  perReport('counter', 'roster_frames_sent_total', 'Frames the node sent to the cluster', clusters, (node) => node.cluster.sent);
  perReport('counter', 'roster_frames_received_total', 'Frames the node received from the cluster', clusters, (node) => node.cluster.received);
  byReason('roster_frames_dropped_total', 'Frames the node dropped, by reason (malformed, oversized, bad_signature, replayed, ...)', () =>
    clusters().map((node) => ({ node: node.name, counts: node.cluster.dropped })),
  );
  perReport('gauge', 'roster_cluster_peers', 'Live peers the node sees (members and observers), itself excluded', clusters, (node) => node.cluster.peers);
  byReason('roster_registry_dropped_total', 'Registry messages the node dropped, by reason', () => registries().map((node) => ({ node: node.name, counts: node.globals.drops })));
  new Counter({
    name: 'roster_registry_operations_total',
    help: 'The node\'s own completed registry operations, by operation',
    labelNames: ['node', 'op'],
    registers: [registry],
    collect() {
      this.reset();
      for (const node of registries()) {
        this.inc({ node: node.name, op: 'register' }, node.globals.registrations);
        this.inc({ node: node.name, op: 'unregister' }, node.globals.unregistrations);
      }
    },
  });
  perReport('counter', 'roster_registry_conflicts_total', 'Names claimed on both sides of a partition and settled, as the node saw them', registries, (node) => node.globals.conflicts);
  perReport('gauge', 'roster_registry_names', 'Global names the node resolves', registries, (node) => node.globals.names);
  new SnapshotHistogram('roster_registry_register_duration_seconds', 'Round trips of the node\'s own registerName calls', registry, () =>
    registries().map((node) => ({ node: node.name, histogram: node.globals.registerLatency })),
  );

  return {
    registry,
    contentType: registry.contentType,
    async text() {
      current = undefined;
      try {
        return await registry.metrics();
      } finally {
        current = undefined;
      }
    },
  };
}
