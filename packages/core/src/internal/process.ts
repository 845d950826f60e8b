import type { Logger } from 'pino';
import type { Dest } from '../dest.js';
import type { ExitReason } from '../exit-reason.js';
import { formatReason } from '../exit-reason.js';
import { BadArgError } from '../errors.js';
import type { NodeMonitors } from './node-monitors.js';
import type { Pid, Ref } from '../pid.js';
import { TIMEOUT, type CallOptions, type Process, type ProcessBody, type SpawnOptions } from '../process.js';
import { Mailbox } from './mailbox.js';
import type { Runnable, Scheduler } from './scheduler.js';
import { ExitSignal, ProcessExited } from './signals.js';
import type { SignalKind } from '../distribution.js';
import type { ProcessKind, SupervisorDetails } from '../introspection.js';

/** A handler for one message; returns a promise while it is still busy with it. */
export type MessageHandler = (message: unknown) => PromiseLike<unknown> | undefined | void;

/** Runs synchronously when a process exits, before any monitor sees `DOWN`. */
export type ExitHook = (reason: ExitReason) => void;

/** A monitor placed on a process: who watches it, under which ref. */
export interface Watch {
  readonly ref: Ref;
  readonly watcher: Pid;
}

/** A Map key for a ref or pid: the number of one made on this node (no string to build), else its string form. */
export type Key = number | string;

/** Anything in a node's process table: a process, or a call's reply port. */
export interface Endpoint {
  readonly pid: Pid;
  deliver(message: unknown): void;
  /** A monitor placed on this endpoint by `watcher`. Returns false when it is gone. */
  addWatcher(ref: Ref, watcher: Pid): boolean;
  removeWatcher(ref: Ref): void;
  /** Every link and monitor towards `node` fires with `noconnection`. */
  nodeDown(node: string): void;
}

/**
 * What a process asks of the runtime it lives in; `Runtime` (runtime.ts)
 * implements it. Declared here, on the side that uses it, because the
 * runtime creates processes and so imports this module.
 */
export interface ProcessHost {
  /** The contract's own type for it (the Node class), named that way because node.ts imports this module. */
  readonly node: Process['node'];
  readonly logger: Logger;
  readonly scheduler: Scheduler;
  /** The node's counters a process bumps (see internal/introspect.ts). */
  readonly counters: { messagesIn: number };
  isLocal(pid: Pid): boolean;
  localEndpoint(pid: Pid): Endpoint | undefined;
  makeRef(): Ref;
  refKey(ref: Ref): Key;
  pidKey(pid: Pid): Key;
  resolve(dest: Dest): Pid | undefined;
  spawn(body: ProcessBody, options: SpawnOptions | undefined, parent: Proc | undefined): Pid;
  forget(proc: Proc): void;
  send(dest: Dest, message: unknown, from: Pid): void;
  cast(dest: Dest, request: unknown, from: Pid): void;
  call(caller: Pid | undefined, dest: Dest, request: unknown, options: CallOptions | undefined): Promise<unknown>;
  signal(target: Proc, from: Pid, reason: ExitReason, kind: SignalKind): void;
  exitSignal(from: Pid, to: Pid, reason: ExitReason): void;
  linkExit(from: Pid, to: Pid, reason: ExitReason): void;
  remoteLink(from: Pid, to: Pid): void;
  remoteUnlink(from: Pid, to: Pid): void;
  addWatcher(target: Pid, ref: Ref, watcher: Pid): boolean;
  removeWatcher(target: Pid, ref: Ref, watcher: Pid): void;
  down(watcher: Pid, ref: Ref, pid: Pid, reason: ExitReason): void;
  readonly nodeMonitors: NodeMonitors;
  /** Whether `node` is this node or a connected member. */
  isConnected(node: string): boolean;
}

interface PendingReceive {
  readonly match: ((message: unknown) => boolean) | undefined;
  scanned: number;
  timer: NodeJS.Timeout | undefined;
  resolve(message: unknown): void;
  reject(error: unknown): void;
}

/**
 * One process. The same object is the process's own `self`, so spawning
 * allocates once; its bookkeeping maps are made only when first needed,
 * which keeps spawn + exit cheap.
 */
export class Proc implements Process, Runnable, Endpoint {
  readonly mailbox = new Mailbox();
  alive = true;
  exitReason: ExitReason = undefined;
  queued = false;
  /** A handler is running asynchronously (or the body is): no new message is dispatched. */
  busy = true;
  trapping = false;
  parent: Pid | undefined;
  handler: MessageHandler | undefined;
  /** Messages delivered into the mailbox since the process started. */
  messagesIn = 0;
  /** When the process was created (`Date.now()` ms, as of its event-loop turn: `Runtime.spawnTime`). */
  startedAt = 0;
  /** What it is, as its behaviour tagged it (`tagProcess`). */
  kind: ProcessKind = 'process';
  /** A supervisor's reader of its own state, for snapshots (`tagProcess`). */
  describe: (() => SupervisorDetails) | undefined = undefined;
  /** The body, until the scheduler first runs the process. */
  #body: ProcessBody | undefined;
  #pending: PendingReceive | undefined;
  /** Receives answered at once from the mailbox since the scheduler last ran this process. */
  #quickReceives = 0;
  #links: Map<Key, Pid> | undefined;
  #monitors: Map<Key, { readonly ref: Ref; readonly target: Pid }> | undefined;
  /**
   * Monitors placed on this process. A lone one (a server answering calls one
   * at a time) is kept in `#watch`, two or more in `#watchers` in the order
   * placed; never both. A Map going from one entry to none reallocates its
   * table, which a call would otherwise pay every time.
   */
  #watch: Watch | undefined;
  #watchKey: Key | undefined;
  #watchers: Map<Key, Watch> | undefined;
  /** Whether this process ever watched nodes (`monitorNode`, `monitorNodes`): only then its exit tells the node monitors. */
  #watchesNodes = false;
  /** The first exit hook, held without a set (nearly every hooked process has one: its global name); the others after it. */
  #exitHook: ExitHook | undefined;
  #exitHooks: Set<ExitHook> | undefined;
  #logger: Logger | undefined;
  /** `#resume` as a callback, made the first time a handler goes asynchronous. */
  #resumer: (() => void) | undefined;

  constructor(
    readonly runtime: ProcessHost,
    readonly pid: Pid,
  ) {}

  get node(): Process['node'] {
    return this.runtime.node;
  }

  get logger(): Logger {
    return (this.#logger ??= this.runtime.logger.child({ process: this.pid.key }));
  }

  get trappingExits(): boolean {
    return this.trapping;
  }

  // ---- messages -------------------------------------------------------------

  deliver(message: unknown): void {
    if (!this.alive) return;
    this.mailbox.push(message);
    this.messagesIn++;
    this.runtime.counters.messagesIn++;
    if (!this.queued && (this.#pending !== undefined || (this.handler !== undefined && !this.busy))) {
      this.runtime.scheduler.enqueue(this);
    }
  }

  run(budget: number): number {
    if (!this.alive) return 0;
    const body = this.#body;
    if (body !== undefined) {
      this.#body = undefined;
      this.runBody(body);
      return 1;
    }
    if (this.#pending !== undefined) {
      const handled = this.#quickReceives + 1;
      this.#quickReceives = 0;
      this.#scanPending();
      return handled;
    }
    const handler = this.handler;
    if (handler === undefined || this.busy) return 0;
    const mailbox = this.mailbox;
    let handled = 0;
    while (handled < budget && mailbox.size > 0) {
      handled++;
      const result = handler(mailbox.shift());
      if (result !== undefined && result !== null) {
        this.busy = true;
        const resume = (this.#resumer ??= () => this.#resume());
        result.then(resume, resume);
        return handled;
      }
      if (!this.alive || this.#pending !== undefined) return handled;
    }
    if (mailbox.size > 0) this.runtime.scheduler.enqueue(this);
    return handled;
  }

  #resume(): void {
    this.busy = false;
    if (this.alive && !this.queued && (this.mailbox.size > 0 || this.#pending !== undefined)) {
      this.runtime.scheduler.enqueue(this);
    }
  }

  /** Has the scheduler run `body` (in its turn, after the spawner's synchronous code). */
  start(body: ProcessBody): void {
    this.#body = body;
    this.runtime.scheduler.enqueue(this);
  }

  /** Lets the message loop continue after an asynchronous start (a GenServer's `init`). */
  startLoop(handler: MessageHandler): void {
    this.handler = handler;
    this.#resume();
  }

  receive(match?: ((message: unknown) => boolean) | undefined, timeoutMs?: number): Promise<any> {
    if (!this.alive) return Promise.reject(new ProcessExited(this.pid));
    if (this.#pending !== undefined) {
      return Promise.reject(new Error(`receive: ${this.pid.key} is already waiting in another receive`));
    }
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
      return Promise.reject(new TypeError(`receive: timeoutMs must be a number >= 0, got ${String(timeoutMs)}`));
    }
    const mailbox = this.mailbox;
    // A message already here is taken at once, up to the scheduler's budget; past it the receive
    // waits for the process's turn, so a receive loop over a full mailbox still yields to the event loop.
    const inBudget = this.#quickReceives < this.runtime.scheduler.budget || timeoutMs === 0;
    if (inBudget) {
      if (match === undefined) {
        if (mailbox.size > 0) {
          this.#quickReceives++;
          return Promise.resolve(mailbox.shift());
        }
      } else {
        for (let index = 0; index < mailbox.size; index++) {
          if (match(mailbox.at(index))) {
            this.#quickReceives++;
            return Promise.resolve(mailbox.removeAt(index));
          }
        }
      }
      if (timeoutMs === 0) return Promise.resolve(TIMEOUT);
    }
    return new Promise<unknown>((resolve, reject) => {
      const pending: PendingReceive = { match, scanned: inBudget ? mailbox.size : 0, timer: undefined, resolve, reject };
      if (timeoutMs !== undefined && timeoutMs !== Infinity) {
        pending.timer = setTimeout(() => {
          if (this.#pending === pending) {
            this.#pending = undefined;
            resolve(TIMEOUT);
          }
        }, timeoutMs);
      }
      this.#pending = pending;
      if (!inBudget && !this.queued) this.runtime.scheduler.enqueue(this);
    });
  }

  #scanPending(): void {
    const pending = this.#pending!;
    const mailbox = this.mailbox;
    for (let index = pending.scanned; index < mailbox.size; index++) {
      let matched: boolean;
      try {
        matched = pending.match === undefined || pending.match(mailbox.at(index));
      } catch (error) {
        this.#settlePending();
        pending.reject(error);
        return;
      }
      if (matched) {
        this.#settlePending();
        pending.resolve(mailbox.removeAt(index));
        return;
      }
    }
    pending.scanned = mailbox.size;
  }

  #settlePending(): void {
    const pending = this.#pending;
    if (pending?.timer !== undefined) clearTimeout(pending.timer);
    this.#pending = undefined;
  }

  send(dest: Dest, message: unknown): void {
    this.runtime.send(dest, message, this.pid);
  }

  call<R = unknown>(dest: Dest, request: unknown, options?: CallOptions): Promise<R> {
    return this.runtime.call(this.pid, dest, request, options) as Promise<R>;
  }

  cast(dest: Dest, message: unknown): void {
    this.runtime.cast(dest, message, this.pid);
  }

  sendAfter(dest: Dest, message: unknown, ms: number): () => void {
    const timer = setTimeout(() => {
      try {
        this.runtime.send(dest, message, this.pid);
      } catch {
        // Erlang's send_after to a name nobody holds is silently lost.
      }
    }, ms);
    return () => clearTimeout(timer);
  }

  // ---- links, monitors, exits -------------------------------------------------

  link(pid: Pid): void {
    if (!this.alive || pid.equals(this.pid)) return;
    const links = (this.#links ??= new Map());
    const key = this.runtime.pidKey(pid);
    if (links.has(key)) return;
    links.set(key, pid);
    const target = this.runtime.localEndpoint(pid);
    if (target instanceof Proc) {
      target.addLink(this.pid);
    } else if (this.runtime.isLocal(pid)) {
      // Linking to a process that is gone: an exit signal `noproc`, as in Erlang.
      this.runtime.signal(this, pid, 'noproc', 'link');
    } else {
      this.runtime.remoteLink(this.pid, pid);
    }
  }

  /** The other half of a link, made by the linking side. */
  addLink(pid: Pid): void {
    (this.#links ??= new Map()).set(this.runtime.pidKey(pid), pid);
  }

  unlink(pid: Pid): void {
    if (this.#links?.delete(this.runtime.pidKey(pid)) !== true) return;
    const target = this.runtime.localEndpoint(pid);
    if (target instanceof Proc) target.removeLink(this.pid);
    else if (!this.runtime.isLocal(pid)) this.runtime.remoteUnlink(this.pid, pid);
  }

  removeLink(pid: Pid): void {
    this.#links?.delete(this.runtime.pidKey(pid));
  }

  /** Processes linked to this one. */
  get linkCount(): number {
    return this.#links?.size ?? 0;
  }

  /** Monitors this process holds on others. */
  get monitorCount(): number {
    return this.#monitors?.size ?? 0;
  }

  /** Monitors others hold on this process. */
  get watcherCount(): number {
    return this.#watchers?.size ?? (this.#watch === undefined ? 0 : 1);
  }

  isLinkedTo(pid: Pid): boolean {
    return this.#links?.has(this.runtime.pidKey(pid)) === true;
  }

  monitor(dest: Dest): Ref {
    const ref = this.runtime.makeRef();
    const target = this.runtime.resolve(dest);
    if (target === undefined) {
      this.deliver({ type: 'DOWN', ref, pid: undefined, reason: 'noproc' });
      return ref;
    }
    this.watch(ref, target);
    return ref;
  }

  /** Monitors `target` under `ref` (shared by `monitor` and calls' reply ports). */
  watch(ref: Ref, target: Pid): void {
    const key = this.runtime.refKey(ref);
    (this.#monitors ??= new Map()).set(key, { ref, target });
    if (!this.runtime.addWatcher(target, ref, this.pid)) {
      this.#monitors.delete(key);
      this.deliver({ type: 'DOWN', ref, pid: target, reason: this.runtime.isLocal(target) ? 'noproc' : 'noconnection' });
    }
  }

  /** Records a monitor of this process on `target` that the target's side already holds (a remote spawn's monitor). */
  recordMonitor(ref: Ref, target: Pid): void {
    if (this.alive) (this.#monitors ??= new Map()).set(this.runtime.refKey(ref), { ref, target });
  }

  demonitor(ref: Ref, options?: { readonly flush?: boolean }): void {
    const key = this.runtime.refKey(ref);
    const monitor = this.#monitors?.get(key);
    if (monitor !== undefined) {
      this.#monitors!.delete(key);
      this.runtime.removeWatcher(monitor.target, ref, this.pid);
    }
    if (options?.flush === true) {
      const mailbox = this.mailbox;
      for (let index = mailbox.size - 1; index >= 0; index--) {
        const message = mailbox.at(index) as { type?: unknown; ref?: unknown } | null;
        if (message?.type === 'DOWN' && ref.equals(message.ref)) mailbox.removeAt(index);
      }
    }
  }

  /** A `DOWN` for a monitor this process holds. */
  monitorFired(ref: Ref, pid: Pid | undefined, reason: ExitReason): void {
    if (this.#monitors?.delete(this.runtime.refKey(ref)) !== true) return;
    this.deliver({ type: 'DOWN', ref, pid, reason });
  }

  addWatcher(ref: Ref, watcher: Pid): boolean {
    return this.addWatch({ ref, watcher });
  }

  /** `addWatcher` with the record given: a call's reply port is its own. */
  addWatch(watch: Watch): boolean {
    if (!this.alive) return false;
    const key = this.runtime.refKey(watch.ref);
    if (this.#watchers !== undefined) {
      this.#watchers.set(key, watch);
    } else if (this.#watch === undefined || this.#watchKey === key) {
      this.#watch = watch;
      this.#watchKey = key;
    } else {
      this.#watchers = new Map([
        [this.#watchKey!, this.#watch],
        [key, watch],
      ]);
      this.#watch = undefined;
      this.#watchKey = undefined;
    }
    return true;
  }

  removeWatcher(ref: Ref): void {
    const key = this.runtime.refKey(ref);
    if (this.#watch !== undefined) {
      if (this.#watchKey === key) {
        this.#watch = undefined;
        this.#watchKey = undefined;
      }
      return;
    }
    const watchers = this.#watchers;
    if (watchers === undefined) return;
    if (watchers.size === 1) {
      if (watchers.has(key)) this.#watchers = undefined;
    } else {
      watchers.delete(key);
    }
  }

  monitorNode(node: string, on = true): void {
    if (typeof node !== 'string' || node.length === 0) throw new BadArgError(`monitorNode: node must be a non-empty string, got ${typeof node === 'string' ? '""' : typeof node}`);
    if (typeof on !== 'boolean') throw new BadArgError(`monitorNode: flag must be a boolean, got ${typeof on}`);
    if (!on) {
      this.runtime.nodeMonitors.monitorNode(this, node, false);
      return;
    }
    // As in Erlang: a node that is not connected is reported down at once.
    if (!this.runtime.isConnected(node)) {
      this.deliver({ type: 'nodedown', node });
      return;
    }
    this.#watchesNodes = true;
    this.runtime.nodeMonitors.monitorNode(this, node, true);
  }

  monitorNodes(on: boolean): void {
    if (typeof on !== 'boolean') throw new BadArgError(`monitorNodes: flag must be a boolean, got ${typeof on}`);
    if (on) this.#watchesNodes = true;
    this.runtime.nodeMonitors.subscribe(this, on);
  }

  trapExit(trap: boolean): boolean {
    const previous = this.trapping;
    this.trapping = trap === true;
    return previous;
  }

  exit(reason: ExitReason): never;
  exit(dest: Dest, reason: ExitReason): void;
  exit(...args: [ExitReason] | [Dest, ExitReason]): void {
    if (args.length === 1) throw new ExitSignal(args[0]);
    const [dest, reason] = args;
    const target = this.runtime.resolve(dest);
    if (target === undefined) return;
    this.runtime.exitSignal(this.pid, target, reason);
  }

  /** An exit signal arrives, from a link (`link`) or from `exit/2` (`exit`). */
  signal(from: Pid, reason: ExitReason, kind: SignalKind): void {
    if (!this.alive) return;
    if (kind === 'link') {
      if (this.#links?.delete(this.runtime.pidKey(from)) !== true) return;
    } else if (reason === 'kill') {
      this.terminate('killed');
      return;
    }
    if (this.trapping) {
      this.deliver({ type: 'EXIT', from, reason });
    } else if (reason !== 'normal') {
      this.terminate(reason);
    } else if (kind === 'exit' && from.equals(this.pid)) {
      this.terminate('normal');
    }
  }

  /** Registers a hook run synchronously at exit; returns its canceller. */
  onExit(hook: ExitHook): () => void {
    // A hook added twice is held once, as in a set; the single slot is always older than the set's hooks.
    if (this.#exitHook === undefined && this.#exitHooks === undefined) this.#exitHook = hook;
    else if (this.#exitHook !== hook) (this.#exitHooks ??= new Set()).add(hook);
    return () => {
      if (this.#exitHook === hook) this.#exitHook = undefined;
      else if (this.#exitHooks?.delete(hook) === true && this.#exitHooks.size === 0) this.#exitHooks = undefined;
    };
  }

  #runExitHook(hook: ExitHook, reason: ExitReason): void {
    try {
      hook(reason);
    } catch (error) {
      this.runtime.logger.error({ err: error, process: this.pid.key }, 'exit hook failed');
    }
  }

  spawn(body: ProcessBody, options?: SpawnOptions): Pid {
    return this.runtime.spawn(body, options, this);
  }

  spawnLink(body: ProcessBody, options?: Omit<SpawnOptions, 'link'>): Pid {
    return this.runtime.spawn(body, { ...options, link: true }, this);
  }

  spawnMonitor(body: ProcessBody, options?: Omit<SpawnOptions, 'link'>): { readonly pid: Pid; readonly ref: Ref } {
    // The body runs in the scheduler's turn, after this: the monitor is placed first.
    const pid = this.runtime.spawn(body, options, this);
    return { pid, ref: this.monitor(pid) };
  }

  /** Runs a process body to its end: returning is a `normal` exit, throwing a crash. */
  runBody(body: ProcessBody): void {
    let result: unknown;
    try {
      result = body(this);
    } catch (error) {
      this.crash(error);
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => this.terminate('normal'),
        (error: unknown) => this.crash(error),
      );
    } else {
      this.terminate('normal');
    }
  }

  /** A body or callback threw: `self.exit` unwinding, or a crash that is logged once. */
  crash(error: unknown): void {
    if (!this.alive || error instanceof ProcessExited) return;
    if (error instanceof ExitSignal) {
      this.terminate(error.reason);
      return;
    }
    this.logger.error({ err: error }, `process ${this.pid.key} crashed: ${formatReason(error)}`);
    this.terminate(error);
  }

  /**
   * The process is gone. Names go first (exit hooks), so that whoever gets a
   * `DOWN` or `EXIT` already sees the name free; then links and monitors fire.
   */
  terminate(reason: ExitReason): void {
    if (!this.alive) return;
    this.alive = false;
    this.exitReason = reason;
    this.handler = undefined;
    this.#body = undefined;
    this.runtime.forget(this);
    const pending = this.#pending;
    if (pending !== undefined) {
      this.#settlePending();
      pending.reject(new ProcessExited(this.pid));
    }
    this.mailbox.clear();
    // Run in place, as they were added: a hook that cancels one not yet run stops it, one added meanwhile runs too.
    if (this.#exitHook !== undefined) this.#runExitHook(this.#exitHook, reason);
    if (this.#exitHooks !== undefined) for (const hook of this.#exitHooks) this.#runExitHook(hook, reason);
    this.#exitHook = undefined;
    this.#exitHooks = undefined;
    if (this.#watchesNodes) this.runtime.nodeMonitors.forget(this);
    if (this.#monitors !== undefined) {
      for (const { ref, target } of this.#monitors.values()) this.runtime.removeWatcher(target, ref, this.pid);
      this.#monitors = undefined;
    }
    if (this.#links !== undefined) {
      const links = this.#links;
      this.#links = undefined;
      for (const pid of links.values()) this.runtime.linkExit(this.pid, pid, reason);
    }
    if (this.#watch !== undefined) {
      const { ref, watcher } = this.#watch;
      this.#watch = undefined;
      this.#watchKey = undefined;
      this.runtime.down(watcher, ref, this.pid, reason);
    } else if (this.#watchers !== undefined) {
      const watchers = this.#watchers;
      this.#watchers = undefined;
      for (const { ref, watcher } of watchers.values()) this.runtime.down(watcher, ref, this.pid, reason);
    }
  }

  nodeDown(node: string): void {
    if (!this.alive) return;
    if (this.#watch !== undefined) {
      if (this.#watch.watcher.node === node) {
        this.#watch = undefined;
        this.#watchKey = undefined;
      }
    } else if (this.#watchers !== undefined) {
      for (const [key, { watcher }] of this.#watchers) if (watcher.node === node) this.#watchers.delete(key);
    }
    if (this.#monitors !== undefined) {
      for (const [key, { ref, target }] of this.#monitors) {
        if (target.node !== node) continue;
        this.#monitors.delete(key);
        this.deliver({ type: 'DOWN', ref, pid: target, reason: 'noconnection' });
      }
    }
    if (this.#links !== undefined) {
      for (const pid of [...this.#links.values()]) {
        if (pid.node === node) this.runtime.signal(this, pid, 'noconnection', 'link');
      }
    }
  }
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
