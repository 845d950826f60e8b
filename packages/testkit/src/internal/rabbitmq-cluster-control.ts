/**
 * Control of the brokers of an external RabbitMQ cluster
 * (`ROSTER_RABBITMQ_CLUSTER_CTL`): a shell command run as
 * `<ctl> <action> <index>`, e.g. a script wrapping `docker kill` /
 * `docker start` of the index-th broker container.
 *
 * @module
 */
import { spawn } from 'node:child_process';

/** What {@link RabbitMQCluster} asks of a broker. */
export type ClusterControlAction = 'stop' | 'kill' | 'start' | 'pause' | 'resume';

/** Runs `<ctl> <action> <index>` through /bin/sh; resolves on exit code 0, rejects with its stderr otherwise. */
export function runClusterControl(ctl: string, action: ClusterControlAction, index: number, timeoutMs = 180_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${ctl} ${action} ${index}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`ROSTER_RABBITMQ_CLUSTER_CTL ${action} ${index} could not run: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`ROSTER_RABBITMQ_CLUSTER_CTL ${action} ${index} failed (${signal ?? `exit code ${String(code)}`}): ${stderr.trim()}`));
    });
  });
}
