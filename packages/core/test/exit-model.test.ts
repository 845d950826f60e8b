/**
 * Model test of links, monitors and exit signals: random programs over a small
 * pool of long-lived probe processes are run against the real runtime and
 * against a small pure model of Erlang's rules, and after every command the
 * two must agree on who is alive, why the dead died, and exactly which EXIT
 * and DOWN messages each process has received.
 *
 * Reproduce a failure with ROSTER_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Node, isDownMessage, isExitMessage, type ExitReason, type Pid, type Process } from '@roster/core';
import { deferred, within } from './helpers.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

const MAX_POOL = 6;

type ReasonName = 'normal' | 'kill' | 'shutdown' | 'custom';
type Command =
  | { readonly k: 'spawn' }
  | { readonly k: 'link' | 'unlink' | 'monitor'; readonly a: number; readonly b: number }
  | { readonly k: 'trap'; readonly a: number; readonly on: boolean }
  | { readonly k: 'exit'; readonly a: number; readonly b: number; readonly reason: ReasonName }
  | { readonly k: 'crash'; readonly a: number }
  | { readonly k: 'selfExit'; readonly a: number; readonly reason: ReasonName };

/** The real reason a command uses: the atoms as strings, and a structured custom term. */
const CUSTOM = Object.freeze({ custom: 'reason' });
const realReason = (name: ReasonName): ExitReason => (name === 'custom' ? CUSTOM : name);

/** One comparable string per reason: atoms as themselves, errors by message, terms as JSON. */
function encode(reason: ExitReason): string {
  if (typeof reason === 'string') return reason;
  if (reason instanceof Error) return `error:${reason.message}`;
  return JSON.stringify(reason);
}

// ---- the model ------------------------------------------------------------------

/** Erlang's rules for links, monitors and exit signals, over process indices. */
class Model {
  readonly alive: boolean[] = [];
  readonly trapping: boolean[] = [];
  readonly exitReason: (string | undefined)[] = [];
  readonly records: string[][] = [];
  links = new Set<string>();
  monitors: { readonly watcher: number; readonly target: number }[] = [];
  /** Messages delivered during the current command; a process that dies before reading them records nothing. */
  #pending = new Map<number, string[]>();

  spawn(): number {
    this.alive.push(true);
    this.trapping.push(false);
    this.exitReason.push(undefined);
    this.records.push([]);
    return this.alive.length - 1;
  }

  static linkKey(a: number, b: number): string {
    return a < b ? `${a},${b}` : `${b},${a}`;
  }

  #deliver(to: number, record: string): void {
    let list = this.#pending.get(to);
    if (list === undefined) this.#pending.set(to, (list = []));
    list.push(record);
  }

  /** `root` exits with `reason`; the exit spreads along links to processes that do not trap exits. */
  #die(root: number, reason: string): void {
    const queue = [root];
    while (queue.length > 0) {
      const x = queue.shift()!;
      if (!this.alive[x]) continue;
      this.alive[x] = false;
      this.exitReason[x] = reason;
      this.monitors = this.monitors.filter((m) => m.watcher !== x);
      for (const key of [...this.links]) {
        const [i, j] = key.split(',').map(Number) as [number, number];
        if (i !== x && j !== x) continue;
        this.links.delete(key);
        const y = i === x ? j : i;
        if (!this.alive[y]) continue;
        if (this.trapping[y]) this.#deliver(y, `EXIT ${x} ${reason}`);
        else if (reason !== 'normal') queue.push(y);
      }
      for (const m of this.monitors.filter((m) => m.target === x)) {
        if (this.alive[m.watcher]) this.#deliver(m.watcher, `DOWN ${x} ${reason}`);
      }
      this.monitors = this.monitors.filter((m) => m.target !== x);
    }
  }

  apply(command: Command, crashMessage: string): void {
    switch (command.k) {
      case 'spawn':
        this.spawn();
        break;
      case 'link': {
        const { a, b } = command;
        if (a === b) break;
        if (this.alive[b]) this.links.add(Model.linkKey(a, b));
        else if (this.trapping[a]) this.#deliver(a, `EXIT ${b} noproc`);
        else this.#die(a, 'noproc');
        break;
      }
      case 'unlink':
        this.links.delete(Model.linkKey(command.a, command.b));
        break;
      case 'monitor':
        if (this.alive[command.b]) this.monitors.push({ watcher: command.a, target: command.b });
        else this.#deliver(command.a, `DOWN ${command.b} noproc`);
        break;
      case 'trap':
        this.trapping[command.a] = command.on;
        break;
      case 'exit': {
        const { a, b, reason } = command;
        if (!this.alive[b]) break;
        if (reason === 'kill') this.#die(b, 'killed');
        else if (this.trapping[b]) this.#deliver(b, `EXIT ${a} ${encode(realReason(reason))}`);
        else if (reason !== 'normal') this.#die(b, encode(realReason(reason)));
        else if (a === b) this.#die(b, 'normal'); // exit(self(), normal) ends the caller
        break;
      }
      case 'crash':
        this.#die(command.a, `error:${crashMessage}`);
        break;
      case 'selfExit':
        this.#die(command.a, encode(realReason(command.reason)));
        break;
    }
    for (const [to, list] of this.#pending) if (this.alive[to]) this.records[to]!.push(...list);
    this.#pending.clear();
  }
}

// ---- the real thing ----------------------------------------------------------------

class Run {
  constructor(
    readonly command: Command,
    readonly crashMessage: string,
    readonly done: () => void,
  ) {}
}

class Sync {
  constructor(readonly done: () => void) {}
}

interface Slot {
  readonly pid: Pid;
  readonly records: string[];
  readonly exited: Promise<ExitReason>;
  exitReason: ExitReason | undefined;
}

/** The probes of one program on `node`, executing commands themselves. */
class System {
  readonly slots: Slot[] = [];
  readonly #indexOf = new Map<string, number>();

  constructor(readonly node: Node) {}

  spawn(): void {
    const records: string[] = [];
    const exited = deferred<ExitReason>();
    const pid = this.node.spawn((self) => this.#probe(self, records));
    this.#indexOf.set(pid.key, this.slots.length);
    const slot: Slot = { pid, records, exited: exited.promise, exitReason: undefined };
    this.node.watchExit(pid, (reason) => {
      slot.exitReason = reason;
      exited.resolve(reason);
    });
    this.slots.push(slot);
  }

  #who(pid: Pid | undefined): string {
    return pid === undefined ? 'undefined' : String(this.#indexOf.get(pid.key) ?? pid.key);
  }

  async #probe(self: Process, records: string[]): Promise<void> {
    const refs = new Set<string>();
    for (;;) {
      const message = await self.receive();
      if (isExitMessage(message)) {
        records.push(`EXIT ${this.#who(message.from)} ${encode(message.reason)}`);
      } else if (isDownMessage(message)) {
        // Every DOWN must be for a monitor this process placed, and come once.
        const known = refs.delete(message.ref.key);
        records.push(`DOWN ${this.#who(message.pid)} ${encode(message.reason)}${known ? '' : ' (unknown or repeated ref)'}`);
      } else if (message instanceof Sync) {
        message.done();
      } else if (message instanceof Run) {
        this.#execute(self, message, refs);
        message.done();
      }
    }
  }

  #execute(self: Process, { command, crashMessage }: Run, refs: Set<string>): void {
    const pidOf = (index: number): Pid => this.slots[index]!.pid;
    switch (command.k) {
      case 'link':
        self.link(pidOf(command.b));
        break;
      case 'unlink':
        self.unlink(pidOf(command.b));
        break;
      case 'monitor':
        refs.add(self.monitor(pidOf(command.b)).key);
        break;
      case 'trap':
        self.trapExit(command.on);
        break;
      case 'exit':
        self.exit(pidOf(command.b), realReason(command.reason));
        break;
      case 'crash':
        throw new Error(crashMessage);
      case 'selfExit':
        self.exit(realReason(command.reason));
      // falls through: self.exit never returns
      case 'spawn':
        break;
    }
  }

  /** Has process `a` run `command`; resolves once it has, or once it died of it. */
  async run(command: Command, crashMessage: string): Promise<void> {
    if (command.k === 'spawn') {
      this.spawn();
      return;
    }
    const slot = this.slots[command.a]!;
    const done = deferred();
    this.node.send(slot.pid, new Run(command, crashMessage, () => done.resolve()));
    await within(Promise.race([done.promise, slot.exited]), `process ${command.a} to run ${JSON.stringify(command)}`);
  }

  /**
   * Waits until every live probe has read everything sent to it: signals act
   * synchronously, so after the command only mailbox reading is left, and a
   * sync message round trip (twice, for good measure) covers it.
   */
  async quiesce(): Promise<void> {
    for (let round = 0; round < 2; round++) {
      for (const [index, slot] of this.slots.entries()) {
        if (!this.node.isAlive(slot.pid)) continue;
        const done = deferred();
        this.node.send(slot.pid, new Sync(() => done.resolve()));
        await within(done.promise, `a sync round trip through process ${index}`);
      }
    }
  }

  killAll(): void {
    for (const slot of this.slots) if (this.node.isAlive(slot.pid)) this.node.exit(slot.pid, 'kill');
  }
}

// ---- commands ------------------------------------------------------------------------

const index = fc.nat({ max: MAX_POOL - 1 });
const reasonName = fc.constantFrom<ReasonName>('normal', 'kill', 'shutdown', 'custom');
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ k: 'spawn' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('link' as const), a: index, b: index }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unlink' as const), a: index, b: index }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('monitor' as const), a: index, b: index }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('trap' as const), a: index, on: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('exit' as const), a: index, b: index, reason: reasonName }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('crash' as const), a: index }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('selfExit' as const), a: index, reason: reasonName }) },
);

/**
 * Maps a generated command onto the current pool: the acting process `a` is
 * one of the live ones (only a live process can act), the target `b` any
 * process, dead ones included. Undefined when the command cannot run.
 */
function resolve(command: Command, model: Model): Command | undefined {
  if (command.k === 'spawn') return model.alive.length < MAX_POOL ? command : undefined;
  const live = model.alive.flatMap((alive, i) => (alive ? [i] : []));
  if (live.length === 0) return undefined;
  const a = live[command.a % live.length]!;
  if ('b' in command) return { ...command, a, b: command.b % model.alive.length };
  return { ...command, a };
}

function compare(model: Model, system: System, history: readonly Command[]): void {
  const where = (): string => `after ${history.map((c) => JSON.stringify(c)).join(' ; ')}`;
  for (const [i, slot] of system.slots.entries()) {
    const alive = system.node.isAlive(slot.pid);
    assert.equal(alive, model.alive[i], `process ${i} alive: runtime ${alive}, model ${model.alive[i]} ${where()}`);
    if (!alive) {
      assert.equal(slot.exitReason === undefined ? undefined : encode(slot.exitReason), model.exitReason[i], `exit reason of ${i} ${where()}`);
    }
    assert.deepEqual([...slot.records].sort(), [...model.records[i]!].sort(), `EXIT/DOWN received by ${i} ${where()}`);
  }
}

describe('exit model', () => {
  let node: Node;
  before(async () => {
    node = await Node.start({ name: 'exit-model', logLevel: 'silent' });
  });
  after(async () => {
    await node.stop();
  });

  test('random programs of links, monitors, traps and exits agree with the Erlang model', async () => {
    let program = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 4 }), fc.array(commandArb, { minLength: 1, maxLength: 30 }), async (initial, commands) => {
        program++;
        const model = new Model();
        const system = new System(node);
        const history: Command[] = [];
        try {
          for (let i = 0; i < initial; i++) {
            model.spawn();
            system.spawn();
          }
          for (const [step, generated] of commands.entries()) {
            const command = resolve(generated, model);
            if (command === undefined) continue;
            history.push(command);
            const crashMessage = `crash ${program}.${step}`;
            model.apply(command, crashMessage);
            await system.run(command, crashMessage);
            await system.quiesce();
            compare(model, system, history);
          }
        } finally {
          system.killAll();
        }
      }),
      { numRuns: 100, ...fcParams },
    );
  });

  test('the model itself: a crash spreads along links, stops at trapping processes, and fires monitors', () => {
    const model = new Model();
    for (let i = 0; i < 4; i++) model.spawn();
    model.apply({ k: 'link', a: 0, b: 1 }, '');
    model.apply({ k: 'link', a: 1, b: 2 }, '');
    model.apply({ k: 'trap', a: 2, on: true }, '');
    model.apply({ k: 'monitor', a: 3, b: 1 }, '');
    model.apply({ k: 'crash', a: 0 }, 'boom');
    assert.deepEqual(model.alive, [false, false, true, true]);
    assert.deepEqual(model.records[2], ['EXIT 1 error:boom']);
    assert.deepEqual(model.records[3], ['DOWN 1 error:boom']);
    model.apply({ k: 'exit', a: 3, b: 2, reason: 'kill' }, '');
    assert.equal(model.exitReason[2], 'killed');
  });
});
