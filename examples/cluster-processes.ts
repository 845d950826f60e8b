/**
 * Three OS processes, one cluster, over RabbitMQ. The parent forks three
 * nodes; p1 starts a greeter named via('globals', 'greeter'); p2 and p3 call
 * it by name; then p1 is killed with SIGKILL and the others see its name
 * disappear once the failure detector gives up on p1.
 *
 *   AMQP_URL=amqp://localhost node --conditions=development --import tsx examples/cluster-processes.ts
 *
 * Without AMQP_URL it starts a private broker (Debian's rabbitmq-server must
 * be installed) through @roster/testkit.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { GenServer, Node, reply, via } from '@roster/core';
import { AmqpTransport } from '@roster/amqp';
import { GlobalsRegistry } from '@roster/globals';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';
const [role, nodeName, url, clusterId] = process.argv.slice(2);

const Greeter: GenServer<string, undefined> = {
  init: (_args, self) => `greetings from ${self.pid.node}`,
  handleCall: (who: string, _from, greeting) => reply(`${greeting}, ${who}`, greeting),
};

if (role === 'node') {
  // ---- a child: one node ----
  const node = await Node.start({
    name: nodeName!,
    cluster: { transport: new AmqpTransport({ urls: url! }), id: clusterId!, heartbeatInterval: 200, failureTimeout: 1000 },
    registries: { globals: new GlobalsRegistry() },
  });
  const globals = node.registry<GlobalsRegistry>('globals');
  globals.on('unregistered', (name, pid, reason) => process.send!({ event: `${node.name} saw ${String(name)} (${pid.key}) go: ${String(reason)}` }));
  process.on('message', async (command: string) => {
    if (command === 'start-greeter') {
      const pid = await GenServer.start(node, Greeter, undefined, { name: via('globals', 'greeter') });
      process.send!({ event: `${node.name} started greeter ${pid.key}` });
    } else if (command === 'call') {
      process.send!({ event: `${node.name} called greeter: "${await node.call(via('globals', 'greeter'), node.name)}"` });
    } else if (command === 'stop') {
      await node.stop();
      process.exit(0);
    }
  });
  process.send!({ ready: node.name });
} else {
  // ---- the parent: a broker, three nodes, a script ----
  let stopBroker = async (): Promise<void> => {};
  let amqpUrl = process.env['AMQP_URL'];
  if (amqpUrl === undefined) {
    const { startRabbitMQ } = await import('@roster/testkit');
    const broker = await startRabbitMQ();
    amqpUrl = broker.url;
    stopBroker = () => broker.stop();
  }
  const id = `processes-${process.pid}`;
  const self = fileURLToPath(import.meta.url);
  const children = new Map<string, ChildProcess>();
  const events: string[] = [];
  const waiters: { text: string; resolve: () => void }[] = [];
  const until = (text: string): Promise<void> =>
    events.some((event) => event.includes(text)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve }));
  for (const name of ['p1', 'p2', 'p3']) {
    const child = fork(self, ['node', name, amqpUrl, id], { execArgv: ['--conditions=development', '--import', 'tsx'] });
    child.on('message', (message: { event?: string }) => {
      if (message.event === undefined) return;
      console.log(`  ${message.event}`);
      events.push(message.event);
      for (const waiter of waiters.filter((candidate) => message.event!.includes(candidate.text))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
    const [ready] = (await once(child, 'message')) as [{ ready: string }];
    console.log(`node ${ready.ready} is up (OS pid ${child.pid})`);
    children.set(name, child);
  }
  children.get('p1')!.send('start-greeter');
  await until('started greeter');
  children.get('p2')!.send('call');
  children.get('p3')!.send('call');
  await until('p2 called');
  await until('p3 called');
  console.log('killing p1 with SIGKILL');
  children.get('p1')!.kill('SIGKILL');
  await until('p2 saw greeter');
  await until('p3 saw greeter');
  for (const name of ['p2', 'p3']) children.get(name)!.send('stop');
  await Promise.all(['p2', 'p3'].map((name) => once(children.get(name)!, 'exit')));
  await stopBroker();
}
