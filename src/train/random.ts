/**
 * The trainer's own seeded randomness. Every draw a cell makes (regime split, shuffles, crops,
 * flips, class-balanced sampling) comes from one of these generators, so a cell is a pure function
 * of its seed, and the generator state is four integers that a checkpoint can store and restore.
 */

import { fmix32, hashString } from '../util/hash.js';

/** A stable 32-bit seed for a named stream, e.g. deriveSeed(7, 'regime', 'disjoint'). */
export function deriveSeed(seed: number, ...labels: string[]): number {
  return hashString(JSON.stringify([seed, ...labels]));
}

export type RngState = [number, number, number, number];

/**
 * sfc32 (Chris Doty-Humphrey's small fast chaotic generator): 128 bits of state, good statistical
 * quality, and cheap in plain 32-bit JavaScript arithmetic.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: RngState) {
    [this.a, this.b, this.c, this.d] = state;
  }

  static fromSeed(seed: number, ...labels: string[]): Rng {
    // splitmix32 spreads one 32-bit seed over the four state words.
    let s = deriveSeed(seed, ...labels);
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      return fmix32(s);
    };
    const rng = new Rng([next(), next(), next(), next()]);
    // The first outputs of sfc32 are still correlated with the seed; the reference discards 12.
    for (let i = 0; i < 12; i++) rng.nextUint32();
    return rng;
  }

  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new Error(`invalid random-generator state ${JSON.stringify(state)}`);
    }
    return new Rng([state[0]!, state[1]!, state[2]!, state[3]!]);
  }

  state(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = (this.b ^ (this.b >>> 9)) >>> 0;
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int needs n >= 1, got ${n}`);
    return Math.floor(this.float() * n);
  }

  bool(): boolean {
    return (this.nextUint32() & 1) === 1;
  }

  /** Fisher–Yates in place. */
  shuffle<T extends { [i: number]: number; length: number }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i]!;
      array[i] = array[j]!;
      array[j] = tmp;
    }
    return array;
  }
}
