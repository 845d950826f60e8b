/**
 * Shared helpers of the @roster/cluster tests: nodes on a private
 * MemoryBroker, a spy transport in the same cluster that captures what is
 * broadcast and can send anything back, a carrier that edits or refuses
 * frames (another version's node, or a liar), and bounded waits on cluster
 * events.
 */
import { after } from 'node:test';
import { Node } from '@roster/core';
import { Cluster, MemoryBroker, MemoryTransport, clusterOf, type ClusterEvents, type ClusterOptions } from '../src/index.js';
// The testkit's bounded wait, by file: the testkit package itself sits above this one.
import { within } from '../../testkit/src/waiting.js';

export { within };

/** The next `event` of `cluster` whose first argument is about `node`, with its arguments. */
export function nextEvent<E extends 'nodeup' | 'nodedown' | 'gap'>(
  cluster: Cluster,
  event: E,
  node: string,
  ms: number,
): Promise<Parameters<ClusterEvents[E]>> {
  return within(
    new Promise((resolve) => {
      const listener = (...args: unknown[]): void => {
        if ((args[0] as { node: string }).node !== node) return;
        cluster.off(event, listener as never);
        resolve(args as Parameters<ClusterEvents[E]>);
      };
      cluster.on(event, listener as never);
    }),
    `${event} ${node}`,
    ms,
  );
}

/** The JSON of a frame, signed or not. */
export function envelopeOf(frame: string): Record<string, unknown> & { b: Record<string, unknown> } {
  return JSON.parse(frame.startsWith('~') ? frame.slice(44) : frame) as Record<string, unknown> & { b: Record<string, unknown> };
}

/** A frame's envelope as `envelopeOf` gives it. */
export type EnvelopeJson = ReturnType<typeof envelopeOf>;

/**
 * A carrier that edits, at the envelope, what its node sends, and turns away
 * some of what reaches it: a node that behaves as another version's would, or
 * that lies. The node numbers its frames itself, so their sequence numbers
 * stay right. For unsigned clusters only (an edited frame is re-serialised).
 */
export class EditingTransport extends MemoryTransport {
  /** Edits each outgoing frame's envelope in place. */
  edit: (envelope: EnvelopeJson) => void = () => {};
  /** Whether an incoming frame is turned away, as the node's decoder would drop it; those are counted in `refused`. */
  refuse: (envelope: EnvelopeJson) => boolean = () => false;
  refused = 0;

  override send(address: string, frame: string): void {
    super.send(address, this.#edited(frame));
  }

  override broadcast(frame: string): void {
    super.broadcast(this.#edited(frame));
  }

  override emit(event: 'up' | 'down' | 'frame', ...args: unknown[]): boolean {
    if (event === 'frame' && this.refuse(envelopeOf(String(args[0])))) {
      this.refused++;
      return false;
    }
    const emit = super.emit as (event: string, ...args: unknown[]) => boolean;
    return emit.call(this, event, ...args);
  }

  #edited(frame: string): string {
    const envelope = envelopeOf(frame);
    this.edit(envelope);
    return JSON.stringify(envelope);
  }
}

let clusters = 0;

/** A cluster of nodes on one private broker, with a spy connected before any node. */
export class TestNet {
  readonly broker = new MemoryBroker();
  readonly id = `cluster-test-${process.pid}-${++clusters}`;
  readonly nodes: Node[] = [];
  /** Every frame the spy received (broadcasts of every node, in order). */
  readonly captured: string[] = [];
  readonly spy = new MemoryTransport({ broker: this.broker });
  readonly #waiters: { match: (frame: string) => boolean; resolve: (frame: string) => void }[] = [];

  constructor(readonly options: ClusterOptions = {}) {
    this.spy.on('frame', (frame) => {
      this.captured.push(frame);
      for (const waiter of [...this.#waiters]) {
        if (waiter.match(frame)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(frame);
        }
      }
    });
  }

  async open(): Promise<this> {
    await this.spy.connect({ cluster: this.id, node: 'spy' });
    return this;
  }

  async start(name: string, options: ClusterOptions = {}): Promise<Node> {
    const transport = options.transport ?? new MemoryTransport({ broker: this.broker });
    const node = await Node.start({ name, cluster: { id: this.id, joinWindow: 20, ...this.options, ...options, transport } });
    this.nodes.push(node);
    return node;
  }

  /** Starts plain nodes `names` in order and waits until every frame between them has been handled. */
  async startAll(...names: string[]): Promise<Node[]> {
    const started: Node[] = [];
    for (const name of names) started.push(await this.start(name));
    await within(this.broker.idle(), 'membership', 3000);
    return started;
  }

  cluster(node: Node): Cluster {
    return clusterOf(node)!;
  }

  /** The next broadcast the spy sees from `node` of `kind` (hello, hb, leave). */
  nextBroadcast(node: string, kind: string, ms = 3000): Promise<string> {
    return within(
      new Promise<string>((resolve) => {
        this.#waiters.push({
          match: (frame) => {
            const envelope = envelopeOf(frame);
            return envelope['f'] === node && envelope['k'] === kind;
          },
          resolve,
        });
      }),
      `a ${kind} broadcast from ${node}`,
      ms,
    );
  }

  /** The broker's address of `node`'s live connection. */
  address(node: string): string {
    const connection = this.broker.connections(this.id).find((c) => c.node === node);
    if (connection === undefined) throw new Error(`${node} is not connected`);
    return connection.address;
  }

  async close(): Promise<void> {
    for (const node of this.nodes) await node.stop().catch(() => {});
    await this.spy.close();
  }
}

/**
 * A maker of fresh, opened test nets (with `options`), each closed after the
 * tests of the file or suite that called this.
 */
export function netsClosedAfter(options: ClusterOptions = {}): () => Promise<TestNet> {
  const nets: TestNet[] = [];
  after(async () => {
    for (const made of nets) await made.close();
  });
  return async () => {
    const made = await new TestNet(options).open();
    nets.push(made);
    return made;
  };
}
