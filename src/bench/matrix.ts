import { createHash } from 'node:crypto';
import type { CellConfig } from '../train/types.js';
import { UserError } from '../util/errors.js';
import { toCellConfig, type ResolvedBenchmark } from './resolve.js';

/**
 * JSON with object keys sorted at every level, so that the same config always gives the same
 * text (and hash) however it was built. Arrays keep their order: it is meaningful (tasks, seeds).
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot hash a non-finite number (${value})`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableStringify(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

export function configHash(config: CellConfig): string {
  return createHash('sha256').update(stableStringify(config)).digest('hex');
}

export interface Cell {
  /** The folder name under runs/<benchmark>/, e.g. "disjoint.mtl+sca+dm.seed2". */
  id: string;
  /** Position in the full matrix (before sharding): fixes the shard a cell belongs to. */
  index: number;
  config: CellConfig;
  hash: string;
}

export function cellId(regime: string, setting: string, seed: number): string {
  return `${regime}.${setting}.seed${seed}`;
}

/**
 * Expands regime × setting × seed into cells. Seeds are the outer loop so that an interrupted
 * study already holds complete comparisons (every regime and setting) for its first seeds.
 * stl is one cell per regime and seed, in which the trainer trains one network per task.
 */
export function expandMatrix(resolved: ResolvedBenchmark): Cell[] {
  const cells: Cell[] = [];
  for (const seed of resolved.seeds) {
    for (const regime of resolved.regimes) {
      for (const setting of resolved.settings) {
        const config = toCellConfig(resolved, regime, setting, seed);
        cells.push({ id: cellId(regime.name, setting, seed), index: cells.length, config, hash: configHash(config) });
      }
    }
  }
  return cells;
}

export interface Shard {
  index: number;
  count: number;
}

/** Parses "I/N" (1 ≤ I ≤ N), as a Slurm array task, a Kubernetes Indexed Job or a CI matrix gives it. */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) throw new UserError(`--shard: expected I/N with whole numbers, e.g. 1/4, got "${text}"`);
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (count < 1) throw new UserError(`--shard: the shard count must be at least 1, got "${text}"`);
  if (index < 1 || index > count) throw new UserError(`--shard: the shard number must be between 1 and ${count}, got "${text}"`);
  return { index, count };
}

/**
 * Round-robin over the matrix order: deterministic, disjoint, together complete, and each shard
 * gets a mix of settings and regimes (so no shard holds all the expensive stl cells).
 */
export function selectShard<T extends { index: number }>(cells: T[], shard: Shard | undefined): T[] {
  if (!shard) return cells;
  return cells.filter((cell) => cell.index % shard.count === shard.index - 1);
}
