import type { Transport, TransportConnectOptions, TransportEvents, TransportState } from '@roster/cluster';
import { connect as amqpConnect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { batchSocketWrites } from './internal/write-batching.js';
import { EventEmitter } from 'eventemitter3';
import { pino, type Logger } from 'pino';
import { AmqpTransportError } from './errors.js';
import { redactUrl } from './redact.js';
import { backoffDelay, type BackoffSettings } from './internal/backoff.js';
import { Coalescer, SINGLE_FRAME_TYPE, splitFrames, type SealedMessage } from './internal/coalescer.js';
import { ConfirmTracker } from './internal/confirms.js';

/** Options of {@link AmqpTransport}. */
export interface AmqpTransportOptions {
  /**
   * Broker URL(s), `amqp://user:pass@host:port/vhost` or `amqps://…`. With
   * several (the nodes of a RabbitMQ cluster, or independent brokers that
   * share nothing but are tried in turn), the transport connects to the first
   * that answers and, after a loss, tries them again in list order with the
   * lost one last. Give each node of a fleet the list rotated (node k starts
   * at broker k mod N) to spread the nodes over the brokers; a node goes back
   * to its first broker at its next loss. See docs/operating-rabbitmq.md.
   */
  readonly urls: string | readonly string[];
  /** AMQP heartbeat in seconds: a silent broker is declared lost after about two of them. Default 5; 0 disables. */
  readonly heartbeat?: number;
  /**
   * Reconnection backoff: after every full pass over `urls` that failed, wait
   * d/2..d with d = min(maxMs, initialMs * 2^pass). Defaults 100 and 5000 ms.
   */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
  /** `connect()` gives up (rejects with code `connect_failed`) after this long. Default 30 000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * One connection attempt gives up (and the next URL is tried) when the TCP
   * + AMQP handshake stalls this long, or when the declarations that follow
   * (channel, exchange, queue, binding, consumer) take longer. Default 5 000 ms.
   */
  readonly attemptTimeoutMs?: number;
  /** `close()` waits this long for outstanding confirms (or the final barrier) and the broker's `close-ok`. Default 2 000 ms. */
  readonly closeTimeoutMs?: number;
  /**
   * Publisher confirms. Default false: frames go out on a plain channel,
   * and {@link AmqpTransport.flush} is an in-order barrier — a round trip on
   * the same channel (a passive declare of this node's own queue) that the
   * broker answers only after it has routed every publish before it. The
   * node queues are exclusive, transient and at most once, so a confirm
   * would promise nothing more a peer can rely on, and each one costs the
   * publisher an extra socket read and the broker extra work on every
   * message (RabbitMQ confirms a classic queue's message before delivering
   * it). True: a confirm channel, and `flush()` resolves once the broker
   * confirmed every message before it (`rejected` on a `basic.nack`).
   */
  readonly confirms?: boolean;
  /** A pino logger; the transport logs through a child `{ transport: 'amqp' }`. Default: silent (or `ROSTER_LOG_LEVEL`). */
  readonly logger?: Logger;
  /**
   * Consumer prefetch. Unset or 0 (default): consume with `noAck`, the broker
   * pushes without waiting for acks. A positive value switches to manual acks
   * with at most that many unacknowledged messages in flight (each message
   * can carry many frames), which moves buffering from this process's socket
   * to the broker when the consumer is slow.
   */
  readonly prefetch?: number;
  /**
   * Largest frame accepted, in bytes, in either direction: a bigger outgoing
   * frame is dropped (counted in `stats.oversized` and `stats.dropped`), a
   * bigger incoming message is discarded. Default 16 MiB.
   */
  readonly maxFrameBytes?: number;
  /** Largest coalesced message in bytes; a batch that would grow past it is split. Default 256 KiB. */
  readonly maxBatchBytes?: number;
  /**
   * Most bytes held back while the socket is congested (publish returned
   * false, waiting for 'drain'); messages beyond are dropped and counted.
   * Default 64 MiB.
   */
  readonly maxBufferedBytes?: number;
  /**
   * When coalesced frames go out: `'immediate'` (default) flushes in a
   * `setImmediate`, after the current event-loop turn's I/O callbacks, so
   * frames produced while handling a burst of deliveries share messages;
   * `'microtask'` flushes at the end of the current task (lower latency,
   * smaller batches); `'none'` publishes every frame as its own message.
   */
  readonly batching?: 'immediate' | 'microtask' | 'none';
}

/** Counters of an {@link AmqpTransport}, since it was created. */
export interface AmqpTransportStats {
  /** Frames published to the broker. */
  readonly published: number;
  /** AMQP messages published (each carries one or more frames). */
  readonly batches: number;
  /** Frames received and emitted as `frame` events. */
  readonly received: number;
  /** AMQP messages received. */
  readonly receivedBatches: number;
  /** Frames dropped: handed over while not up, lost with a connection, over the send buffer, or oversized. */
  readonly dropped: number;
  /** Frames (out) or messages (in) over `maxFrameBytes`; also counted in `dropped` when outgoing. */
  readonly oversized: number;
  /** Messages confirmed by the broker. */
  readonly confirmed: number;
  /** Messages the broker refused (`basic.nack`). */
  readonly nacked: number;
  /** Connections established (the first one included). */
  readonly connections: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A sealed message waiting to be published, with its confirm sequence number. */
interface Outgoing {
  readonly message: SealedMessage;
  readonly seq: number;
}

/** One established connection: its pieces and its generation. */
interface Link {
  readonly generation: number;
  readonly url: string;
  readonly model: ChannelModel;
  readonly channel: Channel;
  readonly address: string;
}

const DEFAULTS = {
  heartbeat: 5,
  initialMs: 100,
  maxMs: 5_000,
  connectTimeoutMs: 30_000,
  attemptTimeoutMs: 5_000,
  closeTimeoutMs: 2_000,
  maxFrameBytes: 16 * 1024 * 1024,
  maxBatchBytes: 256 * 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
} as const;

const EXCHANGE_PREFIX = 'roster.';

function noop(): void {}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Adds our connection parameters to a URL's query string (when it parses; amqplib parses it the same way). */
function withQuery(url: string, heartbeat: number): string {
  try {
    const parsed = new URL(url);
    parsed.searchParams.set('heartbeat', String(heartbeat));
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * A {@link Transport} over RabbitMQ (AMQP 0-9-1, amqplib).
 *
 * Topology, per cluster `C`:
 * - one fanout exchange `roster.C` (non-durable, not auto-deleted: it must
 *   outlive the moment its last node leaves, and a broker restart clears it);
 * - one server-named, exclusive, auto-delete queue per connected node, bound
 *   to it; the queue name is the node's address. A reconnect gets a new queue,
 *   hence a new address (`up(newAddress)`).
 * - `broadcast` publishes to `roster.C` (reaching this node too); `send`
 *   publishes to the default exchange with the address as routing key (an
 *   address that is gone drops the message silently: at most once).
 *
 * Frames handed over within one event-loop turn to the same destination are
 * coalesced into one AMQP message (see `batching`), joined with '\n' and
 * split again on receipt, preserving order; broadcast-versus-direct order is
 * preserved too. Messages go out on a plain channel by default, and
 * {@link flush} is an in-order barrier that resolves once the broker routed
 * everything handed over before it (with `confirms: true`, a confirm channel,
 * and `flush()` waits for every confirm). When the socket
 * is congested (publish returns false), publishing pauses until 'drain'.
 *
 * Consuming uses `noAck` by default: the queue is exclusive and dies with the
 * connection, so acknowledgements could not save a single frame (delivery is
 * at most once either way) and would only cost a round of acks and a
 * prefetch window that stalls the stream; see `prefetch` for the alternative.
 *
 * On a connection loss (socket error, missed heartbeats, broker shutdown,
 * channel error, consumer cancelled) the transport emits `down(error)`,
 * drops what it had not published (counted in `stats.dropped`), rejects
 * pending `flush()`es, and reconnects with backoff and jitter, trying
 * `urls` in list order with the lost broker last, then emits
 * `up(newAddress)`. Frames handed over while down
 * are dropped. Every amqplib 'error' and 'close' event is handled: nothing
 * here raises an unhandled 'error' or rejection. After `close()` no event fires.
 *
 * URLs are redacted ({@link redactUrl}) in every log line and error message.
 */
export class AmqpTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly #urls: readonly string[];
  readonly #heartbeat: number;
  readonly #backoff: BackoffSettings;
  readonly #connectTimeoutMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #prefetch: number;
  readonly #maxFrameBytes: number;
  readonly #maxBatchBytes: number;
  readonly #maxBufferedBytes: number;
  readonly #batching: 'immediate' | 'microtask' | 'none';
  readonly #baseLog: Logger;
  #log: Logger;

  #state: TransportState = 'idle';
  #cluster = '';
  #node = '';
  #exchange = '';
  /** Bumped by every connection attempt, loss and close: callbacks of an older generation are ignored. */
  #generation = 0;
  #link: Link | undefined;
  /**
   * The order attempts go through `urls` (indexes): the list order at first;
   * after a loss, the list order with the lost broker moved last.
   */
  #order: number[];
  /** Position in `#order` of the next attempt. */
  #orderPos = 0;
  /** Consecutive failed attempts since the last success. */
  #failures = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  /** The connection attempt in flight, awaited by `close()`. */
  #attempt: Promise<void> | undefined;
  /** The last error amqplib reported on the current connection, for `down`. */
  #lastError: Error | undefined;
  #firstUp: { resolve: (address: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout } | undefined;
  #closing: Promise<void> | undefined;

  readonly #coalescer: Coalescer;
  #flushScheduled = false;
  readonly #outbox: Outgoing[] = [];
  #outboxHead = 0;
  #outboxBytes = 0;
  /** Waiting for the channel's 'drain'. */
  #congested = false;
  readonly #confirms = new ConfirmTracker();
  /** Publisher confirms on (a confirm channel), or plain publishing with barrier flushes (the default). */
  readonly #useConfirms: boolean;
  readonly #stats: Mutable<AmqpTransportStats> = {
    published: 0,
    batches: 0,
    received: 0,
    receivedBatches: 0,
    dropped: 0,
    oversized: 0,
    confirmed: 0,
    nacked: 0,
    connections: 0,
  };

  constructor(options: AmqpTransportOptions) {
    super();
    const urls = typeof options.urls === 'string' ? [options.urls] : [...options.urls];
    if (urls.length === 0) throw new TypeError('AmqpTransport: urls must name at least one broker');
    for (const url of urls) {
      if (typeof url !== 'string' || !/^amqps?:\/\//i.test(url)) {
        throw new TypeError(`AmqpTransport: not an amqp:// or amqps:// URL: ${redactUrl(String(url))}`);
      }
    }
    this.#urls = urls;
    this.#order = urls.map((_, index) => index);
    this.#heartbeat = options.heartbeat ?? DEFAULTS.heartbeat;
    this.#backoff = {
      initialMs: Math.max(1, options.reconnect?.initialMs ?? DEFAULTS.initialMs),
      maxMs: Math.max(1, options.reconnect?.maxMs ?? DEFAULTS.maxMs),
    };
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    this.#useConfirms = options.confirms ?? false;
    if (typeof this.#useConfirms !== 'boolean') throw new TypeError(`AmqpTransport: confirms must be a boolean, got ${typeof this.#useConfirms}`);
    this.#prefetch = options.prefetch ?? 0;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULTS.maxFrameBytes;
    this.#maxBatchBytes = options.maxBatchBytes ?? DEFAULTS.maxBatchBytes;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? DEFAULTS.maxBufferedBytes;
    this.#batching = options.batching ?? 'immediate';
    if (!(this.#heartbeat >= 0)) throw new TypeError('AmqpTransport: heartbeat must be >= 0 seconds');
    if (!(this.#prefetch >= 0)) throw new TypeError('AmqpTransport: prefetch must be >= 0');
    if (!(this.#maxBatchBytes >= 1024)) throw new TypeError('AmqpTransport: maxBatchBytes must be at least 1024');
    const base = options.logger ?? pino({ level: process.env['ROSTER_LOG_LEVEL'] ?? 'silent' });
    this.#baseLog = base.child({ transport: 'amqp' });
    this.#log = this.#baseLog;
    this.#coalescer = new Coalescer(this.#maxBatchBytes, (message) => this.#enqueue(message));
  }

  /** This node's queue name while `up`; a reconnect gives a new one. */
  get address(): string | undefined {
    return this.#link?.address;
  }

  /** `idle` → `connecting` → `up` ⇄ `down` → `closed`. */
  get state(): TransportState {
    return this.#state;
  }

  /** A snapshot of the counters. */
  get stats(): AmqpTransportStats {
    return { ...this.#stats };
  }

  /** The broker URL of the current connection, redacted; `undefined` unless `up`. */
  get broker(): string | undefined {
    return this.#link === undefined ? undefined : redactUrl(this.#link.url);
  }

  /**
   * Connects (trying `urls` in turn, with backoff between passes), declares
   * the cluster's exchange and this node's queue, emits `up` and resolves with
   * the address. Rejects with an {@link AmqpTransportError}: `connect_failed`
   * after `connectTimeoutMs`, `closed` if `close()` is called first.
   */
  connect(options: TransportConnectOptions): Promise<string> {
    if (this.#state === 'closed') {
      return Promise.reject(new AmqpTransportError('closed', 'AmqpTransport.connect: the transport is closed'));
    }
    if (this.#state !== 'idle') return Promise.reject(new Error(`AmqpTransport.connect: already ${this.#state}`));
    const { cluster, node } = options;
    if (typeof cluster !== 'string' || cluster === '') {
      return Promise.reject(new TypeError('AmqpTransport.connect: cluster must be a non-empty string'));
    }
    if (typeof node !== 'string' || node === '') {
      return Promise.reject(new TypeError('AmqpTransport.connect: node must be a non-empty string'));
    }
    if (Buffer.byteLength(EXCHANGE_PREFIX + cluster) > 255) {
      return Promise.reject(new TypeError('AmqpTransport.connect: cluster id too long (AMQP names are at most 255 bytes)'));
    }
    this.#cluster = cluster;
    this.#node = node;
    this.#exchange = EXCHANGE_PREFIX + cluster;
    this.#log = this.#baseLog.child({ cluster, node });
    this.#state = 'connecting';
    this.#failures = 0;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => this.#giveUpConnecting(), this.#connectTimeoutMs);
      this.#firstUp = { resolve, reject, timer };
      this.#startAttempt();
    });
  }

  /** Every node of the cluster gets `frame`, this one included. Dropped unless `up`. */
  broadcast(frame: string): void {
    this.#add(undefined, frame);
  }

  /** The node whose address is `address` gets `frame`. Dropped unless `up`, and by the broker when the address is gone. */
  send(address: string, frame: string): void {
    if (typeof address !== 'string') throw new TypeError(`AmqpTransport.send: address must be a string, got ${typeof address}`);
    if (address === '') {
      // No queue has an empty name: the frame could only be lost.
      if (typeof frame !== 'string') throw new TypeError(`a frame must be a string, got ${typeof frame}`);
      this.#stats.dropped += 1;
      return;
    }
    this.#add(address, frame);
  }

  /**
   * Publishes what is coalescing now and resolves once the broker has routed
   * every message handed over so far: with `confirms`, once it confirmed
   * each; without (the default), once it answered a round trip sent on the
   * same channel after them (it processes a channel's methods in order).
   * Either way the frames are in their queues when it resolves. Rejects with an
   * {@link AmqpTransportError}: `not_connected` when not `up` (frames handed
   * over meanwhile were dropped), `connection_lost` / `closed` when that
   * happens first, `rejected` when the broker nacked one of them.
   */
  flush(): Promise<void> {
    if (this.#state !== 'up') {
      const code = this.#state === 'closed' ? 'closed' : 'not_connected';
      return Promise.reject(new AmqpTransportError(code, `AmqpTransport.flush: the transport is ${this.#state}`));
    }
    this.#flushOpen();
    const published = this.#confirms.wait();
    return this.#useConfirms ? published : published.then(() => this.#barrier());
  }

  /** A round trip on the publishing channel: answered after every publish before it was routed. */
  async #barrier(): Promise<void> {
    const link = this.#link;
    if (link === undefined || this.#state !== 'up') {
      const code = this.#state === 'closed' ? 'closed' : 'connection_lost';
      throw new AmqpTransportError(code, `AmqpTransport.flush: the transport is ${this.#state}`);
    }
    try {
      await link.channel.checkQueue(link.address);
    } catch (error) {
      throw new AmqpTransportError('connection_lost', `AmqpTransport.flush: the connection was lost before the broker answered (${errorMessage(error)})`);
    }
  }

  /**
   * Leaves: publishes what is coalescing, waits (up to `closeTimeoutMs`) for
   * confirms, closes the connection (its exclusive queue goes with it) and
   * stops reconnecting. No event fires once `close()` was called. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const link = this.#state === 'up' ? this.#link : undefined;
    this.#state = 'closed';
    this.#generation += 1;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const closedError = new AmqpTransportError('closed', 'AmqpTransport: the transport was closed');
    if (this.#firstUp !== undefined) {
      clearTimeout(this.#firstUp.timer);
      this.#firstUp.reject(closedError);
      this.#firstUp = undefined;
    }
    if (link !== undefined) {
      this.#flushOpen();
      const drained = this.#confirms
        .wait()
        .then(() => (this.#useConfirms ? undefined : link.channel.checkQueue(link.address)))
        .then(
          () => true,
          () => false,
        );
      await Promise.race([drained, this.#delay(this.#closeTimeoutMs)]);
    }
    this.#dropPending(closedError);
    this.#link = undefined;
    if (link !== undefined) {
      await this.#closeModel(link.model);
      this.#log.info({ broker: redactUrl(link.url) }, 'amqp transport closed');
    }
    // A connection attempt still in flight closes its connection as soon as it settles.
    if (this.#attempt !== undefined) await Promise.race([this.#attempt, this.#delay(this.#attemptTimeoutMs)]);
  }

  // ---- outgoing ----------------------------------------------------------

  #add(address: string | undefined, frame: string): void {
    if (typeof frame !== 'string') throw new TypeError(`a frame must be a string, got ${typeof frame}`);
    if (this.#state !== 'up') {
      this.#stats.dropped += 1;
      return;
    }
    const bytes = Buffer.byteLength(frame, 'utf8');
    if (bytes > this.#maxFrameBytes) {
      this.#stats.oversized += 1;
      this.#stats.dropped += 1;
      this.#log.warn({ bytes, max: this.#maxFrameBytes }, 'dropped an outgoing frame larger than maxFrameBytes');
      return;
    }
    this.#coalescer.add(address, frame, bytes);
    if (this.#batching === 'none') {
      this.#flushOpen();
      return;
    }
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (this.#batching === 'microtask') queueMicrotask(this.#scheduledFlush);
    else setImmediate(this.#scheduledFlush);
  }

  readonly #scheduledFlush = (): void => {
    this.#flushScheduled = false;
    this.#flushOpen();
  };

  #flushOpen(): void {
    if (this.#coalescer.openFrames > 0) this.#coalescer.sealAll();
    this.#pump();
  }

  /** Called by the coalescer for each sealed message, in publishing order. */
  #enqueue(message: SealedMessage): void {
    const seq = this.#confirms.assign();
    if (this.#outboxBytes + message.content.length > this.#maxBufferedBytes && this.#outbox.length > this.#outboxHead) {
      this.#stats.dropped += message.frames;
      this.#confirms.nack(seq, new AmqpTransportError('rejected', 'AmqpTransport: dropped a message, the send buffer is full'));
      this.#log.warn({ frames: message.frames, bufferedBytes: this.#outboxBytes }, 'send buffer full: dropped frames');
      return;
    }
    this.#outbox.push({ message, seq });
    this.#outboxBytes += message.content.length;
  }

  /** Publishes queued messages until the outbox is empty or the socket is congested. */
  #pump(): void {
    const link = this.#link;
    if (link === undefined || this.#congested) return;
    const { channel, generation } = link;
    // Confirms need no generation check: after a loss the tracker has moved past every older sequence number.
    while (this.#outboxHead < this.#outbox.length) {
      const item = this.#outbox[this.#outboxHead] as Outgoing;
      this.#outboxHead += 1;
      this.#outboxBytes -= item.message.content.length;
      const { message, seq } = item;
      const properties: Options.Publish | undefined = message.single ? { type: SINGLE_FRAME_TYPE } : undefined;
      // With confirms, the broker's confirm settles it; without, being handed to the socket does (flush() adds the barrier).
      const onConfirm = this.#useConfirms
        ? (error: unknown): void => {
            if (error === null || error === undefined) {
              this.#stats.confirmed += 1;
              this.#confirms.ack(seq);
            } else if (errorMessage(error) === 'message nacked') {
              this.#stats.nacked += 1;
              this.#log.warn({ seq }, 'the broker refused a message (basic.nack)');
              this.#confirms.nack(seq, new AmqpTransportError('rejected', 'AmqpTransport: the broker refused a message (basic.nack)'));
            }
            // Any other error is the channel closing: #lost takes care of the waiters.
          }
        : undefined;
      let ok: boolean;
      try {
        ok =
          message.address === undefined
            ? (channel as ConfirmChannel).publish(this.#exchange, '', message.content, properties, onConfirm)
            : (channel as ConfirmChannel).publish('', message.address, message.content, properties, onConfirm);
      } catch (error) {
        // The channel or connection is closing (IllegalOperationError); its 'close' event follows.
        // Declare the loss now, but not synchronously: this may run inside a send() call.
        this.#stats.dropped += message.frames;
        queueMicrotask(() => this.#lost(generation, asError(error)));
        return;
      }
      if (onConfirm === undefined) this.#confirms.ack(seq);
      this.#stats.batches += 1;
      this.#stats.published += message.frames;
      if (!ok) {
        this.#congested = true;
        this.#log.debug({ queued: this.#outbox.length - this.#outboxHead }, 'socket congested: waiting for drain');
        break;
      }
    }
    if (this.#outboxHead === this.#outbox.length) {
      this.#outbox.length = 0;
      this.#outboxHead = 0;
      this.#outboxBytes = 0;
    } else if (this.#outboxHead > 4096 && this.#outboxHead * 2 > this.#outbox.length) {
      this.#outbox.splice(0, this.#outboxHead);
      this.#outboxHead = 0;
    }
  }

  /** Drops everything not yet published and fails pending flushes with `error`. */
  #dropPending(error: Error): void {
    const open = this.#coalescer.clear();
    let queued = 0;
    for (let i = this.#outboxHead; i < this.#outbox.length; i += 1) queued += (this.#outbox[i] as Outgoing).message.frames;
    this.#outbox.length = 0;
    this.#outboxHead = 0;
    this.#outboxBytes = 0;
    this.#congested = false;
    this.#stats.dropped += open + queued;
    this.#confirms.failAll(error);
  }

  // ---- incoming ----------------------------------------------------------

  #onMessage(generation: number, channel: Channel, message: ConsumeMessage | null): void {
    if (generation !== this.#generation || this.#state !== 'up') return;
    if (message === null) {
      this.#lost(generation, new Error('the broker cancelled the consumer (queue deleted?)'));
      return;
    }
    this.#stats.receivedBatches += 1;
    const tooBig = message.content.length > Math.max(this.#maxFrameBytes, this.#maxBatchBytes) + 1;
    if (tooBig) {
      this.#stats.oversized += 1;
      this.#log.warn({ bytes: message.content.length, max: this.#maxFrameBytes }, 'discarded an incoming message larger than maxFrameBytes');
    } else {
      const frames = splitFrames(message.content, message.properties.type as string | undefined);
      for (const frame of frames) {
        if (generation !== this.#generation || this.#state !== 'up') break;
        this.#stats.received += 1;
        this.#emitSafe('frame', frame);
      }
    }
    if (this.#prefetch > 0 && generation === this.#generation) {
      try {
        channel.ack(message);
      } catch {
        // The channel is gone; so is the queue and its unacked messages.
      }
    }
  }

  // ---- connection management ---------------------------------------------

  #startAttempt(): void {
    this.#reconnectTimer = undefined;
    if (this.#state === 'closed') return;
    const generation = ++this.#generation;
    const url = this.#urls[this.#order[this.#orderPos % this.#order.length] as number] as string;
    const attempt: Promise<void> = this.#connectOnce(generation, url)
      .catch((error: unknown) => this.#attemptFailed(generation, url, asError(error)))
      .finally(() => {
        if (this.#attempt === attempt) this.#attempt = undefined;
      });
    this.#attempt = attempt;
  }

  async #connectOnce(generation: number, url: string): Promise<void> {
    this.#log.debug({ broker: redactUrl(url) }, 'connecting');
    const model = await amqpConnect(withQuery(url, this.#heartbeat), {
      noDelay: true,
      timeout: this.#attemptTimeoutMs,
      clientProperties: { connection_name: `roster ${this.#cluster}/${this.#node}` },
    });
    if (!batchSocketWrites(model)) this.#log.debug('amqplib has another shape than expected: each frame is its own socket write');
    // From here on every event of this connection is handled, whatever happens next.
    model.on('error', (error: Error) => {
      if (generation === this.#generation) this.#lastError = error;
      this.#log.warn({ broker: redactUrl(url), err: errorMessage(error) }, 'amqp connection error');
    });
    model.on('close', (error?: Error) => {
      this.#closedWhileClosing(generation);
      this.#lost(generation, error ?? this.#lastError ?? new Error('the connection was closed'));
    });
    model.on('blocked', (reason: string) => this.#log.warn({ broker: redactUrl(url), reason }, 'the broker blocked publishing'));
    model.on('unblocked', () => this.#log.info({ broker: redactUrl(url) }, 'the broker unblocked publishing'));
    if (generation !== this.#generation) {
      await this.#closeModel(model);
      return;
    }
    try {
      const declared = this.#declare(generation, url, model);
      const { channel, queue } = await this.#withinAttempt(declared, url);
      if (generation !== this.#generation) {
        await this.#closeModel(model);
        return;
      }
      this.#link = { generation, url, model, channel, address: queue };
    } catch (error) {
      await this.#closeModel(model);
      throw error;
    }
    this.#becameUp(url);
  }

  /** Opens the confirm channel, declares the exchange and this node's queue, and consumes from it. */
  async #declare(generation: number, url: string, model: ChannelModel): Promise<{ channel: Channel; queue: string }> {
    const channel: Channel = this.#useConfirms ? await model.createConfirmChannel() : await model.createChannel();
    channel.on('error', (error: Error) => {
      if (generation === this.#generation) this.#lastError = error;
      this.#log.warn({ broker: redactUrl(url), err: errorMessage(error) }, 'amqp channel error');
    });
    channel.on('close', () => {
      this.#closedWhileClosing(generation);
      this.#lost(generation, this.#lastError ?? new Error('the channel was closed'));
    });
    channel.on('drain', () => {
      // Still the current channel (also while close() waits for confirms).
      if (this.#link?.channel !== channel) return;
      this.#congested = false;
      this.#pump();
    });
    await channel.assertExchange(this.#exchange, 'fanout', { durable: false, autoDelete: false });
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.#exchange, '');
    if (this.#prefetch > 0) await channel.prefetch(this.#prefetch);
    await channel.consume(queue, (message) => this.#onMessage(generation, channel, message), {
      noAck: this.#prefetch === 0,
      exclusive: true,
    });
    return { channel, queue };
  }

  /**
   * `declared`, or a rejection once it has taken `attemptTimeoutMs`: a broker
   * that completed the handshake but does not answer the declarations (on a
   * RabbitMQ 3.x cluster, every queue declaration waits while a member is
   * frozen and not yet declared down) must not hold the attempt forever.
   */
  async #withinAttempt<T>(declared: Promise<T>, url: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${redactUrl(url)} did not answer the declarations within ${this.#attemptTimeoutMs} ms`)),
        this.#attemptTimeoutMs,
      );
    });
    try {
      return await Promise.race([declared, timeout]);
    } finally {
      clearTimeout(timer);
      // The loser of the race rejects once the connection closes; nobody waits for it.
      declared.catch(noop);
    }
  }

  #becameUp(url: string): void {
    const link = this.#link;
    if (link === undefined) return;
    const reconnected = this.#state === 'down';
    this.#state = 'up';
    this.#failures = 0;
    this.#lastError = undefined;
    this.#congested = false;
    this.#stats.connections += 1;
    this.#log.info({ broker: redactUrl(url), address: link.address, reconnected }, 'amqp transport up');
    const firstUp = this.#firstUp;
    this.#firstUp = undefined;
    if (firstUp !== undefined) clearTimeout(firstUp.timer);
    this.#emitSafe('up', link.address);
    // A listener may have closed the transport.
    if (firstUp !== undefined) {
      if (this.state === 'closed') firstUp.reject(new AmqpTransportError('closed', 'AmqpTransport.connect: the transport was closed'));
      else firstUp.resolve(link.address);
    }
  }

  #attemptFailed(generation: number, url: string, error: Error): void {
    if (generation !== this.#generation || this.#state === 'closed') return;
    this.#lastError = error;
    this.#failures += 1;
    this.#orderPos = (this.#orderPos + 1) % this.#order.length;
    // Next URL at once; after a whole pass over the list failed, back off.
    const passes = Math.floor(this.#failures / this.#urls.length);
    const delay = this.#failures % this.#urls.length === 0 ? backoffDelay(this.#backoff, passes - 1) : 0;
    this.#log.warn({ broker: redactUrl(url), err: errorMessage(error), retryInMs: delay }, 'amqp connection attempt failed');
    this.#reconnectTimer = setTimeout(() => this.#startAttempt(), delay);
  }

  #giveUpConnecting(): void {
    const firstUp = this.#firstUp;
    if (firstUp === undefined || this.#state !== 'connecting') return;
    this.#firstUp = undefined;
    this.#generation += 1;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#state = 'idle';
    const last = this.#lastError === undefined ? '' : `; last error: ${errorMessage(this.#lastError)}`;
    this.#lastError = undefined;
    firstUp.reject(
      new AmqpTransportError(
        'connect_failed',
        `AmqpTransport.connect: no broker reachable within ${this.#connectTimeoutMs} ms (${this.#urls.map(redactUrl).join(', ')})${last}`,
      ),
    );
  }

  /** While `close()` waits for confirms, the connection went away: no confirm will come. */
  #closedWhileClosing(generation: number): void {
    if (this.#state === 'closed' && this.#link?.generation === generation) {
      this.#confirms.failAll(new AmqpTransportError('closed', 'AmqpTransport: the connection closed before the confirms came'));
    }
  }

  /** The current connection is gone (or must go): emit `down`, drop what is pending, reconnect. */
  #lost(generation: number, error: Error): void {
    if (generation !== this.#generation || this.#state !== 'up') return;
    const link = this.#link;
    this.#generation += 1;
    this.#state = 'down';
    this.#link = undefined;
    this.#lastError = undefined;
    const lostError = new AmqpTransportError('connection_lost', `AmqpTransport: the connection was lost: ${errorMessage(error)}`, {
      cause: error,
    });
    this.#dropPending(lostError);
    this.#log.warn({ broker: link === undefined ? undefined : redactUrl(link.url), err: errorMessage(error) }, 'amqp transport down');
    if (link !== undefined) void this.#closeModel(link.model);
    this.#emitSafe('down', error);
    if (this.#state !== 'down') return; // a listener closed it
    this.#reconnectAfterLoss(link === undefined ? -1 : this.#urls.indexOf(link.url));
  }

  /**
   * After losing the broker at `lostIndex`: try the URLs in list order, the
   * lost one last, at once (with a single URL, after the first backoff step).
   * List order first, not "the next one", so a node given its preferred
   * broker first goes back to it at its next loss, and nodes given rotated
   * lists stay spread over the brokers through rolling restarts instead of
   * piling onto whichever broker is left standing longest.
   */
  #reconnectAfterLoss(lostIndex: number): void {
    const others = this.#urls.map((_, index) => index).filter((index) => index !== lostIndex);
    this.#order = lostIndex < 0 ? others : [...others, lostIndex];
    this.#orderPos = 0;
    // With one URL the loss counts as the failed first attempt of the pass; with several, the pass ends with the lost one.
    this.#failures = this.#urls.length === 1 ? 1 : 0;
    const delay = this.#urls.length === 1 ? backoffDelay(this.#backoff, 0) : 0;
    this.#reconnectTimer = setTimeout(() => this.#startAttempt(), delay);
  }

  /** Closes a connection quietly, within `closeTimeoutMs`; never rejects. */
  async #closeModel(model: ChannelModel): Promise<void> {
    const closed = model.close().then(
      () => true,
      () => true,
    );
    const inTime = await Promise.race([closed, this.#delay(this.#closeTimeoutMs).then(() => false)]);
    if (!inTime) {
      // No close-ok from the broker: cut the socket.
      const stream = (model.connection as unknown as { stream?: { destroy?: () => void } }).stream;
      stream?.destroy?.();
    }
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }

  /** Emits without letting a throwing listener corrupt amqplib's state; the error is rethrown asynchronously. */
  #emitSafe<E extends keyof TransportEvents>(event: E, ...args: Parameters<TransportEvents[E]>): void {
    if (this.#state === 'closed') return;
    try {
      (this.emit as (event: E, ...rest: Parameters<TransportEvents[E]>) => boolean)(event, ...args);
    } catch (error) {
      this.#log.error({ event, err: errorMessage(error) }, 'a transport event listener threw');
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
