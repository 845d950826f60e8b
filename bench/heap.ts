/**
 * What holding a global name costs in memory: the heap one name takes at its
 * owner and at one peer together (two nodes of one memory cluster in this
 * process, so both tables are counted), against a bare `Map` from the same
 * keys to the same pids. Measured after full collections, with the
 * registrants already spawned and idle, so only the name is counted.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryBroker, MemoryTransport } from '@roster/cluster';
import { Node, nameKey, type Pid } from '@roster/core';
import { GlobalsRegistry } from '@roster/globals';

export interface HeapFigures {
  /** Bytes per name held, owner and one peer together. */
  readonly perName: number;
  /** Bytes per name still held once all are unregistered (the release fences and votes, until they expire). */
  readonly perReleasedName: number;
  /** Bytes per entry of a `Map<string, Pid>` of the same names. */
  readonly perMapEntry: number;
}

/** `globalThis.gc` without starting node with `--expose-gc`: the flag is set, and a fresh context reads it. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterCollection(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export async function heapPerName(count: number): Promise<HeapFigures> {
  const gc = collector();
  const broker = new MemoryBroker({ seed: 11 });
  const start = (name: string): Promise<Node> =>
    Node.start({ name, logLevel: 'silent', cluster: { transport: new MemoryTransport({ broker }), id: `bench-heap-${process.pid}` }, registries: { globals: new GlobalsRegistry() } });
  const owner = await start('heap-a');
  const peer = await start('heap-b');
  try {
    const registry = owner.registry<GlobalsRegistry>('globals');
    await registry.sync();
    const pids: Pid[] = Array.from({ length: count }, () =>
      owner.spawn(async (self) => {
        await self.receive();
      }),
    );
    // Let every body reach its receive: the process's own memory is then in the baseline, not in the name's.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const names = pids.map((_, n) => ['heap', 'bench', n] as const);
    const before = heapAfterCollection(gc);
    for (let start = 0; start < count; start += 1000) {
      const answers = await Promise.all(names.slice(start, start + 1000).map((name, n) => registry.registerName(name, pids[start + n]!)));
      if (answers.some((answer) => answer !== 'yes')) throw new Error('a registration was refused');
    }
    const held = heapAfterCollection(gc);
    await Promise.all(names.map((name) => registry.unregisterName(name)));
    const released = heapAfterCollection(gc);
    const map = new Map<string, Pid>();
    const beforeMap = heapAfterCollection(gc);
    for (let n = 0; n < count; n++) map.set(nameKey(names[n]), pids[n]!);
    const afterMap = heapAfterCollection(gc);
    if (map.size !== count) throw new Error('the baseline map lost an entry');
    for (const pid of pids) owner.exit(pid, 'kill');
    return { perName: (held - before) / count, perReleasedName: (released - before) / count, perMapEntry: (afterMap - beforeMap) / count };
  } finally {
    await peer.stop();
    await owner.stop();
  }
}
