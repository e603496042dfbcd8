import path from 'node:path';
import type { DatasetView } from '../datasets/types.js';
import type { CellConfig } from '../config/cell.js';
import { createProgress, type ProgressMode, type ProgressReporter } from '../train/progress.js';
import type { CellResult } from '../train/types.js';
import { errorMessage } from '../util/errors.js';
import type { DataDeps } from './benchmark_data.js';
import { inProcessTrainer, type CellTrainer, type WorkerSetup } from './cell_trainer.js';
import type { JobPlan } from './jobs.js';
import { expandMatrix, selectShard, type Cell, type Shard } from './matrix.js';
import type { ResolvedBenchmark } from './resolve.js';
import { claimCells, describeConflicts, lockCell } from '../runs/sharing.js';
import { describeSource, findReusableCell } from '../runs/reuse.js';
import {
  adoptResult,
  beginCell,
  finishCell,
  hasResult,
  prepareBenchmarkFolder,
  readBenchmarkInfo,
  recordFailure,
  writeBenchmarkInfo,
  type BenchmarkInfo,
  type ErrorFile,
  type MetricsFile,
  type Provenance,
} from '../runs/store.js';
import { describeOwner } from '../util/lock.js';

export type { ProgressMode } from '../train/progress.js';

export type TrainCellFn = (
  config: CellConfig,
  data: DatasetView,
  options: { outDir?: string; progress?: ProgressMode; progressLabel?: string; signal?: AbortSignal; reporter?: ProgressReporter },
) => Promise<CellResult>;

/** The trainer and the data loader are injected so the runner can be tested with doubles. */
export interface RunnerDeps extends DataDeps {
  trainCell: TrainCellFn;
  provenance: () => Provenance;
  /** Starts a worker process for parallel jobs (`run --jobs`); absent, the runner trains one cell at a time in-process. */
  workerTrainer?: (setup: WorkerSetup) => CellTrainer;
}

/**
 * done: trained now; skipped: already done (by an earlier run, or by another process meanwhile);
 * reused: copied from a finished cell of another benchmark that trained the same networks; busy:
 * another live process is training it; refused: another live run uses it with a different config;
 * failed; interrupted.
 */
export type CellStatus = 'done' | 'skipped' | 'reused' | 'busy' | 'refused' | 'failed' | 'interrupted';

export interface CellOutcome {
  cell: Cell;
  dir: string;
  status: CellStatus;
  metrics?: MetricsFile;
  error?: ErrorFile;
  wallSeconds?: number;
  /** For busy, refused and interrupted cells: what happened, in one line. */
  note?: string;
}

/** What the runner tells the user as it goes (text lines or JSON events). */
export interface RunReporter {
  benchmarkStart(info: {
    benchmark: string;
    dir: string;
    cells: number;
    toRun: number;
    skipped: number;
    /** Cells whose results were taken from other benchmarks (see runs/reuse.ts). */
    reused: number;
    refused: number;
    shard?: Shard;
  }): void;
  cellStart(info: { benchmark: string; cell: Cell; position: number; toRun: number; etaSeconds?: number }): void;
  cellEnd(outcome: CellOutcome & { benchmark: string; position: number; toRun: number }): void;
  benchmarkEnd(info: { benchmark: string; dir: string; outcomes: CellOutcome[] }): void;
  /** Something the user should know that is not a cell's outcome (a stale lock taken over, a refused set of cells). */
  notice(info: { benchmark: string; message: string }): void;
}

export interface RunOptions {
  /** Parent of the benchmark folder: cells go to <outRoot>/<benchmark>/<cell>/. */
  outRoot: string;
  shard?: Shard;
  progress: ProgressMode;
  signal?: AbortSignal;
  reporter: RunReporter;
  /** Cells in parallel (`run --jobs`); absent, one at a time in this process. */
  jobs?: JobPlan;
  /** The backend the run started: parallel workers start the same. */
  backend?: string;
  /** Where a parallel job's cell shows its progress (a live panel); absent, `progress` decides as in-process. */
  cellProgress?: (slot: number, label: string) => ProgressReporter;
  /** Lines worker processes print by themselves; default stderr. */
  log?: (line: string) => void;
  /** Take the results of cells that other benchmarks under outRoot trained identically (runs/reuse.ts); default true. */
  reuse?: boolean;
}

export interface BenchmarkRun {
  benchmark: string;
  dir: string;
  outcomes: CellOutcome[];
  interrupted: boolean;
}

/** A result without the primary metric of every task is a trainer bug, not a result. */
function checkResult(config: CellConfig, result: CellResult): void {
  for (const task of config.tasks) {
    const value = result.test?.[task.name]?.[task.primary];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`the trainer returned no finite test ${task.primary} for task "${task.name}"`);
    }
  }
  if (!Array.isArray(result.history)) throw new Error('the trainer returned no per-epoch history');
}

export function benchmarkInfo(original: ResolvedBenchmark): BenchmarkInfo {
  const { doc } = original;
  return {
    name: original.name,
    description: doc.description,
    file: original.file,
    dataset: original.datasetLabel,
    tasks: original.tasks.map((t) => ({ name: t.name, kind: t.kind, primary: t.primary })),
    regimes: original.regimes.map((r) => r.name),
    settings: [...original.settings],
    seeds: [...original.seeds],
    reference: doc.reference,
    check: doc.check.map((c) => ({ ...c })),
  };
}

/** The benchmark's description with each task's number of classes or labels, where known. */
function withClasses(info: BenchmarkInfo, classesOf: (task: BenchmarkInfo['tasks'][number]) => number | undefined): BenchmarkInfo {
  return {
    ...info,
    tasks: info.tasks.map((task) => {
      const classes = classesOf(task);
      return classes === undefined ? task : { ...task, classes };
    }),
  };
}

/**
 * Runs the cells of one benchmark (or of one shard of it) that have no result for their current
 * config. A cell that throws is recorded in its folder and the others go on; an abort stops
 * after the running cell has handed back control. Other processes may use the same folder at the
 * same time (see runs/sharing.ts): cells a live run holds with another config are refused, cells
 * another process is training are left to it.
 */
export async function runBenchmark(
  resolved: ResolvedBenchmark,
  info: BenchmarkInfo,
  options: RunOptions,
  deps: RunnerDeps,
): Promise<BenchmarkRun> {
  const dir = path.join(options.outRoot, resolved.name);
  await prepareBenchmarkFolder(dir);
  // Class counts come from the data, which a run with nothing left to train never loads: keep
  // those an earlier run recorded for the same tasks.
  const earlier = readBenchmarkInfo(dir);
  await writeBenchmarkInfo(
    dir,
    withClasses(info, (task) => earlier?.tasks.find((t) => t.name === task.name && t.kind === task.kind)?.classes),
  );
  const notice = (message: string) => options.reporter.notice({ benchmark: resolved.name, message });
  const cells = selectShard(expandMatrix(resolved), options.shard);
  const claim = await claimCells(dir, cells, notice);
  try {
    const refused = new Set(claim.conflicts.map((c) => c.cell));
    if (refused.size > 0) notice(describeConflicts(resolved.name, claim.conflicts));
    const outcomes: CellOutcome[] = cells
      .filter((cell) => refused.has(cell.id))
      .map((cell) => ({
        cell,
        dir: path.join(dir, cell.id),
        status: 'refused' as const,
        note: 'another run uses this cell with a different configuration',
      }));
    const open = cells.filter((cell) => !refused.has(cell.id));
    const unfinished = open.filter((cell) => !hasResult(path.join(dir, cell.id), cell.hash));
    outcomes.push(
      ...open
        .filter((cell) => !unfinished.includes(cell))
        .map((cell) => ({ cell, dir: path.join(dir, cell.id), status: 'skipped' as const })),
    );
    const reused = options.reuse === false ? [] : await reuseResults(options.outRoot, dir, unfinished, notice);
    outcomes.push(...reused);
    const pending = unfinished.filter((cell) => !reused.some((o) => o.cell === cell));
    options.reporter.benchmarkStart({
      benchmark: resolved.name,
      dir,
      cells: cells.length,
      toRun: pending.length,
      skipped: open.length - unfinished.length,
      reused: reused.length,
      refused: refused.size,
      shard: options.shard,
    });
    const interrupted = await runPending(resolved, info, dir, pending, outcomes, options, deps, notice);
    outcomes.sort((a, b) => a.cell.index - b.cell.index);
    options.reporter.benchmarkEnd({ benchmark: resolved.name, dir, outcomes });
    return { benchmark: resolved.name, dir, outcomes, interrupted };
  } finally {
    await claim.release();
  }
}

/**
 * Copies into this benchmark the results of the cells that another benchmark under `outRoot` has
 * already trained with the same training hash, each under its lock; says once where they came from.
 */
async function reuseResults(
  outRoot: string,
  dir: string,
  cells: readonly Cell[],
  notice: (message: string) => void,
): Promise<CellOutcome[]> {
  const outcomes: CellOutcome[] = [];
  const sources = new Set<string>();
  for (const cell of cells) {
    const source = findReusableCell(outRoot, cell.config, cell.id);
    if (!source) continue;
    const cellDir = path.join(dir, cell.id);
    const lock = await lockCell(dir, cell.id, notice);
    // Another process is training it here: leave it to that process, as runPending would.
    if ('busy' in lock) continue;
    try {
      if (hasResult(cellDir, cell.hash)) continue;
      const metrics = await adoptResult(cellDir, cell.config, cell.hash, source);
      outcomes.push({ cell, dir: cellDir, status: 'reused', metrics, note: `from ${describeSource(source.reusedFrom)}` });
      sources.add(source.reusedFrom.benchmark);
    } finally {
      await lock.held.release();
    }
  }
  if (outcomes.length > 0) {
    notice(
      `${outcomes.length} cell${outcomes.length > 1 ? 's' : ''} reused from ${[...sources].join(', ')}, ` +
        'which trained the same networks (metrics.json names each source; --no-reuse trains them here)',
    );
  }
  return outcomes;
}

/** The average wall time of the cells trained so far, spread over the jobs: the time left, roughly. */
function etaSeconds(walls: number[], remaining: number, jobs: number): number | undefined {
  if (walls.length === 0) return undefined;
  return ((walls.reduce((a, b) => a + b, 0) / walls.length) * remaining) / jobs;
}

/**
 * Trains the pending cells, one at a time or (with a job plan of several jobs) in worker
 * processes side by side, each cell under its lock; returns whether it was interrupted. A cell
 * that fails is recorded and the others go on; an error that is not a cell's (the data cannot be
 * loaded) stops every job and is thrown once they have stopped.
 */
async function runPending(
  resolved: ResolvedBenchmark,
  info: BenchmarkInfo,
  dir: string,
  pending: Cell[],
  outcomes: CellOutcome[],
  options: RunOptions,
  deps: RunnerDeps,
  notice: (message: string) => void,
): Promise<boolean> {
  const jobs = Math.max(1, Math.min(options.jobs?.jobs ?? 1, pending.length));
  const trainers = Array.from({ length: jobs }, (_, slot) => openTrainer(resolved, pending, options, deps, slot, jobs));
  // Stops the other jobs when one meets an error that is not a cell's; the user's stop stops it too.
  const stop = new AbortController();
  const onUserStop = () => stop.abort(options.signal?.reason);
  if (options.signal?.aborted) onUserStop();
  else options.signal?.addEventListener('abort', onUserStop, { once: true });
  let fatal: { error: unknown } | undefined;
  let provenance: Provenance | undefined;
  let firstPrepare: Promise<unknown> | undefined;
  const walls: number[] = [];
  let started = 0;
  let finished = 0;
  let interrupted = false;

  // The first job loads the data alone (a first run builds the image cache there); the others
  // start once it is ready, from the cache.
  const prepare = async (trainer: CellTrainer) => {
    if (!firstPrepare) {
      firstPrepare = trainer.prepare().then((classes) =>
        writeBenchmarkInfo(
          dir,
          withClasses(info, (task) => classes[task.name]),
        ),
      );
      await firstPrepare;
      return;
    }
    await firstPrepare;
    await trainer.prepare();
  };

  const runCell = async (trainer: CellTrainer, cell: Cell, position: number): Promise<void> => {
    const cellDir = path.join(dir, cell.id);
    const where = { benchmark: resolved.name, position, toRun: pending.length };
    const end = (outcome: CellOutcome) => {
      finished++;
      outcomes.push(outcome);
      options.reporter.cellEnd({ ...outcome, ...where });
    };
    const lock = await lockCell(dir, cell.id, notice);
    if ('busy' in lock) {
      end({ cell, dir: cellDir, status: 'busy', note: `${describeOwner(lock.busy)} is training it; left to that process` });
      return;
    }
    try {
      // Another process may have finished it since this run looked.
      if (hasResult(cellDir, cell.hash)) {
        end({ cell, dir: cellDir, status: 'skipped', note: 'finished meanwhile by another process' });
        return;
      }
      await prepare(trainer);
      provenance ??= deps.provenance();
      const eta = etaSeconds(walls, pending.length - finished, jobs);
      options.reporter.cellStart({ benchmark: resolved.name, cell, position, toRun: pending.length, etaSeconds: eta });
      const previous = await beginCell(cellDir, cell.config, cell.hash);
      if (previous === 'other-config')
        notice(`${cell.id}: its folder held the results of an earlier, different configuration; they are replaced`);
      if (previous === 'damaged-hash') notice(`${cell.id}: its config.sha256 was missing or damaged; the cell is run again`);
      const startedAt = new Date();
      const t0 = performance.now();
      try {
        const result = await trainer.train(cell, { outDir: cellDir, label: `[${cell.id}]`, signal: stop.signal });
        checkResult(cell.config, result);
        const wallSeconds = (performance.now() - t0) / 1000;
        const timings = {
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          wallSeconds,
          trainSeconds: result.trainSeconds,
        };
        const metrics = await finishCell(cellDir, cell.hash, result, timings, provenance);
        walls.push(wallSeconds);
        end({ cell, dir: cellDir, status: 'done', metrics, wallSeconds });
      } catch (err) {
        if (stop.signal.aborted) {
          // Stopped, not broken: no error.json, so the next run simply resumes it.
          end({ cell, dir: cellDir, status: 'interrupted', note: errorMessage(err).split('\n')[0] });
          interrupted = true;
          return;
        }
        const error = await recordFailure(cellDir, cell.hash, err, provenance);
        end({ cell, dir: cellDir, status: 'failed', error, wallSeconds: (performance.now() - t0) / 1000 });
      }
    } finally {
      await lock.held.release();
    }
  };

  const runJob = async (trainer: CellTrainer) => {
    while (started < pending.length && !stop.signal.aborted) {
      const position = ++started;
      try {
        await runCell(trainer, pending[position - 1]!, position);
      } catch (err) {
        fatal ??= { error: err };
        stop.abort(err);
      }
    }
  };

  try {
    await Promise.all(trainers.map(runJob));
  } finally {
    options.signal?.removeEventListener('abort', onUserStop);
    await Promise.all(trainers.map((t) => t.close()));
  }
  if (fatal) throw fatal.error;
  return interrupted || started < pending.length;
}

/** Where the cells of job `slot` train: this process when there is one job, else a worker process of its own. */
function openTrainer(resolved: ResolvedBenchmark, pending: Cell[], options: RunOptions, deps: RunnerDeps, slot: number, jobs: number) {
  if (jobs === 1) return inProcessTrainer(resolved, pending, deps, options.progress);
  if (!deps.workerTrainer || !options.jobs || !options.backend)
    throw new Error('parallel jobs need a worker trainer, a job plan and the backend');
  return deps.workerTrainer({
    resolved,
    pending,
    backend: options.backend,
    plan: options.jobs,
    slot,
    reporterFor: (label) => options.cellProgress?.(slot, label) ?? createProgress(options.progress, process.stderr, { label }),
    log: options.log ?? ((line) => process.stderr.write(`${line}\n`)),
  });
}
