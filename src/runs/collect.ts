import fs from 'node:fs';
import path from 'node:path';
import { cellKey as configKey } from './identity.js';
import { BENCHMARK_FILE, CELL_FILES, readCell, readJson, type BenchmarkInfo, type CellRecord } from './store.js';
import { UserError } from '../util/errors.js';

export interface Collected {
  /** Cells with a result or an error for their current config, deduplicated across folders. */
  cells: CellRecord[];
  /** benchmark name → what its benchmark.json says (names, order, the paper's values, checks). */
  benchmarks: Map<string, BenchmarkInfo>;
  /** Things a reader should know: stale cells, disagreeing folders. */
  warnings: string[];
}

const MAX_DEPTH = 4;

function listDirs(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => path.join(dir, e.name))
    .sort();
}

function scan(dir: string, depth: number, cellDirs: string[], benchmarkFiles: string[]): void {
  if (fs.existsSync(path.join(dir, CELL_FILES.config))) {
    cellDirs.push(dir);
    return;
  }
  if (fs.existsSync(path.join(dir, BENCHMARK_FILE))) benchmarkFiles.push(path.join(dir, BENCHMARK_FILE));
  if (depth >= MAX_DEPTH) return;
  for (const child of listDirs(dir)) scan(child, depth + 1, cellDirs, benchmarkFiles);
}

function cellKey(cell: CellRecord): string {
  return configKey(cell.config);
}

/**
 * Reads every cell under the given folders: a runs/ root, one benchmark's folder, or the folders
 * of several shards. The same cell found twice is one cell if both hold the same config; two
 * different configs for one cell are an error, since no report could say which one it shows.
 */
export function collectRuns(dirs: string[]): Collected {
  const cellDirs: string[] = [];
  const benchmarkFiles: string[] = [];
  for (const dir of dirs) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch {
      throw new UserError(`${dir}: no such folder`);
    }
    if (!stat.isDirectory()) throw new UserError(`${dir}: not a folder`);
    scan(path.resolve(dir), 0, cellDirs, benchmarkFiles);
    // A cell folder given directly still belongs to the benchmark folder above it.
    const parentInfo = path.join(path.resolve(dir), '..', BENCHMARK_FILE);
    if (fs.existsSync(path.join(dir, CELL_FILES.config)) && fs.existsSync(parentInfo)) benchmarkFiles.push(parentInfo);
  }
  const warnings: string[] = [];
  const byKey = new Map<string, CellRecord>();
  for (const dir of [...new Set(cellDirs)].sort()) {
    const cell = readCell(dir);
    if (!cell) continue;
    if (!cell.metrics && !cell.error) {
      warnings.push(
        `${dir}: ${cell.problem ?? 'no result for its current config (not run yet, interrupted, or from another config)'}; left out`,
      );
      continue;
    }
    const key = cellKey(cell);
    const seen = byKey.get(key);
    if (!seen) {
      byKey.set(key, cell);
      continue;
    }
    if (seen.hash !== cell.hash) {
      throw new UserError(`${seen.dir} and ${dir} hold the same cell trained with different configs; report them separately or rerun one`);
    }
    if (!seen.metrics && cell.metrics) byKey.set(key, cell);
  }
  const benchmarks = new Map<string, BenchmarkInfo>();
  for (const file of [...new Set(benchmarkFiles)].sort()) {
    const info = readJson<BenchmarkInfo>(file);
    if (!info || typeof info.name !== 'string') continue;
    const seen = benchmarks.get(info.name);
    if (!seen) benchmarks.set(info.name, info);
    else if (
      JSON.stringify(seen.reference) !== JSON.stringify(info.reference) ||
      JSON.stringify(seen.check) !== JSON.stringify(info.check)
    ) {
      warnings.push(`${file}: benchmark "${info.name}" has different reference or check values than another folder; using the first`);
    }
  }
  const cells = [...byKey.values()].sort((a, b) => (cellKey(a) < cellKey(b) ? -1 : cellKey(a) > cellKey(b) ? 1 : 0));
  return { cells, benchmarks, warnings };
}
