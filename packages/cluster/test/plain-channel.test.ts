/**
 * `ClusterChannel.sendPlain`: a message that crosses as plain JSON (`j` in
 * the `ch` body), for services such as the globals registry whose traffic is
 * plain data. What the receiver's handler gets is exactly what `JSON.parse`
 * gives: no tag is decoded (an object keyed `$pid` stays an object), nothing
 * is walked; what cannot be written is refused at the sender with a
 * `WireEncodeError`; a body carrying both forms is dropped as malformed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { Pid } from '@roster/core';
import { WireDecodeError, WireEncodeError } from '../src/errors.js';
import { EnvelopeCodec } from '../src/internal/envelope.js';
import { TestNet, within } from './helpers.js';

const envSeed = process.env['ROSTER_SEED'];
const fcParams: { seed?: number } = envSeed !== undefined && envSeed !== '' ? { seed: Number(envSeed) } : {};

const codec = new EnvelopeCodec({ cluster: 'c1', node: 'alpha', creation: 'creA', secret: Buffer.from('s3cret'), maxFrameBytes: 64 * 1024 });

describe('plain channel bodies (codec)', () => {
  it('any JSON value arrives as JSON.parse gives it, $-keyed objects included (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const frame = codec.frame('ch', EnvelopeCodec.plainChannelBody('svc', value), 1);
        const decoded = codec.decode(frame);
        assert.equal(decoded.body['n'], 'svc');
        assert.deepEqual(decoded.body['j'], JSON.parse(JSON.stringify(value)));
        assert.equal('m' in decoded.body, false);
      }),
      fcParams,
    );
    const tagLike = { $pid: ['alpha', 'creA', 1], nested: [{ $u: 0 }, { $obj: {} }] };
    const decoded = codec.decode(codec.frame('ch', EnvelopeCodec.plainChannelBody('svc', tagLike), 1));
    assert.deepEqual(decoded.body['j'], tagLike, 'no tag is decoded in a plain message');
    assert.ok(Array.isArray((decoded.body['j'] as { $pid: unknown }).$pid), 'the $pid field is still its array');
  });

  it('refuses at the sender what JSON cannot write: a bigint, a cycle, undefined', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const value of [10n, cyclic, undefined]) {
      assert.throws(() => EnvelopeCodec.plainChannelBody('svc', value), WireEncodeError, `for ${typeof value}`);
    }
  });

  it('a pid in a plain message travels as its string form (toJSON): send pids as their fields', () => {
    const decoded = codec.decode(codec.frame('ch', EnvelopeCodec.plainChannelBody('svc', { pid: new Pid('alpha', 'creA', 7) }), 1));
    assert.deepEqual(decoded.body['j'], { pid: '<alpha.creA.7>' });
  });

  it('drops a body with both m and j as malformed', () => {
    const frame = codec.frame('ch', '{"n":"svc","m":1,"j":2}', 1);
    assert.throws(() => codec.decode(frame), (error: unknown) => error instanceof WireDecodeError && error.reason === 'malformed');
  });

  it('a frame too large for maxFrameBytes is refused at the sender', () => {
    assert.throws(() => codec.frame('ch', EnvelopeCodec.plainChannelBody('svc', 'x'.repeat(70 * 1024)), 1), WireEncodeError);
  });
});

describe('sendPlain between nodes', () => {
  const nets: TestNet[] = [];
  after(async () => {
    for (const made of nets) await made.close();
  });

  it('delivers in order with tagged messages on the same channel; false for a node that is not a member', async () => {
    const n = await new TestNet().open();
    nets.push(n);
    const a = await n.start('a');
    const b = await n.start('b');
    await within(n.broker.idle(), 'membership', 3000);
    const got: unknown[] = [];
    const all = new Promise<void>((resolve) => {
      n.cluster(b).channel('svc', (from, message) => {
        assert.equal(from.node, 'a');
        got.push(message);
        if (got.length === 4) resolve();
      });
    });
    const channel = n.cluster(a).channel('svc', () => {});
    const pid = a.spawn(async (self) => void (await self.receive()));
    assert.equal(channel.sendPlain('b', { op: 'plain', n: 1, $pid: 'not a tag' }), true);
    assert.equal(channel.send('b', { pid }), true);
    assert.equal(channel.sendPlain('b', [1, 'two', null, { three: [3] }]), true);
    assert.equal(channel.sendPlain('b', 'last'), true);
    assert.equal(channel.sendPlain('nobody', 1), false);
    await within(all, 'the four messages', 3000);
    assert.deepEqual(got[0], { op: 'plain', n: 1, $pid: 'not a tag' });
    assert.ok((got[1] as { pid: unknown }).pid instanceof Pid, 'the tagged message between them still decodes its pid');
    assert.deepEqual(got.slice(2), [[1, 'two', null, { three: [3] }], 'last']);
  });
});
