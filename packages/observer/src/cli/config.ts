/**
 * What `roster` runs with, from its flags and its environment: flags over
 * env over defaults, in one pure function (no file is read here, nothing is
 * printed), so the precedence and the refusals are tested without I/O. The
 * cluster secret comes only from a file or the environment, and travels in a
 * {@link Secret} that never shows its value when printed, logged or
 * serialized.
 */
import { inspect } from 'node:util';
import { redactUrl } from '@roster/amqp';
import { usageError } from './errors.js';
import type { ParsedFlags } from './flags.js';

/** The environment variables `roster` reads (a `process.env`-shaped record). */
export type CliEnv = Readonly<Record<string, string | undefined>>;

/** Defaults of what neither a flag nor the environment set. */
export const DEFAULTS = Object.freeze({
  /** The cluster id, as `ClusterOptions.id` defaults. */
  cluster: 'roster',
  /** Milliseconds: the broker connection, the cluster's first answer, a node's snapshot. */
  timeout: 5000,
});

const REDACTED = '[redacted]';

/**
 * A cluster secret. Its value is read with {@link Secret.reveal} only, where
 * it is handed to the cluster; `String()`, `JSON.stringify` and
 * `util.inspect` all give `[redacted]`.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    if (typeof value !== 'string' || value.length === 0) throw new TypeError('Secret: value must be a non-empty string');
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/** Where a secret (the cluster's, or the observer page's token) comes from: a variable's value, or a file named by a flag or a variable. */
export type SecretSource =
  | { readonly from: 'env'; readonly variable: string; readonly secret: Secret }
  | { readonly from: 'file'; readonly path: string; readonly via: string };

/** Everything a command runs with. */
export interface CliConfig {
  /** Broker URLs, tried in turn (`--url`, else `AMQP_URL`; either may be a comma-separated list). */
  readonly urls: readonly string[];
  /** The cluster id (`--cluster`, else `ROSTER_CLUSTER`, else `roster`). */
  readonly cluster: string;
  /** The secret's source (`--secret-file`, else `ROSTER_SECRET_FILE` or `ROSTER_SECRET`); undefined: an unsigned cluster. */
  readonly secret: SecretSource | undefined;
  /** `--timeout` in ms (default 5000). */
  readonly timeout: number;
  /** `--json`: JSON on stdout instead of a table. */
  readonly json: boolean;
  /** `names --node`: only names held on this node. */
  readonly node: string | undefined;
  /** `observe --port`; undefined: the observer's default. */
  readonly port: number | undefined;
  /** `observe --host`; undefined: the observer's default (loopback). */
  readonly host: string | undefined;
  /** The observer page's token (`observe --token-file`, else `ROSTER_OBSERVER_TOKEN`); undefined: none. */
  readonly token: SecretSource | undefined;
}

/** An environment variable's value, an empty one counting as unset (`AMQP_URL= roster nodes`). */
function fromEnv(env: CliEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function parseUrls(values: readonly string[], where: string): string[] {
  const urls = values.flatMap((value) => value.split(',')).map((url) => url.trim()).filter((url) => url.length > 0);
  if (urls.length === 0) throw usageError(`${where} holds no broker URL`);
  for (const url of urls) {
    if (!/^amqps?:\/\//i.test(url)) throw usageError(`${where}: ${JSON.stringify(redactUrl(url))} is not an amqp:// or amqps:// URL`);
  }
  return urls;
}

function parseInteger(raw: string, flag: string, min: number, max: number): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw usageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function nonEmpty(raw: string | undefined, flag: string): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim().length === 0) throw usageError(`${flag} must not be empty`);
  return raw;
}

/**
 * The configuration from parsed flags and the environment: flags over env
 * over {@link DEFAULTS}. Throws a `CliError('usage')` naming the flag or the
 * variable for a value it cannot use; no message ever holds a secret or a
 * URL's credentials.
 */
export function resolveConfig({ flags, env }: { readonly flags: ParsedFlags; readonly env: CliEnv }): CliConfig {
  let urls: string[];
  if (flags.url !== undefined) urls = parseUrls(flags.url, '--url');
  else {
    const fromVariable = fromEnv(env, 'AMQP_URL');
    if (fromVariable === undefined) throw usageError('no broker URL: give --url amqp://… or set AMQP_URL');
    urls = parseUrls([fromVariable], 'AMQP_URL');
  }

  const cluster = nonEmpty(flags.cluster, '--cluster') ?? fromEnv(env, 'ROSTER_CLUSTER') ?? DEFAULTS.cluster;

  let secret: SecretSource | undefined;
  const secretFile = nonEmpty(flags['secret-file'], '--secret-file');
  if (secretFile !== undefined) secret = { from: 'file', path: secretFile, via: '--secret-file' };
  else {
    const envFile = fromEnv(env, 'ROSTER_SECRET_FILE');
    const envSecret = fromEnv(env, 'ROSTER_SECRET');
    if (envFile !== undefined && envSecret !== undefined) {
      throw usageError('both ROSTER_SECRET and ROSTER_SECRET_FILE are set: unset one (or give --secret-file, which wins over both)');
    }
    if (envFile !== undefined) secret = { from: 'file', path: envFile, via: 'ROSTER_SECRET_FILE' };
    else if (envSecret !== undefined) secret = { from: 'env', variable: 'ROSTER_SECRET', secret: new Secret(envSecret) };
  }

  const timeout = flags.timeout === undefined ? DEFAULTS.timeout : parseInteger(flags.timeout, '--timeout', 1, 3_600_000);
  const port = flags.port === undefined ? undefined : parseInteger(flags.port, '--port', 0, 65_535);
  const host = nonEmpty(flags.host, '--host');
  const node = nonEmpty(flags.node, '--node');
  const tokenFile = nonEmpty(flags['token-file'], '--token-file');
  const envToken = fromEnv(env, 'ROSTER_OBSERVER_TOKEN');
  const token: SecretSource | undefined =
    tokenFile !== undefined
      ? { from: 'file', path: tokenFile, via: '--token-file' }
      : envToken === undefined
        ? undefined
        : { from: 'env', variable: 'ROSTER_OBSERVER_TOKEN', secret: new Secret(envToken) };

  return Object.freeze({
    urls: Object.freeze(urls),
    cluster,
    secret,
    timeout,
    json: flags.json === true,
    node,
    port,
    host,
    token,
  });
}

/**
 * The secret in a secret file's text: the content without its trailing line
 * break(s) (`echo s3cret > file` writes one). Throws a `CliError('usage')`
 * naming the file, never showing its content, when nothing is left.
 */
export function parseSecretFile(content: string, path: string): Secret {
  const value = content.replace(/[\r\n]+$/, '');
  if (value.length === 0) throw usageError(`secret file ${path} is empty`);
  return new Secret(value);
}
