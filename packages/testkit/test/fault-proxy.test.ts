/**
 * The TCP fault proxy against a local echo server: data passes, delay
 * delays, throttle bounds the rate, cut closes and refuses, reset resets,
 * blackhole makes writes vanish while the socket stays open (no FIN, no RST),
 * heal restores; a fault link applies a verb to every proxy of a node.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { startFaultLink, startFaultProxy, within, type FaultProxy } from '@roster/testkit';

let echo: Server;
let echoPort: number;
/** Sockets the echo server accepted, to see what reaches it. */
const accepted: Socket[] = [];

before(async () => {
  echo = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.pipe(socket, { end: false });
  });
  await new Promise<void>((resolve) => echo.listen({ host: '127.0.0.1', port: 0 }, resolve));
  echoPort = (echo.address() as { port: number }).port;
});

after(async () => {
  for (const socket of accepted) socket.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

interface Client {
  readonly socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves once `text` has arrived in full (bounded). */
  waitFor(text: string, ms?: number): Promise<void>;
  /** 'open' until the socket ends ('end'), errors ('error: CODE') or closes. */
  readonly state: string;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    let state = 'open';
    let wake: (() => void) | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      wake?.();
    });
    socket.on('end', () => (state = state === 'open' ? 'end' : state));
    socket.on('error', (error: NodeJS.ErrnoException) => (state = `error: ${error.code ?? error.message}`));
    socket.on('close', () => {
      if (state === 'open') state = 'closed';
      wake?.();
    });
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        get state() {
          return state;
        },
        waitFor: (text, ms = 5000) =>
          within(
            (async () => {
              while (!data.includes(text)) await new Promise<void>((res) => (wake = res));
            })(),
            `echo of ${JSON.stringify(text.slice(0, 20))}`,
            ms,
          ),
      }),
    );
    socket.once('error', reject);
  });
}

/** 'refused' or 'accepted' for a fresh connection to `port`. */
function connectOutcome(port: number): Promise<'refused' | 'accepted'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', () => resolve('refused'));
  });
}

async function until(predicate: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('startFaultProxy', () => {
  let proxy: FaultProxy;

  before(async () => {
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echoPort } });
  });
  after(async () => {
    await proxy.close();
  });

  test('forwards both ways; url() points an AMQP URL at it', async () => {
    assert.equal(proxy.state, 'open');
    assert.ok(proxy.port > 0 && proxy.port !== echoPort);
    assert.equal(proxy.url('amqp://u:p@10.0.0.1:5672/vh?heartbeat=2'), `amqp://u:p@127.0.0.1:${proxy.port}/vh?heartbeat=2`);
    const c = await client(proxy.port);
    c.socket.write('hello');
    await c.waitFor('hello');
    const big = 'x'.repeat(3 * 1024 * 1024);
    c.socket.write(big);
    await c.waitFor(big, 10_000);
    c.socket.end();
    await until(() => c.state !== 'open', 'the echo to close after our FIN');
    assert.equal(c.state, 'end');
  });

  test('delay delays every chunk, order kept', async () => {
    const c = await client(proxy.port);
    c.socket.write('warm');
    await c.waitFor('warm');
    proxy.delay(150);
    const began = performance.now();
    c.socket.write('a');
    c.socket.write('b');
    await c.waitFor('ab');
    // 150 ms each way.
    const took = performance.now() - began;
    assert.ok(took >= 290, `round trip took ${took.toFixed(0)} ms`);
    proxy.delay(0);
    const again = performance.now();
    c.socket.write('c');
    await c.waitFor('abc');
    assert.ok(performance.now() - again < 150);
    c.socket.destroy();
  });

  test('throttle bounds the rate', async () => {
    const c = await client(proxy.port);
    proxy.throttle(100_000);
    const payload = 'y'.repeat(50_000);
    const began = performance.now();
    c.socket.write(payload);
    await c.waitFor(payload, 10_000);
    const took = performance.now() - began;
    // 50 kB at 100 kB/s: ~0.5 s per direction, the directions overlapping; never much faster.
    assert.ok(took >= 450, `50 kB took ${took.toFixed(0)} ms at 100 kB/s`);
    assert.ok(took < 3000, `50 kB took ${took.toFixed(0)} ms at 100 kB/s`);
    proxy.throttle(0);
    assert.equal(proxy.bytesPerSecond, Infinity);
    c.socket.destroy();
  });

  test('cut closes every connection and refuses new ones; heal restores on the same port', async () => {
    const c = await client(proxy.port);
    c.socket.write('before');
    await c.waitFor('before');
    const port = proxy.port;
    await proxy.cut();
    assert.equal(proxy.state, 'cut');
    await until(() => c.state !== 'open', 'the cut connection to close');
    assert.equal(await connectOutcome(port), 'refused');
    await proxy.heal();
    assert.equal(proxy.state, 'open');
    assert.equal(proxy.port, port);
    const d = await client(port);
    d.socket.write('after');
    await d.waitFor('after');
    d.socket.destroy();
  });

  test('reset sends RST to the client and the target', async () => {
    const c = await client(proxy.port);
    c.socket.write('r');
    await c.waitFor('r');
    const server = accepted.at(-1)!;
    let serverSaw = '';
    server.on('error', (error: NodeJS.ErrnoException) => (serverSaw = error.code ?? ''));
    proxy.reset();
    await until(() => c.state !== 'open', 'the reset');
    assert.equal(c.state, 'error: ECONNRESET');
    await until(() => serverSaw !== '', 'the reset at the target');
    assert.equal(serverSaw, 'ECONNRESET');
    const d = await client(proxy.port);
    d.socket.write('still');
    await d.waitFor('still');
    d.socket.destroy();
  });

  test('blackhole: writes vanish both ways, the sockets stay open (no FIN, no RST), heal lets new connections through', async () => {
    const c = await client(proxy.port);
    c.socket.write('seen');
    await c.waitFor('seen');
    const server = accepted.at(-1)!;
    let serverEvents = '';
    server.on('end', () => (serverEvents += 'end '));
    server.on('close', () => (serverEvents += 'close '));
    server.on('error', () => (serverEvents += 'error '));
    const droppedBefore = proxy.stats.dropped;
    proxy.blackhole();
    assert.equal(proxy.state, 'blackhole');
    c.socket.write('lost');
    server.write('from the target, lost too');
    // A new connection is accepted and swallowed as well: it never reaches the target.
    const reachedTarget = accepted.length;
    const n = await client(proxy.port);
    n.socket.write('never');
    await sleep(300);
    assert.equal(c.received(), 'seen');
    assert.equal(n.received(), '');
    assert.equal(c.state, 'open');
    assert.equal(n.state, 'open');
    assert.equal(accepted.length, reachedTarget);
    assert.ok(proxy.stats.dropped >= droppedBefore + 'lost'.length + 'never'.length, `dropped ${proxy.stats.dropped}`);
    // The client gives up (as a heartbeat timeout would): its FIN is answered, the target hears nothing.
    c.socket.end();
    await until(() => c.state !== 'open', 'the client-side close to complete');
    await sleep(100);
    assert.equal(serverEvents, '');
    await proxy.heal();
    assert.equal(proxy.state, 'open');
    const d = await client(proxy.port);
    d.socket.write('healed');
    await d.waitFor('healed');
    // The blackholed connection stays dead: its stream had gaps.
    n.socket.write('still nothing');
    await sleep(100);
    assert.equal(n.received(), '');
    for (const socket of [n.socket, d.socket, server]) socket.destroy();
  });

  test('a proxy to a dead target closes the client at once', async () => {
    const dead = await startFaultProxy({ target: { host: '127.0.0.1', port: 1 } });
    try {
      const c = await client(dead.port);
      await until(() => c.state !== 'open', 'the close');
    } finally {
      await dead.close();
    }
  });

  test('options are checked by name', async () => {
    await assert.rejects(startFaultProxy({ target: { host: '127.0.0.1', port: 0 } }), /target\.port must be a TCP port/);
    await assert.rejects(startFaultProxy({ target: { host: '127.0.0.1', port: 1 }, tagret: 1 } as never), /unknown option "tagret"/);
    assert.throws(() => proxy.delay(-1), /FaultProxy\.delay: ms must be/);
  });
});

describe('startFaultLink', () => {
  test('one proxy per URL, every verb on all of them', async () => {
    const link = await startFaultLink({ urls: [`amqp://g:g@127.0.0.1:${echoPort}/v`, `amqp://g:g@127.0.0.1:${echoPort}`] });
    try {
      assert.equal(link.proxies.length, 2);
      assert.equal(link.urls[0], `amqp://g:g@127.0.0.1:${link.proxies[0]!.port}/v`);
      link.blackhole();
      assert.deepEqual(
        link.proxies.map((p) => p.state),
        ['blackhole', 'blackhole'],
      );
      await link.cut();
      assert.equal(await connectOutcome(link.proxies[1]!.port), 'refused');
      await link.heal();
      const c = await client(link.proxies[1]!.port);
      c.socket.write('ok');
      await c.waitFor('ok');
      c.socket.destroy();
    } finally {
      await link.close();
    }
  });
});
