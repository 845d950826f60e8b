/**
 * The key under which a `Node` keeps its runtime. Not exported from the
 * package index: only the core's own modules (GenServer, Supervisor) reach it.
 */
export const RUNTIME: unique symbol = Symbol('roster.runtime');
