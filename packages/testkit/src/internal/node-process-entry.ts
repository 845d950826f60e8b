/**
 * Entry point of a node process forked by `startNodeProcesses`: one roster
 * node over AmqpTransport, driven by its parent over IPC (see
 * node-process-protocol.ts). It exits when the parent goes away, so a
 * crashed test run never leaves nodes behind. With a `setup` module, it runs
 * that module's start function once the node is up, and calls the module's
 * other exports on `invoke`.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GenServer, Node, Pid, formatReason, type NameRegistry } from '@roster/core';
import '@roster/cluster';
import { EchoServer } from './node-process-echo.js';
import { CHILD_TRANSPORT } from './node-process-protocol.js';
import type {
  ChildMessage,
  ChildStartOptions,
  NamedPid,
  NodeProcessCommand,
  NodeProcessEmit,
  NodeProcessInvokeErrorCode,
  ParentMessage,
  PidFields,
  SerializedError,
} from './node-process-protocol.js';

if (process.send === undefined) {
  process.stderr.write('node-process-entry: must be started by startNodeProcesses (child_process.fork)\n');
  process.exit(2);
}

let node: Node | undefined;
let stopping = false;
/** The setup module's exports, once it is loaded. */
let setupModule: Record<string, unknown> | undefined;

function post(message: ChildMessage): void {
  if (process.connected) process.send!(message);
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const out: { name: string; message: string; code?: string; reason?: unknown } = { name: error.name, message: error.message };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    const reason = (error as { reason?: unknown }).reason;
    if (reason !== undefined) out.reason = typeof reason === 'string' ? reason : formatReason(reason);
    return out;
  }
  return { name: 'Error', message: formatReason(error) };
}

const fields = (pid: Pid): PidFields => ({ node: pid.node, creation: pid.creation, id: pid.id });
const startSnapshots = new Map<string, NamedPid[]>();

function snapshot(self: Node, key: string): NamedPid[] {
  const registry = self.registry(key);
  return registry.registered().map((name) => {
    const pid = registry.whereisName(name);
    return { name, pid: pid === undefined ? null : fields(pid) };
  });
}
const toPid = (f: PidFields): Pid => new Pid(f.node, f.creation, f.id);

/** An error with a code the parent's `NodeProcessError` carries. */
class InvokeError extends Error {
  override readonly name = 'InvokeError';
  constructor(
    readonly code: NodeProcessInvokeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const emit: NodeProcessEmit = (event, data) => {
  if (typeof event !== 'string') throw new TypeError(`emit: event must be a string, got ${typeof event}`);
  post({ type: 'custom', event, data: data === undefined ? null : data });
};

async function runSetup(self: Node, spec: NonNullable<ChildStartOptions['setup']>): Promise<void> {
  const specifier = isAbsolute(spec.module) ? pathToFileURL(spec.module).href : spec.module;
  const loaded = (await import(specifier)) as Record<string, unknown>;
  const exportName = spec.exportName ?? 'setup';
  const start = loaded[exportName];
  if (typeof start !== 'function') throw new InvokeError('no_such_export', `setup module ${spec.module} exports no function ${exportName}`);
  setupModule = loaded;
  await (start as (node: Node, args: unknown, emit: NodeProcessEmit) => unknown)(self, spec.args, emit);
}

async function start(options: ChildStartOptions): Promise<void> {
  const { AmqpTransport } = await import('@roster/amqp');
  const registries: Record<string, NameRegistry> = {};
  for (const spec of options.registries ?? []) {
    const module = (await import(spec.module)) as Record<string, unknown>;
    const exported = module[spec.exportName] as ((options: unknown) => NameRegistry) & (new (options: unknown) => NameRegistry);
    if (typeof exported !== 'function') throw new TypeError(`${spec.module} has no export ${spec.exportName}`);
    registries[spec.key] = spec.construct === false ? exported(spec.options) : new exported(spec.options);
  }
  const transport = new AmqpTransport({ ...options.amqp, urls: [...options.amqpUrls] });
  // For setup code that needs the transport (e.g. which broker it is on: `transport.broker`); see CHILD_TRANSPORT.
  (globalThis as Record<symbol, unknown>)[CHILD_TRANSPORT] = transport;
  const cluster: Record<string, unknown> = {
    transport,
    id: options.clusterId,
  };
  for (const key of ['secret', 'heartbeatInterval', 'failureTimeout', 'joinWindow', 'maxFrameBytes', 'role'] as const) {
    if (options[key] !== undefined) cluster[key] = options[key];
  }
  const started = await Node.start({ name: options.name, cluster, registries });
  node = started;
  // Synchronously, before anything else runs: what each registry knew when Node.start resolved.
  for (const key of Object.keys(registries)) startSnapshots.set(key, snapshot(started, key));
  // Membership events are posted after `ready` (the parent's peer set starts then): those of the setup's time are replayed below.
  let ready = false;
  started.on('nodeup', (peer) => {
    if (ready) post({ type: 'event', event: 'nodeup', node: peer });
  });
  started.on('nodedown', (peer) => {
    if (ready) post({ type: 'event', event: 'nodedown', node: peer });
  });
  if (options.setup !== undefined) {
    try {
      await runSetup(started, options.setup);
    } catch (error) {
      // Leave the cluster at once (peers need not wait for the failure timeout), then report.
      stopping = true;
      await Promise.race([started.stop().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      throw error;
    }
  }
  ready = true;
  post({ type: 'ready', name: started.name, creation: started.creation });
  for (const peer of started.nodes()) post({ type: 'event', event: 'nodeup', node: peer });
}

async function invoke(self: Node, fn: string, args: unknown): Promise<unknown> {
  if (setupModule === undefined) throw new InvokeError('no_setup', `invoke ${fn}: node process ${self.name} was started without a setup module`);
  const exported = setupModule[fn];
  if (typeof fn !== 'string' || typeof exported !== 'function') {
    throw new InvokeError('no_such_export', `invoke ${String(fn)}: the setup module exports no function ${String(fn)}`);
  }
  return (exported as (node: Node, args: unknown, emit: NodeProcessEmit) => unknown)(self, args, emit);
}

async function run(command: NodeProcessCommand): Promise<unknown> {
  const self = node;
  if (self === undefined) throw new Error('the node is not started');
  switch (command.cmd) {
    case 'spawnEcho': {
      const options = command.localName === undefined ? undefined : { name: command.localName };
      return fields(await GenServer.start(self, EchoServer, undefined, options));
    }
    case 'register': {
      const pid = command.pid === undefined ? await GenServer.start(self, EchoServer, undefined) : toPid(command.pid);
      return self.registerName({ via: command.key, name: command.name }, pid);
    }
    case 'unregister':
      await self.registry(command.key).unregisterName(command.name);
      return null;
    case 'whereis': {
      const pid = command.key === undefined ? self.whereis(command.name) : self.whereis({ via: command.key, name: command.name });
      return pid === undefined ? null : fields(pid);
    }
    case 'call':
      return self.call(toPid(command.to), command.request, command.timeout === undefined ? undefined : { timeout: command.timeout });
    case 'exitProcess':
      self.exit(toPid(command.to), command.reason);
      return null;
    case 'nodes':
      return self.nodes();
    case 'registered':
      return snapshot(self, command.key);
    case 'startSnapshot': {
      const taken = startSnapshots.get(command.key);
      if (taken === undefined) throw new Error(`no registry ${command.key} was installed at start`);
      return taken;
    }
    case 'invoke':
      return invoke(self, command.fn, command.args);
    case 'stop':
      stopping = true;
      await self.stop();
      setImmediate(() => process.exit(0));
      return null;
    case 'exit':
      setImmediate(() => process.exit(command.code ?? 0));
      return null;
  }
}

process.on('message', (raw: ParentMessage) => {
  if (raw.type === 'start') {
    start(raw.options).catch((error: unknown) => {
      post({ type: 'failed', error: serializeError(error) });
      setImmediate(() => process.exit(1));
    });
    return;
  }
  const { id, command } = raw;
  run(command).then(
    (value) => {
      try {
        post({ type: 'reply', id, ok: true, value: value === undefined ? null : value });
      } catch (error) {
        // A value the IPC channel cannot serialise (a BigInt, a cycle): the request fails, the child lives on.
        post({ type: 'reply', id, ok: false, error: serializeError(new TypeError(`${command.cmd}: the result cannot cross IPC as JSON: ${(error as Error).message}`)) });
      }
    },
    (error: unknown) => post({ type: 'reply', id, ok: false, error: serializeError(error) }),
  );
});

// The parent is gone (it exited, crashed or closed the channel): so is this node.
process.on('disconnect', () => {
  if (stopping) return;
  stopping = true;
  const exit = (): never => process.exit(0);
  setTimeout(exit, 2000).unref();
  void (node?.stop() ?? Promise.resolve()).then(exit, exit);
});
