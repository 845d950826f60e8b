/**
 * Every flag and command of `roster` in two const tables, and the one
 * function that reads a command line against them (`node:util` parseArgs,
 * without its own strict mode so that every refusal names the culprit in
 * roster's words). No I/O: the help text and the checks both read the tables.
 */
import { parseArgs } from 'node:util';
import { usageError } from './errors.js';

/** The commands of `roster`. */
export type CommandName = 'nodes' | 'names' | 'whereis' | 'processes' | 'observe';

/** One flag: its parseArgs type, and what `--help` says of it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** May be given more than once (the values are collected in order). */
  readonly multiple?: boolean;
  /** The placeholder of its value in `--help` (string flags). */
  readonly value?: string;
  readonly description: string;
  /** The commands that take it; absent: every command. */
  readonly commands?: readonly CommandName[];
}

/** The flags, by long name. */
export const FLAGS = Object.freeze({
  url: {
    type: 'string',
    multiple: true,
    value: 'URL',
    description: 'broker URL, amqp://user:pass@host:port/vhost; repeat it or separate with commas for a list tried in turn (env AMQP_URL)',
  },
  cluster: { type: 'string', value: 'ID', description: 'the cluster id (env ROSTER_CLUSTER; default roster)' },
  'secret-file': {
    type: 'string',
    value: 'PATH',
    description: "a file holding the cluster's shared secret (env ROSTER_SECRET_FILE, or the secret itself in ROSTER_SECRET); never given on the command line",
  },
  timeout: { type: 'string', value: 'MS', description: 'how long to wait for the broker, for the cluster to answer, and for a node (default 5000)' },
  json: { type: 'boolean', description: 'print JSON for scripts instead of a table' },
  node: { type: 'string', value: 'NODE', description: 'only the names held by processes of NODE', commands: ['names'] },
  port: { type: 'string', value: 'PORT', description: 'the port the observer listens on (default 0: any free port)', commands: ['observe'] },
  host: { type: 'string', value: 'HOST', description: 'the address the observer listens on (default 127.0.0.1)', commands: ['observe'] },
  'token-file': {
    type: 'string',
    value: 'PATH',
    description: 'a file holding a token the page and /metrics then require (env ROSTER_OBSERVER_TOKEN); needed to listen beyond loopback',
    commands: ['observe'],
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
} as const satisfies Record<string, FlagSpec>);

export type FlagName = keyof typeof FLAGS;

/** One command: its positional arguments and what `--help` says of it. */
export interface CommandSpec {
  /** Placeholders of the positional arguments, all required. */
  readonly args: readonly string[];
  readonly summary: string;
  /** More lines for `roster <command> --help`. */
  readonly details?: readonly string[];
}

/** The commands, in the order `--help` lists them. */
export const COMMANDS = Object.freeze({
  nodes: { args: [], summary: 'the live members of the cluster: role, incarnation, global names held, drops, own registry operations' },
  names: { args: [], summary: 'every global name: name (as JSON), node, pid, epoch' },
  whereis: {
    args: ['NAME'],
    summary: 'the process holding one global name',
    details: [
      'NAME is read as JSON when it parses (42, true, ["job",7], "42"), else taken as a string: `roster whereis counter`.',
      'Exit 3 when nobody holds it.',
    ],
  },
  processes: { args: ['NODE'], summary: 'the processes of one node: pid, name, kind, mailbox length, messages in' },
  observe: { args: [], summary: 'start the observer page against the cluster, print its URL, run until Ctrl-C' },
} as const satisfies Record<CommandName, CommandSpec>);

/** Flag values as parsed: strings stay strings (config.ts checks and converts them). */
export interface ParsedFlags {
  readonly url?: readonly string[];
  readonly cluster?: string;
  readonly 'secret-file'?: string;
  readonly timeout?: string;
  readonly json?: boolean;
  readonly node?: string;
  readonly port?: string;
  readonly host?: string;
  readonly 'token-file'?: string;
}

/** What a command line asks for. */
export type CommandLine =
  /** `roster --help`, `roster help`, `roster <command> --help`, `roster help <command>`. */
  | { readonly kind: 'help'; readonly command?: CommandName }
  | { readonly kind: 'run'; readonly command: CommandName; readonly args: readonly string[]; readonly flags: ParsedFlags };

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

function isFlag(name: string): name is FlagName {
  return Object.hasOwn(FLAGS, name);
}

const COMMAND_LIST = Object.keys(COMMANDS).join(', ');

/**
 * Reads `argv` (without the node and script paths). Throws a `CliError`
 * with code `usage` naming the unknown command, the unknown flag, the flag
 * given to a command that does not take it, the flag without its value, or
 * the missing or extra argument.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(FLAGS) as [FlagName, FlagSpec][]) {
    options[name] = { type: spec.type, ...(spec.short === undefined ? {} : { short: spec.short }), ...(spec.multiple ? { multiple: true } : {}) };
  }
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const positionals: string[] = [];
  const given: { name: FlagName; raw: string }[] = [];
  const values: Record<string, string | boolean | string[]> = {};
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind !== 'option') continue;
    const raw = token.rawName;
    if (!isFlag(token.name)) {
      if (token.name === 'secret') throw usageError(`unknown flag ${raw}: a secret is never taken on the command line (ps would show it); use --secret-file PATH or ROSTER_SECRET`);
      throw usageError(`unknown flag ${raw} (try roster --help)`);
    }
    const spec: FlagSpec = FLAGS[token.name];
    if (spec.type === 'string') {
      if (typeof token.value !== 'string') throw usageError(`flag ${raw} needs a value (${raw} ${spec.value ?? 'VALUE'})`);
      if (spec.multiple) values[token.name] = [...((values[token.name] as string[] | undefined) ?? []), token.value];
      else if (values[token.name] !== undefined) throw usageError(`flag ${raw} given twice`);
      else values[token.name] = token.value;
    } else {
      if (token.inlineValue === true) throw usageError(`flag ${raw} takes no value`);
      values[token.name] = true;
    }
    given.push({ name: token.name, raw });
  }

  const [first, ...rest] = positionals;
  const wantsHelp = values['help'] === true;
  if (first === 'help') {
    if (rest.length > 1) throw usageError(`unexpected argument ${JSON.stringify(rest[1])} for roster help`);
    const topic = rest[0];
    if (topic === undefined) return { kind: 'help' };
    if (!isCommand(topic)) throw usageError(`unknown command ${JSON.stringify(topic)} (commands: ${COMMAND_LIST})`);
    return { kind: 'help', command: topic };
  }
  if (first === undefined) {
    if (wantsHelp) return { kind: 'help' };
    throw usageError(`no command given (commands: ${COMMAND_LIST}; try roster --help)`);
  }
  if (!isCommand(first)) throw usageError(`unknown command ${JSON.stringify(first)} (commands: ${COMMAND_LIST})`);
  const command = first;
  for (const { name, raw } of given) {
    const only: readonly CommandName[] | undefined = (FLAGS[name] as FlagSpec).commands;
    if (only !== undefined && !only.includes(command)) throw usageError(`flag ${raw} is not a flag of roster ${command} (it is one of roster ${only.join(', ')})`);
  }
  if (wantsHelp) return { kind: 'help', command };
  const wanted: readonly string[] = COMMANDS[command].args;
  if (rest.length < wanted.length) throw usageError(`roster ${command} needs ${wanted.slice(rest.length).join(' ')} (roster ${command} ${wanted.join(' ')})`);
  if (rest.length > wanted.length) throw usageError(`unexpected argument ${JSON.stringify(rest[wanted.length])} for roster ${command}`);
  delete values['help'];
  return { kind: 'run', command, args: rest, flags: values as ParsedFlags };
}
