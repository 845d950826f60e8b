import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { AmqpTransport } from '@roster/amqp';
import { startRabbitMQ, type RabbitMQ } from '@roster/testkit';

/** 'refused', or 'open' when something accepted the TCP connection. */
function tcpState(port: number): Promise<'open' | 'refused' | 'error'> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve('error');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : 'error'));
  });
}

/** Connects an AmqpTransport (a full AMQP login as guest) and closes it again; resolves with its address. */
async function roundTrip(url: string): Promise<string> {
  const transport = new AmqpTransport({ urls: url, connectTimeoutMs: 10_000 });
  try {
    const address = await transport.connect({ cluster: `launcher-${process.pid}`, node: 'probe' });
    const got = new Promise<string>((resolve) => transport.once('frame', resolve));
    transport.broadcast('{"ping":true}');
    assert.equal(await got, '{"ping":true}');
    return address;
  } finally {
    await transport.close();
  }
}

describe('startRabbitMQ (a private broker)', { timeout: 240_000 }, () => {
  let rabbit: RabbitMQ;

  before(async () => {
    rabbit = await startRabbitMQ({ forcePrivate: true });
  });

  after(async () => {
    await rabbit?.stop();
  });

  test('starts a private broker with its own directory, port and node name', async () => {
    assert.equal(rabbit.external, false);
    assert.equal(rabbit.state, 'running');
    assert.match(rabbit.url, /^amqp:\/\/guest:guest@127\.0\.0\.1:\d+$/);
    assert.equal(rabbit.url, `amqp://guest:guest@127.0.0.1:${String(rabbit.port)}`);
    assert.match(rabbit.nodeName ?? '', /^roster-[0-9a-f]+@localhost$/);
    assert.ok(rabbit.dir !== undefined && existsSync(rabbit.dir));
    assert.ok(rabbit.startupMs > 0);
    const config = readFileSync(`${rabbit.dir}/rabbitmq.conf`, 'utf8');
    assert.match(config, /disk_free_limit\.absolute = 1MB/);
    assert.equal(readFileSync(`${rabbit.dir}/enabled_plugins`, 'utf8').trim(), '[].');
    await roundTrip(rabbit.url);
  });

  test('pause refuses connections, resume brings it back on the same port', async () => {
    const port = rabbit.port;
    assert.ok(port !== undefined);
    await rabbit.pause();
    assert.equal(rabbit.state, 'paused');
    assert.equal(await tcpState(port), 'refused');
    await rabbit.pause(); // no-op
    await rabbit.resume();
    assert.equal(rabbit.state, 'running');
    assert.equal(rabbit.port, port);
    assert.equal(await tcpState(port), 'open');
    await roundTrip(rabbit.url);
    await rabbit.resume(); // no-op
  });

  test('another process can pause and resume it through ROSTER_RABBITMQ_CTL', async () => {
    const ctl = await rabbit.shareControl();
    assert.ok(ctl?.startsWith('unix:'));
    assert.equal(await rabbit.shareControl(), ctl, 'one endpoint per broker');
    // What a test file sees when scripts/run-tests.mjs hands it the shared broker.
    const shared = await startRabbitMQ({ env: { AMQP_URL: rabbit.url, ROSTER_RABBITMQ_CTL: ctl } });
    assert.equal(shared.external, true);
    assert.equal(shared.url, rabbit.url);
    await shared.pause();
    assert.equal(rabbit.state, 'paused');
    assert.equal(await tcpState(rabbit.port ?? 0), 'refused');
    await shared.resume();
    assert.equal(rabbit.state, 'running');
    await roundTrip(rabbit.url);
    await shared.stop(); // leaves the broker alone
    assert.equal(rabbit.state, 'running');
  });

  test('an external broker without ROSTER_RABBITMQ_CTL cannot be paused, and says so without leaking the password', async () => {
    const external = await startRabbitMQ({ env: { AMQP_URL: 'amqp://admin:hunter2@rabbit.example:5672' } });
    assert.equal(external.external, true);
    assert.equal(external.port, undefined);
    await assert.rejects(external.pause(), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /private broker/);
      assert.match(error.message, /ROSTER_RABBITMQ_CTL/);
      assert.ok(!error.message.includes('hunter2'), error.message);
      return true;
    });
    await assert.rejects(external.resume(), /private broker/);
    await external.stop();
    assert.equal(await external.shareControl(), undefined);
  });

  test('stop kills the broker and removes its directory; stop is idempotent', async () => {
    const dir = rabbit.dir;
    const port = rabbit.port;
    assert.ok(dir !== undefined && port !== undefined);
    await rabbit.stop();
    assert.equal(rabbit.state, 'stopped');
    assert.equal(existsSync(dir), false);
    assert.equal(await tcpState(port), 'refused');
    await rabbit.stop();
    await assert.rejects(rabbit.resume(), /stopped/);
  });
});

/** Starts a private broker in a child process, which then exits (`exit`), gets SIGKILLed (`kill`) or SIGTERMed (`term`). */
async function brokerOfDyingProcess(how: 'exit' | 'kill' | 'term'): Promise<{ dir: string; port: number }> {
  const script = `
    const { startRabbitMQ } = await import('@roster/testkit');
    const rabbit = await startRabbitMQ({ forcePrivate: true });
    process.stdout.write(JSON.stringify({ dir: rabbit.dir, port: rabbit.port }) + '\\n');
    if (${JSON.stringify(how)} === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, AMQP_URL: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  const info = await new Promise<{ dir: string; port: number }>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) resolve(JSON.parse(line) as { dir: string; port: number });
    });
    child.once('exit', (code) => reject(new Error(`the child exited (${String(code)}) before reporting its broker`)));
  });
  if (how === 'kill') child.kill('SIGKILL');
  if (how === 'term') child.kill('SIGTERM');
  await exited;
  return info;
}

/** Polls until the broker's directory is gone and its port refuses, or `ms` passed. */
async function gone(info: { dir: string; port: number }, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!existsSync(info.dir) && (await tcpState(info.port)) === 'refused') return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

describe('a private broker never outlives its process', { timeout: 240_000 }, () => {
  for (const how of ['exit', 'term', 'kill'] as const) {
    test(`when the process ${how === 'exit' ? 'exits without stop()' : how === 'term' ? 'gets SIGTERM' : 'is SIGKILLed (the watchdog)'}`, async () => {
      const info = await brokerOfDyingProcess(how);
      assert.ok(await gone(info, 15_000), `broker at ${info.dir} (port ${info.port}) survived its process`);
    });
  }

  test('a missing server script gives a clear error', async () => {
    await assert.rejects(startRabbitMQ({ forcePrivate: true, serverPath: '/nonexistent/rabbitmq-server' }), /not an executable rabbitmq-server/);
  });
});
