/**
 * A TCP fault proxy for tests (node:net, no dependencies): it sits between a
 * client and one target (a roster node and its broker) and can cut, delay,
 * throttle, reset or blackhole that link while every other link keeps
 * working. Toxiproxy does the same from a separate server; this one lives in
 * the test process and is small enough to trust.
 *
 * **When to use**: one proxy per roster node and broker (see
 * {@link startFaultLink} for a node's whole URL list), so that one node's
 * link can fail while the others keep theirs: real, one-sided partitions
 * over AMQP.
 *
 * **Gotchas**:
 * - A blackholed connection can never carry a valid stream again (bytes were
 *   dropped in the middle of it), so `heal()` lets new connections through
 *   and leaves the blackholed ones as they are: each end must find out by
 *   itself (heartbeats) and reconnect, as it would after a real blackhole.
 * - `cut()` stops listening, so new connections are refused (ECONNREFUSED);
 *   `heal()` listens again on the same port, which another process could in
 *   principle have taken meanwhile (then `heal()` rejects).
 * - `url()` rewrites host and port only; an `amqps://` URL through a proxy
 *   needs the client to verify the certificate against the real host name.
 *
 * @module
 */
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProxyConnection } from './internal/fault-proxy-connection.js';
import type { PipeCounters, PipeToxics } from './internal/fault-proxy-pipe.js';

/** Where a {@link FaultProxy} forwards to. */
export interface FaultProxyTarget {
  /** Host name or address of the target. */
  readonly host: string;
  /** TCP port of the target. */
  readonly port: number;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Where connections are forwarded. Required. */
  readonly target: FaultProxyTarget;
  /** Address the proxy listens on. Default `'127.0.0.1'`. */
  readonly host?: string;
  /** Port the proxy listens on. Default 0: a free port, see {@link FaultProxy.port}. */
  readonly port?: number;
}

/**
 * What the link does with connections:
 * - `open`: forwards (with the current delay and throttle);
 * - `cut`: refuses new connections; the ones it had were closed;
 * - `blackhole`: accepts, reads and drops everything both ways, and lets no
 *   FIN or RST through.
 */
export type FaultProxyState = 'open' | 'cut' | 'blackhole';

/** Counters of a {@link FaultProxy} since it started. */
export interface FaultProxyStats {
  /** Connections accepted. */
  readonly accepted: number;
  /** Connections open now (blackholed ones included). */
  readonly active: number;
  /** Bytes forwarded, both directions. */
  readonly forwarded: number;
  /** Bytes read and discarded by a blackhole, or left waiting when a connection was blackholed. */
  readonly dropped: number;
}

/** A running proxy; see {@link startFaultProxy}. */
export interface FaultProxy {
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on (also while cut: `heal()` listens on it again). */
  readonly port: number;
  /** Where it forwards. */
  readonly target: FaultProxyTarget;
  /** The current state; see {@link FaultProxyState}. */
  readonly state: FaultProxyState;
  /** The latency added to every chunk, in ms (0: none). */
  readonly delayMs: number;
  /** The rate bound per connection and direction, bytes per second (Infinity: none). */
  readonly bytesPerSecond: number;
  /** A snapshot of the counters. */
  readonly stats: FaultProxyStats;
  /**
   * `amqpUrl` with its host and port replaced by the proxy's (credentials,
   * vhost and query kept), e.g. `amqp://guest:guest@127.0.0.1:5672/v` ->
   * `amqp://guest:guest@127.0.0.1:41234/v`.
   */
  url(amqpUrl: string): string;
  /**
   * Closes every connection (both sides see the socket close) and refuses new
   * ones until {@link FaultProxy.heal}. Resolves once the port refuses.
   */
  cut(): Promise<void>;
  /**
   * Back to `open` with no delay and no throttle: listens again if cut, and
   * forwards new connections. Blackholed connections stay blackholed (their
   * streams have gaps); their ends must notice and reconnect.
   */
  heal(): Promise<void>;
  /** Adds `ms` of latency to every chunk from now on, both directions, order kept. 0 removes it. */
  delay(ms: number): void;
  /**
   * Bounds each connection to `bytesPerSecond` in each direction (smoothly,
   * in slices of 20 ms worth), from now on. 0 or Infinity removes the bound.
   */
  throttle(bytesPerSecond: number): void;
  /** Resets every open connection (RST to both sides). New connections still go through. */
  reset(): void;
  /**
   * Blackholes the link: open connections and new ones are accepted and read,
   * and everything is dropped, both ways; no FIN and no RST goes through (the
   * hardest case for heartbeats). Until {@link FaultProxy.heal}.
   */
  blackhole(): void;
  /** Stops the proxy: closes the listener and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

const DEFAULTS = Object.freeze({ host: '127.0.0.1', port: 0 });
const OPTION_KEYS = new Set(['target', 'host', 'port']);

function resolveFaultProxyOptions(options: FaultProxyOptions): { target: FaultProxyTarget; host: string; port: number } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`startFaultProxy: options must be an object, got ${String(options)}`);
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new TypeError(`startFaultProxy: unknown option ${JSON.stringify(key)}`);
  }
  const target = options.target as FaultProxyTarget | undefined;
  if (typeof target !== 'object' || target === null || typeof target.host !== 'string' || target.host === '') {
    throw new TypeError(`startFaultProxy: option target must be { host, port }, got ${JSON.stringify(target)}`);
  }
  if (!isPort(target.port, false)) throw new TypeError(`startFaultProxy: option target.port must be a TCP port, got ${String(target.port)}`);
  const host = options.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host === '') throw new TypeError(`startFaultProxy: option host must be a non-empty string, got ${String(host)}`);
  const port = options.port ?? DEFAULTS.port;
  if (!isPort(port, true)) throw new TypeError(`startFaultProxy: option port must be a TCP port or 0, got ${String(port)}`);
  return { target: { host: target.host, port: target.port }, host, port };
}

function isPort(value: unknown, zeroOk: boolean): value is number {
  return Number.isInteger(value) && (value as number) >= (zeroOk ? 0 : 1) && (value as number) <= 65_535;
}

/**
 * Starts a proxy listening on a free port of 127.0.0.1 (or `host`/`port`)
 * that forwards every connection to `target`, state `open`. It holds no
 * reference on the event loop: an open proxy never keeps a test process alive
 * (its connections do while they are open).
 *
 * @example
 * const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: 5672 } });
 * const transport = new AmqpTransport({ urls: proxy.url('amqp://guest:guest@127.0.0.1:5672') });
 * proxy.blackhole(); // ... later: await proxy.heal();
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const resolved = resolveFaultProxyOptions(options);
  const proxy = new TcpFaultProxy(resolved.target, resolved.host);
  await proxy.listen(resolved.port);
  return proxy;
}

class TcpFaultProxy implements FaultProxy {
  readonly host: string;
  readonly target: FaultProxyTarget;
  #port = 0;
  #server: Server | undefined;
  #state: FaultProxyState = 'open';
  #closed = false;
  readonly #toxics: { delayMs: number; bytesPerSecond: number } = { delayMs: 0, bytesPerSecond: Infinity };
  readonly #counters: PipeCounters = { forwarded: 0, dropped: 0 };
  #accepted = 0;
  readonly #connections = new Set<ProxyConnection>();

  constructor(target: FaultProxyTarget, host: string) {
    this.target = target;
    this.host = host;
  }

  get port(): number {
    return this.#port;
  }

  get state(): FaultProxyState {
    return this.#state;
  }

  get delayMs(): number {
    return this.#toxics.delayMs;
  }

  get bytesPerSecond(): number {
    return this.#toxics.bytesPerSecond;
  }

  get stats(): FaultProxyStats {
    return { accepted: this.#accepted, active: this.#connections.size, forwarded: this.#counters.forwarded, dropped: this.#counters.dropped };
  }

  url(amqpUrl: string): string {
    let parsed: URL;
    try {
      parsed = new URL(amqpUrl);
    } catch {
      throw new TypeError('FaultProxy.url: not a URL');
    }
    parsed.hostname = this.host.includes(':') ? `[${this.host}]` : this.host;
    parsed.port = String(this.#port);
    return parsed.toString();
  }

  /** Listens on `port` (0: a free one); retried briefly when the port is still in use (after a cut). */
  async listen(port: number): Promise<void> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 20; attempt++) {
      const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: this.host, port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        lastError = error;
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) break;
        await sleep(100);
        continue;
      }
      server.on('error', () => {});
      server.unref();
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('FaultProxy: unexpected server address');
      this.#port = address.port;
      this.#server = server;
      return;
    }
    throw new Error(`FaultProxy: cannot listen on ${this.host}:${port}: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  #accept(socket: Socket): void {
    if (this.#closed || this.#state === 'cut') {
      socket.destroy();
      return;
    }
    this.#accepted++;
    const connection = new ProxyConnection(socket, this.target, this.#toxics as PipeToxics, this.#counters, this.#state === 'blackhole', (c) =>
      this.#connections.delete(c),
    );
    this.#connections.add(connection);
  }

  async cut(): Promise<void> {
    this.#assertOpen('cut');
    this.#state = 'cut';
    await this.#stopListening();
    for (const connection of [...this.#connections]) connection.close();
  }

  async heal(): Promise<void> {
    this.#assertOpen('heal');
    this.#toxics.delayMs = 0;
    this.#toxics.bytesPerSecond = Infinity;
    const wasCut = this.#state === 'cut';
    this.#state = 'open';
    if (wasCut && this.#server === undefined) await this.listen(this.#port);
  }

  delay(ms: number): void {
    this.#assertOpen('delay');
    if (!(typeof ms === 'number' && ms >= 0 && Number.isFinite(ms))) throw new TypeError(`FaultProxy.delay: ms must be a finite number >= 0, got ${String(ms)}`);
    this.#toxics.delayMs = ms;
  }

  throttle(bytesPerSecond: number): void {
    this.#assertOpen('throttle');
    if (!(typeof bytesPerSecond === 'number' && bytesPerSecond >= 0)) {
      throw new TypeError(`FaultProxy.throttle: bytesPerSecond must be a number >= 0, got ${String(bytesPerSecond)}`);
    }
    this.#toxics.bytesPerSecond = bytesPerSecond === 0 ? Infinity : bytesPerSecond;
  }

  reset(): void {
    this.#assertOpen('reset');
    for (const connection of [...this.#connections]) connection.reset();
  }

  blackhole(): void {
    this.#assertOpen('blackhole');
    if (this.#state === 'cut') throw new Error('FaultProxy.blackhole: the link is cut; heal() first');
    this.#state = 'blackhole';
    for (const connection of this.#connections) connection.blackhole();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stopListening();
    for (const connection of [...this.#connections]) connection.reset();
    this.#connections.clear();
  }

  #assertOpen(action: string): void {
    if (this.#closed) throw new Error(`FaultProxy.${action}: the proxy is closed`);
  }

  async #stopListening(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    // close() stops accepting at once; its callback would wait for every connection.
    const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
    server.close();
    for (const connection of [...this.#connections]) connection.close();
    await closed;
  }
}

/** Options of {@link startFaultLink}. */
export interface FaultLinkOptions {
  /** The broker URLs of one node (`amqp://` or `amqps://`); one proxy is started per URL. */
  readonly urls: readonly string[];
  /** Address the proxies listen on. Default `'127.0.0.1'`. */
  readonly host?: string;
}

/**
 * One node's link to its brokers: a {@link FaultProxy} per broker URL, and
 * every fault verb applied to all of them at once, so a node given
 * {@link FaultLink.urls} can lose (or regain) every broker together while
 * other nodes keep theirs.
 */
export interface FaultLink extends Pick<FaultProxy, 'cut' | 'heal' | 'delay' | 'throttle' | 'reset' | 'blackhole' | 'close'> {
  /** The node's URLs, each rewritten through its proxy, in the order given. */
  readonly urls: readonly string[];
  /** The proxies, in the order of the URLs. */
  readonly proxies: readonly FaultProxy[];
}

/** Starts a {@link FaultLink}: one proxy per URL of `urls`, all `open`. */
export async function startFaultLink(options: FaultLinkOptions): Promise<FaultLink> {
  if (typeof options !== 'object' || options === null || !Array.isArray(options.urls) || options.urls.length === 0) {
    throw new TypeError('startFaultLink: option urls must be a non-empty array of amqp:// or amqps:// URLs');
  }
  for (const key of Object.keys(options)) {
    if (key !== 'urls' && key !== 'host') throw new TypeError(`startFaultLink: unknown option ${JSON.stringify(key)}`);
  }
  const targets = options.urls.map((url) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError('startFaultLink: not a URL in option urls');
    }
    const tls = parsed.protocol === 'amqps:';
    if (!tls && parsed.protocol !== 'amqp:') throw new TypeError(`startFaultLink: not an amqp:// or amqps:// URL (${parsed.protocol})`);
    return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: parsed.port === '' ? (tls ? 5671 : 5672) : Number(parsed.port) };
  });
  const proxies: FaultProxy[] = [];
  try {
    for (const target of targets) proxies.push(await startFaultProxy({ target, ...(options.host === undefined ? {} : { host: options.host }) }));
  } catch (error) {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    throw error;
  }
  const urls = options.urls.map((url, index) => (proxies[index] as FaultProxy).url(url));
  return {
    urls,
    proxies,
    cut: async () => void (await Promise.all(proxies.map((proxy) => proxy.cut()))),
    heal: async () => void (await Promise.all(proxies.map((proxy) => proxy.heal()))),
    delay: (ms) => proxies.forEach((proxy) => proxy.delay(ms)),
    throttle: (bytesPerSecond) => proxies.forEach((proxy) => proxy.throttle(bytesPerSecond)),
    reset: () => proxies.forEach((proxy) => proxy.reset()),
    blackhole: () => proxies.forEach((proxy) => proxy.blackhole()),
    close: async () => void (await Promise.all(proxies.map((proxy) => proxy.close()))),
  };
}
