/**
 * The messages a process gets when it watches cluster membership: Erlang's
 * `{nodedown, Node}` from `monitor_node/2`, and `{nodeup, Node}` /
 * `{nodedown, Node}` from `net_kernel:monitor_nodes/1`
 * (`Process.monitorNode`, `Process.monitorNodes`).
 */
export interface NodeDownMessage {
  readonly type: 'nodedown';
  readonly node: string;
}

export interface NodeUpMessage {
  readonly type: 'nodeup';
  readonly node: string;
}

export function isNodeDownMessage(message: unknown): message is NodeDownMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'nodedown';
}

export function isNodeUpMessage(message: unknown): message is NodeUpMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'nodeup';
}
