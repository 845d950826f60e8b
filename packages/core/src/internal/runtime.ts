import type { Logger } from 'pino';
import { describeDest, isVia, type Dest } from '../dest.js';
import type { Distribution, DistributionHost, SignalKind } from '../distribution.js';
import { BadArgError, CallError, NodeStoppedError } from '../errors.js';
import type { ExitReason } from '../exit-reason.js';
import { LocalRegistry } from '../local-registry.js';
import { Pid, Ref } from '../pid.js';
import type { CallOptions, ProcessBody, SpawnOptions } from '../process.js';
import type { NameRegistry } from '../registry.js';
import { DeadlineQueues, type Expirable } from './deadlines.js';
import { RuntimeCounters, type SnapshotSource } from './introspect.js';
import { Proc, type Endpoint, type ExitHook, type Key, type ProcessHost, type Watch } from './process.js';
import { NodeMonitors } from './node-monitors.js';
import { Scheduler } from './scheduler.js';
import { isCallMessage, type CallMessage, type ReplyMessage, type StopMessage, type WhereisMessage } from './signals.js';

export const DEFAULT_CALL_TIMEOUT = 5000;

/** One local call in this many has its latency sampled (calls to other nodes all do). */
export const LOCAL_CALL_SAMPLE = 16;
/** `ReplyPort.timed` of a call whose latency is not sampled. */
const UNTIMED_CALL = -1;

const PAGE_SIZE = 1024;

class TablePage {
  readonly slots: (Endpoint | undefined)[] = new Array<Endpoint | undefined>(PAGE_SIZE).fill(undefined);
  live = 0;
}

/**
 * A node's endpoints (processes and reply ports) by pid id. Every spawn and
 * every call adds one and removes it again, so this is a hot structure: ids
 * are handed out in order, so the table is kept in pages of consecutive ids
 * (array slots) and a page goes once it has emptied and ids have moved past
 * it. Cheaper than a Map, whose deletions leave tombstones and rehashes.
 * Iterates in id order, which is creation order, like the Map it replaces.
 */
export class ProcessTable {
  readonly #pages = new Map<number, TablePage>();
  /** The highest page: ids are still being handed out from it, so it stays even when empty. */
  #top = -1;
  #topPage: TablePage | undefined;
  /** The other page used last (a long-lived server's, say), to spare a Map lookup. */
  #lastNumber = -1;
  #lastPage: TablePage | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #page(number: number): TablePage | undefined {
    if (number === this.#top) return this.#topPage;
    if (number === this.#lastNumber) return this.#lastPage;
    const page = this.#pages.get(number);
    if (page !== undefined) {
      this.#lastNumber = number;
      this.#lastPage = page;
    }
    return page;
  }

  get(id: number): Endpoint | undefined {
    const number = Math.floor(id / PAGE_SIZE);
    return this.#page(number)?.slots[id - number * PAGE_SIZE];
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, endpoint: Endpoint): this {
    const number = Math.floor(id / PAGE_SIZE);
    let page = this.#page(number);
    if (page === undefined) {
      page = new TablePage();
      this.#pages.set(number, page);
      if (number > this.#top) {
        // The old top page emptied while it was still the top: it goes now.
        if (this.#topPage !== undefined && this.#topPage.live === 0) this.#drop(this.#top);
        this.#top = number;
        this.#topPage = page;
      }
    }
    const slot = id - number * PAGE_SIZE;
    if (page.slots[slot] === undefined) {
      page.live++;
      this.#size++;
    }
    page.slots[slot] = endpoint;
    return this;
  }

  delete(id: number): boolean {
    const number = Math.floor(id / PAGE_SIZE);
    const page = this.#page(number);
    if (page === undefined) return false;
    const slot = id - number * PAGE_SIZE;
    if (page.slots[slot] === undefined) return false;
    page.slots[slot] = undefined;
    this.#size--;
    if (--page.live === 0 && number < this.#top) this.#drop(number);
    return true;
  }

  #drop(number: number): void {
    this.#pages.delete(number);
    if (this.#lastNumber === number) {
      this.#lastNumber = -1;
      this.#lastPage = undefined;
    }
  }

  *values(): IterableIterator<Endpoint> {
    for (const page of this.#pages.values()) {
      for (const endpoint of page.slots) if (endpoint !== undefined) yield endpoint;
    }
  }
}

/**
 * The engine behind a `Node`: the process table, routing, signals and calls.
 * Kept out of the public API; `Node` is its facade.
 */
export class Runtime implements DistributionHost, ProcessHost, SnapshotSource {
  readonly table = new ProcessTable();
  readonly counters = new RuntimeCounters();
  readonly scheduler: Scheduler;
  readonly localNames = new LocalRegistry();
  readonly registries = new Map<string, NameRegistry>();
  readonly deadlines = new DeadlineQueues();
  readonly nodeMonitors = new NodeMonitors();
  readonly rootPid: Pid;
  distribution: Distribution | undefined;
  alive = true;
  #nextId = 1;
  #nextRef = 1;
  /** Local calls made, for sampling their latency. */
  #callSample = 0;
  /** `Date.now()` as of this event-loop turn's first spawn; 0 until a spawn reads it again. */
  #spawnStamp = 0;
  #signals: { target: Proc; from: Pid; reason: ExitReason; kind: SignalKind }[] = [];
  #flushingSignals = false;

  constructor(
    /** The Node this runtime serves (named through the contract: node.ts imports this module). */
    readonly node: DistributionHost['node'],
    readonly name: string,
    readonly creation: string,
    readonly logger: Logger,
    scheduler: { readonly budget?: number; readonly batch?: number } = {},
  ) {
    this.scheduler = new Scheduler(scheduler.budget, scheduler.batch);
    this.rootPid = new Pid(name, creation, 0);
  }

  // ---- identity -------------------------------------------------------------

  isLocal(pid: Pid): boolean {
    return pid.node === this.name && pid.creation === this.creation;
  }

  localEndpoint(pid: Pid): Endpoint | undefined {
    return pid.node === this.name && pid.creation === this.creation ? this.table.get(pid.id) : undefined;
  }

  localProc(pid: Pid): Proc | undefined {
    const endpoint = this.localEndpoint(pid);
    return endpoint instanceof Proc ? endpoint : undefined;
  }

  makeRef(): Ref {
    return new Ref(this.name, this.creation, this.#nextRef++);
  }

  /** A Map key for `ref`: its number when this node made it (no string to build), else its string form. */
  refKey(ref: Ref): Key {
    return ref.node === this.name && ref.creation === this.creation ? ref.id : ref.key;
  }

  /** A Map key for `pid`: its number when it is local, else its string form. */
  pidKey(pid: Pid): Key {
    return pid.node === this.name && pid.creation === this.creation ? pid.id : pid.key;
  }

  nextPid(): Pid {
    return new Pid(this.name, this.creation, this.#nextId++);
  }

  // ---- processes --------------------------------------------------------------

  /** A process that exists but runs nothing yet (GenServers start this way). */
  createProcess(parent: Proc | undefined, link: boolean): Proc {
    if (!this.alive) throw new NodeStoppedError(`node ${this.name} is stopped`);
    const proc = new Proc(this, this.nextPid());
    this.table.set(proc.pid.id, proc);
    this.counters.spawned++;
    proc.startedAt = this.#spawnTime();
    if (parent === undefined) {
      proc.parent = this.rootPid;
    } else if (link) {
      proc.parent = parent.pid;
      parent.link(proc.pid);
    }
    return proc;
  }

  spawn(body: ProcessBody, options: SpawnOptions | undefined, parent: Proc | undefined): Pid {
    if (typeof body !== 'function') throw new TypeError(`spawn: body must be a function, got ${typeof body}`);
    if (options?.link === true && parent === undefined) {
      throw new BadArgError('spawn: link needs a parent process; use self.spawnLink inside a process');
    }
    const proc = this.createProcess(parent, options?.link === true);
    if (options?.trapExit === true) proc.trapping = true;
    if (options?.name !== undefined) {
      try {
        this.registerLocal(options.name, proc.pid);
      } catch (error) {
        proc.terminate('normal');
        throw error;
      }
    }
    // The scheduler runs the body in its turn (a dead process never runs it).
    proc.start(body);
    return proc.pid;
  }

  /**
   * The wall clock for a new process's `startedAt`, read once per event-loop
   * turn that spawns (the clock costs as much as a spawn on some machines):
   * processes spawned in one turn share its first spawn's time.
   */
  #spawnTime(): number {
    if (this.#spawnStamp === 0) {
      this.#spawnStamp = Date.now();
      setImmediate(this.#clearSpawnStamp);
    }
    return this.#spawnStamp;
  }

  readonly #clearSpawnStamp = (): void => {
    this.#spawnStamp = 0;
  };

  forget(proc: Proc): void {
    this.table.delete(proc.pid.id);
    this.counters.exited++;
  }

  // ---- introspection (SnapshotSource) ---------------------------------------------

  endpoints(): Iterable<Endpoint> {
    return this.table.values();
  }

  localNameOf(pid: Pid): string | undefined {
    return this.localNames.stringNameOf(pid);
  }

  registeredNames(): string[] {
    return this.localNames.registered() as string[];
  }

  watchExit(pid: Pid, hook: ExitHook): (() => void) | undefined {
    const proc = this.localProc(pid);
    return proc?.alive === true ? proc.onExit(hook) : undefined;
  }

  // ---- names ------------------------------------------------------------------

  registerLocal(name: string, pid: Pid): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`register: name must be a non-empty string, got ${typeof name === 'string' ? '""' : typeof name}`);
    }
    if (!this.localNames.register(name, pid)) {
      throw new BadArgError(`register: ${JSON.stringify(name)} is already registered to ${this.localNames.whereisName(name)?.key}`);
    }
  }

  registry(key: string): NameRegistry {
    const registry = this.registries.get(key);
    if (registry === undefined) throw new BadArgError(`no registry is installed under ${JSON.stringify(key)}`);
    return registry;
  }

  /** The pid `dest` names now, or undefined. Throws for a malformed destination. */
  resolve(dest: Dest): Pid | undefined {
    if (dest instanceof Pid) return dest;
    if (typeof dest === 'string') return this.localNames.whereisName(dest);
    if (isVia(dest)) return this.registry(dest.via).whereisName(dest.name);
    throw new BadArgError(`not a destination: ${describeDest(dest)}`);
  }

  // ---- messages ---------------------------------------------------------------

  send(dest: Dest, message: unknown, from: Pid): void {
    if (dest instanceof Pid) {
      this.route(from, dest, message);
    } else if (typeof dest === 'string') {
      const pid = this.localNames.whereisName(dest);
      if (pid === undefined) throw new BadArgError(`send: no process is registered as ${JSON.stringify(dest)}`);
      this.route(from, pid, message);
    } else if (isVia(dest)) {
      this.registry(dest.via).send(dest.name, message);
    } else {
      throw new BadArgError(`send: not a destination: ${describeDest(dest)}`);
    }
  }

  route(from: Pid | undefined, to: Pid, message: unknown): void {
    this.counters.messagesOut++;
    if (to.node === this.name && to.creation === this.creation) {
      this.table.get(to.id)?.deliver(message);
    } else {
      this.distribution?.send(from, to, message);
    }
  }

  cast(dest: Dest, request: unknown, from: Pid): void {
    try {
      this.send(dest, { type: '$gen_cast', request }, from);
    } catch {
      // cast never fails, as in OTP.
    }
  }

  call(caller: Pid | undefined, dest: Dest, request: unknown, options: CallOptions | undefined): Promise<unknown> {
    const counters = this.counters;
    counters.calls++;
    const port = this.#openPort(dest, options?.timeout ?? DEFAULT_CALL_TIMEOUT, true);
    if (!(port instanceof ReplyPort)) {
      counters.callsFailed++;
      return port;
    }
    const message: CallMessage = { type: '$gen_call', from: { pid: caller ?? port.pid, replyTo: port.pid, tag: port.ref }, request };
    return this.#dispatch(caller, port, message);
  }

  /** Routes a request through its port; a request that cannot be sent (it cannot cross the wire) rejects the call. */
  #dispatch(caller: Pid | undefined, port: ReplyPort, message: CallMessage | StopMessage): Promise<unknown> {
    try {
      if (port.folded) {
        this.counters.messagesOut++;
        this.distribution!.request!(caller, port.target, message, port.pid, port.ref);
      } else {
        this.route(caller, port.target, message);
      }
    } catch (error) {
      // A folded request that could not be encoded placed no monitor.
      if (port.folded) port.released = true;
      port.abort(error);
    }
    return port.promise;
  }

  /**
   * Sends a call's reply to `replyTo`: straight into the waiting promise when
   * the port is local; to another node with the call's `tag` when the server
   * `from` replies itself, so its node drops the caller's monitor with it.
   */
  reply(from: Pid | undefined, replyTo: Pid, value: unknown, tag?: unknown): void {
    this.counters.messagesOut++;
    if (replyTo.node === this.name && replyTo.creation === this.creation) {
      const endpoint = this.table.get(replyTo.id);
      if (endpoint instanceof ReplyPort) endpoint.resolveWith(value);
      else endpoint?.deliver({ type: '$gen_reply', value });
      return;
    }
    const distribution = this.distribution;
    if (distribution === undefined) return;
    // `tag` came over the wire with the call: trusted only when it is a Ref.
    if (from !== undefined && tag instanceof Ref && distribution.reply !== undefined) distribution.reply(from, replyTo, value, tag);
    else distribution.send(from, replyTo, { type: '$gen_reply', value });
  }

  /**
   * Sends what `build` makes for a reply port and resolves with the reply; the
   * port monitors the target, so its death (or its node's) ends the wait.
   */
  request(
    caller: Pid | undefined,
    dest: Dest,
    timeout: number,
    build: (replyTo: Pid) => CallMessage | StopMessage,
  ): Promise<unknown> {
    const port = this.#openPort(dest, timeout, false);
    if (!(port instanceof ReplyPort)) return port;
    return this.#dispatch(caller, port, build(port.pid));
  }

  /** A reply port for a request to `dest`, or the rejection the request ends with at once. */
  #openPort(dest: Dest, timeout: number, timed: boolean): ReplyPort | Promise<never> {
    if (typeof timeout !== 'number' || !(timeout >= 0)) {
      return Promise.reject(new TypeError(`call: timeout must be a number >= 0 or Infinity, got ${String(timeout)}`));
    }
    // Before resolving: a stopped node's names are gone, and a call must not read as `noproc`.
    if (!this.alive) return Promise.reject(new NodeStoppedError(`node ${this.name} is stopped`));
    let target: Pid | undefined;
    try {
      target = this.resolve(dest);
    } catch (error) {
      return Promise.reject(error);
    }
    if (target === undefined) return Promise.reject(new CallError('noproc', describeDest(dest)));
    const port = new ReplyPort(this, target, dest, this.nextPid(), this.makeRef());
    if (timed) {
      // Two clock reads cost about as much as a whole local call: every call to another node is timed, and one local call in LOCAL_CALL_SAMPLE.
      port.timed = !this.isLocal(target) || this.#callSample++ % LOCAL_CALL_SAMPLE === 0 ? performance.now() : UNTIMED_CALL;
    }
    port.open();
    if (timeout !== Infinity) this.deadlines.add(timeout, port);
    return port;
  }

  // ---- links, monitors, exit signals ------------------------------------------

  /** Delivers an exit signal to a local process, iteratively: a chain of links never grows the stack. */
  signal(target: Proc, from: Pid, reason: ExitReason, kind: SignalKind): void {
    this.#signals.push({ target, from, reason, kind });
    if (this.#flushingSignals) return;
    this.#flushingSignals = true;
    try {
      for (let index = 0; index < this.#signals.length; index++) {
        const next = this.#signals[index]!;
        next.target.signal(next.from, next.reason, next.kind);
      }
    } finally {
      this.#signals = [];
      this.#flushingSignals = false;
    }
  }

  exitSignal(from: Pid, to: Pid, reason: ExitReason): void {
    const target = this.localEndpoint(to);
    if (target instanceof Proc) this.signal(target, from, reason, 'exit');
    else if (!this.isLocal(to)) this.distribution?.exit(from, to, reason, 'exit');
  }

  /** `from` died with `reason` while linked to `to`. */
  linkExit(from: Pid, to: Pid, reason: ExitReason): void {
    const target = this.localEndpoint(to);
    if (target instanceof Proc) this.signal(target, from, reason, 'link');
    else if (!this.isLocal(to)) this.distribution?.exit(from, to, reason, 'link');
  }

  remoteLink(from: Pid, to: Pid): void {
    const local = this.localProc(from);
    if (this.distribution === undefined) {
      if (local !== undefined) this.signal(local, to, 'noconnection', 'link');
      return;
    }
    this.distribution.link(from, to);
  }

  remoteUnlink(from: Pid, to: Pid): void {
    this.distribution?.unlink(from, to);
  }

  /** Places a monitor on `target`; false when it cannot (dead local target, or no route to its node). */
  addWatcher(target: Pid, ref: Ref, watcher: Pid): boolean {
    if (this.isLocal(target)) return this.table.get(target.id)?.addWatcher(ref, watcher) === true;
    if (this.distribution === undefined) return false;
    this.distribution.monitor(watcher, target, ref);
    return true;
  }

  /** `addWatcher` for a call's reply port, whose own record is the watch entry (nothing more to allocate). */
  watchFor(target: Pid, watch: Watch): boolean {
    if (this.isLocal(target)) {
      const endpoint = this.table.get(target.id);
      return endpoint instanceof Proc ? endpoint.addWatch(watch) : endpoint?.addWatcher(watch.ref, watch.watcher) === true;
    }
    return this.addWatcher(target, watch.ref, watch.watcher);
  }

  removeWatcher(target: Pid, ref: Ref, watcher: Pid): void {
    if (this.isLocal(target)) this.table.get(target.id)?.removeWatcher(ref);
    else this.distribution?.demonitor(watcher, target, ref);
  }

  /** A monitored process `pid` is gone: tell `watcher`. */
  down(watcher: Pid, ref: Ref, pid: Pid, reason: ExitReason): void {
    if (this.isLocal(watcher)) {
      const endpoint = this.table.get(watcher.id);
      if (endpoint instanceof Proc) endpoint.monitorFired(ref, pid, reason);
      else endpoint?.deliver({ type: 'DOWN', ref, pid, reason });
    } else {
      this.distribution?.down(watcher, ref, pid, reason);
    }
  }

  // ---- DistributionHost: what arrives from peers ---------------------------------

  deliver(to: Pid, message: unknown): void {
    this.localEndpoint(to)?.deliver(message);
  }

  replied(to: Pid, message: unknown, from: Pid, ref: Ref): void {
    const endpoint = this.localEndpoint(to);
    // Only the port's own server, replying under the port's own ref, has dropped the port's monitor.
    if (endpoint instanceof ReplyPort && endpoint.ref.equals(ref) && endpoint.target.equals(from)) endpoint.released = true;
    endpoint?.deliver(message);
  }

  deliverNamed(name: string, message: unknown, _from?: Pid): void {
    const pid = this.localNames.whereisName(name);
    if (isCallMessage(message)) {
      // Before the message: the callee's reply cannot overtake what its node says of the name.
      const replyTo = (message.from as { replyTo?: unknown } | undefined)?.replyTo;
      const answer: WhereisMessage = pid === undefined ? { type: '$gen_whereis', name } : { type: '$gen_whereis', name, pid };
      if (replyTo instanceof Pid) this.route(undefined, replyTo, answer);
    }
    if (pid !== undefined) this.localEndpoint(pid)?.deliver(message);
  }

  link(from: Pid, to: Pid): void {
    const target = this.localProc(to);
    if (target?.alive === true) target.addLink(from);
    else this.distribution?.exit(to, from, 'noproc', 'link');
  }

  unlink(from: Pid, to: Pid): void {
    this.localProc(to)?.removeLink(from);
  }

  exit(from: Pid, to: Pid, reason: ExitReason, kind: SignalKind): void {
    const target = this.localProc(to);
    if (target !== undefined) this.signal(target, from, reason, kind);
  }

  monitor(watcher: Pid, target: Pid, ref: Ref): void {
    if (this.localEndpoint(target)?.addWatcher(ref, watcher) !== true) {
      this.distribution?.down(watcher, ref, target, 'noproc');
    }
  }

  demonitor(_watcher: Pid, target: Pid, ref: Ref): void {
    this.localEndpoint(target)?.removeWatcher(ref);
  }

  monitored(watcher: Pid, target: Pid, ref: Ref): void {
    const proc = this.localProc(watcher);
    if (proc?.alive === true) proc.recordMonitor(ref, target);
    else this.distribution?.demonitor(watcher, target, ref);
  }

  nodeDown(node: string): void {
    for (const endpoint of [...this.table.values()]) endpoint.nodeDown(node);
    this.nodeMonitors.nodeDown(node);
    this.node.emit('nodedown', node);
  }

  nodeUp(node: string): void {
    this.nodeMonitors.nodeUp(node);
    this.node.emit('nodeup', node);
  }

  isConnected(node: string): boolean {
    return node === this.node.name || this.distribution?.nodes().includes(node) === true;
  }
}

/**
 * Where a call's reply lands: a pid of its own (so a reply can come from any
 * node), monitoring the callee so its death ends the call at once.
 */
class ReplyPort implements Endpoint, Expirable, Watch {
  readonly promise: Promise<unknown>;
  deadline = 0;
  settled = false;
  /** For a call (not a `request`): when it was sent (`performance.now()`) if its latency is sampled, else `UNTIMED_CALL`; 0 for a `request`. */
  timed = 0;
  /** The monitor travels with the request (`Distribution.request`): the target's node places it. */
  folded = false;
  /** The target's node dropped the monitor (it replied, or it was never placed): no demonitor to send. */
  released = false;
  #resolve!: (value: unknown) => void;
  #reject!: (error: unknown) => void;

  constructor(
    readonly runtime: Runtime,
    readonly target: Pid,
    readonly dest: Dest,
    readonly pid: Pid,
    /** The ref of the port's monitor on its target; the port is its own watch record. */
    readonly ref: Ref,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /**
   * Enters the process table and monitors the target (a dead one fails the
   * port at once); a target on another node is monitored by the request
   * itself, when the distribution can carry both in one frame.
   */
  open(): void {
    const runtime = this.runtime;
    runtime.table.set(this.pid.id, this);
    if (!runtime.isLocal(this.target) && runtime.distribution?.request !== undefined) {
      this.folded = true;
      return;
    }
    if (!runtime.watchFor(this.target, this)) {
      this.#fail(runtime.isLocal(this.target) ? 'noproc' : 'noconnection');
    }
  }

  /** Who watches the target: the port itself. */
  get watcher(): Pid {
    return this.pid;
  }

  /** A reply that arrives without a message around it (see `Runtime.reply`). */
  resolveWith(value: unknown): void {
    if (this.settled) return;
    this.#settle();
    this.#answered();
    this.#resolve(value);
  }

  deliver(message: unknown): void {
    if (this.settled) return;
    const { type } = message as ReplyMessage | { type: 'DOWN'; reason: ExitReason };
    if (type === '$gen_reply') {
      this.#settle();
      this.#answered();
      this.#resolve((message as ReplyMessage).value);
    } else if (type === 'DOWN') {
      this.#fail((message as { reason: ExitReason }).reason);
    }
  }

  expire(): void {
    this.#fail('timeout');
  }

  /** The request never left: the call rejects with why. */
  abort(error: unknown): void {
    if (this.settled) return;
    this.#settle();
    this.#failed();
    this.#reject(error);
  }

  addWatcher(): boolean {
    return false;
  }

  removeWatcher(): void {}

  nodeDown(node: string): void {
    if (this.target.node === node) this.#fail('noconnection');
  }

  #fail(reason: ExitReason): void {
    if (this.settled) return;
    this.#settle();
    this.#failed();
    this.#reject(new CallError(reason, describeDest(this.dest)));
  }

  /** A call's reply came: its round trip counts in the node's call latency. */
  #answered(): void {
    if (this.timed > 0) this.runtime.counters.callLatency.observe(performance.now() - this.timed);
  }

  #failed(): void {
    if (this.timed !== 0) this.runtime.counters.callsFailed++;
  }

  #settle(): void {
    this.settled = true;
    this.runtime.table.delete(this.pid.id);
    if (!this.released) this.runtime.removeWatcher(this.target, this.ref, this.pid);
  }
}

/**
 * V8 fixes how much room a class's objects get for their fields once, at the
 * class's 7th construction ("in-object slack tracking"), from the instances
 * reachable at that moment. When none is (every earlier one died and a full
 * GC cleared their layouts: a burst of processes that all exited, say), the
 * class is left with no in-object room: every field then lives in a separate,
 * repeatedly regrown array, and a class with more than a dozen private fields
 * (Proc) falls back to dictionary mode, several times slower to build and to
 * use. Seen in the benchmarks: spawn + exit dropped from ~600k/s to ~80k/s
 * after a run of floods. Building a few of each hot class here, all alive at
 * once, settles their layouts from complete objects before any real use.
 */
function settleLayouts(): void {
  const keep: unknown[] = [];
  const pid = new Pid('', '', 0);
  const ref = new Ref('', '', 0);
  for (let index = 0; index < 8; index++) {
    const proc = new Proc(undefined as unknown as ProcessHost, pid);
    proc.mailbox.push(undefined); // and a mailbox chunk
    keep.push(
      proc,
      new Pid('', '', index),
      new Ref('', '', index),
      new ReplyPort(undefined as unknown as Runtime, pid, pid, pid, ref),
      new TablePage(),
    );
  }
}

settleLayouts();
