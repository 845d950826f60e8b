/**
 * Runs benchmark suites, prints their tables and writes
 * `bench/results/<suite>.json`.
 *
 *   npm run bench                 every suite
 *   npm run bench -- core         only the named ones
 *
 * It measures the packages as built (`npm run build`: their `dist`, compiled
 * by tsc), not their sources through tsx, whose transform names every
 * closure as it is made (esbuild's keepNames) and so taxes code no user
 * runs. Only the benchmarks themselves and their fixtures go through tsx.
 *
 * A suite is a module exporting `suite: Suite` (see ./report.ts); adding one
 * is an import and an entry in SUITES.
 */
import { formatTable, machine, timeIt, writeResults, type Suite } from './report.js';
import { suite as core } from './core.js';
import { suite as cluster } from './cluster.js';
import { suite as registry } from './registry.js';
import { suite as supervision } from './supervision.js';
import { suite as observer } from './observer.js';

const SUITES: readonly Suite[] = [core, cluster, registry, supervision, observer];

async function main(argv: readonly string[]): Promise<number> {
  const names = argv.filter((arg) => !arg.startsWith('-'));
  const unknown = names.filter((name) => !SUITES.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.map((suite) => suite.name).join(', ')}`);
    return 2;
  }
  const selected = names.length === 0 ? SUITES : SUITES.filter((suite) => names.includes(suite.name));
  const host = machine();
  console.log(`roster benchmarks: ${host.cpus} x ${host.cpuModel}, ${host.memoryGiB} GiB, Node ${host.node}, ${host.platform}\n`);
  let failed = 0;
  for (const suite of selected) {
    try {
      let results: Awaited<ReturnType<Suite['run']>> = [];
      const ms = await timeIt(async () => {
        results = await suite.run();
      });
      console.log(formatTable(suite.name, results));
      const file = await writeResults(suite.name, results, ms);
      console.log(`\n${suite.name}: ${(ms / 1000).toFixed(1)} s, written to ${file}\n`);
    } catch (error) {
      failed++;
      console.error(`suite ${suite.name} failed:`, error);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
