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
  /** A member applied the owner's `commit` or acknowledged `release` of (name, epoch). */
  | { readonly op: 'ack'; readonly name: Name; readonly epoch: WireEpoch; readonly of: 'commit' | 'release' }
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
 * Validates an incoming registry message, or a batch of them (`{ op: 'batch',
 * messages }`); throws `MalformedMessage` saying what is wrong.
 */
export function parseMessages(raw: unknown): GlobalsMessage[] {
  if (typeof raw === 'object' && raw !== null && (raw as { op?: unknown }).op === 'batch') {
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
      name(message);
      pid(message, 'pid');
      epoch(message['epoch']);
      if (message['round'] !== undefined) count(message, 'round');
      break;
    case 'vote':
      name(message);
      epoch(message['epoch']);
      if (message['round'] !== undefined) count(message, 'round');
      if (message['vote'] === 'no') text(message, 'holder');
      else if (message['vote'] === 'remote') text(message, 'owner');
      else if (message['vote'] !== 'yes') throw new MalformedMessage('vote: bad vote');
      break;
    case 'release':
      name(message);
      epoch(message['epoch']);
      text(message, 'reason');
      if (message['ack'] !== undefined && typeof message['ack'] !== 'boolean') throw new MalformedMessage('release: bad ack');
      break;
    case 'abort':
      name(message);
      epoch(message['epoch']);
      break;
    case 'ack':
      name(message);
      epoch(message['epoch']);
      if (message['of'] !== 'commit' && message['of'] !== 'release') throw new MalformedMessage('ack: bad of');
      break;
    case 'sync': {
      const claims = message['claims'];
      if (claims !== undefined) {
        if (!Array.isArray(claims)) throw new MalformedMessage('sync: claims is not an array');
        for (const claim of claims) {
          if (typeof claim !== 'object' || claim === null) throw new MalformedMessage('sync: bad claim');
          name(claim as Record<string, unknown>);
          pid(claim as Record<string, unknown>, 'pid');
          epoch((claim as Record<string, unknown>)['epoch']);
        }
      }
      epoch(message['at']);
      if (typeof message['want'] !== 'boolean') throw new MalformedMessage('sync: bad want');
      if (message['more'] !== undefined && typeof message['more'] !== 'boolean') throw new MalformedMessage('sync: bad more');
      const sids = message['sids'];
      if (!Array.isArray(sids) || sids.length > MAX_SIDS || !sids.every((sid) => Number.isSafeInteger(sid) && sid > 0)) {
        throw new MalformedMessage(`sync: sids must be an array of at most ${MAX_SIDS} positive integers`);
      }
      break;
    }
    case 'unregister':
      name(message);
      count(message, 'qid');
      break;
    case 'unregistered':
      count(message, 'qid');
      break;
    case 'down':
      break;
    case 'whereis':
      name(message);
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
function name(message: Record<string, unknown>): void {
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
