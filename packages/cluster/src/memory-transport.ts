import { EventEmitter } from 'eventemitter3';
import { MemoryBroker, memoryBrokerPort, type MemoryBrokerPort, type MemorySink } from './internal/memory-broker.js';
import { MemoryTransportError } from './internal/memory-errors.js';
import type { Transport, TransportConnectOptions, TransportEvents, TransportState } from './transport.js';

export {
  MemoryBroker,
  type FaultOptions,
  type MemoryBrokerOptions,
  type MemoryBrokerStats,
  type MemoryConnectionInfo,
} from './internal/memory-broker.js';
export { MemoryTransportError, type MemoryTransportErrorCode } from './internal/memory-errors.js';

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /** The broker to join; default {@link MemoryBroker.default}, shared by the whole process. */
  readonly broker?: MemoryBroker;
}

/**
 * A {@link Transport} that carries frames inside the process through a
 * {@link MemoryBroker}: the embedded default (several nodes of one cluster in
 * one process, nothing installed) and, with a faulty broker, the network of
 * fault tests.
 *
 * - `connect` joins the cluster's broadcast domain under a fresh address
 *   (`mem:<node>:<n>`, never reused), emits `up` and resolves with it.
 * - `broadcast` reaches every connected transport of the same cluster, this
 *   one included; `send` reaches one address of the same cluster, and is
 *   dropped silently when that address is gone or unknown.
 * - Delivery is asynchronous (never inside the `send` call), at most once and
 *   FIFO per sender-receiver pair unless the broker injects faults.
 * - While the transport is not `up`, frames handed to it are dropped.
 * - Broker-driven state changes (`MemoryBroker.disconnect` / `reconnect` /
 *   `crash`) change `state` at once and emit `down` / `up` in a microtask.
 * - After `close()` no event fires, ever.
 */
export class MemoryTransport extends EventEmitter<TransportEvents> implements Transport {
  /** The broker this transport joins. */
  readonly broker: MemoryBroker;

  readonly #port: MemoryBrokerPort;
  #state: TransportState = 'idle';
  #address: string | undefined;
  /** Closed by its owner: from then on no event may fire. */
  #closed = false;

  readonly #sink: MemorySink = {
    frame: (frame) => {
      if (this.#state === 'up') this.emit('frame', frame);
    },
    up: (address) => {
      this.#state = 'up';
      this.#address = address;
      this.#later(() => this.emit('up', address));
    },
    down: (error) => {
      this.#state = 'down';
      this.#address = undefined;
      this.#later(() => this.emit('down', error));
    },
    crashed: (error) => {
      const wasUp = this.#state === 'up';
      this.#state = 'closed';
      this.#address = undefined;
      if (wasUp) this.#later(() => this.emit('down', error));
    },
  };

  constructor(options: MemoryTransportOptions = {}) {
    super();
    this.broker = options.broker ?? MemoryBroker.default;
    this.#port = memoryBrokerPort(this.broker);
  }

  /** This transport's current address; `undefined` unless `up`. A reconnect gives a new one. */
  get address(): string | undefined {
    return this.#address;
  }

  /** `idle` before `connect`, then `up`; `down` while the broker holds it disconnected; `closed` at the end. */
  get state(): TransportState {
    return this.#state;
  }

  /**
   * Joins `cluster` as `node`. Emits `up` (synchronously, before the promise
   * settles) and resolves with the new address.
   * @throws MemoryTransportError (`closed`) after close or crash; Error when already connected.
   */
  async connect(options: TransportConnectOptions): Promise<string> {
    if (this.#closed || this.#state === 'closed') {
      throw new MemoryTransportError('closed', 'MemoryTransport.connect: the transport is closed');
    }
    if (this.#state !== 'idle') throw new Error(`MemoryTransport.connect: already ${this.#state}`);
    const { cluster, node } = options;
    if (typeof cluster !== 'string' || cluster === '') throw new TypeError('MemoryTransport.connect: cluster must be a non-empty string');
    if (typeof node !== 'string' || node === '') throw new TypeError('MemoryTransport.connect: node must be a non-empty string');
    this.#state = 'connecting';
    const address = this.#port.attach(this.#sink, cluster, node);
    this.#state = 'up';
    this.#address = address;
    this.emit('up', address);
    return address;
  }

  /** To every connected transport of this cluster, this one included. Dropped unless `up`. */
  broadcast(frame: string): void {
    checkFrame(frame);
    if (this.#state !== 'up' || this.#address === undefined) {
      this.#port.dropUnsent();
      return;
    }
    this.#port.route(this.#address, undefined, frame);
  }

  /** To the transport at `address` (same cluster only). Dropped unless `up`, or when the address is gone. */
  send(address: string, frame: string): void {
    checkFrame(frame);
    if (this.#state !== 'up' || this.#address === undefined) {
      this.#port.dropUnsent();
      return;
    }
    this.#port.route(this.#address, address, frame);
  }

  /**
   * The broker accepts a frame the moment it is handed over, so this resolves
   * at once while `up`. It rejects with a {@link MemoryTransportError}
   * (`not_connected` or `closed`) otherwise: frames handed over while not
   * `up` were dropped.
   */
  flush(): Promise<void> {
    if (this.#state === 'up') return Promise.resolve();
    const code = this.#state === 'closed' ? 'closed' : 'not_connected';
    return Promise.reject(new MemoryTransportError(code, `MemoryTransport.flush: transport is ${this.#state}`));
  }

  /**
   * Leaves the cluster: the address is gone (frames in flight to it are
   * dropped; frames it already sent still arrive). Idempotent; no event fires
   * afterwards, not even `down`.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const previous = this.#state;
    const address = this.#address;
    this.#state = 'closed';
    this.#address = undefined;
    if (previous === 'up' && address !== undefined) this.#port.detach(address);
    else if (previous === 'down') this.#port.forget(this.#sink);
    return Promise.resolve();
  }

  #later(emit: () => void): void {
    queueMicrotask(() => {
      if (!this.#closed) emit();
    });
  }
}

function checkFrame(frame: unknown): asserts frame is string {
  if (typeof frame !== 'string') throw new TypeError(`a frame must be a string, got ${typeof frame}`);
}
