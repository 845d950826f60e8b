/**
 * `npm run chaos -- --minutes N [--brokers 3] [--nodes 5] [--seed S] [--out DIR]`:
 * a chaos run of the globals registry against a private RabbitMQ cluster
 * (@roster/testkit's runChaos), judged by the history checker. Prints the
 * table; writes chaos-history.json, chaos-report.md and chaos-report.json
 * under bench/results/ (or --out; the history is not committed: it is
 * several MB, see .gitignore). Exit code 0: no violation; 1: a
 * violation (or the run failed); 2: usage.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { excerpt, runChaos } from '@roster/testkit';

const FLAGS = {
  minutes: { type: 'string', default: '1' },
  nodes: { type: 'string', default: '5' },
  brokers: { type: 'string', default: '3' },
  seed: { type: 'string' },
  out: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function usage(message?: string): never {
  if (message !== undefined) console.error(`chaos: ${message}`);
  console.error('usage: npm run chaos -- --minutes N [--brokers 3] [--nodes 5] [--seed S] [--out DIR] [--quiet]');
  process.exit(2);
}

let flags: ReturnType<typeof parseArgs<{ options: typeof FLAGS }>>['values'];
try {
  flags = parseArgs({ options: FLAGS, allowPositionals: false }).values;
} catch (error) {
  usage((error as Error).message);
}
if (flags.help) usage();
const number = (name: string, value: string | undefined, integer: boolean): number | undefined => {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0 || (integer && !Number.isInteger(parsed))) usage(`--${name} must be a ${integer ? 'positive integer' : 'positive number'}, got ${value}`);
  return parsed;
};
const minutes = number('minutes', flags.minutes, false)!;
const nodes = number('nodes', flags.nodes, true)!;
const brokers = number('brokers', flags.brokers, true)!;
const seed = number('seed', flags.seed, true);
const out = resolve(flags.out ?? join(fileURLToPath(new URL('..', import.meta.url)), 'bench', 'results'));

const began = Date.now();
try {
  const run = await runChaos({
    minutes,
    nodes,
    brokers,
    ...(seed === undefined ? {} : { seed }),
    log: flags.quiet ? () => {} : (line) => console.error(line),
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'chaos-history.json'), `${JSON.stringify(run.history)}\n`);
  // The history is several MB for a few minutes: it stays out of git (.gitignore); the report says where it is.
  const historyNote = `\nThe full history (every operation, fault, node event and sample) is written to \`${join(out, 'chaos-history.json')}\` by each run; it is kept out of git (.gitignore: several MB).\n`;
  writeFileSync(join(out, 'chaos-report.md'), run.text + historyNote);
  writeFileSync(join(out, 'chaos-report.json'), `${JSON.stringify(run.report, null, 2)}\n`);
  console.log(run.text);
  for (const violation of run.check.violations.slice(0, 5)) {
    console.log(`\n${violation.kind} ${violation.name}: history excerpt`);
    for (const event of excerpt(run.history, violation)) console.log(`  ${JSON.stringify(event)}`);
  }
  console.error(`chaos: done in ${Math.round((Date.now() - began) / 1000)} s; wrote ${out}/chaos-{history.json,report.md,report.json}`);
  process.exit(run.check.ok ? 0 : 1);
} catch (error) {
  console.error('chaos: the run failed:', error);
  process.exit(1);
}
