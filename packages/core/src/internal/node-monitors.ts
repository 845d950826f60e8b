import type { NodeDownMessage, NodeUpMessage } from '../node-monitor.js';

/** What a node monitor needs of a process: a mailbox. (One frozen message goes to every watcher of an event.) */
export interface NodeWatcher {
  deliver(message: unknown): void;
}

/**
 * A runtime's node monitors. `monitor_node(Node, true)` called twice is two
 * monitors, each answered by its own `nodedown`, and `false` takes one away;
 * a `monitor_nodes(true)` subscription counts the same way. A monitor fires
 * once and is gone; a subscription lasts until cancelled or its process
 * exits.
 */
export class NodeMonitors {
  /** By node: how many monitors each process holds on it. */
  readonly #byNode = new Map<string, Map<NodeWatcher, number>>();
  /** Subscribers to every nodeup and nodedown, with their subscription counts. */
  readonly #subscribers = new Map<NodeWatcher, number>();

  monitorNode(watcher: NodeWatcher, node: string, on: boolean): void {
    const held = this.#byNode.get(node);
    if (on) {
      const monitors = held ?? new Map<NodeWatcher, number>();
      monitors.set(watcher, (monitors.get(watcher) ?? 0) + 1);
      if (held === undefined) this.#byNode.set(node, monitors);
      return;
    }
    const count = held?.get(watcher);
    if (count === undefined) return;
    if (count > 1) held!.set(watcher, count - 1);
    else {
      held!.delete(watcher);
      if (held!.size === 0) this.#byNode.delete(node);
    }
  }

  subscribe(watcher: NodeWatcher, on: boolean): void {
    const count = this.#subscribers.get(watcher) ?? 0;
    if (on) this.#subscribers.set(watcher, count + 1);
    else if (count > 1) this.#subscribers.set(watcher, count - 1);
    else this.#subscribers.delete(watcher);
  }

  nodeUp(node: string): void {
    if (this.#subscribers.size === 0) return;
    const message: NodeUpMessage = Object.freeze({ type: 'nodeup', node });
    for (const [watcher, count] of [...this.#subscribers]) for (let n = 0; n < count; n++) watcher.deliver(message);
  }

  /** Fires every monitor of `node` (each once, then gone) and tells every subscriber. */
  nodeDown(node: string): void {
    const message: NodeDownMessage = Object.freeze({ type: 'nodedown', node });
    const monitors = this.#byNode.get(node);
    if (monitors !== undefined) {
      this.#byNode.delete(node);
      for (const [watcher, count] of monitors) for (let n = 0; n < count; n++) watcher.deliver(message);
    }
    for (const [watcher, count] of [...this.#subscribers]) for (let n = 0; n < count; n++) watcher.deliver(message);
  }

  /** A watcher that exited holds nothing any longer. */
  forget(watcher: NodeWatcher): void {
    this.#subscribers.delete(watcher);
    for (const [node, monitors] of this.#byNode) {
      if (monitors.delete(watcher) && monitors.size === 0) this.#byNode.delete(node);
    }
  }
}
