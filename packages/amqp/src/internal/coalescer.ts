/** AMQP `type` property of a message that carries one frame verbatim (never split on receipt). */
export const SINGLE_FRAME_TYPE = 'roster.frame';

/** One AMQP message ready to publish. */
export interface SealedMessage {
  /** `undefined`: a broadcast (the cluster exchange); otherwise the destination queue. */
  readonly address: string | undefined;
  readonly content: Buffer;
  /** How many frames it carries. */
  readonly frames: number;
  /** True: one frame that contains a newline, sent as is with type {@link SINGLE_FRAME_TYPE}. */
  readonly single: boolean;
}

interface OpenBatch {
  readonly address: string | undefined;
  frames: string[];
  bytes: number;
}

/**
 * Coalesces frames into AMQP messages: frames to the same destination (one
 * address, or the broadcast) handed over before the next {@link sealAll}
 * travel as one message, joined with '\n' (frames are JSON: they never
 * contain a raw newline; one that does travels alone, unjoined).
 *
 * Ordering. Frames to one destination keep their order (a batch is sealed
 * before the next one to the same destination opens). Across destinations
 * only broadcast-versus-direct order matters, because a broadcast also
 * reaches every direct destination: `send(B, f1); broadcast(f2); send(B, f3)`
 * must reach B as f1, f2, f3. So open batches are either one broadcast batch
 * or any number of direct batches, never both: switching kind seals what is
 * open first. Direct batches to different addresses go to different queues,
 * so their relative order is irrelevant.
 */
export class Coalescer {
  readonly #maxBatchBytes: number;
  readonly #seal: (message: SealedMessage) => void;
  #broadcast: OpenBatch | undefined;
  readonly #direct = new Map<string, OpenBatch>();
  #openFrames = 0;

  /** `seal` receives every message, in the order it must be published. */
  constructor(maxBatchBytes: number, seal: (message: SealedMessage) => void) {
    this.#maxBatchBytes = maxBatchBytes;
    this.#seal = seal;
  }

  /** Frames waiting in open batches. */
  get openFrames(): number {
    return this.#openFrames;
  }

  /**
   * Adds `frame` (of `bytes` UTF-8 bytes) for `address` (`undefined`: broadcast).
   * May seal messages synchronously (a kind switch, a full batch, a frame
   * that must travel alone).
   */
  add(address: string | undefined, frame: string, bytes: number): void {
    if (address === undefined) {
      if (this.#direct.size > 0) this.#sealDirect();
    } else if (this.#broadcast !== undefined) {
      this.#sealBatch(this.#broadcast);
      this.#broadcast = undefined;
    }
    let batch = address === undefined ? this.#broadcast : this.#direct.get(address);
    if (frame.includes('\n')) {
      if (batch !== undefined) this.#closeBatch(batch);
      this.#seal({ address, content: Buffer.from(frame, 'utf8'), frames: 1, single: true });
      return;
    }
    if (batch !== undefined && batch.bytes + 1 + bytes > this.#maxBatchBytes) {
      this.#closeBatch(batch);
      batch = undefined;
    }
    if (batch === undefined) {
      batch = { address, frames: [], bytes: -1 };
      if (address === undefined) this.#broadcast = batch;
      else this.#direct.set(address, batch);
    }
    batch.frames.push(frame);
    batch.bytes += bytes + 1;
    this.#openFrames += 1;
  }

  /** Seals every open batch. */
  sealAll(): void {
    if (this.#broadcast !== undefined) {
      this.#sealBatch(this.#broadcast);
      this.#broadcast = undefined;
    }
    this.#sealDirect();
  }

  /** Forgets every open batch; returns how many frames they held. */
  clear(): number {
    const dropped = this.#openFrames;
    this.#broadcast = undefined;
    this.#direct.clear();
    this.#openFrames = 0;
    return dropped;
  }

  #sealDirect(): void {
    for (const batch of this.#direct.values()) this.#sealBatch(batch);
    this.#direct.clear();
  }

  #closeBatch(batch: OpenBatch): void {
    this.#sealBatch(batch);
    if (batch.address === undefined) this.#broadcast = undefined;
    else this.#direct.delete(batch.address);
  }

  #sealBatch(batch: OpenBatch): void {
    const count = batch.frames.length;
    if (count === 0) return;
    this.#openFrames -= count;
    const text = count === 1 ? (batch.frames[0] as string) : batch.frames.join('\n');
    this.#seal({ address: batch.address, content: Buffer.from(text, 'utf8'), frames: count, single: false });
  }
}

/** Splits a received message back into its frames. */
export function splitFrames(content: Buffer, type: string | undefined): string[] {
  const text = content.toString('utf8');
  return type === SINGLE_FRAME_TYPE ? [text] : text.split('\n');
}
