/**
 * The `roster` CLI's pure parts, without I/O: the command line against the
 * flag table, the configuration's precedence (flags over env over defaults)
 * and its refusals, the secret that never shows, and the rendering of tables,
 * JSON and help.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { CliError, EXIT_CODES, exitCodeFor, type CliErrorCode } from '../src/cli/errors.js';
import { COMMANDS, FLAGS, parseCommandLine, type CommandLine, type CommandName } from '../src/cli/flags.js';
import { DEFAULTS, parseSecretFile, resolveConfig, Secret, type CliEnv } from '../src/cli/config.js';
import { formatHelp, formatName, render, renderJson, renderTable, renderText } from '../src/cli/format.js';
import { parseNameArgument } from '../src/cli/commands/whereis.js';
import { reportedBy } from '../src/cli/commands/nodes.js';
import type { NodeSnapshot } from '@roster/core';
import type { CommandResult, NamesResult, NodesResult, ProcessesResult, WhereisResult } from '../src/cli/commands/types.js';

/** Runs `fn`, which must throw a usage `CliError` whose message contains every one of `mentions`. */
function usage(fn: () => unknown, ...mentions: string[]): CliError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof CliError, `expected a CliError, got ${inspect(caught)}`);
  assert.equal(caught.code, 'usage', caught.message);
  assert.equal(exitCodeFor(caught.code), 2);
  for (const mention of mentions) assert.ok(caught.message.includes(mention), `${JSON.stringify(caught.message)} should mention ${mention}`);
  assert.ok(!caught.message.includes('\n'), 'one line');
  return caught;
}

function run(argv: string[]): Extract<CommandLine, { kind: 'run' }> {
  const line = parseCommandLine(argv);
  assert.equal(line.kind, 'run');
  return line as Extract<CommandLine, { kind: 'run' }>;
}

describe('parseCommandLine', () => {
  it('reads each command with its arguments and flags', () => {
    assert.deepEqual(run(['nodes']), { kind: 'run', command: 'nodes', args: [], flags: {} });
    assert.deepEqual(run(['names', '--node', 'a1', '--json']), { kind: 'run', command: 'names', args: [], flags: { node: 'a1', json: true } });
    assert.deepEqual(run(['whereis', '["job",7]']).args, ['["job",7]']);
    assert.deepEqual(run(['processes', 'n2', '--timeout', '900']), { kind: 'run', command: 'processes', args: ['n2'], flags: { timeout: '900' } });
    assert.deepEqual(run(['observe', '--port=8123', '--host', '0.0.0.0']).flags, { port: '8123', host: '0.0.0.0' });
    // Flags may come before the command, and --url collects every occurrence in order.
    const line = run(['--url', 'amqp://a', 'nodes', '--url=amqp://b', '--cluster', 'prod', '--secret-file', '/run/s']);
    assert.deepEqual(line.flags, { url: ['amqp://a', 'amqp://b'], cluster: 'prod', 'secret-file': '/run/s' });
  });

  it('takes a name that starts with a dash after --', () => {
    assert.deepEqual(run(['whereis', '--', '-1']).args, ['-1']);
    usage(() => parseCommandLine(['whereis', '-1']), '-1');
  });

  it('answers help in every spelling, for the tool and for each command', () => {
    for (const argv of [['--help'], ['-h'], ['help']]) assert.deepEqual(parseCommandLine(argv), { kind: 'help' });
    for (const command of Object.keys(COMMANDS) as CommandName[]) {
      assert.deepEqual(parseCommandLine([command, '--help']), { kind: 'help', command });
      assert.deepEqual(parseCommandLine(['help', command]), { kind: 'help', command });
      // Help wins over a missing argument: `roster whereis --help` needs no NAME.
      assert.deepEqual(parseCommandLine([command, '-h']), { kind: 'help', command });
    }
  });

  it('refuses an unknown command, naming it and the known ones', () => {
    usage(() => parseCommandLine(['frobnicate']), '"frobnicate"', 'nodes', 'observe');
    usage(() => parseCommandLine(['help', 'frobnicate']), '"frobnicate"');
    usage(() => parseCommandLine([]), 'no command');
    usage(() => parseCommandLine(['--json']), 'no command');
  });

  it('refuses an unknown flag, naming it as typed', () => {
    usage(() => parseCommandLine(['nodes', '--bogus']), '--bogus');
    usage(() => parseCommandLine(['nodes', '-x']), '-x');
    usage(() => parseCommandLine(['nodes', '--jsno']), '--jsno');
    usage(() => parseCommandLine(['--bogus', '--help']), '--bogus');
    // A secret on the command line is refused with where to put it instead.
    usage(() => parseCommandLine(['nodes', '--secret', 'hunter2']), '--secret', '--secret-file', 'ROSTER_SECRET');
  });

  it('refuses a flag given to a command that does not take it', () => {
    usage(() => parseCommandLine(['nodes', '--port', '80']), '--port', 'roster nodes', 'observe');
    usage(() => parseCommandLine(['whereis', 'x', '--node', 'a']), '--node', 'roster whereis', 'names');
    usage(() => parseCommandLine(['names', '--host', 'h']), '--host');
  });

  it('refuses a string flag without a value, a value on a boolean, a flag given twice', () => {
    usage(() => parseCommandLine(['nodes', '--url']), '--url', 'URL');
    usage(() => parseCommandLine(['nodes', '--timeout']), '--timeout', 'MS');
    usage(() => parseCommandLine(['nodes', '--json=yes']), '--json', 'no value');
    usage(() => parseCommandLine(['nodes', '--cluster', 'a', '--cluster', 'b']), '--cluster', 'twice');
  });

  it('refuses a missing or an extra argument, naming it', () => {
    usage(() => parseCommandLine(['whereis']), 'NAME');
    usage(() => parseCommandLine(['processes']), 'NODE');
    usage(() => parseCommandLine(['nodes', 'extra']), '"extra"', 'roster nodes');
    usage(() => parseCommandLine(['whereis', 'a', 'b']), '"b"');
    usage(() => parseCommandLine(['help', 'names', 'more']), '"more"');
  });
});

describe('resolveConfig', () => {
  const URL = 'amqp://guest:guest@broker:5672/';

  it('defaults what neither a flag nor the environment sets', () => {
    const config = resolveConfig({ flags: {}, env: { AMQP_URL: URL } });
    assert.deepEqual(config.urls, [URL]);
    assert.equal(config.cluster, DEFAULTS.cluster);
    assert.equal(config.timeout, DEFAULTS.timeout);
    assert.equal(config.secret, undefined);
    assert.equal(config.json, false);
    assert.equal(config.port, undefined);
    assert.equal(config.host, undefined);
    assert.equal(config.node, undefined);
    assert.ok(Object.isFrozen(config));
  });

  it('puts flags over the environment for the broker and the cluster id', () => {
    const env = { AMQP_URL: 'amqp://env-broker', ROSTER_CLUSTER: 'env-cluster' };
    assert.deepEqual(resolveConfig({ flags: {}, env }).urls, ['amqp://env-broker']);
    assert.equal(resolveConfig({ flags: {}, env }).cluster, 'env-cluster');
    const flagged = resolveConfig({ flags: { url: ['amqp://flag-broker'], cluster: 'flag-cluster' }, env });
    assert.deepEqual(flagged.urls, ['amqp://flag-broker']);
    assert.equal(flagged.cluster, 'flag-cluster');
  });

  it('reads URL lists from repeated flags and commas, and treats an empty variable as unset', () => {
    assert.deepEqual(resolveConfig({ flags: { url: ['amqp://a, amqp://b', 'amqps://c'] }, env: {} }).urls, ['amqp://a', 'amqp://b', 'amqps://c']);
    assert.deepEqual(resolveConfig({ flags: {}, env: { AMQP_URL: 'amqp://a,amqp://b' } }).urls, ['amqp://a', 'amqp://b']);
    assert.equal(resolveConfig({ flags: {}, env: { AMQP_URL: URL, ROSTER_CLUSTER: '' } }).cluster, DEFAULTS.cluster);
    usage(() => resolveConfig({ flags: {}, env: { AMQP_URL: '' } }), '--url', 'AMQP_URL');
  });

  it('refuses a missing or malformed broker URL without showing its credentials', () => {
    usage(() => resolveConfig({ flags: {}, env: {} }), '--url', 'AMQP_URL');
    const error = usage(() => resolveConfig({ flags: { url: ['http://admin:pa55w0rd@broker'] }, env: {} }), '--url', 'amqp://');
    assert.ok(!error.message.includes('pa55w0rd'), error.message);
    usage(() => resolveConfig({ flags: {}, env: { AMQP_URL: 'broker:5672' } }), 'AMQP_URL');
    usage(() => resolveConfig({ flags: { url: [' , '] }, env: {} }), '--url');
  });

  it('takes the secret from --secret-file, else ROSTER_SECRET_FILE or ROSTER_SECRET, never both variables', () => {
    const env = { AMQP_URL: URL };
    assert.deepEqual(resolveConfig({ flags: { 'secret-file': '/flag' }, env: { ...env, ROSTER_SECRET_FILE: '/env', ROSTER_SECRET: 'x' } }).secret, {
      from: 'file',
      path: '/flag',
      via: '--secret-file',
    });
    assert.deepEqual(resolveConfig({ flags: {}, env: { ...env, ROSTER_SECRET_FILE: '/env' } }).secret, { from: 'file', path: '/env', via: 'ROSTER_SECRET_FILE' });
    const fromEnv = resolveConfig({ flags: {}, env: { ...env, ROSTER_SECRET: 'value-from-env' } }).secret;
    assert.ok(fromEnv?.from === 'env');
    assert.equal(fromEnv.secret.reveal(), 'value-from-env');
    usage(() => resolveConfig({ flags: {}, env: { ...env, ROSTER_SECRET_FILE: '/env', ROSTER_SECRET: 'x' } }), 'ROSTER_SECRET', 'ROSTER_SECRET_FILE');
    usage(() => resolveConfig({ flags: { 'secret-file': ' ' }, env }), '--secret-file');
  });

  it('takes the observer token from --token-file over ROSTER_OBSERVER_TOKEN, and keeps it as hidden as the secret', () => {
    const env = { AMQP_URL: URL, ROSTER_OBSERVER_TOKEN: 'tok-from-env-123' };
    assert.deepEqual(resolveConfig({ flags: { 'token-file': '/t' }, env }).token, { from: 'file', path: '/t', via: '--token-file' });
    const fromEnv = resolveConfig({ flags: {}, env }).token;
    assert.ok(fromEnv?.from === 'env' && fromEnv.secret.reveal() === 'tok-from-env-123');
    assert.equal(resolveConfig({ flags: {}, env: { AMQP_URL: URL } }).token, undefined);
    const config = resolveConfig({ flags: {}, env });
    assert.ok(!JSON.stringify(config).includes('tok-from-env-123') && !inspect(config, { depth: 10 }).includes('tok-from-env-123'));
    usage(() => parseCommandLine(['nodes', '--token-file', '/t']), '--token-file', 'observe');
  });

  it('checks numbers and names, naming the flag and the value', () => {
    const env: CliEnv = { AMQP_URL: URL };
    assert.equal(resolveConfig({ flags: { timeout: '250' }, env }).timeout, 250);
    assert.equal(resolveConfig({ flags: { port: '0' }, env }).port, 0);
    assert.equal(resolveConfig({ flags: { port: '65535', host: '::1' }, env }).host, '::1');
    for (const bad of ['0', '-5', '1.5', 'soon', '', '1e3']) usage(() => resolveConfig({ flags: { timeout: bad }, env }), '--timeout', JSON.stringify(bad));
    for (const bad of ['65536', '-1', 'http']) usage(() => resolveConfig({ flags: { port: bad }, env }), '--port', JSON.stringify(bad));
    usage(() => resolveConfig({ flags: { host: '' }, env }), '--host');
    usage(() => resolveConfig({ flags: { node: '' }, env }), '--node');
    usage(() => resolveConfig({ flags: { cluster: '' }, env }), '--cluster');
  });

  it('never shows the secret: not in the config printed any way, not in its errors, not in any output', () => {
    const secret = 'correct-horse-battery-staple';
    const config = resolveConfig({ flags: { json: true }, env: { AMQP_URL: URL, ROSTER_SECRET: secret } });
    assert.ok(config.secret?.from === 'env' && config.secret.secret.reveal() === secret);
    const shown = [JSON.stringify(config), inspect(config, { depth: 10 }), String(config.secret?.secret), `${config.secret?.secret}`, inspect(config.secret, { showHidden: true })];
    for (const text of shown) assert.ok(!text.includes(secret), text);
    const refusal = usage(() => resolveConfig({ flags: { timeout: secret }, env: { AMQP_URL: URL, ROSTER_SECRET: secret } }), '--timeout');
    // A value typed into --timeout is shown back (it is no secret there); the environment's secret is not.
    assert.equal(refusal.message.split(secret).length - 1, 1);
    const both = usage(() => resolveConfig({ flags: {}, env: { AMQP_URL: URL, ROSTER_SECRET: secret, ROSTER_SECRET_FILE: '/f' } }));
    assert.ok(!both.message.includes(secret));
    for (const result of sampleResults()) for (const json of [false, true]) assert.ok(!render(result, json).includes(secret));
    assert.ok(!formatHelp().includes(secret));
  });
});

describe('Secret and secret files', () => {
  it('reveals its value only through reveal()', () => {
    const secret = new Secret('s3cr3t-value');
    assert.equal(secret.reveal(), 's3cr3t-value');
    assert.equal(JSON.stringify({ secret }), '{"secret":"[redacted]"}');
    assert.ok(!inspect(secret).includes('s3cr3t-value'));
    assert.throws(() => new Secret(''), TypeError);
  });

  it('reads a secret file without its trailing line break, and refuses an empty one without its content', () => {
    assert.equal(parseSecretFile('abc\n', '/s').reveal(), 'abc');
    assert.equal(parseSecretFile('abc\r\n\n', '/s').reveal(), 'abc');
    assert.equal(parseSecretFile(' a b ', '/s').reveal(), ' a b ');
    usage(() => parseSecretFile('\n', '/run/secret'), '/run/secret', 'empty');
  });
});

describe('parseNameArgument', () => {
  it('reads JSON when it parses and a plain string otherwise', () => {
    assert.equal(parseNameArgument('counter'), 'counter');
    assert.equal(parseNameArgument('42'), 42);
    assert.equal(parseNameArgument('"42"'), '42');
    assert.equal(parseNameArgument('true'), true);
    assert.equal(parseNameArgument('null'), null);
    assert.deepEqual(parseNameArgument('["job",7]'), ['job', 7]);
    assert.deepEqual(parseNameArgument('{"b":1,"a":[2]}'), { b: 1, a: [2] });
    assert.equal(parseNameArgument('[not json'), '[not json');
    usage(() => parseNameArgument('1e400'), '1e400');
  });
});

function sampleResults(): CommandResult[] {
  const nodes: NodesResult = {
    command: 'nodes',
    cluster: 'c1',
    nodes: [
      { node: 'alpha', role: 'member', creation: 'AbC123', names: 12, dropped: { frames: 3, registry: 1 }, registryOps: { register: 40, unregister: 2 } },
      { node: 'b', role: 'observer', creation: 'x', names: 0, dropped: null, registryOps: null },
    ],
  };
  const names: NamesResult = {
    command: 'names',
    names: [
      { name: ['job', 7], node: 'alpha', pid: '<alpha.AbC123.17>', epoch: '1700000000000.3@alpha' },
      { name: 'line\nbreak', node: 'b', pid: '<b.x.2>', epoch: undefined },
    ],
  };
  const whereis: WhereisResult = { command: 'whereis', name: { k: 1 }, node: 'alpha', pid: '<alpha.AbC123.3>', epoch: '5.0@alpha' };
  const processes: ProcessesResult = {
    command: 'processes',
    node: 'alpha',
    processes: [
      { pid: '<alpha.AbC123.1>', name: 'globals_name_server', kind: 'gen_server', mailboxLength: 0, messagesIn: 1234, trapExit: true, links: 1, monitors: 0, startedAt: 1 },
      { pid: '<alpha.AbC123.22>', name: undefined, kind: 'process', mailboxLength: 87, messagesIn: 5, trapExit: false, links: 0, monitors: 2, startedAt: 2 },
    ],
    omitted: 0,
  };
  return [nodes, names, whereis, processes, { command: 'observe', url: 'http://127.0.0.1:4000/' }];
}

/** The start offset of each column in a table line, given the header's labels. */
function columnStarts(header: string, labels: readonly string[]): number[] {
  let from = 0;
  return labels.map((label) => {
    const at = header.indexOf(label, from);
    assert.ok(at >= 0, `header ${JSON.stringify(header)} lacks ${label}`);
    from = at + label.length;
    return at;
  });
}

describe('format', () => {
  it('renders a table with aligned columns, numbers to the right, and no trailing spaces', () => {
    const rows = [
      { a: 'x', n: 5 },
      { a: 'longer cell', n: 12345 },
    ];
    const text = renderTable(
      [
        { header: 'A', cell: (row: (typeof rows)[number]) => row.a },
        { header: 'N', cell: (row: (typeof rows)[number]) => String(row.n), align: 'right' },
      ],
      rows,
    );
    const lines = text.split('\n');
    assert.equal(lines.pop(), '', 'ends in a line break');
    assert.equal(lines.length, 3);
    for (const line of lines) assert.equal(line, line.trimEnd());
    // Every row is as long as the widest one: the right column ends at the same place.
    const width = Math.max(...lines.map((line) => line.length));
    for (const line of lines) assert.equal(line.length, width);
    assert.ok(lines[1]!.endsWith(' 5') && lines[2]!.endsWith('12345'));
    assert.ok(lines[2]!.startsWith('longer cell  '));
    assert.equal(renderTable([{ header: 'ONLY', cell: () => 'x' }], []), 'ONLY\n');
  });

  it('renders each command as a table whose cells line up under their headers', () => {
    const headers: Record<string, string[]> = {
      nodes: ['NODE', 'ROLE', 'CREATION', 'NAMES', 'DROPPED', 'REG OPS'],
      names: ['NAME', 'NODE', 'PID', 'EPOCH'],
      whereis: ['NAME', 'NODE', 'PID', 'EPOCH'],
      processes: ['PID', 'NAME', 'KIND', 'MAILBOX', 'MESSAGES IN'],
    };
    for (const result of sampleResults()) {
      const text = renderText(result);
      if (result.command === 'observe') {
        assert.ok(text.includes(result.url));
        continue;
      }
      const [header, ...body] = text.trimEnd().split('\n');
      const starts = columnStarts(header!, headers[result.command]!);
      const rows: readonly object[] = result.command === 'nodes' ? result.nodes : result.command === 'names' ? result.names : result.command === 'processes' ? result.processes : [result];
      assert.equal(body.length, rows.length, text);
      for (const line of body) {
        // A left-aligned column's cell starts at its header; between columns there is at least one space.
        for (const start of starts.slice(1)) assert.equal(line[start - 1], ' ', `${JSON.stringify(line)} at ${start}`);
      }
    }
  });

  it('nodes: drops and registry operations summed per row, - for a node that did not answer', () => {
    const [nodes] = sampleResults() as [NodesResult];
    const [, alpha, b] = renderText(nodes).trimEnd().split('\n').map((line) => line.split(/\s{2,}/));
    assert.deepEqual(alpha, ['alpha', 'member', 'AbC123', '12', '4', '42']);
    assert.deepEqual(b, ['b', 'observer', 'x', '0', '-', '-']);
  });

  it('nodes: what a snapshot reports becomes the row (cluster drops, registry drops and operations), or nulls', () => {
    const latency = { bounds: [], counts: [0], count: 0, sum: 0 };
    const base = { registered: [], registries: {} } as unknown as NodeSnapshot;
    assert.deepEqual(reportedBy(undefined), { dropped: null, registryOps: null });
    assert.deepEqual(reportedBy(base), { dropped: null, registryOps: null });
    const clustered = { ...base, distribution: { sent: 1, received: 1, dropped: { malformed: 2, bad_signature: 5 }, peers: 1, role: 'member' } } as NodeSnapshot;
    assert.deepEqual(reportedBy(clustered), { dropped: { frames: 7, registry: 0 }, registryOps: null });
    const globals = { kind: 'globals', dropped: 3, drops: { forged: 1, stale: 2 }, conflicts: 0, listenerErrors: 0, registrations: 9, unregistrations: 4, registerLatency: latency, names: 1, members: [] };
    assert.deepEqual(reportedBy({ ...clustered, registries: { globals } } as NodeSnapshot), { dropped: { frames: 7, registry: 3 }, registryOps: { register: 9, unregister: 4 } });
    // Under another key, or not a globals registry: no registry figures.
    assert.deepEqual(reportedBy({ ...clustered, registries: { other: globals, globals: { kind: 'mine' } } } as NodeSnapshot).registryOps, null);
  });

  it('prints names as JSON, escapes control characters, and shows an unknown epoch as -', () => {
    const [, names] = sampleResults() as [NodesResult, NamesResult];
    const text = renderText(names);
    assert.ok(text.includes('["job",7]'));
    assert.ok(text.includes('"line\\nbreak"'));
    assert.equal(text.trimEnd().split('\n').length, 3, 'a newline in a name does not break a row');
    assert.match(text.trimEnd().split('\n')[2]!, / -$/);
    assert.equal(formatName({ k: [1, 'two'] }), '{"k":[1,"two"]}');
    assert.ok(renderText({ command: 'processes', node: 'n', processes: [], omitted: 3 }).includes('3 more processes'));
  });

  it('renders --json as the command data itself, without the command tag', () => {
    for (const result of sampleResults()) {
      const text = renderJson(result);
      assert.ok(text.endsWith('}\n'));
      const { command: _command, ...data } = result;
      // undefined fields vanish in JSON, as they would for any consumer.
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(data)));
      assert.equal(render(result, true), text);
      assert.equal(render(result, false), renderText(result));
    }
    const [, names] = sampleResults() as [NodesResult, NamesResult];
    assert.deepEqual(JSON.parse(renderJson(names)).names[0].name, ['job', 7]);
  });

  it('lists every command and every common flag in --help, and each command its own flags', () => {
    const top = formatHelp();
    for (const command of Object.keys(COMMANDS)) assert.ok(top.includes(`  ${command}  `) || top.includes(`  ${command} `), command);
    for (const [name, spec] of Object.entries(FLAGS)) {
      const listed = top.includes(`--${name}`);
      assert.equal(listed, !('commands' in spec), `--${name} in the top help: ${listed}`);
    }
    for (const command of Object.keys(COMMANDS) as CommandName[]) {
      const text = formatHelp(command);
      assert.ok(text.startsWith(`usage: roster ${command}`), text);
      for (const arg of COMMANDS[command].args) assert.ok(text.includes(arg));
      for (const [name, spec] of Object.entries(FLAGS)) {
        const own = !('commands' in spec) || (spec.commands as readonly string[]).includes(command);
        assert.equal(text.includes(`--${name}`), own, `--${name} in roster ${command} --help`);
      }
    }
    assert.ok(top.includes('exit codes'));
  });
});

describe('exit codes', () => {
  it('maps every failure to the one table: 1 cluster or broker, 2 usage, 3 not found', () => {
    const expected: Record<CliErrorCode, number> = {
      usage: EXIT_CODES.usage,
      not_found: EXIT_CODES.notFound,
      broker_unreachable: EXIT_CODES.failure,
      wrong_secret: EXIT_CODES.failure,
      no_nodes: EXIT_CODES.failure,
      cluster: EXIT_CODES.failure,
      listen_failed: EXIT_CODES.failure,
    };
    for (const [code, status] of Object.entries(expected)) assert.equal(exitCodeFor(code as CliErrorCode), status, code);
    assert.deepEqual([EXIT_CODES.ok, EXIT_CODES.failure, EXIT_CODES.usage, EXIT_CODES.notFound], [0, 1, 2, 3]);
    assert.ok(Object.isFrozen(EXIT_CODES));
  });
});
