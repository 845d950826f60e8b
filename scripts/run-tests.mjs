#!/usr/bin/env node
// Runs the test suite with one RabbitMQ shared by every test file.
//
//   node --conditions=development scripts/run-tests.mjs                          every packages/*/test/**/*.test.ts and test/**/*.test.ts
//   node scripts/run-tests.mjs packages/amqp/test/x.test.ts [more files or directories]
//
// - With AMQP_URL set, that broker is used and nothing is started.
// - Otherwise one private broker is started (@roster/testkit's startRabbitMQ,
//   loaded through tsx) and exported to the tests as AMQP_URL, together with
//   ROSTER_RABBITMQ_CTL, a control socket through which a test file can pause
//   and resume it (RabbitMQ#pause / #resume). Test files run one at a time
//   (--test-concurrency=1), so pausing the shared broker only affects the file
//   that does it. When a subset of files is named and none of them mentions
//   RabbitMQ or AMQP, no broker is started (a test that needs one anyway
//   starts its own private broker: slower, still correct).
// - ROSTER_LOG_LEVEL defaults to 'silent'.
// - A test file's process is ended once all its tests have finished
//   (--test-force-exit): a handle a file leaves behind (a timer, a socket)
//   cannot stall the rest of the suite. Once, a file's process kept a core
//   busy after every one of its tests had passed, and the cause was never
//   found; a test that must see a clean exit spawns a process of its own.
// - The exit code is the test runner's.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every `*.test.ts` under `dir`, recursively, skipping node_modules and dot directories. */
function testFilesUnder(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...testFilesUnder(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

function collectAll() {
  const files = [];
  const packages = join(root, 'packages');
  if (existsSync(packages)) {
    for (const entry of readdirSync(packages, { withFileTypes: true })) {
      if (entry.isDirectory()) files.push(...testFilesUnder(join(packages, entry.name, 'test')));
    }
  }
  files.push(...testFilesUnder(join(root, 'test')));
  return files;
}

function collectNamed(args) {
  const files = [];
  for (const arg of args) {
    const path = resolve(process.cwd(), arg);
    if (!existsSync(path)) {
      console.error(`run-tests: no such file or directory: ${arg}`);
      process.exit(2);
    }
    if (statSync(path).isDirectory()) files.push(...testFilesUnder(path));
    else files.push(path);
  }
  return files;
}

function mentionsBroker(file) {
  try {
    return /rabbit|amqp/i.test(readFileSync(file, 'utf8'));
  } catch {
    return true;
  }
}

const args = process.argv.slice(2);
const files = [...new Set(args.length > 0 ? collectNamed(args) : collectAll())].sort();
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(args.length > 0 ? 2 : 0);
}

const env = { ...process.env };
env.ROSTER_LOG_LEVEL ??= 'silent';

let rabbit;
const needBroker = !env.AMQP_URL && (args.length === 0 || files.some(mentionsBroker));
if (needBroker) {
  const { register } = await import('tsx/esm/api');
  register();
  const { startRabbitMQ } = await import(join(root, 'packages/testkit/src/rabbitmq.ts'));
  const began = performance.now();
  try {
    rabbit = await startRabbitMQ();
  } catch (error) {
    console.error(`run-tests: could not start RabbitMQ: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  env.AMQP_URL = rabbit.url;
  env.ROSTER_RABBITMQ_CTL = await rabbit.shareControl();
  console.error(`run-tests: RabbitMQ ${rabbit.nodeName} ready on 127.0.0.1:${rabbit.port} in ${Math.round(performance.now() - began)} ms`);
}

const child = spawn(
  process.execPath,
  ['--conditions=development', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-force-exit', ...files.map((file) => relative(root, file))],
  { cwd: root, env, stdio: 'inherit' },
);

// Ctrl-C reaches the test runner too (same process group): wait for it to finish, then clean up.
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = signal;
    child.kill(signal);
  });
}

const code = await new Promise((resolveExit) => {
  child.once('error', (error) => {
    console.error(`run-tests: could not run the tests: ${error.message}`);
    resolveExit(1);
  });
  child.once('exit', (exitCode, signal) => resolveExit(exitCode ?? (signal === null ? 1 : 128 + (signal === 'SIGINT' ? 2 : 15))));
});

if (rabbit !== undefined) {
  try {
    await rabbit.stop();
  } catch (error) {
    console.error(`run-tests: stopping RabbitMQ failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
process.exit(interrupted === undefined ? code : code || 130);
