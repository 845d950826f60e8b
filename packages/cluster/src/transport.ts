import type { EventEmitter } from 'eventemitter3';

/**
 * What the cluster layer needs from a message carrier, and nothing more.
 *
 * A transport moves opaque frames (strings: one encoded envelope each) between
 * the nodes of one cluster. It knows nothing of pids or envelopes: validation,
 * signing and membership live in the cluster layer above it, so every
 * transport gets them for free and a new carrier stays small.
 *
 * Delivery is at most once and FIFO per sender-receiver pair while a
 * connection lasts. A frame sent while the transport is down is dropped.
 */
export interface Transport extends EventEmitter<TransportEvents> {
  /**
   * Joins the cluster's broadcast domain as `node` and resolves with this
   * node's address once the first connection is up.
   */
  connect(options: TransportConnectOptions): Promise<string>;
  /** This node's current address; it can change after a reconnect. */
  readonly address: string | undefined;
  readonly state: TransportState;
  /** To every node of the cluster, this one included (the layer above drops its own). */
  broadcast(frame: string): void;
  /** To the node at `address`; dropped when the address is gone. */
  send(address: string, frame: string): void;
  /**
   * Resolves once every frame handed over so far has been accepted by the
   * carrier (AMQP publisher confirms); rejects if the connection was lost first.
   */
  flush(): Promise<void>;
  /** Leaves the cluster; no event fires afterwards. */
  close(): Promise<void>;
}

export interface TransportConnectOptions {
  /** The cluster's id: transports of different clusters never exchange frames. */
  readonly cluster: string;
  /** This node's name, for the carrier's own diagnostics. */
  readonly node: string;
}

export type TransportState = 'idle' | 'connecting' | 'up' | 'down' | 'closed';

export interface TransportEvents {
  /** Connected, or reconnected (possibly under a new address). */
  up: (address: string) => void;
  /** The connection was lost; frames sent until the next `up` are dropped. */
  down: (error: Error | undefined) => void;
  /** A frame arrived. */
  frame: (frame: string) => void;
}
