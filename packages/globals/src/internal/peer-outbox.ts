import type { ClusterChannel } from '@roster/cluster';
import { extendAckRun, packMessage, startAckRun, type GlobalsMessage, type PackedEntry } from './protocol.js';

/** The protocol messages that may wait for the end of the turn; the rest go at once, after what waits. */
const BATCHED = new Set<GlobalsMessage['op']>(['claim', 'vote', 'commit', 'abort', 'release', 'ack']);

/** Most messages in one batch: far below a frame's size for any reasonable name. */
const MAX_BATCH = 256;

/**
 * Groups the registry's messages to each peer within one event-loop turn
 * into one channel message, packed (`{ op: 'packed', m }`, plain JSON: see
 * `packMessage`): under concurrent registrations, one envelope carries
 * hundreds of claims and votes instead of one each, at a fraction of the
 * tagged form's bytes and codec work. Order per peer is kept: a message
 * that is not batched first flushes what waits for that peer, and one
 * without a packed form goes between the packed runs around it.
 */
export class PeerOutbox {
  readonly #queues = new Map<string, GlobalsMessage[]>();
  /**
   * Peers known to read packed batches: they said so in a sync (`packed:
   * true`) or sent one. The others (a node of an older roster, during a
   * rolling upgrade, or a peer whose first sync has not come yet) get the
   * tagged `batch` form, which every version reads.
   */
  readonly #packedPeers = new Set<string>();
  /** Of those, the peers known to read runs of acks (a sync with `ackRuns: true`): their consecutive acks go as one entry. */
  readonly #ackRunPeers = new Set<string>();
  #scheduled = false;

  constructor(
    /** This node's name: the epoch node packed entries leave out when it is the sender's. */
    readonly self: string,
    readonly channel: () => ClusterChannel | undefined,
    readonly members: () => readonly string[],
    /** A message that could not be sent (it cannot cross the wire): logged by the owner, never thrown into the protocol. */
    readonly failed: (error: unknown, message: GlobalsMessage) => void,
  ) {}

  /** `peer` reads packed batches (see {@link PeerOutbox}). */
  speaksPacked(peer: string): void {
    this.#packedPeers.add(peer);
  }

  /** `peer` reads runs of acks in packed batches (see `protocol.ts`). */
  readsAckRuns(peer: string): void {
    this.#ackRunPeers.add(peer);
  }

  /** `peer` went down or came up anew: until it says otherwise, it may be of an older version. */
  forget(peer: string): void {
    this.#packedPeers.delete(peer);
    this.#ackRunPeers.delete(peer);
  }

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
    if (!this.#packedPeers.has(peer)) {
      this.#sendTagged(peer, queue);
      return;
    }
    let run: PackedEntry[] = [];
    let runMessages: GlobalsMessage[] = [];
    const sendRun = (): void => {
      if (run.length === 0) return;
      this.#sendPacked(peer, run, runMessages);
      run = [];
      runMessages = [];
    };
    const ackRuns = this.#ackRunPeers.has(peer);
    for (const message of queue) {
      if (ackRuns && message.op === 'ack') {
        // Consecutive acks of one kind travel as one run, by their epochs alone.
        if (extendAckRun(run[run.length - 1], message, peer)) continue;
        const started = startAckRun(message, peer);
        if (started !== undefined) {
          run.push(started);
          runMessages.push(message);
          if (run.length === MAX_BATCH) sendRun();
          continue;
        }
      }
      const entry = packMessage(message, this.self, peer);
      if (entry === undefined) {
        sendRun();
        this.#sendOne(peer, message);
        continue;
      }
      run.push(entry);
      runMessages.push(message);
      if (run.length === MAX_BATCH) sendRun();
    }
    sendRun();
  }

  #sendPacked(peer: string, entries: PackedEntry[], messages: readonly GlobalsMessage[]): void {
    try {
      this.channel()?.sendPlain(peer, { op: 'packed', m: entries });
    } catch (error) {
      // Too large for one frame (long names): one by one, so only a message that cannot cross alone is lost.
      if (entries.length === 1) {
        this.failed(error, messages[0]!);
        return;
      }
      for (let index = 0; index < entries.length; index++) this.#sendPacked(peer, [entries[index]!], [messages[index]!]);
    }
  }

  /** The tagged form, for a peer not known to read packed batches: `{ op: 'batch', messages }`, MAX_BATCH at a time. */
  #sendTagged(peer: string, queue: readonly GlobalsMessage[]): void {
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
    // Every sync says this node reads packed batches and runs of acks: how a peer learns it may send them (docs/protocol.md §5).
    const sent = message.op === 'sync' ? { ...message, packed: true, ackRuns: true } : message;
    try {
      return this.channel()?.send(peer, sent) ?? false;
    } catch (error) {
      this.failed(error, message);
      return false;
    }
  }
}
