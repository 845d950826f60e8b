/**
 * A supervision tree on one node: a supervisor with three named workers, one
 * of which crashes on a timer; the tree restarts it, printed as it happens.
 *
 *   node --conditions=development --import tsx examples/supervision-tree.ts
 */
import { GenServer, Node, Supervisor, isDownMessage, noreply, type Pid } from '@roster/core';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';

const log = (text: string): void => console.log(`${new Date().toISOString().slice(11, 23)}  ${text}`);

/** A worker that says when it starts and stops; `crashAfter` makes it throw on a timer. */
const Worker: GenServer<{ name: string }, { name: string; crashAfter?: number }> = {
  init({ name, crashAfter }, self) {
    self.trapExit(true); // so terminate runs when the supervisor shuts it down
    log(`${name} started as ${self.pid.key}`);
    if (crashAfter !== undefined) self.sendAfter(self.pid, 'crash', crashAfter);
    return { name };
  },
  handleInfo(message, state) {
    if (message === 'crash') throw new Error(`${state.name} hit a bug`);
    return noreply(state);
  },
  terminate(reason, state) {
    log(`${state.name} terminating (${reason instanceof Error ? reason.message : String(reason)})`);
  },
};

const node = await Node.start({ name: 'tree' });
const supervisor = await Supervisor.start(node, {
  strategy: 'one_for_one',
  intensity: 5,
  period: 10_000,
  children: [
    Supervisor.worker('cache', Worker, { name: 'cache' }, { name: 'cache' }),
    Supervisor.worker('flaky', Worker, { name: 'flaky', crashAfter: 300 }, { name: 'flaky' }),
    Supervisor.worker('mailer', Worker, { name: 'mailer' }, { name: 'mailer' }),
  ],
});

// Watch the flaky worker through its name: each time it dies, report and watch the new one.
for (let restart = 1; restart <= 3; restart++) {
  const flaky: Pid = node.whereis('flaky')!;
  const reason = await new Promise<unknown>((resolve) =>
    node.spawn(async (self) => {
      self.monitor(flaky);
      const down = await self.receive(isDownMessage);
      resolve(down.reason);
    }),
  );
  log(`flaky (${flaky.key}) went down: ${reason instanceof Error ? reason.message : String(reason)}`);
  // The supervisor's mailbox holds the EXIT before this call: when it answers, the restart is done.
  await Supervisor.whichChildren(node, supervisor);
  log(`the supervisor restarted it as ${node.whereis('flaky')!.key} (restart ${restart})`);
}

const children = await Supervisor.whichChildren(node, supervisor);
log(`children now: ${children.map((child) => `${child.id}=${child.pid instanceof Object ? child.pid.key : child.pid}`).join(', ')}`);
log('stopping the node: children stop in reverse start order');
await node.stop();
