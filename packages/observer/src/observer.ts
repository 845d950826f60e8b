/**
 * `startObserver(node, options)`: a small HTTP server (node:http) that shows
 * the cluster `node` belongs to, live, in a browser page fed by server-sent
 * events, and exports the same figures at `/metrics` for Prometheus.
 *
 * It only watches: it listens to the node's cluster and registry events and
 * asks every member for a snapshot once per `interval` on the cluster's
 * introspection channel. It sends nothing else, holds no name and votes on
 * nothing (on a node started with `role: 'observer'` the cluster guarantees
 * that; on a member node the observer itself adds no registry traffic).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { canonicalName, formatReason, type ExitReason, type Name, type Node, type Pid } from '@roster/core';
import { clusterOf, type Cluster, type PeerIdentity } from '@roster/cluster';
import type { ConflictOutcome, GlobalsRegistry } from '@roster/globals';
import { formatEpoch } from '@roster/globals';
import { ObserverError } from './errors.js';
import { createMetrics, type MetricsReading, type ObserverMetrics } from './metrics.js';
import { EventHub, formatEvent } from './internal/events.js';
import {
  authorize,
  contentSecurityPolicy,
  inlineScripts,
  matchRoute,
  mimeOf,
  scriptHash,
  securityHeaders,
  Sessions,
  allowedHost,
  type RouteName,
} from './internal/http.js';
import { clusterReport, globalsReport, View } from './internal/snapshot.js';

export interface ObserverOptions {
  /** TCP port; default 0: a free port the system picks (read it from `url`). */
  readonly port?: number;
  /** Address to bind; default `127.0.0.1` (this machine only). Bind `0.0.0.0` or `::` only with a `token`, or behind a proxy that checks access. */
  readonly host?: string;
  /**
   * A bearer token every request must carry: `Authorization: Bearer <token>`
   * (what a Prometheus scraper sends), or, for the page, open
   * `<url>?token=<token>` once: the observer answers with an HttpOnly
   * session cookie and a redirect that takes the token out of the address.
   * Default none: anyone who reaches `host:port` may look.
   */
  readonly token?: string;
  /** Milliseconds between snapshots of every node (and points on the charts). Default 1000. */
  readonly interval?: number;
  /** The key the node's globals registry is installed under; its names table is shown. Default `globals`. */
  readonly registry?: string;
  /** A broker URL to show on the page (e.g. the AMQP URL the node uses): always shown redacted, never with credentials. */
  readonly broker?: string;
  /** How many of each node's longest mailboxes to show. Default 10. */
  readonly longestMailboxes?: number;
}

/** A running observer. */
export interface RunningObserver {
  /** Where the page is: `http://host:port/` (without the token). */
  readonly url: string;
  /** Stops serving: ends every event stream and closes the server. Idempotent; also done when the node stops. */
  close(): Promise<void>;
}

/** The defaults of {@link ObserverOptions}. */
export const OBSERVER_DEFAULTS = Object.freeze({
  port: 0,
  host: '127.0.0.1',
  interval: 1000,
  registry: 'globals',
  longestMailboxes: 10,
});

interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly token: string | undefined;
  readonly interval: number;
  readonly registry: string;
  readonly broker: string | undefined;
  readonly longestMailboxes: number;
}

const OPTION_KEYS: ReadonlySet<string> = new Set<keyof ObserverOptions>(['port', 'host', 'token', 'interval', 'registry', 'broker', 'longestMailboxes']);

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value === 'number' ? String(value) : typeof value;
}

/** Checks `options` once: unknown keys and bad values are `TypeError`s naming the option. */
export function resolveObserverOptions(options: ObserverOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`startObserver: options must be an object, got ${describe(options)}`);
  const unknown = Object.keys(options).filter((key) => !OPTION_KEYS.has(key));
  if (unknown.length > 0) throw new TypeError(`startObserver: unknown option ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: ${[...OPTION_KEYS].join(', ')})`);
  const port = options.port ?? OBSERVER_DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`startObserver: option port must be an integer from 0 to 65535, got ${describe(port)}`);
  const host = options.host ?? OBSERVER_DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) throw new TypeError(`startObserver: option host must be a non-empty string, got ${describe(host)}`);
  const token = options.token;
  if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]{8,}$/.test(token))) {
    throw new TypeError(`startObserver: option token must be a string of at least 8 printable ASCII characters without spaces, got ${typeof token === 'string' ? `${token.length} characters` : typeof token}`);
  }
  const interval = options.interval ?? OBSERVER_DEFAULTS.interval;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 50) throw new TypeError(`startObserver: option interval must be a number of ms >= 50, got ${describe(interval)}`);
  const registry = options.registry ?? OBSERVER_DEFAULTS.registry;
  if (typeof registry !== 'string' || registry.length === 0) throw new TypeError(`startObserver: option registry must be a non-empty string, got ${describe(registry)}`);
  const broker = options.broker;
  if (broker !== undefined && typeof broker !== 'string') throw new TypeError(`startObserver: option broker must be a string (a URL), got ${typeof broker}`);
  const longestMailboxes = options.longestMailboxes ?? OBSERVER_DEFAULTS.longestMailboxes;
  if (!Number.isInteger(longestMailboxes) || longestMailboxes < 0 || longestMailboxes > 1000) {
    throw new TypeError(`startObserver: option longestMailboxes must be an integer from 0 to 1000, got ${describe(longestMailboxes)}`);
  }
  return { port, host, token, interval, registry, broker, longestMailboxes };
}

/**
 * Hides the credentials of a URL with @roster/amqp's `redactUrl` (an
 * optional peer: a cluster given a broker URL to show uses AMQP, so has it);
 * without it, everything after the scheme is hidden.
 */
async function redact(url: string): Promise<string> {
  try {
    const amqp = (await import('@roster/amqp')) as { redactUrl?: (url: string) => string };
    if (typeof amqp.redactUrl === 'function') return amqp.redactUrl(url);
  } catch {
    // not installed: fall through
  }
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  return scheme === undefined ? '***' : `${scheme}***`;
}

/** The page and its assets, read once at start from `ui/` beside `src/` (or `dist/`). */
interface Assets {
  readonly page: Buffer;
  readonly csp: string;
  readonly ui: ReadonlyMap<string, Buffer>;
  readonly vendor: ReadonlyMap<string, string>;
}

/** What `/vendor/<file>` answers: the installed packages' browser builds, resolved as this module resolves them. */
const VENDOR: Readonly<Record<string, string>> = Object.freeze({
  'preact.js': 'preact',
  'preact-hooks.js': 'preact/hooks',
  'htm.js': 'htm',
  'htm-preact.js': 'htm/preact',
  'uplot.js': 'uplot/dist/uPlot.esm.js',
  'uplot.css': 'uplot/dist/uPlot.min.css',
});

function loadAssets(): Assets {
  const dir = new URL('../ui/', import.meta.url);
  const page = readFileSync(new URL('index.html', dir));
  const hashes = inlineScripts(page.toString('utf8')).map(scriptHash);
  const ui = new Map<string, Buffer>();
  for (const file of readdirSync(dir)) {
    if (/^[a-z0-9][a-z0-9-]*\.(?:js|css|svg|png)$/.test(file)) ui.set(file, readFileSync(new URL(file, dir)));
  }
  const vendor = new Map<string, string>();
  for (const [file, specifier] of Object.entries(VENDOR)) vendor.set(file, fileURLToPath(import.meta.resolve(specifier)));
  return { page, csp: contentSecurityPolicy(hashes), ui, vendor };
}

function displayName(name: Name): string {
  return typeof name === 'string' ? name : canonicalName(name);
}

/**
 * Serves a live view of `node`'s cluster and its Prometheus metrics. `node`
 * must have joined a cluster; a member node or one started with
 * `cluster: { role: 'observer' }` (the usual choice: it never votes and
 * holds no names). Rejects with `ObserverError` (`not_clustered`,
 * `listen_failed`) and `TypeError` for a bad option.
 *
 * @example
 *   const observer = await startObserver(node, { port: 9100, token: process.env.OBSERVER_TOKEN });
 *   console.log(`open ${observer.url}?token=…`);
 */
export async function startObserver(node: Node, options: ObserverOptions = {}): Promise<RunningObserver> {
  const settings = resolveObserverOptions(options);
  const cluster = clusterOf(node);
  if (cluster === undefined || !node.alive) {
    throw new ObserverError('not_clustered', `startObserver: node ${node.name} ${node.alive ? 'joined no cluster; start it with a cluster option' : 'is stopped'}`);
  }
  const broker = settings.broker === undefined ? undefined : await redact(settings.broker);
  const assets = loadAssets();
  const registry = registryOf(node, settings.registry);
  const view = new View(cluster.id, node.name, broker, settings.interval, settings.registry);
  const watcher = new Watcher(node, cluster, registry, view, settings);
  const metrics = createMetrics(() => watcher.reading());
  const hub = new EventHub();
  const headers = securityHeaders(assets.csp);

  let port = settings.port;
  const sessions = settings.token === undefined ? undefined : new Sessions(`roster_observer_${randomBytes(4).toString('hex')}`, settings.token, randomBytes(32));
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      node.logger.warn({ err: error }, 'observer: request failed');
      if (!res.headersSent) res.writeHead(500, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('internal error\n');
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { ...headers, 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!allowedHost(req.headers.host, settings.host, port)) return send(421, 'text/plain; charset=utf-8', 'misdirected request\n');
    const url = new URL(req.url ?? '/', 'http://observer.invalid');
    const match = matchRoute(req.method ?? 'GET', url.pathname);
    if (match.kind === 'not_found') return send(404, 'text/plain; charset=utf-8', 'not found\n');
    if (match.kind === 'method_not_allowed') return send(405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    const verdict = authorize(
      { authorization: req.headers.authorization, cookie: req.headers.cookie, queryToken: url.searchParams.get('token') ?? undefined, route: match.route },
      settings.token,
      sessions,
    );
    if (verdict === 'denied') return send(401, 'text/plain; charset=utf-8', 'unauthorized: a bearer token is needed\n', { 'WWW-Authenticate': 'Bearer realm="roster observer"' });
    if (verdict === 'open_session') return send(303, 'text/plain; charset=utf-8', 'see /\n', { Location: '/', 'Set-Cookie': sessions!.setCookie() });
    const name: RouteName = match.route.name;
    switch (name) {
      case 'page':
        return send(200, 'text/html; charset=utf-8', assets.page);
      case 'asset': {
        const body = assets.ui.get(match.file ?? '');
        return body === undefined ? send(404, 'text/plain; charset=utf-8', 'not found\n') : send(200, mimeOf(match.file!), body);
      }
      case 'vendor': {
        const path = assets.vendor.get(match.file ?? '');
        return path === undefined ? send(404, 'text/plain; charset=utf-8', 'not found\n') : send(200, mimeOf(match.file!), readFileSync(path), { 'Cache-Control': 'max-age=3600' });
      }
      case 'events':
        if (req.method === 'HEAD') return send(200, 'text/event-stream; charset=utf-8', '');
        return hub.add(res, headers, formatEvent('view', view.state()));
      case 'metrics':
        return send(200, metrics.contentType, await metrics.text());
    }
  }

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => reject(new ObserverError('listen_failed', `startObserver: cannot listen on ${settings.host}:${settings.port}: ${error.message}`, { cause: error }));
    server.once('error', failed);
    server.listen(settings.port, settings.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const address = server.address();
  port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const hostInUrl = settings.host.includes(':') ? `[${settings.host}]` : settings.host;

  watcher.start((patch) => hub.send('patch', patch));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      node.off('stopping', onStopping);
      watcher.stop();
      hub.close();
      await closeServer(server);
    })());
  const onStopping = (): void => void close();
  node.on('stopping', onStopping);
  return { url: `http://${hostInUrl}:${port}/`, close };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function registryOf(node: Node, key: string): GlobalsRegistry | undefined {
  try {
    const registry = node.registry(key) as Partial<GlobalsRegistry>;
    if (typeof registry.on === 'function' && typeof registry.registered === 'function' && typeof registry.epochOf === 'function') return registry as GlobalsRegistry;
  } catch {
    // no registry under that key: no names table
  }
  return undefined;
}

/**
 * Feeds the view: the cluster's and registry's events as they happen, and
 * every node's snapshot once per interval (one request in flight per node at
 * most, so a slow node never piles up requests).
 */
class Watcher {
  #timer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #polling = false;
  #stopped = false;
  #publish: ((patch: object) => void) | undefined;
  readonly #off: (() => void)[] = [];

  constructor(
    readonly node: Node,
    readonly cluster: Cluster,
    readonly registry: GlobalsRegistry | undefined,
    readonly view: View,
    readonly settings: ResolvedOptions,
  ) {}

  start(publish: (patch: object) => void): void {
    this.#publish = publish;
    const { node, cluster, registry, view } = this;
    const now = Date.now();
    view.nodeUp({ node: node.name, creation: node.creation, role: cluster.role }, now, true);
    for (const peer of cluster.members()) view.nodeUp(peer, now);
    const onUp = (peer: PeerIdentity): void => {
      view.nodeUp({ ...peer, role: cluster.isObserver(peer.node) ? 'observer' : 'member' }, Date.now());
      this.#soon();
    };
    const onDown = (peer: PeerIdentity, reason: string): void => {
      view.nodeDown(peer, reason, Date.now());
      this.#soon();
    };
    const onGap = (peer: PeerIdentity): void => {
      view.resync(peer.node, Date.now());
      this.#soon();
    };
    cluster.on('nodeup', onUp);
    cluster.on('nodedown', onDown);
    cluster.on('gap', onGap);
    this.#off.push(() => cluster.off('nodeup', onUp), () => cluster.off('nodedown', onDown), () => cluster.off('gap', onGap));
    if (registry !== undefined) {
      for (const name of registry.registered()) {
        const pid = registry.whereisName(name);
        if (pid !== undefined) this.#registered(name, pid, now);
      }
      const onRegistered = (name: Name, pid: Pid): void => {
        this.#registered(name, pid, Date.now());
        this.#soon();
      };
      const onUnregistered = (name: Name, pid: Pid, reason: ExitReason): void => {
        view.nameUnregistered(canonicalName(name), displayName(name), pid.key, formatReason(reason), Date.now());
        this.#soon();
      };
      const onConflict = (outcome: ConflictOutcome): void => {
        const display = displayName(outcome.name);
        const winner = outcome.winner === undefined ? 'nobody keeps it' : `${outcome.winner.pid.key} on ${outcome.winner.node} keeps it`;
        const losers = outcome.losers.map((loser) => `${loser.pid.key} on ${loser.node}`).join(', ');
        view.conflict(canonicalName(outcome.name), display, `conflict on ${display} (${outcome.policy}): ${winner}; lost: ${losers || 'none'}`, Date.now());
        this.#soon();
      };
      registry.on('registered', onRegistered);
      registry.on('unregistered', onUnregistered);
      registry.on('conflict', onConflict);
      this.#off.push(
        () => registry.off('registered', onRegistered),
        () => registry.off('unregistered', onUnregistered),
        () => registry.off('conflict', onConflict),
      );
    }
    view.takePatch(); // the first view is what a page gets on connecting
    this.#timer = setInterval(() => void this.#poll(), this.settings.interval);
    this.#timer.unref();
    void this.#poll();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    for (const off of this.#off.splice(0)) off();
  }

  #registered(name: Name, pid: Pid, at: number): void {
    const epoch = this.registry?.epochOf(name);
    this.view.nameRegistered({ key: canonicalName(name), name: displayName(name), owner: pid.node, pid: pid.key, epoch: epoch === undefined ? undefined : formatEpoch(epoch), since: at });
  }

  /** Sends what changed within a few ms, batching a burst of events into one patch. */
  #soon(): void {
    if (this.#flushTimer !== undefined || this.#stopped) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, 20);
    this.#flushTimer.unref();
  }

  #flush(): void {
    if (this.#stopped || !this.view.dirty) return;
    this.#publish?.(this.view.takePatch());
  }

  async #poll(): Promise<void> {
    if (this.#polling || this.#stopped) return;
    this.#polling = true;
    try {
      const timeout = Math.max(1000, 2 * this.settings.interval);
      const live = this.view.nodes().filter((node) => node.status === 'up');
      await Promise.all(
        live.map(async ({ name }) => {
          try {
            const snapshot = await this.cluster.snapshotOf(name, { timeout, longestMailboxes: this.settings.longestMailboxes });
            if (!this.#stopped) this.view.snapshot(name, snapshot);
          } catch (error) {
            const code = (error as { code?: unknown }).code;
            this.view.snapshotFailed(name, typeof code === 'string' ? code : 'error');
          }
        }),
      );
      if (this.#stopped) return;
      this.view.tick(Date.now());
      this.#flush();
    } finally {
      this.#polling = false;
    }
  }

  /**
   * What a `/metrics` scrape reads: every node's last snapshot, and its
   * cluster layer and globals registry as that snapshot reports them; the
   * observer's own node's read now instead (no need to wait for a snapshot).
   */
  reading(): MetricsReading {
    const key = this.settings.registry;
    return {
      self: this.node.name,
      nodes: this.view.nodes().map((node) => {
        const snapshot = this.view.snapshotOf(node.name);
        const own = node.name === this.node.name;
        return {
          name: node.name,
          status: node.status,
          ups: node.ups,
          downs: node.downs,
          snapshot,
          cluster: own ? this.cluster.introspect() : snapshot === undefined ? undefined : clusterReport(snapshot),
          globals: own ? this.registry?.introspect() : snapshot === undefined ? undefined : globalsReport(snapshot, key),
        };
      }),
    };
  }
}


