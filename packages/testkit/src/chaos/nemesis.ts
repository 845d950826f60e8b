/**
 * The nemesis's plan: a seeded, deterministic sequence of faults (which
 * kind, on which node or broker, after how much quiet, for how long). The
 * runner carries each one out; the same seed and options give the same
 * plan (the timing of the run around it still varies). Pure.
 *
 * @module
 */
import type { Millis } from './history.js';

/** A seeded PRNG (mulberry32): floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The faults the nemesis injects (each followed by its recovery). */
export type NemesisFault = 'kill-node' | 'broker-kill' | 'cut' | 'blackhole' | 'delay';

export const NEMESIS_FAULTS: readonly NemesisFault[] = ['kill-node', 'broker-kill', 'cut', 'blackhole', 'delay'];

/** One planned fault. */
export interface PlannedFault {
  readonly fault: NemesisFault;
  /** A node name, or a broker index (`broker-kill`). */
  readonly target: string | number;
  /** Quiet time before it, in ms. */
  readonly quietBefore: Millis;
  /** How long it lasts before its recovery, in ms. */
  readonly duration: Millis;
  /** A `delay`'s latency, in ms. */
  readonly delayMs?: Millis;
}

/** Options of {@link Nemesis}. */
export interface NemesisOptions {
  readonly seed: number;
  readonly nodes: readonly string[];
  readonly brokers: number;
  /** Relative weights per fault kind (0 leaves one out). Default: 2 each, `delay` 1. */
  readonly weights?: Readonly<Partial<Record<NemesisFault, number>>>;
  /** Quiet between faults, [min, max] ms. Default [3000, 7000]. */
  readonly quiet?: readonly [Millis, Millis];
  /** How long a fault lasts, [min, max] ms. Default [2000, 8000]. */
  readonly duration?: readonly [Millis, Millis];
  /** A delay's latency, [min, max] ms. Default [50, 400]. */
  readonly delayMs?: readonly [Millis, Millis];
}

const DEFAULT_WEIGHTS: Readonly<Record<NemesisFault, number>> = Object.freeze({ 'kill-node': 2, 'broker-kill': 2, cut: 2, blackhole: 2, delay: 1 });

/** A deterministic fault plan; see the module header. */
export class Nemesis {
  readonly #random: () => number;
  readonly #options: NemesisOptions;
  readonly #weights: [NemesisFault, number][];

  constructor(options: NemesisOptions) {
    if (options.nodes.length === 0) throw new TypeError('Nemesis: needs at least one node');
    if (!(Number.isInteger(options.brokers) && options.brokers >= 1)) throw new TypeError(`Nemesis: brokers must be an integer >= 1, got ${String(options.brokers)}`);
    this.#random = seededRandom(options.seed);
    this.#options = options;
    this.#weights = NEMESIS_FAULTS.map((fault) => [fault, options.weights?.[fault] ?? DEFAULT_WEIGHTS[fault]] as [NemesisFault, number]).filter(([, w]) => w > 0);
    if (this.#weights.length === 0) throw new TypeError('Nemesis: every fault has weight 0');
  }

  #between([min, max]: readonly [number, number]): number {
    return Math.round(min + this.#random() * (max - min));
  }

  #pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#random() * items.length)]!;
  }

  /** The next fault of the plan. */
  next(): PlannedFault {
    const total = this.#weights.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.#random() * total;
    let fault = this.#weights[0]![0];
    for (const [kind, weight] of this.#weights) {
      roll -= weight;
      if (roll < 0) {
        fault = kind;
        break;
      }
    }
    const quietBefore = this.#between(this.#options.quiet ?? [3000, 7000]);
    const duration = this.#between(this.#options.duration ?? [2000, 8000]);
    if (fault === 'broker-kill') return { fault, target: Math.floor(this.#random() * this.#options.brokers), quietBefore, duration };
    const target = this.#pick(this.#options.nodes);
    if (fault === 'delay') return { fault, target, quietBefore, duration, delayMs: this.#between(this.#options.delayMs ?? [50, 400]) };
    return { fault, target, quietBefore, duration };
  }
}
