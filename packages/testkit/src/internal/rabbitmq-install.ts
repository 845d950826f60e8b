import { execFile, spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { access, mkdir, readdir, readFile, realpath, symlink } from 'node:fs/promises';
import { basename, delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A RabbitMQ installation: the real server script and the directory above its `sbin`. */
export interface RabbitMQInstallation {
  /** The real `rabbitmq-server` script (not Debian's `su` wrapper in /usr/sbin). */
  readonly serverScript: string;
  /**
   * `RABBITMQ_HOME`: holds `sbin/`, `plugins/`, `escript/`. `undefined` when the
   * script is a wrapper of another layout (e.g. Homebrew's): it is run as is,
   * without the slim plugin set.
   */
  readonly home: string | undefined;
}

/** Places a `rabbitmq-server` script is commonly found, besides `$PATH`. */
const WELL_KNOWN = [
  '/usr/lib/rabbitmq/bin/rabbitmq-server', // Debian, Ubuntu
  '/usr/local/sbin/rabbitmq-server',
  '/opt/homebrew/sbin/rabbitmq-server', // Homebrew on Apple silicon
  '/usr/local/opt/rabbitmq/sbin/rabbitmq-server', // Homebrew on Intel
  '/usr/sbin/rabbitmq-server',
];

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves a candidate to the real server script. Debian's
 * `/usr/sbin/rabbitmq-server` is a wrapper that switches to the `rabbitmq`
 * user and to /var/lib/rabbitmq; the real script sits next to `rabbitmq-env`.
 */
async function resolveScript(candidate: string): Promise<RabbitMQInstallation | undefined> {
  if (!(await isExecutable(candidate))) return undefined;
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    return undefined;
  }
  const sbin = dirname(real);
  if (existsSync(join(sbin, 'rabbitmq-env'))) return { serverScript: real, home: dirname(sbin) };
  // Debian's wrapper switches to the rabbitmq user and its files: never that one.
  if (basename(real) === 'rabbitmq-script-wrapper') return undefined;
  return { serverScript: real, home: undefined };
}

/**
 * Finds a usable RabbitMQ installation: `explicit` (or `$ROSTER_RABBITMQ_SERVER`)
 * first, then the well-known places and `$PATH`.
 */
export async function locateRabbitMQ(explicit: string | undefined): Promise<RabbitMQInstallation | undefined> {
  if (explicit !== undefined && explicit !== '') {
    const found = await resolveScript(explicit);
    if (found === undefined) throw new Error(`startRabbitMQ: ${explicit} is not an executable rabbitmq-server script of a RabbitMQ installation`);
    return found;
  }
  const fromPath = (process.env['PATH'] ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '')
    .map((dir) => join(dir, 'rabbitmq-server'));
  for (const candidate of [...WELL_KNOWN, ...fromPath]) {
    const found = await resolveScript(candidate);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Installs Debian's `rabbitmq-server` package. Only when running as root on a
 * system with apt-get; anything else throws an error that says what to do.
 */
export async function installRabbitMQ(log: (line: string) => void): Promise<void> {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = await isExecutable('/usr/bin/apt-get');
  if (!isRoot || !hasApt) {
    throw new Error(
      'startRabbitMQ: RabbitMQ is not installed. Install it (Debian/Ubuntu: `sudo apt-get install rabbitmq-server`; ' +
        'macOS: `brew install rabbitmq`), point ROSTER_RABBITMQ_SERVER at its rabbitmq-server script, ' +
        'or set AMQP_URL to use a running broker.',
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log('startRabbitMQ: rabbitmq-server is missing; installing Debian package (apt-get update && apt-get install -y rabbitmq-server)');
  try {
    await execFileAsync('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 });
    await execFileAsync('apt-get', ['install', '-y', '--no-install-recommends', 'rabbitmq-server'], {
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new Error(`startRabbitMQ: installing rabbitmq-server with apt-get failed: ${detail.slice(-2000)}`);
  }
}

/** Application name and version directory, from `plugins/<app>-<version>`. */
function parseAppDir(entry: string): [string, string] | undefined {
  const match = /^(.+?)-(\d[^-]*)$/.exec(entry);
  return match?.[1] === undefined ? undefined : [match[1], entry];
}

/** The dependency lists of an `.app` file, read with a regular expression (enough for these files). */
function appDependencies(appFile: string): string[] {
  const deps: string[] = [];
  for (const key of ['applications', 'included_applications', 'optional_applications']) {
    const match = new RegExp(`\\{\\s*${key}\\s*,\\s*\\[([^\\]]*)\\]`).exec(appFile);
    if (match?.[1] === undefined) continue;
    for (const name of match[1].split(',')) {
      const trimmed = name.trim().replace(/^'|'$/g, '');
      if (trimmed !== '') deps.push(trimmed);
    }
  }
  return deps;
}

/**
 * Builds a "slim" RABBITMQ_HOME in `target`: symlinks to everything of the
 * real home, except that `plugins/` only holds the applications `rabbit`
 * needs (its dependency closure, about 20 of the 70-odd shipped).
 *
 * Why: at boot RabbitMQ reads the config schemas of, and scans module
 * attributes in, every application on its code path; fewer applications
 * mean a faster boot. Returns `undefined` (use the real home) when the layout
 * is not the expected one, e.g. plugins shipped as `.ez` archives.
 */
export async function buildSlimHome(installation: RabbitMQInstallation, target: string): Promise<string | undefined> {
  const home = installation.home;
  if (home === undefined) return undefined;
  const realPlugins = join(home, 'plugins');
  let entries: string[];
  try {
    entries = await readdir(realPlugins);
  } catch {
    return undefined;
  }
  const byName = new Map<string, string>();
  for (const entry of entries) {
    const parsed = parseAppDir(entry);
    if (parsed !== undefined) byName.set(parsed[0], parsed[1]);
  }
  const needed = new Set<string>();
  const todo = ['rabbit'];
  while (todo.length > 0) {
    const app = todo.pop();
    if (app === undefined || needed.has(app)) continue;
    const dir = byName.get(app);
    if (dir === undefined) continue; // an OTP application, found in the Erlang root
    let appFile: string;
    try {
      appFile = await readFile(join(realPlugins, dir, 'ebin', `${app}.app`), 'utf8');
    } catch {
      return undefined;
    }
    needed.add(app);
    todo.push(...appDependencies(appFile));
  }
  if (!needed.has('rabbit') || !needed.has('rabbit_common')) return undefined;
  await mkdir(join(target, 'plugins'), { recursive: true });
  for (const entry of await readdir(home)) {
    if (entry !== 'plugins') await symlink(join(home, entry), join(target, entry));
  }
  for (const app of needed) {
    const dir = byName.get(app);
    if (dir !== undefined) await symlink(join(realPlugins, dir), join(target, 'plugins', dir));
  }
  return target;
}

/** Starts `epmd -daemon` if an epmd binary is around; harmless when one already runs. */
export function ensureEpmd(env: NodeJS.ProcessEnv): Promise<void> {
  // stdio 'ignore': the daemonised epmd must not hold a pipe of ours open.
  return new Promise((resolve) => {
    const child = spawn('epmd', ['-daemon'], { env, stdio: 'ignore' });
    const timer = setTimeout(() => resolve(), 10_000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    // No epmd on PATH, or it failed: erl starts one itself when it boots a distributed node.
    child.once('error', done);
    child.once('exit', done);
  });
}
