import { Pid, type Name } from '@roster/core';
import type { Epoch } from '../epoch.js';
import { globalKey } from './name-limits.js';

/**
 * The registry's wire messages, carried on the cluster channel `globals`
 * (docs/protocol.md). Epochs travel as `[wall, counter, node]`.
 */
export type WireEpoch = [number, number, string];

/** A claim as a sync lists it. */
export type WireClaim = { readonly name: Name; readonly pid: Pid; readonly epoch: WireEpoch };

export type GlobalsMessage =
  /** `round` counts the claim's voting rounds (a new one when the view changes mid-claim); absent: 0. */
  | { readonly op: 'claim'; readonly name: Name; readonly pid: Pid; readonly epoch: WireEpoch; readonly round?: number }
  | { readonly op: 'vote'; readonly name: Name; readonly epoch: WireEpoch; readonly round?: number; readonly vote: 'yes' }
  | { readonly op: 'vote'; readonly name: Name; readonly epoch: WireEpoch; readonly round?: number; readonly vote: 'no'; readonly holder: string }
  | {
      readonly op: 'vote';
      readonly name: Name;
      readonly epoch: WireEpoch;
      readonly round?: number;
      readonly vote: 'remote';
      readonly owner: string;
    }
  | { readonly op: 'commit'; readonly name: Name; readonly pid: Pid; readonly epoch: WireEpoch }
  /** The claim (name, epoch) failed: voters stop holding it against other claims. */
  | { readonly op: 'abort'; readonly name: Name; readonly epoch: WireEpoch }
  | {
      readonly op: 'release';
      readonly name: Name;
      readonly epoch: WireEpoch;
      readonly reason: string;
      /** The owner waits for every member's `ack` (an explicit `unregisterName`). */
      readonly ack?: boolean;
    }
  /**
   * A member applied the owner's `commit` or acknowledged `release` of the
   * claim `epoch` (unique per owner). `name` is absent when it came in a
   * packed run of acks, which carries epochs only.
   */
  | { readonly op: 'ack'; readonly name?: Name; readonly epoch: WireEpoch; readonly of: 'commit' | 'release' }
  | {
      readonly op: 'sync';
      /**
       * Everything the sender owns (across the parts of one sync), or absent:
       * a bare request (`want: true`) that states nothing about the sender's claims.
       */
      readonly claims?: readonly WireClaim[];
      /** The sender's clock when it made this sync: fences it against claims and releases it sent later. */
      readonly at: WireEpoch;
      /** The receiver is asked to answer with its own claims. */
      readonly want: boolean;
      /** The requests (their `sid`s) this sync answers; a request carries its own `sid` here. */
      readonly sids: readonly number[];
      /** More parts of this sync follow (a node's claims travel in size-bounded parts). */
      readonly more?: boolean;
      /** The sender reads packed batches (`{ op: 'packed' }`): the receiver may send it them. Absent from older nodes. */
      readonly packed?: boolean;
      /** The sender reads runs of acks in packed batches (code 9): the receiver may send it them. Absent from older nodes. */
      readonly ackRuns?: boolean;
    }
  | { readonly op: 'whereis'; readonly name: Name; readonly qid: number }
  | { readonly op: 'where'; readonly qid: number; readonly pid: Pid | null }
  /** `unregisterName` on a node that does not own the name: the owner releases it (acknowledged) and answers `unregistered`. */
  | { readonly op: 'unregister'; readonly name: Name; readonly qid: number }
  | { readonly op: 'unregistered'; readonly qid: number }
  /** The sender's registry is down for good: it no longer votes, and holds no names. */
  | { readonly op: 'down' };

export const toWireEpoch = (epoch: Epoch): WireEpoch => [epoch.wall, epoch.counter, epoch.node];
export const fromWireEpoch = (epoch: WireEpoch): Epoch => ({ wall: epoch[0], counter: epoch[1], node: epoch[2] });

/** A message that failed validation: dropped, counted and logged by the registry. */
export class MalformedMessage extends Error {}

/** Most messages a batch may carry. */
const MAX_BATCH = 1024;
/** Most sync requests one sync may answer at once. */
const MAX_SIDS = 64;

/**
 * The packed form of the batched ops: each message one array, in a plain
 * JSON batch `{ op: 'packed', m: [entry, …] }` sent with `sendPlain` (no
 * tagged codec on either end; docs/protocol.md §5). A pid travels as its
 * three fields; an epoch as wall and counter, its node implied: the sender
 * for what a claimant or owner sends about its own claim (claim, commit,
 * abort, release), the receiver for what answers the receiver's claim
 * (votes, acks).
 *
 * | op            | entry                                                   |
 * | ------------- | ------------------------------------------------------- |
 * | claim         | `[0, name, pidNode, pidCreation, pidId, wall, counter, round]` |
 * | vote yes      | `[1, name, wall, counter, round]`                       |
 * | vote no       | `[2, name, wall, counter, round, holder]`               |
 * | vote remote   | `[3, name, wall, counter, round, owner]`                |
 * | commit        | `[4, name, pidNode, pidCreation, pidId, wall, counter]` |
 * | abort         | `[5, name, wall, counter]`                              |
 * | release       | `[6, name, wall, counter, reason, ack (0 or 1)]`        |
 * | ack of commit | `[7, name, wall, counter]`                              |
 * | ack of release| `[8, name, wall, counter]`                              |
 * | run of acks   | `[9, of (0 commit, 1 release), wall, counter, wall, counter, …]` |
 *
 * A run of acks carries consecutive acks of one kind by their epochs alone
 * (an epoch names one claim of its owner), for a peer that said in a sync
 * that it reads them (`ackRuns: true`): one entry, without names, instead of
 * one entry with its name per ack.
 */
export type PackedEntry = readonly unknown[];

const CLAIM = 0;
const VOTE_YES = 1;
const VOTE_NO = 2;
const VOTE_REMOTE = 3;
const COMMIT = 4;
const ABORT = 5;
const RELEASE = 6;
const ACK_COMMIT = 7;
const ACK_RELEASE = 8;
const ACK_RUN = 9;
/** Most acks in one run. */
export const MAX_ACK_RUN = 1024;

/**
 * `message` as a packed entry for `peer`, or undefined when it has no packed
 * form (an op that is not batched, or an epoch whose node is not the one the
 * entry implies): then it travels as it is.
 */
export function packMessage(message: GlobalsMessage, self: string, peer: string): PackedEntry | undefined {
  switch (message.op) {
    case 'claim': {
      const { name, pid, epoch } = message;
      return epoch[2] === self ? [CLAIM, name, pid.node, pid.creation, pid.id, epoch[0], epoch[1], message.round ?? 0] : undefined;
    }
    case 'vote': {
      const { name, epoch } = message;
      if (epoch[2] !== peer) return undefined;
      const round = message.round ?? 0;
      if (message.vote === 'yes') return [VOTE_YES, name, epoch[0], epoch[1], round];
      if (message.vote === 'no') return [VOTE_NO, name, epoch[0], epoch[1], round, message.holder];
      return [VOTE_REMOTE, name, epoch[0], epoch[1], round, message.owner];
    }
    case 'commit': {
      const { name, pid, epoch } = message;
      return epoch[2] === self ? [COMMIT, name, pid.node, pid.creation, pid.id, epoch[0], epoch[1]] : undefined;
    }
    case 'abort':
      return message.epoch[2] === self ? [ABORT, message.name, message.epoch[0], message.epoch[1]] : undefined;
    case 'release': {
      const { name, epoch } = message;
      return epoch[2] === self ? [RELEASE, name, epoch[0], epoch[1], message.reason, message.ack === true ? 1 : 0] : undefined;
    }
    case 'ack':
      if (message.name === undefined) return startAckRun(message, peer);
      return message.epoch[2] === peer ? [message.of === 'commit' ? ACK_COMMIT : ACK_RELEASE, message.name, message.epoch[0], message.epoch[1]] : undefined;
    default:
      return undefined;
  }
}

/**
 * Appends the ack `message` (for `peer`, whose epoch it names) to `run`
 * when `run` is a run of acks of its kind with room left; true when it did.
 */
export function extendAckRun(run: PackedEntry | undefined, message: GlobalsMessage, peer: string): boolean {
  if (run === undefined || run[0] !== ACK_RUN || message.op !== 'ack' || message.epoch[2] !== peer) return false;
  if (run[1] !== (message.of === 'commit' ? 0 : 1) || run.length >= 2 + 2 * MAX_ACK_RUN) return false;
  (run as unknown[]).push(message.epoch[0], message.epoch[1]);
  return true;
}

/** A run of acks holding the ack `message` for `peer` alone, or undefined when it cannot start one. */
export function startAckRun(message: GlobalsMessage, peer: string): PackedEntry | undefined {
  if (message.op !== 'ack' || message.epoch[2] !== peer) return undefined;
  return [ACK_RUN, message.of === 'commit' ? 0 : 1, message.epoch[0], message.epoch[1]];
}

/** Entry lengths by code: anything else is malformed (a run of acks is checked on its own). */
const PACKED_LENGTHS = [8, 5, 6, 6, 7, 4, 6, 4, 4];

/**
 * Validates a packed entry from `from` (received by `self`) and gives the
 * message it stands for, built as an object literal per op (one shape each,
 * as the table's handlers see from the tagged path).
 */
function unpackEntry(raw: unknown, from: string, self: string): GlobalsMessage {
  if (!Array.isArray(raw) || !Number.isInteger(raw[0]) || PACKED_LENGTHS[raw[0] as number] !== raw.length) {
    throw new MalformedMessage('packed: bad entry');
  }
  const entry = raw as unknown[];
  const name = entry[1] as Name;
  let message: GlobalsMessage;
  switch (entry[0] as number) {
    case CLAIM:
      message = { op: 'claim', name, pid: packedPid(entry[2], entry[3], entry[4]), epoch: packedEpoch(entry[5], entry[6], from), round: packedCount(entry[7]) };
      break;
    case COMMIT:
      message = { op: 'commit', name, pid: packedPid(entry[2], entry[3], entry[4]), epoch: packedEpoch(entry[5], entry[6], from) };
      break;
    case VOTE_YES:
      message = { op: 'vote', name, epoch: packedEpoch(entry[2], entry[3], self), round: packedCount(entry[4]), vote: 'yes' };
      break;
    case VOTE_NO:
      message = { op: 'vote', name, epoch: packedEpoch(entry[2], entry[3], self), round: packedCount(entry[4]), vote: 'no', holder: packedText(entry[5]) };
      break;
    case VOTE_REMOTE:
      message = { op: 'vote', name, epoch: packedEpoch(entry[2], entry[3], self), round: packedCount(entry[4]), vote: 'remote', owner: packedText(entry[5]) };
      break;
    case ABORT:
      message = { op: 'abort', name, epoch: packedEpoch(entry[2], entry[3], from) };
      break;
    case RELEASE: {
      const ack = entry[5];
      if (ack !== 0 && ack !== 1) throw new MalformedMessage('packed: bad release ack');
      message = { op: 'release', name, epoch: packedEpoch(entry[2], entry[3], from), reason: packedText(entry[4]), ack: ack === 1 };
      break;
    }
    default:
      message = { op: 'ack', name, epoch: packedEpoch(entry[2], entry[3], self), of: entry[0] === ACK_COMMIT ? 'commit' : 'release' };
  }
  nameOf(message as unknown as Record<string, unknown>);
  return message;
}

/** Validates a run of acks (of claims of `self`) and appends the acks it stands for to `messages`. */
function unpackAckRun(entry: readonly unknown[], self: string, messages: GlobalsMessage[]): void {
  const kind = entry[1];
  if ((kind !== 0 && kind !== 1) || entry.length < 4 || entry.length % 2 !== 0 || entry.length > 2 + 2 * MAX_ACK_RUN) {
    throw new MalformedMessage('packed: bad run of acks');
  }
  const of = kind === 0 ? 'commit' : 'release';
  for (let index = 2; index < entry.length; index += 2) messages.push({ op: 'ack', epoch: packedEpoch(entry[index], entry[index + 1], self), of });
}

function packedPid(node: unknown, creation: unknown, id: unknown): Pid {
  if (typeof node !== 'string' || node.length === 0 || typeof creation !== 'string' || !Number.isSafeInteger(id) || (id as number) < 0) {
    throw new MalformedMessage('packed: bad pid');
  }
  return new Pid(node, creation, id as number);
}

function packedEpoch(wall: unknown, counter: unknown, node: string): WireEpoch {
  if (!Number.isSafeInteger(wall) || !Number.isSafeInteger(counter) || (counter as number) < 0) throw new MalformedMessage('packed: bad epoch');
  return [wall as number, counter as number, node];
}

function packedCount(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new MalformedMessage('packed: bad count');
  return value as number;
}

function packedText(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new MalformedMessage('packed: bad text');
  return value;
}

/**
 * Validates an incoming registry message, a batch of them (`{ op: 'batch',
 * messages }`), or a packed batch (`{ op: 'packed', m }`, from `from` to
 * `self`); throws `MalformedMessage` saying what is wrong.
 */
export function parseMessages(raw: unknown, from: string, self: string): GlobalsMessage[] {
  const op = typeof raw === 'object' && raw !== null ? (raw as { op?: unknown }).op : undefined;
  if (op === 'packed') {
    const entries = (raw as { m?: unknown }).m;
    if (!Array.isArray(entries) || entries.length === 0 || entries.length > MAX_BATCH) {
      throw new MalformedMessage('packed: m must be an array of 1 to 1024 entries');
    }
    const messages: GlobalsMessage[] = [];
    for (let index = 0; index < entries.length; index++) {
      const entry = entries[index];
      if (Array.isArray(entry) && entry[0] === ACK_RUN) unpackAckRun(entry, self, messages);
      else messages.push(unpackEntry(entry, from, self));
    }
    return messages;
  }
  if (op === 'batch') {
    const messages = (raw as { messages?: unknown }).messages;
    if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BATCH) {
      throw new MalformedMessage('batch: messages must be an array of 1 to 1024 messages');
    }
    return messages.map(parseMessage);
  }
  return [parseMessage(raw)];
}

/** Validates one registry message; throws `MalformedMessage` saying what is wrong. */
export function parseMessage(raw: unknown): GlobalsMessage {
  if (typeof raw !== 'object' || raw === null) throw new MalformedMessage('not an object');
  const message = raw as Record<string, unknown>;
  switch (message['op']) {
    case 'claim':
    case 'commit':
      nameOf(message);
      pid(message, 'pid');
      epoch(message['epoch']);
      if (message['round'] !== undefined) count(message, 'round');
      break;
    case 'vote':
      nameOf(message);
      epoch(message['epoch']);
      if (message['round'] !== undefined) count(message, 'round');
      if (message['vote'] === 'no') text(message, 'holder');
      else if (message['vote'] === 'remote') text(message, 'owner');
      else if (message['vote'] !== 'yes') throw new MalformedMessage('vote: bad vote');
      break;
    case 'release':
      nameOf(message);
      epoch(message['epoch']);
      text(message, 'reason');
      if (message['ack'] !== undefined && typeof message['ack'] !== 'boolean') throw new MalformedMessage('release: bad ack');
      break;
    case 'abort':
      nameOf(message);
      epoch(message['epoch']);
      break;
    case 'ack':
      nameOf(message);
      epoch(message['epoch']);
      if (message['of'] !== 'commit' && message['of'] !== 'release') throw new MalformedMessage('ack: bad of');
      break;
    case 'sync': {
      const claims = message['claims'];
      if (claims !== undefined) {
        if (!Array.isArray(claims)) throw new MalformedMessage('sync: claims is not an array');
        for (const claim of claims) {
          if (typeof claim !== 'object' || claim === null) throw new MalformedMessage('sync: bad claim');
          nameOf(claim as Record<string, unknown>);
          pid(claim as Record<string, unknown>, 'pid');
          epoch((claim as Record<string, unknown>)['epoch']);
        }
      }
      epoch(message['at']);
      if (typeof message['want'] !== 'boolean') throw new MalformedMessage('sync: bad want');
      if (message['more'] !== undefined && typeof message['more'] !== 'boolean') throw new MalformedMessage('sync: bad more');
      if (message['packed'] !== undefined && typeof message['packed'] !== 'boolean') throw new MalformedMessage('sync: bad packed');
      if (message['ackRuns'] !== undefined && typeof message['ackRuns'] !== 'boolean') throw new MalformedMessage('sync: bad ackRuns');
      const sids = message['sids'];
      if (!Array.isArray(sids) || sids.length > MAX_SIDS || !sids.every((sid) => Number.isSafeInteger(sid) && sid > 0)) {
        throw new MalformedMessage(`sync: sids must be an array of at most ${MAX_SIDS} positive integers`);
      }
      break;
    }
    case 'unregister':
      nameOf(message);
      count(message, 'qid');
      break;
    case 'unregistered':
      count(message, 'qid');
      break;
    case 'down':
      break;
    case 'whereis':
      nameOf(message);
      count(message, 'qid');
      break;
    case 'where':
      count(message, 'qid');
      if (message['pid'] !== null) pid(message, 'pid');
      break;
    default:
      throw new MalformedMessage(`unknown op ${JSON.stringify(message['op'])}`);
  }
  return message as unknown as GlobalsMessage;
}

/**
 * Validates the name (the limits of a name registered here: a peer cannot
 * make this node hold what it would refuse) and keeps its key on the message
 * (`keyOf`), so it is encoded once.
 */
function nameOf(message: Record<string, unknown>): void {
  if (!('name' in message)) throw new MalformedMessage('missing name');
  try {
    (message as Record<PropertyKey, unknown>)[KEY] = globalKey(message['name'] as Name);
  } catch (error) {
    throw new MalformedMessage((error as Error).message);
  }
}

const KEY = Symbol('name key');

/** The name key of a validated message (or claim), computed when it was parsed; otherwise computed now. */
export function keyOf(message: { readonly name: Name }): string {
  return (message as { [KEY]?: string })[KEY] ?? globalKey(message.name);
}

function pid(message: Record<string, unknown>, field: string): void {
  if (!(message[field] instanceof Pid)) throw new MalformedMessage(`${field} is not a pid`);
}

function text(message: Record<string, unknown>, field: string): void {
  if (typeof message[field] !== 'string' || (message[field] as string).length === 0) throw new MalformedMessage(`bad ${field}`);
}

function count(message: Record<string, unknown>, field: string): void {
  if (!Number.isSafeInteger(message[field]) || (message[field] as number) < 0) throw new MalformedMessage(`bad ${field}`);
}

function epoch(value: unknown): void {
  if (
    !Array.isArray(value) ||
    value.length !== 3 ||
    !Number.isSafeInteger(value[0]) ||
    !Number.isSafeInteger(value[1]) ||
    (value[1] as number) < 0 ||
    typeof value[2] !== 'string' ||
    value[2].length === 0
  ) {
    throw new MalformedMessage('bad epoch');
  }
}
