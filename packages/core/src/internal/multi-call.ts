/**
 * `GenServer.multiCall` and `GenServer.abcast` (OTP's gen_server:multi_call
 * and abcast): a request to the process under one node-local name on several
 * nodes. The local node's share is an ordinary call; another node's goes as
 * a named send (`Distribution.sendNamed`) to a reply port that learns from
 * that node what the name resolved to (`$gen_whereis`, see
 * `Runtime.deliverNamed`) and then monitors the callee, so a missing name, a
 * dead callee or a lost node ends its wait at once.
 */
import { Pid, type Ref } from '../pid.js';
import type { Expirable } from './deadlines.js';
import type { Endpoint, Watch } from './process.js';
import type { Runtime } from './runtime.js';
import type { CallMessage, CastMessage, ReplyMessage, WhereisMessage } from './signals.js';

/** What `GenServer.multiCall` resolves to (OTP's `{Replies, BadNodes}`). */
export interface MultiCallResult<R = unknown> {
  /** `[node, reply]` for each node whose server answered, in the order the nodes were listed. */
  readonly replies: [node: string, reply: R][];
  /**
   * The nodes that did not answer, in the order they were listed: not a
   * member, down during the call, nothing registered under the name, the
   * server exited before replying, or no answer within the timeout.
   */
  readonly badNodes: string[];
}

/** One node's outcome: its reply, or none (a bad node). */
type Answer = { readonly value: unknown } | undefined;

/** Checks the node list and name both functions take; throws a `TypeError` naming the bad one. */
export function checkTargets(where: string, nodes: unknown, name: unknown): asserts nodes is readonly string[] {
  if (!Array.isArray(nodes)) throw new TypeError(`${where}: nodes must be an array of node names, got ${describe(nodes)}`);
  const bad = nodes.findIndex((node) => typeof node !== 'string' || node.length === 0);
  if (bad !== -1) throw new TypeError(`${where}: nodes[${bad}] must be a non-empty string, got ${describe(nodes[bad])}`);
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`${where}: name must be a non-empty string, got ${describe(name)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}

/**
 * Calls `name` on each of `nodes` (each once), waiting at most `timeout` ms
 * for all. Rejects only when the request cannot cross the wire
 * (`WireEncodeError`, before anything is sent) or this node is stopped.
 */
export function multiCall(
  runtime: Runtime,
  caller: Pid | undefined,
  nodes: readonly string[],
  name: string,
  request: unknown,
  timeout: number,
): Promise<MultiCallResult> {
  const targets = [...new Set(nodes)];
  const answers: Answer[] = new Array<Answer>(targets.length);
  let pending = targets.length;
  return new Promise<MultiCallResult>((resolve, reject) => {
    const settle = (index: number, answer: Answer): void => {
      answers[index] = answer;
      if (--pending === 0) resolve(collect(targets, answers));
    };
    const ports: NamedPort[] = [];
    let local = -1;
    try {
      for (let index = 0; index < targets.length; index++) {
        const node = targets[index]!;
        if (node === runtime.name) {
          local = index;
          continue;
        }
        const port = new NamedPort(runtime, node, (answer) => settle(index, answer));
        ports.push(port);
        port.open(caller, name, request, timeout);
      }
    } catch (error) {
      // Every node gets the same request: the first that cannot be encoded fails them all, and nothing is left waiting.
      for (const port of ports) port.cancel();
      reject(error);
      return;
    }
    if (local !== -1) {
      // The local share is an ordinary call; any way it fails makes this node bad.
      runtime.call(caller, name, request, { timeout }).then(
        (value) => settle(local, { value }),
        () => settle(local, undefined),
      );
    }
    if (targets.length === 0) resolve({ replies: [], badNodes: [] });
  });
}

function collect(targets: readonly string[], answers: readonly Answer[]): MultiCallResult {
  const replies: [string, unknown][] = [];
  const badNodes: string[] = [];
  targets.forEach((node, index) => {
    const answer = answers[index];
    if (answer === undefined) badNodes.push(node);
    else replies.push([node, answer.value]);
  });
  return { replies, badNodes };
}

/** Casts `request` to `name` on each of `nodes` (each once); never fails, as a cast does not. */
export function abcast(runtime: Runtime, from: Pid, nodes: readonly string[], name: string, request: unknown): void {
  const message: CastMessage = { type: '$gen_cast', request };
  for (const node of new Set(nodes)) {
    try {
      if (node === runtime.name) runtime.deliverNamed(name, message, from);
      else runtime.distribution?.sendNamed?.(from, node, name, message);
    } catch {
      // A value that cannot cross is dropped, as `cast` drops it.
    }
  }
}

/**
 * The reply port of one remote node's share of a multi-call. It is in the
 * process table under a pid of its own, so the callee's reply (from
 * `reply(...)` or a later `GenServer.reply`) reaches it like any call's; the
 * callee's node first says what the name resolved to, and from then the port
 * monitors the callee as `call`'s port does.
 */
class NamedPort implements Endpoint, Expirable, Watch {
  deadline = 0;
  settled = false;
  readonly pid: Pid;
  /** The ref of the monitor on the callee, once its node has named it. */
  readonly ref: Ref;
  #target: Pid | undefined;

  constructor(
    readonly runtime: Runtime,
    readonly node: string,
    readonly done: (answer: Answer) => void,
  ) {
    this.pid = runtime.nextPid();
    this.ref = runtime.makeRef();
  }

  get watcher(): Pid {
    return this.pid;
  }

  /** Sends the call; a node that is not a member is bad at once. Throws what the wire codec refuses. */
  open(caller: Pid | undefined, name: string, request: unknown, timeout: number): void {
    const runtime = this.runtime;
    runtime.table.set(this.pid.id, this);
    const message: CallMessage = { type: '$gen_call', from: { pid: caller ?? this.pid, replyTo: this.pid }, request };
    if (runtime.distribution?.sendNamed?.(caller, this.node, name, message) !== true) {
      this.#bad();
      return;
    }
    if (timeout !== Infinity) runtime.deadlines.add(timeout, this);
  }

  deliver(message: unknown): void {
    if (this.settled || typeof message !== 'object' || message === null) return;
    const { type } = message as { type?: unknown };
    if (type === '$gen_reply') {
      this.#settle();
      this.done({ value: (message as ReplyMessage).value });
    } else if (type === '$gen_whereis') {
      const pid = (message as WhereisMessage).pid;
      if (!(pid instanceof Pid) || pid.node !== this.node) {
        this.#bad(); // nothing under the name there: noproc
        return;
      }
      this.#target = pid;
      if (!this.runtime.watchFor(pid, this)) this.#bad();
    } else if (type === 'DOWN') {
      this.#bad();
    }
  }

  expire(): void {
    this.#bad();
  }

  nodeDown(node: string): void {
    if (node === this.node) this.#bad();
  }

  addWatcher(): boolean {
    return false;
  }

  removeWatcher(): void {}

  /** The call never left: the port goes without an answer. */
  cancel(): void {
    if (!this.settled) this.#settle();
  }

  #bad(): void {
    if (this.settled) return;
    this.#settle();
    this.done(undefined);
  }

  #settle(): void {
    this.settled = true;
    this.runtime.table.delete(this.pid.id);
    if (this.#target !== undefined) this.runtime.removeWatcher(this.#target, this.ref, this.pid);
  }
}
