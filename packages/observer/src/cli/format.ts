/**
 * How `roster` prints: a plain-text table for people, or JSON for scripts
 * (`--json`), and the help text, all from the commands' data and the flag
 * tables. Pure functions returning strings; bin.ts writes them out.
 */
import type { CommandResult, NamesResult, NodesResult, ProcessesResult, WhereisResult } from './commands/types.js';
import { COMMANDS, FLAGS, type CommandName, type FlagSpec } from './flags.js';

/** One column of a table: its header, how a row fills it, and which side it leans to. */
export interface Column<Row> {
  readonly header: string;
  readonly cell: (row: Row) => string;
  /** Numbers lean right. Default left. */
  readonly align?: 'left' | 'right';
}

/** A control character would break a table's lines: it is shown escaped. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A table: a header line, then one line per row, columns two spaces apart
 * and as wide as their widest cell; no trailing spaces. An empty `rows`
 * gives the header alone.
 */
export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = rows.map((row) => columns.map((column) => printable(column.cell(row))));
  const widths = columns.map((column, index) => Math.max(column.header.length, ...cells.map((line) => line[index]!.length)));
  const line = (values: readonly string[]): string =>
    values
      .map((value, index) => (columns[index]!.align === 'right' ? value.padStart(widths[index]!) : value.padEnd(widths[index]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map(line)].join('\n') + '\n';
}

/** A global name as it is printed: its JSON (names are JSON values: `"counter"`, `["job",7]`). */
export function formatName(name: unknown): string {
  return JSON.stringify(name) ?? String(name);
}

const NODE_COLUMNS: readonly Column<NodesResult['nodes'][number]>[] = [
  { header: 'NODE', cell: (row) => row.node },
  { header: 'ROLE', cell: (row) => row.role },
  { header: 'CREATION', cell: (row) => row.creation },
  { header: 'NAMES', cell: (row) => String(row.names), align: 'right' },
  { header: 'DROPPED', cell: (row) => (row.dropped === null ? '-' : String(row.dropped.frames + row.dropped.registry)), align: 'right' },
  { header: 'REG OPS', cell: (row) => (row.registryOps === null ? '-' : String(row.registryOps.register + row.registryOps.unregister)), align: 'right' },
];

const NAME_COLUMNS: readonly Column<NamesResult['names'][number]>[] = [
  { header: 'NAME', cell: (row) => formatName(row.name) },
  { header: 'NODE', cell: (row) => row.node },
  { header: 'PID', cell: (row) => row.pid },
  { header: 'EPOCH', cell: (row) => row.epoch ?? '-' },
];

const WHEREIS_COLUMNS: readonly Column<WhereisResult>[] = NAME_COLUMNS as readonly Column<WhereisResult>[];

const PROCESS_COLUMNS: readonly Column<ProcessesResult['processes'][number]>[] = [
  { header: 'PID', cell: (row) => row.pid },
  { header: 'NAME', cell: (row) => row.name ?? '-' },
  { header: 'KIND', cell: (row) => row.kind },
  { header: 'MAILBOX', cell: (row) => String(row.mailboxLength), align: 'right' },
  { header: 'MESSAGES IN', cell: (row) => String(row.messagesIn), align: 'right' },
];

/** A command's result as JSON (`--json`): one document, two-space indented, ending in a line break. */
export function renderJson(result: CommandResult): string {
  const { command: _command, ...data } = result;
  return JSON.stringify(data, null, 2) + '\n';
}

/** A command's result as people read it. */
export function renderText(result: CommandResult): string {
  switch (result.command) {
    case 'nodes':
      return renderTable(NODE_COLUMNS, result.nodes);
    case 'names':
      return renderTable(NAME_COLUMNS, result.names);
    case 'whereis':
      return renderTable(WHEREIS_COLUMNS, [result]);
    case 'processes':
      return (
        renderTable(PROCESS_COLUMNS, result.processes) +
        (result.omitted > 0 ? `(${result.omitted} more process${result.omitted === 1 ? '' : 'es'} left out: the node lists those with the longest mailboxes)\n` : '')
      );
    case 'observe':
      return `observer running at ${result.url} (Ctrl-C to stop)\n`;
  }
}

/** A command's result: {@link renderJson} with `json`, else {@link renderText}. */
export function render(result: CommandResult, json: boolean): string {
  return json ? renderJson(result) : renderText(result);
}

function flagLines(names: readonly string[]): string[] {
  const entries = names.map((name) => {
    const spec = (FLAGS as Record<string, FlagSpec>)[name]!;
    const left = `${spec.short === undefined ? '    ' : `-${spec.short}, `}--${name}${spec.value === undefined ? '' : ` ${spec.value}`}`;
    return [left, spec.description] as const;
  });
  const width = Math.max(...entries.map(([left]) => left.length));
  return entries.map(([left, description]) => `  ${left.padEnd(width)}  ${description}`);
}

function usageLine(command: CommandName): string {
  const args = COMMANDS[command].args.join(' ');
  const own = Object.entries(FLAGS as Record<string, FlagSpec>)
    .filter(([, spec]) => spec.commands?.includes(command))
    .map(([name, spec]) => `[--${name}${spec.value === undefined ? '' : ` ${spec.value}`}]`);
  return ['roster', command, ...own, ...(args === '' ? [] : [args]), '[options]'].join(' ');
}

/** `roster --help` (no command) or `roster <command> --help`. */
export function formatHelp(command?: CommandName): string {
  const common = Object.entries(FLAGS as Record<string, FlagSpec>)
    .filter(([, spec]) => spec.commands === undefined)
    .map(([name]) => name);
  if (command === undefined) {
    const names = Object.keys(COMMANDS) as CommandName[];
    const width = Math.max(...names.map((name) => name.length));
    return [
      'roster: look at a roster cluster over RabbitMQ, as a watching node (an observer: it never votes and holds no names)',
      '',
      'usage: roster <command> [options]',
      '',
      'commands:',
      ...names.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name].summary}`),
      '',
      'options:',
      ...flagLines(common),
      '',
      'exit codes: 0 done, 1 broker or cluster failure, 2 usage, 3 not found (whereis, or an unknown node)',
      'roster <command> --help tells more of one command.',
      '',
    ].join('\n');
  }
  const spec = COMMANDS[command] as { readonly summary: string; readonly details?: readonly string[] };
  const own = Object.entries(FLAGS as Record<string, FlagSpec>)
    .filter(([, flag]) => flag.commands?.includes(command))
    .map(([name]) => name);
  return [
    `usage: ${usageLine(command)}`,
    '',
    spec.summary,
    ...(spec.details ?? []),
    '',
    ...(own.length === 0 ? [] : [`options of roster ${command}:`, ...flagLines(own), '']),
    'options:',
    ...flagLines(common),
    '',
  ].join('\n');
}
