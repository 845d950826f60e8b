/**
 * Remote spawn, both halves (`Distribution.spawn`; docs/protocol.md §4):
 *
 * - Caller side: a `spawn` frame to the target node, a pending entry by
 *   request id, settled by the `spawned` answer, by the target's `nodedown`
 *   (`noconnection`, at once) or by the timeout. A success answer links and
 *   monitors the caller to the child on this side synchronously, before any
 *   later frame (the child's `exit` or `down` travels behind its answer). An
 *   answer nobody waits for any more (it came after the timeout) that names a
 *   child gets the child killed: the orphan does not outlive its caller's
 *   patience.
 * - Target side: every field of a `spawn` is checked (a malformed one is
 *   thrown as `WireDecodeError('malformed')`, which the cluster counts and
 *   logs at a bounded rate); the entry starts from `node.behaviours`, linked
 *   and monitored to the caller (`DistributionHost.link` / `.monitor`) before
 *   it runs, and the answer goes out before anything the child does.
 */
import {
  AlreadyStartedError,
  NodeStoppedError,
  Pid,
  Ref,
  SpawnError,
  StartError,
  describeDest,
  isVia,
  startFromCatalogue,
  type DistributionHost,
  type ExitReason,
  type RemoteSpawnRequest,
  type SpawnErrorCode,
} from '@roster/core';
import type { Logger } from 'pino';
import { WireDecodeError, WireEncodeError } from '../errors.js';
import { EnvelopeCodec } from './envelope.js';

/** A node and incarnation, as the cluster names the sender of a frame. */
interface Sender {
  readonly node: string;
  readonly creation: string;
}

/** What the spawn service needs of its cluster. */
export interface SpawnServiceDeps {
  readonly host: DistributionHost;
  readonly logger: Logger;
  /** The creation of the live member `node`; undefined when it is not one. */
  creationOf(node: string): string | undefined;
  /** A direct frame to `node` if it is still the incarnation `creation`; false (nothing sent) otherwise. Throws `WireEncodeError` for an oversized frame. */
  send(node: string, creation: string, kind: 'spawn' | 'spawned', body: string): boolean;
  /** Kills `pid` (a process of another node) with an untrappable exit signal from this node. */
  kill(pid: Pid): void;
}

/** Failure codes a `spawned` answer may carry. */
type AnswerCode = 'unknown_behaviour' | 'already_started' | 'start_failed' | 'bad_args' | 'noconnection' | 'timeout';

const ANSWER_CODES: ReadonlySet<string> = new Set<AnswerCode>(['unknown_behaviour', 'already_started', 'start_failed', 'bad_args', 'noconnection', 'timeout']);
const MAX_KEY_LENGTH = 255;

interface Pending {
  readonly request: RemoteSpawnRequest;
  /** The target's incarnation when the request left: an answer from another one is not for it. */
  readonly creation: string;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (pid: Pid) => void;
  readonly reject: (error: unknown) => void;
}

/** One node's remote spawns: the requests it made (by id) and the answering of its peers' (see the file header). */
export class SpawnService {
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(readonly deps: SpawnServiceDeps) {}

  // ---- caller side ----------------------------------------------------------------

  /** Sends a spawn request; see `Distribution.spawn` for how it settles. */
  request(request: RemoteSpawnRequest): Promise<Pid> {
    const { node, key } = request;
    const creation = this.deps.creationOf(node);
    if (creation === undefined) {
      return Promise.reject(new SpawnError('unknown_node', node, key, { detail: `${node} is not a live member of the cluster` }));
    }
    const id = this.#nextId++;
    const body: Record<string, unknown> = { i: id, k: key, a: request.args, o: request.timeout };
    if (request.name !== undefined) body['n'] = request.name;
    if (request.link !== undefined) body['l'] = request.link;
    if (request.monitor !== undefined) {
      body['w'] = request.monitor.watcher;
      body['r'] = request.monitor.ref;
    }
    try {
      this.deps.send(node, creation, 'spawn', EnvelopeCodec.body(body));
    } catch (error) {
      if (error instanceof WireEncodeError) return Promise.reject(badArgs(request, error));
      return Promise.reject(error);
    }
    return new Promise<Pid>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.get(id)?.timer !== timer) return;
        this.#pending.delete(id);
        reject(new SpawnError('timeout', node, key, { detail: `no answer within ${request.timeout} ms` }));
      }, request.timeout);
      this.#pending.set(id, { request, creation, timer, resolve, reject });
    });
  }

  /** A `spawned` answer from `from`. Throws `WireDecodeError` for a malformed one. */
  onAnswer(from: Sender, body: Record<string, unknown>): void {
    const id = body['i'] as number;
    const pid = body['p'] as Pid | undefined;
    const code = body['c'] as string | undefined;
    const holder = body['h'];
    if ((pid === undefined) === (code === undefined)) malformed('spawned: exactly one of p and c');
    if (pid !== undefined && !ownedBy(pid, from)) malformed('spawned: p is not a process of the sender');
    if (code !== undefined && !ANSWER_CODES.has(code)) malformed(`spawned: unknown code ${JSON.stringify(code)}`);
    if (holder !== undefined && !(holder instanceof Pid)) malformed('spawned: h is not a pid');
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.request.node !== from.node || pending.creation !== from.creation) {
      if (pid !== undefined) {
        // Its caller gave up (timeout): the child must not outlive that.
        this.deps.logger.debug({ pid: pid.key, node: from.node }, 'remote spawn answered after its timeout: killing the child');
        this.deps.kill(pid);
      }
      return;
    }
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    const { request } = pending;
    if (pid === undefined) {
      pending.reject(failure(request, code as AnswerCode, body));
      return;
    }
    // Now, before any later frame of the child's (its exit or down travels behind this answer).
    const host = this.deps.host;
    if (request.link !== undefined) host.link(pid, request.link);
    if (request.monitor !== undefined) host.monitored(request.monitor.watcher, pid, request.monitor.ref);
    pending.resolve(pid);
  }

  /** `node` is down: every spawn waiting on it fails with `noconnection` now. */
  nodeDown(node: string): void {
    for (const [id, pending] of this.#pending) {
      if (pending.request.node !== node) continue;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new SpawnError('noconnection', node, pending.request.key, { detail: `${node} went down during the spawn` }));
    }
  }

  // ---- target side ------------------------------------------------------------------

  /** A `spawn` request from the member `from`. Throws `WireDecodeError` for a malformed one. */
  onRequest(from: Sender, body: Record<string, unknown>): void {
    const id = body['i'] as number;
    const key = body['k'] as string;
    const timeout = body['o'] as number;
    const name = body['n'];
    const link = body['l'] as Pid | undefined;
    const watcher = body['w'] as Pid | undefined;
    const ref = body['r'] as Ref | undefined;
    if (key.length > MAX_KEY_LENGTH) malformed(`spawn: key longer than ${MAX_KEY_LENGTH}`);
    if (name !== undefined && !(typeof name === 'string' ? name.length > 0 : isVia(name))) malformed('spawn: n is not a name');
    if (link !== undefined && !ownedBy(link, from)) malformed('spawn: l is not a process of the sender');
    if ((watcher === undefined) !== (ref === undefined)) malformed('spawn: w and r go together');
    if (watcher !== undefined && (!ownedBy(watcher, from) || !ownedBy(ref!, from))) malformed('spawn: w or r is not of the sender');
    const host = this.deps.host;
    let answered = false;
    const answer = (reply: Record<string, unknown>): void => {
      answered = true;
      this.deps.send(from.node, from.creation, 'spawned', encodeAnswer(reply));
    };
    startFromCatalogue(host.node, key, body['a'], {
      name: name as string | undefined,
      timeout,
      onCreated: (pid) => {
        if (link !== undefined) host.link(link, pid);
        if (watcher !== undefined) host.monitor(watcher, pid, ref!);
      },
      onFailed: (pid) => {
        if (link !== undefined) host.unlink(link, pid);
        if (watcher !== undefined) host.demonitor(watcher, pid, ref!);
      },
      onStarted: (pid) => answer({ i: id, p: pid }),
    }).catch((error: unknown) => {
      if (!answered) answer(failureBody(id, error));
    });
  }
}

function malformed(why: string): never {
  throw new WireDecodeError('malformed', why);
}

/** Whether `id` (a pid or ref) belongs to the sender's incarnation. */
function ownedBy(id: Pid | Ref, from: Sender): boolean {
  return id.node === from.node && id.creation === from.creation;
}

/** A WireEncodeError about the request body, as the caller sees it: a path inside the args (`$.x`), or the name. */
function badArgs(request: RemoteSpawnRequest, error: WireEncodeError): SpawnError {
  let cause = error;
  const match = /^\$\.([an])(?=$|[.[])/.exec(error.path);
  if (match !== null) {
    const path = `$${error.path.slice(3)}`;
    const what = match[1] === 'a' ? '' : ' (in the name)';
    cause = new WireEncodeError(`${error.message.slice(0, error.message.lastIndexOf(error.path))}${path}${what}`, path);
  }
  return new SpawnError('bad_args', request.node, request.key, { detail: cause.message, cause });
}

/** The `spawned` body of a start that failed. */
function failureBody(id: number, error: unknown): Record<string, unknown> {
  if (error instanceof SpawnError) return { i: id, c: error.code };
  if (error instanceof AlreadyStartedError) return error.pid === undefined ? { i: id, c: 'already_started' } : { i: id, c: 'already_started', h: error.pid };
  if (error instanceof StartError) return error.reason === 'timeout' ? { i: id, c: 'timeout', e: 'timeout' } : { i: id, c: 'start_failed', e: error.reason };
  if (error instanceof NodeStoppedError) return { i: id, c: 'noconnection', d: error.message };
  return { i: id, c: 'bad_args', d: error instanceof Error ? error.message : String(error) };
}

/** An answer whose reason cannot cross still must: it goes as its description. */
function encodeAnswer(reply: Record<string, unknown>): string {
  try {
    return EnvelopeCodec.body(reply);
  } catch {
    return EnvelopeCodec.body({ ...reply, e: String(reply['e']) });
  }
}

/** The error a failed answer stands for. */
function failure(request: RemoteSpawnRequest, code: AnswerCode, body: Record<string, unknown>): Error {
  const { node, key } = request;
  const detail = typeof body['d'] === 'string' ? body['d'] : undefined;
  if (code === 'already_started') return new AlreadyStartedError(body['h'] as Pid | undefined, describeDest(request.name));
  if (code === 'start_failed') return new SpawnError('start_failed', node, key, { reason: body['e'] as ExitReason });
  if (code === 'unknown_behaviour') return new SpawnError(code, node, key, { detail: `nothing is registered under it in ${node}'s node.behaviours` });
  return new SpawnError(code as SpawnErrorCode, node, key, detail === undefined ? {} : { detail });
}
