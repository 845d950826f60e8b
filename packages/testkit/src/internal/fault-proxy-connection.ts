/**
 * One client connection through a fault proxy: the accepted socket, the
 * socket to the target, and a {@link Pipe} each way.
 *
 * @module
 */
import { connect, type Socket } from 'node:net';
import { Pipe, type PipeCounters, type PipeToxics } from './fault-proxy-pipe.js';

export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
}

export class ProxyConnection {
  readonly #client: Socket;
  readonly #upstream: Socket | undefined;
  readonly #pipes: Pipe[] = [];
  #blackholed = false;
  #closed = false;
  readonly #onClosed: (connection: ProxyConnection) => void;

  /**
   * `blackholed`: accepted while the proxy is blackholed, so no connection
   * to the target is made at all; what the client sends is read and dropped.
   */
  constructor(
    client: Socket,
    target: ConnectionTarget,
    toxics: PipeToxics,
    counters: PipeCounters,
    blackholed: boolean,
    onClosed: (connection: ProxyConnection) => void,
  ) {
    this.#client = client;
    this.#onClosed = onClosed;
    client.setNoDelay(true);
    client.on('error', (error: NodeJS.ErrnoException) => this.#destroyBoth(error.code === 'ECONNRESET'));
    client.on('close', (hadError: boolean) => this.#sideClosed(client, hadError));
    if (blackholed) {
      this.#blackholed = true;
      this.#upstream = undefined;
      const sink = new Pipe(client, client, toxics, counters, () => this.#blackholedEnd(client));
      sink.drop();
      this.#pipes.push(sink);
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    this.#upstream = upstream;
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      // The target reset the connection: so does the client's side. Anything else (refused, unreachable): the client's side closes.
      this.#destroyBoth(error.code === 'ECONNRESET');
    });
    upstream.on('close', (hadError: boolean) => this.#sideClosed(upstream, hadError));
    this.#pipes.push(
      new Pipe(client, upstream, toxics, counters, () => {
        if (this.#blackholed) this.#blackholedEnd(client);
      }),
      new Pipe(upstream, client, toxics, counters, () => {
        if (this.#blackholed) this.#blackholedEnd(upstream);
      }),
    );
  }

  /**
   * From now on nothing crosses, either way, and no end, reset or close
   * crosses either: each side keeps an open socket that swallows what it
   * writes. A side that closes its end is answered (its own close completes);
   * the other side is not told.
   */
  blackhole(): void {
    if (this.#blackholed) return;
    this.#blackholed = true;
    for (const pipe of this.#pipes) pipe.drop();
    // From here an error on one side must not close the other.
    this.#client.removeAllListeners('error');
    this.#client.on('error', () => this.#client.destroy());
    if (this.#upstream !== undefined) {
      const upstream = this.#upstream;
      upstream.removeAllListeners('error');
      upstream.on('error', () => upstream.destroy());
    }
  }

  /** Closes both sides (FIN; the kernel sends RST instead when unread bytes remain). */
  close(): void {
    this.#destroyBoth(false);
  }

  /** Resets both sides (RST). */
  reset(): void {
    this.#destroyBoth(true);
  }

  #blackholedEnd(side: Socket): void {
    // Answer the FIN of the side that closed; the other side hears nothing.
    if (!side.destroyed) side.end();
  }

  #destroyBoth(reset: boolean): void {
    for (const pipe of this.#pipes) pipe.dispose();
    for (const socket of [this.#client, this.#upstream]) {
      if (socket === undefined || socket.destroyed) continue;
      if (reset && typeof socket.resetAndDestroy === 'function' && socket.readyState !== 'opening') socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  /**
   * One side closed. After an error, outside a blackhole, the other side is
   * destroyed too; after a clean close nothing is needed (both directions had
   * ended, and the pipes pass each end on once what they hold is written).
   * Once both sides are gone, so is the connection.
   */
  #sideClosed(side: Socket, hadError: boolean): void {
    const other = side === this.#client ? this.#upstream : this.#client;
    if (hadError && !this.#blackholed && other !== undefined && !other.destroyed) other.destroy();
    if (this.#closed || !this.#client.destroyed || (this.#upstream !== undefined && !this.#upstream.destroyed)) return;
    this.#closed = true;
    for (const pipe of this.#pipes) pipe.dispose();
    this.#onClosed(this);
  }
}
