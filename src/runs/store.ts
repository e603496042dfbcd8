import fs from 'node:fs';
import path from 'node:path';
import type { CellConfig } from '../config/cell.js';
import type { CellResult, EpochRecord } from '../train/types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError, errorMessage } from '../util/errors.js';
import { systemError } from '../util/fs_errors.js';

/**
 * One folder per cell. metrics.json is written last and carries the config hash: its presence
 * with the current hash, matching the folder's config.sha256, is what "this cell is done" means,
 * so a cell killed half-way, run under an older config, or whose hash file is damaged, is simply
 * run again. Writers hold the cell's lock (see sharing.ts).
 */
export const CELL_FILES = {
  config: 'config.json',
  hash: 'config.sha256',
  metrics: 'metrics.json',
  relatedness: 'relatedness.json',
  history: 'history.json',
  timings: 'timings.json',
  provenance: 'provenance.json',
  error: 'error.json',
} as const;

/** Describes the benchmark a folder of cells belongs to: names, order, the paper's values, checks. */
export const BENCHMARK_FILE = 'benchmark.json';

export interface MetricsFile {
  configHash: string;
  test: CellResult['test'];
  val: CellResult['val'];
  bestEpoch: number;
  selectionRule: string;
  labelCounts: CellResult['labelCounts'];
  trainSeconds: number;
  /**
   * Per relatedness pair ("from->to"): sharpness, entries above ½ and provenance; the matrices
   * themselves are in relatedness.json. Absent in folders written before issue 14.
   */
  relatedness?: CellResult['relatednessDiagnostics'];
  /** Whether training was stable, with the signs found; absent in folders written before issue 14. */
  stability?: CellResult['stability'];
  /**
   * Present when this result was not trained here but taken from a finished cell of another
   * benchmark with the same training hash (runs/reuse.ts): that benchmark's name, the cell's
   * folder name and its config hash. Its history, timings and provenance are the source's.
   */
  reusedFrom?: ReusedFrom;
}

export interface ReusedFrom {
  benchmark: string;
  cell: string;
  configHash: string;
}

export interface TimingsFile {
  startedAt: string;
  finishedAt: string;
  /** Wall time of the whole cell, including data preparation and evaluation. */
  wallSeconds: number;
  /** Training time as the trainer measured it. */
  trainSeconds: number;
}

export interface ErrorFile {
  configHash: string;
  failedAt: string;
  name: string;
  message: string;
  stack?: string;
}

export interface Provenance {
  package: { name: string; version: string };
  gitCommit: string | null;
  gitDirty: boolean | null;
  backend: string;
  /** Threads of the wasm backend that trained the cell (null on other backends; absent in runs from before it was recorded). */
  wasmThreads?: number | null;
  tfjs: string;
  node: string;
  platform: string;
  cpu: { model: string; count: number };
  gpu: string | null;
}

export interface BenchmarkInfo {
  name: string;
  description: string;
  file: string;
  dataset: string;
  /**
   * `classes`: the task's number of classes (categorical) or labels (multi-label), which sets its
   * chance level; recorded once the data has been loaded, absent in folders written before.
   */
  tasks: { name: string; kind: string; primary: string; classes?: number }[];
  regimes: string[];
  settings: string[];
  seeds: number[];
  /** task → metric → the paper's value, in percent. */
  reference: Record<string, Record<string, number>>;
  check: { regime: string; setting: string; task: string; metric: string; expected: number; tolerance: number }[];
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`${file}: cannot read: ${errorMessage(err)}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new UserError(`${file}: not valid JSON: ${errorMessage(err)}`);
  }
}

const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** The config hash a cell folder says it holds, or undefined when config.sha256 is missing, empty or damaged. */
function storedHash(cellDir: string): string | undefined {
  const text = readTextIfPresent(path.join(cellDir, CELL_FILES.hash))?.trim();
  return text !== undefined && HASH_PATTERN.test(text) ? text : undefined;
}

/**
 * True when the folder already holds a finished result for exactly this config: metrics.json
 * and config.sha256 both name it (readCell uses the same rule, so `run` and `report` agree).
 */
export function hasResult(cellDir: string, hash: string): boolean {
  const metrics = readJsonQuietly<MetricsFile>(path.join(cellDir, CELL_FILES.metrics));
  return metrics?.configHash === hash && storedHash(cellDir) === hash;
}

/** Tells the user where writes fail and why, suggesting another --out. */
function runFolderError(err: unknown, where: string): unknown {
  return systemError(err, where, 'use another --out');
}

/**
 * Creates the folder a benchmark's cells go to and checks that it can be written, so a read-only
 * or full --out fails at once with one line instead of after the first cell has trained.
 */
export async function prepareBenchmarkFolder(benchmarkDir: string): Promise<void> {
  const probe = path.join(benchmarkDir, `.write-test.${process.pid}`);
  try {
    await fs.promises.mkdir(benchmarkDir, { recursive: true });
    await fs.promises.writeFile(probe, 'ok');
  } catch (err) {
    throw runFolderError(err, benchmarkDir);
  } finally {
    await fs.promises.rm(probe, { force: true }).catch(() => {});
  }
}

/** A damaged file from an older run must not stop a resume: it just means "not done". */
function readJsonQuietly<T>(file: string): T | undefined {
  try {
    return readJson<T>(file);
  } catch {
    return undefined;
  }
}

/** What beginCell found in the folder before preparing it. */
export type PreviousContent = 'none' | 'same-config' | 'other-config' | 'damaged-hash';

/**
 * Prepares the folder for a (re)run; the caller holds the cell's lock and no live run claims the
 * cell with another config. A folder of another config (or whose config.sha256 is unreadable) is
 * emptied first, checkpoints included: resuming from them would mix two experiments, and no reader
 * may pair the new config.json with old metrics. Temporary files of a killed writer are removed.
 * Then the config and its hash are written.
 */
export async function beginCell(cellDir: string, config: CellConfig, hash: string): Promise<PreviousContent> {
  try {
    let previous: PreviousContent = 'none';
    if (fs.existsSync(path.join(cellDir, CELL_FILES.hash)) || fs.existsSync(path.join(cellDir, CELL_FILES.config))) {
      const stored = storedHash(cellDir);
      previous = stored === hash ? 'same-config' : stored === undefined ? 'damaged-hash' : 'other-config';
    }
    if (previous === 'other-config' || previous === 'damaged-hash') await fs.promises.rm(cellDir, { recursive: true, force: true });
    await fs.promises.mkdir(cellDir, { recursive: true });
    for (const name of await fs.promises.readdir(cellDir)) {
      if (name.startsWith('.') && name.endsWith('.tmp')) await fs.promises.rm(path.join(cellDir, name), { force: true });
    }
    for (const name of [CELL_FILES.metrics, CELL_FILES.error]) {
      await fs.promises.rm(path.join(cellDir, name), { force: true });
    }
    await writeFileAtomic(path.join(cellDir, CELL_FILES.config), json(config));
    await writeFileAtomic(path.join(cellDir, CELL_FILES.hash), `${hash}\n`);
    return previous;
  } catch (err) {
    throw runFolderError(err, cellDir);
  }
}

export async function finishCell(
  cellDir: string,
  hash: string,
  result: CellResult,
  timings: TimingsFile,
  provenance: Provenance,
): Promise<MetricsFile> {
  try {
    return await writeResult(cellDir, hash, result, timings, provenance);
  } catch (err) {
    throw runFolderError(err, cellDir);
  }
}

async function writeResult(
  cellDir: string,
  hash: string,
  result: CellResult,
  timings: TimingsFile,
  provenance: Provenance,
): Promise<MetricsFile> {
  await writeFileAtomic(path.join(cellDir, CELL_FILES.relatedness), json(result.relatedness));
  await writeFileAtomic(path.join(cellDir, CELL_FILES.history), json(result.history));
  await writeFileAtomic(path.join(cellDir, CELL_FILES.timings), json(timings));
  await writeFileAtomic(path.join(cellDir, CELL_FILES.provenance), json(provenance));
  const metrics: MetricsFile = {
    configHash: hash,
    test: result.test,
    val: result.val,
    bestEpoch: result.bestEpoch,
    selectionRule: result.selectionRule,
    labelCounts: result.labelCounts,
    trainSeconds: result.trainSeconds,
    ...(result.relatednessDiagnostics ? { relatedness: result.relatednessDiagnostics } : {}),
    ...(result.stability ? { stability: result.stability } : {}),
  };
  await writeFileAtomic(path.join(cellDir, CELL_FILES.metrics), json(metrics));
  return metrics;
}

/**
 * Makes `cellDir` hold the finished result of `source.dir`, a cell of another benchmark that trained
 * the same networks: this cell's own config and hash, the source's history, relatedness, timings
 * and provenance, and its metrics under this cell's hash with `reusedFrom` naming the source.
 * Checkpoints are not copied (a finished cell needs none). metrics.json is written last, as in
 * finishCell, so a copy killed half-way is simply not done. The caller holds the cell's lock.
 */
export async function adoptResult(
  cellDir: string,
  config: CellConfig,
  hash: string,
  source: { dir: string; metrics: MetricsFile; reusedFrom: ReusedFrom },
): Promise<MetricsFile> {
  try {
    await beginCell(cellDir, config, hash);
    for (const name of [CELL_FILES.relatedness, CELL_FILES.history, CELL_FILES.timings, CELL_FILES.provenance]) {
      const text = readTextIfPresent(path.join(source.dir, name));
      if (text !== undefined) await writeFileAtomic(path.join(cellDir, name), text);
    }
    const metrics: MetricsFile = { ...source.metrics, configHash: hash, reusedFrom: source.reusedFrom };
    await writeFileAtomic(path.join(cellDir, CELL_FILES.metrics), json(metrics));
    return metrics;
  } catch (err) {
    throw runFolderError(err, cellDir);
  }
}

export async function recordFailure(cellDir: string, hash: string, err: unknown, provenance: Provenance): Promise<ErrorFile> {
  const error: ErrorFile = {
    configHash: hash,
    failedAt: new Date().toISOString(),
    name: err instanceof Error ? err.name : 'Error',
    message: errorMessage(err),
    stack: err instanceof Error ? err.stack : undefined,
  };
  try {
    await writeFileAtomic(path.join(cellDir, CELL_FILES.error), json(error));
    await writeFileAtomic(path.join(cellDir, CELL_FILES.provenance), json(provenance));
  } catch (writeErr) {
    throw runFolderError(writeErr, cellDir);
  }
  return error;
}

/** The benchmark.json of a folder; undefined when absent or unreadable (a fresh run writes it anew). */
export function readBenchmarkInfo(benchmarkDir: string): BenchmarkInfo | undefined {
  return readJsonQuietly<BenchmarkInfo>(path.join(benchmarkDir, BENCHMARK_FILE));
}

export async function writeBenchmarkInfo(benchmarkDir: string, info: BenchmarkInfo): Promise<void> {
  try {
    await writeFileAtomic(path.join(benchmarkDir, BENCHMARK_FILE), json(info));
  } catch (err) {
    throw runFolderError(err, benchmarkDir);
  }
}

/** Everything the report needs from one cell folder. */
export interface CellRecord {
  dir: string;
  config: CellConfig;
  hash: string;
  metrics?: MetricsFile;
  error?: ErrorFile;
  history?: EpochRecord[];
  timings?: TimingsFile;
  provenance?: Provenance;
  /** Why the folder's results cannot be used, when something in it is damaged. */
  problem?: string;
}

/**
 * Reads a cell folder; undefined when it holds no config (not a cell). Metrics or an error of
 * another config hash are stale and left out.
 */
export function readCell(cellDir: string): CellRecord | undefined {
  const config = readJson<CellConfig>(path.join(cellDir, CELL_FILES.config));
  if (!config) return undefined;
  const hash = storedHash(cellDir) ?? '';
  const record: CellRecord = { dir: cellDir, config, hash };
  if (!hash)
    record.problem =
      `${CELL_FILES.hash} is missing, empty or damaged, so its results cannot be matched to its config; ` +
      'run the benchmark again to redo this cell';
  const metrics = readJson<MetricsFile>(path.join(cellDir, CELL_FILES.metrics));
  if (metrics && metrics.configHash === hash) {
    record.metrics = metrics;
    record.history = readJson<EpochRecord[]>(path.join(cellDir, CELL_FILES.history));
    record.timings = readJson<TimingsFile>(path.join(cellDir, CELL_FILES.timings));
  }
  const error = readJson<ErrorFile>(path.join(cellDir, CELL_FILES.error));
  if (error && error.configHash === hash && !record.metrics) record.error = error;
  record.provenance = readJson<Provenance>(path.join(cellDir, CELL_FILES.provenance));
  return record;
}

function readTextIfPresent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
