import { startRabbitMQ } from '@roster/testkit';
import { World } from './globals-helpers.js';
const rabbit = await startRabbitMQ();
for (const batching of ['immediate', 'microtask'] as const) {
const world = await World.start({ transport: 'amqp', nodes: ['n1','n2','n3','n4','n5'], amqpUrl: rabbit.url, heartbeatInterval: 100, failureTimeout: 800, registerTimeout: 5000, amqp: { heartbeat: 2, batching } });
const probes = await Promise.all(world.names.map((n) => world.spawn(n)));
let reg = 0, sync = 0, solo = 0, solosync = 0;
for (let r = 0; r < 100; r++) {
  let t = performance.now();
  await Promise.all(world.names.map((n, i) => world.registry(n).registerName(['race', r], probes[i]!.pid)));
  reg += performance.now() - t; t = performance.now();
  await world.syncAll(10000, 1);
  sync += performance.now() - t; t = performance.now();
  await world.registry('n3').registerName(['solo', r], probes[2]!.pid);
  solo += performance.now() - t; t = performance.now();
  await world.registry('n3').sync();
  solosync += performance.now() - t;
}
console.log(batching, { reg: reg / 100, sync: sync / 100, solo: solo / 100, solosync: solosync / 100 });
await world.stop();
}
await rabbit.stop();
