/**
 * One direction of a fault proxy connection: bytes read from `source` are
 * written to `sink` after the proxy's current delay, at no more than its
 * current rate, in order, with back-pressure both ways (the source is paused
 * while too much waits here, and nothing is written while the sink is
 * congested). A dropping pipe reads and discards.
 *
 * @module
 */
import type { Socket } from 'node:net';

/** The faults a proxy applies to the bytes it forwards, read at every step (so changes apply at once). */
export interface PipeToxics {
  /** Added latency per chunk, in ms (0: none). */
  readonly delayMs: number;
  /** Most bytes per second per direction and connection (Infinity: unbounded). */
  readonly bytesPerSecond: number;
}

/** Byte counters shared by every pipe of a proxy. */
export interface PipeCounters {
  forwarded: number;
  dropped: number;
}

/** Pause the source past this many bytes waiting in the pipe; resume below a quarter of it. */
const HIGH_WATER = 1024 * 1024;
/** A throttled pipe writes slices of at most this share of a second's worth of bytes, so the rate stays smooth. */
const SLICE_SECONDS = 0.02;

interface Pending {
  chunk: Buffer;
  /** When it may go (arrival + delay), `performance.now()` ms. */
  readonly at: number;
}

export class Pipe {
  readonly #source: Socket;
  readonly #sink: Socket;
  readonly #toxics: PipeToxics;
  readonly #counters: PipeCounters;
  readonly #queue: Pending[] = [];
  #queuedBytes = 0;
  /** Throttle: the earliest moment the next byte may go. */
  #nextAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #waitingDrain = false;
  #sourcePaused = false;
  #sourceEnded = false;
  #sinkEnded = false;
  #dropping = false;

  /** `onEnd` runs once the source's end has been passed on (or swallowed, when dropping). */
  constructor(source: Socket, sink: Socket, toxics: PipeToxics, counters: PipeCounters, private readonly onEnd: () => void) {
    this.#source = source;
    this.#sink = sink;
    this.#toxics = toxics;
    this.#counters = counters;
    source.on('data', (chunk: Buffer) => this.#push(chunk));
    source.on('end', () => {
      this.#sourceEnded = true;
      this.#pump();
    });
  }

  /** From now on everything read is discarded, and so is what waits; the source's end is not passed on. */
  drop(): void {
    this.#dropping = true;
    // Nothing will be written any more: a pending 'drain' must not hold back the source's end.
    this.#waitingDrain = false;
    this.#counters.dropped += this.#queuedBytes;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#resumeSource();
  }

  /** Stops all timers (the connection is going away). */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }

  #push(chunk: Buffer): void {
    if (this.#dropping) {
      this.#counters.dropped += chunk.length;
      return;
    }
    this.#queue.push({ chunk, at: performance.now() + this.#toxics.delayMs });
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > HIGH_WATER && !this.#sourcePaused) {
      this.#sourcePaused = true;
      this.#source.pause();
    }
    this.#pump();
  }

  #resumeSource(): void {
    if (!this.#sourcePaused) return;
    this.#sourcePaused = false;
    this.#source.resume();
  }

  readonly #wake = (): void => {
    this.#timer = undefined;
    this.#pump();
  };

  #pump(): void {
    if (this.#timer !== undefined || this.#waitingDrain || this.#sinkEnded) return;
    while (this.#queue.length > 0) {
      if (this.#dropping || this.#sink.destroyed) return;
      const head = this.#queue[0] as Pending;
      const now = performance.now();
      const rate = this.#toxics.bytesPerSecond;
      const throttled = Number.isFinite(rate) && rate > 0;
      const wait = Math.max(head.at, throttled ? this.#nextAt : 0) - now;
      if (wait > 0) {
        this.#timer = setTimeout(this.#wake, Math.ceil(wait));
        return;
      }
      let piece = head.chunk;
      if (throttled) {
        const slice = Math.max(1, Math.floor(rate * SLICE_SECONDS));
        if (piece.length > slice) piece = piece.subarray(0, slice);
        this.#nextAt = Math.max(now, this.#nextAt) + (piece.length / rate) * 1000;
      }
      if (piece.length === head.chunk.length) this.#queue.shift();
      else head.chunk = head.chunk.subarray(piece.length);
      this.#queuedBytes -= piece.length;
      this.#counters.forwarded += piece.length;
      const ok = this.#sink.write(piece);
      if (this.#queuedBytes < HIGH_WATER / 4) this.#resumeSource();
      if (!ok) {
        this.#waitingDrain = true;
        this.#sink.once('drain', () => {
          this.#waitingDrain = false;
          this.#pump();
        });
        return;
      }
    }
    this.#resumeSource();
    if (this.#sourceEnded && !this.#sinkEnded) {
      this.#sinkEnded = true;
      if (!this.#dropping) this.#sink.end();
      this.onEnd();
    }
  }
}
