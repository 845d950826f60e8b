import { createServer, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** The AMQP 0-9-1 protocol header a client opens with. */
const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** What one readiness probe saw. */
export type ProbeResult =
  /** The broker answered the protocol header with `connection.start`: it accepts AMQP clients. */
  | 'ready'
  /** Nothing listens on the port (ECONNREFUSED). */
  | 'refused'
  /** Anything else: timeout, reset, an answer that is not `connection.start`. */
  | 'error';

/** Where to probe. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly tls?: boolean;
}

/**
 * Opens a TCP (or TLS) connection, sends the AMQP 0-9-1 protocol header and
 * waits for the broker's first frame. A `connection.start` method frame
 * (class 10, method 10 on channel 0) means the broker has finished booting:
 * RabbitMQ starts its client listeners last. The socket is then dropped
 * without logging in, so the probe needs no credentials and never loads
 * amqplib (the only package allowed to is `@roster/amqp`).
 */
export function probeAmqp(target: ProbeTarget, timeoutMs = 1000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    const options = { host: target.host, port: target.port };
    const socket: Socket = target.tls
      ? tlsConnect({ ...options, rejectUnauthorized: false }, () => socket.write(PROTOCOL_HEADER))
      : netConnect(options, () => socket.write(PROTOCOL_HEADER));
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.on('error', () => {});
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish('error'), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 11) return;
      const isStart =
        received[0] === 1 && received.readUInt16BE(1) === 0 && received.readUInt16BE(7) === 10 && received.readUInt16BE(9) === 10;
      finish(isStart ? 'ready' : 'error');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code === 'ECONNREFUSED' ? 'refused' : 'error'));
    socket.on('close', () => finish('error'));
  });
}

/**
 * Reserves `count` distinct free TCP ports on 127.0.0.1 by listening on port
 * 0 with all of them open at once, then releases them. Another process could
 * take one before the broker binds it; the window is a few milliseconds.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('freePorts: unexpected server address');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

