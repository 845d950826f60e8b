import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Pid, Ref } from '@roster/core';
import { WireDecodeError, WireEncodeError, type DropReason } from '../src/errors.js';
import { EnvelopeCodec, MAX_FRAME_DEPTH, WIRE_VERSION, type Kind } from '../src/internal/envelope.js';
import { fromWire, toWire } from '../src/internal/wire-values.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

/** What crosses the wire: encode, stringify, parse, decode (as the cluster does). */
const roundTrip = (value: unknown): unknown => fromWire(JSON.parse(JSON.stringify(toWire(value))));

const codec = (options: { node?: string; creation?: string; cluster?: string; secret?: string | Buffer; maxFrameBytes?: number } = {}) =>
  new EnvelopeCodec({
    cluster: options.cluster ?? 'c1',
    node: options.node ?? 'alpha',
    creation: options.creation ?? 'creA',
    secret: options.secret === undefined ? undefined : Buffer.from(options.secret),
    maxFrameBytes: options.maxFrameBytes ?? 64 * 1024,
  });

const pidA = new Pid('alpha', 'creA', 7);
const pidB = new Pid('beta', 'creB', 1);
const refA = new Ref('alpha', 'creA', 3);

/** A raw envelope, as a peer (or an attacker) would write it. */
function rawFrame(fields: Record<string, unknown>, secret?: string): string {
  const { b = { t: { $pid: ['alpha', 'creA', 7] }, m: 1 }, ...rest } = fields;
  const json = JSON.stringify({ v: WIRE_VERSION, c: 'c1', f: 'beta', i: 'creB', k: 'msg', ...rest, b });
  return secret === undefined ? json : `~${createHmac('sha256', secret).update(json).digest('base64url')}${json}`;
}

function assertDrop(decoder: EnvelopeCodec, frame: unknown, reason: DropReason): void {
  assert.throws(
    () => decoder.decode(frame as string),
    (error: unknown) => {
      assert.ok(error instanceof WireDecodeError, `expected a WireDecodeError, got ${String(error)}`);
      assert.equal(error.reason, reason, `frame ${String(frame).slice(0, 120)}: ${error.message}`);
      return true;
    },
  );
}

describe('wire values', () => {
  it('round-trips the tagged values', () => {
    const date = new Date('2024-02-29T12:34:56.789Z');
    const error = Object.assign(new TypeError('bad thing'), { code: 'E_BAD' });
    const value = {
      pid: pidA,
      ref: refA,
      date,
      error,
      missing: undefined,
      nan: NaN,
      inf: Infinity,
      ninf: -Infinity,
      big: 12345678901234567890n,
      nbig: -5n,
      list: [undefined, null, 1, 'two', [pidB]],
      nested: { deeper: { pid: pidB } },
    };
    const back = roundTrip(value) as typeof value;
    assert.ok(back.pid instanceof Pid && back.pid.equals(pidA));
    assert.equal(back.pid.key, pidA.key);
    assert.ok(back.ref instanceof Ref && back.ref.equals(refA));
    assert.ok(back.date instanceof Date);
    assert.equal(back.date.toISOString(), date.toISOString());
    assert.ok(back.error instanceof Error);
    assert.equal(back.error.name, 'TypeError');
    assert.equal(back.error.message, 'bad thing');
    assert.equal(back.error.stack, error.stack);
    assert.equal((back.error as Error & { code?: string }).code, 'E_BAD');
    assert.ok('missing' in back);
    assert.equal(back.missing, undefined);
    assert.ok(Number.isNaN(back.nan));
    assert.equal(back.inf, Infinity);
    assert.equal(back.ninf, -Infinity);
    assert.equal(back.big, 12345678901234567890n);
    assert.equal(back.nbig, -5n);
    assert.deepEqual(back.list, [undefined, null, 1, 'two', [pidB]]);
    assert.ok((back.list[4] as Pid[])[0] instanceof Pid);
    assert.ok(back.nested.deeper.pid.equals(pidB));
    assert.equal(roundTrip(undefined), undefined);
    assert.equal(roundTrip(null), null);
    assert.equal(roundTrip('plain'), 'plain');
  });

  it('escapes objects whose keys start with $ so user data is never mistaken for a tag', () => {
    const lookalikes = [
      { $pid: ['alpha', 'creA', 7] },
      { $u: 0 },
      { $obj: { a: 1 } },
      { $err: { name: 'Error', message: 'not really' } },
      { $date: 'not a date' },
      { $zzz: 1 },
      { $a: 1, b: { $pid: 'nested' } },
      { price: '$5', $: '' },
    ];
    for (const value of lookalikes) {
      const wire = toWire(value) as Record<string, unknown>;
      assert.deepEqual(Object.keys(wire), ['$obj'], `escaped: ${JSON.stringify(value)}`);
      const back = roundTrip(value);
      assert.deepEqual(back, value);
      assert.ok(!(back instanceof Pid) && !(back instanceof Error) && !(back instanceof Date));
    }
    // Plain objects stay plain on the wire; `$` inside values needs no escaping.
    assert.deepEqual(toWire({ a: '$pid', b: ['$u'] }), { a: '$pid', b: ['$u'] });
    // An escaped object's values are still decoded.
    const back = roundTrip({ $x: pidA }) as { $x: unknown };
    assert.ok(back.$x instanceof Pid);
  });

  it('refuses what cannot cross, naming where it is', () => {
    class Point {
      constructor(readonly x: number) {}
    }
    const cases: [unknown, string, RegExp][] = [
      [{ a: () => 1 }, '$.a', /function/],
      [[1, 2, { f: Symbol('s') }], '$[2].f', /symbol/],
      [{ m: new Map([[1, 2]]) }, '$.m', /Map/],
      [{ deep: { s: new Set([1]) } }, '$.deep.s', /Set/],
      [{ list: [0, [new Point(1)]] }, '$.list[1][0]', /Point/],
      [function named() {}, '$', /function/],
    ];
    for (const [value, path, what] of cases) {
      assert.throws(
        () => toWire(value),
        (error: unknown) => {
          assert.ok(error instanceof WireEncodeError, String(error));
          assert.equal(error.path, path);
          assert.match(error.message, what);
          assert.ok(error.message.includes(path), error.message);
          return true;
        },
      );
    }
  });

  it('refuses cycles and absurd nesting instead of overflowing the stack', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    assert.throws(() => toWire(cyclic), WireEncodeError);
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = [deep];
    assert.throws(() => toWire(deep), WireEncodeError);
    let deepWire = '1';
    for (let i = 0; i < 200; i++) deepWire = `[${deepWire}]`;
    assert.throws(
      () => fromWire(JSON.parse(deepWire)),
      (error: unknown) => error instanceof WireDecodeError && error.reason === 'malformed',
    );
  });

  it('refuses an invalid Date at the sender', () => {
    assert.throws(() => toWire({ when: new Date(Number.NaN) }), (error: unknown) => error instanceof WireEncodeError && error.path === '$.when');
  });

  it('keeps own __proto__ keys as data', () => {
    const value = JSON.parse('{"__proto__":{"polluted":true},"x":1}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    assert.deepEqual(Object.keys(back), ['__proto__', 'x']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, { polluted: true });
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('rejects malformed tags on decode', () => {
    const bad = [
      { $pid: ['alpha', 'creA'] },
      { $pid: ['', 'creA', 1] },
      { $pid: ['alpha', 'creA', -1] },
      { $pid: ['alpha', 'creA', 1.5] },
      { $pid: 'alpha.creA.1' },
      { $ref: null },
      { $num: 'one' },
      { $big: '12x' },
      { $date: 'yesterday' },
      { $date: 5 },
      { $err: { message: 'no name' } },
      { $err: 'boom' },
      { $obj: [1] },
      { $nope: 1 },
      [1, { $pid: 7 }],
    ];
    for (const wire of bad) {
      assert.throws(
        () => fromWire(JSON.parse(JSON.stringify(wire))),
        (error: unknown) => error instanceof WireDecodeError && error.reason === 'malformed',
        JSON.stringify(wire),
      );
    }
  });

  it('round-trips any JSON-ish value with pids, refs, dates and undefined mixed in (property)', () => {
    const pid = fc
      .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), fc.nat())
      .map(([node, creation, id]) => new Pid(node, creation, id));
    const ref = fc
      .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), fc.nat())
      .map(([node, creation, id]) => new Ref(node, creation, id));
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ maxLength: 5 }).map((s) => `$${s}`), fc.constantFrom('$pid', '$u', '$obj', '$err'));
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constant(null),
        fc.constant(undefined),
        fc.boolean(),
        fc.string(),
        fc.integer(),
        fc.double().filter((x) => !Object.is(x, -0)),
        fc.bigInt(),
        fc.date({ noInvalidDate: true }),
        pid,
        ref,
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(key, tie('value'), { maxKeys: 5, noNullPrototype: true }),
      ),
    }));
    fc.assert(
      fc.property(value, (input) => {
        const back = roundTrip(input);
        assert.deepStrictEqual(back, input);
        // And through a full envelope.
        const sender = codec({ node: 'beta', creation: 'creB' });
        const envelope = codec().decode(sender.encode('msg', { t: pidA, m: input }, 1, '"creA"'));
        assert.deepStrictEqual(envelope.body['m'], input);
      }),
      { numRuns: 300, ...fcParams },
    );
  });
});

describe('envelope codec', () => {
  it('encodes every kind with its sender and decodes it on the other side', () => {
    const alpha = codec();
    const beta = codec({ node: 'beta', creation: 'creB' });
    const bodies: [Kind, Record<string, unknown>][] = [
      ['hello', { a: 'addr-1', s: 0 }],
      ['hb', { a: 'addr-1', s: 3 }],
      ['hb', { a: 'addr-1', s: 3, f: ['call', 'plain', 'a-feature-of-a-newer-roster'] }],
      ['refuse', { reason: 'taken' }],
      ['leave', {}],
      ['msg', { t: pidA, f: pidB, m: { hello: [1, 2, 3] } }],
      ['msg', { t: pidA, m: 'no sender' }],
      ['nmsg', { n: 'svc', f: pidB, m: { type: '$gen_cast', request: 1 } }],
      ['nmsg', { n: 'svc', m: 'no sender' }],
      ['link', { f: pidB, t: pidA }],
      ['unlink', { f: pidB, t: pidA }],
      ['exit', { f: pidB, t: pidA, x: 'link', e: new Error('crashed') }],
      ['exit', { f: pidB, t: pidA, x: 'exit', e: { shutdown: 'because' } }],
      ['mon', { w: pidB, t: pidA, r: refA }],
      ['demon', { w: pidB, t: pidA, r: refA }],
      ['down', { w: pidA, p: pidB, r: refA, e: 'noproc' }],
      ['ch', { n: 'globals', m: { op: 'register', pid: pidB } }],
    ];
    for (const [kind, body] of bodies) {
      const frame = beta.encode(kind, body, 9);
      assert.ok(frame.startsWith('{'), 'unsigned frames are bare JSON');
      const envelope = alpha.decode(frame);
      assert.equal(envelope.kind, kind);
      assert.equal(envelope.from, 'beta');
      assert.equal(envelope.creation, 'creB');
      const { e: reason, ...rest } = envelope.body;
      const { e: sentReason, ...sentRest } = body;
      assert.deepStrictEqual(rest, sentRest);
      if (sentReason instanceof Error) {
        assert.ok(reason instanceof Error);
        assert.equal(reason.message, sentReason.message);
        assert.equal(reason.name, sentReason.name);
      } else {
        assert.deepStrictEqual(reason, sentReason);
      }
    }
    // A node decodes its own broadcasts too (the cluster layer drops them by sender).
    assert.equal(alpha.decode(alpha.encode('leave', {}, 1)).from, 'alpha');
  });

  it('drops malformed frames, each for the right reason', () => {
    const alpha = codec();
    const cases: [unknown, DropReason][] = [
      [42, 'malformed'],
      [undefined, 'malformed'],
      ['', 'malformed'],
      ['{not json', 'malformed'],
      ['[1,2,3]', 'malformed'],
      ['null', 'malformed'],
      ['"a string"', 'malformed'],
      [rawFrame({ v: 2 }), 'version'],
      [rawFrame({ v: '1' }), 'version'],
      [rawFrame({ v: undefined }), 'version'],
      [rawFrame({ c: 'c2' }), 'foreign_cluster'],
      [rawFrame({ c: undefined }), 'foreign_cluster'],
      [rawFrame({ f: undefined }), 'malformed'],
      [rawFrame({ f: '' }), 'malformed'],
      [rawFrame({ f: 7 }), 'malformed'],
      [rawFrame({ i: undefined }), 'malformed'],
      [rawFrame({ k: 'bogus' }), 'malformed'],
      [rawFrame({ k: 'toString' }), 'malformed'],
      [rawFrame({ k: undefined }), 'malformed'],
      [rawFrame({ b: [] }), 'malformed'],
      [rawFrame({ b: null }), 'malformed'],
      [rawFrame({ b: 'body' }), 'malformed'],
      [rawFrame({ b: {} }), 'malformed'],
      [rawFrame({ b: { t: 'alpha.creA.7' } }), 'malformed'],
      [rawFrame({ b: { t: { $pid: ['alpha', 'creA'] } } }), 'malformed'],
      [rawFrame({ b: { t: { $pid: ['alpha', 'creA', 7] }, m: { $date: 'never' } } }), 'malformed'],
      [rawFrame({ k: 'link', b: { f: { $ref: ['beta', 'creB', 1] }, t: { $pid: ['alpha', 'creA', 7] } } }), 'malformed'],
      [rawFrame({ k: 'exit', b: { f: { $pid: ['beta', 'creB', 1] }, t: { $pid: ['alpha', 'creA', 7] }, x: 'bogus' } }), 'malformed'],
      [rawFrame({ k: 'mon', b: { w: { $pid: ['beta', 'creB', 1] }, t: { $pid: ['alpha', 'creA', 7] } } }), 'malformed'],
      [rawFrame({ k: 'down', b: { w: { $pid: ['alpha', 'creA', 7] }, p: { $pid: ['beta', 'creB', 1] }, r: 'ref' } }), 'malformed'],
      [rawFrame({ k: 'hb', b: { a: 'addr', s: -1 } }), 'malformed'],
      [rawFrame({ k: 'hb', b: { a: '', s: 0 } }), 'malformed'],
      [rawFrame({ k: 'hello', b: { a: 'addr', s: 1.5 } }), 'malformed'],
      [rawFrame({ k: 'hello', b: { a: 'addr', s: 1, t: Date.now(), f: 'call' } }), 'malformed'],
      [rawFrame({ k: 'hb', b: { a: 'addr', s: 1, t: Date.now(), f: [1] } }), 'malformed'],
      [rawFrame({ k: 'hb', b: { a: 'addr', s: 1, t: Date.now(), f: Array.from({ length: 65 }, (_, i) => `f${i}`) } }), 'malformed'],
      [rawFrame({ k: 'hb', b: { a: 'addr', s: 1, t: Date.now(), f: ['x'.repeat(65)] } }), 'malformed'],
      [rawFrame({ k: 'refuse', b: {} }), 'malformed'],
      [rawFrame({ k: 'ch', b: { m: 1 } }), 'malformed'],
      [rawFrame({ k: 'nmsg', b: { m: 1 } }), 'malformed'],
      [rawFrame({ k: 'nmsg', b: { n: '', m: 1 } }), 'malformed'],
      [rawFrame({ k: 'nmsg', b: { n: 'svc', f: 'alpha.creA.7', m: 1 } }), 'malformed'],
      [rawFrame({}, 'some-secret'), 'bad_signature'],
    ];
    for (const [frame, reason] of cases) assertDrop(alpha, frame, reason);
    // And a well-formed one passes, so the cases above fail for what they say.
    assert.equal(alpha.decode(rawFrame({})).kind, 'msg');
  });

  it('drops frames over maxFrameBytes (in bytes, not characters) and refuses to send them', () => {
    const small = codec({ maxFrameBytes: 1024 });
    assertDrop(small, rawFrame({ b: { t: { $pid: ['alpha', 'creA', 7] }, m: 'x'.repeat(2000) } }), 'oversized');
    // 400 euro signs: 400 characters but 1200 bytes.
    assertDrop(small, rawFrame({ b: { t: { $pid: ['alpha', 'creA', 7] }, m: '€'.repeat(400) } }), 'oversized');
    assert.equal(small.decode(rawFrame({ b: { t: { $pid: ['alpha', 'creA', 7] }, m: '€'.repeat(250) } })).kind, 'msg');
    assert.throws(() => small.encode('msg', { t: pidA, m: 'y'.repeat(2000) }, 1), WireEncodeError);
    assert.throws(() => small.encode('msg', { t: pidA, m: '€'.repeat(400) }, 1), WireEncodeError);
  });

  it('signs with the cluster secret and drops unsigned, forged and tampered frames', () => {
    const secret = 'correct horse battery staple';
    const alpha = codec({ secret });
    const beta = codec({ node: 'beta', creation: 'creB', secret: Buffer.from(secret) });
    const frame = beta.encode('msg', { t: pidA, m: 'signed' }, 5, '"creA"');
    assert.match(frame, /^~[A-Za-z0-9_-]{43}\{/);
    assert.equal(alpha.decode(frame).body['m'], 'signed');
    // The signature is an HMAC-SHA256 of the JSON that follows it.
    assert.equal(frame, rawFrame({ q: 5, r: 'creA', b: { t: { $pid: ['alpha', 'creA', 7] }, m: 'signed' } }, secret));

    const json = frame.slice(44);
    assertDrop(alpha, json, 'bad_signature'); // unsigned
    const flipped = frame[5] === 'A' ? 'B' : 'A';
    assertDrop(alpha, `${frame.slice(0, 5)}${flipped}${frame.slice(6)}`, 'bad_signature'); // forged
    assertDrop(alpha, `${frame.slice(0, 44)}${json.replace('signed', 'sighed')}`, 'bad_signature'); // tampered
    assertDrop(alpha, `~${'A'.repeat(43)}${json}`, 'bad_signature');
    assertDrop(alpha, `~short${json}`, 'bad_signature');
    assertDrop(alpha, `~${'A'.repeat(43)}`, 'bad_signature');
    assertDrop(alpha, '~', 'bad_signature');
    assertDrop(alpha, codec({ node: 'beta', creation: 'creB', secret: 'another secret' }).encode('leave', {}, 1), 'bad_signature');
    // Validation after the signature still applies: a signed frame of another cluster is foreign.
    assertDrop(alpha, rawFrame({ c: 'c2' }, secret), 'foreign_cluster');
    assertDrop(alpha, rawFrame({ k: 'bogus' }, secret), 'malformed');
    // A node without a secret refuses signed frames rather than guessing.
    assertDrop(codec(), frame, 'bad_signature');
  });

  it('refuses a frame nested deeper than MAX_FRAME_DEPTH (a large one before parsing it), and still parses deep legal values', () => {
    const alpha = codec({ maxFrameBytes: 1024 * 1024 });
    const deep = `{"v":${WIRE_VERSION},"c":"c1","f":"beta","i":"creB","k":"msg","b":{"t":{"$pid":["alpha","creA",7]},"m":${'['.repeat(400_000)}${']'.repeat(400_000)}}}`;
    const parse = JSON.parse;
    let parsed = 0;
    JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
      parsed++;
      return parse(...args);
    }) as typeof JSON.parse;
    try {
      assert.throws(
        () => alpha.decode(deep),
        (error: unknown) => error instanceof WireDecodeError && error.reason === 'malformed' && /nested too deep/.test(error.message),
      );
      assert.equal(parsed, 0, 'refused without JSON.parse');
      // Just past the limit, objects this time, in a frame padded past the scan threshold: refused unparsed.
      const padding = 'x'.repeat(20_000);
      const over = `{"v":${WIRE_VERSION},"c":"c1","f":"beta","i":"creB","k":"msg","b":{"t":{"$pid":["alpha","creA",7]},"p":"${padding}","m":${'{"a":'.repeat(MAX_FRAME_DEPTH)}1${'}'.repeat(MAX_FRAME_DEPTH)}}}`;
      assertDrop(alpha, over, 'malformed');
      assert.equal(parsed, 0);
    } finally {
      JSON.parse = parse;
    }

    // A small frame past the limit is parsed (cheaply: it is small), then refused.
    const small = `{"v":${WIRE_VERSION},"c":"c1","f":"beta","i":"creB","k":"msg","b":{"t":{"$pid":["alpha","creA",7]},"m":${'{"a":'.repeat(MAX_FRAME_DEPTH)}1${'}'.repeat(MAX_FRAME_DEPTH)}}}`;
    assertDrop(alpha, small, 'malformed');

    // The deepest value a sender may send: every level an object with a `$` key (wrapped in `$obj` on the wire), a pid at the bottom.
    let value: unknown = pidA;
    for (let level = 0; level < 62; level++) value = { $k: value, s: '"]]]\\' };
    const beta = codec({ node: 'beta', creation: 'creB' });
    assert.deepStrictEqual(alpha.decode(beta.encode('msg', { t: pidA, m: value }, 1)).body['m'], value);
    // Brackets, escaped quotes and backslashes inside strings are not nesting.
    const tricky = ['[[[[', '\\"{{{{', '\\', '"', `${'['.repeat(10_000)}\\"`];
    assert.deepStrictEqual(alpha.decode(beta.encode('msg', { t: pidA, m: tricky }, 2)).body['m'], tricky);
  });
});
