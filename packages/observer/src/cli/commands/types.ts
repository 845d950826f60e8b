/**
 * What each command returns: plain data (strings, numbers, JSON names), the
 * same for the table and for `--json`, and what a command needs to run.
 */
import type { Name, Node } from '@roster/core';
import type { Cluster } from '@roster/cluster';
import type { GlobalsRegistry } from '@roster/globals';
import type { CliConfig } from '../config.js';

/** What a command runs against: the CLI's own observer node, its cluster and registry, and the configuration. */
export interface CommandContext {
  readonly node: Node;
  readonly cluster: Cluster;
  readonly registry: GlobalsRegistry;
  readonly config: CliConfig;
}

/** `roster nodes`. */
export interface NodesResult {
  readonly command: 'nodes';
  readonly cluster: string;
  /** The live members, the CLI's own node left out, sorted by name. */
  readonly nodes: readonly {
    readonly node: string;
    readonly role: 'member' | 'observer';
    /** The node's incarnation id. */
    readonly creation: string;
    /** Global names its processes hold. */
    readonly names: number;
    /** Cluster frames and registry messages it dropped since it started, every reason together (from its snapshot); null when it did not answer in time. */
    readonly dropped: { readonly frames: number; readonly registry: number } | null;
    /** Its own completed `registerName` and `unregisterName` calls (from its snapshot); null when it did not answer or has no globals registry. */
    readonly registryOps: { readonly register: number; readonly unregister: number } | null;
  }[];
}

/** One global name and its holder. */
export interface NameRow {
  readonly name: Name;
  readonly node: string;
  /** The holder's pid, in its string form `<node.creation.id>`. */
  readonly pid: string;
  /** The claim's epoch (`formatEpoch`: `wall.counter@node`), when the registry knows it. */
  readonly epoch: string | undefined;
}

/** `roster names`. */
export interface NamesResult {
  readonly command: 'names';
  /** Sorted by the names' JSON. */
  readonly names: readonly NameRow[];
}

/** `roster whereis NAME`. */
export interface WhereisResult extends NameRow {
  readonly command: 'whereis';
}

/** One process of `roster processes NODE`. */
export interface ProcessRow {
  readonly pid: string;
  readonly name: string | undefined;
  readonly kind: string;
  readonly mailboxLength: number;
  readonly messagesIn: number;
  readonly trapExit: boolean;
  readonly links: number;
  readonly monitors: number;
  /** `Date.now()` ms. */
  readonly startedAt: number;
}

/** `roster processes NODE`. */
export interface ProcessesResult {
  readonly command: 'processes';
  readonly node: string;
  /** Every process of the node, oldest first (when some were left out: those with the longest mailboxes). */
  readonly processes: readonly ProcessRow[];
  /** Processes the node left out of its answer (a peer lists at most 10 000, and what fits in one frame); 0: none. */
  readonly omitted: number;
}

/** `roster observe`. */
export interface ObserveResult {
  readonly command: 'observe';
  readonly url: string;
}

export type CommandResult = NodesResult | NamesResult | WhereisResult | ProcessesResult | ObserveResult;
