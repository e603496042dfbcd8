import type { CellConfig } from '../config/cell.js';
import { cellId, configHash } from '../runs/identity.js';
import { UserError } from '../util/errors.js';
import { toCellConfig, type ResolvedBenchmark } from './resolve.js';

export interface Cell {
  /** The folder name under runs/<benchmark>/, e.g. "disjoint.mtl+sca+dm.seed2". */
  id: string;
  /** Position in the full matrix (before sharding): fixes the shard a cell belongs to. */
  index: number;
  config: CellConfig;
  hash: string;
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
        cells.push({ id: cellId(config), index: cells.length, config, hash: configHash(config) });
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
