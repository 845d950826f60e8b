import type { ClusterChannel } from '@roster/cluster';
import type { GlobalsMessage } from './protocol.js';

/** The protocol messages that may wait for the end of the turn; the rest go at once, after what waits. */
const BATCHED = new Set<GlobalsMessage['op']>(['claim', 'vote', 'commit', 'abort', 'release', 'ack']);

/** Most messages in one batch: far below a frame's size for any reasonable name. */
const MAX_BATCH = 256;

/**
 * Groups the registry's messages to each peer within one event-loop turn
 * into one channel message (`{ op: 'batch', messages }`): under concurrent
 * registrations, one envelope carries hundreds of claims and votes instead
 * of one each. Order per peer is kept: a message that is not batched first
 * flushes what waits for that peer.
 */
export class PeerOutbox {
  readonly #queues = new Map<string, GlobalsMessage[]>();
  #scheduled = false;

  constructor(
    readonly channel: () => ClusterChannel | undefined,
    readonly members: () => string[],
    /** A message that could not be sent (it cannot cross the wire): logged by the owner, never thrown into the protocol. */
    readonly failed: (error: unknown, message: GlobalsMessage) => void,
  ) {}

  broadcast(message: GlobalsMessage): void {
    for (const peer of this.members()) this.send(peer, message);
  }

  send(peer: string, message: GlobalsMessage): boolean {
    if (!BATCHED.has(message.op)) {
      this.#flushPeer(peer);
      return this.#sendOne(peer, message);
    }
    const queue = this.#queues.get(peer);
    if (queue === undefined) this.#queues.set(peer, [message]);
    else queue.push(message);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
    return true;
  }

  readonly flush = (): void => {
    this.#scheduled = false;
    for (const peer of [...this.#queues.keys()]) this.#flushPeer(peer);
  };

  #flushPeer(peer: string): void {
    const queue = this.#queues.get(peer);
    if (queue === undefined) return;
    this.#queues.delete(peer);
    for (let start = 0; start < queue.length; start += MAX_BATCH) {
      const messages = queue.slice(start, start + MAX_BATCH);
      if (messages.length === 1) {
        this.#sendOne(peer, messages[0]!);
        continue;
      }
      try {
        this.channel()?.send(peer, { op: 'batch', messages });
      } catch {
        // One of them cannot cross: send them one by one so only that one is lost.
        for (const message of messages) this.#sendOne(peer, message);
      }
    }
  }

  #sendOne(peer: string, message: GlobalsMessage): boolean {
    try {
      return this.channel()?.send(peer, message) ?? false;
    } catch (error) {
      this.failed(error, message);
      return false;
    }
  }
}
