/**
 * Server-sent events: the one live route of the page. Each client gets the
 * whole view once (`view`), then what changed (`patch`); a comment line
 * every few seconds keeps proxies from closing an idle stream. A client that
 * stops reading is cut off once too much waits for it, so a stalled tab never
 * grows the observer's memory.
 */
import type { ServerResponse } from 'node:http';

/** Bytes that may wait in a client's socket buffer before it is dropped. */
export const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** One SSE message: `event` and one `data` line of JSON (JSON.stringify never emits a newline). */
export function formatEvent(event: string, data: unknown, id?: number): string {
  if (!/^[a-z_]+$/.test(event)) throw new TypeError(`formatEvent: event must be lowercase letters, got ${JSON.stringify(event)}`);
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The clients of the event route, and writing to all of them. */
export class EventHub {
  readonly #clients = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;

  constructor(keepAliveMs = 15_000) {
    this.#timer = setInterval(() => this.#write(': keep-alive\n\n'), keepAliveMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Takes over `res` as an event stream (headers already chosen by the caller) and sends it `first`. */
  add(res: ServerResponse, headers: Record<string, string>, first: string): void {
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    res.write(first);
    this.#clients.add(res);
    const drop = (): void => {
      this.#clients.delete(res);
    };
    res.on('close', drop);
    res.on('error', drop);
  }

  /** To every client. */
  send(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#write(formatEvent(event, data));
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  /** Ends every stream; nothing is sent afterwards. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}
