/**
 * Nodes that stop leave nothing running: a program that starts three nodes
 * over RabbitMQ, registers, calls, links and monitors across them, and stops
 * them, exits by itself soon after, having used little CPU since. (The test
 * runner ends each test file's process once its tests have finished, so
 * only a process of its own can show that nothing is left behind.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startRabbitMQ } from '@roster/testkit';
import { cpuMicrosOf } from '../bench/cpu.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/clean-exit.ts', import.meta.url));

/** User + system CPU of OS process `pid` so far, in ms. */
const cpuMsOf = (pid: number): number => cpuMicrosOf(pid) / 1000;

test('three nodes over RabbitMQ, stopped after an ordinary workload, let their process exit by itself', { timeout: 120_000 }, async (t) => {
  const rabbit = await startRabbitMQ();
  try {
    const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', FIXTURE], {
      env: { ...process.env, AMQP_URL: rabbit.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stoppedAt: { time: number; cpu: number } | undefined;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // 90 s for the whole program; once its nodes stopped, 10 s to be gone.
    let hung!: () => void;
    const deadline = new Promise<'hung'>((resolve) => (hung = () => resolve('hung')));
    const overall = setTimeout(hung, 90_000);
    let afterStop: NodeJS.Timeout | undefined;
    void exited.then(() => {
      clearTimeout(overall);
      clearTimeout(afterStop);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stoppedAt !== undefined || !stdout.includes('stopped') || child.pid === undefined) return;
      stoppedAt = { time: performance.now(), cpu: cpuMsOf(child.pid) };
      afterStop = setTimeout(hung, 10_000);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const outcome = await Promise.race([exited, deadline]);
    if (outcome === 'hung') {
      const cpu = child.pid !== undefined && stoppedAt !== undefined ? cpuMsOf(child.pid) - stoppedAt.cpu : undefined;
      child.kill('SIGKILL');
      assert.fail(`the program did not exit; ${stoppedAt === undefined ? 'its nodes never stopped' : `${cpu} ms of CPU since its nodes stopped`}\n${stderr}`);
    }
    assert.equal(outcome, 0, `the program failed:\n${stderr}`);
    assert.ok(stoppedAt !== undefined, 'the program never said its nodes stopped');
    const lingered = performance.now() - stoppedAt.time;
    t.diagnostic(`${stdout.trim()}; exited ${Math.round(lingered)} ms after`);
    assert.ok(lingered < 5000, `the process lived on ${Math.round(lingered)} ms after its nodes stopped`);
  } finally {
    await rabbit.stop();
  }
});
