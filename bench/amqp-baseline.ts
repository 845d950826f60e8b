/**
 * What the broker itself costs, measured with raw amqplib in the same run as
 * roster (../shared/reference/anchors.md): the baselines of the cluster and
 * registry suites.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import type { RabbitMQ } from '@roster/testkit';
import { cpuMicrosOf, rawCpuSources } from './cpu.js';
import { microsPerOp, perSecond, timeIt } from './report.js';

const PAYLOAD = 'x'.repeat(100);

async function open(url: string): Promise<{ connection: ChannelModel; channel: Channel; queue: string }> {
  const connection = await connect(url);
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  return { connection, channel, queue };
}

/** Sequential request/reply between two connections: microseconds per round trip. */
export async function rawRequestReply(url: string, count: number): Promise<number> {
  const client = await open(url);
  const server = await open(url);
  try {
    await server.channel.consume(
      server.queue,
      (message) => {
        if (message !== null) server.channel.sendToQueue(message.properties.replyTo as string, message.content);
      },
      { noAck: true },
    );
    let pending: (() => void) | undefined;
    await client.channel.consume(client.queue, () => pending?.(), { noAck: true });
    const once = (): Promise<void> =>
      new Promise((resolve) => {
        pending = resolve;
        client.channel.sendToQueue(server.queue, Buffer.from(PAYLOAD), { replyTo: client.queue });
      });
    for (let n = 0; n < 50; n++) await once();
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) await once();
    });
    return microsPerOp(count, ms);
  } finally {
    await client.connection.close();
    await server.connection.close();
  }
}

/**
 * A broadcast on a fanout exchange to `queues` queues (the sender's own
 * included, as a real node's), and the wait for the `queues - 1` direct
 * replies: microseconds per round.
 */
export async function rawBroadcastCollect(url: string, queues: number, count: number): Promise<number> {
  const exchange = `bench-fanout-${process.pid}-${Date.now()}`;
  const nodes = await Promise.all(Array.from({ length: queues }, () => open(url)));
  const [sender, ...peers] = nodes as [(typeof nodes)[0], ...typeof nodes];
  try {
    await sender.channel.assertExchange(exchange, 'fanout', { durable: false, autoDelete: true });
    for (const node of nodes) await node.channel.bindQueue(node.queue, exchange, '');
    for (const peer of peers) {
      await peer.channel.consume(
        peer.queue,
        (message) => {
          if (message !== null) peer.channel.sendToQueue(sender.queue, message.content);
        },
        { noAck: true },
      );
    }
    let replies = 0;
    let pending: (() => void) | undefined;
    await sender.channel.consume(
      sender.queue,
      (message) => {
        // The sender's own copy of the broadcast also lands here, as it does for a node; only replies count.
        if (message !== null && message.properties.type !== 'broadcast' && ++replies === peers.length) pending?.();
      },
      { noAck: true },
    );
    const once = (): Promise<void> =>
      new Promise((resolve) => {
        replies = 0;
        pending = resolve;
        sender.channel.publish(exchange, '', Buffer.from(PAYLOAD), { type: 'broadcast' });
      });
    for (let n = 0; n < 50; n++) await once();
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) await once();
    });
    return microsPerOp(count, ms);
  } finally {
    for (const node of nodes) await node.connection.close();
  }
}

/** One publisher, one consumer, one AMQP message per send, 100-byte bodies: messages per second. */
export async function rawThroughput(url: string, count: number): Promise<number> {
  const producer = await open(url);
  const consumer = await open(url);
  try {
    let received = 0;
    let done: (() => void) | undefined;
    await consumer.channel.consume(
      consumer.queue,
      () => {
        if (++received === count) done?.();
      },
      { noAck: true },
    );
    const finished = new Promise<void>((resolve) => (done = resolve));
    const body = Buffer.from(PAYLOAD);
    const ms = await timeIt(async () => {
      for (let n = 0; n < count; n++) {
        if (!producer.channel.sendToQueue(consumer.queue, body)) {
          await new Promise((resolve) => producer.channel.once('drain', resolve));
        }
      }
      await finished;
    });
    return perSecond(count, ms);
  } finally {
    await producer.connection.close();
    await consumer.connection.close();
  }
}

// ---- the registry's protocol floor -------------------------------------------

const VOTER = fileURLToPath(new URL('./fixtures/raw-voter.ts', import.meta.url));

/** What a raw voter process tells its parent (see ./fixtures/raw-voter.ts). */
type VoterReply = { readonly queue: string } | { readonly peered: true } | { readonly done: number } | { readonly error: string };

/**
 * One raw voter process, forked and spoken to one command at a time: each
 * command's promise settles with the child's next reply, or rejects when it
 * reports an error or exits.
 */
class VoterProcess {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #waiting: { resolve: (reply: VoterReply) => void; reject: (error: Error) => void } | undefined;
  /** Its first reply, sent once it consumes from its queue: that queue's name. */
  readonly queue: Promise<string>;

  constructor(
    readonly name: string,
    url: string,
  ) {
    this.#child = fork(VOTER, [name, url], { execArgv: ['--conditions=development', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (reply: VoterReply) => this.#settle(reply));
    // A dead child's channel errors (EPIPE) on a send: its exit rejects the waiter, this process must not crash.
    this.#child.on('error', () => {});
    this.#exited = new Promise((resolve) => this.#child.once('exit', (code, signal) => {
      this.#waiting?.reject(new Error(`raw voter ${name} exited (${signal ?? code})`));
      this.#waiting = undefined;
      resolve();
    }));
    this.queue = this.#next().then((reply) => (reply as { queue: string }).queue);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Sends `command` and resolves with the reply to it. */
  ask(command: object): Promise<VoterReply> {
    const reply = this.#next();
    this.#child.send(command);
    return reply;
  }

  /** Asks it to close its connection and exit; SIGKILL after `timeout` ms. */
  async stop(timeout = 5000): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeout);
    await this.#exited;
    clearTimeout(timer);
  }

  #next(): Promise<VoterReply> {
    if (this.#waiting !== undefined) throw new Error(`raw voter ${this.name}: a command while another awaits its reply`);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  #settle(reply: VoterReply): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if ('error' in reply) waiting?.reject(new Error(`raw voter ${this.name}: ${reply.error}`));
    else waiting?.resolve(reply);
  }
}

/**
 * `nodes` raw voter processes that know one another's queues: a registry
 * reduced to its messages (claim, vote, commit, ack; release, ack; batched
 * per peer per turn), every node in its own OS process, this one only
 * coordinating.
 */
export interface RawRegistry {
  /**
   * Every node registers `perNode` names, `wave` at a time, all at once;
   * ops/s (`nodes * perNode` registrations) over the wall time of the
   * slowest, as this process sees it.
   */
  round(perNode: number, wave: number): Promise<number>;
  /**
   * Every node unregisters the names it registered in the oldest round not
   * yet unregistered, all at once (each done when every peer acked its
   * release); ops/s over the slowest, as `round`.
   */
  unregisterRound(): Promise<number>;
  /** CPU readers (µs so far) of each node's process and the broker, by label, for a `CpuMeter`. */
  cpuSources(): Record<string, () => number>;
  stop(): Promise<void>;
}

export async function startRawRegistry(url: string, broker: RabbitMQ, nodes: number): Promise<RawRegistry> {
  const voters = Array.from({ length: nodes }, (_, index) => new VoterProcess(`f${index + 1}`, url));
  const stop = async (): Promise<void> => {
    await Promise.all(voters.map((voter) => voter.stop()));
  };
  try {
    const queues = await Promise.all(voters.map((voter) => voter.queue));
    await Promise.all(voters.map((voter) => voter.ask({ cmd: 'peers', queues })));
  } catch (error) {
    await stop();
    throw error;
  }
  let rounds = 0;
  /** The rounds registered and not yet unregistered, oldest first: their tags and names per node. */
  const registered: { tag: string; perNode: number }[] = [];
  /** Sends `command` to every node at once: ops/s over the wall time until the slowest has answered. */
  const everyVoter = async (command: object, ops: number): Promise<number> =>
    perSecond(ops, await timeIt(() => Promise.all(voters.map((voter) => voter.ask(command)))));
  return {
    async round(perNode, wave) {
      const tag = `floor-${rounds++}`;
      const opsPerSecond = await everyVoter({ cmd: 'run', tag, count: perNode, wave }, nodes * perNode);
      registered.push({ tag, perNode });
      return opsPerSecond;
    },
    async unregisterRound() {
      const oldest = registered.shift();
      if (oldest === undefined) throw new Error('the raw registry has no registered round left to unregister');
      return everyVoter({ cmd: 'unregister', tag: oldest.tag, count: oldest.perNode }, nodes * oldest.perNode);
    },
    cpuSources() {
      // This process only coordinates: its CPU is not the protocol's. The broker's reader is the one raw baselines use.
      const { broker: brokerCpu } = rawCpuSources(broker);
      return {
        ...Object.fromEntries(voters.map((voter) => [voter.name, () => cpuMicrosOf(voter.pid)])),
        ...(brokerCpu !== undefined ? { broker: brokerCpu } : {}),
      };
    },
    stop,
  };
}
