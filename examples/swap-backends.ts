/**
 * The same actor code on two registry backends, switched by one line.
 * `LocalRegistry` names actors on one node; `GlobalsRegistry` names them
 * cluster-wide. The code that starts, calls and monitors actors by name does
 * not change: it only speaks `via('names', ...)`.
 *
 *   node --conditions=development --import tsx examples/swap-backends.ts          # local
 *   node --conditions=development --import tsx examples/swap-backends.ts globals  # cluster-wide
 */
import { GenServer, LocalRegistry, Node, noreply, reply, via, type NameRegistry } from '@roster/core';
import { MemoryTransport } from '@roster/cluster';
import { GlobalsRegistry } from '@roster/globals';

process.env['ROSTER_LOG_LEVEL'] ??= 'silent';
const useGlobals = process.argv[2] === 'globals';

// The one line that picks the backend:
const makeRegistry = (): NameRegistry => (useGlobals ? new GlobalsRegistry() : new LocalRegistry());

const node = await Node.start({
  name: 'shop',
  ...(useGlobals ? { cluster: { transport: new MemoryTransport(), id: `swap-${process.pid}` } } : {}),
  registries: { names: makeRegistry() },
});

// ---- actor code: identical for both backends ----
const Basket: GenServer<string[], undefined> = {
  init: () => [],
  handleCast: (item: string, items) => noreply([...items, item]),
  handleCall: (_request, _from, items) => reply(items, items),
};

await GenServer.start(node, Basket, undefined, { name: via('names', { basket: 'alice' }) });
node.cast(via('names', { basket: 'alice' }), 'tea');
node.cast(via('names', { basket: 'alice' }), 'scones');
console.log(
  `[${useGlobals ? 'GlobalsRegistry' : 'LocalRegistry'}] alice's basket:`,
  await node.call(via('names', { basket: 'alice' }), 'contents'),
  '| registered:',
  JSON.stringify(node.registry('names').registered()),
);
await node.stop();
