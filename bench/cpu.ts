/**
 * CPU time of the processes a network benchmark spans (this one, its node
 * processes, the broker), so each row can say what an operation costs, not
 * only how long it took: on a 2-core machine shared by 3 nodes and a broker,
 * a wall-clock figure alone does not say which of them is the limit.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Node } from '@roster/core';
import type { NodeProcess, RabbitMQ } from '@roster/testkit';

/** Clock ticks per second of /proc's utime and stime (`getconf CLK_TCK`). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of OS process `pid` so far, in µs (10 ms resolution); NaN when it cannot be read. */
export function cpuMicrosOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start past its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** This process's user + system CPU so far, in µs. */
export function ownCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** The OS pid of the private RabbitMQ whose directory is `dir` (its beam.smp runs with `-home <dir>/home`), or undefined. */
export function brokerPid(dir: string | undefined): number | undefined {
  if (dir === undefined) return undefined;
  try {
    const found = execFileSync('pgrep', ['-f', `beam.smp.*${dir}/`], { encoding: 'utf8' }).trim().split('\n')[0];
    return found === undefined || found === '' ? undefined : Number(found);
  } catch {
    return undefined;
  }
}

/**
 * CPU of several processes, by label, summed over the runs it is wrapped
 * around (`around(ops, run)`), and read as µs per operation (`perOp()`):
 * interleaved baselines between the runs are not counted.
 */
export class CpuMeter {
  readonly #sources: readonly (readonly [string, () => number])[];
  readonly #used: number[];
  #ops = 0;

  constructor(sources: Readonly<Record<string, () => number>>) {
    this.#sources = Object.entries(sources);
    this.#used = this.#sources.map(() => 0);
  }

  async around<T>(ops: number, run: () => Promise<T>): Promise<T> {
    const start = this.#sources.map(([, read]) => read());
    try {
      return await run();
    } finally {
      this.#sources.forEach(([, read], index) => {
        this.#used[index]! += read() - start[index]!;
      });
      this.#ops += ops;
    }
  }

  /** µs of CPU per operation, by label, over every run so far (a process whose CPU could not be read is left out). */
  perOp(): Record<string, number> {
    const out: Record<string, number> = {};
    this.#sources.forEach(([label], index) => {
      if (Number.isFinite(this.#used[index]) && this.#ops > 0) out[label] = this.#used[index]! / this.#ops;
    });
    return out;
  }
}

/** `{ q1: 12.3, broker: 40.1 }` as `CPU per op (µs): q1 12.3, broker 40.1`. */
export function cpuNote(cpu: Readonly<Record<string, number>>): string {
  const parts = Object.entries(cpu).map(([label, micros]) => `${label} ${micros.toFixed(1)}`);
  return parts.length === 0 ? '' : `CPU per op (µs): ${parts.join(', ')}`;
}

/** CPU readers of this process and the broker: what a raw amqplib baseline (both of its ends in this process) uses. */
export function rawCpuSources(broker: RabbitMQ): Record<string, () => number> {
  const brokerOsPid = brokerPid(broker.dir);
  return { 'this process': ownCpuMicros, ...(brokerOsPid !== undefined ? { broker: () => cpuMicrosOf(brokerOsPid) } : {}) };
}

/** CPU readers of this process's node, its peers' OS processes and the broker. */
export function cpuSources(node: Node, peers: readonly NodeProcess[], broker: RabbitMQ): Record<string, () => number> {
  const brokerOsPid = brokerPid(broker.dir);
  return {
    [node.name]: ownCpuMicros,
    ...Object.fromEntries(peers.map((peer) => [peer.name, () => cpuMicrosOf(peer.pid)])),
    ...(brokerOsPid !== undefined ? { broker: () => cpuMicrosOf(brokerOsPid) } : {}),
  };
}

