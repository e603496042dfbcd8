import { createHash } from 'node:crypto';
import type { CellConfig } from '../config/cell.js';
import { stableStringify } from '../util/stable_json.js';

/** The sha256 of a cell's resolved config: equal hashes mean the same training, whoever built the config. */
export function configHash(config: CellConfig): string {
  return createHash('sha256').update(stableStringify(config)).digest('hex');
}

/**
 * The sha256 of what a cell trains, leaving out the name of the benchmark it belongs to: two cells
 * of different benchmarks with equal training hashes train the same networks on the same data, so
 * one's result stands for the other's (runs/reuse.ts).
 */
export function trainingHash(config: CellConfig): string {
  const { benchmark: _benchmark, ...training } = config;
  return configHash(training as CellConfig);
}

/** The folder name of a cell under runs/<benchmark>/, e.g. "disjoint.mtl+sca+dm.seed2". */
export function cellId(config: Pick<CellConfig, 'regime' | 'setting' | 'seed'>): string {
  return `${config.regime.name}.${config.setting}.seed${config.seed}`;
}

/** What makes two cell folders the same cell of a study, across shards and machines. */
export function cellKey(config: Pick<CellConfig, 'benchmark' | 'regime' | 'setting' | 'seed'>): string {
  return `${config.benchmark}|${config.regime.name}|${config.setting}|${config.seed}`;
}
