/**
 * Naming an actor cluster-wide with via('globals', name): start it on one
 * node, reach it from another by name, and see the name follow its life.
 *
 *   node --conditions=development --import tsx examples/via-globals.ts
 *   AMQP_URL=amqp://localhost node --conditions=development --import tsx examples/via-globals.ts
 */
import { AlreadyStartedError, GenServer, Node, isDownMessage, reply, via } from '@roster/core';
import { MemoryTransport, type Transport } from '@roster/cluster';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';
const amqpUrl = process.env['AMQP_URL'];
const transport = (): Transport => (amqpUrl ? new AmqpTransport({ urls: amqpUrl }) : new MemoryTransport());
const id = `via-globals-${process.pid}`;

const start = (name: string): Promise<Node> =>
  Node.start({ name, cluster: { transport: transport(), id }, registries: { globals: new GlobalsRegistry() } });

/** Keeps the latest value of a room; any node can call it by name. */
const Room: GenServer<string[], string> = {
  init: (topic) => [topic],
  handleCall: (request: { say: string } | 'history', from, lines) =>
    request === 'history' ? reply(lines, lines) : reply('ok', [...lines, `${from.pid.node}: ${request.say}`]),
};

const london = await start('london');
const paris = await start('paris');

// Names are any JSON value: here a tuple, compared canonically.
const name = via('globals', ['room', 'lobby']);
const room = await GenServer.start(london, Room, 'welcome to the lobby', { name });
console.log(`started ${room.key} on london as ['room', 'lobby']`);

// No sync() needed: when GenServer.start resolves, every node resolves the name (read-your-writes).
await paris.call(name, { say: 'bonjour' });
await london.call(name, { say: 'hello' });
console.log('history, read from paris:', await paris.call(name, 'history'));

try {
  await GenServer.start(paris, Room, 'a second lobby', { name });
} catch (error) {
  if (error instanceof AlreadyStartedError) console.log(`paris cannot take the name: already started as ${error.pid?.key}`);
}

// A monitor through the via name sees the room's exit; the name is already gone by then.
let watching!: () => void;
const watched = new Promise<void>((resolve) => (watching = resolve));
const down = new Promise<unknown>((resolve) =>
  paris.spawn(async (self) => {
    self.monitor(name);
    // Signals between two processes keep their order: once this call is answered, the monitor is in place.
    await self.call(name, 'history');
    watching();
    resolve((await self.receive(isDownMessage)).reason);
  }),
);
await watched;
await GenServer.stop(london, room, 'shutdown');
console.log(`the room stopped (${String(await down)}); london now resolves the name to ${london.whereis(name)}`);

await paris.stop();
await london.stop();
