/**
 * The observer's HTTP surface as data and small pure functions: the route
 * table, the fixed MIME map, the security headers (with the CSP hash of the
 * page's one inline script, its import map), token checks and the page
 * cookie. `observer.ts` owns the server and calls these; the tests call them
 * with no socket at all.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What a route does; the server has one handler per name. */
export type RouteName = 'page' | 'asset' | 'vendor' | 'events' | 'metrics';

export interface Route {
  readonly name: RouteName;
  /** An exact path, or a pattern whose first group is the file asked for. */
  readonly path: string | RegExp;
  /** Whether a `?token=` on this route may open a session (set the cookie); only the page's. */
  readonly opensSession: boolean;
}

/**
 * Every route, GET (and HEAD) only. Asset and vendor names are a closed
 * alphabet with no `/` or `..`, and are then looked up in tables built at
 * startup, so no request ever names a path on disk.
 */
export const ROUTES: readonly Route[] = Object.freeze([
  { name: 'page', path: '/', opensSession: true },
  { name: 'events', path: '/events', opensSession: false },
  { name: 'metrics', path: '/metrics', opensSession: false },
  { name: 'asset', path: /^\/ui\/([a-z0-9][a-z0-9-]*\.(?:js|css|svg|png))$/, opensSession: false },
  { name: 'vendor', path: /^\/vendor\/([a-z0-9][a-z0-9.-]*\.(?:js|css))$/, opensSession: false },
] as const satisfies readonly Route[]);

export type RouteMatch =
  | { readonly kind: 'route'; readonly route: Route; readonly file: string | undefined }
  | { readonly kind: 'method_not_allowed' }
  | { readonly kind: 'not_found' };

/** Finds the route of a request; `pathname` is the URL's path, not decoded. */
export function matchRoute(method: string, pathname: string, routes: readonly Route[] = ROUTES): RouteMatch {
  for (const route of routes) {
    let file: string | undefined;
    if (typeof route.path === 'string') {
      if (route.path !== pathname) continue;
    } else {
      const match = route.path.exec(pathname);
      if (match === null) continue;
      file = match[1];
    }
    if (method !== 'GET' && method !== 'HEAD') return { kind: 'method_not_allowed' };
    return { kind: 'route', route, file };
  }
  return { kind: 'not_found' };
}

/** Content types by extension: fixed, never sniffed or read from the system. */
export const MIME: Readonly<Record<string, string>> = Object.freeze({
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  json: 'application/json; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
});

/** The content type of a file name by its extension; `application/octet-stream` for anything else. */
export function mimeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  return (dot >= 0 ? MIME[file.slice(dot + 1).toLowerCase()] : undefined) ?? 'application/octet-stream';
}

/** The text of every inline `<script>` of a page (the import map, for ours), in order. */
export function inlineScripts(html: string): string[] {
  const out: string[] = [];
  const pattern = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi;
  for (const match of html.matchAll(pattern)) {
    if (/\bsrc\s*=/i.test(match[1] ?? '')) continue;
    out.push(match[2] ?? '');
  }
  return out;
}

/** A CSP source for a script's exact text (`'sha256-…'`). */
export function scriptHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The Content-Security-Policy of every response: same origin only; the
 * inline import map allowed by its hash (an import map cannot be an external
 * file), and nothing else inline.
 */
export function contentSecurityPolicy(scriptHashes: readonly string[]): string {
  return [
    "default-src 'self'",
    `script-src 'self'${scriptHashes.map((hash) => ` ${hash}`).join('')}`,
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers on every response. */
export function securityHeaders(csp: string): Record<string, string> {
  return {
    'Content-Security-Policy': csp,
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Resource-Policy': 'same-origin',
  };
}

/** Compares two secrets in time independent of where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

/** The bearer token of an `Authorization` header, if it has one. */
export function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

/** The value of cookie `name` in a `Cookie` header. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The page's session: the cookie holds an HMAC of the token under a key this
 * observer drew at start, never the token itself, and is valid only for
 * this observer's life.
 */
export class Sessions {
  readonly #value: string;

  constructor(
    readonly cookieName: string,
    token: string,
    key: Buffer,
  ) {
    this.#value = createHmac('sha256', key).update(token, 'utf8').digest('base64url');
  }

  /** The `Set-Cookie` header that opens a session. */
  setCookie(): string {
    return `${this.cookieName}=${this.#value}; Path=/; HttpOnly; SameSite=Strict`;
  }

  valid(cookie: string | undefined): boolean {
    return cookie !== undefined && sameSecret(cookie, this.#value);
  }
}

export type AuthVerdict = 'ok' | 'open_session' | 'denied';

export interface AuthRequest {
  readonly authorization: string | undefined;
  readonly cookie: string | undefined;
  /** The `token` query parameter, if any. */
  readonly queryToken: string | undefined;
  readonly route: Route;
}

/**
 * Whether a request may proceed. With no token configured, always. Else an
 * `Authorization: Bearer` header with the token, or the session cookie; or,
 * on the page only, `?token=` with the token, which opens a session (the
 * server answers with the cookie and a redirect that drops the token from the
 * address bar and history).
 */
export function authorize(request: AuthRequest, token: string | undefined, sessions: Sessions | undefined): AuthVerdict {
  if (token === undefined) return 'ok';
  const bearer = bearerOf(request.authorization);
  if (bearer !== undefined && sameSecret(bearer, token)) return 'ok';
  if (sessions?.valid(cookieOf(request.cookie, sessions.cookieName))) return 'ok';
  if (request.route.opensSession && request.queryToken !== undefined && sameSecret(request.queryToken, token)) return 'open_session';
  return 'denied';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * Whether a request's `Host` header may reach an observer bound to
 * `bindHost`: on a loopback address only loopback names (so a web page a
 * browser on this machine visits cannot read the observer through a DNS
 * name it rebinds to 127.0.0.1); on any other address, any.
 */
export function allowedHost(header: string | undefined, bindHost: string, port: number): boolean {
  if (!isLoopback(bindHost)) return true;
  if (header === undefined) return false;
  const host = header.trim().toLowerCase();
  const withPort = host.endsWith(`:${port}`) ? host.slice(0, -`:${port}`.length) : port === 80 ? host : undefined;
  if (withPort === undefined) return false;
  return withPort === 'localhost' || withPort === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(withPort);
}
