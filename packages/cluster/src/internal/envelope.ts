import { createHmac, timingSafeEqual } from 'node:crypto';
import { Pid, Ref } from '@roster/core';
import { WireDecodeError, WireEncodeError } from '../errors.js';
import { isFeatureList } from './features.js';
import { MAX_DEPTH, fromWire, toWire } from './wire-values.js';

/** The envelope version this node speaks. */
export const WIRE_VERSION = 1;

/**
 * Every frame is one envelope:
 * `{"v":1,"c":cluster,"f":fromNode,"i":fromCreation,"k":kind,"q":seq,"r":toCreation,"b":body}`,
 * prefixed with `~<HMAC-SHA256 base64url, 43 chars>` when the cluster has a
 * secret. `q` is the sender's sequence number on the stream the frame travels
 * (its broadcasts, or its direct frames to one receiver incarnation); `r`,
 * only on direct frames, is the receiver's creation. Bodies by kind are in
 * docs/protocol.md.
 */
export type Kind = 'hello' | 'hb' | 'refuse' | 'leave' | 'msg' | 'call' | 'nmsg' | 'link' | 'unlink' | 'exit' | 'mon' | 'demon' | 'down' | 'ch' | 'spawn' | 'spawned';

export interface Envelope {
  readonly from: string;
  readonly creation: string;
  readonly kind: Kind;
  readonly body: Record<string, unknown>;
  /** The sender's sequence number on this frame's stream; undefined on a hand-written frame without one. */
  readonly seq: number | undefined;
  /** Direct frames only: the creation of the receiver the sender meant. */
  readonly to: string | undefined;
}

export interface CodecOptions {
  readonly cluster: string;
  readonly node: string;
  readonly creation: string;
  readonly secret: Buffer | undefined;
  readonly maxFrameBytes: number;
}

const KINDS = new Set<string>(['hello', 'hb', 'refuse', 'leave', 'msg', 'call', 'nmsg', 'link', 'unlink', 'exit', 'mon', 'demon', 'down', 'ch', 'spawn', 'spawned']);
const SIGNATURE_LENGTH = 43;
/**
 * Deepest bracket nesting a frame may have: the envelope and its body, then
 * a value of `MAX_DEPTH` levels, each possibly wrapped in `{"$obj": …}`,
 * with a tagged leaf (`{"$pid":[…]}`) at the bottom.
 */
export const MAX_FRAME_DEPTH = 2 * (MAX_DEPTH + 2) + 4;

/** Encodes and decodes this node's envelopes. */
export class EnvelopeCodec {
  readonly #prefix: string;
  readonly #cluster: string;
  readonly #secret: Buffer | undefined;
  readonly #maxFrameBytes: number;

  constructor(options: CodecOptions) {
    this.#cluster = options.cluster;
    this.#secret = options.secret;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#prefix = `{"v":${WIRE_VERSION},"c":${JSON.stringify(options.cluster)},"f":${JSON.stringify(options.node)},"i":${JSON.stringify(options.creation)},"k":"`;
  }

  /**
   * Throws `WireEncodeError` for a body value that cannot cross. `seq` is the
   * frame's sequence number on its stream; `to`, for a direct frame, is the
   * receiver's creation as a JSON string (`JSON.stringify(creation)`).
   */
  encode(kind: Kind, body: Record<string, unknown>, seq: number, to?: string): string {
    return this.frame(kind, EnvelopeCodec.body(body), seq, to);
  }

  /** A body serialised once, for {@link frame} to put in several envelopes. Throws `WireEncodeError`. */
  static body(body: Record<string, unknown>): string {
    return JSON.stringify(toWire(body));
  }

  /**
   * The body of a `ch` frame whose message is plain JSON (`j`), written by
   * `JSON.stringify` alone: no tagged copy of the message is made, and the
   * receiver decodes none. Throws `WireEncodeError` for what it cannot write.
   */
  static plainChannelBody(channel: string, message: unknown): string {
    let json: string | undefined;
    try {
      json = JSON.stringify(message);
    } catch (error) {
      throw new WireEncodeError(`cannot send: ${(error as Error).message}`, '$');
    }
    if (json === undefined) throw new WireEncodeError('cannot send: the message is not JSON', '$');
    return `{"n":${JSON.stringify(channel)},"j":${json}}`;
  }

  /** An envelope around a body from {@link body}; see {@link encode}. */
  frame(kind: Kind, body: string, seq: number, to?: string): string {
    const json = to === undefined ? `${this.#prefix}${kind}","q":${seq},"b":${body}}` : `${this.#prefix}${kind}","q":${seq},"r":${to},"b":${body}}`;
    if (json.length * 3 > this.#maxFrameBytes && Buffer.byteLength(json) > this.#maxFrameBytes) {
      throw new WireEncodeError(`cannot send: the message is larger than maxFrameBytes (${this.#maxFrameBytes} bytes)`, '$');
    }
    return this.#secret === undefined ? json : `~${sign(this.#secret, json)}${json}`;
  }

  /** Validates a frame and decodes it; throws `WireDecodeError` saying why it must be dropped. */
  decode(frame: string): Envelope {
    if (typeof frame !== 'string') throw new WireDecodeError('malformed', 'frame is not a string');
    if (frame.length > this.#maxFrameBytes || (frame.length * 3 > this.#maxFrameBytes && Buffer.byteLength(frame) > this.#maxFrameBytes)) {
      throw new WireDecodeError('oversized', `frame of ${Buffer.byteLength(frame)} bytes exceeds ${this.#maxFrameBytes}`);
    }
    let json = frame;
    if (this.#secret !== undefined) {
      if (frame.charCodeAt(0) !== 126 /* ~ */ || frame.length <= SIGNATURE_LENGTH + 1) {
        throw new WireDecodeError('bad_signature', 'unsigned frame');
      }
      json = frame.slice(SIGNATURE_LENGTH + 1);
      const expected = Buffer.from(sign(this.#secret, json));
      const given = Buffer.from(frame.slice(1, SIGNATURE_LENGTH + 1));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new WireDecodeError('bad_signature', 'forged or corrupted signature');
      }
    } else if (frame.charCodeAt(0) === 126) {
      throw new WireDecodeError('bad_signature', 'signed frame, but this node has no cluster secret');
    }
    checkDepth(json);
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      throw new WireDecodeError('malformed', 'not JSON');
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new WireDecodeError('malformed', 'not an envelope object');
    const { v, c, f, i, k, q, r, b } = raw as Record<string, unknown>;
    if (v !== WIRE_VERSION) throw new WireDecodeError('version', `unsupported envelope version ${JSON.stringify(v)}`);
    if (c !== this.#cluster) throw new WireDecodeError('foreign_cluster', `frame of cluster ${JSON.stringify(c)}`);
    if (typeof f !== 'string' || f.length === 0 || typeof i !== 'string' || i.length === 0) {
      throw new WireDecodeError('malformed', 'missing sender');
    }
    if (typeof k !== 'string' || !KINDS.has(k)) throw new WireDecodeError('malformed', `unknown kind ${JSON.stringify(k)}`);
    if (q !== undefined && !(Number.isSafeInteger(q) && (q as number) > 0)) throw new WireDecodeError('malformed', 'bad sequence number');
    if (r !== undefined && !isString(r)) throw new WireDecodeError('malformed', 'bad receiver creation');
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new WireDecodeError('malformed', 'body is not an object');
    const body = k === 'ch' && 'j' in b ? checkedPlainBody(b as Record<string, unknown>) : (fromWire(b) as Record<string, unknown>);
    validateBody(k as Kind, body);
    return { from: f, creation: i, kind: k as Kind, body, seq: q as number | undefined, to: r as string | undefined };
  }
}

/** A `ch` body carrying plain JSON (`j`): left as parsed, for the channel's handler to check; it has no `m` beside. */
function checkedPlainBody(body: Record<string, unknown>): Record<string, unknown> {
  if ('m' in body) throw new WireDecodeError('malformed', 'ch: both m and j');
  return body;
}

/**
 * Frames up to this many characters skip the depth scan: `JSON.parse` is
 * iterative (no stack to exhaust), `fromWire` refuses values nested deeper
 * than the wire allows, and parsing even a maximally nested frame this size
 * costs about a millisecond, what a flat frame four times larger costs. The
 * scan protects larger frames from deep nesting's 4-5x parse cost, and costs
 * small ones (the registry's batches, calls) nothing.
 */
const DEPTH_SCAN_FROM = 16 * 1024;

/**
 * Refuses JSON nested deeper than {@link MAX_FRAME_DEPTH} before `JSON.parse`
 * spends time on it: one linear pass over the brackets outside strings,
 * skipping each string with `indexOf`.
 */
function checkDepth(json: string): void {
  if (json.length <= DEPTH_SCAN_FROM || !mayNestTooDeep(json)) return;
  let depth = 0;
  const length = json.length;
  for (let index = 0; index < length; index++) {
    const code = json.charCodeAt(index);
    if (code === 34 /* " */) {
      // To the closing quote: one not preceded by an odd run of backslashes.
      for (;;) {
        const close = json.indexOf('"', index + 1);
        if (close === -1) return; // unterminated: JSON.parse says malformed
        let slashes = 0;
        while (json.charCodeAt(close - 1 - slashes) === 92 /* \ */) slashes++;
        index = close;
        if ((slashes & 1) === 0) break;
      }
    } else if (code === 91 /* [ */ || code === 123 /* { */) {
      if (++depth > MAX_FRAME_DEPTH) throw new WireDecodeError('malformed', `nested too deep (more than ${MAX_FRAME_DEPTH} levels)`);
    } else if (code === 93 /* ] */ || code === 125 /* } */) {
      depth--;
    }
  }
}

/**
 * Whether `json` holds more opening brackets than {@link MAX_FRAME_DEPTH}
 * (inside strings or not): if not, it cannot nest that deep, and most frames
 * are answered by a few native `indexOf` calls without the scan.
 */
function mayNestTooDeep(json: string): boolean {
  let count = 0;
  for (let at = json.indexOf('{'); at !== -1; at = json.indexOf('{', at + 1)) if (++count > MAX_FRAME_DEPTH) return true;
  for (let at = json.indexOf('['); at !== -1; at = json.indexOf('[', at + 1)) if (++count > MAX_FRAME_DEPTH) return true;
  return false;
}

function sign(secret: Buffer, json: string): string {
  return createHmac('sha256', secret).update(json).digest('base64url');
}

const isPid = (value: unknown): boolean => value instanceof Pid;
const isRef = (value: unknown): boolean => value instanceof Ref;
const isString = (value: unknown): boolean => typeof value === 'string' && value.length > 0;
const isCount = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0;
const optional = (check: (value: unknown) => boolean) => (value: unknown): boolean => value === undefined || check(value);
/** `c` of a heartbeat: by peer name, the last direct sequence number sent to it. */
const isCounts = (value: unknown): boolean => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const key in value) if (!isCount((value as Record<string, unknown>)[key])) return false;
  return true;
};
const isTime = optional(isCount);
/** `w` of a hello or hb: present (and true) only when the sender is an observer. */
const isTrue = (value: unknown): boolean => value === true;
/** A request id of a remote spawn: a positive safe integer. */
const isId = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) > 0;
/** A spawn's timeout in ms: finite and > 0. */
const isMs = (value: unknown): boolean => typeof value === 'number' && value > 0 && Number.isFinite(value);

/** The fields each kind must carry, and what they must be. */
const SHAPES: Record<Kind, Record<string, (value: unknown) => boolean>> = {
  // `f`: the features the sender reads (see features.ts); absent from an older node.
  hello: { a: isString, s: isCount, t: isTime, w: optional(isTrue), f: optional(isFeatureList) },
  hb: { a: isString, s: isCount, t: isTime, c: optional(isCounts), w: optional(isTrue), f: optional(isFeatureList) },
  refuse: { reason: isString },
  leave: { t: isTime },
  // `d`: a server's reply that dropped the caller's monitor under that ref (then `f`, the server, is required).
  msg: { t: isPid, f: optional(isPid), d: optional(isRef) },
  // A call's request with its reply port `w`'s monitor of `t` under `r`.
  call: { t: isPid, f: optional(isPid), w: isPid, r: isRef },
  nmsg: { n: isString, f: optional(isPid) },
  link: { f: isPid, t: isPid },
  unlink: { f: isPid, t: isPid },
  exit: { f: isPid, t: isPid, x: (value) => value === 'link' || value === 'exit' },
  mon: { w: isPid, t: isPid, r: isRef },
  demon: { w: isPid, t: isPid, r: isRef },
  down: { w: isPid, p: isPid, r: isRef },
  ch: { n: isString },
  // The rest of a spawn's fields (key length, name, whose pids) is checked by the spawn service.
  spawn: { i: isId, k: isString, o: isMs, l: optional(isPid), w: optional(isPid), r: optional(isRef) },
  spawned: { i: isId, p: optional(isPid), c: optional(isString) },
};

function validateBody(kind: Kind, body: Record<string, unknown>): void {
  const shape = SHAPES[kind];
  for (const field in shape) {
    if (!shape[field]!(body[field])) throw new WireDecodeError('malformed', `${kind}: bad or missing field ${field}`);
  }
}
