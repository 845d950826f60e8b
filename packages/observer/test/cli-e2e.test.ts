/**
 * The `roster` bin end to end: run from src (tsx) with a scrubbed
 * environment against a 3-node cluster over RabbitMQ (AMQP_URL, exported
 * by the test runner) holding global names and a supervision tree. Checks
 * each command's table and --json, the exit codes, and the one-line errors
 * of a wrong secret, an unreachable broker, a cluster nobody answers for
 * and a name nobody holds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GenServer, Supervisor, noreply, reply, via, type Node, type Pid } from '@roster/core';
import { formatEpoch, GlobalsRegistry } from '@roster/globals';
import { startCluster, startRabbitMQ, within, type ClusterHarness, type RabbitMQ } from '@roster/testkit';

const BIN = fileURLToPath(new URL('../src/cli/bin.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SECRET = `s3cret-${Math.random().toString(36).slice(2)}`;

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Every output of every run, to check that the secret never shows. */
const outputs: string[] = [];

/** Runs the bin with only PATH and `env` in its environment; fails the test if it has not exited within `bound` ms. */
function runCli(args: readonly string[], env: Record<string, string>, bound = 30_000): Promise<CliRun> {
  const began = performance.now();
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<CliRun>((resolve) => {
    child.once('close', (code) => {
      outputs.push(stdout, stderr);
      resolve({ code, stdout, stderr, ms: performance.now() - began });
    });
  });
  return within(exited, `roster ${args.join(' ')} to exit`, bound).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
}

/** A failure's stderr: one line, prefixed `roster:`, no stack trace. */
function assertOneLineError(run: CliRun, status: number, mention: RegExp): void {
  assert.equal(run.code, status, `exit ${run.code}; stderr: ${run.stderr}`);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /^roster: /);
  assert.match(lines[0]!, mention);
  assert.doesNotMatch(run.stderr, /\n\s+at /);
}

/** Table rows (header excluded), each split on runs of two or more spaces. */
function tableRows(text: string): string[][] {
  return text
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s{2,}/));
}

const Counter: GenServer<number, number> = {
  init: (start) => start,
  handleCall: (_request, _from, count) => reply(count, count),
  handleCast: (_message, count) => noreply(count + 1),
};

describe('roster CLI against a 3-node cluster over RabbitMQ', () => {
  let rabbit: RabbitMQ;
  let cluster: ClusterHarness;
  let dir: string;
  let env: Record<string, string>;
  let secretFile: string;
  /** The names the cluster holds, their JSON, and their holders. */
  const held: { name: unknown; json: string; pid: Pid }[] = [];
  let supervisor: Pid;

  before(async () => {
    rabbit = await startRabbitMQ();
    dir = await mkdtemp(join(tmpdir(), 'roster-cli-'));
    secretFile = join(dir, 'secret');
    await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
    cluster = await startCluster({
      nodes: ['alpha', 'beta', 'gamma'],
      transport: 'amqp',
      amqpUrl: rabbit.url,
      secret: SECRET,
      registries: () => ({ globals: new GlobalsRegistry() }),
    });
    await cluster.waitForMembership();
    const [alpha, beta, gamma] = cluster.nodes as [Node, Node, Node];
    const named = async (node: Node, name: unknown): Promise<void> => {
      const pid = await GenServer.start(node, Counter, 0, { name: via('globals', name as string) });
      held.push({ name, json: JSON.stringify(name), pid });
    };
    await named(alpha, 'counter');
    await named(alpha, { shard: 2, kind: 'cache' });
    await named(beta, ['job', 7]);
    supervisor = await Supervisor.start(
      gamma,
      { strategy: 'one_for_one', children: [Supervisor.worker('worker', Counter, 0, { name: via('globals', 'sup-worker') })] },
      { name: 'tree' },
    );
    const worker = (await Supervisor.whichChildren(gamma, supervisor))[0]!.pid as Pid;
    held.push({ name: 'sup-worker', json: '"sup-worker"', pid: worker });
    env = { AMQP_URL: rabbit.url, ROSTER_CLUSTER: cluster.id, ROSTER_SECRET_FILE: secretFile };
  });

  after(async () => {
    await cluster?.stopAll();
    await rabbit?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    for (const text of outputs) assert.ok(!text.includes(SECRET), `the secret showed in: ${text}`);
  });

  it('nodes: every member with its role, incarnation, names held, drops and registry operations, as a table and as JSON', async () => {
    const [table, json] = await Promise.all([runCli(['nodes'], env), runCli(['nodes', '--json'], env)]);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stderr, '');
    const sum = (counts: Readonly<Record<string, number>>): number => Object.values(counts).reduce((total, count) => total + count, 0);
    // A quiet cluster: each member's drops and registry operations as it counts them now are what its snapshot said.
    const expected = cluster.nodes.map((node) => {
      const stats = node.registry<GlobalsRegistry>('globals').stats;
      return {
        node: node.name,
        role: 'member',
        creation: node.creation,
        names: held.filter((entry) => entry.pid.node === node.name).length,
        dropped: { frames: sum(cluster.clusterOf(node.name).stats.dropped), registry: sum(stats.drops) },
        registryOps: { register: stats.registrations, unregister: stats.unregistrations },
      };
    });
    assert.ok(expected.every((row) => row.registryOps.register > 0), 'the members registered names at setup');
    // The other run is an observer too and may be listed (role observer, no names); each never lists itself.
    const rows = tableRows(table.stdout);
    assert.deepEqual(
      rows.filter((row) => row[1] === 'member'),
      expected.map((row) => [row.node, row.role, row.creation, String(row.names), String(row.dropped.frames + row.dropped.registry), String(row.registryOps.register + row.registryOps.unregister)]),
    );
    for (const row of rows.filter((candidate) => candidate[1] !== 'member')) assert.match(row.join(' '), /^roster-cli-[0-9a-f]+ observer \S+ 0 (\d+|-) (0|-)$/);
    assert.ok(rows.length <= 4, table.stdout);
    assert.match(table.stdout.split('\n')[0]!, /^NODE\s+ROLE\s+CREATION\s+NAMES\s+DROPPED\s+REG OPS$/);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { cluster: string; nodes: { role: string }[] };
    assert.deepEqual({ ...parsed, nodes: parsed.nodes.filter((row) => row.role === 'member') }, { cluster: cluster.id, nodes: expected });
  });

  it('names: every name as JSON with its node, pid and epoch; --node keeps one node', async () => {
    const [table, json, beta] = await Promise.all([runCli(['names'], env), runCli(['names', '--json'], env), runCli(['names', '--node', 'beta', '--json'], env)]);
    const registryOf = (node: string): GlobalsRegistry => cluster.node(node).registry<GlobalsRegistry>('globals');
    const expected = held
      .map((entry) => ({ name: entry.name, node: entry.pid.node, pid: entry.pid.key, epoch: formatEpoch(registryOf(entry.pid.node).epochOf(entry.name as string)!) }))
      .sort((a, b) => (JSON.stringify(a.name) < JSON.stringify(b.name) ? -1 : 1));
    assert.equal(table.code, 0, table.stderr);
    assert.deepEqual(tableRows(table.stdout), expected.map((row) => [JSON.stringify(row.name), row.node, row.pid, row.epoch]));
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { names: expected });
    assert.equal(beta.code, 0, beta.stderr);
    assert.deepEqual(JSON.parse(beta.stdout), { names: expected.filter((row) => row.node === 'beta') });
  });

  it('whereis: the holder of a string, an array or an object name; exit 3 for a name nobody holds', async () => {
    const job = held.find((entry) => entry.json === '["job",7]')!;
    const shard = held.find((entry) => entry.json.startsWith('{'))!;
    const [counter, array, object, missing, missingJson] = await Promise.all([
      runCli(['whereis', 'counter'], env),
      runCli(['whereis', '["job",7]', '--json'], env),
      // Key order does not matter: names compare by their canonical form.
      runCli(['whereis', '{"kind":"cache","shard":2}', '--json'], env),
      runCli(['whereis', 'no-such-name'], env),
      runCli(['whereis', '["job",8]', '--json'], env),
    ]);
    assert.equal(counter.code, 0, counter.stderr);
    const holder = held.find((entry) => entry.name === 'counter')!.pid;
    assert.deepEqual(tableRows(counter.stdout)[0]!.slice(0, 3), ['"counter"', 'alpha', holder.key]);
    assert.equal(array.code, 0, array.stderr);
    const arrayResult = JSON.parse(array.stdout);
    assert.deepEqual([arrayResult.name, arrayResult.node, arrayResult.pid], [['job', 7], 'beta', job.pid.key]);
    assert.equal(arrayResult.epoch, formatEpoch(cluster.node('beta').registry<GlobalsRegistry>('globals').epochOf(['job', 7])!));
    assert.equal(object.code, 0, object.stderr);
    assert.equal(JSON.parse(object.stdout).pid, shard.pid.key);
    assertOneLineError(missing, 3, /"no-such-name" is not registered/);
    assertOneLineError(missingJson, 3, /\["job",8\] is not registered/);
  });

  it('processes: every process of a node with pid, name, kind, mailbox and messages in; exit 3 for a node that is not a member (processes, names --node)', async () => {
    const gamma = cluster.node('gamma');
    const [table, json, unknown, unknownNames] = await Promise.all([
      runCli(['processes', 'gamma'], env),
      runCli(['processes', 'gamma', '--json'], env),
      runCli(['processes', 'nowhere'], env),
      runCli(['names', '--node', 'nowhere', '--json'], env),
    ]);
    const local = gamma.snapshot({ processes: true }).processes!;
    const worker = held.find((entry) => entry.name === 'sup-worker')!.pid;
    assert.equal(json.code, 0, json.stderr);
    const result = JSON.parse(json.stdout) as { node: string; processes: { pid: string; name?: string; kind: string; mailboxLength: number; messagesIn: number }[] };
    assert.equal(result.node, 'gamma');
    const byPid = new Map(result.processes.map((row) => [row.pid, row]));
    // Every process gamma has now was there when the CLI asked (none of them is short-lived), with its facts.
    for (const info of local) {
      const row = byPid.get(info.pid.key);
      assert.ok(row !== undefined, `${info.pid.key} (${info.kind}) missing from ${json.stdout}`);
      assert.equal(row.kind, info.kind);
      assert.equal(row.name, info.name);
    }
    assert.equal(byPid.get(supervisor.key)?.kind, 'supervisor');
    assert.equal(byPid.get(supervisor.key)?.name, 'tree');
    assert.equal(byPid.get(worker.key)?.kind, 'gen_server');
    assert.ok(result.processes.every((row) => Number.isInteger(row.mailboxLength) && Number.isInteger(row.messagesIn)));

    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout.split('\n')[0]!, /^PID\s+NAME\s+KIND\s+MAILBOX\s+MESSAGES IN$/);
    const rows = tableRows(table.stdout);
    const supervisorRow = rows.find((row) => row[0] === supervisor.key);
    assert.deepEqual(supervisorRow?.slice(1, 3), ['tree', 'supervisor']);
    assert.ok(rows.some((row) => row[0] === worker.key && row[1] === '-' && row[2] === 'gen_server'), table.stdout);

    assertOneLineError(unknown, 3, /"nowhere" is not a live member.*alpha, beta, gamma/);
    assertOneLineError(unknownNames, 3, /"nowhere" is not a live member/);
  });

  it('a wrong secret, or none, is said to be one, with exit 1', async () => {
    const wrongFile = join(dir, 'wrong');
    await writeFile(wrongFile, 'not-the-secret\n');
    const base = { AMQP_URL: rabbit.url, ROSTER_CLUSTER: cluster.id };
    const [wrong, none, wrongEnv] = await Promise.all([
      runCli(['nodes', '--secret-file', wrongFile], base),
      runCli(['names'], base),
      // --secret-file wins over the environment's (right) secret.
      runCli(['nodes', '--secret-file', wrongFile], { ...base, ROSTER_SECRET: SECRET }),
    ]);
    assertOneLineError(wrong, 1, /wrong secret/);
    assertOneLineError(none, 1, /wrong secret.*no secret is set/);
    assertOneLineError(wrongEnv, 1, /wrong secret/);
    // The secret from the environment works as the file does.
    const right = await runCli(['nodes', '--json'], { ...base, ROSTER_SECRET: SECRET });
    assert.equal(right.code, 0, right.stderr);
    assert.equal(JSON.parse(right.stdout).nodes.length, 3);
  });

  it('an unreachable broker, a cluster nobody answers for, and usage errors each exit with their code', async () => {
    const [unreachable, nobody, badCommand, badFlag, noUrl, help] = await Promise.all([
      runCli(['nodes', '--url', 'amqp://guest:pa55@127.0.0.1:1', '--timeout', '1000'], env),
      runCli(['nodes', '--cluster', `${cluster.id}-other`, '--timeout', '1500'], env),
      runCli(['nodez'], env),
      runCli(['names', '--port', '1'], env),
      runCli(['nodes'], {}),
      runCli(['processes', '--help'], {}),
    ]);
    assertOneLineError(unreachable, 1, /cannot reach the broker at amqp:\/\/\*\*\*@127\.0\.0\.1:1 within 1000 ms/);
    assert.ok(!unreachable.stderr.includes('pa55'));
    // It gives up within its timeout (plus the process's own start), and nothing holds the process open after.
    assert.ok(unreachable.ms < 10_000, `${unreachable.ms} ms`);
    assertOneLineError(nobody, 1, /no node of cluster .* answered within 1500 ms/);
    assertOneLineError(badCommand, 2, /unknown command "nodez"/);
    assertOneLineError(badFlag, 2, /--port is not a flag of roster names/);
    assertOneLineError(noUrl, 2, /no broker URL/);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^usage: roster processes NODE/);
  });

  it('observe: prints the URL of a live observer page, behind the token it was given, and stops cleanly on SIGINT', async () => {
    const token = `tok-${Math.random().toString(36).slice(2)}`;
    const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', BIN, 'observe', '--port', '0', '--json'], {
      cwd: ROOT,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env, ROSTER_OBSERVER_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const printed = new Promise<string>((resolve) => {
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.trimEnd().endsWith('}')) resolve(stdout);
        });
      });
      const { url } = JSON.parse(await within(printed, 'roster observe to print its URL', 30_000)) as { url: string };
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\//);
      assert.ok(!url.includes(token));
      const refused = await fetch(url);
      assert.equal(refused.status, 401);
      await refused.arrayBuffer();
      const page = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      child.kill('SIGINT');
      assert.equal(await within(exited, 'roster observe to exit after SIGINT', 15_000), 0, stderr);
    } finally {
      child.kill('SIGKILL');
      outputs.push(stdout, stderr);
      assert.ok(!stdout.includes(token) && !stderr.includes(token));
    }
  });
});
