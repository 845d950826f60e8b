import { spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { rm } from 'node:fs/promises';

/** What a control endpoint can be asked to do. */
export type ControlAction = 'pause' | 'resume';

/** The operations a control server exposes. */
export interface ControlHandlers {
  pause(graceful: boolean): Promise<void>;
  resume(): Promise<void>;
}

/** A running control server. */
export interface ControlServer {
  /** The value for `ROSTER_RABBITMQ_CTL`: `unix:<socket path>`. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Serves `pause` / `resume` of a broker owned by this process over HTTP on a
 * Unix socket (only this user can reach it: it lives in the broker's private
 * 0700 directory). Requests are handled one at a time, in arrival order.
 */
export async function serveControl(handlers: ControlHandlers, socketPath: string): Promise<ControlServer> {
  await rm(socketPath, { force: true });
  let chain: Promise<unknown> = Promise.resolve();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const action = url.pathname.slice(1);
    req.resume();
    if (req.method !== 'POST' || (action !== 'pause' && action !== 'resume')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('unknown control request');
      return;
    }
    const run = (): Promise<void> => (action === 'pause' ? handlers.pause(url.searchParams.get('graceful') === '1') : handlers.resume());
    const done = chain.then(run, run);
    chain = done.catch(() => {});
    done.then(
      () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'),
      (error: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(error instanceof Error ? error.message : String(error)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  server.unref();
  return {
    endpoint: `unix:${socketPath}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Asks the control endpoint in `ctl` (a `ROSTER_RABBITMQ_CTL` value) to
 * pause or resume the broker:
 * - `unix:<path>`: a control server from {@link serveControl} (what
 *   `scripts/run-tests.mjs` exports for the broker it shares between test files);
 * - anything else: a shell command, run as `<ctl> pause` or `<ctl> resume`
 *   (with `ROSTER_RABBITMQ_GRACEFUL=1` for a graceful pause), e.g. a script
 *   wrapping `docker stop` / `docker start`.
 */
export function runControl(ctl: string, action: ControlAction, graceful: boolean): Promise<void> {
  if (ctl.startsWith('unix:')) return controlRequest(ctl.slice('unix:'.length), action, graceful);
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${ctl} ${action}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ROSTER_RABBITMQ_GRACEFUL: graceful ? '1' : '0' },
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    child.once('error', (error) => reject(new Error(`ROSTER_RABBITMQ_CTL ${action} could not run: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`ROSTER_RABBITMQ_CTL ${action} failed (${signal ?? `exit code ${String(code)}`}): ${stderr.trim()}`));
    });
  });
}

function controlRequest(socketPath: string, action: ControlAction, graceful: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = request(
      { socketPath, path: `/${action}${graceful ? '?graceful=1' : ''}`, method: 'POST', timeout: 180_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else reject(new Error(`RabbitMQ control ${action} failed: ${body}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`RabbitMQ control ${action} timed out`)));
    req.on('error', (error) => reject(new Error(`RabbitMQ control ${action} failed: ${error.message}`)));
    req.end();
  });
}
