/**
 * The driver behind `Node.start({ cluster })`: one slot, filled by
 * @roster/cluster when it is imported. Kept apart from distribution.ts so
 * that module stays a contract (types only) that node.ts and the cluster
 * layer both read, while this one holds the state.
 */
import type { DistributionDriver } from './distribution.js';

let driver: DistributionDriver | undefined;

/** Installs the driver behind `Node.start({ cluster })`. */
export function registerDistributionDriver(next: DistributionDriver): void {
  driver = next;
}

/** The installed driver; undefined until @roster/cluster (or another driver) is imported. */
export function distributionDriver(): DistributionDriver | undefined {
  return driver;
}
