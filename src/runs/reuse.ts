import fs from 'node:fs';
import path from 'node:path';
import type { CellConfig } from '../config/cell.js';
import { trainingHash } from './identity.js';
import { BENCHMARK_FILE, hasResult, readCell, type MetricsFile, type ReusedFrom } from './store.js';

/**
 * Studies that share cells: the five files of a β sweep all hold the same stl baseline, and a
 * contrast study (another relatedness source) the stl cells of the study it contrasts. A cell of
 * one benchmark whose training hash (its config without the benchmark's name) equals that of a
 * finished cell of another benchmark under the same --out trains exactly the same networks, so
 * `run` takes that result instead of training it again (`--no-reuse` trains it anyway).
 *
 * Training is deterministic for a given build and backend (the seeds fix initialisation, batches
 * and augmentation), so a reused result is the one training would give on the machine that made
 * it; the copy's metrics.json names its source (`reusedFrom`), and its provenance is the source's.
 */
export interface ReusableCell {
  /** The folder to copy from. */
  dir: string;
  metrics: MetricsFile;
  /** What the copy records: the original result's benchmark and cell, following earlier copies back. */
  reusedFrom: ReusedFrom;
}

/** The benchmark folders under `outRoot` other than `ownBenchmark`, by name, so the choice of source is reproducible. */
function otherBenchmarkFolders(outRoot: string, ownBenchmark: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(outRoot);
  } catch {
    return [];
  }
  return names
    .filter((name) => name !== ownBenchmark && !name.startsWith('.'))
    .sort()
    .map((name) => path.join(outRoot, name))
    .filter((dir) => fs.existsSync(path.join(dir, BENCHMARK_FILE)));
}

/**
 * A finished cell of another benchmark under `outRoot` that trained what `config` would train, or
 * undefined. Only folders with the cell's own name are candidates (the name holds the regime,
 * setting and seed, which the training hash includes); damaged or unfinished folders are passed over.
 */
export function findReusableCell(outRoot: string, config: CellConfig, cellId: string): ReusableCell | undefined {
  const wanted = trainingHash(config);
  for (const benchmarkDir of otherBenchmarkFolders(outRoot, config.benchmark)) {
    const dir = path.join(benchmarkDir, cellId);
    let record;
    try {
      record = readCell(dir);
    } catch {
      continue;
    }
    if (!record?.metrics || record.problem || !hasResult(dir, record.hash)) continue;
    if (trainingHash(record.config) !== wanted) continue;
    return {
      dir,
      metrics: record.metrics,
      reusedFrom: record.metrics.reusedFrom ?? { benchmark: record.config.benchmark, cell: cellId, configHash: record.hash },
    };
  }
  return undefined;
}

/** "openmoji-hierarchy/scarce-group.stl.seed1": where a reused result was trained. */
export function describeSource(from: ReusedFrom): string {
  return `${from.benchmark}/${from.cell}`;
}
