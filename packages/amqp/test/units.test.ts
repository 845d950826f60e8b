import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AmqpTransport, redactUrl } from '@roster/amqp';
import { backoffDelay } from '../src/internal/backoff.js';
import { Coalescer, splitFrames, type SealedMessage } from '../src/internal/coalescer.js';
import { ConfirmTracker } from '../src/internal/confirms.js';

describe('redactUrl', () => {
  test('hides user and password', () => {
    assert.equal(redactUrl('amqp://guest:guest@127.0.0.1:5672'), 'amqp://***@127.0.0.1:5672');
    assert.equal(redactUrl('amqps://user:s3cr%40t@rabbit.example:5671/prod?heartbeat=5'), 'amqps://***@rabbit.example:5671/prod?heartbeat=5');
    assert.equal(redactUrl('amqp://justuser@host/vh'), 'amqp://***@host/vh');
  });

  test('leaves URLs without credentials alone', () => {
    assert.equal(redactUrl('amqp://localhost'), 'amqp://localhost');
    assert.equal(redactUrl('amqp://127.0.0.1:5672/%2F?frameMax=8192'), 'amqp://127.0.0.1:5672/%2F?frameMax=8192');
  });

  test('redacts malformed URLs too: raw @ or / in the password', () => {
    for (const url of ['amqp://u:p@ss@host:5672', 'amqp://u:pa/ss@host:5672/vh', 'amqp://u:pa?ss@host']) {
      const out = redactUrl(url);
      assert.ok(!out.includes('p@ss') && !out.includes('pa/ss'), out);
    }
    assert.equal(redactUrl('amqp://u:p@ss@host:5672'), 'amqp://***@host:5672');
    assert.equal(redactUrl('amqp://u:pa/ss@host:5672/vh'), 'amqp://***@host:5672/vh');
  });

  test('hides secret-looking query parameters', () => {
    assert.equal(redactUrl('amqp://host?password=x&heartbeat=5&auth_token=y'), 'amqp://host?password=***&heartbeat=5&auth_token=***');
  });

  test('never lets a password through (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 6, maxLength: 20 }).filter((p) => /^[A-Za-z0-9]+$/.test(p) && !/^(amqp|host|guest)/.test(p)),
        fc.constantFrom('amqp', 'amqps'),
        (password, scheme) => {
          const out = redactUrl(`${scheme}://guest:${password}@rabbit.local:5672/vh`);
          return !out.includes(password) && out.startsWith(`${scheme}://***@rabbit.local`);
        },
      ),
    );
  });

  test('the constructor error for a bad URL is redacted', () => {
    assert.throws(
      () => new AmqpTransport({ urls: ['http://admin:hunter2@host'] }),
      (error: unknown) => error instanceof TypeError && !error.message.includes('hunter2'),
    );
    assert.throws(() => new AmqpTransport({ urls: [] }), TypeError);
  });
});

type Op = { kind: 'send'; to: string; frame: string } | { kind: 'broadcast'; frame: string } | { kind: 'seal' };

/** What each receiver sees, given the published messages: every node gets broadcasts, its own queue gets direct ones. */
function deliveries(messages: SealedMessage[], nodes: string[]): Map<string, string[]> {
  const seen = new Map(nodes.map((node) => [node, [] as string[]]));
  for (const message of messages) {
    const frames = splitFrames(message.content, message.single ? 'roster.frame' : undefined);
    const targets = message.address === undefined ? nodes : [message.address];
    for (const target of targets) seen.get(target)?.push(...frames);
  }
  return seen;
}

describe('Coalescer', () => {
  test('joins frames per destination, splits back in order', () => {
    const out: SealedMessage[] = [];
    const coalescer = new Coalescer(1024, (message) => out.push(message));
    coalescer.add('q1', '{"a":1}', 7);
    coalescer.add('q1', '{"a":2}', 7);
    coalescer.add('q2', '{"b":1}', 7);
    assert.equal(out.length, 0);
    assert.equal(coalescer.openFrames, 3);
    coalescer.sealAll();
    assert.equal(out.length, 2);
    assert.deepEqual(splitFrames(out[0]!.content, undefined), ['{"a":1}', '{"a":2}']);
    assert.equal(out[0]!.frames, 2);
    assert.equal(out[1]!.address, 'q2');
    assert.equal(coalescer.openFrames, 0);
  });

  test('seals a batch before it would outgrow the byte cap', () => {
    const out: SealedMessage[] = [];
    const coalescer = new Coalescer(1024, (message) => out.push(message));
    for (let i = 0; i < 10; i += 1) coalescer.add('q', 'x'.repeat(300), 300);
    coalescer.sealAll();
    assert.ok(out.every((message) => message.content.length <= 1024));
    assert.deepEqual(
      out.map((message) => message.frames),
      [3, 3, 3, 1],
    );
  });

  test('delivery order per receiver equals hand-over order (property)', () => {
    const nodes = ['q1', 'q2', 'q3'];
    const frame = fc.oneof(fc.json(), fc.constantFrom('', '\n', 'a\nb'));
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('send' as const), to: fc.constantFrom(...nodes), frame }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('broadcast' as const), frame }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'seal' as const }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 1024, max: 2048 }), (ops, cap) => {
        const out: SealedMessage[] = [];
        const coalescer = new Coalescer(cap, (message) => out.push(message));
        const expected = new Map(nodes.map((node) => [node, [] as string[]]));
        for (const each of ops) {
          if (each.kind === 'seal') {
            coalescer.sealAll();
            continue;
          }
          const bytes = Buffer.byteLength(each.frame);
          if (each.kind === 'send') {
            coalescer.add(each.to, each.frame, bytes);
            expected.get(each.to)?.push(each.frame);
          } else {
            coalescer.add(undefined, each.frame, bytes);
            for (const node of nodes) expected.get(node)?.push(each.frame);
          }
        }
        coalescer.sealAll();
        assert.deepEqual(deliveries(out, nodes), expected);
        assert.equal(coalescer.openFrames, 0);
      }),
    );
  });

  test('clear drops open frames and reports how many', () => {
    const out: SealedMessage[] = [];
    const coalescer = new Coalescer(1024, (message) => out.push(message));
    coalescer.add(undefined, 'a', 1);
    coalescer.add(undefined, 'b', 1);
    assert.equal(coalescer.clear(), 2);
    coalescer.sealAll();
    assert.equal(out.length, 0);
  });
});

describe('ConfirmTracker', () => {
  test('wait resolves once everything assigned before it is acked, in any order', async () => {
    const tracker = new ConfirmTracker();
    await tracker.wait();
    const one = tracker.assign();
    const two = tracker.assign();
    let done = false;
    const waiting = tracker.wait().then(() => {
      done = true;
    });
    const three = tracker.assign();
    tracker.ack(two);
    await Promise.resolve();
    assert.equal(done, false);
    tracker.ack(one);
    await waiting;
    assert.equal(tracker.outstanding, 1);
    tracker.ack(three);
    assert.equal(tracker.outstanding, 0);
  });

  test('nack rejects the waiters that cover it, failAll rejects all', async () => {
    const tracker = new ConfirmTracker();
    const one = tracker.assign();
    const early = tracker.wait();
    const two = tracker.assign();
    const late = tracker.wait();
    tracker.nack(two, new Error('nacked'));
    await assert.rejects(late, /nacked/);
    tracker.ack(one);
    await early;
    tracker.assign();
    const pending = tracker.wait();
    tracker.failAll(new Error('lost'));
    await assert.rejects(pending, /lost/);
    assert.equal(tracker.outstanding, 0);
    await tracker.wait();
  });

  test('stays correct over many in-order acks', async () => {
    const tracker = new ConfirmTracker();
    const seqs = Array.from({ length: 10_000 }, () => tracker.assign());
    const waiting = tracker.wait();
    for (const seq of seqs) tracker.ack(seq);
    await waiting;
    assert.equal(tracker.outstanding, 0);
  });
});

describe('backoffDelay', () => {
  test('grows exponentially within [d/2, d] and is capped', () => {
    const settings = { initialMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(settings, 0, () => 0), 50);
    assert.equal(backoffDelay(settings, 0, () => 1), 100);
    assert.equal(backoffDelay(settings, 2, () => 1), 400);
    assert.equal(backoffDelay(settings, 10, () => 1), 1000);
    assert.equal(backoffDelay(settings, 1000, () => 0.5), 750);
  });
});
