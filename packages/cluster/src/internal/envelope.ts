import { createHmac, timingSafeEqual } from 'node:crypto';
import { Pid, Ref } from '@roster/core';
import { WireDecodeError, WireEncodeError } from '../errors.js';
import { fromWire, toWire } from './wire-values.js';

/** The envelope version this node speaks. */
export const WIRE_VERSION = 1;

/**
 * Every frame is one envelope:
 * `{"v":1,"c":cluster,"f":fromNode,"i":fromCreation,"k":kind,"b":body}`,
 * prefixed with `~<HMAC-SHA256 base64url, 43 chars>` when the cluster has a
 * secret. Bodies by kind are in docs/protocol.md.
 */
export type Kind = 'hello' | 'hb' | 'refuse' | 'leave' | 'msg' | 'link' | 'unlink' | 'exit' | 'mon' | 'demon' | 'down' | 'ch';

export interface Envelope {
  readonly from: string;
  readonly creation: string;
  readonly kind: Kind;
  readonly body: Record<string, unknown>;
}

export interface CodecOptions {
  readonly cluster: string;
  readonly node: string;
  readonly creation: string;
  readonly secret: Buffer | undefined;
  readonly maxFrameBytes: number;
}

const KINDS = new Set<string>(['hello', 'hb', 'refuse', 'leave', 'msg', 'link', 'unlink', 'exit', 'mon', 'demon', 'down', 'ch']);
const SIGNATURE_LENGTH = 43;

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

  /** Throws `WireEncodeError` for a body value that cannot cross. */
  encode(kind: Kind, body: Record<string, unknown>): string {
    const json = `${this.#prefix}${kind}","b":${JSON.stringify(toWire(body))}}`;
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
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      throw new WireDecodeError('malformed', 'not JSON');
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new WireDecodeError('malformed', 'not an envelope object');
    const { v, c, f, i, k, b } = raw as Record<string, unknown>;
    if (v !== WIRE_VERSION) throw new WireDecodeError('version', `unsupported envelope version ${JSON.stringify(v)}`);
    if (c !== this.#cluster) throw new WireDecodeError('foreign_cluster', `frame of cluster ${JSON.stringify(c)}`);
    if (typeof f !== 'string' || f.length === 0 || typeof i !== 'string' || i.length === 0) {
      throw new WireDecodeError('malformed', 'missing sender');
    }
    if (typeof k !== 'string' || !KINDS.has(k)) throw new WireDecodeError('malformed', `unknown kind ${JSON.stringify(k)}`);
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new WireDecodeError('malformed', 'body is not an object');
    const body = fromWire(b) as Record<string, unknown>;
    validateBody(k as Kind, body);
    return { from: f, creation: i, kind: k as Kind, body };
  }
}

function sign(secret: Buffer, json: string): string {
  return createHmac('sha256', secret).update(json).digest('base64url');
}

const isPid = (value: unknown): boolean => value instanceof Pid;
const isRef = (value: unknown): boolean => value instanceof Ref;
const isString = (value: unknown): boolean => typeof value === 'string' && value.length > 0;
const isCount = (value: unknown): boolean => Number.isSafeInteger(value) && (value as number) >= 0;

/** The fields each kind must carry, and what they must be. */
const SHAPES: Record<Kind, Record<string, (value: unknown) => boolean>> = {
  hello: { a: isString, s: isCount },
  hb: { a: isString, s: isCount },
  refuse: { reason: isString },
  leave: {},
  msg: { t: isPid },
  link: { f: isPid, t: isPid },
  unlink: { f: isPid, t: isPid },
  exit: { f: isPid, t: isPid, x: (value) => value === 'link' || value === 'exit' },
  mon: { w: isPid, t: isPid, r: isRef },
  demon: { w: isPid, t: isPid, r: isRef },
  down: { w: isPid, p: isPid, r: isRef },
  ch: { n: isString },
};

function validateBody(kind: Kind, body: Record<string, unknown>): void {
  const shape = SHAPES[kind];
  for (const field in shape) {
    if (!shape[field]!(body[field])) throw new WireDecodeError('malformed', `${kind}: bad or missing field ${field}`);
  }
}
